//! Call reports (PRODUCT S3, issue 18): the call records of a day or a range of days
//! summed by local hour, per queue and per operator. Pure functions over
//! [`CallRecord`]s plus one store read ([`Store::calls_started_in`]); the console draws
//! the charts and tables from them.
//!
//! # Definitions
//!
//! - A call belongs to the local hour (and day) in which it **started** (`started_at`),
//!   in the time zone given. Hours are keyed by local time: on the day clocks go back the
//!   repeated hour appears twice (a 25-hour day), on the day they go forward the skipped
//!   hour does not appear (a 23-hour day).
//! - Only **finished** calls count: a call still going on has no queue or legs in its
//!   record yet, so it is counted once it ends.
//! - **Offered**: the call reached a queue (`service.queue`) or rang an operator (it has
//!   a leg). Calls that ended in the IVR (or were refused) were offered to no one.
//! - **Answered**: an offered call one of whose legs was answered. Its **speed of answer**
//!   is the queue wait (`service.wait_ms`, entering the queue to the operator's answer);
//!   without one (a call straight to an operator), the first leg's ring to the answer.
//! - **Abandoned**: an offered call not answered that the caller ended (hung up or
//!   cancelled) after waiting at least the short-abandon time. Those who gave up sooner
//!   are **short abandons**, counted apart and in neither abandoned nor the service level.
//!   The wait is `service.wait_ms`, or start to end without one.
//! - **Other unanswered**: offered, not answered, and ended otherwise (the flow moved the
//!   caller on after a queue timeout, a transfer out, an error), so
//!   `offered = answered + abandoned + short abandons + other unanswered`.
//! - **Service level**: answered within the target (speed of answer at most the
//!   target: the call's queue's own, else `target_secs`) as a share of offered calls less
//!   short abandons; none without such calls.
//! - **Talk**: per answered leg, answer to end less its hold; a call's talk is its legs'
//!   sum, averaged over answered calls. **Hold**: the call's `service.hold_ms`, averaged
//!   over answered calls.
//! - **Transfers**: times an operator passed the caller on (legs with `transferred_to`,
//!   as in [`CallRecord::transfers`]). Legs that only rang (the next operator tried after
//!   no answer) are not transfers.
//! - Per **operator**, from the legs that rang them: offered (legs rung), answered,
//!   missed (rung and not answered), ring time of the answered legs, talk, hold and the
//!   transfers they made. An offered call counts for every operator it rang.
//! - A call counts in **one queue**: the one the caller last waited in, the only one its
//!   record keeps (with that wait). A call answered in one queue and transferred to
//!   another counts in the second, answered.
//! - **Wrap-up time** is not in the call record (only its category and note are): it
//!   comes from the operators' state history, with their time online, busy, paused and
//!   away ([`crate::operator_states`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Offset as _, TimeZone, Timelike as _};

use sqlx::Row as _;

use crate::cdr::{CallLeg, CallRecord, LegOutcome, Service};
use crate::store::{Store, StoreError};

mod chats;
pub use chats::{ChatFigures, chat_total};

/// What the figures are measured against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    /// The service level's target: answered within this many seconds.
    pub target_secs: i64,
    /// Queues with a target of their own (`queues.toml` `service_level_secs`).
    pub queue_targets: BTreeMap<String, i64>,
    /// A caller who hangs up unanswered sooner than this is a short abandon.
    pub short_abandon_secs: i64,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            target_secs: 20,
            queue_targets: BTreeMap::new(),
            short_abandon_secs: 5,
        }
    }
}

impl ReportOptions {
    /// The service-level target of a call that waited in `queue`, in seconds.
    pub fn target_for(&self, queue: Option<&str>) -> i64 {
        queue
            .and_then(|q| self.queue_targets.get(q))
            .copied()
            .unwrap_or(self.target_secs)
    }
}

/// Call figures of an hour, a queue, a day or a range. Times are sums in ms; the
/// averages come from the methods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFigures {
    pub offered: u64,
    pub answered: u64,
    /// Answered within the target.
    pub answered_in_target: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub other_unanswered: u64,
    pub transfers: u64,
    /// Speed of answer of the answered calls, summed.
    pub answer_wait_ms: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
}

impl CallFigures {
    /// Answered within the target, in % of offered calls less short abandons.
    pub fn service_level(&self) -> Option<f64> {
        let base = self.offered.saturating_sub(self.short_abandoned);
        (base > 0).then(|| 100.0 * self.answered_in_target as f64 / base as f64)
    }

    /// Average speed of answer, seconds.
    pub fn average_answer_secs(&self) -> Option<f64> {
        per(self.answer_wait_ms, self.answered)
    }

