//! Persisted timers: "do this at that time", surviving restarts.
//!
//! Scheduling is a [`WriteTx`] operation, so a timer commits (or not) together with the change
//! that caused it, and a commit that added one wakes the scheduler. Firing is one too: the
//! scheduler takes due timers in a write transaction, hands the same transaction to the
//! handler, and commits the timers' removal from the queue together with their effects — so a
//! timer fires exactly once, or (on a crash or an error) not at all and again later.
//!
//! A fired timer is kept, marked `fired`, until [`WriteTx::prune_fired_timers`] removes it:
//! its key then still refuses a second [`WriteTx::schedule_timers`] of the same work (another
//! instance's cron tick a moment later, an escalation scheduled again on replay). A timer
//! whose handler keeps failing is retried with a backoff and finally marked `dead`, where it
//! stays for an operator to see.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::write::{BulkInsert, Inner, chunks, json, on_tx};
use super::{Result, Store, StoreError, WriteTx, on_pool};
use crate::domain::time::from_micros;

/// A timer to schedule.
#[derive(Debug, Clone)]
pub struct NewTimer {
    /// Unique per piece of work (e.g. `escalate:42:security:2`): scheduling a key already
    /// present — pending, fired or dead — does nothing.
    pub key: String,
    /// What the handler should do; it dispatches on this.
    pub kind: String,
    pub incident_id: Option<i64>,
    /// When due, UTC microseconds.
    pub due_at: i64,
    /// The handler's own data.
    pub payload: serde_json::Value,
}

/// A timer taken for firing.
#[derive(Debug, Clone, PartialEq)]
pub struct DueTimer {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub incident_id: Option<i64>,
    /// When it was due (after failed firings: when this retry was due).
    pub due_at: i64,
    /// JSON text; see [`DueTimer::payload`].
    pub payload: String,
    /// Failed firings before this one.
    pub attempts: i32,
}

impl DueTimer {
    /// The payload as `T`; an unreadable payload is an error the scheduler retries and
    /// finally gives up on, like any other handler failure.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.payload).map_err(|e| {
            StoreError::Failed(format!(
                "timer `{}`: payload is not what a `{}` timer takes: {e}",
                self.key, self.kind
            ))
        })
    }

    pub fn due(&self) -> DateTime<Utc> {
        from_micros(self.due_at)
    }
}

/// A timer as stored, for listings and tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TimerView {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub incident_id: Option<i64>,
    #[serde(with = "crate::domain::time::micros")]
    pub due_at: i64,
    pub payload: String,
    /// `pending`, `fired` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[serde(with = "crate::domain::time::micros::option")]
    pub done_at: Option<i64>,
}

static INSERT_TIMERS: BulkInsert = BulkInsert::new(
    "INSERT INTO timers (key, kind, incident_id, due_at, payload, created_at)",
    6,
    " ON CONFLICT (key) DO NOTHING",
);

type DueRow = (i64, String, String, Option<i64>, i64, String, i32);

fn due(rows: Vec<DueRow>) -> Vec<DueTimer> {
    let mut out: Vec<DueTimer> = rows
        .into_iter()
        .map(
            |(id, key, kind, incident_id, due_at, payload, attempts)| DueTimer {
                id,
                key,
                kind,
                incident_id,
                due_at,
                payload,
                attempts,
            },
        )
        .collect();
    // RETURNING promises no order.
    out.sort_by_key(|t| (t.due_at, t.id));
    out
}

impl WriteTx {
    /// Schedule timers in this transaction; keys already present are left alone. Returns how
    /// many were added. The commit wakes the scheduler if any was.
    pub async fn schedule_timers(&mut self, items: &[NewTimer], now: i64) -> Result<u64> {
        let payloads: Vec<String> = items.iter().map(|t| json(&t.payload)).collect();
        let mut added = 0;
        for (at, n) in chunks(items.len()) {
            added += on_tx!(self, c, pg => {
                let mut q = sqlx::query(INSERT_TIMERS.statement(n, pg));
                for (t, p) in items[at..at + n].iter().zip(&payloads[at..at + n]) {
                    q = q
                        .bind(&t.key)
                        .bind(&t.kind)
                        .bind(t.incident_id)
                        .bind(t.due_at)
                        .bind(p)
                        .bind(now);
                }
                q.execute(&mut *c).await?.rows_affected()
            });
        }
        if added > 0 {
            self.timers_scheduled = true;
        }
        Ok(added)
    }

    /// Cancel pending timers by key; returns how many were pending. A cancelled key may be
    /// scheduled again. Fired and dead timers are not touched.
    pub async fn cancel_timers(&mut self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let n = on_tx!(self, c, pg => {
            let sql = if pg {
                "DELETE FROM timers WHERE status = 'pending' AND key IN (SELECT jsonb_array_elements_text($1::jsonb))"
            } else {
                "DELETE FROM timers WHERE status = 'pending' AND key IN (SELECT value FROM json_each($1))"
            };
            sqlx::query(sql).bind(json(keys)).execute(&mut *c).await?.rows_affected()
        });
        Ok(n)
    }

