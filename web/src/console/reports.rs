//! The supervisors' call reports (PRODUCT S3): a chosen day's calls and service level per
//! hour as a chart, per queue and per operator tables; and a range of days with abandoned
//! vs answered per queue. Figures come from [`hotline_core::reports`] (its module doc says
//! what counts as offered, answered and abandoned); days and hours are in `web.time_zone`.
//!
//! The charts are SVG drawn here on the server: no build step, no script, nothing to
//! vendor, and they print and read without JavaScript. Every table has a CSV export
//! (`?format=csv&table=…`, the same query otherwise).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate};
use hotline_core::callbacks::PromiseReport;
use hotline_core::cdr::csv_field;
use hotline_core::operator_states::{StateTimes, state_times};
use hotline_core::reports::{
    CallFigures, ChatFigures, DayReport, OperatorFigures, RangeReport, ReportOptions, chat_total,
    day_report, range_report,
};
use serde::{Deserialize, Serialize};

use crate::auth::SupervisorPage;
use crate::error::WebError;
use crate::pages::me;
use crate::state::WebState;

/// The longest range a report reads, in days.
const MAX_RANGE_DAYS: i64 = 92;

#[derive(Deserialize)]
pub(super) struct ReportQuery {
    /// The day (YYYY-MM-DD); today by default.
    day: Option<String>,
    /// The range's first and last day (YYYY-MM-DD).
    from: Option<String>,
    to: Option<String>,
    /// The service level's target in seconds.
    target: Option<String>,
    /// Short abandons: hung up sooner than this many seconds.
    short: Option<String>,
    /// The day's calls of this queue only.
    queue: Option<String>,
    /// `csv` for a table's export.
    format: Option<String>,
    /// Which table the CSV holds.
    table: Option<String>,
}

/// The form's values, checked.
struct Settings {
    options: ReportOptions,
}

/// `queue_targets`: the queues' own service-level targets (the form's is the others').
fn settings(
    q: &ReportQuery,
    queue_targets: std::collections::BTreeMap<String, i64>,
) -> Result<Settings, WebError> {
    let defaults = ReportOptions::default();
    let number =
        |v: &Option<String>, default: i64, max: i64, what: &str| -> Result<i64, WebError> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=max).contains(n))
                    .ok_or_else(|| {
                        WebError::page(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "The {what} must be a whole number of seconds from 0 to {max}."
                            ),
                        )
                    }),
            }
        };
    Ok(Settings {
        options: ReportOptions {
            target_secs: number(&q.target, defaults.target_secs, 3600, "target")?,
            short_abandon_secs: number(
                &q.short,
                defaults.short_abandon_secs,
                600,
                "short-abandon time",
            )?,
            queue_targets,
        },
    })
}

fn parse_day(v: Option<&str>, today: NaiveDate) -> Result<NaiveDate, WebError> {
    match v.map(str::trim) {
        None | Some("") => Ok(today),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| WebError::page(StatusCode::BAD_REQUEST, "Choose a day as YYYY-MM-DD.")),
    }
}

pub(super) fn today(state: &WebState) -> NaiveDate {
    DateTime::from_timestamp_millis(crate::unix_ms())
        .unwrap_or_default()
        .with_timezone(&state.settings.time_zone)
        .date_naive()
}

