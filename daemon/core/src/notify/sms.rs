//! SMS through an HTTP gateway: one request per message, URL and body rendered from the
//! `[notify.sms]` templates with `to` and `text`. Any answer but 2xx is a failure, and so
//! is a 2xx whose body matches `error_body_regex` (gateways that report errors in a
//! 200 OK, such as `{"status": "error", …}` or `ERR: …`).

use std::time::Duration;

use minijinja::context;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::{NotifyError, SendError, SmsConfig, config_error, error_chain, template_env};

/// How much of a failed answer is kept as the reason.
const REASON_BYTES: usize = 200;
/// How much of a 2xx answer is searched for `error_body_regex`.
const SEARCHED_BYTES: usize = 64 * 1024;

pub(super) struct SmsSender {
    client: reqwest::Client,
    method: Method,
    headers: HeaderMap,
    content_type: Option<HeaderValue>,
    url: String,
    body: String,
    error_body: Option<regex::Regex>,
}

/// Checks `[notify.sms]`; the templates are rendered with sample values.
pub(super) fn validate(c: &SmsConfig) -> Result<(), NotifyError> {
    parse_method(&c.method)?;
    headers(c)?;
    content_type(c)?;
    error_body(c)?;
    let env = template_env();
    let sample = context! { to => "+36301234567", text => "Sample text" };
    super::render(&env, "notify.sms.body", &c.body, &sample)?;
    if c.url.trim().is_empty() {
        return Ok(());
    }
    let url = super::render(&env, "notify.sms.url", &c.url, &sample)?;
    parse_url(&url).map_err(|m| config_error("notify.sms.url", m))?;
    Ok(())
}

fn parse_method(method: &str) -> Result<Method, NotifyError> {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        _ => Err(config_error(
            "notify.sms.method",
            format!("{method:?} is not one of GET, POST, PUT, PATCH"),
        )),
    }
}

fn headers(c: &SmsConfig) -> Result<HeaderMap, NotifyError> {
    let mut map = HeaderMap::new();
    for (name, value) in &c.headers {
        let setting = format!("notify.sms.headers.{name}");
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| config_error(&setting, "not a valid HTTP header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| config_error(&setting, "not a valid HTTP header value"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// The body's content type; none if empty.
fn content_type(c: &SmsConfig) -> Result<Option<HeaderValue>, NotifyError> {
    if c.content_type.trim().is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(c.content_type.trim())
        .map(Some)
        .map_err(|_| config_error("notify.sms.content_type", "not a valid header value"))
}

/// The compiled `error_body_regex`; none if empty.
fn error_body(c: &SmsConfig) -> Result<Option<regex::Regex>, NotifyError> {
    if c.error_body_regex.is_empty() {
        return Ok(None);
    }
    regex::Regex::new(&c.error_body_regex)
        .map(Some)
        .map_err(|e| config_error("notify.sms.error_body_regex", e.to_string()))
}

fn parse_url(url: &str) -> Result<Url, String> {
    // Not the URL itself in the message: a gateway's key may be in it.
    let parsed = Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(format!("{other}: is not http: or https:")),
    }
}

impl SmsSender {
    pub(super) fn new(c: &SmsConfig, timeout: Duration) -> Result<SmsSender, NotifyError> {
        let client = super::http_client(timeout)?;
        Ok(SmsSender {
            client,
            method: parse_method(&c.method)?,
            headers: headers(c)?,
            content_type: content_type(c)?,
            url: c.url.clone(),
            body: c.body.clone(),
            error_body: error_body(c)?,
        })
    }

    pub(super) async fn send(&self, to: &str, text: &str) -> Result<(), SendError> {
        let env = template_env();
        let ctx = context! { to, text };
        let url = env
            .render_str(&self.url, &ctx)
            .map_err(|source| SendError::Template {
                setting: "notify.sms.url",
                source,
            })?;
        let url = parse_url(&url).map_err(SendError::Build)?;
        let body = env
            .render_str(&self.body, &ctx)
            .map_err(|source| SendError::Template {
                setting: "notify.sms.body",
                source,
            })?;
        let mut request = self
            .client
            .request(self.method.clone(), url)
            .headers(self.headers.clone());
        if !body.is_empty() {
            // A Content-Type among the configured headers wins.
            let content_type =
                (self.content_type.as_ref()).filter(|_| !self.headers.contains_key(CONTENT_TYPE));
            if let Some(ct) = content_type {
                request = request.header(CONTENT_TYPE, ct.clone());
            }
            request = request.body(body);
        }
        // The URL may hold the gateway's key: keep it out of the stored reason.
        let mut response = request
            .send()
            .await
            .map_err(|e| SendError::Http(error_chain(&e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            let Some(error_body) = &self.error_body else {
                return Ok(());
            };
            let answer = read_some(&mut response, SEARCHED_BYTES).await;
            let answer = String::from_utf8_lossy(&answer);
            return match error_body.find(&answer) {
                None => Ok(()),
                Some(_) => Err(SendError::GatewayErrorBody {
                    status: status.as_u16(),
                    body: reason(answer.as_bytes()),
                }),
            };
        }
        let answer = read_some(&mut response, REASON_BYTES).await;
        Err(SendError::Gateway {
            status: status.as_u16(),
            body: reason(&answer),
        })
    }
}

/// The start of an answer's body, at most `limit` bytes.
async fn read_some(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut answer = Vec::new();
    while answer.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    answer.truncate(limit);
    answer
}

/// An answer's body as a stored reason: short, one line.
fn reason(answer: &[u8]) -> String {
    let cut = &answer[..answer.len().min(REASON_BYTES)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}
