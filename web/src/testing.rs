//! What the web crate's tests share: one configurable fake telephony side
//! ([`FakePhones`]), the app's state over an in-memory store ([`state`]), users who log
//! in ([`login`]), requests and their replies ([`send`]), webhook deliveries, and the app
//! served on a loopback port for socket tests ([`serve`]).

#![allow(clippy::unwrap_used)] // test fixtures may unwrap

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::header::AsHeaderName;
use axum::http::{HeaderMap, Request, StatusCode};
use hotline_core::notify::webhook::{Delivery, WebhookConfig};
use hotline_core::notify::{Channel, Notifier, NotifierHandle, NotifyConfig};
use hotline_core::operators::NewOperator;
use hotline_core::store::Store;
use hotline_core::users::{LoginPolicy, NewUser, Role};
use serde_json::Value;
use tower::ServiceExt;

use crate::chat::ChatConfig;
use crate::state::{WebSettings, WebState};
use crate::telephony::{BoxFuture, OperatorForm, PageLink, PhoneFromPage, PhoneToPage, Telephony};
use crate::unix_ms;

/// A queue the fake telephony side reports.
pub(crate) struct Queue {
    pub name: &'static str,
    pub display_name: &'static str,
    /// Its operators (who may be offered its chats, whose tasks it shows).
    pub members: &'static [&'static str],
}

/// A call [`FakePhones`] was asked to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub operator: String,
    pub number: String,
    pub callback: Option<i64>,
}

/// The telephony side as a test sets it up; the default has no queues, no figures, and
/// calls that cannot start.
pub(crate) struct FakePhones {
    pub queues: Vec<Queue>,
    /// What `queue_figures` answers.
    pub figures: Option<Value>,
    /// What `call_customer` answers, after `call_delay`.
    pub call_outcome: Result<String, String>,
    pub call_delay: Duration,
    /// Numbers starting with this are refused by the dial plan.
    pub refused_prefix: Option<&'static str>,
    /// Every call asked for, in order.
    pub calls: Mutex<Vec<Call>>,
    /// What the pages told the browser phone, in order: (operator, page id, message).
    pub phone_messages: Mutex<Vec<(String, u64, PhoneFromPage)>>,
    /// Each page that told the phone anything, as the phone got it (to push news to it).
    pub pages: Mutex<Vec<PageLink>>,
    /// The pages the phone was told are gone: (operator, page id).
    pub closed_pages: Mutex<Vec<(String, u64)>>,
}

impl Default for FakePhones {
    fn default() -> FakePhones {
        FakePhones {
            queues: Vec::new(),
            figures: None,
            call_outcome: Err("not here".into()),
            call_delay: Duration::ZERO,
            refused_prefix: None,
            calls: Mutex::new(Vec::new()),
            phone_messages: Mutex::new(Vec::new()),
            pages: Mutex::new(Vec::new()),
            closed_pages: Mutex::new(Vec::new()),
        }
    }
}

impl FakePhones {
    /// The calls asked for so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// What the pages told the browser phone so far.
    pub fn phone_messages(&self) -> Vec<(String, u64, PhoneFromPage)> {
        self.phone_messages.lock().unwrap().clone()
    }

    /// The link to page `id`, once it told the phone anything.
    pub fn page(&self, id: u64) -> Option<PageLink> {
        let pages = self.pages.lock().unwrap();
        pages.iter().find(|p| p.id == id).cloned()
    }

    /// The pages the phone was told are gone so far.
    pub fn closed_pages(&self) -> Vec<(String, u64)> {
        self.closed_pages.lock().unwrap().clone()
    }
}

