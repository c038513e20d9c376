//! Public announcements: one row per incident (its stable slug) and its append-only versions.

use serde::Serialize;

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};

/// An incident's announcement.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AnnouncementRow {
    pub id: i64,
    pub incident_id: i64,
    pub slug: String,
    pub drill: bool,
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[serde(with = "crate::domain::time::micros")]
    pub updated_at: i64,
}

/// One published version. `locales` is the JSON of the renderings (see
/// `crate::engine::announce::LocaleText`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AnnouncementVersionRow {
    pub announcement_id: i64,
    pub version: i64,
    #[serde(with = "crate::domain::time::micros")]
    pub published_at: i64,
    pub actor: String,
    pub reason: String,
    pub template: String,
    pub locales: String,
    pub content_hash: String,
    pub facts_version: i64,
    pub facts_hash: String,
}

/// A version with its announcement's slug (feeds and lists).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublishedVersionRow {
    pub slug: String,
    #[sqlx(flatten)]
    pub version: AnnouncementVersionRow,
}

macro_rules! announcement_select {
    ($where:literal) => {
        concat!(
            "SELECT id, incident_id, slug, drill, created_at, updated_at FROM announcements ",
            $where
        )
    };
}

macro_rules! version_select {
    ($where:literal) => {
        concat!(
            "SELECT announcement_id, version, published_at, actor, reason, template, locales, ",
            "content_hash, facts_version, facts_hash FROM announcement_versions ",
            $where
        )
    };
}

impl WriteTx {
    pub async fn announcement_of(&mut self, incident_id: i64) -> Result<Option<AnnouncementRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(announcement_select!("WHERE incident_id = $1"))
                .bind(incident_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn latest_announcement_version(
        &mut self,
        announcement_id: i64,
    ) -> Result<Option<AnnouncementVersionRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(version_select!("WHERE announcement_id = $1 ORDER BY version DESC LIMIT 1"))
                .bind(announcement_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Create an incident's announcement; returns its id.
    pub async fn insert_announcement(
        &mut self,
        incident_id: i64,
        slug: &str,
        drill: bool,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO announcements (incident_id, slug, drill, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(incident_id)
            .bind(slug)
            .bind(drill)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        self.touch(super::Sealed::Announcements, id);
        Ok(id)
    }

    /// Append a version (and move the announcement's `updated_at` to it).
    pub async fn append_announcement_version(&mut self, v: &AnnouncementVersionRow) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO announcement_versions (announcement_id, version, published_at, actor, reason, \
                 template, locales, content_hash, facts_version, facts_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(v.announcement_id)
            .bind(v.version)
            .bind(v.published_at)
            .bind(&v.actor)
            .bind(&v.reason)
            .bind(&v.template)
            .bind(&v.locales)
            .bind(&v.content_hash)
            .bind(v.facts_version)
            .bind(&v.facts_hash)
            .execute(&mut *c)
            .await?;
            sqlx::query("UPDATE announcements SET updated_at = $2 WHERE id = $1")
                .bind(v.announcement_id)
                .bind(v.published_at)
                .execute(&mut *c)
                .await?;
        });
        self.touch(super::Sealed::AnnouncementVersions, v.announcement_id);
        Ok(())
    }
}

impl Store {
    pub async fn announcement_of(&self, incident_id: i64) -> Result<Option<AnnouncementRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(announcement_select!("WHERE incident_id = $1"))
                .bind(incident_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    pub async fn announcement_by_slug(&self, slug: &str) -> Result<Option<AnnouncementRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(announcement_select!("WHERE slug = $1"))
                .bind(slug)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Every version of an announcement, oldest first.
    pub async fn announcement_versions(
        &self,
        announcement_id: i64,
    ) -> Result<Vec<AnnouncementVersionRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(version_select!("WHERE announcement_id = $1 ORDER BY version"))
                .bind(announcement_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The newest public version of each public (non-drill) announcement, most recently made
    /// public first.
    pub async fn public_announcements(&self, limit: i64) -> Result<Vec<PublishedVersionRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT a.slug, v.announcement_id, v.version, COALESCE(g.decided_at, v.published_at) AS published_at, \
                 v.actor, v.reason, v.template, v.locales, v.content_hash, v.facts_version, v.facts_hash \
                 FROM announcements a JOIN announcement_versions v ON v.announcement_id = a.id \
                 LEFT JOIN announcement_gates g ON g.announcement_id = v.announcement_id AND g.version = v.version \
                 WHERE a.drill = $1 AND (g.status IS NULL OR g.status = 'public') AND v.version = \
                   (SELECT MAX(w.version) FROM announcement_versions w LEFT JOIN announcement_gates h \
                    ON h.announcement_id = w.announcement_id AND h.version = w.version \
                    WHERE w.announcement_id = a.id AND (h.status IS NULL OR h.status = 'public')) \
                 ORDER BY 4 DESC, a.id DESC LIMIT $2",
            )
            .bind(false)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every public version of the public (non-drill) announcements, newest first: the Atom feed.
    pub async fn public_announcement_versions(
        &self,
        limit: i64,
    ) -> Result<Vec<PublishedVersionRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT a.slug, v.announcement_id, v.version, COALESCE(g.decided_at, v.published_at) AS published_at, \
                 v.actor, v.reason, v.template, v.locales, v.content_hash, v.facts_version, v.facts_hash \
                 FROM announcements a JOIN announcement_versions v ON v.announcement_id = a.id \
                 LEFT JOIN announcement_gates g ON g.announcement_id = v.announcement_id AND g.version = v.version \
                 WHERE a.drill = $1 AND (g.status IS NULL OR g.status = 'public') \
                 ORDER BY 4 DESC, a.id DESC, v.version DESC LIMIT $2",
            )
            .bind(false)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// A version's approval gate: it waits for its approval task, then is public (or rejected,
/// or superseded by a newer version). A version without a gate (published before gates
/// existed) is public.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AnnouncementGateRow {
    pub announcement_id: i64,
    pub version: i64,
    pub task_id: Option<i64>,
    /// `awaiting_approval`, `public`, `rejected` or `superseded`.
    pub status: String,
    /// JSON list of the departments that decide it.
    pub approvers: String,
    /// The `[[channels.webhooks]]` target the version is pushed to once public.
    pub webhook: Option<String>,
    #[serde(with = "crate::domain::time::micros::option")]
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

impl AnnouncementGateRow {
    pub fn approvers(&self) -> Vec<String> {
        serde_json::from_str(&self.approvers).unwrap_or_default()
    }
}

macro_rules! gate_select {
    ($where:literal) => {
        concat!(
            "SELECT announcement_id, version, task_id, status, approvers, webhook, decided_at, decided_by ",
            "FROM announcement_gates ",
            $where
        )
    };
}

/// Versions that are public: no gate, or an approved one; `published_at` is when it became
/// public.
macro_rules! public_version_select {
    ($where:literal) => {
        concat!(
            "SELECT v.announcement_id, v.version, COALESCE(g.decided_at, v.published_at) AS published_at, ",
            "v.actor, v.reason, v.template, v.locales, v.content_hash, v.facts_version, v.facts_hash ",
            "FROM announcement_versions v LEFT JOIN announcement_gates g ",
            "ON g.announcement_id = v.announcement_id AND g.version = v.version ",
            "WHERE (g.status IS NULL OR g.status = 'public') ",
            $where
        )
    };
}

impl WriteTx {
    pub async fn insert_announcement_gate(&mut self, g: &AnnouncementGateRow) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO announcement_gates (announcement_id, version, task_id, status, approvers, webhook, \
                 decided_at, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(g.announcement_id)
            .bind(g.version)
            .bind(g.task_id)
            .bind(&g.status)
            .bind(&g.approvers)
            .bind(&g.webhook)
            .bind(g.decided_at)
            .bind(&g.decided_by)
            .execute(&mut *c)
            .await?;
        });
        self.touch(super::Sealed::AnnouncementGates, g.announcement_id);
        Ok(())
    }