/// GET /supervisor/reports: one day.
pub(super) async fn day(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
    Query(q): Query<ReportQuery>,
) -> Response {
    let queue = q
        .queue
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(String::from);
    let result = async {
        let Settings { options } = settings(&q, state.telephony.queue_targets())?;
        let date = parse_day(q.day.as_deref(), today(&state))?;
        let tz = state.settings.time_zone;
        let (since, until) = hotline_core::reports::day_bounds(&tz, date)
            .ok_or_else(|| WebError::page(StatusCode::BAD_REQUEST, "That day is out of range."))?;
        let (mut calls, cut) = state
            .store
            .calls_started_in(since, until)
            .await
            .map_err(|e| WebError::database("call report", e))?;
        if let Some(queue) = &queue {
            calls.retain(|c| c.service.queue.as_deref() == Some(queue.as_str()));
        }
        let report = day_report(&calls, &tz, date, &options)
            .ok_or_else(|| WebError::page(StatusCode::BAD_REQUEST, "That day is out of range."))?;
        let mut chats = chat_report(&state, since, until).await?;
        if let Some(queue) = &queue {
            chats.retain(|q, _| q == queue);
        }
        let callbacks = callback_report(&state, since, until).await?;
        let times = operator_times(&state, since, until).await?;
        Ok::<_, WebError>((report, chats, callbacks, times, options, cut))
    }
    .await;
    let (report, chats, callbacks, (times, times_cut), options, cut) = match result {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let names = queue_names(&state);
    if q.format.as_deref() == Some("csv") {
        let (name, body) = match q.table.as_deref() {
            Some("queues") => ("queues", queues_csv(&report.queues, &names)),
            Some("operators") => ("operators", operators_csv(&report.operators)),
            Some("states") => ("states", times_csv(&times)),
            Some("chats") => ("chats", chats_csv(&chats, &names)),
            _ => ("hours", hours_csv(&report, &state.settings.time_zone)),
        };
        return csv(&format!("calls-{}-{name}.csv", report.date), body);
    }
    let mut query = format!(
        "day={}&target={}&short={}",
        report.date, options.target_secs, options.short_abandon_secs
    );
    if let Some(queue) = &queue {
        query.push_str(&format!("&queue={}", urlencode(queue)));
    }
    // The configured queues to choose from, and the chosen one should it be gone since.
    let mut choices: Vec<(String, String)> = state.telephony.queue_names();
    if let Some(queue) = queue
        .as_ref()
        .filter(|q| !choices.iter().any(|(n, _)| n == *q))
    {
        choices.push((queue.clone(), queue.clone()));
    }
    let choices: Vec<_> = choices
        .iter()
        .map(|(n, _)| minijinja::context! { name => n, label => display_name(&names, n) })
        .collect();
    let from = report.date - chrono::Duration::days(6);
    state.render(
        "reports.html",
        minijinja::context! {
            me => me(&s),
            view => "day",
            day => report.date.to_string(),
            queue => queue.as_ref().map(|q| display_name(&names, q)),
            queue_name => queue,
            choices,
            target => options.target_secs,
            short => options.short_abandon_secs,
            query,
            range_query => format!("from={from}&to={}&target={}&short={}", report.date, options.target_secs, options.short_abandon_secs),
            cut,
            total => FiguresRow::of("Total", &report.total),
            hours => report.hours.iter().map(|h| FiguresRow::of(&h.label, &h.figures)).collect::<Vec<_>>(),
            queues => report.queues.iter().map(|(q, f)| FiguresRow::of(&display_name(&names, q), f)).collect::<Vec<_>>(),
            operators => report.operators.iter().map(|(o, f)| OperatorRow::of(o, f)).collect::<Vec<_>>(),
            chats => ChatRow::all(&chats, &names),
            callbacks => CallbackRow::of(&callbacks),
            times => times.iter().map(|(o, t)| TimesRow::of(o, t)).collect::<Vec<_>>(),
            times_cut,
            chart => minijinja::Value::from_safe_string(hours_chart(&report)),
        },
    )
}

/// GET /supervisor/reports/range: a range of days.
pub(super) async fn range(
    State(state): State<Arc<WebState>>,
    SupervisorPage(s): SupervisorPage,
    Query(q): Query<ReportQuery>,
) -> Response {
    let result = async {
        let Settings { options } = settings(&q, state.telephony.queue_targets())?;
        let today = today(&state);
        let to = parse_day(q.to.as_deref(), today)?;
        let from = parse_day(q.from.as_deref(), to - chrono::Duration::days(6))?;
        if from > to {
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                "The first day must not be after the last.",
            ));
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                format!("Choose at most {MAX_RANGE_DAYS} days."),
            ));
        }
        let tz = state.settings.time_zone;
        let out_of_range =
            || WebError::page(StatusCode::BAD_REQUEST, "Those days are out of range.");
        let since = hotline_core::reports::day_start_ms(&tz, from).ok_or_else(out_of_range)?;
        let until = to
            .succ_opt()
            .and_then(|next| hotline_core::reports::day_start_ms(&tz, next))
            .ok_or_else(out_of_range)?;
        let (calls, cut) = state
            .store
            .calls_started_in(since, until)
            .await
            .map_err(|e| WebError::database("call report", e))?;
        let report = range_report(&calls, &tz, from, to, &options).ok_or_else(out_of_range)?;
        let chats = chat_report(&state, since, until).await?;
        let callbacks = callback_report(&state, since, until).await?;
        let times = operator_times(&state, since, until).await?;
        Ok((report, chats, callbacks, times, options, cut))
    }
    .await;
    let (report, chats, callbacks, (times, times_cut), options, cut) = match result {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let names = queue_names(&state);
    if q.format.as_deref() == Some("csv") {
        let (name, body) = match q.table.as_deref() {
            Some("days") => ("days", days_csv(&report)),
            Some("operators") => ("operators", operators_csv(&report.operators)),
            Some("states") => ("states", times_csv(&times)),
            Some("chats") => ("chats", chats_csv(&chats, &names)),
            _ => ("queues", queues_csv(&report.queues, &names)),
        };
        return csv(
            &format!("calls-{}-to-{}-{name}.csv", report.from, report.to),
            body,
        );
    }
    let query = format!(
        "from={}&to={}&target={}&short={}",
        report.from, report.to, options.target_secs, options.short_abandon_secs
    );
    state.render(
        "reports.html",
        minijinja::context! {
            me => me(&s),
            view => "range",
            from => report.from.to_string(),
            to => report.to.to_string(),
            day => report.to.to_string(),
            target => options.target_secs,
            short => options.short_abandon_secs,
            query,
            cut,
            total => FiguresRow::of("Total", &report.total),
            queues => report.queues.iter().map(|(q, f)| FiguresRow::of(&display_name(&names, q), f)).collect::<Vec<_>>(),
            days => report.days.iter().map(|(d, f)| FiguresRow::of(&d.to_string(), f)).collect::<Vec<_>>(),
            operators => report.operators.iter().map(|(o, f)| OperatorRow::of(o, f)).collect::<Vec<_>>(),
            chats => ChatRow::all(&chats, &names),
            callbacks => CallbackRow::of(&callbacks),
            times => times.iter().map(|(o, t)| TimesRow::of(o, t)).collect::<Vec<_>>(),
            times_cut,
            chart => minijinja::Value::from_safe_string(queues_chart(&report, &names)),
        },
    )
}

