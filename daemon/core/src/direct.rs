//! Direct callback (seed 001, "közvetlen visszahívás"; PRODUCT C5, its settings C6).
//!
//! An operator may have an own number: a phone number routed to the hotline (a DID) that
//! is shown as the caller ID when they call a customer. Each such call links the customer
//! to the operator ([`Store::remember_direct_call`]); when the customer calls that number
//! back while the link is in force, the call is offered to that operator first
//! ([`Store::direct_route`]). The daemon does the rest: the operator's phone rings if they
//! are free, else the caller waits in the queue as anyone would, and a missed call is
//! marked for the operator ([`Store::mark_callback_for_operator`]).
//!
//! The four modes, each keeping the link longer (lengths per operator, set by an admin):
//! 1. [`DirectMode::NextCall`]: the customer's next call only, within `minutes` (1–1440).
//!    The call that uses the link consumes it: one conditional `UPDATE`, so of two calls
//!    at once only one gets the operator.
//! 2. [`DirectMode::Hours`]: any call within `hours` (1–168).
//! 3. [`DirectMode::NextWorkday`]: any call until the end of the next working day of the
//!    operator's calendar: the first day after the day of the operator's call (on the
//!    calendar's clock) that has opening hours, until its last closing time. Holidays and
//!    weekends without hours are skipped, a moved working Saturday counts.
//! 4. [`DirectMode::Days`]: any call for `days` (1–365) days, counted on the calendar's
//!    clock: the link ends at the same wall-clock time `days` later, across DST changes.
//!
//! A link is in force while `now < expires_at`. Expiry times are computed once, when the
//! operator calls ([`binding_expiry`], pure: no clock, no I/O); changing an operator's mode
//! later doesn't move the links already made, but changing or removing their own number
//! ends them. One link per customer: a newer call by any operator with an own number
//! replaces it. A wall-clock time that happens twice (the repeated hour of a fall-back
//! night) means its later instant, one skipped by a spring-forward jump means the jump, so
//! a link never ends early.
//!
//! Numbers are kept and compared in the canonical form of [`hotline_ivr::number`]
//! (`06 30 123 4567` = `+36301234567`).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use chrono::{DateTime, Days, MappedLocalTime, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use hotline_ivr::calendar::{Calendar, SEARCH_DAYS};
use hotline_ivr::number;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Store, StoreError};

/// Mode 1's window, in minutes.
pub const MINUTES_RANGE: RangeInclusive<i64> = 1..=1440;
/// Mode 2's window, in hours (a week at most).
pub const HOURS_RANGE: RangeInclusive<i64> = 1..=168;
/// Mode 4's length, in days (a year at most).
pub const DAYS_RANGE: RangeInclusive<i64> = 1..=365;
/// Calendar names are file stems under `ivr-flows/calendars/`.
pub const MAX_CALENDAR_CHARS: usize = 64;

/// How long a direct link lasts. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectMode {
    /// 1: the next call only, within `minutes`.
    NextCall,
    /// 2: any call within `hours`.
    Hours,
    /// 3: until the end of the next working day of the calendar.
    NextWorkday,
    /// 4: for `days`, on the calendar's clock.
    Days,
}

impl DirectMode {
    pub const ALL: [DirectMode; 4] = [
        DirectMode::NextCall,
        DirectMode::Hours,
        DirectMode::NextWorkday,
        DirectMode::Days,
    ];

    /// 1–4, as admins choose it and as stored.
    pub fn number(self) -> i64 {
        match self {
            DirectMode::NextCall => 1,
            DirectMode::Hours => 2,
            DirectMode::NextWorkday => 3,
            DirectMode::Days => 4,
        }
    }

    pub fn from_number(n: i64) -> Option<DirectMode> {
        DirectMode::ALL.into_iter().find(|m| m.number() == n)
    }

    /// The mode in words, for admins.
    pub fn describe(self) -> &'static str {
        match self {
            DirectMode::NextCall => "the customer's next call only, within the minutes set",
            DirectMode::Hours => "any call from the customer within the hours set",
            DirectMode::NextWorkday => {
                "any call until the end of the next working day of the calendar"
            }
            DirectMode::Days => "any call for the days set (sticky)",
        }
    }

    /// Modes 3 and 4 count on a calendar (working days; the clock days are counted on).
    pub fn needs_calendar(self) -> bool {
        matches!(self, DirectMode::NextWorkday | DirectMode::Days)
    }
}

