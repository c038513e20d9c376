//! Regulator reports: every version drafted for an incident's report obligation, and the one
//! submitted (immutable: the database's triggers refuse to change it).

use serde::Serialize;

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};
use crate::domain::facts::Facts;
use crate::domain::regulation::Submitted;
use crate::domain::time::from_micros;

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub incident_id: i64,
    pub obligation_key: String,
    pub jurisdiction: String,
    pub obligation: String,
    pub report: String,
    pub report_kind: String,
    pub recipient: Option<String>,
    pub version: i64,
    pub locale: String,
    /// JSON texts.
    pub inputs: String,
    pub fields: String,
    pub missing: String,
    pub partial: bool,
    pub subject: String,
    pub markdown: String,
    pub html: String,
    pub facts: String,
    pub facts_version: i64,
    pub content_hash: String,
    pub created_by: String,
    pub created_at: i64,
}

/// A stored version.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub incident_id: i64,
    pub obligation_key: String,
    pub jurisdiction: String,
    pub obligation: String,
    pub report: String,
    pub report_kind: String,
    pub recipient: Option<String>,
    pub version: i64,
    pub status: String,
    pub locale: String,
    pub inputs: String,
    pub fields: String,
    pub missing: String,
    pub partial: bool,
    pub subject: String,
    pub markdown: String,
    pub html: String,
    pub facts: String,
    pub facts_version: i64,
    pub content_hash: String,
    pub task_id: Option<i64>,
    pub created_by: String,
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[serde(with = "crate::domain::time::micros::option")]
    pub submitted_at: Option<i64>,
    pub submitted_by: Option<String>,
    pub via: Option<String>,
    pub reference: Option<String>,
    pub delivery_key: Option<String>,
    pub late_reason: Option<String>,
    #[serde(with = "crate::domain::time::micros")]
    pub updated_at: i64,
}

/// How a version was submitted.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub at: i64,
    pub by: &'a str,
    pub via: &'a str,
    pub reference: Option<&'a str>,
    pub delivery_key: Option<&'a str>,
    pub late_reason: Option<&'a str>,
    pub now: i64,
}

macro_rules! report_select {
    ($where:literal) => {
        concat!(
            "SELECT id, incident_id, obligation_key, jurisdiction, obligation, report, report_kind, recipient, ",
            "version, status, locale, inputs, fields, missing, partial, subject, markdown, html, facts, ",
            "facts_version, content_hash, task_id, created_by, created_at, submitted_at, submitted_by, via, ",
            "reference, delivery_key, late_reason, updated_at FROM reports ",
            $where
        )
    };
}

