//! Console logins under attack: the lockout holds under parallel guesses, strangers
//! can't lock an account out, unknown names answer like known ones, argon2 runs a
//! bounded number at once, and expired sessions are purged. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::store::Store;
use hotline_core::users::{LoginError, LoginPolicy, NewUser, PasswordChecks, Role};

const PASSWORD: &str = "the-right-password";
const NOW: i64 = 1_700_000_000_000;

async fn add_admin(store: &Store, name: &str) {
    store
        .add_user(&NewUser {
            name,
            display_name: "",
            role: Role::Admin,
            password: PASSWORD,
            operator: None,
            now_ms: NOW,
        })
        .await
        .unwrap();
}

fn policy(checks: Arc<PasswordChecks>) -> LoginPolicy {
    LoginPolicy {
        checks,
        ..LoginPolicy::default()
    }
}

/// `n` wrong guesses for `name` from `client`, all at once.
async fn parallel_guesses(
    store: &Store,
    policy: &LoginPolicy,
    name: &str,
    client: &str,
    n: usize,
) -> Vec<Result<(), String>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            let policy = policy.clone();
            let name = name.to_string();
            let client = client.to_string();
            tokio::spawn(async move {
                store
                    .login_from(&name, &format!("wrong-{i}"), &client, NOW, &policy)
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        LoginError::BadCredentials => "bad".to_string(),
                        LoginError::Locked { .. } => "locked".to_string(),
                        other => other.to_string(),
                    })
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

fn count(results: &[Result<(), String>], what: &str) -> usize {
    results
        .iter()
        .filter(|r| r.as_ref().err().map(String::as_str) == Some(what))
        .count()
}

on_both_databases!(
    sixty_parallel_guesses_check_five,
    |store: Store| async move {
        add_admin(&store, "admin").await;
        let policy = policy(PasswordChecks::new(2, Duration::from_secs(60)));
        let results = parallel_guesses(&store, &policy, "admin", "203.0.113.5", 60).await;
        assert_eq!(policy.checks.checked(), 5, "only five guesses reach argon2");
        assert_eq!(count(&results, "bad"), 5);
        assert_eq!(count(&results, "locked"), 55);
        // The right password from that address waits too, and costs no check.
        let e = store
            .login_from("admin", PASSWORD, "203.0.113.5", NOW + 1000, &policy)
            .await
            .unwrap_err();
        assert!(matches!(e, LoginError::Locked { minutes: 15 }), "{e}");
        assert_eq!(policy.checks.checked(), 5);
        // Once the window is over the address may try again.
        let later = NOW + policy.lockout_ms + 1;
        store
            .login_from("admin", PASSWORD, "203.0.113.5", later, &policy)
            .await
            .unwrap();
    }
);

on_both_databases!(
    strangers_lock_their_address_not_the_account,
    |store: Store| async move {
        add_admin(&store, "admin").await;
        let policy = LoginPolicy {
            max_failures: 2,
            max_account_failures: 6,
            ..policy(PasswordChecks::new(2, Duration::from_secs(60)))
        };
        for _ in 0..3 {
            let _ = store
                .login_from("admin", "wrong-password", "203.0.113.5", NOW, &policy)
                .await;
        }
        // The stranger's address is locked; the admin, elsewhere, logs in.
        assert!(matches!(
            store
                .login_from("admin", PASSWORD, "203.0.113.5", NOW, &policy)
                .await,
            Err(LoginError::Locked { .. })
        ));
        store
            .login_from("admin", PASSWORD, "198.51.100.1", NOW, &policy)
            .await
            .unwrap();
        // Many addresses together reach the account's limit.
        for i in 1..=3 {
            for _ in 0..2 {
                let _ = store
                    .login_from(
                        "admin",
                        "wrong-password",
                        &format!("192.0.2.{i}"),
                        NOW,
                        &policy,
                    )
                    .await;
            }
        }
        // Then it is locked everywhere new to it...
        assert!(matches!(
            store
                .login_from("admin", PASSWORD, "198.51.100.2", NOW, &policy)
                .await,
            Err(LoginError::Locked { .. })
        ));
        // ...but not where the admin logged in before: strangers can't lock them out.
        store
            .login_from("admin", PASSWORD, "198.51.100.1", NOW, &policy)
            .await
            .unwrap();
    }
);

