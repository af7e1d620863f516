//! One WebSocket per console tab for the home page's live widgets (DESIGN: "small JS
//! modules for live widgets over one WebSocket per tab"): the queue figures, the shared
//! missed-calls list, the operator's own recent callbacks, and a nudge for the tasks widget.
//!
//! The callback list is read by one poller per daemon, whatever the number of tabs, and
//! handed to every socket through a `watch`; an action on this node (a claim, a
//! correction) wakes the poller at once, so the entry leaves every other operator's list
//! without waiting for the next tick. Changes made on another node (PostgreSQL) or by the
//! telephony side arrive with the next tick. A socket sends a widget only when it changed.
//!
//! The same socket carries the browser phone's signalling (PRODUCT T7): each tab is a
//! [`PageLink`] with an id of its own; what the page sends is a [`PhoneFromPage`], handed
//! to the telephony side in order by one task per tab, and what the phone sends back
//! ([`PhoneToPage`]) goes out as soon as it comes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, watch};

use crate::auth::{OperatorPage, same_origin};
use crate::state::WebState;
use crate::telephony::{PageLink, PhoneFromPage, PhoneToPage};
use crate::unix_ms;

/// How often the shared list and each socket's own widgets are read again.
const TICK: Duration = Duration::from_secs(1);
/// Entries the missed-calls widget shows.
const SHOWN: i64 = 50;
/// How far back the operator's own callbacks are offered for correction.
pub(super) const CORRECTION_WINDOW_MS: i64 = 60 * 60 * 1000;

/// The shared feed of the callback list (started by the first socket).
#[derive(Default)]
pub struct LiveFeeds {
    callbacks: OnceLock<watch::Receiver<Arc<String>>>,
    /// The calls each operator's call panel showed lately (newest last): the ones they
    /// may wrap up.
    shown_calls: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// Wakes the poller after a change made here.
    changed: Arc<Notify>,
}

/// Calls an operator may still wrap up, at most.
const WRAPPABLE: usize = 10;

/// The next console tab's id for the browser phone: unique in this daemon.
static NEXT_PAGE_ID: AtomicU64 = AtomicU64::new(1);
/// Messages waiting between a tab and the browser phone, each way.
const PHONE_QUEUE: usize = 32;
/// The largest message a page may send: an SDP offer is 3-6 KB. Larger ones are refused
/// with an error frame.
const MAX_PAGE_MESSAGE: usize = 64 * 1024;
/// Beyond this the socket itself gives up (and closes) before reading the message whole.
const MAX_SOCKET_MESSAGE: usize = 256 * 1024;

impl LiveFeeds {
    /// The operator's panel showed call `call_id`.
    fn shown(&self, operator: &str, call_id: &str) {
        let mut shown = match self.shown_calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let calls = shown.entry(operator.to_string()).or_default();
        if !calls.iter().any(|c| c == call_id) {
            calls.push(call_id.to_string());
            if calls.len() > WRAPPABLE {
                calls.remove(0);
            }
        }
    }

    /// Whether the operator's panel showed call `call_id` (so they may wrap it up).
    pub fn was_shown(&self, operator: &str, call_id: &str) -> bool {
        let shown = match self.shown_calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        shown
            .get(operator)
            .is_some_and(|calls| calls.iter().any(|c| c == call_id))
    }

    /// The list changed on this node: read it again now.
    pub fn callbacks_changed(&self) {
        self.changed.notify_one();
    }
}

fn callbacks_feed(state: &Arc<WebState>) -> watch::Receiver<Arc<String>> {
    state
        .live
        .callbacks
        .get_or_init(|| {
            let (tx, rx) = watch::channel(Arc::new(String::new()));
            let state = state.clone();
            tokio::spawn(async move {
                let changed = state.live.changed.clone();
                loop {
                    if let Some(json) = callback_rows(&state).await
                        && **tx.borrow() != json
                    {
                        tx.send_replace(Arc::new(json));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => {}
                        _ = changed.notified() => {}
                    }
                }
            });
            rx
        })
        .clone()
}

