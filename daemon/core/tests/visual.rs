//! Visual sessions: licenses and credits, the one-open-session rule, expiry on a virtual
//! clock, link tokens, SMS limits, the last-sessions table, chat and files. Every test
//! runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::store::Store;
use hotline_core::users::{NewUser, Role};
use hotline_core::visual::{
    EndReason, FileKind, InviteChannel, LicenseEntryKind, NewVisualSession, Party, SESSION_IDLE_MS,
    SessionState, SmsLimitScope, SmsLimits, VisualError,
};
use sqlx::Row;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

async fn user(store: &Store, name: &str) -> i64 {
    store
        .add_user(&NewUser {
            name,
            display_name: "",
            role: Role::Operator,
            password: "correct horse battery",
            operator: None,
            now_ms: T0,
        })
        .await
        .unwrap()
}

/// A license with `credits` that every user in `users` may charge.
async fn license(store: &Store, name: &str, credits: i64, users: &[i64]) -> i64 {
    let id = store.add_license(name, credits, T0).await.unwrap();
    for u in users {
        store.grant_license(*u, id).await.unwrap();
    }
    id
}

fn sms(user: i64, license: i64, phone: &str, now_ms: i64) -> NewVisualSession {
    NewVisualSession {
        operator_user_id: user,
        license_id: license,
        channel: InviteChannel::Sms,
        case_number: None,
        phone: Some(phone.into()),
        email: None,
        sms_limits: SmsLimits::default(),
        now_ms,
    }
}

fn email(user: i64, license: i64, address: &str, now_ms: i64) -> NewVisualSession {
    NewVisualSession {
        channel: InviteChannel::Email,
        phone: None,
        email: Some(address.into()),
        ..sms(user, license, "", now_ms)
    }
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn credits(store: &Store, license: i64) -> i64 {
    store.license(license).await.unwrap().unwrap().credits
}

on_both_databases!(creates_an_sms_session, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let lic = license(&store, "Biztosító Zrt.", 3, &[anna]).await;
    let created = store
        .create_visual_session(&NewVisualSession {
            case_number: Some("  KAR-2024/117 ".into()),
            ..sms(anna, lic, "+36 30 616 7347", T0)
        })
        .await
        .unwrap();
    let s = &created.session;
    assert_eq!(s.case_number, "KAR-2024/117");
    assert_eq!(s.phone.as_deref(), Some("+36306167347"));
    assert_eq!(s.customer(), "+36306167347");
    assert_eq!(s.email, None);
    assert_eq!(s.channel, InviteChannel::Sms);
    assert_eq!(s.state, SessionState::Invited);
    assert_eq!(s.license_name, "Biztosító Zrt.");
    assert_eq!(s.expires_at_ms(), Some(T0 + SESSION_IDLE_MS));
    // What was returned is what is stored.
    assert_eq!(store.visual_session(s.id).await.unwrap().as_ref(), Some(s));
    assert_eq!(credits(&store, lic).await, 2);

    // No case number (or a blank one): a readable random one.
    store.end_visual_session(s.id, T0 + MIN).await.unwrap();
    let created = store
        .create_visual_session(&NewVisualSession {
            case_number: Some("   ".into()),
            ..email(anna, lic, " Customer@Example.HU ", T0 + 2 * MIN)
        })
        .await
        .unwrap();
    let s = &created.session;
    assert_eq!(s.case_number.len(), 8);
    assert!(!s.case_number.contains(['0', 'O', '1', 'I']));
    assert_eq!(s.email.as_deref(), Some("Customer@example.hu"));
    assert_eq!(s.phone, None);
    assert_eq!(s.channel, InviteChannel::Email);
});

on_both_databases!(
    refuses_bad_input_without_charging,
    |store: Store| async move {
        let anna = user(&store, "anna").await;
        let bela = user(&store, "bela").await;
        let lic = license(&store, "L", 5, &[anna]).await;
        for (new, check) in [
            (sms(anna, lic, "+36 1 234 5678", T0), "landline" as &str),
            (sms(anna, lic, "+3630552735", T0), "too short"),
            (sms(anna, lic, "+44 7700 900123", T0), "only Hungarian"),
            (email(anna, lic, "nobody", T0), "e-mail"),
            (email(anna, lic, "a b@example.com", T0), "e-mail"),
            (
                NewVisualSession {
                    case_number: Some("x".repeat(65)),
                    ..sms(anna, lic, "06306167347", T0)
                },
                "case number",
            ),
        ] {
            let err = store.create_visual_session(&new).await.unwrap_err();
            assert!(
                matches!(err, VisualError::Phone(_) | VisualError::Invalid(_)),
                "{err:?}"
            );
            assert!(err.to_string().contains(check), "{err}");
        }
        // A license the user was not given, and one that doesn't exist.
        let err = store
            .create_visual_session(&sms(bela, lic, "06306167347", T0))
            .await
            .unwrap_err();
        assert!(matches!(err, VisualError::LicenseNotAllowed), "{err:?}");
        let err = store
            .create_visual_session(&sms(anna, lic + 100, "06306167347", T0))
            .await
            .unwrap_err();
        assert!(matches!(err, VisualError::LicenseNotFound), "{err:?}");
        assert_eq!(credits(&store, lic).await, 5);
        assert_eq!(count(&store, "visual_sessions").await, 0);
    }
);

