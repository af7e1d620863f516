//! People who log in to the web console: argon2id passwords, roles, browser sessions with
//! their CSRF token, and lockouts after repeated failed logins (per account and address,
//! then per account; see [`LoginPolicy`]).
//!
//! A session cookie holds a random token; only its SHA-256 is stored, so a copy of the
//! database can't be used to log in. Password hashing and checking are slow on purpose:
//! new hashes run on tokio's blocking threads, login checks on the few threads of
//! [`PasswordChecks`], which bounds their number and memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::tokens::{random_token, sha256_hex};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use sqlx::Row;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Operator,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Operator, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Admins may do what supervisors may, and supervisors what operators may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// The operator account (phone, queues, chats) this user works as.
    pub operator: Option<String>,
    pub created_at_ms: i64,
}

pub struct NewUser<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub password: &'a str,
    pub operator: Option<&'a str>,
    pub now_ms: i64,
}

pub const MIN_PASSWORD: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Store(e.into())
    }
}

/// How logins are throttled and how long a session lasts.
///
/// Failed logins are counted per (account name, client address) and per account name,
/// in windows of `lockout_ms`; unknown names are counted exactly like existing ones, so
/// the answers say nothing about which accounts exist. An attempt is counted before its
/// password is checked, so parallel guesses can't slip past the limit.
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    /// Failed logins to one account from one address that make that address wait.
    pub max_failures: i64,
    /// Failed logins to one account from all addresses together that lock the account:
    /// higher, so a stranger alone can't lock an admin out.
    pub max_account_failures: i64,
    /// The counting window, and so the longest wait once locked.
    pub lockout_ms: i64,
    pub session_ms: i64,
    /// The argon2 work every login shares: one per daemon.
    pub checks: Arc<PasswordChecks>,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            max_account_failures: 50,
            lockout_ms: 15 * 60 * 1000,
            session_ms: 12 * 3600 * 1000,
            checks: PasswordChecks::for_this_machine(PasswordChecks::DEFAULT_WAIT),
        }
    }
}

/// Bounds argon2: each check takes ~19 MiB for its run, so only `concurrent` run at
/// once; others queue for at most `wait`, then are refused ([`LoginError::Busy`]). Memory
/// stays bounded whatever the burst. It also counts the checks (metrics and tests).
///
/// The checks run on `concurrent` threads of their own rather than tokio's blocking
/// pool: the allocator keeps a freed 19 MiB block in the arena of the thread that used
/// it, so hashing on whichever of the pool's threads is free would leave one such block
/// per thread that ever hashed. Here there are at most `concurrent`.
#[derive(Debug)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    wait: Duration,
    /// To the hashing threads; they end when it is dropped.
    jobs: std::sync::mpsc::Sender<Check>,
    counts: Arc<CheckCounts>,
}

#[derive(Debug, Default)]
struct CheckCounts {
    checked: AtomicU64,
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// One password check for a hashing thread. The slot goes when the check is done, even
/// if the login that asked for it has gone meanwhile.
struct Check {
    hash: Option<String>,
    password: String,
    _slot: OwnedSemaphorePermit,
    answer: tokio::sync::oneshot::Sender<bool>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Check")
    }
}

impl PasswordChecks {
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

    /// `concurrent` checks at once (0 refuses every login: tests).
    pub fn new(concurrent: usize, wait: Duration) -> Arc<PasswordChecks> {
        let (jobs, queue) = std::sync::mpsc::channel::<Check>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let counts = Arc::new(CheckCounts::default());
        for i in 0..concurrent {
            let queue = queue.clone();
            let counts = counts.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hotline-argon2-{i}"))
                .spawn(move || hashing_thread(&queue, &counts));
            if let Err(e) = spawned {
                // Fewer threads: the checks queue longer; the slots still bound them.
                tracing::error!("starting a password-check thread: {e}");
            }
        }
        Arc::new(PasswordChecks {
            slots: Arc::new(Semaphore::new(concurrent)),
            wait,
            jobs,
            counts,
        })
    }

