//! Metric names in one place, and the Prometheus recorder.

use hotline_core::cdr::EndReason;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))?;
    // Present from the first scrape, so dashboards see zeros rather than gaps.
    gauge!(ACTIVE_CALLS).set(0.0);
    for result in ["kept", "late"] {
        counter!(CALLBACK_PROMISES, "result" => result).absolute(0);
    }
    for reason in EndReason::ALL {
        counter!(CALLS_TOTAL, "reason" => reason.as_str()).absolute(0);
    }
    counter!(RTP_PACKETS_SENT).absolute(0);
    counter!(RTP_PACKETS_RECEIVED).absolute(0);
    Ok(handle)
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