impl Telephony for FakePhones {
    fn set_operator_state<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn operator_status<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
    fn queue_figures(&self) -> BoxFuture<'_, Option<Value>> {
        Box::pin(async { self.figures.clone() })
    }
    fn add_operator<'a>(&'a self, _: &'a OperatorForm) -> BoxFuture<'a, Result<i64, String>> {
        Box::pin(async { Err("not here".into()) })
    }
    fn call_customer<'a>(
        &'a self,
        operator: &'a str,
        number: &'a str,
        callback: Option<i64>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            if !self.call_delay.is_zero() {
                tokio::time::sleep(self.call_delay).await;
            }
            self.calls.lock().unwrap().push(Call {
                operator: operator.to_string(),
                number: number.to_string(),
                callback,
            });
            self.call_outcome.clone()
        })
    }
    fn callback_hide_ms(&self, _: Option<&str>) -> i64 {
        0
    }
    fn check_dialable(&self, number: &str) -> Result<String, String> {
        match self.refused_prefix {
            Some(prefix) if number.starts_with(prefix) => {
                Err(format!("{number} is blocked by the dial plan ({prefix}.)"))
            }
            _ => Ok(number.to_string()),
        }
    }
    fn queue_names(&self) -> Vec<(String, String)> {
        self.queues
            .iter()
            .map(|q| (q.name.to_string(), q.display_name.to_string()))
            .collect()
    }
    fn queue_members(&self, queue: &str) -> Vec<String> {
        self.queues
            .iter()
            .filter(|q| q.name == queue)
            .flat_map(|q| q.members.iter().map(|m| m.to_string()))
            .collect()
    }
    /// Records the message; takes any page as the phone (`phone`) and answers any offer
    /// with a fake SDP (`answered`).
    fn phone_message<'a>(
        &'a self,
        operator: &'a str,
        page: &'a PageLink,
        message: PhoneFromPage,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let answer = match &message {
                PhoneFromPage::UseBrowser { on } => Some(PhoneToPage::Phone {
                    browser: *on,
                    message: None,
                }),
                PhoneFromPage::Answer { leg, .. } => Some(PhoneToPage::Answered {
                    leg: *leg,
                    sdp: FAKE_ANSWER_SDP.to_string(),
                }),
                _ => None,
            };
            self.phone_messages
                .lock()
                .unwrap()
                .push((operator.to_string(), page.id, message));
            {
                let mut pages = self.pages.lock().unwrap();
                if !pages.iter().any(|p| p.id == page.id) {
                    pages.push(page.clone());
                }
            }
            if let Some(answer) = answer {
                let _ = page.to_page.send(answer).await;
            }
        })
    }
    fn page_closed<'a>(&'a self, operator: &'a str, page_id: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.closed_pages
                .lock()
                .unwrap()
                .push((operator.to_string(), page_id));
        })
    }
}

/// The SDP [`FakePhones`] answers every offer with.
pub(crate) const FAKE_ANSWER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

