//! `hotline backup DIR` and `hotline restore DIR`: a copy an admin can restore from.
//!
//! A backup directory holds the SQLite database as `VACUUM INTO` wrote it (one read
//! transaction: consistent, and the running daemon's writer goes on), the state
//! directory's other files under `state/` (chat and visual-session uploads in `files/`,
//! the call-record journals, the node id), and `MANIFEST` (TOML: each file's size and
//! SHA-256, the schema version, the Hotline version, the time), written last: a directory
//! without it is an unfinished backup. With PostgreSQL the database is `pg_dump`'s job;
//! the command is printed and the files are copied the same way.
//!
//! A restore refuses while a daemon runs, checks every file against the manifest before it
//! touches anything, refuses a schema newer than this binary's migrations, and writes each
//! file beside its place and renames it there, so no file is ever half written.

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::path::{Component, Path, PathBuf};

use hotline_core::store::{self, Backend, Store, StoreError};
use hotline_core::tokens::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, ProcessEnv};

pub const MANIFEST: &str = "MANIFEST";
/// The database's name in a backup directory.
const DATABASE: &str = "hotline.db";
/// The state directory's files go under this folder of the backup.
const STATE: &str = "state";
/// A file being restored, beside its place until it is complete.
const PARTIAL: &str = ".hotline-restore";
/// The manifest's format.
const FORMAT: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} is not empty: a backup goes into a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "no {MANIFEST} in {}: not a Hotline backup, or one that did not finish",
        .0.display()
    )]
    NoManifest(PathBuf),
    #[error("{}: {message}", .path.display())]
    BadManifest { path: PathBuf, message: String },
    #[error(
        "the backup's schema version {found} is newer than this Hotline's ({known}): \
         restore it with the Hotline version that made it ({version})"
    )]
    NewerSchema {
        found: i64,
        known: i64,
        version: String,
    },
    #[error("{}: {what}; the backup is damaged, nothing was restored", .path.display())]
    Damaged { path: PathBuf, what: String },
    #[error("hotline is running (its control socket {} answers): stop it first", .0.display())]
    DaemonRunning(PathBuf),
    #[error("the database {} is in use (a running daemon?): stop it first", .0.display())]
    DatabaseInUse(PathBuf),
    #[error("{0}")]
    Mismatch(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_manifest(path: PathBuf, message: impl Into<String>) -> BackupError {
    BackupError::BadManifest {
        path,
        message: message.into(),
    }
}

/// What a backup holds, as `MANIFEST`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: i64,
    pub hotline_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `sqlite` (the database is `hotline.db` here) or `postgres` (backed up by pg_dump).
    pub database: String,
    /// The newest migration applied to the database.
    pub schema_version: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup directory: `hotline.db` or `state/…`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Where the daemon keeps its data, from the settings.
pub struct Target {
    pub state_dir: PathBuf,
    pub database_url: String,
    /// Where a running daemon's control socket would be.
    pub sockets: Vec<PathBuf>,
}

impl Target {
    fn from_config(config: &Config) -> Target {
        let runtime_dir: Option<OsString> = std::env::var_os("RUNTIME_DIRECTORY");
        Target {
            state_dir: config.state_dir.clone(),
            database_url: config.database_url.clone(),
            sockets: crate::control::client_paths(&config.state_dir, runtime_dir.as_ref()),
        }
    }

    /// The SQLite file (None with PostgreSQL).
    fn sqlite_file(&self) -> Result<Option<PathBuf>, BackupError> {
        Ok(match Backend::from_url(&self.database_url)? {
            Backend::Sqlite => store::sqlite_file(&self.database_url)?,
            Backend::Postgres => None,
        })
    }
}

pub async fn backup(config_path: Option<&Path>, dir: &Path) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let manifest = run_backup(&Target::from_config(&config), dir)
        .await
        .map_err(|e| e.to_string())?;
    if manifest.database == "postgres" {
        println!(
            "the PostgreSQL database is not in this backup: back it up with pg_dump (the \
             password from ~/.pgpass or PGPASSWORD):\n  {}",
            pg_command("pg_dump", &config.database_url, dir)
        );
    }
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    println!(
        "backed up to {}: {} files, {bytes} bytes, schema version {} ({} lists them)",
        dir.display(),
        manifest.files.len(),
        manifest.schema_version,
        dir.join(MANIFEST).display()
    );
    Ok(())
}