on_both_databases!(
    the_last_credit_goes_to_one_session,
    |store: Store| async move {
        let anna = user(&store, "anna").await;
        let bela = user(&store, "bela").await;
        // Several rounds, so a race that only sometimes goes wrong shows.
        for round in 0..5 {
            let lic = license(&store, &format!("L{round}"), 1, &[anna, bela]).await;
            let now = T0 + round * MIN;
            let a = tokio::spawn({
                let store = store.clone();
                async move {
                    store
                        .create_visual_session(&sms(anna, lic, "06 30 111 1111", now))
                        .await
                }
            });
            let b = tokio::spawn({
                let store = store.clone();
                async move {
                    store
                        .create_visual_session(&email(bela, lic, "c@example.com", now))
                        .await
                }
            });
            let results = [a.await.unwrap(), b.await.unwrap()];
            let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
            assert!(
                matches!(lost, VisualError::NoCredits { license } if *license == format!("L{round}")),
                "{lost:?}"
            );
            assert!(lost.to_string().contains("no credits left"), "{lost}");
            assert_eq!(credits(&store, lic).await, 0);
            let history = store.license_history(lic).await.unwrap();
            assert_eq!(history.len(), 2); // the opening credit and one charge
            assert_eq!(history[0].kind, LicenseEntryKind::Charge);
            assert_eq!(history[0].session_id, Some(won[0].session.id));
            store
                .end_visual_session(won[0].session.id, now + 1)
                .await
                .unwrap();
        }
        assert_eq!(count(&store, "visual_sessions").await, 5);

        // Eight operators at once on three credits: exactly three sessions.
        let mut users = Vec::new();
        for i in 0..8 {
            users.push(user(&store, &format!("op{i}")).await);
        }
        let lic = license(&store, "Many", 3, &users).await;
        let tasks: Vec<_> = users
            .iter()
            .map(|&u| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_visual_session(&email(u, lic, "c@example.com", T0 + HOUR))
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(VisualError::NoCredits { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(won, 3);
        assert_eq!(credits(&store, lic).await, 0);
        let charges = store.license_history(lic).await.unwrap();
        assert_eq!(
            charges
                .iter()
                .filter(|e| e.kind == LicenseEntryKind::Charge)
                .count(),
            3
        );
    }
);

on_both_databases!(no_credits_writes_nothing, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let lic = license(&store, "Empty", 0, &[anna]).await;
    let before_entries = count(&store, "license_entries").await;
    let err = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap_err();
    assert!(matches!(err, VisualError::NoCredits { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the license “Empty” has no credits left: ask an administrator to top it up"
    );
    assert_eq!(credits(&store, lic).await, 0);
    assert_eq!(count(&store, "visual_sessions").await, 0);
    assert_eq!(count(&store, "license_entries").await, before_entries);
    assert!(store.license_history(lic).await.unwrap().is_empty());
    assert_eq!(store.active_visual_session(anna, T0).await.unwrap(), None);
    assert!(
        store
            .recent_visual_sessions(anna, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A refused SMS doesn't count towards the SMS limits either.
    store.top_up_license(lic, 1, anna, T0 + 1).await.unwrap();
    store
        .create_visual_session(&NewVisualSession {
            sms_limits: SmsLimits {
                per_operator_per_hour: 1,
                per_number_per_day: 1,
            },
            ..sms(anna, lic, "06306167347", T0 + 2)
        })
        .await
        .unwrap();
});

on_both_databases!(one_open_session_per_operator, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let bela = user(&store, "bela").await;
    let lic = license(&store, "L", 10, &[anna, bela]).await;
    let first = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap()
        .session;
    let err = store
        .create_visual_session(&email(anna, lic, "x@example.com", T0 + MIN))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VisualError::ActiveSession { id } if id == first.id),
        "{err:?}"
    );
    assert!(err.to_string().contains("active session"), "{err}");
    assert_eq!(credits(&store, lic).await, 9);
    // Another operator is not blocked.
    store
        .create_visual_session(&email(bela, lic, "x@example.com", T0 + MIN))
        .await
        .unwrap();
    assert_eq!(
        store
            .active_visual_session(anna, T0 + 2 * MIN)
            .await
            .unwrap()
            .map(|s| s.id),
        Some(first.id)
    );
    let ended = store
        .end_visual_session(first.id, T0 + 3 * MIN)
        .await
        .unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.end_reason, Some(EndReason::OperatorClosed));
    assert_eq!(ended.ended_at_ms, Some(T0 + 3 * MIN));
    assert_eq!(
        store
            .active_visual_session(anna, T0 + 3 * MIN)
            .await
            .unwrap(),
        None
    );
    store
        .create_visual_session(&sms(anna, lic, "06306167347", T0 + 4 * MIN))
        .await
        .unwrap();

    // The same operator twice at once (two tabs): one session, one charge.
    let carl = user(&store, "carl").await;
    store.grant_license(carl, lic).await.unwrap();
    let before = credits(&store, lic).await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_visual_session(&email(carl, lic, &format!("c{i}@example.com"), T0))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => won.push(c.session.id),
            Err(VisualError::ActiveSession { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(credits(&store, lic).await, before - 1);
});

on_both_databases!(
    an_unclosed_session_expires_after_an_hour,
    |store: Store| async move {
        let anna = user(&store, "anna").await;
        let lic = license(&store, "L", 10, &[anna]).await;
        let s = store
            .create_visual_session(&sms(anna, lic, "06306167347", T0))
            .await
            .unwrap();
        let id = s.session.id;

        // Just before the hour it still blocks a new one.
        let open = store
            .active_visual_session(anna, T0 + HOUR - 1)
            .await
            .unwrap();
        assert_eq!(open.map(|s| s.id), Some(id));
        let err = store
            .create_visual_session(&sms(anna, lic, "06306167347", T0 + HOUR - 1))
            .await
            .unwrap_err();
        assert!(matches!(err, VisualError::ActiveSession { .. }), "{err:?}");

        // The operator's page is open: activity at T0+50min moves the end to T0+110min.
        let touched = store.touch_visual_session(id, T0 + 50 * MIN).await.unwrap();
        assert_eq!(touched.expires_at_ms(), Some(T0 + 110 * MIN));
        // An older touch (a late request) doesn't move it back.
        store.touch_visual_session(id, T0 + 10 * MIN).await.unwrap();
        let joined = store
            .mark_visual_session_joined(id, T0 + 60 * MIN)
            .await
            .unwrap();
        assert_eq!(joined.state, SessionState::Joined);
        assert_eq!(joined.expires_at_ms(), Some(T0 + 110 * MIN));
        assert!(
            store
                .visual_session_by_token(&s.token, T0 + 110 * MIN - 1)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .active_visual_session(anna, T0 + 110 * MIN - 1)
                .await
                .unwrap()
                .is_some()
        );

        // At the hour it has closed by itself, ending when the hour ran out.
        assert_eq!(
            store
                .active_visual_session(anna, T0 + 110 * MIN)
                .await
                .unwrap(),
            None
        );
        let ended = store.visual_session(id).await.unwrap().unwrap();
        assert_eq!(ended.state, SessionState::Ended);
        assert_eq!(ended.end_reason, Some(EndReason::Expired));
        assert_eq!(ended.ended_at_ms, Some(T0 + 110 * MIN));
        assert!(matches!(
            store.touch_visual_session(id, T0 + 111 * MIN).await,
            Err(VisualError::Ended)
        ));
        assert!(matches!(
            store
                .add_visual_message(id, Party::Customer, "hello", None, T0 + 111 * MIN)
                .await,
            Err(VisualError::Ended)
        ));
        // Closing it now keeps the reason and time it expired with.
        let again = store.end_visual_session(id, T0 + 2 * HOUR).await.unwrap();
        assert_eq!(again.end_reason, Some(EndReason::Expired));
        assert_eq!(again.ended_at_ms, Some(T0 + 110 * MIN));

        // A new one can start, and the expiry also happens inside create when nobody looked.
        let second = store
            .create_visual_session(&sms(anna, lic, "06306167347", T0 + 3 * HOUR))
            .await
            .unwrap();
        let third = store
            .create_visual_session(&sms(anna, lic, "06306167347", T0 + 4 * HOUR))
            .await
            .unwrap();
        let second = store
            .visual_session(second.session.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.end_reason, Some(EndReason::Expired));
        assert_eq!(second.ended_at_ms, Some(T0 + 4 * HOUR));
        assert_eq!(third.session.state, SessionState::Invited);

        // The sweep for everyone.
        assert_eq!(
            store
                .expire_visual_sessions(T0 + 5 * HOUR - 1)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store.expire_visual_sessions(T0 + 5 * HOUR).await.unwrap(),
            1
        );
        assert_eq!(
            store
                .visual_session(third.session.id)
                .await
                .unwrap()
                .unwrap()
                .state,
            SessionState::Ended
        );
    }
);

on_both_databases!(link_tokens, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let bela = user(&store, "bela").await;
    let lic = license(&store, "L", 10, &[anna, bela]).await;
    let a = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap();
    let b = store
        .create_visual_session(&sms(bela, lic, "06306167348", T0))
        .await
        .unwrap();
    assert!(a.token.len() >= 22, "{}", a.token);
    assert!(
        a.token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_ne!(a.token, b.token);

    let found = store
        .visual_session_by_token(&a.token, T0 + 1)
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.id), Some(a.session.id));
    let found = store
        .visual_session_by_token(&b.token, T0 + 1)
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.id), Some(b.session.id));
    // Wrong tokens: unknown, altered, empty, absurdly long.
    let mut altered = a.token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for wrong in [
        "nope".to_string(),
        altered,
        String::new(),
        "x".repeat(10_000),
    ] {
        assert_eq!(
            store.visual_session_by_token(&wrong, T0 + 1).await.unwrap(),
            None
        );
    }

    // Only the token's SHA-256 is stored; the token is nowhere in the row.
    let rows = sqlx::query("SELECT token_hash FROM visual_sessions ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let stored: Vec<String> = rows.iter().map(|r| r.try_get(0).unwrap()).collect();
    assert_eq!(
        stored,
        vec![
            hotline_core::tokens::sha256_hex(&a.token),
            hotline_core::tokens::sha256_hex(&b.token)
        ]
    );
    for (hash, token) in stored.iter().zip([&a.token, &b.token]) {
        assert_eq!(hash.len(), 64);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(hash, token);
        assert!(!hash.contains(token.as_str()));
    }

    // Ended: None.
    store
        .end_visual_session(a.session.id, T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        store
            .visual_session_by_token(&a.token, T0 + 3)
            .await
            .unwrap(),
        None
    );
    // Expired: None, and the session is closed as it is noticed.
    assert_eq!(
        store
            .visual_session_by_token(&b.token, T0 + HOUR)
            .await
            .unwrap(),
        None
    );
    let b_now = store.visual_session(b.session.id).await.unwrap().unwrap();
    assert_eq!(b_now.end_reason, Some(EndReason::Expired));
});

on_both_databases!(join_and_end, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let lic = license(&store, "L", 10, &[anna]).await;
    let s = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap()
        .session;
    let joined = store
        .mark_visual_session_joined(s.id, T0 + MIN)
        .await
        .unwrap();
    assert_eq!(joined.state, SessionState::Joined);
    assert_eq!(joined.joined_at_ms, Some(T0 + MIN));
    // A reload of the customer's page keeps the first join time.
    let again = store
        .mark_visual_session_joined(s.id, T0 + 2 * MIN)
        .await
        .unwrap();
    assert_eq!(again.joined_at_ms, Some(T0 + MIN));
    let ended = store.end_visual_session(s.id, T0 + 7 * MIN).await.unwrap();
    assert_eq!(ended.end_reason, Some(EndReason::OperatorClosed));
    // Ending twice changes nothing; joining after the end is refused.
    let twice = store.end_visual_session(s.id, T0 + 9 * MIN).await.unwrap();
    assert_eq!(twice.ended_at_ms, Some(T0 + 7 * MIN));
    assert!(matches!(
        store.mark_visual_session_joined(s.id, T0 + 10 * MIN).await,
        Err(VisualError::Ended)
    ));
    assert!(matches!(
        store.end_visual_session(s.id + 1000, T0).await,
        Err(VisualError::NotFound)
    ));
    assert!(matches!(
        store.touch_visual_session(s.id + 1000, T0).await,
        Err(VisualError::NotFound)
    ));
    assert_eq!(store.visual_session(s.id + 1000).await.unwrap(), None);
    let recent = store.recent_visual_sessions(anna, None, 10).await.unwrap();
    assert_eq!(recent[0].duration_ms, Some(6 * MIN));

    // A refusal that notices the expiry keeps it: the session reads as expired after.
    for (i, refused_at) in [3 * HOUR, 5 * HOUR].into_iter().enumerate() {
        let at = T0 + refused_at - 2 * HOUR;
        let s = store
            .create_visual_session(&sms(anna, lic, "06306167347", at))
            .await
            .unwrap()
            .session;
        let err = if i == 0 {
            store.touch_visual_session(s.id, T0 + refused_at).await
        } else {
            store
                .mark_visual_session_joined(s.id, T0 + refused_at)
                .await
        };
        assert!(matches!(err, Err(VisualError::Ended)), "{err:?}");
        let now = store.visual_session(s.id).await.unwrap().unwrap();
        assert_eq!(now.end_reason, Some(EndReason::Expired));
        assert_eq!(now.ended_at_ms, Some(at + HOUR));
    }
});

