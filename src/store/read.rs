//! The read side: listings, timelines, metrics figures and the audit-chain check. On SQLite
//! these use the read-only pool, so they never wait for the writer.

use super::rows::{AlertRow, EventRow, IncidentRow, alert_columns, incident_columns};
use super::{Result, Store, on_pool};
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::{AlertRecord, Event, Incident};

/// Filters for listing incidents; `None` means "any". Newest first, paged by `before`.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<Status>,
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub drill: Option<bool>,
    pub before: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only alerts that opened or joined no incident (and were not silenced).
    pub unmatched: bool,
    /// Only alerts a silence silenced.
    pub silenced: bool,
    pub incident_id: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// A cheap round trip, for `/readyz` and the systemd watchdog.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool, _pg => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>> {
        let row: Option<IncidentRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(Incident::try_from).transpose()
    }

    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!(
                "SELECT ", incident_columns!(), " FROM incidents WHERE ",
                "($1 IS NULL OR status = $1) AND ($2 IS NULL OR severity = $2) AND ($3 IS NULL OR category = $3) ",
                "AND ($4 IS NULL OR drill = $4) AND ($5 IS NULL OR id < $5) ",
                "AND ($6 IS NULL OR (status NOT IN ('closed', 'false_positive', 'merged')) = $6) ",
                "ORDER BY id DESC LIMIT $7"
            ))
            .bind(f.status.map(Status::as_str))
            .bind(f.severity.map(Severity::as_str))
            .bind(f.category.map(Category::as_str))
            .bind(f.drill)
            .bind(f.before)
            .bind(f.open)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Incident::try_from).collect()
    }

    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>> {
        let rows: Vec<AlertRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!(
                "SELECT ", alert_columns!(), " FROM alerts WHERE ",
                "($1 IS NULL OR incident_id = $1) AND ($2 = FALSE OR (incident_id IS NULL AND silence_id IS NULL)) ",
                "AND ($3 IS NULL OR id < $3) AND ($4 = FALSE OR silence_id IS NOT NULL) ",
                "ORDER BY id DESC LIMIT $5"
            ))
            .bind(f.incident_id)
            .bind(f.unmatched)
            .bind(f.before)
            .bind(f.silenced)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(AlertRecord::try_from).collect()
    }

    /// The audited events of one incident and of the incidents merged into it (and into
    /// those), oldest first.
    pub async fn timeline(&self, incident_id: i64, after: i64, limit: i64) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = on_pool!(self, pool, pg => {
            let sql = if pg {
                "WITH RECURSIVE family(id) AS (SELECT $1::bigint UNION \
                 SELECT i.id FROM incidents i JOIN family f ON i.merged_into = f.id) \
                 SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                 WHERE incident_id IN (SELECT id FROM family) AND id > $2 ORDER BY id LIMIT $3"
            } else {
                "WITH RECURSIVE family(id) AS (SELECT $1 UNION \
                 SELECT i.id FROM incidents i JOIN family f ON i.merged_into = f.id) \
                 SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                 WHERE incident_id IN (SELECT id FROM family) AND id > $2 ORDER BY id LIMIT $3"
            };
            sqlx::query_as(sql)
            .bind(incident_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Event::try_from).collect()
    }

    /// Open (not closed, not false-positive) real incidents per severity; drills excluded.
    pub async fn open_incidents_by_severity(&self) -> Result<Vec<(Severity, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT severity, COUNT(*) FROM incidents \
                 WHERE status NOT IN ('closed', 'false_positive', 'merged') AND drill = FALSE GROUP BY severity",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| s.parse().ok().map(|s| (s, n)))
            .collect())
    }
}
