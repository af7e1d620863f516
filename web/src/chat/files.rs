//! Attachments both ways: at most 5 per message and 20 MB each, text, PDF or an image
//! (checked by content, never by name), kept under an unguessable id and served only to
//! the chat's own people.
//!
//! An upload is streamed to a part file beside the others as it arrives: its size (per
//! file and against the chat's quota, `chat.files_quota_mb`) and its kind are checked
//! chunk by chunk, and it is refused (413, 415) the moment it fails, so no upload is ever
//! held whole in memory. A file becomes visible (renamed, recorded) only when complete.

use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_core::chat::{
    ChatError, ChatFile, MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE, NewChatFile, Sender, new_file_id,
};
use tokio::io::AsyncWriteExt;

use crate::state::WebState;
use crate::unix_ms;

pub(crate) fn dir(state: &WebState) -> PathBuf {
    state.settings.files_dir.join("chat")
}

/// Bytes from the start of a file that its kind is told by (`infer` reads far less).
const HEAD_BYTES: usize = 8 * 1024;

/// What a file's first bytes say it is, if we take it: images and PDF. `None` with
/// `false`: a kind we don't take; `None` with `true`: unknown (text, if it reads as text).
fn sniff_binary(head: &[u8]) -> (Option<&'static str>, bool) {
    match infer::get(head).map(|k| k.mime_type()) {
        Some("image/png") => (Some("image/png"), true),
        Some("image/jpeg") => (Some("image/jpeg"), true),
        Some("image/gif") => (Some("image/gif"), true),
        Some("image/webp") => (Some("image/webp"), true),
        Some("application/pdf") => (Some("application/pdf"), true),
        Some(_) => (None, false),
        None => (None, true),
    }
}

/// Whether a file is UTF-8 text (`text/plain`): checked as it streams, a character may
/// span two chunks. Control characters other than line breaks, tabs and form feeds make
/// it binary.
struct TextCheck {
    ok: bool,
    /// The start of a character cut off at the end of the last chunk (at most 3 bytes).
    carry: Vec<u8>,
}

impl TextCheck {
    fn new() -> TextCheck {
        TextCheck {
            ok: true,
            carry: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if !self.ok {
            return;
        }
        let joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            let mut j = std::mem::take(&mut self.carry);
            j.extend_from_slice(chunk);
            joined = j;
            &joined[..]
        };
        let (text, rest) = match std::str::from_utf8(bytes) {
            Ok(t) => (t, &[][..]),
            // Cut off mid-character at the end: keep that for the next chunk.
            Err(e) if e.error_len().is_none() => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                (std::str::from_utf8(valid).unwrap_or_default(), rest)
            }
            Err(_) => {
                self.ok = false;
                return;
            }
        };
        self.ok = !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
        self.carry = rest.to_vec();
    }

    fn is_text(&self) -> bool {
        self.ok && self.carry.is_empty()
    }
}

type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    (status, message.into())
}

fn store_failed(what: &str, e: impl std::fmt::Display) -> Refusal {
    tracing::error!("chat files: {what}: {e}");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the file could not be stored",
    )
}

/// A file received into its part file.
struct Part {
    id: String,
    name: String,
    content_type: &'static str,
    size: i64,
    path: PathBuf,
}

fn part_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.part"))
}

fn over_quota(quota: i64) -> Refusal {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "This chat's files may have at most {} MB together; no more can be sent.",
            quota / 1024 / 1024
        ),
    )
}

/// Reads the `file` parts (and an operator's `private` field), checks and stores each.
pub async fn receive(
    state: &WebState,
    chat_id: i64,
    sender: Sender,
    multipart: Multipart,
) -> Result<Vec<ChatFile>, Refusal> {
    let quota = state.chat.config.files_quota_bytes();
    let used = state
        .store
        .chat_files_bytes(chat_id)
        .await
        .map_err(|e| store_failed("reading the chat's files", super::error_message(&e)))?;
    // Full already: refused before a byte of the body is read.
    if used >= quota {
        return Err(over_quota(quota));
    }
    let dir = dir(state);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| store_failed(&format!("creating {}", dir.display()), e))?;
    let mut parts = Vec::new();
    let received = receive_parts(&dir, quota, quota - used, multipart, &mut parts).await;
    let stored = match received {
        Ok(private) => record(state, chat_id, &sender, private, quota, &dir, &parts).await,
        Err(r) => Err(r),
    };
    // Whatever was not made a file is removed (refused, or cut off).
    for p in &parts {
        let _ = tokio::fs::remove_file(&p.path).await;
    }
    stored
}