    pub fn average_talk_secs(&self) -> Option<f64> {
        per(self.talk_ms, self.answered)
    }

    pub fn average_hold_secs(&self) -> Option<f64> {
        per(self.hold_ms, self.answered)
    }

    fn add(&mut self, call: &CallFacts) {
        self.offered += 1;
        match call.outcome {
            Outcome::Answered { wait_ms } => {
                self.answered += 1;
                self.answer_wait_ms += wait_ms;
                if wait_ms <= call.target_ms {
                    self.answered_in_target += 1;
                }
                self.talk_ms += call.talk_ms;
                self.hold_ms += call.hold_ms;
            }
            Outcome::Abandoned => self.abandoned += 1,
            Outcome::ShortAbandoned => self.short_abandoned += 1,
            Outcome::Other => self.other_unanswered += 1,
        }
        self.transfers += call.transfers;
    }

    fn merge(&mut self, other: &CallFigures) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.answered_in_target += other.answered_in_target;
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.other_unanswered += other.other_unanswered;
        self.transfers += other.transfers;
        self.answer_wait_ms += other.answer_wait_ms;
        self.talk_ms += other.talk_ms;
        self.hold_ms += other.hold_ms;
    }
}

/// One operator's figures, from the legs that rang them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorFigures {
    /// Legs that rang them.
    pub offered: u64,
    pub answered: u64,
    /// Rang and not answered (no answer, busy, rejected, unreachable, stopped).
    pub missed: u64,
    /// Ring time of the answered legs, summed.
    pub ring_ms: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    /// Callers they passed on.
    pub transfers: u64,
}

impl OperatorFigures {
    pub fn average_ring_secs(&self) -> Option<f64> {
        per(self.ring_ms, self.answered)
    }

    pub fn average_talk_secs(&self) -> Option<f64> {
        per(self.talk_ms, self.answered)
    }

    pub fn average_hold_secs(&self) -> Option<f64> {
        per(self.hold_ms, self.answered)
    }
}

fn per(total_ms: i64, count: u64) -> Option<f64> {
    (count > 0).then(|| total_ms as f64 / 1000.0 / count as f64)
}

/// One local hour of a day.
#[derive(Clone, Debug, PartialEq)]
pub struct HourFigures {
    /// When the hour begins (unix ms).
    pub start_ms: i64,
    /// The local hour, "02:00"; an hour the day has twice (clocks going back) carries its
    /// UTC offset, "02:00 +02:00" and "02:00 +01:00".
    pub label: String,
    pub figures: CallFigures,
}

/// A day's report: every local hour of the day, the day's total, per queue and per
/// operator.
#[derive(Clone, Debug, PartialEq)]
pub struct DayReport {
    pub date: NaiveDate,
    /// The local day's bounds (unix ms, end exclusive).
    pub since_ms: i64,
    pub until_ms: i64,
    pub hours: Vec<HourFigures>,
    pub total: CallFigures,
    /// By the queue the caller last waited in; `""` for calls that rang an operator
    /// without a queue.
    pub queues: BTreeMap<String, CallFigures>,
    pub operators: BTreeMap<String, OperatorFigures>,
}

/// A range of local days: per queue and per day.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeReport {
    pub from: NaiveDate,
    /// The last day, included.
    pub to: NaiveDate,
    pub since_ms: i64,
    pub until_ms: i64,
    pub total: CallFigures,
    pub queues: BTreeMap<String, CallFigures>,
    pub days: Vec<(NaiveDate, CallFigures)>,
    pub operators: BTreeMap<String, OperatorFigures>,
}

/// When the local day `date` begins (unix ms): its midnight, or the first hour that
/// exists where midnight is skipped; the earlier of a repeated midnight.
pub fn day_start_ms<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> Option<i64> {
    (0..4).find_map(|h| {
        let wall = date.and_hms_opt(h, 0, 0)?;
        tz.from_local_datetime(&wall)
            .earliest()
            .map(|t| t.timestamp_millis())
    })
}

/// The local day `date`'s bounds (unix ms, end exclusive).
pub fn day_bounds<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> Option<(i64, i64)> {
    let next = date.succ_opt()?;
    Some((day_start_ms(tz, date)?, day_start_ms(tz, next)?))
}