pub async fn restore(config_path: Option<&Path>, dir: &Path) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let manifest = run_restore(&Target::from_config(&config), dir)
        .await
        .map_err(|e| e.to_string())?;
    let files = manifest.files.iter().filter(|f| f.path != DATABASE).count();
    if manifest.database == "sqlite" {
        println!(
            "restored the database (schema version {}) to {}",
            manifest.schema_version,
            store::sqlite_file(&config.database_url)
                .ok()
                .flatten()
                .map_or_else(|| config.database_url.clone(), |f| f.display().to_string())
        );
    } else {
        println!(
            "the PostgreSQL database is restored with pg_restore (the backup holds no \
             database):\n  {}",
            pg_command("pg_restore", &config.database_url, dir)
        );
    }
    println!(
        "restored {files} files into {} from the backup of {} (Hotline {})",
        config.state_dir.display(),
        manifest.created_at,
        manifest.hotline_version
    );
    Ok(())
}

/// Makes the backup in `dir` (new or empty) and returns its manifest.
pub async fn run_backup(target: &Target, dir: &Path) -> Result<Manifest, BackupError> {
    prepare_empty(dir)?;
    let db_file = target.sqlite_file()?;
    let store = Store::open_existing(&target.database_url).await?;
    let schema_version = store.schema_version().await;
    let copied = match (&schema_version, &db_file) {
        (Ok(_), Some(_)) => store.vacuum_into(&dir.join(DATABASE)).await,
        _ => Ok(()),
    };
    store.close().await;
    let schema_version = schema_version?;
    copied?;

    let mut files = Vec::new();
    if db_file.is_some() {
        let path = dir.join(DATABASE);
        let (size, sha256) = hash_file(&path)?;
        files.push(FileEntry {
            path: DATABASE.into(),
            size,
            sha256,
        });
    }
    let skip = Skip::new(db_file.as_deref(), dir);
    for rel in state_files(&target.state_dir, &skip)? {
        let from = target.state_dir.join(&rel);
        let to = dir.join(STATE).join(&rel);
        // A file removed since the listing (a swept upload) is simply not in the backup.
        let Some((size, sha256)) = copy_file(&from, &to)? else {
            continue;
        };
        files.push(FileEntry {
            path: manifest_path(&Path::new(STATE).join(&rel))?,
            size,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        hotline_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        database: if db_file.is_some() {
            "sqlite"
        } else {
            "postgres"
        }
        .into(),
        schema_version,
        files,
    };
    let text =
        toml::to_string(&manifest).map_err(|e| bad_manifest(dir.join(MANIFEST), e.to_string()))?;
    let text = format!(
        "# A Hotline backup: `hotline restore {}` puts it back.\n{text}",
        dir.display()
    );
    write_atomically(&dir.join(MANIFEST), text.as_bytes())?;
    sync_dir(dir)?;
    Ok(manifest)
}

/// Puts the backup in `dir` back and returns its manifest.
pub async fn run_restore(target: &Target, dir: &Path) -> Result<Manifest, BackupError> {
    for socket in &target.sockets {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(_) => return Err(BackupError::DaemonRunning(socket.clone())),
            // Only a running daemon's user (or root) may connect: it is there all the same.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Err(BackupError::DaemonRunning(socket.clone()));
            }
            Err(_) => {}
        }
    }
    let manifest = read_manifest(dir)?;
    let backend = match manifest.database.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => {
            return Err(bad_manifest(
                dir.join(MANIFEST),
                format!("unknown database {other:?}"),
            ));
        }
    };
    let known = store::known_schema_version(backend);
    if manifest.schema_version > known {
        return Err(BackupError::NewerSchema {
            found: manifest.schema_version,
            known,
            version: manifest.hotline_version.clone(),
        });
    }
    let db_file = target.sqlite_file()?;
    let db_file = match (backend, db_file) {
        (Backend::Sqlite, Some(f)) => Some(f),
        (Backend::Sqlite, None) => {
            return Err(BackupError::Mismatch(format!(
                "the backup holds a SQLite database, but the settings use {}",
                store::redact(&target.database_url)
            )));
        }
        (Backend::Postgres, _) => None,
    };
    if let Some(file) = &db_file
        && store::sqlite_file_in_use(file).await?
    {
        return Err(BackupError::DatabaseInUse(file.clone()));
    }
    // Restored files belong to whoever owns the state directory (the daemon's user), not
    // to root running this command.
    let owner =
        owner_of(&target.state_dir).or_else(|| target.state_dir.parent().and_then(owner_of));
    // Every file checked before any is written: a damaged backup changes nothing.
    let mut places = Vec::new();
    for entry in &manifest.files {
        let rel = relative(dir, &entry.path)?;
        let from = dir.join(&rel);
        let (size, sha256) = hash_file(&from)?;
        if size != entry.size || sha256 != entry.sha256 {
            return Err(BackupError::Damaged {
                path: from,
                what: format!(
                    "{size} bytes with SHA-256 {sha256}, the manifest says {} bytes with {}",
                    entry.size, entry.sha256
                ),
            });
        }
        let to = if entry.path == DATABASE {
            match &db_file {
                Some(f) => f.clone(),
                None => {
                    return Err(bad_manifest(
                        dir.join(MANIFEST),
                        "hotline.db in a PostgreSQL backup",
                    ));
                }
            }
        } else {
            match rel.strip_prefix(STATE) {
                Ok(r) => target.state_dir.join(r),
                Err(_) => {
                    return Err(bad_manifest(
                        dir.join(MANIFEST),
                        format!("{:?} is neither {DATABASE} nor under {STATE}/", entry.path),
                    ));
                }
            }
        };
        places.push((from, to, entry.path == DATABASE));
    }
    for (from, to, is_database) in places {
        let partial = with_suffix(&to, PARTIAL);
        if copy_file(&from, &partial)?.is_none() {
            return Err(BackupError::Damaged {
                path: from,
                what: "gone while restoring".into(),
            });
        }
        if is_database {
            // The old database's WAL would be applied to the restored file: it goes first.
            for suffix in ["-wal", "-shm", "-journal"] {
                remove_if_there(&with_suffix(&to, suffix))?;
            }
        }
        adopt(&partial, owner)?;
        std::fs::rename(&partial, &to).map_err(io(&to))?;
        if let Some(parent) = to.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(manifest)
}