/// A migrated in-memory store.
pub(crate) async fn store() -> Store {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// The settings every test starts from: no notifier, files in the temp directory.
fn settings() -> WebSettings {
    WebSettings {
        public_url: "http://127.0.0.1".into(),
        notify: Default::default(),
        notifier: None,
        files_dir: std::env::temp_dir(),
        recordings_dir: std::env::temp_dir(),
        time_zone: chrono_tz::Europe::Budapest,
    }
}

/// The app's state over `store`; the default phones, login policy, settings and chat
/// settings unless the test says otherwise.
pub(crate) fn state(store: &Store) -> StateBuilder {
    StateBuilder {
        store: store.clone(),
        phones: Arc::new(FakePhones::default()),
        policy: LoginPolicy::default(),
        settings: settings(),
        chat: None,
    }
}

pub(crate) struct StateBuilder {
    store: Store,
    phones: Arc<dyn Telephony>,
    policy: LoginPolicy,
    settings: WebSettings,
    chat: Option<ChatConfig>,
}

impl StateBuilder {
    pub fn phones(mut self, phones: Arc<dyn Telephony>) -> Self {
        self.phones = phones;
        self
    }
    pub fn policy(mut self, policy: LoginPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// A notifier that posts to `webhooks` (none: no notifier).
    pub fn webhooks(mut self, webhooks: Vec<WebhookConfig>) -> Self {
        self.settings.notifier = (!webhooks.is_empty()).then(|| notifier(&self.store, webhooks));
        self
    }
    /// Uploaded files go under `dir`.
    pub fn recordings_dir(mut self, dir: PathBuf) -> Self {
        self.settings.recordings_dir = dir;
        self
    }

    pub fn files_dir(mut self, dir: PathBuf) -> Self {
        self.settings.files_dir = dir;
        self
    }
    pub fn chat(mut self, config: ChatConfig) -> Self {
        self.chat = Some(config);
        self
    }
    pub fn build(self) -> Arc<WebState> {
        let state = WebState::new(
            self.store,
            self.phones,
            self.policy,
            false,
            self.settings,
            crate::visual::VisualSettings::default(),
        );
        Arc::new(match self.chat {
            Some(config) => state.with_chat(config),
            None => state,
        })
    }
    /// The app's routes over the state.
    pub fn app(self) -> Router {
        crate::app(self.build())
    }
}

/// A webhook for `event` whose receiver at `url` never answers: deliveries stay queued.
pub(crate) fn hook(url: &str, event: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        events: vec![event.into()],
        secret: "whsec_test_0123456789".into(),
    }
}

/// A notifier over `store` that posts to `webhooks`.
fn notifier(store: &Store, webhooks: Vec<WebhookConfig>) -> NotifierHandle {
    let config = NotifyConfig {
        webhooks,
        ..Default::default()
    };
    Notifier::start(store.clone(), config).unwrap()
}

/// The webhook deliveries queued so far, oldest first: (URL, event, delivery).
pub(crate) async fn webhook_deliveries(store: &Store) -> Vec<(String, String, Delivery)> {
    let mut list: Vec<_> = store
        .outbox_messages(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.channel == Channel::Webhook)
        .map(|m| (m.to, m.subject, serde_json::from_str(&m.body).unwrap()))
        .collect();
    list.reverse();
    list
}

/// Every test user's password.
pub(crate) const PASSWORD: &str = "a-long-password";

/// An operator's SIP account.
pub(crate) async fn add_operator(store: &Store, name: &str) {
    store
        .add_operator(&NewOperator {
            name,
            display_name: name,
            sip_user: name,
            realm: "hotline",
            ha1_md5: "x",
            ha1_sha256: "x",
            sip_digest: Default::default(),
            chat_capacity: 3,
            created_at_ms: unix_ms(),
        })
        .await
        .unwrap();
}

/// A console user with [`PASSWORD`]; `operator`: the operator account it works as.
pub(crate) async fn add_user(store: &Store, name: &str, role: Role, operator: Option<&str>) -> i64 {
    store
        .add_user(&NewUser {
            name,
            display_name: name,
            role,
            password: PASSWORD,
            operator,
            now_ms: unix_ms(),
        })
        .await
        .unwrap()
}

/// A logged-in user: the session cookie and CSRF token its requests carry.
pub(crate) struct Login {
    pub user_id: i64,
    pub cookie: String,
    pub csrf: String,
}

/// Logs `name` in (added with [`add_user`] before).
pub(crate) async fn log_in(store: &Store, name: &str) -> Login {
    let l = store
        .login(name, PASSWORD, unix_ms(), &LoginPolicy::default())
        .await
        .unwrap();
    Login {
        user_id: l.session.user.id,
        cookie: format!("hl_session={}", l.token),
        csrf: l.session.csrf_token,
    }
}

/// A new user with `role`, logged in; an operator works as an operator account of its
/// own name.
pub(crate) async fn login(store: &Store, name: &str, role: Role) -> Login {
    let operator = (role == Role::Operator).then_some(name);
    if let Some(op) = operator {
        add_operator(store, op).await;
    }
    add_user(store, name, role, operator).await;
    log_in(store, name).await
}

/// What came back: the status, the headers, the body as text and as JSON (`Null` when
/// it is not JSON).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: impl AsHeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// Sends `req` to `app` and reads the whole reply.
pub(crate) async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `req` as it comes from `peer` (the daemon serves with connect info).
pub(crate) fn from_peer(mut req: Request<Body>, peer: SocketAddr) -> Request<Body> {
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

/// A console script's request as `who`: the session cookie, the CSRF header and a JSON
/// body (empty when `None`); the status and the JSON answer.
pub(crate) async fn send_json(
    app: &Router,
    who: &Login,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", &who.cookie)
        .header("x-csrf-token", &who.csrf)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let r = send(app, req).await;
    (r.status, r.json)
}

/// A page as the browser with `cookie` gets it: the status and the page.
pub(crate) async fn get_page(app: &Router, cookie: &str, uri: &str) -> (StatusCode, String) {
    let req = Request::get(uri)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let r = send(app, req).await;
    (r.status, r.text)
}

/// A form posted by the browser with `cookie`: the status and the page.
pub(crate) async fn post_form(
    app: &Router,
    cookie: &str,
    uri: &str,
    form: &str,
) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    let r = send(app, req).await;
    (r.status, r.text)
}

/// `app` served on a loopback port with connect info, as the daemon serves it.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The next text frame as JSON, or `None` when the server closed the socket; fails the
/// test when nothing comes within 5 s.
pub(crate) async fn next_json(ws: &mut Ws) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no answer within 5 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}