/// The chats that started in `[since, until)`, per queue.
async fn chat_report(
    state: &WebState,
    since: i64,
    until: i64,
) -> Result<BTreeMap<String, ChatFigures>, WebError> {
    state
        .store
        .chat_report(since, until)
        .await
        .map_err(|e| WebError::database("chat report", e))
}

/// How the callback times promised for the entries noted in `[since, until)` were kept.
async fn callback_report(
    state: &WebState,
    since: i64,
    until: i64,
) -> Result<PromiseReport, WebError> {
    state
        .store
        .callback_promise_report(since, until, crate::unix_ms())
        .await
        .map_err(|e| WebError::database("callback report", e))
}

/// Most state changes one report reads.
const STATES_LIMIT: i64 = 200_000;

/// Each operator's time per state in `[since, until)` (PRODUCT S3), and whether the
/// history was cut at [`STATES_LIMIT`].
async fn operator_times(
    state: &WebState,
    since: i64,
    until: i64,
) -> Result<(BTreeMap<String, StateTimes>, bool), WebError> {
    let (changes, cut) = state
        .store
        .operator_states_between(since, until, STATES_LIMIT)
        .await
        .map_err(|e| WebError::database("operators' time", e))?;
    Ok((state_times(&changes, since, until, crate::unix_ms()), cut))
}

#[derive(serde::Serialize)]
struct TimesRow {
    name: String,
    logged_in: String,
    online: String,
    busy: String,
    wrap_up: String,
    average_wrap_up: String,
    pause: String,
    away: String,
}

impl TimesRow {
    fn of(name: &str, t: &StateTimes) -> TimesRow {
        TimesRow {
            name: name.to_string(),
            logged_in: duration(t.logged_in_ms()),
            online: duration(t.online_ms),
            busy: duration(t.busy_ms),
            wrap_up: duration(t.wrap_up_ms),
            average_wrap_up: secs(t.average_wrap_up_secs()),
            pause: duration(t.pause_ms),
            away: duration(t.away_ms),
        }
    }
}

fn times_csv(times: &BTreeMap<String, StateTimes>) -> String {
    let mut out = String::from(
        "operator,logged_in_s,online_s,busy_s,wrap_up_s,wrap_ups,avg_wrap_up_s,pause_s,away_s\r\n",
    );
    for (o, t) in times {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(o),
            t.logged_in_ms() / 1000,
            t.online_ms / 1000,
            t.busy_ms / 1000,
            t.wrap_up_ms / 1000,
            t.wrap_ups,
            num(t.average_wrap_up_secs()),
            t.pause_ms / 1000,
            t.away_ms / 1000
        );
    }
    out
}

/// The callbacks' line: promised, and how those promises went.
#[derive(serde::Serialize)]
struct CallbackRow {
    noted: i64,
    promised: i64,
    kept: i64,
    late: i64,
    overdue: i64,
    pending: i64,
}

impl CallbackRow {
    fn of(r: &PromiseReport) -> CallbackRow {
        let promised = r.kept + r.late + r.overdue + r.pending;
        CallbackRow {
            noted: promised + r.unpromised,
            promised,
            kept: r.kept,
            late: r.late,
            overdue: r.overdue,
            pending: r.pending,
        }
    }
}

/// A row of the chats table.
#[derive(serde::Serialize)]
struct ChatRow {
    name: String,
    offered: u64,
    accepted: u64,
    first_response: String,
    handling: String,
    categories: String,
    total: bool,
}

impl ChatRow {
    fn of(name: String, f: &ChatFigures, total: bool) -> ChatRow {
        ChatRow {
            name,
            offered: f.offered,
            accepted: f.accepted,
            first_response: secs(f.average_first_response_secs()),
            handling: secs(f.average_handling_secs()),
            categories: f.categories_text(),
            total,
        }
    }

