//! Recorded calls for supervisors (PRODUCT S2): a day's recordings with their marks,
//! played in the page (an `<audio>` element; the file is served with byte ranges, so it
//! seeks) or downloaded. Operators get 403. Every playback, download and refusal goes to
//! the recordings' audit log, and the page shows its newest entries.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use hotline_core::recordings::{Recording, RecordingAccess, RecordingStatus};
use hotline_core::users::{Role, WebSession};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::reports::duration;
use crate::auth::{Csrf, OperatorPage, SupervisorPage};
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;
use crate::telephony::Supervisor;

/// Most recordings one day's page lists.
const DAY_LIMIT: i64 = 500;
/// Audit log entries shown.
const LOG_SHOWN: i64 = 20;
/// The most bytes one ranged answer carries (a browser asks again for the rest).
const MAX_RANGE: u64 = 4 << 20;

#[derive(serde::Deserialize)]
pub(super) struct DayQuery {
    day: Option<String>,
}

/// GET /supervisor/recordings?day=YYYY-MM-DD: the day's recordings, newest first.
pub(super) async fn page(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
    Query(q): Query<DayQuery>,
) -> Response {
    let today = super::reports::today(&state);
    let day = match q.day.as_deref().map(str::trim) {
        None | Some("") => today,
        Some(v) => match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                return WebError::page(StatusCode::BAD_REQUEST, "Choose a day as YYYY-MM-DD.")
                    .into_response();
            }
        },
    };
    let Some((from, to)) = hotline_core::reports::day_bounds(&state.settings.time_zone, day) else {
        return WebError::page(StatusCode::BAD_REQUEST, "That day does not exist here.")
            .into_response();
    };
    let (rows, log) = match tokio::try_join!(
        state.store.recordings_between(from, to, DAY_LIMIT),
        state.store.recording_log(LOG_SHOWN),
    ) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("reading recordings: {e}");
            return WebError::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The recordings cannot be read now; try again.",
            )
            .into_response();
        }
    };
    let mut shown = Vec::with_capacity(rows.len());
    for r in rows {
        let marks = r.marks;
        shown.push(minijinja::context! {
            id => r.id,
            started => state.local_time(r.started_at_ms),
            caller => r.caller,
            operator => r.operator,
            queue => r.queue,
            started_by => r.started_by,
            layout => r.layout,
            duration => r.duration_ms.map(duration),
            size => r.bytes.map(|b| format!("{:.1} MB", b as f64 / 1_000_000.0)),
            status => r.status.as_str(),
            playable => matches!(r.status, RecordingStatus::Complete | RecordingStatus::Repaired),
            marks => marks.into_iter().map(|m| minijinja::context! {
                at => m.offset_ms as f64 / 1000.0,
                clock => duration(m.offset_ms),
                label => m.label,
            }).collect::<Vec<_>>(),
        });
    }
    let log: Vec<_> = log
        .into_iter()
        .map(|e| {
            minijinja::context! {
                at => state.local_time(e.at_ms),
                user => e.user.unwrap_or_else(|| "(Hotline)".into()),
                recording => e.recording_id,
                action => e.action,
                detail => e.detail,
            }
        })
        .collect();
    state.render(
        "recordings.html",
        minijinja::context! {
            me => me(&s),
            day => day.to_string(),
            recordings => shown,
            log => log,
        },
    )
}

/// GET /supervisor/recordings/{id}/audio: the file for the page's player, with ranges.
pub(super) async fn audio(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &s, id, &headers, false).await
}

/// GET /supervisor/recordings/{id}/download: the whole file, as an attachment.
pub(super) async fn download(
    State(state): State<Arc<WebState>>,
    OperatorPage(s): OperatorPage,
    Path(id): Path<i64>,
) -> Response {
    serve(&state, &s, id, &HeaderMap::new(), true).await
}

