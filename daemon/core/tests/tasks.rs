//! The tasks widget's store: adding with parameters and an assignee, validation, who sees
//! what and in which order, completing, rescheduling, the exclusive call claim (a race of
//! many operators, lapse on a virtual clock, release) and the history of every change.
//! Every test runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::callbacks::{CallbackSource, NewCallbackNote};
use hotline_core::store::Store;
use hotline_core::tasks::{
    Assignee, NewTask, Queues, REPEAT_CLAIM_MS, Task, TaskError, TaskEventKind, TaskParam,
    TaskState,
};

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const CLAIM: i64 = 10 * MIN;

fn param(key: &str, value: &str) -> TaskParam {
    TaskParam {
        key: key.into(),
        value: value.into(),
    }
}

/// A callback task for anna's list, due in an hour.
fn callback<'a>(title: &'a str, params: &'a [TaskParam]) -> NewTask<'a> {
    NewTask {
        title,
        number: Some("+36301234567"),
        due_at_ms: T0 + HOUR,
        note: None,
        params,
        assignee: None,
        call_id: None,
        callback_entry_id: None,
        created_by: "anna",
        now_ms: T0,
    }
}

async fn add(store: &Store, t: NewTask<'_>) -> Task {
    store.add_task(&t).await.unwrap()
}

async fn open_ids(store: &Store, operator: &str, queues: Queues<'_>) -> Vec<i64> {
    store
        .tasks_for(operator, queues, false, 100)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect()
}

fn kinds(events: &[hotline_core::tasks::TaskEvent]) -> Vec<(TaskEventKind, &str)> {
    events
        .iter()
        .map(|e| (e.kind, e.operator.as_str()))
        .collect()
}