on_both_databases!(sms_limits, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let bela = user(&store, "bela").await;
    let lic = license(&store, "L", 100, &[anna, bela]).await;
    let limits = SmsLimits {
        per_operator_per_hour: 2,
        per_number_per_day: 3,
    };
    let invite = |u: i64, phone: &str, now: i64| NewVisualSession {
        sms_limits: limits,
        ..sms(u, lic, phone, now)
    };
    // Per operator per hour: two SMS, then refused until the first is an hour old.
    for (i, phone) in ["06201111111", "06202222222"].iter().enumerate() {
        let s = store
            .create_visual_session(&invite(anna, phone, T0 + i as i64 * MIN))
            .await
            .unwrap();
        store
            .end_visual_session(s.session.id, T0 + i as i64 * MIN + 1)
            .await
            .unwrap();
    }
    let before = credits(&store, lic).await;
    let err = store
        .create_visual_session(&invite(anna, "06203333333", T0 + 30 * MIN))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VisualError::SmsLimit {
                scope: SmsLimitScope::PerOperatorPerHour,
                max: 2
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("at most 2 SMS invitations an hour"),
        "{err}"
    );
    assert_eq!(credits(&store, lic).await, before);
    // E-mail invitations are not limited by the SMS limits.
    let e = store
        .create_visual_session(&NewVisualSession {
            sms_limits: limits,
            ..email(anna, lic, "c@example.com", T0 + 31 * MIN)
        })
        .await
        .unwrap();
    store
        .end_visual_session(e.session.id, T0 + 32 * MIN)
        .await
        .unwrap();
    // An hour after the first SMS there is room for one again.
    let s = store
        .create_visual_session(&invite(anna, "06203333333", T0 + HOUR + 1))
        .await
        .unwrap();
    store
        .end_visual_session(s.session.id, T0 + HOUR + 2)
        .await
        .unwrap();

    // Per number per day, whoever sends: the number 06 70 … got 3 in a day.
    let x = "+36 70 999 0000";
    for (i, u) in [bela, bela, anna].into_iter().enumerate() {
        let now = T0 + 3 * HOUR + i as i64 * HOUR;
        let s = store
            .create_visual_session(&invite(u, x, now))
            .await
            .unwrap();
        store
            .end_visual_session(s.session.id, now + 1)
            .await
            .unwrap();
    }
    let err = store
        .create_visual_session(&invite(bela, "06 70 999 0000", T0 + 10 * HOUR))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VisualError::SmsLimit {
                scope: SmsLimitScope::PerNumberPerDay,
                max: 3
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("one number may get at most 3"),
        "{err}"
    );
    // Another number is fine; the same one 24 hours after the first SMS to it too.
    let s = store
        .create_visual_session(&invite(bela, "06 70 999 0001", T0 + 10 * HOUR))
        .await
        .unwrap();
    store
        .end_visual_session(s.session.id, T0 + 10 * HOUR + 1)
        .await
        .unwrap();
    store
        .create_visual_session(&invite(bela, x, T0 + 3 * HOUR + DAY + 1))
        .await
        .unwrap();
});

