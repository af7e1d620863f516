//! The database: one `AnyPool` for SQLite (default) and PostgreSQL (several nodes).
//!
//! Queries are runtime queries with `$1` placeholders so one binary speaks both. Columns are
//! portable (BIGINT ids, unix-millisecond times, TEXT) because booleans and floats don't
//! round-trip through `Any`. Migrations are embedded and run at start.

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?}: only sqlite: and postgres: URLs are supported")]
    UnsupportedUrl(String),
    #[error("connecting to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    /// `open_existing`: the SQLite file is not there.
    #[error("no database at {url}")]
    Missing { url: String },
    /// `open_existing`: the database has no Hotline schema (never migrated).
    #[error("no Hotline schema in {url}")]
    NotMigrated { url: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// For the hot reads (chat events, a chat's row, who is in it): on a SQLite file a
    /// few more connections, which WAL lets read while the one writer writes, so pushing
    /// a message never queues behind the next message's transaction. Elsewhere `pool`.
    reads: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects without migrating (`hotline migrate` and `serve` call `migrate` next).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        // SQLite has one writer: several pooled connections only wait on its lock, and its
        // busy handler sleeps between retries, so under load one connection serialises the
        // writes far faster. (Each in-memory connection would also be its own database.)
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            // A SQLite file doesn't go away under an open connection: no ping before each
            // use (it is a round trip to the connection's thread per query).
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL with NORMAL sync: durable across a crash of the daemon (only
                        // a power cut can lose the newest commits), and one fsync per
                        // checkpoint instead of per call record write. The URL alone left
                        // files in rollback-journal mode, so it is asked for here (an
                        // in-memory database answers "memory" and stays so).
                        sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode = WAL").await?;
                        sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = NORMAL").await?;
                        // Checkpoints (copying the WAL into the file, with its fsyncs) are
                        // made beside the writer by `checkpoints`, not inside its commits,
                        // where they held up every write for tens of milliseconds.
                        sqlx::Executor::execute(&mut *conn, "PRAGMA wal_autocheckpoint = 0")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reads = if backend == Backend::Sqlite && !in_memory {
            // Opened when first used, after the writer made the file WAL and migrated it.
            let reads = AnyPoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_lazy(url)
                .map_err(|source| StoreError::Connect {
                    url: redact(url),
                    source,
                })?;
            tokio::spawn(checkpoints(reads.clone()));
            reads
        } else {
            pool.clone()
        };
        Ok(Store {
            pool,
            reads,
            backend,
        })
    }

    /// Opens a database that `migrate` made before, creating and migrating nothing: for
    /// commands that only read. A SQLite URL's `mode=rwc` is dropped, so a missing file is
    /// [`StoreError::Missing`] instead of a new empty database.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        // For messages: no password, no query (`?mode=rwc`).
        let shown = redact(url.split('?').next().unwrap_or(url));
        let url = if Backend::from_url(url)? == Backend::Sqlite {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !in_memory && !options.get_filename().is_file() {
                return Err(StoreError::Missing { url: shown });
            }
            without_create(url)
        } else {
            url.to_string()
        };
        let store = Store::connect(&url).await?;
        if sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(store.pool())
            .await
            .is_err()
        {
            store.close().await;
            return Err(StoreError::NotMigrated { url: shown });
        }
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for reads that need no transaction (see `reads`).
    pub fn reader(&self) -> &AnyPool {
        &self.reads
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// After `close` (the daemon is stopping): background loops end quietly.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
    }
}

// ---- for `hotline backup` / `hotline restore` ------------------------------------------

