//! People who log in to the web console: argon2id passwords, roles, browser sessions with
//! their CSRF token, and an account lockout after repeated failed logins.
//!
//! A session cookie holds a random token; only its SHA-256 is stored, so a copy of the
//! database can't be used to log in. Password hashing and checking are slow on purpose
//! and run on tokio's blocking threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use sqlx::Row;

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
#[derive(Clone, Copy, Debug)]
pub struct LoginPolicy {
    /// Failed logins in a row that lock the account.
    pub max_failures: i64,
    pub lockout_ms: i64,
    pub session_ms: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            lockout_ms: 15 * 60 * 1000,
            session_ms: 12 * 3600 * 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer for an unknown name and a wrong password.
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed logins: try again in {minutes} minutes")]
    Locked { minutes: i64 },
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

/// 256 random bits as hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

async fn password_matches(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
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

    /// Checks the password and opens a session. Failed logins in a row lock the account
    /// for a while; an unknown name is answered exactly like a wrong password.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
        policy: &LoginPolicy,
    ) -> Result<LoggedIn, LoginError> {
        let row = sqlx::query(
            "SELECT id, password_hash, failed_logins, locked_until FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            // Hashing costs what checking would, so the answer's timing says nothing.
            let _ = hash_password(password.to_string()).await;
            return Err(LoginError::BadCredentials);
        };
        let id: i64 = row.try_get("id")?;
        let hash: String = row.try_get("password_hash")?;
        let locked_until: Option<i64> = row.try_get("locked_until")?;
        if let Some(until) = locked_until.filter(|u| *u > now_ms) {
            return Err(LoginError::Locked {
                minutes: (until - now_ms + 59_999) / 60_000,
            });
        }
        if !password_matches(hash, password.to_string()).await {
            // One statement, so concurrent failures all count.
            sqlx::query(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END \
                 WHERE id = $3",
            )
            .bind(policy.max_failures)
            .bind(now_ms + policy.lockout_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
            return Err(LoginError::BadCredentials);
        }
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
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
