//! Operator accounts: who may register a phone and receive calls.

use sqlx::Row;

use crate::store::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Operator {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub sip_user: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    /// The digest algorithm the phone is challenged with: "MD5" or "SHA-256".
    pub sip_digest: String,
    pub chat_capacity: i64,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

pub struct NewOperator<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub sip_user: &'a str,
    pub realm: &'a str,
    pub ha1_md5: &'a str,
    pub ha1_sha256: &'a str,
    pub sip_digest: SipDigest,
    pub chat_capacity: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("an operator named {0:?} or with SIP user {1:?} already exists")]
    Exists(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The digest algorithm an operator's phone is challenged with (PRODUCT T3): MD5, which
/// every phone answers, unless SHA-256 (RFC 8760) is chosen for the account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SipDigest {
    #[default]
    Md5,
    Sha256,
}

impl SipDigest {
    pub fn as_str(self) -> &'static str {
        match self {
            SipDigest::Md5 => "MD5",
            SipDigest::Sha256 => "SHA-256",
        }
    }

    /// "MD5", "SHA-256" (any case, "sha256" too).
    pub fn parse(s: &str) -> Result<SipDigest, OperatorError> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Ok(SipDigest::Md5),
            "SHA-256" | "SHA256" => Ok(SipDigest::Sha256),
            _ => Err(OperatorError::Invalid(format!(
                "digest {s:?}: use MD5 or SHA-256"
            ))),
        }
    }
}

/// Names and SIP users are what admins type and phones send: keep them plain.
pub fn validate_name(what: &str, v: &str) -> Result<(), OperatorError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(OperatorError::Invalid(format!(
            "{what} {v:?}: use 1–64 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// `SELECT` of an operator's columns, then `$rest` (a literal, as sqlx wants its SQL).
macro_rules! select_operators {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, display_name, sip_user, realm, ha1_md5, ha1_sha256, sip_digest, \
             chat_capacity, created_at FROM operators ",
            $rest
        )
    };
}

impl Store {
    pub async fn add_operator(&self, op: &NewOperator<'_>) -> Result<i64, OperatorError> {
        validate_name("name", op.name)?;
        validate_name("SIP user", op.sip_user)?;
        if !(1..=10).contains(&op.chat_capacity) {
            return Err(OperatorError::Invalid(format!(
                "chat capacity {}: must be 1–10",
                op.chat_capacity
            )));
        }
        let exists = sqlx::query("SELECT id FROM operators WHERE name = $1 OR sip_user = $2")
            .bind(op.name)
            .bind(op.sip_user)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::from)?;
        if exists.is_some() {
            return Err(OperatorError::Exists(op.name.into(), op.sip_user.into()));
        }
        let row = sqlx::query(
            "INSERT INTO operators (name, display_name, sip_user, realm, ha1_md5, ha1_sha256, \
             chat_capacity, created_at, sip_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING id",
        )
        .bind(op.name)
        .bind(op.display_name)
        .bind(op.sip_user)
        .bind(op.realm)
        .bind(op.ha1_md5)
        .bind(op.ha1_sha256)
        .bind(op.chat_capacity)
        .bind(op.created_at_ms)
        .bind(op.sip_digest.as_str())
        .fetch_one(self.pool())
        .await
        // A concurrent add of the same name loses on the UNIQUE constraint.
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                OperatorError::Exists(op.name.into(), op.sip_user.into())
            }
            e => OperatorError::Store(e.into()),
        })?;
        Ok(row.try_get::<i64, _>(0).map_err(StoreError::from)?)
    }

    pub async fn operators(&self) -> Result<Vec<Operator>, StoreError> {
        Ok(sqlx::query_as(select_operators!("ORDER BY name"))
            .fetch_all(self.pool())
            .await?)
    }

    /// The operator whose phone logs in as `sip_user` (one indexed read: a REFER's or a
    /// phone call's target is looked up on the call path).
    pub async fn operator_by_sip_user(
        &self,
        sip_user: &str,
    ) -> Result<Option<Operator>, StoreError> {
        Ok(sqlx::query_as(select_operators!("WHERE sip_user = $1"))
            .bind(sip_user)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Remembers the state the operator chose (restored when the daemon starts).
    pub async fn set_operator_chosen_state(
        &self,
        name: &str,
        state: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE operators SET chosen_state = $2 WHERE name = $1")
            .bind(name)
            .bind(state)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Each operator's last chosen state (`online`, `away`, `pause`, `offline`).
    pub async fn operator_chosen_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, chosen_state FROM operators ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("chosen_state")?)))
            .collect()
    }

    /// Changes how many chats the operator may have at once (1–10, admins). False: no
    /// such operator.
    pub async fn set_chat_capacity(
        &self,
        name: &str,
        capacity: i64,
    ) -> Result<bool, OperatorError> {
        if !(1..=10).contains(&capacity) {
            return Err(OperatorError::Invalid(format!(
                "concurrent chats must be 1 to 10, not {capacity}"
            )));
        }
        let r = sqlx::query("UPDATE operators SET chat_capacity = $2 WHERE name = $1")
            .bind(name)
            .bind(capacity)
            .execute(self.pool())
            .await
            .map_err(StoreError::from)?;
        Ok(r.rows_affected() > 0)
    }

    /// Chooses the digest algorithm the operator's phone is challenged with. False: no
    /// such operator.
    pub async fn set_sip_digest(&self, name: &str, digest: SipDigest) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE operators SET sip_digest = $2 WHERE name = $1")
            .bind(name)
            .bind(digest.as_str())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
