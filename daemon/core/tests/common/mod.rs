//! What every store test file shares: a migrated store in a throwaway SQLite file and a
//! PostgreSQL store in a throwaway schema, and `on_both_databases!` that runs a test body on each.
//!
//! PostgreSQL comes from `HOTLINE_TEST_POSTGRES_URL` (default the local `test` database);
//! each test works in a schema of its own that it drops afterwards. An unreachable
//! PostgreSQL fails the test: it never passes silently.

#![allow(dead_code, unused_macros)] // each test file uses its own part

use hotline_core::store::Store;

pub mod acd;
pub mod chat;

pub fn postgres_url() -> String {
    std::env::var("HOTLINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A PostgreSQL store in a fresh schema, and the schema's name for cleanup.
pub async fn postgres_store() -> (Store, String) {
    let schema = format!("hl_test_{:016x}", rand_u64());
    let admin = Store::connect(&postgres_url())
        .await
        .expect("PostgreSQL must be reachable for the store tests (tests/run.sh starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    let sep = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{}{sep}options=-c%20search_path%3D{schema}", postgres_url());
    (Store::connect(&url).await.unwrap(), schema)
}

/// A migrated store in a fresh SQLite file, as the daemon has it (WAL, one writer and
/// the readers beside it), and the directory to remove afterwards.
pub async fn sqlite_store() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hotline-test-{:016x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/hotline.db?mode=rwc", dir.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

pub async fn drop_schema(schema: &str) {
    let admin = Store::connect(&postgres_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// Runs `body` against a migrated SQLite store and a migrated PostgreSQL store.
macro_rules! on_both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            use $crate::common::{drop_schema, postgres_store};

            #[tokio::test]
            async fn sqlite() {
                let (store, dir) = $crate::common::sqlite_store().await;
                ($body)(store.clone()).await;
                store.close().await;
                let _ = std::fs::remove_dir_all(&dir);
            }

            #[tokio::test]
            async fn postgres() {
                let (store, schema) = postgres_store().await;
                store.migrate().await.unwrap();
                ($body)(store.clone()).await;
                store.close().await;
                drop_schema(&schema).await;
            }
        }
    };
}
