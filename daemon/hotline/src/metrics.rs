//! Metric names in one place, their help texts and histogram buckets, and the Prometheus
//! recorder. Metrics recorded inside hotline-core (outbox sends, chat first responses)
//! keep their names there; they are listed, described and bucketed here all the same.

use std::collections::BTreeSet;
use std::time::Duration;

use hotline_core::cdr::{CallEnd, EndReason};
use hotline_core::chat::ChatState;
use hotline_core::notify::Channel;
use hotline_core::store::Store;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::warn;

pub const BUILD_INFO: &str = "hotline_build_info";
pub const ACTIVE_CALLS: &str = "hotline_active_calls";
pub const CALLS_TOTAL: &str = "hotline_calls_total";
pub const RTP_PACKETS_SENT: &str = "hotline_rtp_packets_sent_total";
pub const RTP_PACKETS_RECEIVED: &str = "hotline_rtp_packets_received_total";
pub const SIP_REQUESTS: &str = "hotline_sip_requests_total";
pub const SIP_RESPONSES: &str = "hotline_sip_responses_total";
pub const SIP_PARSE_ERRORS: &str = "hotline_sip_parse_errors_total";
/// The SIP endpoint's security counters: what fail2ban and alerts watch.
pub const SIP_AUTH_CHALLENGES: &str = "hotline_sip_auth_challenges_total";
pub const SIP_AUTH_FAILURES: &str = "hotline_sip_auth_failures_total";
pub const SIP_AUTH_THROTTLED: &str = "hotline_sip_auth_throttled_total";
pub const SIP_RATE_LIMITED: &str = "hotline_sip_rate_limited_total";
pub const SIP_CALLS_OVER_LIMIT: &str = "hotline_sip_calls_over_limit_total";
pub const SIP_STRAY_RESPONSES: &str = "hotline_sip_stray_responses_total";
/// Callback attempts by outcome and by who made them (operator or auto).
pub const CALLBACK_ATTEMPTS: &str = "hotline_callback_attempts_total";
/// Successful callbacks of promised entries: kept (by the promised time) or late.
pub const CALLBACK_PROMISES: &str = "hotline_callback_promises_total";
/// The queue engine's live figures, per queue (set by the queue task).
pub const QUEUE_WAITING: &str = "hotline_queue_waiting";
pub const QUEUE_LONGEST_WAIT: &str = "hotline_queue_longest_wait_seconds";
pub const QUEUE_OPERATORS: &str = "hotline_queue_operators";
/// From the finished call record ([`call_ended`]).
pub const QUEUE_WAIT_SECONDS: &str = "hotline_queue_wait_seconds";
pub const RING_SECONDS: &str = "hotline_ring_seconds";
pub const TALK_SECONDS: &str = "hotline_talk_seconds";
/// Counted from the store every [`STORE_FIGURES_EVERY`] ([`watch_store`]).
pub const CHATS_WAITING: &str = "hotline_chats_waiting";
pub const CHATS_ACTIVE: &str = "hotline_chats_active";
pub const OUTBOX_PENDING: &str = "hotline_outbox_pending";
/// Recorded in hotline-core, where they are known.
pub const CHAT_FIRST_RESPONSE_SECONDS: &str = hotline_core::chat::FIRST_RESPONSE_METRIC;
pub const OUTBOX_SEND_SECONDS: &str = hotline_core::notify::SEND_SECONDS_METRIC;

/// How often the chat and outbox gauges are counted from the store.
pub const STORE_FIGURES_EVERY: Duration = Duration::from_secs(5);

/// The `queue` label of a call that waited in no queue (a direct or consultation call).
const NO_QUEUE: &str = "none";

/// Bucket bounds (seconds) of each histogram, fitted to what it measures.
const HISTOGRAMS: [(&str, &[f64]); 5] = [
    (
        QUEUE_WAIT_SECONDS,
        &[
            5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
        ],
    ),
    (
        RING_SECONDS,
        &[1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0],
    ),
    (
        TALK_SECONDS,
        &[
            10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
        ],
    ),
    (
        CHAT_FIRST_RESPONSE_SECONDS,
        &[
            5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
        ],
    ),
    (
        OUTBOX_SEND_SECONDS,
        &[
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
        ],
    ),
];

pub fn install() -> Result<PrometheusHandle, String> {
    let handle = builder()?
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))?;
    describe_and_start();
    Ok(handle)
}

