//! The operators' state history (PRODUCT S3): the daemon samples each operator's status
//! once a second and files a row here whenever it changes, and the reports sum from it
//! each operator's time online, busy, paused and in wrap-up over a day or a range of
//! days (bounds in unix ms, end exclusive, as [`crate::reports::day_bounds`] gives them).
//!
//! # Definitions
//!
//! - A row says that from `at_ms` on the operator was in `state` until their next row.
//!   States are named as [`state_name`] names them: `online`, `busy` (in a voice call),
//!   `wrap_up`, `away`, `pause` and `offline`.
//! - An operator's time in `[from_ms, to_ms)` comes from their last row before `from_ms`
//!   (the state they were in at `from_ms`) and their rows in the window, which is what
//!   [`Store::operator_states_between`] reads. Their last row runs until the end of the
//!   window, or until now on a day still going on; every interval is clipped to the window.
//! - Rows in the same state one after the other (a restart of the daemon files the state
//!   again) add up, and make one wrap-up period, not two.
//! - **Logged in** is every state but `offline`. Offline time is not counted; a state name
//!   this module does not know (a newer daemon's) is not counted either. `wrap-up` (the
//!   console API's name for it) is taken as `wrap_up`.
//! - **Wrap-ups** are the wrap-up periods that began in the window; the average wrap-up is
//!   the wrap-up time in the window over them, so a period that runs across an edge of the
//!   window counts in the time of both days and in the number of the one it began in.

use std::collections::BTreeMap;

use sqlx::Row as _;

use crate::acd::OperatorStatus;
use crate::store::{Store, StoreError};

/// One row of the history: from `at_ms` on, `operator` was in `state`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StateChange {
    pub operator: String,
    pub state: String,
    pub at_ms: i64,
}

/// An operator's time per state in a window, in ms.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateTimes {
    pub online_ms: i64,
    pub busy_ms: i64,
    pub wrap_up_ms: i64,
    pub away_ms: i64,
    pub pause_ms: i64,
    /// Wrap-up periods that began in the window (for the average).
    pub wrap_ups: u64,
}

impl StateTimes {
    /// The wrap-up time in the window over the wrap-up periods that began in it, in
    /// seconds; none without such periods.
    pub fn average_wrap_up_secs(&self) -> Option<f64> {
        (self.wrap_ups > 0).then(|| self.wrap_up_ms as f64 / self.wrap_ups as f64 / 1000.0)
    }

    /// Logged in: everything but offline.
    pub fn logged_in_ms(&self) -> i64 {
        self.online_ms + self.busy_ms + self.wrap_up_ms + self.away_ms + self.pause_ms
    }
}

/// The name a status is filed under in the history (the API sends wrap-up as `wrap-up`;
/// the history says `wrap_up`).
pub fn state_name(status: OperatorStatus) -> &'static str {
    match status {
        OperatorStatus::Online => "online",
        OperatorStatus::Busy => "busy",
        OperatorStatus::WrapUp => "wrap_up",
        OperatorStatus::Away => "away",
        OperatorStatus::Pause => "pause",
        OperatorStatus::Offline => "offline",
    }
}

impl Store {
    /// From `at_ms` on, `operator` is in `state` (a [`state_name`]).
    pub async fn log_operator_state(
        &self,
        operator: &str,
        state: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO operator_states (operator, state, at_ms) VALUES ($1, $2, $3)")
            .bind(operator)
            .bind(state)
            .bind(at_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// What decides the operators' time in `[from_ms, to_ms)`: each operator's last row
    /// before `from_ms` (the state they were in at `from_ms`, `offline` included), and
    /// every row in `[from_ms, to_ms)`; ordered by operator, `at_ms` and the order they
    /// were filed in. An operator whose rows all come at or after `to_ms` is not there.
    ///
    /// At most `limit` rows: the first ones in that order, so whole operators first and the
    /// one cut short missing its latest rows (the bool: rows were left out, and the last
    /// operator's figures, and those of operators after it, are short).
    pub async fn operator_states_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<(Vec<StateChange>, bool), StoreError> {
        let limit = limit.max(0);
        // The operators are found by skipping along the (operator, at_ms) index, one
        // lookup each, rather than by reading every row before `from_ms` (years of them).
        let rows = sqlx::query(
            "WITH RECURSIVE ops (operator) AS ( \
                 SELECT (SELECT operator FROM operator_states ORDER BY operator LIMIT 1) \
                 UNION ALL \
                 SELECT (SELECT operator FROM operator_states \
                         WHERE operator > ops.operator ORDER BY operator LIMIT 1) \
                 FROM ops WHERE ops.operator IS NOT NULL \
             ) \
             SELECT s.id, s.operator, s.state, s.at_ms FROM ops \
             JOIN operator_states s ON s.id = ( \
                 SELECT b.id FROM operator_states b \
                 WHERE b.operator = ops.operator AND b.at_ms < $1 \
                 ORDER BY b.at_ms DESC, b.id DESC LIMIT 1) \
             UNION ALL \
             SELECT id, operator, state, at_ms FROM operator_states \
             WHERE at_ms >= $1 AND at_ms < $2 \
             ORDER BY operator, at_ms, id LIMIT $3",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit.saturating_add(1))
        .fetch_all(self.reader())
        .await?;
        let mut changes = rows
            .iter()
            .map(|r| {
                Ok(StateChange {
                    operator: r.try_get("operator")?,
                    state: r.try_get("state")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let cut = changes.len() as i64 > limit;
        changes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((changes, cut))
    }
}

/// Each operator's time per state in `[from_ms, to_ms)`, from `changes` as
/// [`Store::operator_states_between`] returns them. An interval runs from a row's `at_ms`
/// to the operator's next row, or to `min(to_ms, now_ms)` for their last one, clipped to
/// the window. The rows may come in any order of operators; an operator's rows are taken
/// by `at_ms`, those with the same `at_ms` in the order given. Offline time and unknown
/// states are not counted; operators with no time counted are left out.
pub fn state_times(
    changes: &[StateChange],
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> BTreeMap<String, StateTimes> {
    let end_ms = to_ms.min(now_ms);
    let mut by_operator: BTreeMap<&str, Vec<&StateChange>> = BTreeMap::new();
    for change in changes {
        by_operator
            .entry(&change.operator)
            .or_default()
            .push(change);
    }
    let mut times = BTreeMap::new();
    for (operator, mut rows) in by_operator {
        rows.sort_by_key(|c| c.at_ms);
        let mut t = StateTimes::default();
        let mut previous: Option<&str> = None;
        for (i, change) in rows.iter().enumerate() {
            let until = rows.get(i + 1).map_or(end_ms, |next| next.at_ms);
            let ms = until
                .min(to_ms)
                .saturating_sub(change.at_ms.max(from_ms))
                .max(0);
            // The console API's spelling of wrap-up, should a row be filed under it.
            let state = match change.state.as_str() {
                "wrap-up" => "wrap_up",
                name => name,
            };
            match state {
                "online" => t.online_ms += ms,
                "busy" => t.busy_ms += ms,
                "wrap_up" => {
                    t.wrap_up_ms += ms;
                    let began_here =
                        (from_ms..to_ms).contains(&change.at_ms) && previous != Some("wrap_up");
                    if began_here {
                        t.wrap_ups += 1;
                    }
                }
                "away" => t.away_ms += ms,
                "pause" => t.pause_ms += ms,
                // Offline, and names this module does not know.
                _ => {}
            }
            previous = Some(state);
        }
        if t.logged_in_ms() > 0 {
            times.insert(operator.to_string(), t);
        }
    }
    times
}