async fn serve(
    state: &WebState,
    s: &WebSession,
    id: i64,
    headers: &HeaderMap,
    download: bool,
) -> Response {
    let action = if download { "download" } else { "play" };
    let rec = match state.store.recording(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return WebError::page(StatusCode::NOT_FOUND, "There is no such recording.")
                .into_response();
        }
        Err(e) => {
            tracing::warn!(id, "reading a recording: {e}");
            return WebError::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The recording cannot be read now; try again.",
            )
            .into_response();
        }
    };
    if !s.user.role.allows(Role::Supervisor) {
        log(
            state,
            s,
            &rec,
            "refused",
            Some(format!("{action} by an operator")),
        )
        .await;
        return WebError::page(
            StatusCode::FORBIDDEN,
            "Only supervisors may play or download recordings.",
        )
        .into_response();
    }
    if !matches!(
        rec.status,
        RecordingStatus::Complete | RecordingStatus::Repaired
    ) {
        let why = match rec.status {
            RecordingStatus::Purged => "This recording was deleted when its time was up.",
            _ => "This call is still being recorded; it can be played when it ends.",
        };
        return WebError::page(StatusCode::CONFLICT, why).into_response();
    }
    let path = state.settings.recordings_dir.join(&rec.path);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(id, path = %path.display(), "opening a recording: {e}");
            return WebError::page(StatusCode::NOT_FOUND, "The recording's file is missing.")
                .into_response();
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => {
            return WebError::page(StatusCode::NOT_FOUND, "The recording's file is missing.")
                .into_response();
        }
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match parse_range(v, len) {
            Some(r) => Some(r),
            None => {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::RANGE_NOT_SATISFIABLE.into_response());
            }
        },
    };
    // One line per playback: the player's first request, not each range it asks for.
    if range.is_none_or(|(start, _)| start == 0) {
        log(state, s, &rec, action, None).await;
    }
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let (status, end) = match range {
        Some(_) => (StatusCode::PARTIAL_CONTENT, end.min(start + MAX_RANGE - 1)),
        None => (StatusCode::OK, end),
    };
    let count = if len == 0 { 0 } else { end + 1 - start };
    if file.seek(SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // Whole files stream; ranges are small.
    let body = Body::from_stream(tokio_util_stream(file.take(count)));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if range.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if download {
        let name = format!("recording-{}-{}.wav", rec.id, rec.started_at_ms);
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// Reads `r` in chunks as a body stream.
fn tokio_util_stream(
    r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `len` bytes, as
/// inclusive (first, last); `None`: not one this file can satisfy.
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

async fn log(
    state: &WebState,
    s: &WebSession,
    rec: &Recording,
    action: &str,
    detail: Option<String>,
) {
    let entry = RecordingAccess {
        at_ms: crate::unix_ms(),
        user: Some(s.user.name.clone()),
        recording_id: rec.id,
        call_id: rec.call_id.clone(),
        action: action.to_string(),
        detail,
    };
    if let Err(e) = state.store.log_recording_access(&entry).await {
        tracing::warn!(id = rec.id, action, "recording access NOT logged: {e}");
    }
}

#[derive(serde::Deserialize)]
pub(super) struct RecordBody {
    call_id: String,
    on: bool,
}

/// POST /supervisor/record `{"call_id", "on"}`: start or stop recording a call whose
/// queue records on demand.
pub(super) async fn record(
    State(state): State<Arc<WebState>>,
    Csrf(SupervisorPage(s)): Csrf<SupervisorPage>,
    body: Result<Json<RecordBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let refuse =
        |status, message: &str| WebError::json(status, message.to_string()).into_response();
    let Ok(Json(body)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            r#"send {"call_id": "…", "on": true|false}"#,
        );
    };
    let who = Supervisor {
        user: &s.user.name,
        admin: s.user.role.allows(Role::Admin),
        operator: s.user.operator.as_deref().unwrap_or(""),
    };
    match state
        .telephony
        .record_call(who, &body.call_id, body.on)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refuse(StatusCode::CONFLICT, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use axum::http::Request;
    use hotline_core::recordings::NewRecording;

    /// A complete recording of 8000 bytes of audio (after its 44-byte header) started
    /// at noon UTC on 2026-12-07, with two marks; its id.
    async fn recorded(store: &hotline_core::store::Store, dir: &std::path::Path) -> i64 {
        let mut wav = b"RIFF".to_vec();
        wav.resize(44, 0);
        // ASCII, so the test's replies read as text unchanged.
        wav.extend((0..8000u32).map(|i| (32 + i % 90) as u8));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("r.wav"), &wav).unwrap();
        let id = store
            .insert_recording(&NewRecording {
                call_id: "c1",
                caller: "+36301234567",
                operator: Some("anna"),
                queue: Some("support"),
                path: "r.wav",
                layout: "mono",
                started_by: None,
                started_at_ms: 1_796_644_800_000,
            })
            .await
            .unwrap();
        store
            .add_recording_mark(id, 0, "talking with anna")
            .await
            .unwrap();
        store
            .add_recording_mark(id, 61_500, "on hold (anna)")
            .await
            .unwrap();
        store
            .finish_recording(id, 1_796_644_900_000, 1000, 8044, RecordingStatus::Complete)
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn supervisors_play_seek_and_download_recordings_and_operators_may_not() {
        let store = testing::store().await;
        let dir = std::env::temp_dir().join(format!("hotline-web-rec-{}", std::process::id()));
        let id = recorded(&store, &dir).await;
        let app = testing::state(&store).recordings_dir(dir.clone()).app();
        let sup = testing::login(&store, "sara", Role::Supervisor).await;
        let op = testing::login(&store, "olga", Role::Operator).await;

        let (status, page) =
            testing::get_page(&app, &sup.cookie, "/supervisor/recordings?day=2026-12-07").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains(&format!("src=\"/supervisor/recordings/{id}/audio\"")),
            "{page}"
        );
        assert!(
            page.contains("data-at=\"61.5\">1:01 on hold (anna)"),
            "{page}"
        );
        let (_, other_day) =
            testing::get_page(&app, &sup.cookie, "/supervisor/recordings?day=2026-12-06").await;
        assert!(other_day.contains("No calls were recorded on 2026-12-06."));

        let get = |who: &testing::Login, uri: String, range: Option<&str>| {
            let mut req = Request::get(uri).header("cookie", &who.cookie);
            if let Some(r) = range {
                req = req.header("range", r);
            }
            testing::send(&app, req.body(Body::empty()).unwrap())
        };
        // The player's first request, then a seek into the middle.
        let whole = get(&sup, format!("/supervisor/recordings/{id}/audio"), None).await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.header("content-type").as_deref(), Some("audio/wav"));
        assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
        assert_eq!(whole.text.len(), 8044);
        let part = get(
            &sup,
            format!("/supervisor/recordings/{id}/audio"),
            Some("bytes=4044-4047"),
        )
        .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.header("content-range").as_deref(),
            Some("bytes 4044-4047/8044")
        );
        assert_eq!(
            part.text.as_bytes(),
            [4000u32, 4001, 4002, 4003].map(|i| (32 + i % 90) as u8)
        );
        let past = get(
            &sup,
            format!("/supervisor/recordings/{id}/audio"),
            Some("bytes=9000-"),
        )
        .await;
        assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
        let file = get(&sup, format!("/supervisor/recordings/{id}/download"), None).await;
        assert_eq!(file.status, StatusCode::OK);
        assert!(
            file.header("content-disposition")
                .unwrap()
                .starts_with("attachment;")
        );

        // An operator gets 403, and the attempt is logged too.
        for what in ["audio", "download"] {
            let refused = get(&op, format!("/supervisor/recordings/{id}/{what}"), None).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{what}");
        }
        let (status, _) = testing::get_page(&app, &op.cookie, "/supervisor/recordings").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let missing = get(&sup, "/supervisor/recordings/999/audio".into(), None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        let log: Vec<(String, String)> = store
            .recording_log(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.user.unwrap_or_default(), e.action))
            .collect();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        // Newest first: one "play" for the player (its seek is not another playback).
        assert_eq!(
            log,
            pairs(&[
                ("olga", "refused"),
                ("olga", "refused"),
                ("sara", "download"),
                ("sara", "play"),
            ])
        );
        let (_, page) =
            testing::get_page(&app, &sup.cookie, "/supervisor/recordings?day=2026-12-07").await;
        assert!(page.contains("refused (download by an operator)"), "{page}");
    }

    #[test]
    fn ranges_are_read_as_browsers_send_them() {
        assert_eq!(parse_range("bytes=0-", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=10-19", 100), Some((10, 19)));
        assert_eq!(parse_range("bytes=90-200", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-4", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
    }
}