on_both_databases!(
    last_sessions_newest_first_by_day,
    |store: Store| async move {
        let anna = user(&store, "anna").await;
        let bela = user(&store, "bela").await;
        let lic_a = license(&store, "Alfa", 100, &[anna, bela]).await;
        let lic_b = license(&store, "Béta", 100, &[anna]).await;
        // Day 1: 8 sessions, day 2: 6 sessions, one an hour.
        let day1 = T0 - T0 % DAY;
        let day2 = day1 + DAY;
        let mut made = Vec::new();
        for (day, n) in [(day1, 8), (day2, 6)] {
            for i in 0..n {
                let at = day + (i + 1) * HOUR;
                let lic = if i % 2 == 0 { lic_a } else { lic_b };
                let new = if i % 3 == 0 {
                    email(anna, lic, &format!("c{i}@example.com"), at)
                } else {
                    sms(anna, lic, &format!("06 30 000 00{:02}", i), at)
                };
                let new = NewVisualSession {
                    case_number: Some(format!("CASE-{}-{i}", if day == day1 { 1 } else { 2 })),
                    ..new
                };
                let s = store.create_visual_session(&new).await.unwrap().session;
                // Every other customer joins; each session is closed 10 minutes in.
                if i % 2 == 0 {
                    store
                        .mark_visual_session_joined(s.id, at + 2 * MIN)
                        .await
                        .unwrap();
                }
                store.end_visual_session(s.id, at + 10 * MIN).await.unwrap();
                made.push(s);
            }
        }
        // Someone else's session never shows.
        store
            .create_visual_session(&sms(bela, lic_a, "06301234567", day2 + 12 * HOUR))
            .await
            .unwrap();
        // An open one shows without a duration.
        let open = store
            .create_visual_session(&sms(anna, lic_a, "06301234567", day2 + 20 * HOUR))
            .await
            .unwrap()
            .session;

        let recent = store.recent_visual_sessions(anna, None, 10).await.unwrap();
        assert_eq!(recent.len(), 10);
        assert_eq!(recent[0].id, open.id);
        assert_eq!(recent[0].duration_ms, None);
        assert_eq!(recent[0].state, SessionState::Invited);
        let mut expected: Vec<i64> = made.iter().rev().take(9).map(|s| s.id).collect();
        expected.insert(0, open.id);
        assert_eq!(recent.iter().map(|s| s.id).collect::<Vec<_>>(), expected);
        assert!(
            recent
                .windows(2)
                .all(|w| w[0].created_at_ms > w[1].created_at_ms)
        );
        // The newest closed one: day 2, i = 5 (SMS, license Béta, never joined).
        let r = &recent[1];
        assert_eq!(r.case_number, "CASE-2-5");
        assert_eq!(r.created_at_ms, day2 + 6 * HOUR);
        assert_eq!(r.customer, "+36300000005");
        assert_eq!(r.channel, InviteChannel::Sms);
        assert_eq!(r.license_name, "Béta");
        assert_eq!(r.duration_ms, None);
        // Day 2, i = 4: joined 2 minutes in, closed at 10; i = 3: e-mail, license Béta.
        let joined = &recent[2];
        assert_eq!(joined.case_number, "CASE-2-4");
        assert_eq!(joined.duration_ms, Some(8 * MIN));
        assert_eq!(joined.license_name, "Alfa");
        assert_eq!(recent[3].case_number, "CASE-2-3");
        assert_eq!(recent[3].customer, "c3@example.com");
        assert_eq!(recent[3].channel, InviteChannel::Email);
        assert_eq!(recent[3].license_name, "Béta");

        // Filtered to day 1: its 8, newest first.
        let d1 = store
            .recent_visual_sessions(anna, Some((day1, day1 + DAY)), 10)
            .await
            .unwrap();
        assert_eq!(
            d1.iter()
                .map(|s| s.case_number.as_str())
                .collect::<Vec<_>>(),
            (0..8)
                .rev()
                .map(|i| format!("CASE-1-{i}"))
                .collect::<Vec<_>>()
        );
        let d2 = store
            .recent_visual_sessions(anna, Some((day2, day2 + DAY)), 10)
            .await
            .unwrap();
        assert_eq!(d2.len(), 7);
        let d3 = store
            .recent_visual_sessions(anna, Some((day2 + DAY, day2 + 2 * DAY)), 10)
            .await
            .unwrap();
        assert!(d3.is_empty());
        let limited = store.recent_visual_sessions(anna, None, 3).await.unwrap();
        assert_eq!(limited.len(), 3);
    }
);