/// The report of the local day `date` from `calls` (those outside the day are skipped).
pub fn day_report<Tz: TimeZone>(
    calls: &[CallRecord],
    tz: &Tz,
    date: NaiveDate,
    options: &ReportOptions,
) -> Option<DayReport> {
    let (since_ms, until_ms) = day_bounds(tz, date)?;
    let mut hours = hours_between(tz, since_ms, until_ms);
    let mut total = CallFigures::default();
    let mut queues = BTreeMap::new();
    let mut operators = BTreeMap::new();
    for call in calls {
        if call.started_at_ms < since_ms || call.started_at_ms >= until_ms {
            continue;
        }
        add_operator_legs(&mut operators, call);
        let Some(facts) = CallFacts::of(call, options) else {
            continue;
        };
        total.add(&facts);
        add_to_queue(&mut queues, call, &facts);
        // The hour that holds the start: the last beginning at or before it.
        let at = hours.partition_point(|h| h.start_ms <= call.started_at_ms);
        if let Some(hour) = at.checked_sub(1).and_then(|i| hours.get_mut(i)) {
            hour.figures.add(&facts);
        }
    }
    // Every counted call fell in an hour of the day.
    debug_assert_eq!(
        hours.iter().fold(CallFigures::default(), |mut sum, h| {
            sum.merge(&h.figures);
            sum
        }),
        total
    );
    Some(DayReport {
        date,
        since_ms,
        until_ms,
        hours,
        total,
        queues,
        operators,
    })
}

/// The report of the local days `from` to `to` (both included) from `calls`.
pub fn range_report<Tz: TimeZone>(
    calls: &[CallRecord],
    tz: &Tz,
    from: NaiveDate,
    to: NaiveDate,
    options: &ReportOptions,
) -> Option<RangeReport> {
    let since_ms = day_start_ms(tz, from)?;
    let until_ms = day_start_ms(tz, to.succ_opt()?)?;
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        days.push((day, day_start_ms(tz, day)?, CallFigures::default()));
        day = day.succ_opt()?;
    }
    let mut total = CallFigures::default();
    let mut queues = BTreeMap::new();
    let mut operators = BTreeMap::new();
    for call in calls {
        if call.started_at_ms < since_ms || call.started_at_ms >= until_ms {
            continue;
        }
        add_operator_legs(&mut operators, call);
        let Some(facts) = CallFacts::of(call, options) else {
            continue;
        };
        total.add(&facts);
        add_to_queue(&mut queues, call, &facts);
        let at = days.partition_point(|(_, start, _)| *start <= call.started_at_ms);
        if let Some((_, _, figures)) = at.checked_sub(1).and_then(|i| days.get_mut(i)) {
            figures.add(&facts);
        }
    }
    Some(RangeReport {
        from,
        to,
        since_ms,
        until_ms,
        total,
        queues,
        days: days.into_iter().map(|(d, _, f)| (d, f)).collect(),
        operators,
    })
}

/// Every hour from `since_ms` to `until_ms`, labelled in local time.
fn hours_between<Tz: TimeZone>(tz: &Tz, since_ms: i64, until_ms: i64) -> Vec<HourFigures> {
    let mut starts = Vec::new();
    let mut at = since_ms;
    while at < until_ms {
        let Some(utc) = DateTime::from_timestamp_millis(at) else {
            break;
        };
        let local = utc.with_timezone(tz);
        starts.push((at, local.hour(), local.offset().fix()));
        // To the next local hour boundary: the next whole hour of local time, which is a
        // whole hour of UTC for zones whose offsets are whole hours, and the same
        // arithmetic still lands on local hour boundaries for half-hour zones.
        let into_hour = i64::from(local.minute()) * 60_000
            + i64::from(local.second()) * 1000
            + i64::from(local.timestamp_subsec_millis());
        at += Duration::hours(1).num_milliseconds() - into_hour;
    }
    let mut count: HashMap<u32, usize> = HashMap::new();
    for (_, hour, _) in &starts {
        *count.entry(*hour).or_default() += 1;
    }
    starts
        .into_iter()
        .map(|(start_ms, hour, offset)| HourFigures {
            start_ms,
            label: if count.get(&hour).copied().unwrap_or(0) > 1 {
                format!("{hour:02}:00 {offset}")
            } else {
                format!("{hour:02}:00")
            },
            figures: CallFigures::default(),
        })
        .collect()
}

fn add_to_queue(queues: &mut BTreeMap<String, CallFigures>, call: &CallRecord, facts: &CallFacts) {
    let queue = call.service.queue.clone().unwrap_or_default();
    queues.entry(queue).or_default().add(facts);
}