/// `dir` absent (created) or an empty directory.
fn prepare_empty(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        // Chat uploads and the database are private: the backup is the admin's alone.
        Err(e) if e.kind() == ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir)),
        Err(e) => Err(io(dir)(e)),
    }
}

/// What of the state directory is not copied as a file.
struct Skip {
    /// The database and its WAL, shared-memory and journal files (copied by VACUUM).
    database: Vec<PathBuf>,
    /// The backup itself, when it is made inside the state directory.
    backup: Option<PathBuf>,
}

impl Skip {
    fn new(db_file: Option<&Path>, backup: &Path) -> Skip {
        let database = db_file
            .map(|f| {
                ["", "-wal", "-shm", "-journal"]
                    .iter()
                    .filter_map(|s| canonical(&with_suffix(f, s)))
                    .collect()
            })
            .unwrap_or_default();
        Skip {
            database,
            backup: canonical(backup),
        }
    }

    fn skips(&self, path: &Path) -> bool {
        let Some(path) = canonical(path) else {
            return false;
        };
        self.database.contains(&path) || self.backup.as_ref() == Some(&path)
    }
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The state directory's regular files (relative paths, sorted): sockets, links and what
/// `skip` names left out. A missing state directory has none.
fn state_files(state_dir: &Path, skip: &Skip) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let here = state_dir.join(&rel);
        let entries = match std::fs::read_dir(&here) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound && rel.as_os_str().is_empty() => break,
            Err(e) => return Err(io(&here)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&here))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let name = entry.file_name();
            if skip.skips(&path) || name.to_string_lossy().ends_with(PARTIAL) {
                continue;
            }
            if kind.is_dir() {
                dirs.push(rel.join(&name));
            } else if kind.is_file() {
                found.push(rel.join(&name));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A relative path as the manifest writes it ('/' between parts).
fn manifest_path(rel: &Path) -> Result<String, BackupError> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    match parts {
        Some(p) if !p.iter().any(|s| s.contains('\n')) => Ok(p.join("/")),
        _ => Err(BackupError::Mismatch(format!(
            "{}: a file name a backup cannot list (not UTF-8, or a line break)",
            rel.display()
        ))),
    }
}