on_both_databases!(chat_sequence_and_resends, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let lic = license(&store, "L", 10, &[anna]).await;
    let s = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap()
        .session;
    let m1 = store
        .add_visual_message(
            s.id,
            Party::Operator,
            "Jó napot!",
            Some("op-1".into()),
            T0 + 1,
        )
        .await
        .unwrap();
    let m2 = store
        .add_visual_message(s.id, Party::Customer, "Szia", Some("cu-1".into()), T0 + 2)
        .await
        .unwrap();
    let m3 = store
        .add_visual_message(s.id, Party::Customer, "no client id", None, T0 + 3)
        .await
        .unwrap();
    assert_eq!((m1.seq, m2.seq, m3.seq), (1, 2, 3));
    assert_eq!(m1.from, Party::Operator);
    assert_eq!(m1.text, "Jó napot!");
    // A resend returns the first message, and stores nothing.
    let again = store
        .add_visual_message(s.id, Party::Customer, "Szia", Some("cu-1".into()), T0 + 9)
        .await
        .unwrap();
    assert_eq!(again, m2);
    let all = store.visual_messages(s.id, 0).await.unwrap();
    assert_eq!(all, vec![m1.clone(), m2.clone(), m3.clone()]);
    assert_eq!(
        store.visual_messages(s.id, 2).await.unwrap(),
        vec![m3.clone()]
    );
    assert!(store.visual_messages(s.id, 3).await.unwrap().is_empty());

    // Concurrent sends: distinct, gapless numbers; concurrent resends: one message.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            let client_id = format!("burst-{}", i % 5);
            tokio::spawn(async move {
                store
                    .add_visual_message(s.id, Party::Customer, "x", Some(client_id), T0 + 10)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = store.visual_messages(s.id, 0).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );

    // An operator's message is operator activity; a customer's is not.
    store
        .add_visual_message(s.id, Party::Customer, "still there?", None, T0 + 40 * MIN)
        .await
        .unwrap();
    let now = store.visual_session(s.id).await.unwrap().unwrap();
    assert_eq!(now.last_activity_at_ms, T0 + 1); // the operator's first message
    store
        .add_visual_message(s.id, Party::Operator, "yes", None, T0 + 45 * MIN)
        .await
        .unwrap();
    let now = store.visual_session(s.id).await.unwrap().unwrap();
    assert_eq!(now.last_activity_at_ms, T0 + 45 * MIN);

    // Refused: empty text, unknown or ended session; a resend after the end still
    // gets its message back.
    assert!(matches!(
        store
            .add_visual_message(s.id, Party::Customer, "  ", None, T0 + 46 * MIN)
            .await,
        Err(VisualError::Invalid(_))
    ));
    assert!(matches!(
        store
            .add_visual_message(s.id + 99, Party::Customer, "hi", None, T0)
            .await,
        Err(VisualError::NotFound)
    ));
    store.end_visual_session(s.id, T0 + 50 * MIN).await.unwrap();
    assert!(matches!(
        store
            .add_visual_message(s.id, Party::Operator, "late", None, T0 + 51 * MIN)
            .await,
        Err(VisualError::Ended)
    ));
    let resent = store
        .add_visual_message(
            s.id,
            Party::Operator,
            "Jó napot!",
            Some("op-1".into()),
            T0 + 52 * MIN,
        )
        .await
        .unwrap();
    assert_eq!(resent, m1);
});