/// The exporter, with real (bucketed) histograms rather than summaries.
fn builder() -> Result<PrometheusBuilder, String> {
    HISTOGRAMS
        .iter()
        .try_fold(PrometheusBuilder::new(), |b, (name, buckets)| {
            b.set_buckets_for_metric(Matcher::Full((*name).to_string()), buckets)
        })
        .map_err(|e| format!("metrics buckets: {e}"))
}

/// The help text of every metric, and the ones present from the first scrape, so
/// dashboards and alerts see zeros rather than gaps.
fn describe_and_start() {
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version (and commit, when built with HOTLINE_COMMIT) in labels"
    );
    describe_gauge!(ACTIVE_CALLS, "Calls in progress now");
    describe_counter!(CALLS_TOTAL, "Inbound calls that ended, by end reason");
    describe_counter!(RTP_PACKETS_SENT, "RTP packets sent, all calls");
    describe_counter!(RTP_PACKETS_RECEIVED, "RTP packets received, all calls");
    describe_counter!(SIP_REQUESTS, "SIP requests, by direction and method");
    describe_counter!(
        SIP_RESPONSES,
        "SIP responses, by direction and status class"
    );
    describe_counter!(SIP_PARSE_ERRORS, "SIP messages that could not be parsed");
    describe_counter!(
        SIP_AUTH_CHALLENGES,
        "Digest challenges (401/407) sent to SIP clients"
    );
    describe_counter!(
        SIP_AUTH_FAILURES,
        "SIP digest answers that were wrong (bad user or password)"
    );
    describe_counter!(
        SIP_AUTH_THROTTLED,
        "SIP requests refused because their source failed digest auth too often"
    );
    describe_counter!(
        SIP_RATE_LIMITED,
        "SIP requests dropped by the per-source rate limit (sip.rate_per_source)"
    );
    describe_counter!(
        SIP_CALLS_OVER_LIMIT,
        "Calls refused with 503 because the concurrent-call cap (sip.max_calls) was reached"
    );
    describe_counter!(
        SIP_STRAY_RESPONSES,
        "SIP responses that matched no transaction"
    );
    describe_counter!(
        CALLBACK_ATTEMPTS,
        "Finished callback attempts, by outcome and by who made them (operator or auto)"
    );
    describe_counter!(
        CALLBACK_PROMISES,
        "Successful callbacks of entries with a promised time: kept (in time) or late"
    );
    describe_gauge!(QUEUE_WAITING, "Callers waiting in the queue now");
    describe_gauge!(
        QUEUE_LONGEST_WAIT,
        "How long the queue's longest-waiting caller has waited, in seconds"
    );
    describe_gauge!(
        QUEUE_OPERATORS,
        "The queue's operators by state (online, busy, paused, away)"
    );
    describe_histogram!(
        QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "Callers' wait in the queue, from entering it to an operator's answer \
         (outcome=answered) or to leaving unanswered (outcome=abandoned), in seconds"
    );
    describe_histogram!(
        RING_SECONDS,
        Unit::Seconds,
        "Each ring of an operator's phone, until answered or given up, by outcome, in seconds"
    );
    describe_histogram!(
        TALK_SECONDS,
        Unit::Seconds,
        "Operators' talk time of answered calls (hold excluded), by queue, in seconds"
    );
    describe_histogram!(
        CHAT_FIRST_RESPONSE_SECONDS,
        Unit::Seconds,
        "From a chat's start to the first message an operator wrote the visitor, in seconds"
    );
    describe_histogram!(
        OUTBOX_SEND_SECONDS,
        Unit::Seconds,
        "From a message (SMS, e-mail) being stored in the outbox to its being sent, \
         retries included, by channel, in seconds"
    );
    describe_gauge!(
        CHATS_WAITING,
        "Chats waiting for an operator (not yet accepted), by queue"
    );
    describe_gauge!(
        CHATS_ACTIVE,
        "Chats an operator has accepted and not ended, by queue"
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Messages waiting to be sent (queued or being sent), by channel"
    );

    match option_env!("HOTLINE_COMMIT") {
        Some(commit) => {
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => commit)
        }
        None => gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")),
    }
    .set(1.0);
    gauge!(ACTIVE_CALLS).set(0.0);
    for result in ["kept", "late"] {
        counter!(CALLBACK_PROMISES, "result" => result).absolute(0);
    }
    for reason in EndReason::ALL {
        counter!(CALLS_TOTAL, "reason" => reason.as_str()).absolute(0);
    }
    for name in [
        RTP_PACKETS_SENT,
        RTP_PACKETS_RECEIVED,
        SIP_PARSE_ERRORS,
        SIP_AUTH_CHALLENGES,
        SIP_AUTH_FAILURES,
        SIP_AUTH_THROTTLED,
        SIP_RATE_LIMITED,
        SIP_CALLS_OVER_LIMIT,
        SIP_STRAY_RESPONSES,
    ] {
        counter!(name).absolute(0);
    }
    for channel in Channel::ALL {
        gauge!(OUTBOX_PENDING, "channel" => channel.as_str()).set(0.0);
    }
}