/// A manifest path as a path inside `dir`: relative, no `..`.
fn relative(dir: &Path, path: &str) -> Result<PathBuf, BackupError> {
    let rel = PathBuf::from(path);
    if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad_manifest(
            dir.join(MANIFEST),
            format!("{path:?} is not a plain relative path"),
        ));
    }
    Ok(rel)
}

fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(BackupError::NoManifest(dir.to_path_buf()));
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| bad_manifest(path.clone(), e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad_manifest(
            path,
            format!(
                "format {} (this Hotline reads format {FORMAT})",
                manifest.format
            ),
        ));
    }
    Ok(manifest)
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Copies `from` to the new file `to` (parents created, synced), hashing what it copies;
/// None when `from` is gone. Never replaces an existing `to` but a partial restore file.
fn copy_file(from: &Path, to: &Path) -> Result<Option<(u64, String)>, BackupError> {
    let mut src = match std::fs::File::open(from) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(from)(e)),
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let partial = to.to_string_lossy().ends_with(PARTIAL);
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create(partial)
        .truncate(partial)
        .create_new(!partial)
        .open(to)
        .map_err(io(to))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(io(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(io(to))?;
        size += n as u64;
    }
    dst.sync_all().map_err(io(to))?;
    Ok(Some((size, hex(&hasher.finalize()))))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let partial = with_suffix(path, PARTIAL);
    let mut file = std::fs::File::create(&partial).map_err(io(&partial))?;
    file.write_all(bytes).map_err(io(&partial))?;
    file.sync_all().map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

fn owner_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

/// Gives `path` (and the directories made for it) to `owner` when it is someone else's;
/// only root can, and only root needs to.
fn adopt(path: &Path, owner: Option<(u32, u32)>) -> Result<(), BackupError> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    if owner_of(path) == Some((uid, gid)) {
        return Ok(());
    }
    match std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
        Err(e) if e.kind() != ErrorKind::PermissionDenied => Err(io(path)(e)),
        _ => Ok(()),
    }
}