impl Store {
    /// The newest migration applied to this database (e.g. 20 for `0020_….sql`): the
    /// schema version a backup records and a restore checks.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let (version,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(version)
    }

    /// A consistent copy of a SQLite database in a new file (`VACUUM INTO`): one read
    /// transaction, so the daemon's writer goes on meanwhile (WAL).
    pub async fn vacuum_into(&self, file: &std::path::Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1")
            .bind(file.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The newest migration this binary carries for `backend`: a database with a newer
/// schema was made by a newer Hotline.
pub fn known_schema_version(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The file of a `sqlite:` URL (None for an in-memory database).
pub fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    Ok((!in_memory).then(|| options.get_filename().to_path_buf()))
}

/// Whether another connection (a running daemon) has the SQLite file open: an exclusive
/// lock is tried once, without waiting, and let go. A missing file is not in use.
pub async fn sqlite_file_in_use(file: &std::path::Path) -> Result<bool, StoreError> {
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};
    if !file.is_file() {
        return Ok(false);
    }
    // Exclusive locking mode before the first access: a WAL file that another
    // connection has open cannot be locked, even while that connection is idle.
    let options = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(std::time::Duration::ZERO);
    let mut conn = match SqliteConnection::connect_with(&options).await {
        Ok(c) => c,
        Err(e) if is_busy(&e) => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    let locked = sqlx::Executor::execute(&mut conn, "BEGIN EXCLUSIVE").await;
    let in_use = match locked {
        Ok(_) => {
            sqlx::Executor::execute(&mut conn, "ROLLBACK").await?;
            false
        }
        Err(e) if is_busy(&e) => true,
        Err(e) => return Err(e.into()),
    };
    conn.close().await?;
    Ok(in_use)
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included.
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Copies a SQLite file's WAL into the database twice a second from a reader connection
/// (PASSIVE: the writer goes on meanwhile), until the store is closed. The writer then
/// starts the WAL over, so it stays a few megabytes.
async fn checkpoints(reads: AnyPool) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !reads.is_closed() {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&reads)
            .await
            && !reads.is_closed()
        {
            tracing::warn!("SQLite checkpoint: {e}");
        }
    }
}

/// One row by its id (`sql` selects it with the id as `$1`), mapped by its `FromRow`
/// derive; `None` when there is no such row. `conn` is the pool, a connection or a
/// transaction (`&mut *tx`). A tuple such as `(i64,)` asks only whether the row is there.
pub async fn fetch_by_id<'a, T, E, I>(
    conn: E,
    sql: impl sqlx::SqlSafeStr,
    id: I,
) -> Result<Option<T>, sqlx::Error>
where
    E: sqlx::Executor<'a, Database = sqlx::Any>,
    I: sqlx::Encode<'a, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'a,
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Reads a text column holding one of an enum's names through the enum's
/// `parse(&str) -> Option<Self>`, so rows with such fields derive `FromRow`
/// (`Option<Enum>` for a nullable column too). Writing binds `as_str()` as before.
macro_rules! text_column {
    ($ty:ty, $what:literal) => {
        impl sqlx::Type<sqlx::Any> for $ty {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $ty {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                <$ty>::parse(&s).ok_or_else(|| crate::store::unknown_value($what, &s).into())
            }
        }
    };
}
pub(crate) use text_column;

/// The error for a text column holding a value the code doesn't know (an enum's name).
pub fn unknown_value(what: &str, v: &str) -> String {
    format!("unknown {what} {v:?} in the database")
}

/// The decode error for such a value, where a row is mapped by hand.
pub fn decode_error(what: &str, v: &str) -> sqlx::Error {
    sqlx::Error::Decode(unknown_value(what, v).into())
}

/// A SQLite URL with `mode=rwc` (create when missing) turned into `mode=rw`.
fn without_create(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|p| if p == "mode=rwc" { "mode=rw" } else { p })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => url.to_string(),
    }
}

/// Keeps passwords out of logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://hl:secret@db/hotline"),
            "postgres://hl:***@db/hotline"
        );
        assert_eq!(redact("sqlite://var/h.db"), "sqlite://var/h.db");
    }

    #[test]
    fn existing_databases_are_not_created() {
        assert_eq!(
            without_create("sqlite://./var/hotline.db?mode=rwc"),
            "sqlite://./var/hotline.db?mode=rw"
        );
        assert_eq!(without_create("sqlite://h.db"), "sqlite://h.db");
    }

    #[tokio::test]
    async fn open_existing_neither_creates_nor_migrates() {
        let dir =
            std::env::temp_dir().join(format!("hotline-store-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let err = Store::open_existing(&url).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no database at sqlite://{}", file.display())
        );
        assert!(
            !file.exists(),
            "a read-only open created {}",
            file.display()
        );

        // A file that was never migrated is not migrated by it either.
        let store = Store::connect(&url).await.unwrap();
        store.close().await;
        let err = Store::open_existing(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::NotMigrated { .. }), "{err}");

        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let store = Store::open_existing(&url).await.unwrap();
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_other_databases() {
        assert!(matches!(
            Backend::from_url("mysql://x"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
}