    /// Every queue's row, then the total (none without chats).
    fn all(chats: &BTreeMap<String, ChatFigures>, names: &HashMap<String, String>) -> Vec<ChatRow> {
        if chats.is_empty() {
            return Vec::new();
        }
        let mut rows: Vec<_> = chats
            .iter()
            .map(|(q, f)| ChatRow::of(display_name(names, q), f, false))
            .collect();
        rows.push(ChatRow::of("Total".into(), &chat_total(chats), true));
        rows
    }
}

fn chats_csv(chats: &BTreeMap<String, ChatFigures>, names: &HashMap<String, String>) -> String {
    let mut out = String::from(
        "queue,queue_name,offered,accepted,avg_first_response_s,avg_handling_s,wrapup_categories\r\n",
    );
    for (q, f) in chats {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{}\r\n",
            csv_field(q),
            csv_field(names.get(q).map(String::as_str).unwrap_or("")),
            f.offered,
            f.accepted,
            num(f.average_first_response_secs()),
            num(f.average_handling_secs()),
            csv_field(&f.categories_text()),
        );
    }
    out
}

/// Queue names to the names people know them by.
fn queue_names(state: &WebState) -> HashMap<String, String> {
    state.telephony.queue_names().into_iter().collect()
}

/// For a query string: all but letters, digits, `.`, `_` and `-` percent-encoded.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Calls without a queue went straight to an operator.
fn display_name(names: &HashMap<String, String>, queue: &str) -> String {
    if queue.is_empty() {
        return "(no queue: straight to an operator)".into();
    }
    names
        .get(queue)
        .filter(|d| !d.is_empty() && *d != queue)
        .map_or_else(|| queue.to_string(), |d| format!("{d} ({queue})"))
}

/// One row of call figures, formatted for the page.
#[derive(Serialize)]
struct FiguresRow {
    name: String,
    offered: u64,
    answered: u64,
    abandoned: u64,
    short_abandoned: u64,
    other_unanswered: u64,
    service_level: String,
    average_answer: String,
    average_talk: String,
    average_hold: String,
    transfers: u64,
}

impl FiguresRow {
    fn of(name: &str, f: &CallFigures) -> FiguresRow {
        FiguresRow {
            name: name.to_string(),
            offered: f.offered,
            answered: f.answered,
            abandoned: f.abandoned,
            short_abandoned: f.short_abandoned,
            other_unanswered: f.other_unanswered,
            service_level: f
                .service_level()
                .map_or_else(|| "—".into(), |v| format!("{v:.1} %")),
            average_answer: secs(f.average_answer_secs()),
            average_talk: secs(f.average_talk_secs()),
            average_hold: secs(f.average_hold_secs()),
            transfers: f.transfers,
        }
    }
}

#[derive(Serialize)]
struct OperatorRow {
    name: String,
    offered: u64,
    answered: u64,
    missed: u64,
    average_ring: String,
    average_talk: String,
    average_hold: String,
    talk_total: String,
    transfers: u64,
}

impl OperatorRow {
    fn of(name: &str, f: &OperatorFigures) -> OperatorRow {
        OperatorRow {
            name: name.to_string(),
            offered: f.offered,
            answered: f.answered,
            missed: f.missed,
            average_ring: secs(f.average_ring_secs()),
            average_talk: secs(f.average_talk_secs()),
            average_hold: secs(f.average_hold_secs()),
            talk_total: duration(f.talk_ms),
            transfers: f.transfers,
        }
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.1} s"))
}

/// "1:02:03" or "2:03".
/// "m:ss" or "h:mm:ss".
pub(super) fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

// CSV: figures as plain numbers (seconds with one decimal, empty where there is none).

const FIGURES_HEADER: &str = "offered,answered,abandoned,short_abandoned,other_unanswered,answered_in_target,service_level_pct,avg_answer_s,avg_talk_s,avg_hold_s,transfers";

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn figures_csv(f: &CallFigures) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        f.offered,
        f.answered,
        f.abandoned,
        f.short_abandoned,
        f.other_unanswered,
        f.answered_in_target,
        num(f.service_level()),
        num(f.average_answer_secs()),
        num(f.average_talk_secs()),
        num(f.average_hold_secs()),
        f.transfers
    )
}

fn hours_csv(report: &DayReport, tz: &chrono_tz::Tz) -> String {
    let mut out = format!("hour,start,{FIGURES_HEADER}\r\n");
    for h in &report.hours {
        let start = DateTime::from_timestamp_millis(h.start_ms)
            .map(|t| t.with_timezone(tz).to_rfc3339())
            .unwrap_or_default();
        let _ = write!(
            out,
            "{},{start},{}\r\n",
            csv_field(&h.label),
            figures_csv(&h.figures)
        );
    }
    out
}

fn queues_csv(queues: &BTreeMap<String, CallFigures>, names: &HashMap<String, String>) -> String {
    let mut out = format!("queue,queue_name,{FIGURES_HEADER}\r\n");
    for (q, f) in queues {
        let name = names.get(q).map(String::as_str).unwrap_or("");
        let _ = write!(
            out,
            "{},{},{}\r\n",
            csv_field(q),
            csv_field(name),
            figures_csv(f)
        );
    }
    out
}