on_both_databases!(add_and_read_back, |store: Store| async move {
    let entry = store
        .note_callback(&NewCallbackNote {
            number: "+36301234567",
            queue: Some("sales"),
            source: CallbackSource::Missed,
            promised_at_ms: None,
            call_id: Some("call-1"),
            now_ms: T0 - HOUR,
        })
        .await
        .unwrap();
    let params = [param(" contract ", " HU-2024-118 "), param("plan", "gold")];
    let t = add(
        &store,
        NewTask {
            title: "  Call back about the contract ",
            number: Some(" +36 30 123-4567 "),
            note: Some("Prefers mornings.\nSpeaks English."),
            assignee: Some(Assignee::Queue("sales".into())),
            call_id: Some("call-1"),
            callback_entry_id: Some(entry.id),
            ..callback("", &params)
        },
    )
    .await;
    assert_eq!(t.title, "Call back about the contract");
    assert_eq!(t.number.as_deref(), Some("+36301234567"));
    assert_eq!(
        t.note.as_deref(),
        Some("Prefers mornings.\nSpeaks English.")
    );
    assert_eq!((t.due_at_ms, t.created_at_ms), (T0 + HOUR, T0));
    assert_eq!(t.assignee, Some(Assignee::Queue("sales".into())));
    assert_eq!(t.state, TaskState::Open);
    assert_eq!(t.call_id.as_deref(), Some("call-1"));
    assert_eq!(t.callback_entry_id, Some(entry.id));
    assert_eq!(t.created_by, "anna");
    assert_eq!(t.claimed_at(T0), None);
    // Parameters trimmed, in the order given.
    assert_eq!(
        t.params,
        vec![param("contract", "HU-2024-118"), param("plan", "gold")]
    );
    assert_eq!(store.task(t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.task(t.id + 1000).await.unwrap(), None);

    let history = store.task_events(t.id).await.unwrap();
    assert_eq!(kinds(&history), vec![(TaskEventKind::Created, "anna")]);
    assert_eq!(
        (
            history[0].at_ms,
            history[0].due_at_ms,
            history[0].note.as_deref()
        ),
        (
            T0,
            Some(T0 + HOUR),
            Some("Prefers mornings.\nSpeaks English.")
        )
    );

    // No number and no parameters: a plain to-do.
    let todo = add(
        &store,
        NewTask {
            number: Some("  "),
            ..callback("Send the brochure", &[])
        },
    )
    .await;
    assert_eq!((todo.number, todo.params.len()), (None, 0));
    assert_eq!(todo.assignee, None);
});

on_both_databases!(bad_input_is_refused, |store: Store| async move {
    let many: Vec<TaskParam> = (0..21).map(|i| param(&format!("k{i}"), "v")).collect();
    let twice = [param("plan", "gold"), param("plan", "silver")];
    let long_key = [param(&"k".repeat(41), "v")];
    let no_value = [param("plan", " ")];
    let long_title = "t".repeat(201);
    let long_note = "n".repeat(2001);
    let cases: Vec<(&str, NewTask<'_>)> = vec![
        ("empty title", callback("  ", &[])),
        ("long title", callback(&long_title, &[])),
        ("two-line title", callback("Call\nback", &[])),
        (
            "letters in the number",
            NewTask {
                number: Some("+3630 CALL ME"),
                ..callback("t", &[])
            },
        ),
        (
            "two digits",
            NewTask {
                number: Some("12"),
                ..callback("t", &[])
            },
        ),
        (
            "21 digits",
            NewTask {
                number: Some("+123456789012345678901"),
                ..callback("t", &[])
            },
        ),
        (
            "control character in the note",
            NewTask {
                note: Some("bell \u{7}"),
                ..callback("t", &[])
            },
        ),
        (
            "long note",
            NewTask {
                note: Some(&long_note),
                ..callback("t", &[])
            },
        ),
        ("21 parameters", callback("t", &many)),
        ("a parameter twice", callback("t", &twice)),
        ("long parameter name", callback("t", &long_key)),
        ("parameter without value", callback("t", &no_value)),
        (
            "empty queue",
            NewTask {
                assignee: Some(Assignee::Queue(" ".into())),
                ..callback("t", &[])
            },
        ),
        (
            "due over 30 days ago",
            NewTask {
                due_at_ms: T0 - 31 * DAY,
                ..callback("t", &[])
            },
        ),
        (
            "due over two years ahead",
            NewTask {
                due_at_ms: T0 + 3 * 366 * DAY,
                ..callback("t", &[])
            },
        ),
        (
            "unknown callback entry",
            NewTask {
                callback_entry_id: Some(999_999),
                ..callback("t", &[])
            },
        ),
        (
            "no author",
            NewTask {
                created_by: "",
                ..callback("t", &[])
            },
        ),
    ];
    for (what, t) in cases {
        let err = store.add_task(&t).await.unwrap_err();
        assert!(matches!(err, TaskError::Invalid(_)), "{what}: {err}");
    }
    assert!(open_ids(&store, "anna", Queues::Any).await.is_empty());

    // The limits themselves are fine; a past due time within 30 days too.
    let twenty: Vec<TaskParam> = many[..20].to_vec();
    let ok = add(
        &store,
        NewTask {
            due_at_ms: T0 - 29 * DAY,
            number: Some("+12345678901234567890"),
            ..callback(&long_title[..200], &twenty)
        },
    )
    .await;
    assert_eq!(ok.params.len(), 20);
    assert!(ok.is_overdue_at(T0));
});

on_both_databases!(who_sees_what_in_which_order, |store: Store| async move {
    let at = |due: i64, assignee: Option<Assignee>, by: &'static str| NewTask {
        due_at_ms: due,
        assignee,
        created_by: by,
        ..callback("t", &[])
    };
    let op = |n: &str| Some(Assignee::Operator(n.into()));
    let queue = |n: &str| Some(Assignee::Queue(n.into()));
    // Due times out of insertion order; two are overdue at T0.
    let free = add(&store, at(T0 + 3 * HOUR, None, "zoe")).await;
    let mine = add(&store, at(T0 + HOUR, op("anna"), "zoe")).await;
    let belas = add(&store, at(T0 + 2 * HOUR, op("bela"), "zoe")).await;
    let sales = add(&store, at(T0 - HOUR, queue("sales"), "zoe")).await;
    let support = add(&store, at(T0 + 4 * HOUR, queue("support"), "zoe")).await;
    let for_bela_by_anna = add(&store, at(T0 - 2 * HOUR, op("bela"), "anna")).await;

    assert_eq!(
        open_ids(&store, "anna", Queues::Any).await,
        vec![for_bela_by_anna.id, sales.id, mine.id, free.id, support.id]
    );
    assert_eq!(
        open_ids(&store, "anna", Queues::Only(&["sales"])).await,
        vec![for_bela_by_anna.id, sales.id, mine.id, free.id]
    );
    assert_eq!(
        open_ids(&store, "anna", Queues::Only(&["sales", "support"])).await,
        vec![for_bela_by_anna.id, sales.id, mine.id, free.id, support.id]
    );
    assert_eq!(
        open_ids(&store, "bela", Queues::Only(&[])).await,
        vec![for_bela_by_anna.id, belas.id, free.id]
    );
    // The list and Task::visible_to agree.
    for t in [&free, &mine, &belas, &sales, &support, &for_bela_by_anna] {
        let listed = open_ids(&store, "anna", Queues::Only(&["sales"])).await;
        assert_eq!(
            listed.contains(&t.id),
            t.visible_to("anna", Queues::Only(&["sales"])),
            "task {}",
            t.id
        );
    }
    let list = store
        .tasks_for("anna", Queues::Any, false, 2)
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0].is_overdue_at(T0) && list[1].is_overdue_at(T0));
    assert!(!list[0].is_overdue_at(T0 - 3 * HOUR));
});

