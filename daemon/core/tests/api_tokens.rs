//! Per-user API tokens on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::api_tokens::{ApiToken, TokenError};
use hotline_core::store::Store;
use hotline_core::users::{NewUser, Role};

on_both_databases!(
    tokens_are_made_listed_used_and_revoked,
    |store: Store| async move {
        store
            .add_user(&NewUser {
                name: "sam",
                display_name: "Sam",
                role: Role::Supervisor,
                password: "a-long-password",
                operator: None,
                now_ms: 1,
            })
            .await
            .unwrap();
        let token = store.add_api_token("reports", "sam", 1000).await.unwrap();
        assert!(
            token.starts_with("hlt_") && token.len() == 4 + 64,
            "{token}"
        );
        // Only the hash is stored.
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(stored, [hotline_core::tokens::sha256_hex(&token)]);

        assert!(matches!(
            store.add_api_token("reports", "sam", 1000).await,
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            store.add_api_token("other", "nobody", 1000).await,
            Err(TokenError::NoUser(_))
        ));
        assert!(matches!(
            store.add_api_token("bad name", "sam", 1000).await,
            Err(TokenError::BadName(_))
        ));

        let listed = store.api_tokens().await.unwrap();
        assert_eq!(
            listed,
            [ApiToken {
                name: "reports".into(),
                owner: "sam".into(),
                created_at_ms: 1000,
                last_used_at_ms: None
            }]
        );

        let user = store.api_token_user(&token, 2000).await.unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.role), ("sam", Role::Supervisor));
        assert_eq!(
            store.api_tokens().await.unwrap()[0].last_used_at_ms,
            Some(2000)
        );
        // A token one character off, and the configured-token style, are nobody.
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(store.api_token_user(&wrong, 2000).await.unwrap().is_none());
        assert!(
            store
                .api_token_user("test-token", 2000)
                .await
                .unwrap()
                .is_none()
        );

        store.revoke_api_token("reports").await.unwrap();
        assert!(store.api_token_user(&token, 3000).await.unwrap().is_none());
        assert!(store.api_tokens().await.unwrap().is_empty());
        assert!(matches!(
            store.revoke_api_token("reports").await,
            Err(TokenError::NotFound(_))
        ));
    }
);