fn days_csv(report: &RangeReport) -> String {
    let mut out = format!("day,{FIGURES_HEADER}\r\n");
    for (d, f) in &report.days {
        let _ = write!(out, "{d},{}\r\n", figures_csv(f));
    }
    out
}

fn operators_csv(operators: &BTreeMap<String, OperatorFigures>) -> String {
    let mut out = String::from(
        "operator,offered,answered,missed,avg_ring_s,avg_talk_s,avg_hold_s,talk_total_s,transfers\r\n",
    );
    for (o, f) in operators {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(o),
            f.offered,
            f.answered,
            f.missed,
            num(f.average_ring_secs()),
            num(f.average_talk_secs()),
            num(f.average_hold_secs()),
            f.talk_ms / 1000,
            f.transfers
        );
    }
    out
}

fn csv(file_name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

// The charts. Text in them is escaped here: the SVG goes into the page as it is.

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A round top for an axis holding `max`: 1, 2 or 5 times a power of ten (5 at least).
fn axis_top(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(5) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Offered and answered calls per hour as bars, the service level as a line (right axis).
fn hours_chart(report: &DayReport) -> String {
    const W: f64 = 760.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 48.0;
    const TOP: f64 = 36.0;
    const BOTTOM: f64 = 34.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let top = axis_top(
        report
            .hours
            .iter()
            .map(|h| h.figures.offered)
            .max()
            .unwrap_or(0),
    );
    let slot = plot_w / report.hours.len().max(1) as f64;
    let bar = slot * 0.36;
    let y_of = |v: f64, max: f64| TOP + plot_h * (1.0 - v / max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-hours-title chart-hours-desc" xmlns="http://www.w3.org/2000/svg">
<title id="chart-hours-title">Calls and service level per hour, {date}</title>
<desc id="chart-hours-desc">Bars: calls offered and answered in each hour. Line: the service level in % (right axis). The same figures are in the table below.</desc>
"##,
        date = report.date
    );
    // Grid and left axis: five steps of calls.
    for i in 0..=5 {
        let v = top as f64 * f64::from(i) / 5.0;
        let y = y_of(v, top as f64);
        let _ = writeln!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text><text class="axis" x="{rx}" y="{ty:.1}">{pct}%</text>"#,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            v = v.round(),
            rx = W - RIGHT + 6.0,
            pct = i * 20,
        );
    }
    let mut line: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, h) in report.hours.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let f = &h.figures;
        for (class, value, dx) in [
            ("offered", f.offered, slot * 0.12),
            ("answered", f.answered, slot * 0.12 + bar),
        ] {
            let y = y_of(value as f64, top as f64);
            let _ = writeln!(
                svg,
                r#"<rect class="bar {class}" x="{bx:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}"><title>{label}: {value} {class}</title></rect>"#,
                bx = x + dx,
                bh = TOP + plot_h - y,
                label = esc(&h.label),
            );
        }
        // "02:00 +01:00": the hour on the axis, and a repeated hour's offset under it.
        let (hour, offset) = h.label.split_once(' ').unwrap_or((&h.label, ""));
        let _ = writeln!(
            svg,
            r#"<text class="axis" x="{cx:.1}" y="{ly}" text-anchor="middle">{hour}<tspan x="{cx:.1}" dy="11">{offset}</tspan></text>"#,
            cx = x + slot / 2.0,
            ly = H - BOTTOM + 14.0,
            hour = esc(hour.get(..2).unwrap_or(hour)),
            offset = esc(offset.get(..3).unwrap_or(offset)),
        );
        match f.service_level() {
            Some(sl) => {
                let point = (x + slot / 2.0, y_of(sl, 100.0));
                if let Some(run) = line.last_mut() {
                    run.push(point);
                }
                let _ = writeln!(
                    svg,
                    r#"<circle class="sl" cx="{:.1}" cy="{:.1}" r="3"><title>{}: service level {sl:.1} %</title></circle>"#,
                    point.0,
                    point.1,
                    esc(&h.label)
                );
            }
            // No calls to measure: the line breaks.
            None => line.push(Vec::new()),
        }
    }
    for run in line.iter().filter(|r| r.len() > 1) {
        let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            svg,
            r#"<polyline class="sl" points="{}"/>"#,
            points.join(" ")
        );
    }
    let _ = write!(
        svg,
        r#"<g class="legend"><rect class="bar offered" x="{LEFT}" y="8" width="12" height="12"/><text x="{a}" y="18">Offered</text><rect class="bar answered" x="{b}" y="8" width="12" height="12"/><text x="{c}" y="18">Answered</text><line class="sl" x1="{d}" x2="{e}" y1="14" y2="14"/><text x="{f}" y="18">Service level (answered within the target)</text></g>
</svg>"#,
        a = LEFT + 16.0,
        b = LEFT + 90.0,
        c = LEFT + 106.0,
        d = LEFT + 190.0,
        e = LEFT + 210.0,
        f = LEFT + 216.0,
    );
    svg
}

