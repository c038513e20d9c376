//! Heartbeats' state: one row per configured heartbeat — when it was last heard from, and
//! whether (and since when) it is late.

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeartbeatRow {
    pub name: String,
    /// First configured.
    pub created_at: i64,
    /// Watching (re)started: the daemon's last start, or `created_at`.
    pub armed_at: i64,
    pub last_seen_at: Option<i64>,
    /// `alert:<source>` or `ping:<actor>`.
    pub last_via: Option<String>,
    /// While late: silent since (the last signal, or `created_at` if never heard from).
    pub late_since: Option<i64>,
    /// While late: when it was noticed.
    pub late_at: Option<i64>,
    /// The incident of the latest lateness.
    pub incident_id: Option<i64>,
    pub updated_at: i64,
}

impl HeartbeatRow {
    /// What the deadline counts from: the last signal, or when watching (re)started, whichever
    /// is later (a daemon that was down heard nothing, through no fault of the source).
    pub fn watched_since(&self) -> i64 {
        self.last_seen_at.unwrap_or(i64::MIN).max(self.armed_at)
    }
}

macro_rules! heartbeat_select {
    ($rest:literal) => {
        concat!(
            "SELECT name, created_at, armed_at, last_seen_at, last_via, late_since, late_at, ",
            "incident_id, updated_at FROM heartbeats ",
            $rest
        )
    };
}

/// A signal's effect on a heartbeat that was late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasLate {
    pub late_since: i64,
    pub late_at: Option<i64>,
    pub incident_id: Option<i64>,
}

impl WriteTx {
    /// Make sure every heartbeat has its row (new ones are watched from `now`); with `restart`,
    /// watching restarts at `now` for all of them.
    pub async fn ensure_heartbeats(
        &mut self,
        names: &[&str],
        now: i64,
        restart: bool,
    ) -> Result<()> {
        for name in names {
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "INSERT INTO heartbeats (name, created_at, armed_at, updated_at) VALUES ($1, $2, $2, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(*name)
                .bind(now)
                .execute(&mut *c)
                .await?;
                if restart {
                    sqlx::query("UPDATE heartbeats SET armed_at = $2 WHERE name = $1 AND armed_at < $2")
                        .bind(*name)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                }
            });
        }
        Ok(())
    }

    pub async fn heartbeat(&mut self, name: &str) -> Result<Option<HeartbeatRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(heartbeat_select!("WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Record a signal (one statement; the row is made if missing). If the heartbeat was late,
    /// it is no longer, and what its lateness was comes back.
    pub async fn heartbeat_seen(
        &mut self,
        name: &str,
        via: &str,
        now: i64,
    ) -> Result<Option<WasLate>> {
        let (late_since, late_at, incident_id): (Option<i64>, Option<i64>, Option<i64>) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO heartbeats (name, created_at, armed_at, last_seen_at, last_via, updated_at) \
                 VALUES ($1, $2, $2, $2, $3, $2) ON CONFLICT (name) DO UPDATE SET \
                 last_seen_at = excluded.last_seen_at, last_via = excluded.last_via, updated_at = excluded.updated_at \
                 RETURNING late_since, late_at, incident_id",
            )
            .bind(name)
            .bind(now)
            .bind(via)
            .fetch_one(&mut *c)
            .await?
        });
        let Some(late_since) = late_since else {
            return Ok(None);
        };
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE heartbeats SET late_since = NULL, late_at = NULL WHERE name = $1")
                .bind(name)
                .execute(&mut *c)
                .await?;
        });
        Ok(Some(WasLate {
            late_since,
            late_at,
            incident_id,
        }))
    }

    /// Mark a heartbeat late, silent since `since`, with its incident.
    pub async fn heartbeat_late(
        &mut self,
        name: &str,
        since: i64,
        incident_id: i64,
        now: i64,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE heartbeats SET late_since = $2, late_at = $3, incident_id = $4, updated_at = $3 \
                 WHERE name = $1",
            )
            .bind(name)
            .bind(since)
            .bind(now)
            .bind(incident_id)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Every heartbeat row (configured now or once), by name.
    pub async fn heartbeats(&self) -> Result<Vec<HeartbeatRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(heartbeat_select!("ORDER BY name"))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
