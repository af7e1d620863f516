//! `hotline token add|list|revoke`: per-user API tokens from the command line, for the
//! first token (before any admin has one) and for scripts on the server.

use std::path::Path;

use clap::Subcommand;
use hotline_core::api_tokens::ApiToken;
use hotline_core::cdr::csv_field;

use crate::config::{Config, ProcessEnv};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token that acts with USER's role; it is printed once, never again.
    Add {
        #[arg(long)]
        name: String,
        /// The web user whose role the token has (see `hotline user add`).
        #[arg(long)]
        user: String,
    },
    /// The tokens as CSV: name, owner, created, last used (never the tokens).
    List,
    /// Revoke a token: it stops working at once.
    Revoke { name: String },
}

pub async fn token_cmd(config_path: Option<&Path>, cmd: TokenCommand) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let store = crate::open_existing_store(&config).await?;
    let result = match cmd {
        TokenCommand::Add { name, user } => store
            .add_api_token(&name, &user, hotline_core::time::unix_ms())
            .await
            .map(|token| println!("{token}")),
        TokenCommand::List => store.api_tokens().await.map(|tokens| {
            println!("name,owner,created,last_used");
            for t in &tokens {
                println!("{}", list_line(t));
            }
        }),
        TokenCommand::Revoke { name } => store
            .revoke_api_token(&name)
            .await
            .map(|()| println!("revoked {name}")),
    };
    store.close().await;
    result.map_err(|e| e.to_string())
}

/// One CSV line of `hotline token list`; times as RFC 3339 UTC.
fn list_line(t: &ApiToken) -> String {
    let time = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    [
        csv_field(&t.name),
        csv_field(&t.owner),
        time(Some(t.created_at_ms)),
        time(t.last_used_at_ms),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_token_is_one_csv_line_with_utc_times() {
        let t = ApiToken {
            name: "wallboard".into(),
            owner: "sam".into(),
            created_at_ms: 1_796_119_200_000,
            last_used_at_ms: None,
        };
        assert_eq!(list_line(&t), "wallboard,sam,2026-12-01T10:00:00Z,");
    }
}