/// Per queue, one bar of its offered calls split into answered, abandoned, short
/// abandons and the other unanswered.
fn queues_chart(report: &RangeReport, names: &HashMap<String, String>) -> String {
    const W: f64 = 760.0;
    const LEFT: f64 = 200.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 36.0;
    const ROW: f64 = 30.0;
    let rows = report.queues.len().max(1) as f64;
    let h = TOP + ROW * rows + 28.0;
    let plot_w = W - LEFT - RIGHT;
    let top = axis_top(report.queues.values().map(|f| f.offered).max().unwrap_or(0));
    let x_of = |v: u64| plot_w * v as f64 / top as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="chart-queues-title chart-queues-desc" xmlns="http://www.w3.org/2000/svg">
<title id="chart-queues-title">Answered and abandoned calls per queue, {from} to {to}</title>
<desc id="chart-queues-desc">One bar per queue: its offered calls, split into answered, abandoned, short abandons and otherwise unanswered. The same figures are in the table below.</desc>
"##,
        from = report.from,
        to = report.to
    );
    for i in 0..=5 {
        let v = top * i / 5;
        let x = LEFT + x_of(v);
        let _ = writeln!(
            svg,
            r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{y2}"/><text class="axis" x="{x:.1}" y="{ty}" text-anchor="middle">{v}</text>"#,
            y2 = TOP + ROW * rows,
            ty = TOP + ROW * rows + 16.0,
        );
    }
    if report.queues.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text class="axis" x="{LEFT}" y="{y}">No calls offered in these days.</text>"#,
            y = TOP + 20.0
        );
    }
    for (i, (queue, f)) in report.queues.iter().enumerate() {
        let y = TOP + ROW * i as f64 + 5.0;
        let name = display_name(names, queue);
        let short: String = name.chars().take(28).collect();
        let _ = writeln!(
            svg,
            r#"<text class="axis" x="{tx}" y="{ty:.1}" text-anchor="end"><title>{full}</title>{short}</text>"#,
            tx = LEFT - 8.0,
            ty = y + 15.0,
            full = esc(&name),
            short = esc(&short),
        );
        let mut x = LEFT;
        for (class, value, words) in [
            ("answered", f.answered, "answered"),
            ("abandoned", f.abandoned, "abandoned"),
            ("short", f.short_abandoned, "short abandons"),
            ("other", f.other_unanswered, "otherwise unanswered"),
        ] {
            let w = x_of(value);
            if value > 0 {
                let _ = writeln!(
                    svg,
                    r#"<rect class="bar {class}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="20"><title>{}: {value} {words}</title></rect>"#,
                    esc(&name)
                );
            }
            x += w;
        }
    }
    let legend = [
        ("answered", "Answered"),
        ("abandoned", "Abandoned"),
        ("short", "Short abandons"),
        ("other", "Otherwise unanswered"),
    ];
    let _ = write!(svg, r#"<g class="legend">"#);
    let mut x = 10.0;
    for (class, words) in legend {
        let _ = write!(
            svg,
            r#"<rect class="bar {class}" x="{x}" y="8" width="12" height="12"/><text x="{tx}" y="18">{words}</text>"#,
            tx = x + 16.0
        );
        // About 7 px a letter at the legend's size, and a gap.
        x += 16.0 + 7.0 * words.len() as f64 + 24.0;
    }
    svg.push_str("</g>\n</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::StatusCode;
    use hotline_core::cdr::{CallEnd, CallLeg, CallStart, EndReason, LegOutcome, Service};
    use hotline_core::store::Store;
    use hotline_core::users::Role;

    use crate::testing;

    /// Unix ms of a UTC wall time.
    fn utc(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    /// A call in `queue` started at `start` (UTC) that waited `wait_s`; answered: anna
    /// talked `talk_s`.
    async fn call(
        store: &Store,
        n: u32,
        start: &str,
        queue: &str,
        wait_s: i64,
        talk_s: Option<i64>,
    ) {
        let started = utc(start);
        let rang = started + wait_s * 1000 - 2000;
        let legs: Vec<CallLeg> = talk_s
            .map(|talk| CallLeg {
                operator: Some("anna".into()),
                number: None,
                rang_at_ms: rang,
                answered_at_ms: Some(started + wait_s * 1000),
                ended_at_ms: started + (wait_s + talk) * 1000,
                outcome: LegOutcome::Answered,
                hold_ms: 0,
                transferred_to: None,
            })
            .into_iter()
            .collect();
        let id = store
            .insert_call(&CallStart {
                call_id: format!("c{n}"),
                caller: "+3611".into(),
                called: "100".into(),
                started_at_ms: started,
                flow: None,
                flow_version: None,
            })
            .await
            .unwrap();
        let ended = started + (wait_s + talk_s.unwrap_or(0)) * 1000;
        store
            .finish_call(
                id,
                &CallEnd {
                    ended_at_ms: ended,
                    reason: EndReason::CallerHangup,
                    digits: String::new(),
                    path: Vec::new(),
                    variables: "{}".into(),
                    operator: talk_s.map(|_| "anna".into()),
                    service: Service {
                        queue: Some(queue.into()),
                        wait_ms: Some(wait_s * 1000),
                        hold_ms: 0,
                        legs,
                    },
                },
            )
            .await
            .unwrap();
    }

    /// 25 October 2026 in Budapest (25 hours): sales answered in 10 s (60 s talk) at
    /// 02:30 CEST and in 40 s (30 s talk) at 02:30 CET; support abandoned after 30 s and
    /// after 2 s (short) at 10:00.
    async fn seed(store: &Store) {
        call(store, 1, "2026-10-25 00:30:00", "sales", 10, Some(60)).await;
        call(store, 2, "2026-10-25 01:30:00", "sales", 40, Some(30)).await;
        call(store, 3, "2026-10-25 09:00:00", "support", 30, None).await;
        call(store, 4, "2026-10-25 09:10:00", "support", 2, None).await;
        // The day before, 23:59 CEST: another day.
        call(store, 5, "2026-10-24 21:59:00", "support", 30, None).await;
    }

    #[tokio::test]
    async fn a_supervisor_reads_the_day_and_its_csv_and_an_operator_may_not() {
        let store = testing::store().await;
        seed(&store).await;
        let app = testing::state(&store).app();
        let sup = testing::login(&store, "sara", Role::Supervisor).await;
        let op = testing::login(&store, "olga", Role::Operator).await;

        let (status, page) =
            testing::get_page(&app, &sup.cookie, "/supervisor/reports?day=2026-10-25").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("<svg class=\"chart\""), "{page}");
        // 25 hours of bars (and one in the legend), the repeated hour with its offset.
        assert_eq!(page.matches("<rect class=\"bar offered\"").count(), 26);
        assert!(
            page.contains("02:00 +02:00") && page.contains("02:00 +01:00"),
            "{page}"
        );
        assert!(page.contains("format=csv&amp;table=operators"), "{page}");

        let (status, hours) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&format=csv&table=hours",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let lines: Vec<&str> = hours.lines().collect();
        assert_eq!(lines.len(), 26, "{hours}");
        assert_eq!(
            lines[3],
            "02:00 +02:00,2026-10-25T02:00:00+02:00,1,1,0,0,0,1,100.0,10.0,60.0,0.0,0"
        );
        assert_eq!(
            lines[4],
            "02:00 +01:00,2026-10-25T02:00:00+01:00,1,1,0,0,0,0,0.0,40.0,30.0,0.0,0"
        );
        assert_eq!(
            lines[12],
            "10:00,2026-10-25T10:00:00+01:00,2,0,1,1,0,0,0.0,,,,0"
        );

        let (_, queues) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&format=csv&table=queues",
        )
        .await;
        assert_eq!(
            queues.lines().collect::<Vec<_>>(),
            [
                "queue,queue_name,offered,answered,abandoned,short_abandoned,other_unanswered,answered_in_target,service_level_pct,avg_answer_s,avg_talk_s,avg_hold_s,transfers",
                "sales,,2,2,0,0,0,1,50.0,25.0,45.0,0.0,0",
                "support,,2,0,1,1,0,0,0.0,,,,0",
            ]
        );
        let (_, operators) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&format=csv&table=operators",
        )
        .await;
        assert_eq!(
            operators.lines().nth(1),
            Some("anna,2,2,0,2.0,45.0,0.0,90,0")
        );

        // Two chats that day (neither taken yet) and one the day before, per queue.
        hotline_core::testing::chats_in_queues(
            &store,
            utc("2026-10-25 08:00:00"),
            60_000,
            &["sales", "sales"],
        )
        .await
        .unwrap();
        hotline_core::testing::chats_in_queues(&store, utc("2026-10-24 08:00:00"), 1, &["support"])
            .await
            .unwrap();
        let (_, chats) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&format=csv&table=chats",
        )
        .await;
        assert_eq!(
            chats.lines().collect::<Vec<_>>(),
            [
                "queue,queue_name,offered,accepted,avg_first_response_s,avg_handling_s,wrapup_categories",
                "sales,,2,0,,,",
            ]
        );
        let (_, page) =
            testing::get_page(&app, &sup.cookie, "/supervisor/reports?day=2026-10-25").await;
        assert!(page.contains("Chats per queue"), "{page}");
        // No callback entries were noted that day.
        assert!(
            page.contains("<tbody><tr><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td></tr></tbody>"),
            "{page}"
        );
        assert!(
            page.contains("<tr class=\"total\"><th scope=\"row\">Total</th><td>2</td><td>0</td>"),
            "{page}"
        );

        // Sales only: its two calls, none at 10:00.
        let (_, hours) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&queue=sales&format=csv&table=hours",
        )
        .await;
        let lines: Vec<&str> = hours.lines().collect();
        assert!(
            lines[3].ends_with(",1,1,0,0,0,1,100.0,10.0,60.0,0.0,0"),
            "{hours}"
        );
        assert_eq!(
            lines[12],
            "10:00,2026-10-25T10:00:00+01:00,0,0,0,0,0,0,,,,,0"
        );
        let (_, page) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&queue=sales",
        )
        .await;
        assert!(page.contains("queue=sales&amp;format=csv"), "{page}");

        // A 40 s target takes both sales calls in; without short abandons both support
        // calls are abandoned.
        let (_, queues) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&target=40&short=0&format=csv&table=queues",
        )
        .await;
        assert!(queues.contains("\nsales,,2,2,0,0,0,2,100.0,"), "{queues}");
        assert!(queues.contains("\nsupport,,2,0,2,0,0,0,0.0,"), "{queues}");

        // The range: per queue over two days; the day before holds call 5.
        let (status, page) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports/range?from=2026-10-24&to=2026-10-25",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("chart-queues-title"), "{page}");
        let (_, range) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports/range?from=2026-10-24&to=2026-10-25&format=csv&table=queues",
        )
        .await;
        assert!(range.contains("\nsupport,,3,0,2,1,0,0,0.0,"), "{range}");
        let (_, days) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports/range?from=2026-10-24&to=2026-10-25&format=csv&table=days",
        )
        .await;
        assert!(days.contains("\n2026-10-24,1,0,1,0,"), "{days}");
        assert!(days.contains("\n2026-10-25,4,2,1,1,"), "{days}");

        // Bad input is refused with a page, not a 500.
        for uri in [
            "/supervisor/reports?day=yesterday",
            "/supervisor/reports?target=-1",
            "/supervisor/reports/range?from=2026-10-25&to=2026-10-24",
            "/supervisor/reports/range?from=2025-01-01&to=2026-10-24",
        ] {
            assert_eq!(
                testing::get_page(&app, &sup.cookie, uri).await.0,
                StatusCode::BAD_REQUEST,
                "{uri}"
            );
        }

        // Operators get 403, on the page and on the exports.
        for uri in [
            "/supervisor/reports",
            "/supervisor/reports?day=2026-10-25&format=csv&table=queues",
            "/supervisor/reports/range",
        ] {
            assert_eq!(
                testing::get_page(&app, &op.cookie, uri).await.0,
                StatusCode::FORBIDDEN,
                "{uri}"
            );
        }
        // Without a login: to the login page.
        assert_eq!(
            testing::get_page(&app, "", "/supervisor/reports").await.0,
            StatusCode::SEE_OTHER
        );
    }

    /// anna on 25 October 2026 in Budapest (25 hours): logged in at 07:00 CET, busy
    /// 09:00–09:10, wrap-up 09:10–09:11, paused 12:00–12:30, busy 15:00–15:20 with a
    /// 2-minute wrap-up after, logged off at 16:00; online before, between and after.
    #[tokio::test]
    async fn the_operators_time_comes_from_their_state_history() {
        let store = testing::store().await;
        let changes = [
            ("2026-10-24 20:00:00", "offline"),
            ("2026-10-25 06:00:00", "online"),
            ("2026-10-25 08:00:00", "busy"),
            ("2026-10-25 08:10:00", "wrap_up"),
            ("2026-10-25 08:11:00", "online"),
            ("2026-10-25 11:00:00", "pause"),
            ("2026-10-25 11:30:00", "online"),
            ("2026-10-25 14:00:00", "busy"),
            ("2026-10-25 14:20:00", "wrap_up"),
            ("2026-10-25 14:22:00", "online"),
            ("2026-10-25 15:00:00", "offline"),
        ];
        for (at, state) in changes {
            store
                .log_operator_state("anna", state, utc(at))
                .await
                .unwrap();
        }
        let app = testing::state(&store).app();
        let sup = testing::login(&store, "sara", Role::Supervisor).await;
        let (status, csv) = testing::get_page(
            &app,
            &sup.cookie,
            "/supervisor/reports?day=2026-10-25&format=csv&table=states",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // 9 h logged in: 30 min busy, 3 min wrap-up in 2 (90 s each), 30 min paused.
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                "operator,logged_in_s,online_s,busy_s,wrap_up_s,wrap_ups,avg_wrap_up_s,pause_s,away_s",
                "anna,32400,28620,1800,180,2,90.0,1800,0",
            ]
        );
        let (_, page) =
            testing::get_page(&app, &sup.cookie, "/supervisor/reports?day=2026-10-25").await;
        assert!(page.contains("Operators' time"), "{page}");
        assert!(
            page.contains("<th scope=\"row\">anna</th><td>9:00:00</td>"),
            "{page}"
        );
    }
}