impl WriteTx {
    /// Store a version; its id.
    pub async fn insert_report(&mut self, r: &NewReport) -> Result<i64> {
        let (id,): (i64,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO reports (incident_id, obligation_key, jurisdiction, obligation, report, report_kind, \
                 recipient, version, status, locale, inputs, fields, missing, partial, subject, markdown, html, \
                 facts, facts_version, content_hash, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $21) RETURNING id",
            )
            .bind(r.incident_id)
            .bind(&r.obligation_key)
            .bind(&r.jurisdiction)
            .bind(&r.obligation)
            .bind(&r.report)
            .bind(&r.report_kind)
            .bind(&r.recipient)
            .bind(r.version)
            .bind(&r.locale)
            .bind(&r.inputs)
            .bind(&r.fields)
            .bind(&r.missing)
            .bind(r.partial)
            .bind(&r.subject)
            .bind(&r.markdown)
            .bind(&r.html)
            .bind(&r.facts)
            .bind(r.facts_version)
            .bind(&r.content_hash)
            .bind(&r.created_by)
            .bind(r.created_at)
            .fetch_one(&mut *c)
            .await?
        });
        self.touch(super::Sealed::Reports, id);
        Ok(id)
    }

    pub async fn report(&mut self, id: i64) -> Result<Option<ReportRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(report_select!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// The version whose submission is the delivery with this idempotency key.
    pub async fn report_by_delivery_key(&mut self, key: &str) -> Result<Option<ReportRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(report_select!("WHERE delivery_key = $1"))
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Every version for one obligation, oldest first.
    pub async fn reports_for(
        &mut self,
        incident_id: i64,
        obligation_key: &str,
    ) -> Result<Vec<ReportRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(report_select!("WHERE incident_id = $1 AND obligation_key = $2 ORDER BY version"))
                .bind(incident_id)
                .bind(obligation_key)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Every version of an incident's reports, by obligation and version.
    pub async fn reports_of(&mut self, incident_id: i64) -> Result<Vec<ReportRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(report_select!("WHERE incident_id = $1 ORDER BY obligation_key, version"))
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Set a version's status (not of a submitted one: the trigger refuses).
    pub async fn set_report_status(&mut self, id: i64, status: &str, now: i64) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE reports SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(status)
                .bind(now)
                .execute(&mut *c)
                .await?;
        });
        self.touch(super::Sealed::Reports, id);
        Ok(())
    }

    pub async fn set_report_task(&mut self, id: i64, task_id: i64) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE reports SET task_id = $2 WHERE id = $1")
                .bind(id)
                .bind(task_id)
                .execute(&mut *c)
                .await?;
        });
        self.touch(super::Sealed::Reports, id);
        Ok(())
    }

    /// Record the submission; from then on the row is immutable.
    pub async fn mark_report_submitted(&mut self, id: i64, s: &Submission<'_>) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE reports SET status = 'submitted', submitted_at = $2, submitted_by = $3, via = $4, \
                 reference = $5, delivery_key = $6, late_reason = $7, updated_at = $8 WHERE id = $1",
            )
            .bind(id)
            .bind(s.at)
            .bind(s.by)
            .bind(s.via)
            .bind(s.reference)
            .bind(s.delivery_key)
            .bind(s.late_reason)
            .bind(s.now)
            .execute(&mut *c)
            .await?;
        });
        self.touch(super::Sealed::Reports, id);
        Ok(())
    }

    /// The reports submitted for an incident, with the facts each was written from: the
    /// obligations' recompute owes supplementary reports when material facts change after one.
    pub async fn submitted_reports(
        &mut self,
        incident_id: i64,
    ) -> Result<Vec<crate::domain::regulation::Submitted>> {
        let rows: Vec<ReportRow> = on_tx!(self, c, _pg => {
            sqlx::query_as(report_select!("WHERE incident_id = $1 AND status = 'submitted' ORDER BY submitted_at, id"))
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows.iter().filter_map(submitted_of).collect())
    }
}

/// A submitted row as the assessment reads it (a row it cannot read is skipped, and logged).
fn submitted_of(r: &ReportRow) -> Option<Submitted> {
    let facts: Facts = match serde_json::from_str(&r.facts) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(report.id = r.id, error = %e, "a submitted report's facts snapshot cannot be read");
            return None;
        }
    };
    Some(Submitted {
        jurisdiction: r.jurisdiction.parse().ok()?,
        obligation: r.obligation.clone(),
        at: from_micros(r.submitted_at?),
        facts,
    })
}

impl Store {
    /// Every version of an incident's reports, by obligation and version.
    pub async fn reports_of(&self, incident_id: i64) -> Result<Vec<ReportRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(report_select!("WHERE incident_id = $1 ORDER BY obligation_key, version"))
                .bind(incident_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn report(&self, id: i64) -> Result<Option<ReportRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(report_select!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}

/// What the notices to individuals achieved, for report fields (`stats.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeStats {
    /// Notice deliveries sent, and those that died.
    pub sent: i64,
    pub failed: i64,
    /// Distinct people (recipients) told on at least one channel.
    pub notified: i64,
}

impl Store {
    pub async fn notice_stats(&self, incident_id: i64) -> Result<NoticeStats> {
        let (sent, failed, notified): (i64, i64, i64) = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0), \
                 COUNT(DISTINCT CASE WHEN status = 'sent' THEN recipient END) \
                 FROM deliveries WHERE incident_id = $1 AND purpose = 'notice'",
            )
            .bind(incident_id)
            .fetch_one(pool)
            .await?
        });
        Ok(NoticeStats {
            sent,
            failed,
            notified,
        })
    }
}