/// The lengths an admin sets; each mode uses one (mode 3 none). All are kept, so
/// switching modes loses nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectLengths {
    pub minutes: i64,
    pub hours: i64,
    pub days: i64,
}

impl Default for DirectLengths {
    fn default() -> DirectLengths {
        DirectLengths {
            minutes: 30,
            hours: 24,
            days: 7,
        }
    }
}

/// An operator's direct-callback settings. No settings: direct callback is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectSettings {
    pub operator: String,
    /// Canonical form.
    pub own_number: String,
    pub mode: DirectMode,
    pub lengths: DirectLengths,
    /// Required for modes 3 and 4 (a calendar of the flows directory, by name).
    pub calendar: Option<String>,
    pub updated_at_ms: i64,
}

/// What an admin submits for one operator.
#[derive(Clone, Debug)]
pub struct DirectForm<'a> {
    /// Digits with an optional leading `+`; spaces, `-`, `.`, `/` and brackets are fine.
    pub own_number: &'a str,
    /// 1–4.
    pub mode: i64,
    pub lengths: DirectLengths,
    /// Empty or `None`: no calendar.
    pub calendar: Option<&'a str>,
}

/// The link made by an operator's call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectBinding {
    pub id: i64,
    pub customer: String,
    pub operator: String,
    pub own_number: String,
    pub mode: DirectMode,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Mode 1: a call has used it.
    pub used: bool,
    pub last_used_at_ms: Option<i64>,
}

/// A call the daemon routes to an operator first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectRoute {
    pub operator: String,
    pub mode: DirectMode,
    pub expires_at_ms: i64,
}

/// Why settings were refused or a link could not be made. The messages are meant for
/// admins (the settings page shows them as they are).
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("own number {given:?}: {reason} (digits, optionally after one leading +)")]
    BadOwnNumber { given: String, reason: String },
    #[error("customer number {given:?}: {reason}")]
    BadCustomerNumber { given: String, reason: String },
    #[error("the customer's number is withheld: there is nothing to link")]
    AnonymousCustomer,
    #[error("mode {0}: choose 1 (next call), 2 (hours), 3 (next working day) or 4 (days)")]
    BadMode(i64),
    #[error("minutes {0}: must be 1–1440")]
    BadMinutes(i64),
    #[error("hours {0}: must be 1–168")]
    BadHours(i64),
    #[error("days {0}: must be 1–365")]
    BadDays(i64),
    #[error("mode {0} counts on a calendar: choose one (a file in ivr-flows/calendars/)")]
    CalendarNeeded(i64),
    #[error(
        "calendar name {0:?}: use the file name without .toml (letters, digits, '-', '_', '.')"
    )]
    BadCalendarName(String),
    #[error("no calendar named {0:?} is loaded (ivr-flows/calendars/{0}.toml)")]
    UnknownCalendar(String),
    #[error("calendar {0:?} has no day with opening hours in the next {SEARCH_DAYS} days")]
    NoWorkingDay(String),
    #[error("time {0} ms is out of range")]
    BadTime(i64),
    #[error("no operator named {0:?}")]
    UnknownOperator(String),
    #[error("the number {number} is already the own number of operator {operator}")]
    NumberTaken { number: String, operator: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DirectError {
    fn from(e: sqlx::Error) -> DirectError {
        DirectError::Store(e.into())
    }
}

/// An own number in canonical form, or why it isn't one.
pub fn canonical_own_number(given: &str) -> Result<String, DirectError> {
    number::normalize(given.trim()).map_err(|e| DirectError::BadOwnNumber {
        given: given.to_string(),
        reason: e.message,
    })
}

fn check_lengths(l: &DirectLengths) -> Result<(), DirectError> {
    if !MINUTES_RANGE.contains(&l.minutes) {
        return Err(DirectError::BadMinutes(l.minutes));
    }
    if !HOURS_RANGE.contains(&l.hours) {
        return Err(DirectError::BadHours(l.hours));
    }
    if !DAYS_RANGE.contains(&l.days) {
        return Err(DirectError::BadDays(l.days));
    }
    Ok(())
}

fn check_calendar_name(name: &str) -> Result<(), DirectError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_CALENDAR_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(DirectError::BadCalendarName(name.to_string()))
    }
}