/// Copies the SIP endpoint's counters (it is sans-IO and keeps its own).
pub fn export_sip_stats(stats: &hotline_sip::SipStats) {
    for (method, n) in &stats.requests_in {
        counter!(SIP_REQUESTS, "direction" => "in", "method" => method.clone()).absolute(*n);
    }
    for (method, n) in &stats.requests_out {
        counter!(SIP_REQUESTS, "direction" => "out", "method" => method.clone()).absolute(*n);
    }
    for (class, n) in &stats.responses_in {
        counter!(SIP_RESPONSES, "direction" => "in", "class" => class.clone()).absolute(*n);
    }
    for (class, n) in &stats.responses_out {
        counter!(SIP_RESPONSES, "direction" => "out", "class" => class.clone()).absolute(*n);
    }
    counter!(SIP_PARSE_ERRORS).absolute(stats.parse_errors);
    counter!(SIP_AUTH_CHALLENGES).absolute(stats.auth_challenges);
    counter!(SIP_AUTH_FAILURES).absolute(stats.auth_failures);
    counter!(SIP_AUTH_THROTTLED).absolute(stats.auth_throttled);
    counter!(SIP_RATE_LIMITED).absolute(stats.rate_limited);
    counter!(SIP_CALLS_OVER_LIMIT).absolute(stats.calls_over_limit);
    counter!(SIP_STRAY_RESPONSES).absolute(stats.stray_responses);
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// The queue wait, each operator's ring and the talk time of a call whose record is being
/// closed: all from the record, so the call driver records nothing itself.
pub fn call_ended(end: &CallEnd) {
    let service = &end.service;
    // Outside numbers (transfers out through the trunk) are not operators' rings or talk.
    let operator_legs = || service.legs.iter().filter(|l| l.operator.is_some());
    let answered = operator_legs().any(|l| l.answered_at_ms.is_some());
    if let (Some(queue), Some(wait_ms)) = (&service.queue, service.wait_ms) {
        let outcome = if answered { "answered" } else { "abandoned" };
        metrics::histogram!(QUEUE_WAIT_SECONDS, "queue" => queue.clone(), "outcome" => outcome)
            .record(seconds(wait_ms));
    }
    for leg in operator_legs() {
        let rang_until = leg.answered_at_ms.unwrap_or(leg.ended_at_ms);
        metrics::histogram!(RING_SECONDS, "outcome" => leg.outcome.as_str())
            .record(seconds(rang_until - leg.rang_at_ms));
    }
    if answered {
        let talk_ms: i64 = operator_legs()
            .filter_map(|l| {
                let a = l.answered_at_ms?;
                Some((l.ended_at_ms - a - l.hold_ms).max(0))
            })
            .sum();
        let queue = service.queue.as_deref().unwrap_or(NO_QUEUE);
        metrics::histogram!(TALK_SECONDS, "queue" => queue.to_string()).record(seconds(talk_ms));
    }
}

/// Counts open chats and unsent messages from the store every [`STORE_FIGURES_EVERY`]:
/// they change in many places and on every node, and the store has the one true count.
pub async fn watch_store(store: Store) {
    let mut tick = tokio::time::interval(STORE_FIGURES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut chat_queues = BTreeSet::new();
    loop {
        tick.tick().await;
        export_store_figures(&store, &mut chat_queues).await;
    }
}

/// One count of the store's gauges. `chat_queues`: the queues seen so far, set back to 0
/// when their chats are gone.
async fn export_store_figures(store: &Store, chat_queues: &mut BTreeSet<String>) {
    match store.chat_counts().await {
        Ok(counts) => {
            for queue in counts.iter().map(|(q, _, _)| q) {
                chat_queues.insert(queue.clone());
            }
            for queue in chat_queues.iter() {
                let of = |states: &[ChatState]| -> i64 {
                    counts
                        .iter()
                        .filter(|(q, s, _)| q == queue && states.contains(s))
                        .map(|(_, _, n)| n)
                        .sum()
                };
                let waiting = of(&[ChatState::Waiting, ChatState::Offered]);
                gauge!(CHATS_WAITING, "queue" => queue.clone()).set(waiting as f64);
                let active = of(&[ChatState::Active]);
                gauge!(CHATS_ACTIVE, "queue" => queue.clone()).set(active as f64);
            }
        }
        Err(e) => warn!("metrics: counting chats: {e}"),
    }
    match store.outbox_pending().await {
        Ok(pending) => {
            for channel in Channel::ALL {
                let n = pending
                    .iter()
                    .find(|(c, _)| *c == channel)
                    .map_or(0, |(_, n)| *n);
                gauge!(OUTBOX_PENDING, "channel" => channel.as_str()).set(n as f64);
            }
        }
        Err(e) => warn!("metrics: counting the outbox: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use hotline_core::cdr::{CallLeg, LegOutcome, Service};

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn leg(operator: &str, rang: i64, answered: Option<i64>, ended: i64) -> CallLeg {
        CallLeg {
            operator: Some(operator.to_string()),
            number: None,
            rang_at_ms: T0 + rang,
            answered_at_ms: answered.map(|a| T0 + a),
            ended_at_ms: T0 + ended,
            outcome: if answered.is_some() {
                LegOutcome::Answered
            } else {
                LegOutcome::NoAnswer
            },
            hold_ms: 0,
            transferred_to: None,
        }
    }

    fn end(service: Service) -> CallEnd {
        CallEnd {
            ended_at_ms: T0 + 600_000,
            reason: EndReason::CallerHangup,
            digits: "2".into(),
            path: vec!["menu".into(), "support".into()],
            variables: "{}".into(),
            operator: Some("bela".into()),
            service,
        }
    }

    /// What `/metrics` shows after `record` ran, rendered by the recorder the daemon
    /// installs (here a local one: the global recorder is the process's).
    fn scrape(record: impl FnOnce()) -> String {
        let recorder = builder().expect("buckets").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_and_start();
            record();
        });
        handle.render()
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn a_finished_call_shows_its_wait_rings_and_talk_as_histograms() {
        // Waited 42 s in support; anna's phone rang 15 s unanswered, bela's 3 s, then
        // bela talked 100 s of which 20 s on hold.
        let mut bela = leg("bela", 57_000, Some(60_000), 180_000);
        bela.hold_ms = 20_000;
        let text = scrape(|| {
            call_ended(&end(Service {
                queue: Some("support".into()),
                wait_ms: Some(42_000),
                hold_ms: 20_000,
                legs: vec![leg("anna", 42_000, None, 57_000), bela],
            }))
        });
        let lines = [
            // The wait: answered, 42 s: above 30, within 45.
            r#"hotline_queue_wait_seconds_bucket{queue="support",outcome="answered",le="30"} 0"#,
            r#"hotline_queue_wait_seconds_bucket{queue="support",outcome="answered",le="45"} 1"#,
            r#"hotline_queue_wait_seconds_bucket{queue="support",outcome="answered",le="+Inf"} 1"#,
            r#"hotline_queue_wait_seconds_sum{queue="support",outcome="answered"} 42"#,
            r#"hotline_queue_wait_seconds_count{queue="support",outcome="answered"} 1"#,
            // Each ring with its outcome: 15 s no answer, 3 s answered.
            r#"hotline_ring_seconds_bucket{outcome="no_answer",le="10"} 0"#,
            r#"hotline_ring_seconds_bucket{outcome="no_answer",le="15"} 1"#,
            r#"hotline_ring_seconds_bucket{outcome="answered",le="2"} 0"#,
            r#"hotline_ring_seconds_bucket{outcome="answered",le="3"} 1"#,
            r#"hotline_ring_seconds_count{outcome="answered"} 1"#,
            // Talk: 120 s answered to hang-up less 20 s hold.
            r#"hotline_talk_seconds_bucket{queue="support",le="60"} 0"#,
            r#"hotline_talk_seconds_bucket{queue="support",le="120"} 1"#,
            r#"hotline_talk_seconds_sum{queue="support"} 100"#,
            r#"hotline_talk_seconds_count{queue="support"} 1"#,
            // Help lines and the build.
            "# HELP hotline_queue_wait_seconds Callers' wait in the queue, from entering it to \
             an operator's answer (outcome=answered) or to leaving unanswered \
             (outcome=abandoned), in seconds",
            "# TYPE hotline_queue_wait_seconds histogram",
            "# TYPE hotline_ring_seconds histogram",
            "# TYPE hotline_talk_seconds histogram",
            &format!(
                r#"hotline_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        ];
        let missing: Vec<_> = lines.iter().filter(|l| !has(&text, l)).collect();
        assert!(missing.is_empty(), "missing {missing:#?} in\n{text}");
        assert!(!text.contains("outcome=\"abandoned\""), "{text}");
    }

    #[test]
    fn a_caller_who_leaves_the_queue_is_an_abandoned_wait_without_talk() {
        let text = scrape(|| {
            call_ended(&end(Service {
                queue: Some("sales".into()),
                wait_ms: Some(200_000),
                hold_ms: 0,
                legs: vec![leg("anna", 10_000, None, 25_000)],
            }))
        });
        for line in [
            r#"hotline_queue_wait_seconds_bucket{queue="sales",outcome="abandoned",le="180"} 0"#,
            r#"hotline_queue_wait_seconds_bucket{queue="sales",outcome="abandoned",le="300"} 1"#,
            r#"hotline_ring_seconds_count{outcome="no_answer"} 1"#,
        ] {
            assert!(has(&text, line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("hotline_talk_seconds_count"), "{text}");
    }

    #[test]
    fn a_call_without_queue_or_operator_records_no_histogram() {
        let text = scrape(|| call_ended(&end(Service::default())));
        assert!(!text.contains("_bucket{"), "{text}");
    }

    #[test]
    fn every_metric_has_help_and_the_counters_alerts_watch_start_at_zero() {
        let text = scrape(|| {
            // What other places record, each once, so every family is rendered.
            call_ended(&end(Service {
                queue: Some("support".into()),
                wait_ms: Some(1_000),
                hold_ms: 0,
                legs: vec![leg("anna", 1_000, Some(2_000), 3_000)],
            }));
            metrics::histogram!(CHAT_FIRST_RESPONSE_SECONDS).record(12.0);
            metrics::histogram!(OUTBOX_SEND_SECONDS, "channel" => "sms").record(0.3);
            counter!(SIP_REQUESTS, "direction" => "in", "method" => "INVITE").increment(1);
            counter!(SIP_RESPONSES, "direction" => "out", "class" => "2xx").increment(1);
            counter!(CALLBACK_ATTEMPTS, "outcome" => "answered", "by" => "auto").increment(1);
            gauge!(QUEUE_WAITING, "queue" => "support").set(0.0);
            gauge!(QUEUE_LONGEST_WAIT, "queue" => "support").set(0.0);
            gauge!(QUEUE_OPERATORS, "queue" => "support", "state" => "online").set(0.0);
            gauge!(CHATS_WAITING, "queue" => "web").set(0.0);
            gauge!(CHATS_ACTIVE, "queue" => "web").set(0.0);
        });
        let families: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let all = [
            BUILD_INFO,
            ACTIVE_CALLS,
            CALLS_TOTAL,
            RTP_PACKETS_SENT,
            RTP_PACKETS_RECEIVED,
            SIP_REQUESTS,
            SIP_RESPONSES,
            SIP_PARSE_ERRORS,
            SIP_AUTH_CHALLENGES,
            SIP_AUTH_FAILURES,
            SIP_AUTH_THROTTLED,
            SIP_RATE_LIMITED,
            SIP_CALLS_OVER_LIMIT,
            SIP_STRAY_RESPONSES,
            CALLBACK_ATTEMPTS,
            CALLBACK_PROMISES,
            QUEUE_WAITING,
            QUEUE_LONGEST_WAIT,
            QUEUE_OPERATORS,
            QUEUE_WAIT_SECONDS,
            RING_SECONDS,
            TALK_SECONDS,
            CHATS_WAITING,
            CHATS_ACTIVE,
            OUTBOX_PENDING,
            CHAT_FIRST_RESPONSE_SECONDS,
            OUTBOX_SEND_SECONDS,
        ];
        assert_eq!(families, all.into_iter().collect(), "{text}");
        for name in all {
            let help = format!("# HELP {name} ");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&help) && l.len() > help.len() + 10),
                "no help for {name} in\n{text}"
            );
        }
        for name in HISTOGRAMS.map(|(n, _)| n) {
            assert!(
                has(&text, &format!("# TYPE {name} histogram")),
                "{name} is not a histogram in\n{text}"
            );
        }
        for name in [
            SIP_AUTH_CHALLENGES,
            SIP_AUTH_FAILURES,
            SIP_AUTH_THROTTLED,
            SIP_RATE_LIMITED,
            SIP_CALLS_OVER_LIMIT,
            SIP_STRAY_RESPONSES,
            SIP_PARSE_ERRORS,
        ] {
            assert!(has(&text, &format!("{name} 0")), "{name} not 0 in\n{text}");
        }
        assert!(
            has(&text, r#"hotline_outbox_pending{channel="email"} 0"#),
            "{text}"
        );
    }
}
