//! Regulation state: each incident's grade per jurisdiction (as it changed) and the obligations
//! its jurisdiction packs impose, with their deadlines and whether, when and how each was met.

use serde::Serialize;

use super::write::{BulkInsert, Inner, chunks, on_tx};
use super::{Result, Store, WriteTx, on_pool};

/// A stored obligation.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ObligationRow {
    pub id: i64,
    pub incident_id: i64,
    /// `CN:cac_report_other`, `CN:cac_supplementary#2`.
    pub key: String,
    pub jurisdiction: String,
    /// The pack's obligation id.
    pub obligation: String,
    pub kind: String,
    pub report_kind: Option<String>,
    pub recipient: Option<String>,
    /// The department reminded and escalated to.
    pub owner: String,
    /// `required`, `exempt`, `not_required`, `hold`, or `withdrawn` (no longer applies).
    pub standing: String,
    pub clock: String,
    pub clock_start: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub due_at: Option<i64>,
    /// JSON: the assessment's outcome (title, recipient name, why, …).
    pub detail: String,
    /// `open` or `met`.
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub met_at: Option<i64>,
    pub met_by: Option<String>,
    pub met_ref: Option<String>,
    pub late_reason: Option<String>,
    pub met_facts: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub updated_at: i64,
}

impl ObligationRow {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }
    /// Owed and not yet met.
    pub fn is_pending(&self) -> bool {
        self.is_open() && self.standing == "required"
    }
}

/// A grade as it was set.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GradeRow {
    pub id: i64,
    pub incident_id: i64,
    pub jurisdiction: String,
    pub grade: String,
    pub criterion: Option<String>,
    pub why: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub at: i64,
}

/// Filters for listing obligations across incidents.
#[derive(Debug, Clone, Default)]
pub struct ObligationFilter {
    pub incident_id: Option<i64>,
    /// Only owed and not met (`standing = required`, `status = open`).
    pub pending: bool,
    /// Only those due before this time (micros); with `pending`, also those already overdue.
    pub due_before: Option<i64>,
    pub jurisdiction: Option<String>,
    pub limit: i64,
    /// Also drill incidents' obligations (always, when `incident_id` names one).
    pub drills: bool,
}

macro_rules! obligation_select {
    ($where:literal) => {
        concat!(
            "SELECT id, incident_id, key, jurisdiction, obligation, kind, report_kind, recipient, owner, standing, ",
            "clock, clock_start, due_at, detail, status, met_at, met_by, met_ref, late_reason, met_facts, ",
            "created_at, updated_at FROM obligations ",
            $where
        )
    };
}

static UPSERT_OBLIGATIONS: BulkInsert = BulkInsert::new(
    "INSERT INTO obligations (incident_id, key, jurisdiction, obligation, kind, report_kind, recipient, owner, \
     standing, clock, clock_start, due_at, detail, status, met_at, met_by, met_ref, late_reason, met_facts, \
     created_at, updated_at)",
    21,
    " ON CONFLICT (incident_id, key) DO UPDATE SET recipient = excluded.recipient, owner = excluded.owner, \
     standing = excluded.standing, clock = excluded.clock, clock_start = excluded.clock_start, \
     due_at = excluded.due_at, detail = excluded.detail, updated_at = excluded.updated_at",
);

static INSERT_GRADES: BulkInsert = BulkInsert::new(
    "INSERT INTO grades (incident_id, jurisdiction, grade, criterion, why, at)",
    6,
    "",
);

impl WriteTx {
    pub async fn obligations_of(&mut self, incident_id: i64) -> Result<Vec<ObligationRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(obligation_select!("WHERE incident_id = $1 ORDER BY id"))
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn obligation(
        &mut self,
        incident_id: i64,
        key: &str,
    ) -> Result<Option<ObligationRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(obligation_select!("WHERE incident_id = $1 AND key = $2"))
                .bind(incident_id)
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Insert obligations, or update what the assessment decides (standing, clock, deadline,
    /// detail) of those whose keys exist. Whether and how they were met is left alone. One
    /// statement per chunk of rows.
    pub async fn upsert_obligations(&mut self, rows: &[ObligationRow]) -> Result<()> {
        for (at, n) in chunks(rows.len()) {
            on_tx!(self, c, pg => {
                let mut q = sqlx::query(UPSERT_OBLIGATIONS.statement(n, pg));
                for o in &rows[at..at + n] {
                    q = q
                        .bind(o.incident_id)
                        .bind(&o.key)
                        .bind(&o.jurisdiction)
                        .bind(&o.obligation)
                        .bind(&o.kind)
                        .bind(&o.report_kind)
                        .bind(&o.recipient)
                        .bind(&o.owner)
                        .bind(&o.standing)
                        .bind(&o.clock)
                        .bind(o.clock_start)
                        .bind(o.due_at)
                        .bind(&o.detail)
                        .bind(&o.status)
                        .bind(o.met_at)
                        .bind(&o.met_by)
                        .bind(&o.met_ref)
                        .bind(&o.late_reason)
                        .bind(&o.met_facts)
                        .bind(o.created_at)
                        .bind(o.updated_at);
                }
                q.execute(&mut *c).await?;
            });
        }
        self.touch_all(
            super::Sealed::Obligations,
            rows.iter().map(|o| o.incident_id),
        );
        Ok(())
    }

    /// Mark an open obligation met, keeping the incident's facts of this moment (a later change
    /// of a material fact owes a supplementary report). `false` if it is not open (already met,
    /// or no such key).
    pub async fn meet_obligation(
        &mut self,
        incident_id: i64,
        key: &str,
        met_at: i64,
        met_by: &str,
        met_ref: &str,
        late_reason: Option<&str>,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE obligations SET status = 'met', met_at = $3, met_by = $4, met_ref = $5, late_reason = $6, \
                 met_facts = (SELECT facts FROM incidents WHERE id = $1), updated_at = $3 \
                 WHERE incident_id = $1 AND key = $2 AND status = 'open'",
            )
            .bind(incident_id)
            .bind(key)
            .bind(met_at)
            .bind(met_by)
            .bind(met_ref)
            .bind(late_reason)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(super::Sealed::Obligations, incident_id);
        Ok(n > 0)
    }

