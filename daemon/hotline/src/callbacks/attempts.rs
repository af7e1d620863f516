//! What a callback call means for its entry on the shared list: the queue's rules (how
//! long a call must last to count as a success, how long a failed entry hides) and the
//! recording of each attempt's outcome.

use std::time::Duration;

use hotline_core::callbacks::{AttemptOutcome, CallbackEntry, CallbackError};
use hotline_core::notify::{NotifierHandle, webhook};
use tracing::{info, warn};

use crate::context::Calls;
use crate::outbound::{Reached, attempt_outcome};
use hotline_core::time::{millis, unix_ms};

/// When an attempt counts as a success, and how long a failed entry stays off the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeRules {
    pub success_after: Duration,
    pub hide_after_failure: Duration,
}

impl Default for OutcomeRules {
    fn default() -> Self {
        OutcomeRules {
            success_after: Duration::from_secs(hotline_ivr::DEFAULT_SUCCESS_AFTER_SECS),
            hide_after_failure: Duration::from_secs(hotline_ivr::DEFAULT_HIDE_AFTER_FAILURE_SECS),
        }
    }
}

/// The rules of the entry's queue (the defaults for an entry without one, or a queue the
/// flows no longer declare).
pub fn rules_for(calls: &Calls, queue: Option<&str>) -> OutcomeRules {
    let flows = calls.flows_now();
    match queue.and_then(|q| flows.set.queues().get(q)) {
        Some(q) => OutcomeRules {
            success_after: Duration::from_secs(q.callbacks.success_after_secs),
            hide_after_failure: Duration::from_secs(q.callbacks.hide_after_failure_secs),
        },
        None => OutcomeRules::default(),
    }
}

/// What follows an attempt's `outcome` stored on its entry (`e`, as the store returned
/// it), by an operator's callback or (`operator` None) the automatic one: the metrics,
/// and for a success whether the promise was kept; the `callback.done` webhook.
pub async fn attempt_recorded(
    notifier: &NotifierHandle,
    e: &CallbackEntry,
    outcome: AttemptOutcome,
    operator: Option<&str>,
) {
    let by = if operator.is_some() {
        "operator"
    } else {
        "auto"
    };
    metrics::counter!(crate::metrics::CALLBACK_ATTEMPTS, "outcome" => outcome.as_str(), "by" => by)
        .increment(1);
    if let (Some(done), Some(promised)) = (e.done_at_ms, e.promised_at_ms) {
        let result = if done <= promised { "kept" } else { "late" };
        metrics::counter!(crate::metrics::CALLBACK_PROMISES, "result" => result).increment(1);
    }
    let data = webhook::callback_done(e, outcome, operator.unwrap_or("auto"), false);
    if let Err(err) = notifier.webhook(webhook::CALLBACK_DONE, &data).await {
        warn!(entry = e.id, "callback.done webhook not stored: {err}");
    }
}

/// Records how a callback attempt by `claimer` on `entry` went.
pub async fn record_attempt(calls: &Calls, entry: i64, claimer: &str, reached: Reached) {
    let queue = match calls.store.callback_entry(entry).await {
        Ok(Some(e)) => e.queue,
        Ok(None) => return,
        Err(e) => {
            warn!(
                entry,
                "callback outcome NOT recorded: reading the entry: {e}"
            );
            return;
        }
    };
    let rules = rules_for(calls, queue.as_deref());
    let (outcome, note, hide) = attempt_outcome(reached, rules.success_after);
    let hide_ms = if hide {
        millis(rules.hide_after_failure)
    } else {
        0
    };
    match calls
        .store
        .finish_callback(entry, claimer, outcome, Some(&note), hide_ms, unix_ms())
        .await
    {
        Ok(e) => {
            attempt_recorded(&calls.notifier, &e, outcome, Some(claimer)).await;
            info!(entry, %claimer, outcome = outcome.as_str(), %note, "callback attempt recorded")
        }
        Err(CallbackError::NotClaimer { by }) => {
            warn!(entry, %claimer, ?by, "callback outcome not recorded: another operator took the entry over")
        }
        Err(e) => warn!(entry, %claimer, "callback outcome NOT recorded: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use hotline_core::callbacks::{AttemptOutcome, CallbackSource, NewCallbackNote};
    use hotline_core::notify::webhook::{self, Delivery, WebhookConfig};
    use hotline_core::notify::{Channel, Notifier, NotifyConfig};
    use hotline_core::store::Store;
    use serde_json::json;

    const T0: i64 = 1_700_000_000_000;

    /// The `callback.done` deliveries stored so far, oldest first: (URL, delivery).
    async fn deliveries(store: &Store) -> Vec<(String, Delivery)> {
        let mut list: Vec<_> = store
            .outbox_messages(100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.channel == Channel::Webhook && m.subject == webhook::CALLBACK_DONE)
            .map(|m| (m.to, serde_json::from_str(&m.body).unwrap()))
            .collect();
        list.reverse();
        list
    }

    #[tokio::test]
    async fn each_recorded_outcome_is_posted_as_callback_done() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        // The receiver never answers: deliveries stay in the outbox.
        let url = "http://127.0.0.1:9/hooks/callbacks";
        let config = NotifyConfig {
            webhooks: vec![WebhookConfig {
                url: url.into(),
                events: vec![webhook::CALLBACK_DONE.into()],
                secret: "whsec_test_0123456789".into(),
            }],
            ..Default::default()
        };
        let notifier = Notifier::start(store.clone(), config).unwrap();
        let entry = store
            .note_callback(&NewCallbackNote {
                number: "+36301234567",
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: Some("cb-call-1"),
                now_ms: T0,
            })
            .await
            .unwrap();

        // The automatic callback: nobody answered.
        let claimer = "Automatic callback (test)";
        store
            .claim_callback(entry.id, claimer, 60_000, T0 + 1_000)
            .await
            .unwrap();
        let e = store
            .finish_auto_callback(
                entry.id,
                claimer,
                AttemptOutcome::NoAnswer,
                None,
                0,
                60_000,
                T0 + 2_000,
            )
            .await
            .unwrap();
        super::attempt_recorded(&notifier, &e, AttemptOutcome::NoAnswer, None).await;

        // An operator's callback from the console reaches the customer.
        store
            .claim_callback(entry.id, "anna", 60_000, T0 + 3_000)
            .await
            .unwrap();
        let e = store
            .finish_callback(
                entry.id,
                "anna",
                AttemptOutcome::Success,
                None,
                0,
                T0 + 4_000,
            )
            .await
            .unwrap();
        super::attempt_recorded(&notifier, &e, AttemptOutcome::Success, Some("anna")).await;

        let list = deliveries(&store).await;
        assert_eq!(list.len(), 2);
        assert!(
            list.iter()
                .all(|(to, d)| to == url && d.event == "callback.done")
        );
        assert_eq!(
            list[0].1.data,
            json!({
                "id": entry.id,
                "number": "+36301234567",
                "queue": "support",
                "outcome": "no_answer",
                "operator": "auto",
                "corrected": false,
                "attempts": 1,
                "auto_attempts": 1,
                "done": false,
                "promised_at_ms": null,
                "done_at_ms": null,
            })
        );
        let second = &list[1].1.data;
        assert_eq!(second["outcome"], "success");
        assert_eq!(second["operator"], "anna");
        assert_eq!(second["attempts"], 2);
        assert_eq!(second["auto_attempts"], 1);
        assert_eq!(second["done"], true);
        assert_eq!(second["done_at_ms"], T0 + 4_000);
        notifier.stop().await;
    }
}