    pub async fn announcement_gate(
        &mut self,
        announcement_id: i64,
        version: i64,
    ) -> Result<Option<AnnouncementGateRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(gate_select!("WHERE announcement_id = $1 AND version = $2"))
                .bind(announcement_id)
                .bind(version)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn announcement_gate_of_task(
        &mut self,
        task_id: i64,
    ) -> Result<Option<AnnouncementGateRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(gate_select!("WHERE task_id = $1"))
                .bind(task_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// The gates still waiting for their approval.
    pub async fn awaiting_announcement_gates(
        &mut self,
        announcement_id: i64,
    ) -> Result<Vec<AnnouncementGateRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(gate_select!("WHERE announcement_id = $1 AND status = 'awaiting_approval' ORDER BY version"))
                .bind(announcement_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// Decide a gate that is still waiting; `false` if it was not.
    pub async fn decide_announcement_gate(
        &mut self,
        announcement_id: i64,
        version: i64,
        status: &str,
        by: &str,
        at: i64,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE announcement_gates SET status = $3, decided_by = $4, decided_at = $5 \
                 WHERE announcement_id = $1 AND version = $2 AND status = 'awaiting_approval'",
            )
            .bind(announcement_id)
            .bind(version)
            .bind(status)
            .bind(by)
            .bind(at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(super::Sealed::AnnouncementGates, announcement_id);
        Ok(n > 0)
    }

    pub async fn announcement_version(
        &mut self,
        announcement_id: i64,
        version: i64,
    ) -> Result<Option<AnnouncementVersionRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(version_select!("WHERE announcement_id = $1 AND version = $2"))
                .bind(announcement_id)
                .bind(version)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Whether the announcement has a public version.
    pub async fn has_public_announcement(&mut self, announcement_id: i64) -> Result<bool> {
        let rows: Vec<AnnouncementVersionRow> = on_tx!(self, c, _pg => {
            sqlx::query_as(public_version_select!("AND v.announcement_id = $1 LIMIT 1"))
                .bind(announcement_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(!rows.is_empty())
    }
}

impl Store {
    /// Every gate of an announcement, by version.
    pub async fn announcement_gates(
        &self,
        announcement_id: i64,
    ) -> Result<Vec<AnnouncementGateRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(gate_select!("WHERE announcement_id = $1 ORDER BY version"))
                .bind(announcement_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The public versions of an announcement, oldest first, each dated when it became public.
    pub async fn public_versions(
        &self,
        announcement_id: i64,
    ) -> Result<Vec<AnnouncementVersionRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(public_version_select!("AND v.announcement_id = $1 ORDER BY v.version"))
                .bind(announcement_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
