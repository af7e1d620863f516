//! The JSON Schema of a flow file, for editors (Even Better TOML / taplo).
//! Kept by hand in `flow.schema.json`; the test below fails when the parser
//! accepts a key the schema lacks, or the other way round.

/// JSON Schema (draft-07) of one flow file; `hotline flow schema` prints it.
pub const FLOW_SCHEMA_JSON: &str = include_str!("flow.schema.json");

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::FLOW_SCHEMA_JSON;
    use crate::model::STEP_TYPES;

    fn schema() -> Json {
        serde_json::from_str(FLOW_SCHEMA_JSON).expect("flow.schema.json is valid JSON")
    }

    fn get<'a>(v: &'a Json, key: &str) -> &'a Json {
        match v {
            Json::Object(m) => m.get(key).unwrap_or_else(|| panic!("no `{key}`")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn keys(v: &Json) -> Vec<String> {
        match get(v, "properties") {
            Json::Object(m) => m.keys().cloned().collect(),
            other => panic!("properties: {other:?}"),
        }
    }

    #[test]
    fn schema_lists_exactly_the_keys_the_parser_accepts() {
        let schema = schema();
        assert_eq!(
            get(&schema, "$schema"),
            &json!("http://json-schema.org/draft-07/schema#")
        );
        let defs = get(&schema, "definitions");
        let census = crate::parse::known_keys();
        let table = |label: &str| -> &Json {
            match label {
                "flow" => &schema,
                "offers" => get(defs, "offer_set"),
                "offer_rule" => get(defs, "offer_rule"),
                "caller_rule" => get(defs, "caller_rule"),
                "promise_computed" => get(defs, "promise_computed"),
                step => get(defs, &step.replace('.', "_")),
            }
        };
        let mut labels: Vec<&str> = census.keys().copied().collect();
        labels.sort();
        let mut expected: Vec<String> = [
            "flow",
            "offers",
            "offer_rule",
            "caller_rule",
            "promise_computed",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(STEP_TYPES.iter().map(|t| format!("step.{t}")))
        .collect();
        expected.sort();
        assert_eq!(labels, expected, "every kind of table was read");
        for (label, parser_keys) in &census {
            let mut parser: Vec<String> = parser_keys.iter().map(|k| k.to_string()).collect();
            parser.sort();
            let mut in_schema = keys(table(label));
            in_schema.sort();
            assert_eq!(in_schema, parser, "keys of `{label}`: schema vs parser");
            assert_eq!(
                get(table(label), "additionalProperties"),
                &json!(false),
                "{label}"
            );
        }
        // Every step type is one branch of `step`, discriminated by `type`.
        let Json::Array(branches) = get(get(defs, "step"), "oneOf") else {
            panic!("step.oneOf")
        };
        assert_eq!(branches.len(), STEP_TYPES.len());
        for ty in STEP_TYPES {
            let def = get(defs, &format!("step_{ty}"));
            assert_eq!(
                get(get(get(def, "properties"), "type"), "enum"),
                &json!([ty])
            );
            let reference = json!(format!("#/definitions/step_{ty}"));
            assert!(
                branches.iter().any(|b| get(b, "$ref") == &reference),
                "{ty} is not in step.oneOf"
            );
        }
    }
}