on_both_databases!(
    unknown_names_answer_like_known_ones,
    |store: Store| async move {
        add_admin(&store, "admin").await;
        let policy = policy(PasswordChecks::new(2, Duration::from_secs(60)));
        let mut answers = Vec::new();
        for name in ["admin", "nobody"] {
            let before = policy.checks.checked();
            let mut seen = Vec::new();
            for _ in 0..7 {
                let e = store
                    .login_from(name, "wrong-password", "203.0.113.5", NOW, &policy)
                    .await
                    .unwrap_err();
                seen.push(e.to_string());
            }
            answers.push((seen, policy.checks.checked() - before));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(
            answers[0].1, 5,
            "an unknown name is checked against a stand-in"
        );
        assert_eq!(answers[0].0[0], "wrong user name or password");
        assert!(answers[0].0[6].starts_with("too many failed logins"));
    }
);

on_both_databases!(
    password_checks_run_a_bounded_number_at_once,
    |store: Store| async move {
        let policy = policy(PasswordChecks::new(1, Duration::from_secs(120)));
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let policy = policy.clone();
                tokio::spawn(async move {
                    store
                        .login_from(
                            &format!("user{i}"),
                            "wrong-password",
                            "192.0.2.1",
                            NOW,
                            &policy,
                        )
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(LoginError::BadCredentials)));
        }
        assert_eq!(policy.checks.checked(), 6);
        assert_eq!(policy.checks.peak(), 1);
    }
);

on_both_databases!(
    a_busy_refusal_is_quick_and_costs_no_attempt,
    |store: Store| async move {
        add_admin(&store, "admin").await;
        // No check is ever free: every login waits its 50 ms and is refused.
        let busy = policy(PasswordChecks::new(0, Duration::from_millis(50)));
        for _ in 0..10 {
            let started = Instant::now();
            let e = store
                .login_from("admin", PASSWORD, "203.0.113.5", NOW, &busy)
                .await
                .unwrap_err();
            assert!(matches!(e, LoginError::Busy), "{e}");
            assert!(started.elapsed() < Duration::from_secs(2));
        }
        assert_eq!(busy.checks.checked(), 0);
        // Ten refusals counted as failures would have locked the address.
        let free = policy(PasswordChecks::new(1, Duration::from_secs(60)));
        store
            .login_from("admin", PASSWORD, "203.0.113.5", NOW, &free)
            .await
            .unwrap();
    }
);

on_both_databases!(expired_sessions_are_purged, |store: Store| async move {
    add_admin(&store, "admin").await;
    let policy = LoginPolicy {
        session_ms: 1000,
        ..policy(PasswordChecks::new(1, Duration::from_secs(60)))
    };
    let old = store
        .login_from("admin", PASSWORD, "192.0.2.1", NOW, &policy)
        .await
        .unwrap();
    let fresh = store
        .login_from("admin", PASSWORD, "192.0.2.1", NOW + 5000, &policy)
        .await
        .unwrap();
    let _ = store
        .login_from("ghost", "wrong-password", "192.0.2.1", NOW, &policy)
        .await;
    let rows = |sql: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(store.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(rows("SELECT COUNT(*) FROM web_sessions").await, 2);
    let purged = store
        .purge_expired_logins(NOW + 5500, &policy)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(rows("SELECT COUNT(*) FROM web_sessions").await, 1);
    assert!(
        store
            .web_session(&fresh.token, NOW + 5500)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.web_session(&old.token, NOW).await.unwrap().is_none());
    // Failure counts outlive their window only until the next purge.
    assert!(rows("SELECT COUNT(*) FROM login_failures").await > 0);
    store
        .purge_expired_logins(NOW + policy.lockout_ms + 10_000, &policy)
        .await
        .unwrap();
    assert_eq!(rows("SELECT COUNT(*) FROM login_failures").await, 0);
});