    /// One check per CPU core.
    pub fn for_this_machine(wait: Duration) -> Arc<PasswordChecks> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordChecks::new(cores, wait)
    }

    /// Passwords checked with argon2 so far (including the stand-in for unknown names).
    pub fn checked(&self) -> u64 {
        self.counts.checked.load(Ordering::Relaxed)
    }

    /// The most checks that ever ran at once.
    pub fn peak(&self) -> usize {
        self.counts.peak.load(Ordering::Relaxed)
    }

    /// Waits (at most `wait`) for a free slot; `None`: none came.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Checks `password` against `hash`, or against the stand-in hash when the account
    /// does not exist, so both cost the same.
    async fn verify(
        &self,
        slot: OwnedSemaphorePermit,
        hash: Option<String>,
        password: String,
    ) -> bool {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let check = Check {
            hash,
            password,
            _slot: slot,
            answer,
        };
        if self.jobs.send(check).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

fn hashing_thread(
    queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Check>>,
    counts: &CheckCounts,
) {
    // argon2's working memory (~19 MiB with the default parameters), kept and reused for
    // every check of this thread: allocating it per check left each freed copy in one
    // of the allocator's arenas, ~350 MiB after a hundred logins.
    let mut blocks: Vec<argon2::Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next check, not while hashing.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(check) = next else {
            return;
        };
        let running = counts.running.fetch_add(1, Ordering::Relaxed) + 1;
        counts.peak.fetch_max(running, Ordering::Relaxed);
        counts.checked.fetch_add(1, Ordering::Relaxed);
        let exists = check.hash.is_some();
        let hash = check.hash.as_deref().unwrap_or(DUMMY_HASH);
        let matches = PasswordHash::new(hash)
            .is_ok_and(|parsed| verify_in(&mut blocks, check.password.as_bytes(), &parsed));
        counts.running.fetch_sub(1, Ordering::Relaxed);
        let _ = check.answer.send(matches && exists);
    }
}

/// Most argon2 working memory a stored hash may ask for (64 MiB): a hash with more is
/// refused rather than let one login take the machine's memory.
const MAX_ARGON2_BLOCKS: usize = 64 * 1024;

/// Whether `password` matches the argon2 `hash`, computed in `blocks` (grown once to what
/// the hash's parameters need, then reused).
fn verify_in(blocks: &mut Vec<argon2::Block>, password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(hash.algorithm),
        argon2::Params::try_from(hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let count = params.block_count();
    if count > MAX_ARGON2_BLOCKS {
        return false;
    }
    if blocks.len() < count {
        blocks.resize(count, argon2::Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut blocks[..count])
        .is_ok()
        // Output compares in constant time.
        && argon2::password_hash::Output::new(out).is_ok_and(|got| got == expected)
}

/// An argon2id hash with `Argon2::default()`'s parameters of a password nobody has: what
/// a login for an unknown name is checked against (see the test that holds it to the
/// defaults).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$mBjDt+U+gU9Ovmo2r1DOSw$hVuA1dg/qlNSJSfCza4+NUO8nHUnrt58Cl7Scfkl7ok";

/// The address key of the account-wide failure count (never an IP address).
const ANY_ADDRESS: &str = "*";
/// How long an address an account logged in from stays exempt from the account-wide
/// lockout.
const KNOWN_ADDRESS_MS: i64 = 90 * 24 * 3600 * 1000;
/// Longer names can't exist; the count's key is cut so junk names stay small.
const MAX_NAME_KEY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer for an unknown name and a wrong password.
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed logins: try again in {minutes} minutes")]
    Locked { minutes: i64 },
    /// Every password check is taken and the queue's wait ran out.
    #[error("the server is busy checking other logins: try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Store(e.into())
    }
}

/// A logged-in browser.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub user: User,
    /// Every form and every state-changing request carries it.
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// What a successful login returns: the cookie's token (shown only now) and the session.
#[derive(Clone, Debug)]
pub struct LoggedIn {
    pub token: String,
    pub session: WebSession,
}

pub fn validate_user_name(v: &str) -> Result<(), UserError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(format!(
            "user name {v:?}: use 1–64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

async fn hash_password(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|e| UserError::Invalid(format!("password salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Invalid(format!("password hash: {e}")))
    })
    .await
    .map_err(|e| UserError::Invalid(format!("password hash: {e}")))?
}

fn user_from(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        // An unknown role in the table gets the least rights.
        role: Role::parse(&role).unwrap_or(Role::Operator),
        operator: r.try_get("operator")?,
        created_at_ms: r.try_get("created_at")?,
    })
}

const USER_COLUMNS: &str = "id, name, display_name, role, operator, created_at";