    /// Cancel an incident's pending timers, all or only those of one kind (e.g. its
    /// escalations once it is acknowledged); returns how many.
    pub async fn cancel_incident_timers(
        &mut self,
        incident_id: i64,
        kind: Option<&str>,
    ) -> Result<u64> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "DELETE FROM timers WHERE status = 'pending' AND incident_id = $1 \
                 AND ($2 IS NULL OR kind = $2)",
            )
            .bind(incident_id)
            .bind(kind)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Take up to `limit` timers due at `now`, oldest first, marking them fired in this
    /// transaction. On PostgreSQL rows another transaction holds are skipped, never waited for.
    pub async fn take_due_timers(&mut self, now: i64, limit: i64) -> Result<Vec<DueTimer>> {
        let rows: Vec<DueRow> = on_tx!(self, c, pg => {
            let sql = if pg {
                "UPDATE timers SET status = 'fired', done_at = $1 \
                 WHERE status = 'pending' AND id IN (SELECT id FROM timers WHERE status = 'pending' \
                 AND due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, key, kind, incident_id, due_at, payload, attempts"
            } else {
                "UPDATE timers SET status = 'fired', done_at = $1 \
                 WHERE id IN (SELECT id FROM timers WHERE status = 'pending' \
                 AND due_at <= $1 ORDER BY due_at, id LIMIT $2) \
                 RETURNING id, key, kind, incident_id, due_at, payload, attempts"
            };
            sqlx::query_as(sql).bind(now).bind(limit).fetch_all(&mut *c).await?
        });
        Ok(due(rows))
    }

    /// Take the timers among `ids` that are still pending and due at `now`, oldest first
    /// (the scheduler fires a failed batch's timers one by one with this).
    pub async fn take_timers(&mut self, ids: &[i64], now: i64) -> Result<Vec<DueTimer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<DueRow> = on_tx!(self, c, pg => {
            let sql = if pg {
                "UPDATE timers SET status = 'fired', done_at = $2 \
                 WHERE status = 'pending' AND id IN (SELECT id FROM timers WHERE status = 'pending' \
                 AND due_at <= $2 AND id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint) \
                 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, key, kind, incident_id, due_at, payload, attempts"
            } else {
                "UPDATE timers SET status = 'fired', done_at = $2 \
                 WHERE status = 'pending' AND due_at <= $2 AND id IN (SELECT value FROM json_each($1)) \
                 RETURNING id, key, kind, incident_id, due_at, payload, attempts"
            };
            sqlx::query_as(sql).bind(json(ids)).bind(now).fetch_all(&mut *c).await?
        });
        Ok(due(rows))
    }

    /// Record that firing a pending timer failed: due again at `retry_at`, or `dead` once it
    /// has failed `max_attempts` times. Returns whether it is now dead (`None`: not pending —
    /// another instance fired it meanwhile).
    pub async fn record_timer_failure(
        &mut self,
        id: i64,
        error: &str,
        retry_at: i64,
        max_attempts: u32,
        now: i64,
    ) -> Result<Option<bool>> {
        let row: Option<(String,)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "UPDATE timers SET attempts = attempts + 1, last_error = $2, \
                 status = CASE WHEN attempts + 1 >= $4 THEN 'dead' ELSE 'pending' END, \
                 due_at = CASE WHEN attempts + 1 >= $4 THEN due_at ELSE $3 END, \
                 done_at = CASE WHEN attempts + 1 >= $4 THEN $5 ELSE NULL END \
                 WHERE id = $1 AND status = 'pending' RETURNING status",
            )
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .bind(i64::from(max_attempts))
            .bind(now)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(row.map(|(s,)| s == "dead"))
    }

    /// Forget up to `limit` timers fired before `before`; returns how many. Their keys may
    /// then be scheduled again, so keep them longer than any such repeat can come late.
    pub async fn prune_fired_timers(&mut self, before: i64, limit: i64) -> Result<u64> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE status = 'fired' \
                 AND done_at < $1 ORDER BY done_at LIMIT $2)",
            )
            .bind(before)
            .bind(limit)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n)
    }
}

impl Store {
    /// Told whenever a commit scheduled timers (in this process).
    pub fn timers_changed(&self) -> Arc<Notify> {
        match self {
            Store::Sqlite(s) => s.timers.clone(),
            Store::Postgres(s) => s.timers.clone(),
        }
    }

    /// When the earliest pending timer is due.
    pub async fn next_timer_due(&self) -> Result<Option<i64>> {
        let (t,): (Option<i64>,) = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT MIN(due_at) FROM timers WHERE status = 'pending'")
                .fetch_one(pool)
                .await?
        });
        Ok(t)
    }

    /// Pending timers (for the `incidentd_timers_pending` gauge).
    pub async fn timers_pending(&self) -> Result<i64> {
        self.count_timers("pending").await
    }

    /// Timers given up on after repeated failures (for a gauge and an alert).
    pub async fn timers_dead(&self) -> Result<i64> {
        self.count_timers("dead").await
    }

    async fn count_timers(&self, status: &str) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT COUNT(*) FROM timers WHERE status = $1")
                .bind(status)
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    /// One timer by key, whatever its status.
    pub async fn timer(&self, key: &str) -> Result<Option<TimerView>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, key, kind, incident_id, due_at, payload, status, attempts, last_error, \
                 created_at, done_at FROM timers WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}