/// Streams each `file` field into a part file (listed in `parts` as soon as it exists,
/// so the caller removes it whatever happens). Returns the `private` field.
async fn receive_parts(
    dir: &Path,
    quota: i64,
    room: i64,
    mut multipart: Multipart,
    parts: &mut Vec<Part>,
) -> Result<bool, Refusal> {
    let mut private = false;
    let mut total: i64 = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(refuse(
                    e.status(),
                    format!("the upload broke off: {}", e.body_text()),
                ));
            }
        };
        match field.name() {
            Some("private") => {
                private = field.text().await.map(|t| t.trim() == "1").unwrap_or(false);
                continue;
            }
            Some("file") => {}
            _ => continue,
        }
        if parts.len() == MAX_FILES_PER_MESSAGE {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("at most {MAX_FILES_PER_MESSAGE} files per message"),
            ));
        }
        let name = field
            .file_name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "file".to_string());
        let id = new_file_id();
        let path = part_path(dir, &id);
        let mut out = tokio::fs::File::create(&path)
            .await
            .map_err(|e| store_failed(&format!("creating {}", path.display()), e))?;
        parts.push(Part {
            id,
            name: name.clone(),
            content_type: "",
            size: 0,
            path: path.clone(),
        });
        let mut size: i64 = 0;
        let mut head: Vec<u8> = Vec::new();
        let mut kind: Option<(Option<&'static str>, bool)> = None;
        let mut text = TextCheck::new();
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(refuse(
                        e.status(),
                        format!("the upload of {name} broke off: {}", e.body_text()),
                    ));
                }
            };
            let n = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            size = size.saturating_add(n);
            total = total.saturating_add(n);
            if size > MAX_FILE_BYTES {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("{name} is larger than {} MB", MAX_FILE_BYTES / 1024 / 1024),
                ));
            }
            if total > room {
                return Err(over_quota(quota));
            }
            if kind.is_none() {
                let take = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() == HEAD_BYTES {
                    kind = Some(sniff_binary(&head));
                }
            }
            if kind.is_none_or(|(mime, _)| mime.is_none()) {
                text.feed(&chunk);
            }
            // Refused as soon as it can't be anything we take.
            if let Some((None, allowed)) = kind
                && (!allowed || !text.ok)
            {
                return Err(unsupported(&name));
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| store_failed(&format!("writing {}", path.display()), e))?;
        }
        out.flush()
            .await
            .map_err(|e| store_failed(&format!("writing {}", path.display()), e))?;
        drop(out);
        if size == 0 {
            return Err(refuse(StatusCode::BAD_REQUEST, format!("{name} is empty")));
        }
        let content_type = match kind.unwrap_or_else(|| sniff_binary(&head)) {
            (Some(mime), _) => mime,
            (None, true) if text.is_text() => "text/plain",
            _ => return Err(unsupported(&name)),
        };
        if let Some(p) = parts.last_mut() {
            p.content_type = content_type;
            p.size = size;
        }
    }
    if parts.is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "no file was sent"));
    }
    Ok(private)
}

fn unsupported(name: &str) -> Refusal {
    refuse(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("{name}: only text, PDF and images (PNG, JPEG, GIF, WebP) can be sent"),
    )
}

/// Makes the received parts files: each renamed to its id, then recorded (within the
/// chat's quota, counted again under the chat's lock against parallel uploads).
async fn record(
    state: &WebState,
    chat_id: i64,
    sender: &Sender,
    private: bool,
    quota: i64,
    dir: &Path,
    parts: &[Part],
) -> Result<Vec<ChatFile>, Refusal> {
    let mut stored = Vec::new();
    for p in parts {
        let file_path = dir.join(&p.id);
        tokio::fs::rename(&p.path, &file_path)
            .await
            .map_err(|e| store_failed(&format!("renaming {}", p.path.display()), e))?;
        let file = NewChatFile {
            id: p.id.clone(),
            chat_id,
            name: p.name.clone(),
            content_type: p.content_type.to_string(),
            size: p.size,
            private,
            uploaded_by: sender.clone(),
            now_ms: unix_ms(),
        };
        match state.store.add_chat_file_within(&file, quota).await {
            Ok(f) => stored.push(f),
            Err(e) => {
                let _ = tokio::fs::remove_file(&file_path).await;
                return Err(match e {
                    ChatError::OverQuota(_) => over_quota(quota),
                    other => refuse(StatusCode::BAD_REQUEST, super::error_message(&other)),
                });
            }
        }
    }
    Ok(stored)
}

pub fn files_json(files: &[ChatFile]) -> serde_json::Value {
    serde_json::json!({
        "files": files.iter().map(|f| serde_json::json!({
            "id": f.id, "name": f.name, "type": f.content_type, "size": f.size,
        })).collect::<Vec<_>>()
    })
}

/// The file's bytes: inline for pictures, a download for anything else, never sniffed
/// by the browser (an uploaded page must not run on our origin).
pub async fn serve(state: &WebState, file: &ChatFile) -> Response {
    let bytes = match tokio::fs::read(dir(state).join(&file.id)).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let inline = file.content_type.starts_with("image/");
    let safe_name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = if inline {
        format!("inline; filename=\"{safe_name}\"")
    } else {
        format!("attachment; filename=\"{safe_name}\"")
    };
    (
        [
            (
                header::CONTENT_TYPE,
                if file.content_type == "text/plain" {
                    "text/plain; charset=utf-8".to_string()
                } else {
                    file.content_type.clone()
                },
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        bytes,
    )
        .into_response()
}