impl Store {
    pub async fn add_user(&self, u: &NewUser<'_>) -> Result<i64, UserError> {
        validate_user_name(u.name)?;
        if u.password.chars().count() < MIN_PASSWORD {
            return Err(UserError::Invalid(format!(
                "the password must have at least {MIN_PASSWORD} characters"
            )));
        }
        if let Some(op) = u.operator {
            crate::operators::validate_name("operator", op)
                .map_err(|e| UserError::Invalid(e.to_string()))?;
        }
        let exists = sqlx::query("SELECT id FROM users WHERE name = $1")
            .bind(u.name)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_some() {
            return Err(UserError::Exists(u.name.to_string()));
        }
        let hash = hash_password(u.password.to_string()).await?;
        let row = sqlx::query(
            "INSERT INTO users (name, display_name, role, password_hash, operator, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(u.name)
        .bind(if u.display_name.is_empty() {
            u.name
        } else {
            u.display_name
        })
        .bind(u.role.as_str())
        .bind(&hash)
        .bind(u.operator)
        .bind(u.now_ms)
        .fetch_one(self.pool())
        .await
        // Two admins adding the same name at once: the UNIQUE index decides.
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                UserError::Exists(u.name.to_string())
            }
            _ => UserError::from(e),
        })?;
        Ok(row.try_get::<i64, _>(0).map_err(StoreError::from)?)
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY name"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Checks the password and opens a session, for a client whose address is unknown.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
        policy: &LoginPolicy,
    ) -> Result<LoggedIn, LoginError> {
        self.login_from(name, password, "", now_ms, policy).await
    }

    /// Checks the password of a login from `client` (its address) and opens a session.
    ///
    /// The attempt is counted first (one atomic statement per count), then the password
    /// is checked: of any number of parallel attempts only `max_failures` per address
    /// and `max_account_failures` per account reach argon2. An unknown name is counted
    /// and checked (against a stand-in hash) exactly like a known one.
    pub async fn login_from(
        &self,
        name: &str,
        password: &str,
        client: &str,
        now_ms: i64,
        policy: &LoginPolicy,
    ) -> Result<LoggedIn, LoginError> {
        let key: String = name.chars().take(MAX_NAME_KEY).collect();
        let client = if client == ANY_ADDRESS { "" } else { client };
        let (count, window_start) = self.count_attempt(&key, client, now_ms, policy).await?;
        let locked = |window_start: i64| LoginError::Locked {
            minutes: (window_start + policy.lockout_ms - now_ms + 59_999).max(0) / 60_000,
        };
        if count > policy.max_failures {
            return Err(locked(window_start));
        }
        // Where the account logged in lately, the account-wide count neither applies nor
        // grows: strangers elsewhere can't lock the owner out there.
        let known = !client.is_empty() && self.is_known_address(&key, client, now_ms).await?;
        if !known {
            let (count, window_start) = self
                .count_attempt(&key, ANY_ADDRESS, now_ms, policy)
                .await?;
            if count > policy.max_account_failures {
                return Err(locked(window_start));
            }
        }
        let Some(slot) = policy.checks.slot().await else {
            // Not checked, so not a failure: give the attempt back.
            self.uncount_attempt(&key, client).await?;
            if !known {
                self.uncount_attempt(&key, ANY_ADDRESS).await?;
            }
            return Err(LoginError::Busy);
        };
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        let (id, hash) = match &row {
            Some(row) => (
                Some(row.try_get::<i64, _>("id")?),
                Some(row.try_get::<String, _>("password_hash")?),
            ),
            None => (None, None),
        };
        let matches = policy.checks.verify(slot, hash, password.to_string()).await;
        let Some(id) = id.filter(|_| matches) else {
            return Err(LoginError::BadCredentials);
        };
        // This address starts afresh; the account's count loses this (good) attempt.
        sqlx::query("DELETE FROM login_failures WHERE name = $1 AND address = $2")
            .bind(&key)
            .bind(client)
            .execute(self.pool())
            .await?;
        if !known {
            self.uncount_attempt(&key, ANY_ADDRESS).await?;
        }
        if !client.is_empty() {
            sqlx::query(
                "INSERT INTO login_known (name, address, last_login) VALUES ($1, $2, $3) \
                 ON CONFLICT (name, address) DO UPDATE SET last_login = $3",
            )
            .bind(&key)
            .bind(client)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        }
        let token = random_token();
        let csrf_token = random_token();
        let expires_at_ms = now_ms + policy.session_ms;
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(id)
        .bind(&csrf_token)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        let user = self.user(id).await?.ok_or(LoginError::BadCredentials)?;
        Ok(LoggedIn {
            token,
            session: WebSession {
                user,
                csrf_token,
                expires_at_ms,
            },
        })
    }

    /// Counts one attempt for (`name`, `address`) in one statement and returns the count
    /// in the current window and the window's start. A window older than `lockout_ms`
    /// starts again at one.
    async fn count_attempt(
        &self,
        name: &str,
        address: &str,
        now_ms: i64,
        policy: &LoginPolicy,
    ) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "INSERT INTO login_failures (name, address, failures, window_start) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name, address) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_start <= $4 THEN 1 \
                        ELSE login_failures.failures + 1 END, \
             window_start = CASE WHEN login_failures.window_start <= $5 THEN $6 \
                            ELSE login_failures.window_start END \
             RETURNING failures, window_start",
        )
        .bind(name)
        .bind(address)
        .bind(now_ms)
        .bind(now_ms - policy.lockout_ms)
        .bind(now_ms - policy.lockout_ms)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("failures")?, row.try_get("window_start")?))
    }

    /// Takes back one counted attempt that was not a failure.
    /// Whether `name` logged in from `address` within [`KNOWN_ADDRESS_MS`].
    async fn is_known_address(
        &self,
        name: &str,
        address: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS known FROM login_known WHERE name = $1 AND address = $2 AND last_login > $3",
        )
        .bind(name)
        .bind(address)
        .bind(now_ms - KNOWN_ADDRESS_MS)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    async fn uncount_attempt(&self, name: &str, address: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 \
             WHERE name = $1 AND address = $2 AND failures > 0",
        )
        .bind(name)
        .bind(address)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes sessions that have expired and failure counts whose window is over;
    /// returns how many sessions went.
    pub async fn purge_expired_logins(
        &self,
        now_ms: i64,
        policy: &LoginPolicy,
    ) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM login_known WHERE last_login <= $1")
            .bind(now_ms - KNOWN_ADDRESS_MS)
            .execute(self.pool())
            .await?;
        let sessions = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
            .bind(now_ms - policy.lockout_ms)
            .execute(self.pool())
            .await?;
        Ok(sessions)
    }

    /// The session a cookie's token opens, if it is still valid.
    pub async fn web_session(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, csrf_token, expires_at FROM web_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user_id: i64 = row.try_get("user_id")?;
        let Some(user) = self.user(user_id).await? else {
            return Ok(None);
        };
        Ok(Some(WebSession {
            user,
            csrf_token: row.try_get("csrf_token")?,
            expires_at_ms: row.try_get("expires_at")?,
        }))
    }

    pub async fn logout(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(sha256_hex(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_reuse_one_working_memory_and_agree_with_argon2() {
        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let default = Argon2::default()
            .hash_password(b"right-password", &salt)
            .unwrap()
            .to_string();
        // A hash made with other (smaller) parameters, as an older install might have.
        let small = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8 * 1024, 3, 1, None).unwrap(),
        )
        .hash_password(b"right-password", &salt)
        .unwrap()
        .to_string();
        let mut blocks = Vec::new();
        for hash in [&default, &small, &default] {
            let parsed = PasswordHash::new(hash).unwrap();
            assert!(verify_in(&mut blocks, b"right-password", &parsed), "{hash}");
            assert!(
                !verify_in(&mut blocks, b"wrong-password", &parsed),
                "{hash}"
            );
        }
        // Grown once, to the default's 19 MiB, and kept.
        assert_eq!(blocks.len(), argon2::Params::DEFAULT.block_count());
        assert_eq!(blocks.capacity(), blocks.len());
        // A hash asking for more than the limit is refused, not computed.
        let huge = default.replace("m=19456", "m=1048576");
        assert!(!verify_in(
            &mut blocks,
            b"right-password",
            &PasswordHash::new(&huge).unwrap()
        ));
        assert_eq!(blocks.len(), argon2::Params::DEFAULT.block_count());
    }

    /// A login for an unknown name must cost what a real check costs: the stand-in hash
    /// has the parameters new hashes get.
    #[test]
    fn the_stand_in_hash_has_the_default_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let real = Argon2::default()
            .hash_password(b"a-long-password", &salt)
            .unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
    }
}
