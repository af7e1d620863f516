//! The route table: every API route is added through [`Routes`], which registers it under
//! /api/v1 and its deprecated /api alias and records it for the OpenAPI document, so the
//! document cannot miss a route the router serves.

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;
use serde_json::{Value, json};

use super::problem::{CONTENT_TYPE_PROBLEM, Problem};

pub const V1: &str = "/api/v1";
/// The first paths, kept working for scripts written against them.
pub const LEGACY: &str = "/api";

/// One operation as the document describes it.
#[derive(Clone)]
pub struct Op {
    pub method: Method,
    pub summary: &'static str,
    /// A JSON Schema of the request body.
    pub body: Option<Value>,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// Success status, its description, and the response's media type and schema.
    pub ok: (u16, &'static str, &'static str, Value),
    /// Error statuses this operation answers with (besides 401).
    pub errors: &'static [u16],
}

impl Op {
    pub fn new(method: Method, summary: &'static str) -> Op {
        Op {
            method,
            summary,
            body: None,
            query: &[],
            ok: (200, "OK", "application/json", json!({})),
            errors: &[],
        }
    }

    pub fn body(mut self, schema: Value) -> Op {
        self.body = Some(schema);
        self
    }

    pub fn ok(mut self, status: u16, description: &'static str, schema: Value) -> Op {
        self.ok = (status, description, "application/json", schema);
        self
    }

    pub fn ok_as(mut self, status: u16, description: &'static str, media: &'static str) -> Op {
        self.ok = (status, description, media, json!({ "type": "string" }));
        self
    }

    pub fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Op {
        self.query = query;
        self
    }

    pub fn errors(mut self, errors: &'static [u16]) -> Op {
        self.errors = errors;
        self
    }
}

struct Documented {
    path: String,
    ops: Vec<Op>,
    deprecated: bool,
    public: bool,
}

/// The router under construction and what it will serve.
pub struct Routes<S> {
    router: Router<S>,
    table: Vec<Documented>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Adds `path` (below /api/v1) and its deprecated alias below /api.
    pub fn route(self, path: &str, handlers: MethodRouter<S>, ops: Vec<Op>) -> Routes<S> {
        let alias_ops = ops.clone();
        self.add(
            format!("{LEGACY}{path}"),
            handlers.clone(),
            alias_ops,
            true,
            false,
        )
        .add(format!("{V1}{path}"), handlers, ops, false, false)
    }

    /// Adds a path below /api/v1 only, served without a token.
    pub fn public(self, path: &str, handlers: MethodRouter<S>, ops: Vec<Op>) -> Routes<S> {
        self.add(format!("{V1}{path}"), handlers, ops, false, true)
    }

    fn add(
        mut self,
        path: String,
        handlers: MethodRouter<S>,
        ops: Vec<Op>,
        deprecated: bool,
        public: bool,
    ) -> Routes<S> {
        let allow = ops
            .iter()
            .map(|o| o.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let handlers =
            handlers.fallback(move || async move { Problem::method_not_allowed(&allow) });
        self.router = self.router.route(&path, handlers);
        self.table.push(Documented {
            path,
            ops,
            deprecated,
            public,
        });
        self
    }

    /// Applies `f` (the token check) to the routes added so far.
    pub fn map_router(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Routes<S> {
        self.router = f(self.router);
        self
    }

    pub fn finish(self) -> (Router<S>, Value) {
        let document = document(&self.table);
        (self.router, document)
    }
}

fn document(table: &[Documented]) -> Value {
    let mut paths = serde_json::Map::new();
    for route in table {
        let mut item = serde_json::Map::new();
        for op in &route.ops {
            item.insert(op.method.as_str().to_lowercase(), operation(route, op));
        }
        paths.insert(route.path.clone(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hotline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Operator states, live queue figures, click-to-call, call records, \
                chats and per-user tokens. Every error is RFC 9457 problem details (application/problem+json). The paths \
                below /api without /v1 are deprecated aliases of the /api/v1 ones."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" }
                    }
                }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
    })
}

fn operation(route: &Documented, op: &Op) -> Value {
    let problem = json!({
        "description": "problem details",
        "content": { CONTENT_TYPE_PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } }
    });
    let (status, description, media, schema) = &op.ok;
    let mut responses = serde_json::Map::new();
    let ok = if *status == 204 {
        json!({ "description": description })
    } else {
        json!({ "description": description, "content": { *media: { "schema": schema } } })
    };
    responses.insert(status.to_string(), ok);
    let auth: &[u16] = if route.public { &[] } else { &[401, 403] };
    for code in op.errors.iter().chain(auth) {
        responses.insert(code.to_string(), problem.clone());
    }
    responses.insert("default".into(), problem);

    let mut parameters: Vec<Value> = path_parameters(&route.path)
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    parameters.extend(op.query.iter().map(|(name, description)| {
        json!({ "name": name, "in": "query", "required": false,
                "description": description, "schema": { "type": "string" } })
    }));

    let mut out = json!({
        "summary": op.summary,
        "operationId": operation_id(&route.path, &op.method, route.deprecated),
        "responses": responses,
    });
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    if let Some(schema) = &op.body {
        out["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema } }
        });
    }
    if route.deprecated {
        out["deprecated"] = Value::Bool(true);
    }
    if route.public {
        out["security"] = json!([]);
    }
    out
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// `get_api_v1_operators_name_state`: unique per path and method.
fn operation_id(path: &str, method: &Method, deprecated: bool) -> String {
    let mut id = method.as_str().to_lowercase();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase()),
        );
    }
    if deprecated {
        id.push_str("_legacy");
    }
    id
}
