//! Attachments both ways: at most 5 per message and 20 MB each, text, PDF or an image
//! (checked by content, never by name), refused while they stream in when too big, kept
//! under an unguessable id and served only to the chat's own people.

use axum::extract::Multipart;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_core::chat::{
    ChatFile, MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE, NewChatFile, Sender, new_file_id,
};

use crate::console::{Console, unix_ms};

fn dir(console: &Console) -> std::path::PathBuf {
    console.visual.files_dir.join("chat")
}

/// What a file's bytes are, if we take it: images, PDF, and UTF-8 text (`text/plain`,
/// served as UTF-8).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if let Some(kind) = infer::get(bytes) {
        return match kind.mime_type() {
            "image/png" => Some("image/png"),
            "image/jpeg" => Some("image/jpeg"),
            "image/gif" => Some("image/gif"),
            "image/webp" => Some("image/webp"),
            "application/pdf" => Some("application/pdf"),
            _ => None,
        };
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let binary = text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
    (!binary).then_some("text/plain")
}

type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    (status, message.into())
}

/// Reads the `file` parts (and an operator's `private` field), checks and stores each.
pub async fn receive(
    console: &Console,
    chat_id: i64,
    sender: Sender,
    mut multipart: Multipart,
) -> Result<Vec<ChatFile>, Refusal> {
    let mut private = false;
    let mut received: Vec<(String, String, Vec<u8>)> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("the upload broke off: {e}"),
                ));
            }
        };
        match field.name() {
            Some("private") => {
                private = field.text().await.map(|t| t.trim() == "1").unwrap_or(false);
            }
            Some("file") => {
                if received.len() == MAX_FILES_PER_MESSAGE {
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
                let mut field = field;
                let mut bytes = Vec::new();
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if (bytes.len() + chunk.len()) as i64 > MAX_FILE_BYTES {
                                return Err(refuse(
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    format!("{name} is larger than 20 MB"),
                                ));
                            }
                            bytes.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            return Err(refuse(
                                StatusCode::BAD_REQUEST,
                                format!("the upload of {name} broke off: {e}"),
                            ));
                        }
                    }
                }
                if bytes.is_empty() {
                    return Err(refuse(StatusCode::BAD_REQUEST, format!("{name} is empty")));
                }
                let Some(content_type) = sniff(&bytes) else {
                    return Err(refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!(
                            "{name}: only text, PDF and images (PNG, JPEG, GIF, WebP) can be sent"
                        ),
                    ));
                };
                received.push((name, content_type.to_string(), bytes));
            }
            _ => {}
        }
    }
    if received.is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "no file was sent"));
    }
    let dir = dir(console);
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        tracing::error!("chat files: creating {}: {e}", dir.display());
        return Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the file could not be stored",
        ));
    }
    let mut stored = Vec::new();
    for (name, content_type, bytes) in received {
        let id = new_file_id();
        if let Err(e) = tokio::fs::write(dir.join(&id), &bytes).await {
            tracing::error!("chat files: writing {id}: {e}");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be stored",
            ));
        }
        let file = NewChatFile {
            id,
            chat_id,
            name,
            content_type,
            size: bytes.len() as i64,
            private,
            uploaded_by: sender.clone(),
            now_ms: unix_ms(),
        };
        match console.store.add_chat_file(&file).await {
            Ok(f) => stored.push(f),
            Err(e) => {
                let _ = tokio::fs::remove_file(dir.join(&file.id)).await;
                return Err(refuse(StatusCode::BAD_REQUEST, super::error_message(&e)));
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
pub async fn serve(console: &Console, file: &ChatFile) -> Response {
    let bytes = match tokio::fs::read(dir(console).join(&file.id)).await {
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