/// Checks a form: the canonical own number, the mode and the calendar name (if any).
pub fn validate_form(
    f: &DirectForm<'_>,
) -> Result<(String, DirectMode, Option<String>), DirectError> {
    let own = canonical_own_number(f.own_number)?;
    let mode = DirectMode::from_number(f.mode).ok_or(DirectError::BadMode(f.mode))?;
    check_lengths(&f.lengths)?;
    let calendar = f.calendar.map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = calendar {
        check_calendar_name(c)?;
    }
    if mode.needs_calendar() && calendar.is_none() {
        return Err(DirectError::CalendarNeeded(mode.number()));
    }
    Ok((own, mode, calendar.map(str::to_string)))
}

/// When a link made at `created_ms` ends (unix ms; in force while `now < expiry`).
/// `calendar` is needed for modes 3 and 4 (`CalendarNeeded` without it). Pure.
pub fn binding_expiry(
    mode: DirectMode,
    lengths: &DirectLengths,
    created_ms: i64,
    calendar: Option<&Calendar>,
) -> Result<i64, DirectError> {
    check_lengths(lengths)?;
    let created =
        DateTime::from_timestamp_millis(created_ms).ok_or(DirectError::BadTime(created_ms))?;
    let calendar = || calendar.ok_or(DirectError::CalendarNeeded(mode.number()));
    let end = match mode {
        DirectMode::NextCall => created.checked_add_signed(TimeDelta::minutes(lengths.minutes)),
        DirectMode::Hours => created.checked_add_signed(TimeDelta::hours(lengths.hours)),
        DirectMode::NextWorkday => {
            let cal = calendar()?;
            return end_of_next_working_day(cal, created)
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| DirectError::NoWorkingDay(cal.name().to_string()));
        }
        DirectMode::Days => {
            let tz = calendar()?.timezone();
            let days =
                u64::try_from(lengths.days).map_err(|_| DirectError::BadDays(lengths.days))?;
            created
                .with_timezone(&tz)
                .naive_local()
                .checked_add_days(Days::new(days))
                .and_then(|wall| wall_instant(&tz, wall))
        }
    };
    end.map(|t| t.timestamp_millis())
        .ok_or(DirectError::BadTime(created_ms))
}

/// The last closing time of the first day after `created`'s local date that has opening
/// hours (an overnight range closes the morning after).
fn end_of_next_working_day(cal: &Calendar, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = cal.timezone();
    let mut date = created.with_timezone(&tz).date_naive();
    for _ in 0..SEARCH_DAYS {
        date = date.succ_opt()?;
        let last = cal
            .hours_on(date)
            .iter()
            .filter_map(|r| {
                let day = if r.is_overnight() {
                    date.succ_opt()?
                } else {
                    date
                };
                day.and_time(NaiveTime::MIN)
                    .checked_add_signed(TimeDelta::minutes(i64::from(r.end_minute())))
            })
            .max();
        if let Some(wall) = last {
            return wall_instant(&tz, wall);
        }
    }
    None
}

/// The instant a wall-clock time names: the later one when it happens twice (fall-back),
/// the jump when a spring-forward skips it (the first instant whose wall time is later).
fn wall_instant<Z: TimeZone>(tz: &Z, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        MappedLocalTime::Single(t) => Some(t.to_utc()),
        MappedLocalTime::Ambiguous(_, later) => Some(later.to_utc()),
        MappedLocalTime::None => {
            // Offsets stay within a day, so the jump lies within a day of the wall time
            // read as UTC; bisect on whole seconds.
            let base = wall.and_utc().timestamp();
            let (mut lo, mut hi) = (base - 36 * 3600, base + 36 * 3600);
            let later = |s: i64| {
                DateTime::from_timestamp(s, 0)
                    .is_some_and(|t| t.with_timezone(tz).naive_local() >= wall)
            };
            if !later(hi) {
                return None;
            }
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if later(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            DateTime::from_timestamp(hi, 0)
        }
    }
}

