//! What the console's screen pop reads about a caller: their previous calls, callback
//! entries, open tasks and past chats, by number; on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::callbacks::{CallbackSource, EntryState, NewCallbackNote};
use hotline_core::cdr::{CallEnd, CallStart, EndReason};
use hotline_core::chat::{NewChat, NewVisitor};
use hotline_core::store::Store;
use hotline_core::tasks::{NewTask, TaskParam};
use hotline_core::testing::{call_end, call_start, store_finished_call};

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const CALLER: &str = "+36209990000";

async fn call_from(store: &Store, call_id: &str, caller: &str, at: i64, operator: Option<&str>) {
    store_finished_call(
        store,
        &CallStart {
            caller: caller.into(),
            ..call_start(call_id, at)
        },
        &CallEnd {
            reason: if operator.is_some() {
                EndReason::CallerHangup
            } else {
                EndReason::FlowHangup
            },
            operator: operator.map(str::to_string),
            ..call_end(at + MIN)
        },
    )
    .await
    .unwrap();
}

on_both_databases!(
    previous_calls_of_a_number_newest_first,
    |store: Store| async move {
        call_from(&store, "c1", CALLER, T0, Some("anna")).await;
        call_from(&store, "other", "+36301234567", T0 + MIN, Some("bela")).await;
        call_from(&store, "c2", CALLER, T0 + 2 * MIN, None).await;
        call_from(&store, "c3", CALLER, T0 + 3 * MIN, Some("bela")).await;

        let calls = store.calls_from_number(CALLER, 10).await.unwrap();
        let ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["c3", "c2", "c1"]);
        assert_eq!(calls[0].operator.as_deref(), Some("bela"));
        assert_eq!(calls[1].operator, None);
        assert_eq!(calls[1].end_reason.as_deref(), Some("flow_hangup"));
        assert_eq!(calls[2].started_at_ms, T0);

        // The limit keeps the newest.
        let two = store.calls_from_number(CALLER, 2).await.unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].call_id, "c2");
        assert!(
            store
                .calls_from_number("+3611", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_databases!(
    callback_entries_of_a_number_open_first,
    |store: Store| async move {
        let note = |number: &'static str, now_ms: i64| NewCallbackNote {
            number,
            queue: Some("support"),
            source: CallbackSource::Missed,
            promised_at_ms: None,
            call_id: None,
            now_ms,
        };
        let first = store.note_callback(&note(CALLER, T0)).await.unwrap();
        store.note_callback(&note(CALLER, T0 + MIN)).await.unwrap();
        store
            .note_callback(&note("+36301234567", T0))
            .await
            .unwrap();

        let entries = store.callback_entries_for_number(CALLER, 10).await.unwrap();
        let [entry] = &entries[..] else {
            panic!("one entry for the number: {entries:?}")
        };
        assert_eq!(entry.id, first.id);
        assert_eq!(entry.count, 2);
        assert_eq!(entry.state, EntryState::Open);
        assert_eq!(entry.queue.as_deref(), Some("support"));
        assert!(
            store
                .callback_entries_for_number("+3611", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_databases!(
    open_tasks_of_a_number_in_any_written_form,
    |store: Store| async move {
        let params = [TaskParam {
            key: "name".into(),
            value: "Kiss Péter".into(),
        }];
        let task = |title: &'static str, number: &'static str, due_at_ms: i64| NewTask {
            title,
            number: Some(number),
            due_at_ms,
            note: None,
            params: &params,
            assignee: None,
            call_id: None,
            callback_entry_id: None,
            created_by: "anna",
            now_ms: T0,
        };
        let later = store
            .add_task(&task("Send the offer", "+36 20 999 0000", T0 + 60 * MIN))
            .await
            .unwrap();
        let sooner = store
            .add_task(&task("Call back", CALLER, T0 + 30 * MIN))
            .await
            .unwrap();
        let done = store
            .add_task(&task("Done already", CALLER, T0 + 10 * MIN))
            .await
            .unwrap();
        store
            .complete_task(done.id, "anna", None, T0)
            .await
            .unwrap();
        store
            .add_task(&task("Someone else", "+36301234567", T0))
            .await
            .unwrap();

        let tasks = store.open_tasks_for_number(CALLER, 10).await.unwrap();
        let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [sooner.id, later.id], "open ones, due earliest first");
        assert_eq!(tasks[0].params, params);
        // Not a number: nothing, not an error.
        assert!(
            store
                .open_tasks_for_number("anonymous", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_databases!(
    past_chats_by_the_visitor_s_phone_or_e_mail,
    |store: Store| async move {
        let visitor = |key: &'static str, phone: Option<&str>, email: Option<&str>| NewVisitor {
            site: "main".into(),
            visitor_key: key.into(),
            name: Some(format!("visitor {key}")),
            phone: phone.map(str::to_string),
            email: email.map(str::to_string),
            now_ms: T0,
            ..NewVisitor::default()
        };
        // The phone as typed on the chat form, with spaces.
        let by_phone = store
            .upsert_visitor(&visitor(
                "a",
                Some("+36 20 999-0000"),
                Some("kiss@example.hu"),
            ))
            .await
            .unwrap();
        // Another browser of the same person: only the e-mail is the same.
        let by_email = store
            .upsert_visitor(&visitor("b", None, Some("kiss@example.hu")))
            .await
            .unwrap();
        let stranger = store
            .upsert_visitor(&visitor("c", Some("+36301234567"), None))
            .await
            .unwrap();
        let chat = |visitor_id: i64, topic: &str, at: i64| {
            let store = store.clone();
            let topic = topic.to_string();
            async move {
                store
                    .create_chat(&NewChat {
                        site: "main".into(),
                        visitor_id,
                        queue: "support".into(),
                        topic,
                        now_ms: at,
                        ..NewChat::default()
                    })
                    .await
                    .unwrap()
                    .0
                    .id
            }
        };
        let first = chat(by_phone.id, "invoice", T0).await;
        let second = chat(by_email.id, "delivery", T0 + MIN).await;
        chat(stranger.id, "other", T0 + 2 * MIN).await;

        let chats = store.chats_for_phone(CALLER, 10).await.unwrap();
        let ids: Vec<i64> = chats.iter().map(|c| c.id).collect();
        assert_eq!(ids, [second, first], "newest first");
        assert_eq!(chats[1].visitor_name.as_deref(), Some("visitor a"));
        assert_eq!(chats[0].topic, "delivery");
        assert!(store.chats_for_phone("", 10).await.unwrap().is_empty());
        assert!(store.chats_for_phone("+3611", 10).await.unwrap().is_empty());
    }
);