    /// The current grade per jurisdiction (the newest row of each).
    pub async fn current_grades(&mut self, incident_id: i64) -> Result<Vec<GradeRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT id, incident_id, jurisdiction, grade, criterion, why, at FROM grades WHERE id IN \
                 (SELECT MAX(id) FROM grades WHERE incident_id = $1 GROUP BY jurisdiction) ORDER BY jurisdiction",
            )
            .bind(incident_id)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }

    pub async fn insert_grades(&mut self, grades: &[GradeRow]) -> Result<()> {
        for (at, n) in chunks(grades.len()) {
            on_tx!(self, c, pg => {
                let mut q = sqlx::query(INSERT_GRADES.statement(n, pg));
                for g in &grades[at..at + n] {
                    q = q
                        .bind(g.incident_id)
                        .bind(&g.jurisdiction)
                        .bind(&g.grade)
                        .bind(&g.criterion)
                        .bind(&g.why)
                        .bind(g.at);
                }
                q.execute(&mut *c).await?;
            });
        }
        self.touch_all(super::Sealed::Grades, grades.iter().map(|g| g.incident_id));
        Ok(())
    }

    /// Open incidents, oldest first (recomputed after the packs change).
    pub async fn open_incidents(&mut self, limit: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT id FROM incidents WHERE status NOT IN ('closed', 'false_positive', 'merged') ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows.into_iter().map(|(i,)| i).collect())
    }
}

impl Store {
    pub async fn obligations(&self, f: &ObligationFilter) -> Result<Vec<ObligationRow>> {
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                obligation_select!(
                    "WHERE ($1::bigint IS NULL OR incident_id = $1) \
                     AND ($2 = FALSE OR (status = 'open' AND standing = 'required')) \
                     AND ($3::bigint IS NULL OR due_at < $3) \
                     AND ($4::text IS NULL OR jurisdiction = $4) \
                     AND ($6 = TRUE OR $1::bigint IS NOT NULL OR incident_id NOT IN (SELECT id FROM incidents WHERE drill = TRUE)) \
                     ORDER BY (due_at IS NULL), due_at, incident_id, id LIMIT $5"
                )
            } else {
                obligation_select!(
                    "WHERE ($1 IS NULL OR incident_id = $1) \
                     AND ($2 = FALSE OR (status = 'open' AND standing = 'required')) \
                     AND ($3 IS NULL OR due_at < $3) \
                     AND ($4 IS NULL OR jurisdiction = $4) \
                     AND ($6 = TRUE OR $1 IS NOT NULL OR incident_id NOT IN (SELECT id FROM incidents WHERE drill = TRUE)) \
                     ORDER BY (due_at IS NULL), due_at, incident_id, id LIMIT $5"
                )
            };
            sqlx::query_as(sql)
                .bind(f.incident_id)
                .bind(f.pending)
                .bind(f.due_before)
                .bind(&f.jurisdiction)
                .bind(f.limit)
                .bind(f.drills)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn obligations_of(&self, incident_id: i64) -> Result<Vec<ObligationRow>> {
        self.obligations(&ObligationFilter {
            incident_id: Some(incident_id),
            limit: 10_000,
            ..Default::default()
        })
        .await
    }

    /// Every grade an incident had, oldest first.
    pub async fn grades_of(&self, incident_id: i64) -> Result<Vec<GradeRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, incident_id, jurisdiction, grade, criterion, why, at FROM grades \
                 WHERE incident_id = $1 ORDER BY id",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