const SETTINGS_COLUMNS: &str =
    "operator, own_number, mode, minutes, hours, days, calendar, updated_at";

const BINDING_COLUMNS: &str =
    "id, customer, operator, own_number, mode, created_at, expires_at, used, last_used_at";

fn mode_from(r: &AnyRow) -> Result<DirectMode, sqlx::Error> {
    let n: i64 = r.try_get("mode")?;
    DirectMode::from_number(n).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown direct mode {n} in the database").into())
    })
}

fn settings_from(r: &AnyRow) -> Result<DirectSettings, sqlx::Error> {
    Ok(DirectSettings {
        operator: r.try_get("operator")?,
        own_number: r.try_get("own_number")?,
        mode: mode_from(r)?,
        lengths: DirectLengths {
            minutes: r.try_get("minutes")?,
            hours: r.try_get("hours")?,
            days: r.try_get("days")?,
        },
        calendar: r.try_get("calendar")?,
        updated_at_ms: r.try_get("updated_at")?,
    })
}

fn binding_from(r: &AnyRow) -> Result<DirectBinding, sqlx::Error> {
    let used: i64 = r.try_get("used")?;
    Ok(DirectBinding {
        id: r.try_get("id")?,
        customer: r.try_get("customer")?,
        operator: r.try_get("operator")?,
        own_number: r.try_get("own_number")?,
        mode: mode_from(r)?,
        created_at_ms: r.try_get("created_at")?,
        expires_at_ms: r.try_get("expires_at")?,
        used: used != 0,
        last_used_at_ms: r.try_get("last_used_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Store {
    /// The operator's settings; `None`: direct callback is off for them.
    pub async fn direct_settings(
        &self,
        operator: &str,
    ) -> Result<Option<DirectSettings>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM operator_direct WHERE operator = $1"
        )))
        .bind(operator)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(settings_from).transpose()?)
    }

    /// Every operator's settings, by operator name.
    pub async fn all_direct_settings(&self) -> Result<Vec<DirectSettings>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM operator_direct ORDER BY operator"
        )))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(settings_from).collect::<Result<_, _>>()?)
    }

    /// Sets an operator's own number, mode, lengths and calendar (admins only: the web
    /// layer and the CLI check that). A changed own number ends the operator's links made
    /// with the old one. Whether the calendar exists is the caller's check (the store
    /// doesn't know the flows directory); a missing one fails later links of modes 3/4.
    pub async fn set_direct_settings(
        &self,
        operator: &str,
        form: &DirectForm<'_>,
        now_ms: i64,
    ) -> Result<DirectSettings, DirectError> {
        let (own, mode, calendar) = validate_form(form)?;
        let exists = sqlx::query("SELECT id FROM operators WHERE name = $1")
            .bind(operator)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_none() {
            return Err(DirectError::UnknownOperator(operator.to_string()));
        }
        let taken = sqlx::query(
            "SELECT operator FROM operator_direct WHERE own_number = $1 AND operator <> $2",
        )
        .bind(&own)
        .bind(operator)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = taken {
            return Err(DirectError::NumberTaken {
                number: own,
                operator: row.try_get(0)?,
            });
        }
        let taken_err = |own: &str, e: sqlx::Error| {
            if is_unique_violation(&e) {
                // Another admin gave the number to someone else meanwhile.
                DirectError::NumberTaken {
                    number: own.to_string(),
                    operator: String::from("another operator"),
                }
            } else {
                e.into()
            }
        };
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO operator_direct ({SETTINGS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (operator) DO UPDATE SET own_number = excluded.own_number, \
             mode = excluded.mode, minutes = excluded.minutes, hours = excluded.hours, \
             days = excluded.days, calendar = excluded.calendar, updated_at = excluded.updated_at \
             RETURNING {SETTINGS_COLUMNS}"
        )))
        .bind(operator)
        .bind(&own)
        .bind(mode.number())
        .bind(form.lengths.minutes)
        .bind(form.lengths.hours)
        .bind(form.lengths.days)
        .bind(calendar.as_deref())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| taken_err(&own, e))?;
        let settings = settings_from(&row)?;
        sqlx::query("DELETE FROM direct_bindings WHERE operator = $1 AND own_number <> $2")
            .bind(operator)
            .bind(&own)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.map_err(|e| taken_err(&own, e))?;
        Ok(settings)
    }

    /// Turns direct callback off for the operator: no own number, and their links end.
    /// Returns whether it was on.
    pub async fn clear_direct_settings(&self, operator: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM operator_direct WHERE operator = $1")
            .bind(operator)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM direct_bindings WHERE operator = $1")
            .bind(operator)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The operator whose own number `called` is (any form of it), if any.
    pub async fn own_number_owner(&self, called: &str) -> Result<Option<String>, StoreError> {
        let Ok(called) = number::normalize(called.trim()) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT operator FROM operator_direct WHERE own_number = $1")
            .bind(called)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The operator is calling `customer` (click-to-call, a callback) at `now_ms`. With an
    /// own number, links the customer to them (replacing any older link of the customer)
    /// and returns the own number: present it as the caller ID. `Ok(None)`: direct
    /// callback is off for the operator; present the hotline number. `calendars`: the
    /// loaded flow set's (`FlowSet::calendars`), for modes 3 and 4. On an error no link is
    /// made; present the hotline number (the customer calling the own number back still
    /// reaches the operator's queue).
    pub async fn remember_direct_call(
        &self,
        operator: &str,
        customer: &str,
        now_ms: i64,
        calendars: &BTreeMap<String, Arc<Calendar>>,
    ) -> Result<Option<String>, DirectError> {
        let Some(s) = self.direct_settings(operator).await? else {
            return Ok(None);
        };
        if number::is_anonymous(customer) {
            return Err(DirectError::AnonymousCustomer);
        }
        let customer =
            number::normalize(customer.trim()).map_err(|e| DirectError::BadCustomerNumber {
                given: customer.to_string(),
                reason: e.message,
            })?;
        let calendar = match (&s.calendar, s.mode.needs_calendar()) {
            (Some(name), true) => Some(
                calendars
                    .get(name)
                    .ok_or_else(|| DirectError::UnknownCalendar(name.clone()))?
                    .as_ref(),
            ),
            _ => None,
        };
        let expires = binding_expiry(s.mode, &s.lengths, now_ms, calendar)?;
        // A call that started earlier but is remembered later must not replace a newer
        // link: the update applies only to older ones.
        sqlx::query(
            "INSERT INTO direct_bindings (customer, operator, own_number, mode, created_at, \
             expires_at, used, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, 0, NULL) \
             ON CONFLICT (customer) DO UPDATE SET operator = excluded.operator, \
             own_number = excluded.own_number, mode = excluded.mode, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, used = 0, \
             last_used_at = NULL \
             WHERE direct_bindings.created_at <= excluded.created_at",
        )
        .bind(&customer)
        .bind(operator)
        .bind(&s.own_number)
        .bind(s.mode.number())
        .bind(now_ms)
        .bind(expires)
        .execute(self.pool())
        .await?;
        Ok(Some(s.own_number))
    }

    /// A call from `caller` to `called` at `now_ms`: the operator to offer it to first, if
    /// a link is in force (made with the operator's current own number). A mode 1 link is
    /// used up by this call: one conditional `UPDATE`, so of two calls at once only one
    /// gets it. Withheld or malformed numbers never match.
    pub async fn direct_route(
        &self,
        called: &str,
        caller: &str,
        now_ms: i64,
    ) -> Result<Option<DirectRoute>, StoreError> {
        if number::is_anonymous(caller) {
            return Ok(None);
        }
        let (Ok(called), Ok(caller)) = (
            number::normalize(called.trim()),
            number::normalize(caller.trim()),
        ) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "UPDATE direct_bindings SET used = CASE WHEN mode = 1 THEN 1 ELSE used END, \
             last_used_at = $3 \
             WHERE customer = $2 AND own_number = $1 AND expires_at > $3 AND used = 0 \
             AND EXISTS (SELECT 1 FROM operator_direct d \
                 WHERE d.operator = direct_bindings.operator \
                 AND d.own_number = direct_bindings.own_number) \
             RETURNING operator, mode, expires_at",
        )
        .bind(called)
        .bind(caller)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(DirectRoute {
            operator: row.try_get("operator")?,
            mode: mode_from(&row)?,
            expires_at_ms: row.try_get("expires_at")?,
        }))
    }

    /// The customer's link as stored (in force or not), for admins and tests.
    pub async fn direct_binding(
        &self,
        customer: &str,
    ) -> Result<Option<DirectBinding>, StoreError> {
        let Ok(customer) = number::normalize(customer.trim()) else {
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BINDING_COLUMNS} FROM direct_bindings WHERE customer = $1"
        )))
        .bind(customer)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(binding_from).transpose()?)
    }

    /// Marks a callback-list entry as a missed direct call for `operator`. Returns whether
    /// the entry exists.
    pub async fn mark_callback_for_operator(
        &self,
        entry_id: i64,
        operator: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE callback_entries SET for_operator = $2 WHERE id = $1")
            .bind(entry_id)
            .bind(operator)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The operator a callback-list entry is marked for, if any.
    pub async fn callback_for_operator(&self, entry_id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT for_operator FROM callback_entries WHERE id = $1")
            .bind(entry_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for m in DirectMode::ALL {
            assert_eq!(DirectMode::from_number(m.number()), Some(m));
        }
        assert_eq!(DirectMode::from_number(0), None);
        assert_eq!(DirectMode::from_number(5), None);
    }

    #[test]
    fn forms_are_checked() {
        let form = |n, mode, cal| DirectForm {
            own_number: n,
            mode,
            lengths: DirectLengths::default(),
            calendar: cal,
        };
        let (own, mode, cal) = validate_form(&form("06 1 234 5601", 2, None)).unwrap();
        assert_eq!(
            (own.as_str(), mode, cal),
            ("+3612345601", DirectMode::Hours, None)
        );
        assert!(matches!(
            validate_form(&form("12a45", 1, None)),
            Err(DirectError::BadOwnNumber { .. })
        ));
        assert!(matches!(
            validate_form(&form("+3612345601", 5, None)),
            Err(DirectError::BadMode(5))
        ));
        assert!(matches!(
            validate_form(&form("+3612345601", 3, Some(" "))),
            Err(DirectError::CalendarNeeded(3))
        ));
        assert!(matches!(
            validate_form(&form("+3612345601", 4, Some("../etc"))),
            Err(DirectError::BadCalendarName(_))
        ));
        let mut f = form("+3612345601", 1, None);
        f.lengths.minutes = 1441;
        assert!(matches!(
            validate_form(&f),
            Err(DirectError::BadMinutes(1441))
        ));
        f.lengths.minutes = 1;
        f.lengths.hours = 0;
        assert!(matches!(validate_form(&f), Err(DirectError::BadHours(0))));
        f.lengths.hours = 168;
        f.lengths.days = 366;
        assert!(matches!(validate_form(&f), Err(DirectError::BadDays(366))));
    }

    #[test]
    fn wall_times_in_gaps_and_repeats() {
        let tz = chrono_tz_budapest();
        let wall = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // 29 March 2026, 02:00 CET → 03:00 CEST: 02:30 is skipped; the jump is 01:00 UTC.
        let t = wall_instant(&tz, wall("2026-03-29 02:30")).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        // 25 October 2026, 03:00 CEST → 02:00 CET: 02:30 happens twice; the later is CET.
        let t = wall_instant(&tz, wall("2026-10-25 02:30")).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-10-25T01:30:00+00:00");
    }

    /// The zone of a one-line calendar (hotline-core names no chrono-tz type itself).
    fn chrono_tz_budapest() -> impl TimeZone + Copy {
        let cal = hotline_ivr::calendar::parse_calendar(
            std::path::Path::new("t.toml"),
            "timezone = \"Europe/Budapest\"\n[hours]\nmon = [\"08:00-17:00\"]\n",
        )
        .unwrap();
        cal.timezone()
    }
}