on_both_databases!(complete_and_reschedule, |store: Store| async move {
    let params = [param("contract", "HU-1")];
    let a = add(&store, callback("Call about the invoice", &params)).await;
    let b = add(
        &store,
        NewTask {
            due_at_ms: T0 + 2 * HOUR,
            note: Some("first note"),
            ..callback("Call about the offer", &[])
        },
    )
    .await;
    assert_eq!(
        open_ids(&store, "anna", Queues::Any).await,
        vec![a.id, b.id]
    );

    // Rescheduling b before a: the order follows, the note is replaced.
    let t = T0 + 10 * MIN;
    let moved = store
        .reschedule_task(b.id, "bela", T0 + 30 * MIN, Some(" asked for 10:30 "), t)
        .await
        .unwrap();
    assert_eq!(moved.due_at_ms, T0 + 30 * MIN);
    assert_eq!(moved.note.as_deref(), Some("asked for 10:30"));
    assert_eq!(
        open_ids(&store, "anna", Queues::Any).await,
        vec![b.id, a.id]
    );
    // Without a note the note stays.
    let again = store
        .reschedule_task(b.id, "anna", T0 + 3 * HOUR, None, t)
        .await
        .unwrap();
    assert_eq!(again.note.as_deref(), Some("asked for 10:30"));
    // Not into the past, nor now.
    for due in [t, t - MIN] {
        let err = store
            .reschedule_task(b.id, "anna", due, None, t)
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::Invalid(_)), "{err}");
    }
    let err = store
        .reschedule_task(999_999, "anna", t + HOUR, None, t)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NotFound), "{err}");

    // Completing a: off the open list, on the list with done ones, after the open ones.
    let done = store
        .complete_task(a.id, "anna", Some("reached, sorted"), t + MIN)
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Done);
    assert_eq!(
        (done.done_by.as_deref(), done.done_at_ms),
        (Some("anna"), Some(t + MIN))
    );
    assert_eq!(done.params, a.params);
    assert_eq!(open_ids(&store, "anna", Queues::Any).await, vec![b.id]);
    let all: Vec<i64> = store
        .tasks_for("anna", Queues::Any, true, 100)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, vec![b.id, a.id]);
    assert!(
        !done.is_overdue_at(T0 + DAY),
        "done tasks are never overdue"
    );

    // Done is done: no second completion, no reschedule, no call.
    let err = store
        .complete_task(a.id, "bela", None, t + 2 * MIN)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Done), "{err}");
    let err = store
        .reschedule_task(a.id, "anna", t + HOUR, None, t + 2 * MIN)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Done), "{err}");
    let err = store
        .claim_task_call(a.id, "anna", CLAIM, t + 2 * MIN)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Done), "{err}");

    // The history of each.
    let ha = store.task_events(a.id).await.unwrap();
    assert_eq!(
        kinds(&ha),
        vec![
            (TaskEventKind::Created, "anna"),
            (TaskEventKind::Completed, "anna")
        ]
    );
    assert_eq!(ha[1].note.as_deref(), Some("reached, sorted"));
    let hb = store.task_events(b.id).await.unwrap();
    assert_eq!(
        kinds(&hb),
        vec![
            (TaskEventKind::Created, "anna"),
            (TaskEventKind::Rescheduled, "bela"),
            (TaskEventKind::Rescheduled, "anna")
        ]
    );
    assert_eq!(
        hb.iter().map(|e| e.due_at_ms).collect::<Vec<_>>(),
        vec![
            Some(T0 + 2 * HOUR),
            Some(T0 + 30 * MIN),
            Some(T0 + 3 * HOUR)
        ]
    );
    assert_eq!(hb[0].note.as_deref(), Some("first note"));
    assert_eq!(hb[1].note.as_deref(), Some("asked for 10:30"));
    assert_eq!(hb[2].note, None);
});

