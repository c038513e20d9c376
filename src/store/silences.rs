//! Silences: created, read by the ingest writer at every commit (those active then), listed,
//! and ended early. Never deleted.

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};

/// A silence as stored, with the number of alerts it silenced.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SilenceRow {
    pub id: i64,
    /// JSON: `[{"name", "op", "value"}]`.
    pub matchers: String,
    pub source: Option<String>,
    pub rule: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub expired_at: Option<i64>,
    pub expired_by: Option<String>,
    pub expire_reason: Option<String>,
    /// Alerts it silenced.
    pub alerts: i64,
}

/// A silence to store.
#[derive(Debug, Clone)]
pub struct NewSilenceRow<'a> {
    pub matchers: &'a str,
    pub source: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
}

/// The silences active at `now` (started, not ended, not ended early), oldest first; the
/// ingest writer reads them with its other lookups ([`super::IntakeLookups`]).
pub(super) const ACTIVE_SILENCES: &str = "SELECT id, matchers, source, rule FROM silences \
     WHERE expired_at IS NULL AND ends_at > $1 AND starts_at <= $1 ORDER BY id";
pub(super) const ACTIVE_SILENCES_SQLITE: &str = "SELECT id, matchers, source, rule FROM silences \
     WHERE expired_at IS NULL AND ends_at > ?1 AND starts_at <= ?1 ORDER BY id";

/// What the writer needs of an active silence.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveSilence {
    pub id: i64,
    pub matchers: String,
    pub source: Option<String>,
    pub rule: Option<String>,
}

/// Which silences to list: by state at `now` (`pending`, `active`, `expired`; `None`: all),
/// newest first, paged by `before`.
#[derive(Debug, Clone, Default)]
pub struct SilenceFilter<'a> {
    pub state: Option<&'a str>,
    pub now: i64,
    pub before: Option<i64>,
    pub limit: i64,
}

macro_rules! silence_select {
    ($where:literal) => {
        concat!(
            "SELECT s.id, s.matchers, s.source, s.rule, s.starts_at, s.ends_at, s.reason, ",
            "s.created_by, s.created_at, s.expired_at, s.expired_by, s.expire_reason, ",
            "(SELECT COUNT(*) FROM alerts a WHERE a.silence_id = s.id) AS alerts FROM silences s ",
            $where
        )
    };
}

impl WriteTx {
    pub async fn insert_silence(&mut self, s: &NewSilenceRow<'_>) -> Result<i64> {
        let (id,): (i64,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO silences (matchers, source, rule, starts_at, ends_at, reason, created_by, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(s.matchers)
            .bind(s.source)
            .bind(s.rule)
            .bind(s.starts_at)
            .bind(s.ends_at)
            .bind(s.reason)
            .bind(s.created_by)
            .bind(s.created_at)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn silence(&mut self, id: i64) -> Result<Option<SilenceRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(silence_select!("WHERE s.id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// End a silence early; false when it had already been ended early.
    pub async fn expire_silence(
        &mut self,
        id: i64,
        at: i64,
        by: &str,
        reason: &str,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE silences SET expired_at = $2, expired_by = $3, expire_reason = $4 \
                 WHERE id = $1 AND expired_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .bind(by)
            .bind(reason)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

impl Store {
    pub async fn silences(&self, f: &SilenceFilter<'_>) -> Result<Vec<SilenceRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(silence_select!(
                "WHERE ($1 IS NULL OR (CASE WHEN s.expired_at IS NOT NULL OR s.ends_at <= $2 THEN 'expired' \
                 WHEN s.starts_at > $2 THEN 'pending' ELSE 'active' END) = $1) \
                 AND ($3 IS NULL OR s.id < $3) ORDER BY s.id DESC LIMIT $4"
            ))
            .bind(f.state)
            .bind(f.now)
            .bind(f.before)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn silence(&self, id: i64) -> Result<Option<SilenceRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(silence_select!("WHERE s.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}
