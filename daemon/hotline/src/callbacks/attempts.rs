//! What a callback call means for its entry on the shared list: the queue's rules (how
//! long a call must last to count as a success, how long a failed entry hides) and the
//! recording of each attempt's outcome.

use std::time::Duration;

use hotline_core::callbacks::{AttemptOutcome, CallbackEntry, CallbackError};
use hotline_core::notify::{NotifierHandle, webhook};
use hotline_core::time::{millis, unix_ms};
use tracing::{info, warn};

use crate::context::Calls;
use crate::outbound::NotAnswered;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// The operator's phone did not answer, so the customer was never dialled.
    OperatorNotAnswered,
    /// The customer's leg failed.
    CustomerNotAnswered(NotAnswered),
    /// The customer answered but did not press the confirmation key (customer-first).
    NotConfirmed,
    /// The customer confirmed, but no operator took the call (customer-first).
    NoOperator,
    /// The customer answered and talked to the operator this long.
    Connected(Duration),
}

/// What a callback attempt means for its entry: the outcome, a note for the history, and
/// whether the entry hides for the queue's hide time (only when the customer was dialled:
/// an operator who missed their own ring shouldn't keep the customer off the list).
pub fn attempt_outcome(
    reached: Reached,
    success_after: Duration,
) -> (AttemptOutcome, String, bool) {
    match reached {
        Reached::OperatorNotAnswered => (
            AttemptOutcome::Failed,
            "the operator's phone did not answer; the customer was not dialled".into(),
            false,
        ),
        Reached::CustomerNotAnswered(why) => {
            let (outcome, note) = match why {
                NotAnswered::Status(486 | 600) => {
                    (AttemptOutcome::Busy, "the customer was busy".into())
                }
                NotAnswered::Status(408 | 480 | 487) | NotAnswered::Timeout => (
                    AttemptOutcome::NoAnswer,
                    "the customer did not answer".into(),
                ),
                NotAnswered::Status(s @ (403 | 404 | 484 | 603)) => (
                    AttemptOutcome::Rejected,
                    format!("the call was refused ({s})"),
                ),
                NotAnswered::Status(s) => {
                    (AttemptOutcome::Failed, format!("the call failed ({s})"))
                }
                NotAnswered::OtherLegEnded => (
                    AttemptOutcome::Failed,
                    "the operator hung up before the customer answered".into(),
                ),
                NotAnswered::Broken => (
                    AttemptOutcome::Failed,
                    "the call could not be set up".into(),
                ),
            };
            (outcome, note, true)
        }
        Reached::NotConfirmed => (
            AttemptOutcome::NoAnswer,
            "the call was answered but the key was not pressed (an answering machine?)".into(),
            true,
        ),
        Reached::NoOperator => (
            AttemptOutcome::Failed,
            "the customer confirmed, but no operator took the call".into(),
            false,
        ),
        Reached::Connected(talked) if talked >= success_after => (
            AttemptOutcome::Success,
            format!("connected for {} s", talked.as_secs()),
            false,
        ),
        Reached::Connected(talked) => (
            AttemptOutcome::Failed,
            format!(
                "connected for only {} s (a success needs {} s)",
                talked.as_secs(),
                success_after.as_secs()
            ),
            true,
        ),
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

#[cfg(test)]
mod outcome_tests {
    use super::*;
    use crate::outbound::NotAnswered;

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn success_needs_the_connected_seconds() {
        let at = |s| attempt_outcome(Reached::Connected(Duration::from_millis(s)), TEN);
        assert_eq!(at(10_000).0, AttemptOutcome::Success);
        assert_eq!(at(9_999).0, AttemptOutcome::Failed);
        assert!(at(9_999).2, "a short call hides the entry");
        assert!(!at(10_000).2);
    }

    #[test]
    fn customer_failures_map_to_outcomes() {
        let f = |n| attempt_outcome(Reached::CustomerNotAnswered(n), TEN);
        assert_eq!(f(NotAnswered::Status(486)).0, AttemptOutcome::Busy);
        assert_eq!(f(NotAnswered::Status(600)).0, AttemptOutcome::Busy);
        assert_eq!(f(NotAnswered::Status(480)).0, AttemptOutcome::NoAnswer);
        assert_eq!(f(NotAnswered::Timeout).0, AttemptOutcome::NoAnswer);
        assert_eq!(f(NotAnswered::Status(603)).0, AttemptOutcome::Rejected);
        assert_eq!(f(NotAnswered::Status(503)).0, AttemptOutcome::Failed);
        assert!(f(NotAnswered::Status(486)).2);
    }

    #[test]
    fn customer_first_outcomes() {
        let (outcome, _, hide) = attempt_outcome(Reached::NotConfirmed, TEN);
        assert_eq!((outcome, hide), (AttemptOutcome::NoAnswer, true));
        let (outcome, _, hide) = attempt_outcome(Reached::NoOperator, TEN);
        assert_eq!((outcome, hide), (AttemptOutcome::Failed, false));
    }

    #[test]
    fn an_operator_who_missed_the_ring_does_not_hide_the_customer() {
        let (outcome, note, hide) = attempt_outcome(Reached::OperatorNotAnswered, TEN);
        assert_eq!(outcome, AttemptOutcome::Failed);
        assert!(!hide);
        assert!(note.contains("not dialled"));
    }
}