/// The missed-calls widget's message, or `None` when the store failed (the widget keeps
/// what it shows).
async fn callback_rows(state: &WebState) -> Option<String> {
    let list = match state.store.callback_list(unix_ms(), SHOWN).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("reading the callback list: {e}");
            return None;
        }
    };
    let rows: Vec<_> = list
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "number": e.number,
                "count": e.count,
                "first": state.local_time(e.first_at_ms),
                "last": state.local_time(e.last_at_ms),
                "queue": e.queue,
                "promised": e.promised_at_ms.map(|t| state.local_time(t)),
                "attempts": e.attempts,
                "auto_attempts": e.auto_attempts,
                "last_outcome": e.last_outcome.map(|o| o.as_str()),
                "for_operator": e.for_operator,
                "undialable": e.undialable,
            })
        })
        .collect();
    serde_json::to_string(&serde_json::json!({ "type": "callbacks", "data": rows })).ok()
}

/// The operator's own recent callback attempts, which they may still correct.
async fn my_attempts(state: &WebState, operator: &str) -> Option<String> {
    let now = unix_ms();
    let rows = state
        .store
        .recent_callback_attempts(operator, now - CORRECTION_WINDOW_MS, 10)
        .await
        .ok()?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(a, number)| {
            serde_json::json!({
                "entry": a.entry_id,
                "number": number,
                "outcome": a.outcome.map(|o| o.as_str()),
                "note": a.note,
                "ended": a.ended_at_ms.map(|t| state.local_time(t)),
            })
        })
        .collect();
    serde_json::to_string(&serde_json::json!({ "type": "mine", "data": rows })).ok()
}

/// The operator's call panel (see calls.rs); `null` without a call.
fn call_frame(call: Option<serde_json::Value>) -> String {
    serde_json::json!({ "type": "call", "data": call }).to_string()
}

async fn figures(state: &WebState) -> Option<String> {
    let data = state.telephony.queue_figures().await?;
    serde_json::to_string(&serde_json::json!({ "type": "queues", "data": data })).ok()
}

/// GET /console/live: the home page's WebSocket.
pub(super) async fn socket(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A page from another site must not read the operators' lists.
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "not from this site").into_response();
    }
    let operator = s
        .user
        .operator
        .clone()
        .unwrap_or_else(|| s.user.name.clone());
    ws.max_message_size(MAX_SOCKET_MESSAGE)
        .max_frame_size(MAX_SOCKET_MESSAGE)
        .on_upgrade(move |socket| serve(state, operator, socket))
}

/// The task that hands the page's messages to the browser phone one after the other,
/// and tells it the page is gone once the socket dropped the returned sender (however
/// the socket ended). A separate task, so a slow telephony side never stops the socket
/// from passing on the phone's news (which could fill the queue the phone waits on).
fn phone_worker(
    state: Arc<WebState>,
    operator: String,
    link: PageLink,
) -> mpsc::Sender<PhoneFromPage> {
    let (to_phone, mut from_page) = mpsc::channel(PHONE_QUEUE);
    tokio::spawn(async move {
        while let Some(message) = from_page.recv().await {
            state
                .telephony
                .phone_message(&operator, &link, message)
                .await;
        }
        // After the page's last messages: a use_browser sent just before the tab closed
        // must not be taken after the close.
        state.telephony.page_closed(&operator, link.id).await;
    });
    to_phone
}

/// A text message from the page, for the browser phone; `Err`: the error frame to send
/// back (the socket stays open).
fn from_page(to_phone: &mpsc::Sender<PhoneFromPage>, text: &str) -> Result<(), String> {
    let refuse = |message: String| {
        let frame = PhoneToPage::Error { leg: None, message };
        serde_json::to_string(&frame).unwrap_or_default()
    };
    if text.len() > MAX_PAGE_MESSAGE {
        return Err(refuse(format!(
            "The message is too big ({} KiB; at most {} KiB).",
            text.len().div_ceil(1024),
            MAX_PAGE_MESSAGE / 1024
        )));
    }
    let message: PhoneFromPage = serde_json::from_str(text)
        .map_err(|e| refuse(format!("Not a message for the phone: {e}")))?;
    match to_phone.try_send(message) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(refuse(
            "Too many messages for the phone at once: try again.".to_string(),
        )),
        Err(TrySendError::Closed(_)) => Err(refuse(
            "The phone is not reachable from this tab: reload the page.".to_string(),
        )),
    }
}