fn add_operator_legs(operators: &mut BTreeMap<String, OperatorFigures>, call: &CallRecord) {
    // A call still going on has no legs yet.
    for leg in &call.service.legs {
        let Some(name) = &leg.operator else {
            continue;
        };
        let op = operators.entry(name.clone()).or_default();
        op.offered += 1;
        match leg.answered_at_ms {
            Some(answered) => {
                op.answered += 1;
                op.ring_ms += (answered - leg.rang_at_ms).max(0);
                op.talk_ms += (leg.ended_at_ms - answered - leg.hold_ms).max(0);
                op.hold_ms += leg.hold_ms.max(0);
            }
            None => op.missed += 1,
        }
        if leg.transferred_to.is_some() {
            op.transfers += 1;
        }
    }
}

/// How an offered call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Answered { wait_ms: i64 },
    Abandoned,
    ShortAbandoned,
    Other,
}

/// What the figures need of one offered, finished call.
struct CallFacts {
    outcome: Outcome,
    target_ms: i64,
    talk_ms: i64,
    hold_ms: i64,
    transfers: u64,
}

impl CallFacts {
    /// None for a call not offered to anyone or not finished.
    fn of(call: &CallRecord, options: &ReportOptions) -> Option<CallFacts> {
        let ended_at_ms = call.ended_at_ms?;
        let legs = &call.service.legs;
        if call.service.queue.is_none() && legs.is_empty() {
            return None;
        }
        let first_answer = legs.iter().find_map(|l| l.answered_at_ms);
        let outcome = match first_answer {
            Some(answered_at) => {
                let rang_at = legs.first().map_or(answered_at, |l| l.rang_at_ms);
                let wait_ms = call.service.wait_ms.unwrap_or(answered_at - rang_at);
                Outcome::Answered {
                    wait_ms: wait_ms.max(0),
                }
            }
            None => {
                let caller_left = matches!(
                    call.end_reason.as_deref(),
                    Some("caller_hangup") | Some("cancelled")
                );
                let waited_ms = call
                    .service
                    .wait_ms
                    .unwrap_or(ended_at_ms - call.started_at_ms);
                if !caller_left {
                    Outcome::Other
                } else if waited_ms < options.short_abandon_secs * 1000 {
                    Outcome::ShortAbandoned
                } else {
                    Outcome::Abandoned
                }
            }
        };
        let talk_ms = legs
            .iter()
            .filter_map(|l| {
                l.answered_at_ms
                    .map(|a| (l.ended_at_ms - a - l.hold_ms).max(0))
            })
            .sum();
        Some(CallFacts {
            outcome,
            target_ms: options.target_for(call.service.queue.as_deref()) * 1000,
            talk_ms,
            hold_ms: call.service.hold_ms.max(0),
            transfers: call.transfers() as u64,
        })
    }
}

/// How many records one read of [`Store::calls_started_in`] takes.
const PAGE: i64 = 500;

/// The most records a report reads: beyond, the page says it is cut short.
pub const MAX_CALLS: usize = 200_000;