on_both_databases!(one_call_claim_wins, |store: Store| async move {
    let task = add(&store, callback("Call back", &[])).await;
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_task_call(task.id, &format!("op{i}"), CLAIM, T0 + MIN)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Ok(t) => winners.push(t.claimed_by.unwrap()),
            Err(TaskError::AlreadyClaimed { by }) => losers.push(by),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(losers.len(), 19);
    assert!(losers.iter().all(|by| *by == winners[0]), "{losers:?}");
    // One claim in the history, the winner's.
    let history = store.task_events(task.id).await.unwrap();
    assert_eq!(
        kinds(&history),
        vec![
            (TaskEventKind::Created, "anna"),
            (TaskEventKind::Claimed, winners[0].as_str())
        ]
    );
});

on_both_databases!(
    one_operator_clicking_twice_calls_once,
    |store: Store| async move {
        let task = add(&store, callback("Call back", &[])).await;
        let clicks: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_task_call(task.id, "anna", CLAIM, T0).await })
            })
            .collect();
        let mut claims = 0;
        for c in clicks {
            match c.await.unwrap() {
                Ok(t) => {
                    assert_eq!(t.claimed_by.as_deref(), Some("anna"));
                    claims += 1;
                }
                Err(TaskError::AlreadyCalling) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(claims, 1);
        let claimed = store
            .task_events(task.id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == TaskEventKind::Claimed)
            .count();
        assert_eq!(claimed, 1);
    }
);

