//! Per-user API tokens (issue 16): an admin makes one for a user, it acts with that
//! user's role. The token is 32 random bytes, shown once; only its SHA-256 is kept.

use sqlx::Row;

use crate::store::{Store, StoreError};
use crate::tokens::{random_token, sha256_hex};
use crate::users::{User, validate_user_name};

/// Marks a per-user token, so it is told apart from the configured one at a glance.
pub const PREFIX: &str = "hlt_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    NoUser(String),
    #[error("no token named {0:?}")]
    NotFound(String),
    #[error("token name {0:?}: use 1-64 letters, digits and . _ - @")]
    BadName(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> TokenError {
        TokenError::Store(StoreError::Query(e))
    }
}

/// A token as listed: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    pub name: String,
    /// The user it acts as.
    pub owner: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

/// `a == b` without an early exit, so the time taken says nothing about where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Store {
    /// Makes a token named `name` for the user `owner`; the token, to be shown once.
    pub async fn add_api_token(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<String, TokenError> {
        if validate_user_name(name).is_err() {
            return Err(TokenError::BadName(name.to_string()));
        }
        let user: Option<i64> = sqlx::query("SELECT id FROM users WHERE name = $1")
            .bind(owner)
            .fetch_optional(self.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(user_id) = user else {
            return Err(TokenError::NoUser(owner.to_string()));
        };
        let token = format!("{PREFIX}{}", random_token());
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, user_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(user_id)
        .bind(sha256_hex(&token))
        .bind(now_ms)
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(token),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                Err(TokenError::Exists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every token, by name.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, TokenError> {
        let rows = sqlx::query(
            "SELECT t.name, u.name AS owner, t.created_at, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(ApiToken {
                name: r.try_get("name")?,
                owner: r.try_get("owner")?,
                created_at_ms: r.try_get("created_at")?,
                last_used_at_ms: r.try_get("last_used_at")?,
            });
        }
        Ok(out)
    }

    /// Revokes the token named `name`: it stops working at once.
    pub async fn revoke_api_token(&self, name: &str) -> Result<(), TokenError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(TokenError::NotFound(name.to_string()));
        }
        Ok(())
    }

    /// The user a presented token acts as, noting its use; `None` for an unknown token.
    pub async fn api_token_user(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<User>, TokenError> {
        if !token.starts_with(PREFIX) {
            return Ok(None);
        }
        let hash = sha256_hex(token);
        let row =
            sqlx::query("SELECT id, user_id, token_hash FROM api_tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // The lookup is by hash; the stored hash is compared again in constant time.
        let stored: String = row.try_get("token_hash")?;
        if !same(stored.as_bytes(), hash.as_bytes()) {
            return Ok(None);
        }
        let id: i64 = row.try_get("id")?;
        let user_id: i64 = row.try_get("user_id")?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(self.user(user_id).await?)
    }
}