on_both_databases!(photos_and_snapshots, |store: Store| async move {
    let anna = user(&store, "anna").await;
    let lic = license(&store, "L", 10, &[anna]).await;
    let s = store
        .create_visual_session(&sms(anna, lic, "06306167347", T0))
        .await
        .unwrap()
        .session;
    let photo = store
        .add_visual_file(s.id, FileKind::Photo, "image/jpeg", 123_456, T0 + MIN)
        .await
        .unwrap();
    let snap = store
        .add_visual_file(s.id, FileKind::Snapshot, "image/png", 99, T0 + 2 * MIN)
        .await
        .unwrap();
    for f in [&photo, &snap] {
        assert_eq!(f.id.len(), 32);
        assert!(f.id.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(photo.id, snap.id);
    assert_eq!(
        store.visual_files(s.id).await.unwrap(),
        vec![photo.clone(), snap.clone()]
    );
    assert_eq!(
        store.visual_file(&photo.id).await.unwrap().as_ref(),
        Some(&photo)
    );
    assert_eq!(store.visual_file("0123").await.unwrap(), None);
    // The operator's snapshot counts as activity.
    let now = store.visual_session(s.id).await.unwrap().unwrap();
    assert_eq!(now.last_activity_at_ms, T0 + 2 * MIN);
    assert!(matches!(
        store
            .add_visual_file(s.id, FileKind::Photo, "not a type", 1, T0 + 3 * MIN)
            .await,
        Err(VisualError::Invalid(_))
    ));
    store.end_visual_session(s.id, T0 + 4 * MIN).await.unwrap();
    assert!(matches!(
        store
            .add_visual_file(s.id, FileKind::Photo, "image/jpeg", 1, T0 + 5 * MIN)
            .await,
        Err(VisualError::Ended)
    ));
});

on_both_databases!(licenses_and_their_history, |store: Store| async move {
    let admin = user(&store, "admin").await;
    let anna = user(&store, "anna").await;
    let bela = user(&store, "bela").await;
    let lic = store.add_license("Alfa", 2, T0).await.unwrap();
    let other = store.add_license("Béta", 0, T0).await.unwrap();
    assert!(matches!(
        store.add_license(" Alfa ", 1, T0).await,
        Err(VisualError::LicenseExists(_))
    ));
    assert!(matches!(
        store.add_license("", 1, T0).await,
        Err(VisualError::Invalid(_))
    ));
    assert!(matches!(
        store.add_license("Negative", -1, T0).await,
        Err(VisualError::Invalid(_))
    ));
    let names: Vec<_> = store
        .licenses()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.credits))
        .collect();
    assert_eq!(names, vec![("Alfa".into(), 2), ("Béta".into(), 0)]);

    // Grants: the drop-down lists only what a user was given.
    store.grant_license(anna, lic).await.unwrap();
    store.grant_license(anna, lic).await.unwrap(); // twice is fine
    store.grant_license(anna, other).await.unwrap();
    store.grant_license(bela, other).await.unwrap();
    assert!(matches!(
        store.grant_license(anna, other + 100).await,
        Err(VisualError::LicenseNotFound)
    ));
    assert!(matches!(
        store.grant_license(bela + 100, lic).await,
        Err(VisualError::UserNotFound)
    ));
    let for_anna: Vec<_> = store
        .licenses_for_user(anna)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(for_anna, vec!["Alfa", "Béta"]);
    let for_bela = store.licenses_for_user(bela).await.unwrap();
    assert_eq!(for_bela.len(), 1);
    assert_eq!(for_bela[0].id, other);

    // Top-ups: only whole, positive amounts.
    assert_eq!(
        store
            .top_up_license(lic, 10, admin, T0 + MIN)
            .await
            .unwrap(),
        12
    );
    for bad in [0, -5, 1_000_001] {
        assert!(matches!(
            store.top_up_license(lic, bad, admin, T0 + MIN).await,
            Err(VisualError::Invalid(_))
        ));
    }
    assert!(matches!(
        store.top_up_license(lic + 100, 1, admin, T0).await,
        Err(VisualError::LicenseNotFound)
    ));
    assert!(matches!(
        store.top_up_license(lic, 1, admin + 100, T0).await,
        Err(VisualError::UserNotFound)
    ));
    let s = store
        .create_visual_session(&NewVisualSession {
            case_number: Some("K-1".into()),
            ..sms(anna, lic, "06306167347", T0 + 2 * MIN)
        })
        .await
        .unwrap()
        .session;

    let history = store.license_history(lic).await.unwrap();
    let view: Vec<_> = history
        .iter()
        .map(|e| {
            (
                e.kind,
                e.amount,
                e.balance_after,
                e.user_name.as_deref(),
                e.session_id,
                e.case_number.as_deref(),
                e.at_ms,
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            (
                LicenseEntryKind::Charge,
                -1,
                11,
                Some("anna"),
                Some(s.id),
                Some("K-1"),
                T0 + 2 * MIN
            ),
            (
                LicenseEntryKind::TopUp,
                10,
                12,
                Some("admin"),
                None,
                None,
                T0 + MIN
            ),
            (LicenseEntryKind::TopUp, 2, 2, None, None, None, T0),
        ]
    );
    assert_eq!(history[0].user_id, Some(anna));
    assert!(store.license_history(other).await.unwrap().is_empty());

    // Revoked: no longer in the list, and refused.
    store.end_visual_session(s.id, T0 + 3 * MIN).await.unwrap();
    assert!(store.revoke_license(anna, lic).await.unwrap());
    assert!(!store.revoke_license(anna, lic).await.unwrap());
    assert_eq!(store.licenses_for_user(anna).await.unwrap().len(), 1);
    assert!(matches!(
        store
            .create_visual_session(&sms(anna, lic, "06306167347", T0 + 4 * MIN))
            .await,
        Err(VisualError::LicenseNotAllowed)
    ));
    assert_eq!(credits(&store, lic).await, 11);
});

on_both_databases!(
    a_session_invited_from_a_call_is_linked_to_it,
    |store: Store| async move {
        let anna = user(&store, "anna").await;
        let bela = user(&store, "bela").await;
        let lic = license(&store, "Biztosító Zrt.", 3, &[anna, bela]).await;
        let created = store
            .create_visual_session(&sms(anna, lic, "+36 30 616 7347", T0))
            .await
            .unwrap();
        let id = created.session.id;
        assert!(
            store
                .visual_sessions_of_call("call-1")
                .await
                .unwrap()
                .is_empty()
        );
        // Only the session's own operator links it.
        assert!(
            !store
                .link_visual_session_to_call(id, bela, "call-1")
                .await
                .unwrap()
        );
        assert!(
            store
                .link_visual_session_to_call(id, anna, "call-1")
                .await
                .unwrap()
        );
        let linked = store.visual_sessions_of_call("call-1").await.unwrap();
        assert_eq!(
            linked,
            vec![(
                id,
                created.session.case_number.clone(),
                "invited".to_string()
            )]
        );
        assert!(
            store
                .visual_sessions_of_call("call-2")
                .await
                .unwrap()
                .is_empty()
        );
    }
);