/// What the phone tells the page, as the page reads it.
fn to_page(news: &PhoneToPage) -> Option<String> {
    serde_json::to_string(news).ok()
}

async fn serve(state: Arc<WebState>, operator: String, mut socket: WebSocket) {
    let (news_to_page, mut phone_news) = mpsc::channel(PHONE_QUEUE);
    let link = PageLink {
        id: NEXT_PAGE_ID.fetch_add(1, Ordering::Relaxed),
        to_page: news_to_page,
    };
    // Dropped when this function returns: the worker then tells the phone the page is gone.
    let to_phone = phone_worker(state.clone(), operator.clone(), link);
    let mut feed = callbacks_feed(&state);
    feed.mark_changed();
    let mut last_figures = String::new();
    let mut last_mine = String::new();
    // The page starts with "No call".
    let mut last_call = call_frame(None);
    let mut tick = tokio::time::interval(TICK);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            r = feed.changed() => {
                if r.is_err() {
                    return;
                }
                let list = feed.borrow_and_update().clone();
                if !list.is_empty() {
                    out.push(list.to_string());
                }
                // An outcome recorded may have changed this operator's own list too.
                if let Some(m) = my_attempts(&state, &operator).await
                    && m != last_mine
                {
                    last_mine.clone_from(&m);
                    out.push(m);
                }
            }
            _ = tick.tick() => {
                let call = state.telephony.operator_call(&operator).await;
                if let Some(id) = call.as_ref().and_then(|c| c["call_id"].as_str()) {
                    state.live.shown(&operator, id);
                }
                let call = call_frame(call);
                if call != last_call {
                    last_call.clone_from(&call);
                    out.push(call);
                }
                if let Some(f) = figures(&state).await
                    && f != last_figures
                {
                    last_figures.clone_from(&f);
                    out.push(f);
                }
                if let Some(m) = my_attempts(&state, &operator).await
                    && m != last_mine
                {
                    last_mine.clone_from(&m);
                    out.push(m);
                }
            }
            news = phone_news.recv() => match news {
                Some(news) => out.extend(to_page(&news)),
                // Only when the worker, which holds a sender while the socket lives, died:
                // the page reconnects and gets a new one.
                None => return,
            },
            msg = socket.recv() => match msg {
                // Besides pings and the close, the page sends only the browser phone's messages.
                Some(Ok(Message::Text(text))) => {
                    if let Err(error) = from_page(&to_phone, &text) {
                        out.push(error);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
        for text in out {
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use futures_util::SinkExt;
    use hotline_core::users::Role;
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

    use super::*;
    use crate::testing::{self, FAKE_ANSWER_SDP, FakePhones, Login, Ws};

    /// The console served on a loopback port with the fake phones, and anna logged in.
    async fn setup() -> (std::net::SocketAddr, Arc<FakePhones>, Login) {
        let store = testing::store().await;
        let anna = testing::login(&store, "anna", Role::Operator).await;
        let phones = Arc::new(FakePhones::default());
        let app = testing::state(&store).phones(phones.clone()).app();
        (testing::serve(app).await, phones, anna)
    }

    /// A home page tab's live socket for `who`.
    async fn tab(addr: std::net::SocketAddr, who: &Login) -> Ws {
        let mut req = format!("ws://{addr}/console/live")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("cookie", who.cookie.parse().unwrap());
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
        ws
    }

    async fn say(ws: &mut Ws, text: impl Into<String>) {
        let text: String = text.into();
        ws.send(tungstenite::Message::Text(text.into()))
            .await
            .unwrap();
    }

    /// The next frame that is not one of the widgets'.
    async fn next_phone_frame(ws: &mut Ws) -> Value {
        loop {
            let v = testing::next_json(ws).await.expect("the socket closed");
            if !["callbacks", "mine", "call", "queues"].contains(&v["type"].as_str().unwrap()) {
                return v;
            }
        }
    }

    /// Waits (up to 5 s) until `done` holds.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        for _ in 0..100 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not within 5 s: {what}");
    }

    /// The id of the page that asked to be the phone last.
    fn last_page(phones: &FakePhones) -> u64 {
        phones.phone_messages().last().unwrap().1
    }

    #[tokio::test]
    async fn an_operators_home_page_has_the_phone_panel_and_its_script_is_served() {
        let store = testing::store().await;
        let anna = testing::login(&store, "anna", Role::Operator).await;
        let sara = testing::login(&store, "sara", Role::Supervisor).await;
        let app = testing::state(&store).app();
        let (status, page) = testing::get_page(&app, &anna.cookie, "/").await;
        assert_eq!(status, StatusCode::OK);
        for part in [
            r#"id="phone" aria-labelledby="phone-h" data-operator="anna""#,
            r#"value="browser"> this browser</label>"#,
            r#"value="sip" checked> my SIP phone</label>"#,
            r#"<label for="mic-level">Microphone level</label>"#,
            r#"<audio id="phone-audio" autoplay>"#,
        ] {
            assert!(page.contains(part), "{part}");
        }
        // A user without an operator account takes no calls: no phone.
        let (status, page) = testing::get_page(&app, &sara.cookie, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("not linked to an operator account"));
        assert!(!page.contains(r#"id="phone""#));

        let (status, script) = testing::get_page(&app, &anna.cookie, "/assets/phone.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(script.contains("export function phoneNews"));
    }

    #[tokio::test]
    async fn the_pages_messages_reach_the_phone_in_order_and_its_answers_come_back() {
        let (addr, phones, anna) = setup().await;
        let mut page = tab(addr, &anna).await;

        say(&mut page, r#"{"type":"use_browser","on":true}"#).await;
        assert_eq!(
            next_phone_frame(&mut page).await,
            json!({ "type": "phone", "browser": true, "message": null })
        );
        let offer = "v=0\r\no=- 42 2 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\n";
        say(
            &mut page,
            json!({ "type": "answer", "leg": 7, "sdp": offer }).to_string(),
        )
        .await;
        assert_eq!(
            next_phone_frame(&mut page).await,
            json!({ "type": "answered", "leg": 7, "sdp": FAKE_ANSWER_SDP })
        );
        say(&mut page, r#"{"type":"dtmf","leg":7,"digit":"5"}"#).await;
        say(&mut page, r#"{"type":"hangup","leg":7}"#).await;
        say(&mut page, r#"{"type":"decline","leg":8}"#).await;
        eventually("five messages", || phones.phone_messages().len() == 5).await;

        let id = last_page(&phones);
        let expected = [
            PhoneFromPage::UseBrowser { on: true },
            PhoneFromPage::Answer {
                leg: 7,
                sdp: offer.to_string(),
            },
            PhoneFromPage::Dtmf { leg: 7, digit: '5' },
            PhoneFromPage::Hangup { leg: 7 },
            PhoneFromPage::Decline { leg: 8 },
        ];
        let got = phones.phone_messages();
        for ((operator, page_id, message), expected) in got.into_iter().zip(expected) {
            assert_eq!((operator.as_str(), page_id), ("anna", id));
            assert_eq!(message, expected);
        }
    }

    #[tokio::test]
    async fn a_message_the_phone_cannot_read_gets_an_error_and_the_socket_stays() {
        let (addr, phones, anna) = setup().await;
        let mut page = tab(addr, &anna).await;
        let too_big = json!({ "type": "answer", "leg": 1, "sdp": "a".repeat(70 * 1024) });
        for (bad, says) in [
            ("not json".to_string(), "Not a message for the phone"),
            (
                r#"{"type":"dial","number":"112"}"#.to_string(),
                "unknown variant",
            ),
            (
                r#"{"type":"answer","leg":1}"#.to_string(),
                "missing field `sdp`",
            ),
            (
                r#"{"type":"dtmf","leg":1,"digit":"12"}"#.to_string(),
                "Not a message",
            ),
            (too_big.to_string(), "too big (71 KiB; at most 64 KiB)"),
        ] {
            say(&mut page, bad.clone()).await;
            let error = next_phone_frame(&mut page).await;
            assert_eq!(error["type"], "error", "{bad:.80} → {error}");
            assert_eq!(error["leg"], Value::Null);
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(says), "{bad:.80} → {message}");
        }
        // None of them reached the phone, and the socket still works.
        say(&mut page, r#"{"type":"use_browser","on":false}"#).await;
        assert_eq!(next_phone_frame(&mut page).await["type"], "phone");
        assert_eq!(
            phones.phone_messages()[..],
            [(
                "anna".to_string(),
                last_page(&phones),
                PhoneFromPage::UseBrowser { on: false }
            )]
        );
    }

    #[tokio::test]
    async fn news_from_the_phone_reach_the_page_as_json_at_once() {
        let (addr, phones, anna) = setup().await;
        let mut page = tab(addr, &anna).await;
        say(&mut page, r#"{"type":"use_browser","on":true}"#).await;
        next_phone_frame(&mut page).await;
        let link = phones.page(last_page(&phones)).unwrap();

        let ring = PhoneToPage::Ring {
            leg: 3,
            caller: "+36209990000".into(),
            call_id: Some("c-17".into()),
            resume: false,
            auto_answer: false,
        };
        link.to_page.send(ring).await.unwrap();
        assert_eq!(
            next_phone_frame(&mut page).await,
            json!({ "type": "ring", "leg": 3, "caller": "+36209990000", "call_id": "c-17", "resume": false, "auto_answer": false })
        );
        for (news, json) in [
            (
                PhoneToPage::Connected { leg: 3 },
                json!({ "type": "connected", "leg": 3 }),
            ),
            (
                PhoneToPage::Ended {
                    leg: 3,
                    reason: "the caller hung up".into(),
                },
                json!({ "type": "ended", "leg": 3, "reason": "the caller hung up" }),
            ),
            (
                PhoneToPage::Error {
                    leg: Some(3),
                    message: "no audio".into(),
                },
                json!({ "type": "error", "leg": 3, "message": "no audio" }),
            ),
        ] {
            link.to_page.send(news).await.unwrap();
            assert_eq!(next_phone_frame(&mut page).await, json);
        }
    }

    #[tokio::test]
    async fn each_tab_is_a_page_of_its_own_and_the_phone_hears_when_it_closes() {
        let (addr, phones, anna) = setup().await;
        let mut first = tab(addr, &anna).await;
        let mut second = tab(addr, &anna).await;
        say(&mut first, r#"{"type":"use_browser","on":true}"#).await;
        next_phone_frame(&mut first).await;
        let first_id = last_page(&phones);
        say(&mut second, r#"{"type":"use_browser","on":true}"#).await;
        next_phone_frame(&mut second).await;
        let second_id = last_page(&phones);
        assert_ne!(first_id, second_id);

        first.close(None).await.unwrap();
        eventually("the first tab closed", || {
            phones.closed_pages() == [("anna".to_string(), first_id)]
        })
        .await;
        // A tab that goes away without a close frame (the network is lost) closes too.
        drop(second);
        eventually("the second tab closed", || phones.closed_pages().len() == 2).await;
        assert_eq!(phones.closed_pages()[1], ("anna".to_string(), second_id));
        // The page's link is dead: news for it go nowhere.
        let link = phones.page(first_id).unwrap();
        assert!(
            link.to_page
                .send(PhoneToPage::Connected { leg: 1 })
                .await
                .is_err()
        );
    }
}