fn remove_if_there(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The pg_dump / pg_restore command for the settings' PostgreSQL URL, the password left
/// out (pg_dump reads it from ~/.pgpass or PGPASSWORD).
fn pg_command(program: &str, url: &str, dir: &Path) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (creds, rest) = rest.rsplit_once('@').unwrap_or(("", rest));
    let user = creds.split(':').next().unwrap_or("");
    let (host, db) = rest.split_once('/').unwrap_or((rest, ""));
    let db = db.split('?').next().unwrap_or("");
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (host, None),
    };
    let mut cmd = vec![program.to_string()];
    if !host.is_empty() {
        cmd.push(format!("--host={host}"));
    }
    if let Some(p) = port {
        cmd.push(format!("--port={p}"));
    }
    if !user.is_empty() {
        cmd.push(format!("--username={user}"));
    }
    let file = dir.join("hotline.pgdump");
    if program == "pg_dump" {
        cmd.push("--format=custom".into());
        cmd.push(format!("--file={}", file.display()));
        cmd.push(db.to_string());
    } else {
        cmd.push("--clean".into());
        cmd.push("--if-exists".into());
        cmd.push(format!("--dbname={db}"));
        cmd.push(file.display().to_string());
    }
    cmd.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::cdr::{CallEnd, CallStart};
    use hotline_core::chat::{NewChat, NewChatFile, NewVisitor, Sender};
    use hotline_core::operators::{NewOperator, SipDigest};
    use hotline_core::testing::{call_end, call_start, store_finished_call};

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("hotline-{name}-{:016x}", rand::random::<u64>()))
    }

    fn target(state_dir: &Path) -> Target {
        Target {
            state_dir: state_dir.to_path_buf(),
            database_url: format!(
                "sqlite://{}?mode=rwc",
                state_dir.join("hotline.db").display()
            ),
            sockets: vec![state_dir.join("control.sock")],
        }
    }

    /// A state directory with an operator, a finished call, a chat with an uploaded file
    /// and a call-record journal; returns the file's id.
    async fn populated(t: &Target) -> String {
        std::fs::create_dir_all(&t.state_dir).unwrap();
        let store = Store::connect(&t.database_url).await.unwrap();
        store.migrate().await.unwrap();
        store
            .add_operator(&NewOperator {
                name: "anna",
                display_name: "Anna",
                sip_user: "1001",
                realm: "hotline",
                ha1_md5: "00000000000000000000000000000000",
                ha1_sha256: "",
                sip_digest: SipDigest::Md5,
                chat_capacity: 3,
                created_at_ms: 1_000,
            })
            .await
            .unwrap();
        let start = CallStart {
            caller: "+4930123".into(),
            ..call_start("backup-call-1", 1_700_000_000_000)
        };
        let end = CallEnd {
            digits: "1".into(),
            operator: Some("anna".into()),
            ..call_end(1_700_000_060_000)
        };
        store_finished_call(&store, &start, &end).await.unwrap();
        let visitor = store
            .upsert_visitor(&NewVisitor {
                site: "demo".into(),
                visitor_key: "v1".into(),
                name: Some("Vera".into()),
                email: None,
                phone: None,
                customer_id: None,
                verified: vec![],
                now_ms: 2_000,
            })
            .await
            .unwrap();
        let (chat, _token) = store
            .create_chat(&NewChat {
                site: "demo".into(),
                visitor_id: visitor.id,
                queue: "support".into(),
                topic: String::new(),
                page_url: String::new(),
                browser: String::new(),
                os: String::new(),
                user_agent: String::new(),
                now_ms: 2_000,
            })
            .await
            .unwrap();
        let id = hotline_core::chat::new_file_id();
        store
            .add_chat_file(&NewChatFile {
                id: id.clone(),
                chat_id: chat.id,
                name: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                size: 11,
                private: false,
                uploaded_by: Sender::Visitor,
                now_ms: 2_100,
            })
            .await
            .unwrap();
        store.close().await;
        let chat_dir = t.state_dir.join("files").join("chat");
        std::fs::create_dir_all(&chat_dir).unwrap();
        std::fs::write(chat_dir.join(&id), b"%PDF-1.7 hi").unwrap();
        std::fs::write(t.state_dir.join("cdr-journal.jsonl"), b"{\"x\":1}\n").unwrap();
        id
    }

    #[tokio::test]
    async fn a_wiped_state_directory_comes_back_from_a_backup() {
        let root = temp("backup");
        let t = target(&root.join("state"));
        let file_id = populated(&t).await;
        let dir = root.join("backup");

        let manifest = run_backup(&t, &dir).await.unwrap();
        assert_eq!(manifest.database, "sqlite");
        assert_eq!(
            manifest.schema_version,
            store::known_schema_version(Backend::Sqlite)
        );
        let listed: Vec<(&str, u64)> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size))
            .collect();
        let upload = format!("state/files/chat/{file_id}");
        assert_eq!(listed[0].0, "hotline.db");
        assert_eq!(
            listed[1..],
            [("state/cdr-journal.jsonl", 8), (upload.as_str(), 11)],
            "the database's own files and nothing else are left out"
        );
        let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        assert!(text.contains(&format!("path = \"{upload}\"")), "{text}");

        // Never over an earlier backup.
        let err = run_backup(&t, &dir).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not empty: a backup goes into a new or empty directory",
                dir.display()
            )
        );

        std::fs::remove_dir_all(&t.state_dir).unwrap();
        let restored = run_restore(&t, &dir).await.unwrap();
        assert_eq!(restored.files.len(), 3);

        let store = Store::open_existing(&t.database_url).await.unwrap();
        let ops = store.operators().await.unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].name, "anna");
        let call = store
            .call_by_call_id("backup-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.operator.as_deref(), Some("anna"));
        let file = store.chat_file(&file_id).await.unwrap().unwrap();
        assert_eq!(file.name, "invoice.pdf");
        store.close().await;
        assert_eq!(
            std::fs::read(t.state_dir.join("files/chat").join(&file_id)).unwrap(),
            b"%PDF-1.7 hi"
        );
        assert_eq!(
            std::fs::read(t.state_dir.join("cdr-journal.jsonl")).unwrap(),
            b"{\"x\":1}\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn a_newer_schema_or_a_damaged_backup_is_not_restored() {
        let root = temp("backup-newer");
        let t = target(&root.join("state"));
        populated(&t).await;
        let dir = root.join("backup");
        run_backup(&t, &dir).await.unwrap();
        let db_before = std::fs::read(t.state_dir.join("hotline.db")).unwrap();

        let known = store::known_schema_version(Backend::Sqlite);
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        let newer = text.replace(
            &format!("schema_version = {known}\n"),
            &format!("schema_version = {}\n", known + 1),
        );
        assert_ne!(newer, text);
        std::fs::write(&path, &newer).unwrap();
        let err = run_restore(&t, &dir).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the backup's schema version {} is newer than this Hotline's ({known}): \
                 restore it with the Hotline version that made it ({})",
                known + 1,
                env!("CARGO_PKG_VERSION")
            )
        );

        // A file that does not match its checksum: nothing is written.
        std::fs::write(&path, &text).unwrap();
        std::fs::write(dir.join("state/cdr-journal.jsonl"), b"changed\n").unwrap();
        let err = run_restore(&t, &dir).await.unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the backup is damaged, nothing was restored"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(t.state_dir.join("hotline.db")).unwrap(),
            db_before
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn restore_refuses_while_the_database_is_open_or_the_daemon_answers() {
        let root = temp("backup-busy");
        let t = target(&root.join("state"));
        populated(&t).await;
        let dir = root.join("backup");
        // A backup while the store is open (as the daemon has it).
        let open = Store::connect(&t.database_url).await.unwrap();
        open.migrate().await.unwrap();
        run_backup(&t, &dir).await.unwrap();

        let err = run_restore(&t, &dir).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the database {} is in use (a running daemon?): stop it first",
                t.state_dir.join("hotline.db").display()
            )
        );
        open.close().await;

        let _listener = tokio::net::UnixListener::bind(&t.sockets[0]).unwrap();
        let err = run_restore(&t, &dir).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "hotline is running (its control socket {} answers): stop it first",
                t.sockets[0].display()
            )
        );
        drop(_listener);
        std::fs::remove_file(&t.sockets[0]).unwrap();
        // Stopped: the restore goes ahead.
        run_restore(&t, &dir).await.unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_pg_dump_command_names_host_and_database_but_no_password() {
        assert_eq!(
            pg_command(
                "pg_dump",
                "postgres://hl:s3cret@db.example:5433/hotline?sslmode=require",
                Path::new("/backup/today")
            ),
            "pg_dump --host=db.example --port=5433 --username=hl --format=custom \
             --file=/backup/today/hotline.pgdump hotline"
        );
        assert_eq!(
            pg_command("pg_restore", "postgres://hl@db/hotline", Path::new("/b")),
            "pg_restore --host=db --username=hl --clean --if-exists --dbname=hotline \
             /b/hotline.pgdump"
        );
    }
}