impl Store {
    /// Every call that started in `[since_ms, until_ms)`, newest first, with what the
    /// reports read of it: times, end reason, queue, wait, hold, operator and legs (the
    /// flow's path, variables, digits, wrap-up and recording are left empty). Read a page
    /// at a time with the page's legs in one query, rather than a query per call as
    /// [`Store::calls_matching`] does: a month has many thousand calls. At most
    /// [`MAX_CALLS`] (the bool: more were left out).
    pub async fn calls_started_in(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<(Vec<CallRecord>, bool), StoreError> {
        let mut calls: Vec<CallRecord> = Vec::new();
        loop {
            let before_id = calls.last().map_or(i64::MAX, |c| c.id);
            let rows = sqlx::query(
                "SELECT id, call_id, started_at, answered_at, ended_at, end_reason, operator, \
                 queue, wait_ms, hold_ms FROM calls \
                 WHERE started_at >= $1 AND started_at < $2 AND id < $3 \
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(since_ms)
            .bind(until_ms)
            .bind(before_id)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            let last_page = (rows.len() as i64) < PAGE;
            let mut page = rows
                .iter()
                .map(report_record)
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            self.add_legs(&mut page).await?;
            calls.extend(page);
            if calls.len() >= MAX_CALLS {
                let more = calls.len() > MAX_CALLS || !last_page;
                calls.truncate(MAX_CALLS);
                return Ok((calls, more));
            }
            if last_page {
                return Ok((calls, false));
            }
        }
    }

    /// The legs of `calls` (newest first), read for their id range at once.
    async fn add_legs(&self, calls: &mut [CallRecord]) -> Result<(), StoreError> {
        let (Some(newest), Some(oldest)) = (calls.first(), calls.last()) else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT call, operator, number, rang_at, answered_at, ended_at, outcome, hold_ms, \
             transferred_to FROM call_legs WHERE call >= $1 AND call <= $2 ORDER BY call, seq",
        )
        .bind(oldest.id)
        .bind(newest.id)
        .fetch_all(self.pool())
        .await?;
        let at: HashMap<i64, usize> = calls.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        for r in &rows {
            let call: i64 = r.try_get("call")?;
            // Calls in the id range that started outside the time range are not here.
            let Some(&i) = at.get(&call) else {
                continue;
            };
            let outcome: String = r.try_get("outcome")?;
            calls[i].service.legs.push(CallLeg {
                operator: r.try_get("operator")?,
                number: r.try_get("number")?,
                rang_at_ms: r.try_get("rang_at")?,
                answered_at_ms: r.try_get("answered_at")?,
                ended_at_ms: r.try_get("ended_at")?,
                outcome: LEG_OUTCOMES
                    .into_iter()
                    .find(|o| o.as_str() == outcome)
                    .unwrap_or(LegOutcome::Cancelled),
                hold_ms: r.try_get("hold_ms")?,
                transferred_to: r.try_get("transferred_to")?,
            });
        }
        Ok(())
    }
}

const LEG_OUTCOMES: [LegOutcome; 6] = [
    LegOutcome::Answered,
    LegOutcome::NoAnswer,
    LegOutcome::Busy,
    LegOutcome::Rejected,
    LegOutcome::Unreachable,
    LegOutcome::Cancelled,
];

fn report_record(r: &sqlx::any::AnyRow) -> Result<CallRecord, sqlx::Error> {
    Ok(CallRecord {
        id: r.try_get("id")?,
        call_id: r.try_get("call_id")?,
        caller: String::new(),
        called: String::new(),
        started_at_ms: r.try_get("started_at")?,
        answered_at_ms: r.try_get("answered_at")?,
        ended_at_ms: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
        digits: String::new(),
        flow: None,
        flow_version: None,
        path: String::new(),
        variables: String::new(),
        operator: r.try_get("operator")?,
        service: Service {
            queue: r.try_get("queue")?,
            wait_ms: r.try_get("wait_ms")?,
            hold_ms: r.try_get("hold_ms")?,
            legs: Vec::new(),
        },
        wrapup_category: None,
        wrapup_note: None,
        wrapup_tags: None,
        recording: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use hotline_ivr::window::DEFAULT_TIME_ZONE as BUDAPEST;

    /// Unix ms of a UTC wall time, "2026-12-07 09:15:00".
    fn utc(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A finished call: started at `start` (UTC), waited `wait_s` in `queue`, then the
    /// legs; ended by `reason` at the last leg's end or `start + wait_s`.
    fn call(
        id: i64,
        start: &str,
        queue: Option<&str>,
        wait_s: Option<i64>,
        reason: &str,
        legs: Vec<CallLeg>,
    ) -> CallRecord {
        let started_at_ms = utc(start);
        let ended_at_ms = legs
            .iter()
            .map(|l| l.ended_at_ms)
            .max()
            .unwrap_or(started_at_ms + wait_s.unwrap_or(0) * 1000);
        CallRecord {
            id,
            call_id: format!("c{id}"),
            caller: "+3611".into(),
            called: "100".into(),
            started_at_ms,
            answered_at_ms: Some(started_at_ms),
            ended_at_ms: Some(ended_at_ms),
            end_reason: Some(reason.into()),
            digits: String::new(),
            flow: None,
            flow_version: None,
            path: String::new(),
            variables: "{}".into(),
            operator: None,
            service: Service {
                queue: queue.map(String::from),
                wait_ms: wait_s.map(|s| s * 1000),
                hold_ms: legs.iter().map(|l| l.hold_ms).sum(),
                legs,
            },
            wrapup_category: None,
            wrapup_note: None,
            wrapup_tags: None,
            recording: None,
        }
    }

    /// A leg to `operator` that rang at `rang` (UTC) for `ring_s`, then (when
    /// answered) talked `talk_s` with `hold_s` on hold.
    fn leg(operator: &str, rang: &str, ring_s: i64, answered: bool, talk_s: i64) -> CallLeg {
        let rang_at_ms = utc(rang);
        let answered_at_ms = answered.then_some(rang_at_ms + ring_s * 1000);
        CallLeg {
            operator: Some(operator.into()),
            number: None,
            rang_at_ms,
            answered_at_ms,
            ended_at_ms: rang_at_ms + (ring_s + if answered { talk_s } else { 0 }) * 1000,
            outcome: if answered {
                LegOutcome::Answered
            } else {
                LegOutcome::NoAnswer
            },
            hold_ms: 0,
            transferred_to: None,
        }
    }

    /// 7 December 2026 (CET, UTC+1): the fixed set the figures below are computed from.
    fn december() -> Vec<CallRecord> {
        let mut held = leg("anna", "2026-12-07 08:10:10", 5, true, 100);
        held.hold_ms = 20_000;
        held.ended_at_ms += 20_000;
        let mut passed_on = leg("bela", "2026-12-07 08:40:30", 10, true, 60);
        passed_on.transferred_to = Some("anna".into());
        vec![
            // 09:10 local, sales: waited 10 s, anna answered after 5 s of ring, talked
            // 100 s with 20 s on hold.
            call(
                1,
                "2026-12-07 08:10:00",
                Some("sales"),
                Some(10),
                "caller_hangup",
                vec![held],
            ),
            // 09:20, sales: waited 30 s (beyond the target), anna, 50 s.
            call(
                2,
                "2026-12-07 08:20:00",
                Some("sales"),
                Some(30),
                "operator_hangup",
                vec![leg("anna", "2026-12-07 08:20:25", 5, true, 50)],
            ),
            // 09:30, sales: hung up after 3 s: a short abandon.
            call(
                3,
                "2026-12-07 08:30:00",
                Some("sales"),
                Some(3),
                "caller_hangup",
                vec![],
            ),
            // 09:40, support: bela did not answer, then answered on the second ring
            // (wait 40 s) and passed the caller to anna, who talked 30 s.
            call(
                4,
                "2026-12-07 08:40:00",
                Some("support"),
                Some(40),
                "caller_hangup",
                vec![
                    leg("bela", "2026-12-07 08:40:05", 15, false, 0),
                    passed_on,
                    leg("anna", "2026-12-07 08:41:40", 4, true, 30),
                ],
            ),
            // 10:05, support: waited 60 s, bela missed it, the caller hung up.
            call(
                5,
                "2026-12-07 09:05:00",
                Some("support"),
                Some(60),
                "cancelled",
                vec![leg("bela", "2026-12-07 09:05:10", 20, false, 0)],
            ),
            // 10:50, support: the queue timed out after 120 s and the flow sent the
            // caller to voicemail: other unanswered.
            call(
                6,
                "2026-12-07 09:50:00",
                Some("support"),
                Some(120),
                "flow_hangup",
                vec![],
            ),
            // 11:00, an IVR-only call: offered to no one.
            call(7, "2026-12-07 10:00:00", None, None, "flow_hangup", vec![]),
            // 23:30 local on the 6th and 00:00 on the 8th: other days.
            call(
                8,
                "2026-12-06 22:30:00",
                Some("sales"),
                Some(1),
                "caller_hangup",
                vec![],
            ),
            call(
                9,
                "2026-12-07 23:00:00",
                Some("sales"),
                Some(1),
                "caller_hangup",
                vec![],
            ),
        ]
    }

    fn figures_of(report: &DayReport, label: &str) -> CallFigures {
        report
            .hours
            .iter()
            .find(|h| h.label == label)
            .unwrap()
            .figures
            .clone()
    }

    #[test]
    fn a_day_by_hour_queue_and_operator() {
        let r = day_report(
            &december(),
            &BUDAPEST,
            date("2026-12-07"),
            &ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(r.hours.len(), 24);
        assert_eq!(r.hours[0].label, "00:00");
        assert_eq!(r.hours[0].start_ms, utc("2026-12-06 23:00:00"));
        assert_eq!(
            (r.since_ms, r.until_ms),
            (utc("2026-12-06 23:00:00"), utc("2026-12-07 23:00:00"))
        );

        // 09:00: calls 1-4. Answered 1 (10 s), 2 (30 s), 4 (40 s); 3 a short abandon.
        let nine = figures_of(&r, "09:00");
        assert_eq!(
            nine,
            CallFigures {
                offered: 4,
                answered: 3,
                answered_in_target: 1,
                abandoned: 0,
                short_abandoned: 1,
                other_unanswered: 0,
                transfers: 1,
                answer_wait_ms: 80_000,
                // 100 + 50 + (60 + 30)
                talk_ms: 240_000,
                hold_ms: 20_000,
            }
        );
        // 1 of 3 (4 offered less the short abandon).
        assert_eq!(format!("{:.1}", nine.service_level().unwrap()), "33.3");
        assert_eq!(nine.average_answer_secs(), Some(80.0 / 3.0));
        assert_eq!(nine.average_talk_secs(), Some(80.0));
        assert_eq!(nine.average_hold_secs(), Some(20.0 / 3.0));

        // 10:00: call 5 abandoned, 6 other unanswered; no one answered.
        let ten = figures_of(&r, "10:00");
        assert_eq!(
            (
                ten.offered,
                ten.abandoned,
                ten.other_unanswered,
                ten.answered
            ),
            (2, 1, 1, 0)
        );
        assert_eq!(ten.service_level(), Some(0.0));
        assert_eq!(ten.average_answer_secs(), None);
        // 11:00: the IVR-only call is no one's; 08:00: nothing.
        assert_eq!(figures_of(&r, "11:00"), CallFigures::default());
        assert_eq!(figures_of(&r, "08:00").service_level(), None);

        assert_eq!(r.total.offered, 6);
        assert_eq!(r.total.answered, 3);
        assert_eq!(
            r.total.offered,
            r.total.answered
                + r.total.abandoned
                + r.total.short_abandoned
                + r.total.other_unanswered
        );
        assert_eq!(r.total.service_level(), Some(20.0));

        let sales = &r.queues["sales"];
        assert_eq!(
            (
                sales.offered,
                sales.answered,
                sales.answered_in_target,
                sales.short_abandoned
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(sales.service_level(), Some(50.0));
        assert_eq!(sales.average_answer_secs(), Some(20.0));
        assert_eq!(sales.average_talk_secs(), Some(75.0));
        assert_eq!(sales.average_hold_secs(), Some(10.0));
        let support = &r.queues["support"];
        assert_eq!(
            (
                support.offered,
                support.answered,
                support.abandoned,
                support.other_unanswered
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(support.transfers, 1);
        assert_eq!(format!("{:.1}", support.service_level().unwrap()), "0.0");
        assert_eq!(r.queues.len(), 2);

        // anna: calls 1, 2 and the transferred 4: rings 5 + 5 + 4 s, talk 100 + 50 + 30.
        assert_eq!(
            r.operators["anna"],
            OperatorFigures {
                offered: 3,
                answered: 3,
                missed: 0,
                ring_ms: 14_000,
                talk_ms: 180_000,
                hold_ms: 20_000,
                transfers: 0,
            }
        );
        // bela: three legs, one answered (10 s ring, 60 s talk) and passed on.
        assert_eq!(
            r.operators["bela"],
            OperatorFigures {
                offered: 3,
                answered: 1,
                missed: 2,
                ring_ms: 10_000,
                talk_ms: 60_000,
                hold_ms: 0,
                transfers: 1,
            }
        );
    }

    #[test]
    fn a_target_and_short_abandon_time_of_ones_own() {
        let r = day_report(
            &december(),
            &BUDAPEST,
            date("2026-12-07"),
            &ReportOptions {
                target_secs: 30,
                short_abandon_secs: 2,
                ..ReportOptions::default()
            },
        )
        .unwrap();
        let nine = figures_of(&r, "09:00");
        // 30 s is within a 30 s target; the 3 s hang-up is now abandoned.
        assert_eq!(
            (
                nine.answered_in_target,
                nine.abandoned,
                nine.short_abandoned
            ),
            (2, 1, 0)
        );
        assert_eq!(nine.service_level(), Some(50.0));
    }

    #[test]
    fn a_queue_with_a_target_of_its_own_is_measured_against_it() {
        let options = ReportOptions {
            queue_targets: [("sales".to_string(), 60)].into(),
            ..ReportOptions::default()
        };
        let r = day_report(&december(), &BUDAPEST, date("2026-12-07"), &options).unwrap();
        // Both of sales' answers (10 and 30 s) are within its 60 s; support keeps 20 s.
        assert_eq!(r.queues["sales"].answered_in_target, 2);
        assert_eq!(r.queues["sales"].service_level(), Some(100.0));
        assert_eq!(
            format!("{:.1}", r.queues["support"].service_level().unwrap()),
            "0.0"
        );
        assert_eq!(options.target_for(Some("sales")), 60);
        assert_eq!(options.target_for(Some("support")), 20);
        assert_eq!(options.target_for(None), 20);
    }

    #[test]
    fn a_call_still_going_on_is_counted_once_it_ends() {
        let mut calls = december();
        calls[0].ended_at_ms = None;
        let r = day_report(
            &calls,
            &BUDAPEST,
            date("2026-12-07"),
            &ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(r.total.offered, 5);
    }

    #[test]
    fn the_day_clocks_go_back_has_25_hours() {
        // 25 October 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
        let calls = vec![
            // 02:30 CEST (00:30 UTC), answered in 5 s.
            call(
                1,
                "2026-10-25 00:30:00",
                Some("sales"),
                Some(5),
                "caller_hangup",
                vec![leg("anna", "2026-10-25 00:30:05", 0, true, 60)],
            ),
            // 02:30 CET (01:30 UTC), abandoned after 30 s.
            call(
                2,
                "2026-10-25 01:30:00",
                Some("sales"),
                Some(30),
                "caller_hangup",
                vec![],
            ),
            // 00:10 CEST (22:10 UTC on the 24th): the day's first hour.
            call(
                3,
                "2026-10-24 22:10:00",
                Some("sales"),
                Some(25),
                "caller_hangup",
                vec![leg("anna", "2026-10-24 22:10:25", 0, true, 60)],
            ),
            // 23:59 CET (22:59 UTC): the last.
            call(
                4,
                "2026-10-25 22:59:00",
                Some("sales"),
                Some(10),
                "caller_hangup",
                vec![],
            ),
        ];
        let r = day_report(
            &calls,
            &BUDAPEST,
            date("2026-10-25"),
            &ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(r.hours.len(), 25);
        assert_eq!(r.until_ms - r.since_ms, 25 * 3_600_000);
        let labels: Vec<_> = r.hours.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(
            labels[..5],
            ["00:00", "01:00", "02:00 +02:00", "02:00 +01:00", "03:00"]
        );
        assert_eq!(labels[24], "23:00");
        assert_eq!(
            figures_of(&r, "02:00 +02:00"),
            CallFigures {
                offered: 1,
                answered: 1,
                answered_in_target: 1,
                answer_wait_ms: 5000,
                talk_ms: 60_000,
                ..CallFigures::default()
            }
        );
        assert_eq!(
            figures_of(&r, "02:00 +01:00"),
            CallFigures {
                offered: 1,
                abandoned: 1,
                ..CallFigures::default()
            }
        );
        let first = figures_of(&r, "00:00");
        assert_eq!((first.answered, first.answered_in_target), (1, 0));
        assert_eq!(figures_of(&r, "23:00").abandoned, 1);
        assert_eq!(r.total.offered, 4);
        // 1 of 4 within 20 s.
        assert_eq!(r.total.service_level(), Some(25.0));
    }

    #[test]
    fn the_day_clocks_go_forward_has_23_hours() {
        // 28 March 2027: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let calls = vec![
            // 01:59 CET (00:59 UTC) and 03:00 CEST (01:00 UTC): neighbouring hours.
            call(
                1,
                "2027-03-28 00:59:00",
                Some("sales"),
                Some(9),
                "cancelled",
                vec![],
            ),
            call(
                2,
                "2027-03-28 01:00:00",
                Some("sales"),
                Some(9),
                "cancelled",
                vec![],
            ),
            // 00:00 CEST on the 29th (22:00 UTC): the next day.
            call(
                3,
                "2027-03-28 22:00:00",
                Some("sales"),
                Some(9),
                "cancelled",
                vec![],
            ),
        ];
        let r = day_report(
            &calls,
            &BUDAPEST,
            date("2027-03-28"),
            &ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(r.hours.len(), 23);
        let labels: Vec<_> = r.hours.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(labels[..3], ["00:00", "01:00", "03:00"]);
        assert_eq!(figures_of(&r, "01:00").abandoned, 1);
        assert_eq!(figures_of(&r, "03:00").abandoned, 1);
        assert_eq!(r.total.abandoned, 2);
    }

    #[test]
    fn a_range_per_queue_and_day() {
        let r = range_report(
            &december(),
            &BUDAPEST,
            date("2026-12-06"),
            date("2026-12-07"),
            &ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(r.days.len(), 2);
        // Call 8 (23:30 on the 6th) was a short abandon; call 9 is on the 8th.
        assert_eq!(r.days[0].1.short_abandoned, 1);
        assert_eq!(r.days[1].1.offered, 6);
        assert_eq!(r.total.offered, 7);
        assert_eq!(r.queues["sales"].offered, 4);
        assert_eq!(r.queues["sales"].short_abandoned, 2);
        assert_eq!(r.queues["support"].abandoned, 1);
        assert_eq!(r.operators["anna"].answered, 3);
    }

    #[test]
    fn a_call_straight_to_an_operator_waits_for_its_ring() {
        let direct = call(
            1,
            "2026-12-07 08:00:00",
            None,
            None,
            "caller_hangup",
            vec![leg("anna", "2026-12-07 08:00:02", 25, true, 10)],
        );
        let r = day_report(
            &[direct],
            &BUDAPEST,
            date("2026-12-07"),
            &ReportOptions::default(),
        )
        .unwrap();
        let q = &r.queues[""];
        assert_eq!((q.offered, q.answered, q.answered_in_target), (1, 1, 0));
        assert_eq!(q.average_answer_secs(), Some(25.0));
    }
}