on_both_databases!(claims_lapse_and_release, |store: Store| async move {
    let task = add(&store, callback("Call back", &[])).await;
    let claimed = store
        .claim_task_call(task.id, "anna", CLAIM, T0)
        .await
        .unwrap();
    assert_eq!(claimed.claimed_by.as_deref(), Some("anna"));
    assert_eq!(
        (claimed.claimed_at_ms, claimed.claim_expires_at_ms),
        (Some(T0), Some(T0 + CLAIM))
    );
    // Still listed (with who is calling), unlike the shared callback list.
    assert_eq!(open_ids(&store, "bela", Queues::Any).await, vec![task.id]);

    // While anna's claim lasts, to the millisecond, nobody else calls, completes or moves it.
    let last = T0 + CLAIM - 1;
    let err = store
        .claim_task_call(task.id, "bela", CLAIM, last)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TaskError::AlreadyClaimed { by } if by == "anna"),
        "{err}"
    );
    assert_eq!(err.to_string(), "anna is already calling this customer.");
    let err = store
        .complete_task(task.id, "bela", None, last)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TaskError::CallInProgress { by } if by == "anna"),
        "{err}"
    );
    let err = store
        .reschedule_task(task.id, "bela", T0 + DAY, None, last)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TaskError::CallInProgress { by } if by == "anna"),
        "{err}"
    );

    // anna clicking again at once (a double click, a second tab) doesn't dial twice.
    for t in [T0 + 1, T0 + REPEAT_CLAIM_MS - 1] {
        let err = store
            .claim_task_call(task.id, "anna", CLAIM, t)
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::AlreadyCalling), "{err}");
    }
    // Later she may call again, which extends her claim: same start, later end.
    let extended = store
        .claim_task_call(task.id, "anna", CLAIM, T0 + 5 * MIN)
        .await
        .unwrap();
    assert_eq!(
        (extended.claimed_at_ms, extended.claim_expires_at_ms),
        (Some(T0), Some(T0 + 5 * MIN + CLAIM))
    );

    // anna vanished: once her claim lapses bela may call.
    let lapse = T0 + 5 * MIN + CLAIM;
    let bela = store
        .claim_task_call(task.id, "bela", CLAIM, lapse)
        .await
        .unwrap();
    assert_eq!(bela.claimed_by.as_deref(), Some("bela"));
    assert_eq!(bela.claimed_at_ms, Some(lapse));
    assert_eq!(bela.claimed_at(lapse + CLAIM - 1), Some("bela"));
    assert_eq!(bela.claimed_at(lapse + CLAIM), None);
    // anna can't give back bela's claim.
    let err = store
        .release_task_call(task.id, "anna", None, lapse + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NotClaimer), "{err}");
    // bela's call could not start: he gives the claim back, and anna may call at once.
    let released = store
        .release_task_call(task.id, "bela", Some("no trunk"), lapse + 2)
        .await
        .unwrap();
    assert_eq!(released.claimed_by, None);
    assert_eq!(released.claim_expires_at_ms, None);
    let err = store
        .release_task_call(task.id, "bela", None, lapse + 3)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NotClaimer), "{err}");
    store
        .claim_task_call(task.id, "anna", CLAIM, lapse + 3)
        .await
        .unwrap();
    // The claimer completes it; the claim ends with it.
    let done = store
        .complete_task(task.id, "anna", None, lapse + 4)
        .await
        .unwrap();
    assert_eq!((done.state, done.claimed_by), (TaskState::Done, None));
    let err = store
        .release_task_call(task.id, "anna", None, lapse + 5)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Done), "{err}");

    let history = store.task_events(task.id).await.unwrap();
    assert_eq!(
        kinds(&history),
        vec![
            (TaskEventKind::Created, "anna"),
            (TaskEventKind::Claimed, "anna"),
            (TaskEventKind::Claimed, "anna"),
            (TaskEventKind::Claimed, "bela"),
            (TaskEventKind::Released, "bela"),
            (TaskEventKind::Claimed, "anna"),
            (TaskEventKind::Completed, "anna"),
        ]
    );
    assert_eq!(history[4].note.as_deref(), Some("no trunk"));
    assert_eq!(
        history.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![T0, T0, T0 + 5 * MIN, lapse, lapse + 2, lapse + 3, lapse + 4]
    );
});

on_both_databases!(claim_needs_a_number_and_a_task, |store: Store| async move {
    let todo = add(
        &store,
        NewTask {
            number: None,
            ..callback("Send the brochure", &[])
        },
    )
    .await;
    let err = store
        .claim_task_call(todo.id, "anna", CLAIM, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NoNumber), "{err}");
    let err = store
        .claim_task_call(999_999, "anna", CLAIM, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::NotFound), "{err}");
    let err = store
        .claim_task_call(todo.id, "anna", 0, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Invalid(_)), "{err}");
    // Nothing was recorded by the refusals.
    assert_eq!(store.task_events(todo.id).await.unwrap().len(), 1);
    // A to-do without a number is completed like any other.
    store
        .complete_task(todo.id, "bela", None, T0 + MIN)
        .await
        .unwrap();
});
