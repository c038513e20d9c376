//! Playbook state: which playbook an incident runs, its team (paged level, acknowledgement),
//! its tasks, and the decisions on approval tasks.

use serde::Serialize;

use super::seals::Sealed;
use super::write::{Inner, json, on_tx};
use super::{Result, Store, WriteTx, on_pool};

/// A task to create (idempotent per incident and key).
#[derive(Debug, Clone)]
pub struct NewTask {
    pub incident_id: i64,
    pub key: String,
    pub playbook: Option<String>,
    pub title: String,
    pub department: String,
    pub description: String,
    pub approval: bool,
    pub approvers: Vec<String>,
    pub depends_on: Vec<String>,
    pub after_task: Option<String>,
    pub due_offset_secs: i64,
    pub due_at: Option<i64>,
}

/// A stored task.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub incident_id: i64,
    pub key: String,
    pub playbook: Option<String>,
    pub title: String,
    pub department: String,
    pub description: String,
    pub approval: bool,
    /// JSON list of departments.
    pub approvers: String,
    /// JSON list of task keys.
    pub depends_on: String,
    pub after_task: Option<String>,
    pub due_offset_secs: i64,
    #[serde(with = "crate::domain::time::micros::option")]
    pub due_at: Option<i64>,
    pub status: String,
    pub assignee: Option<String>,
    pub acked_by: Option<String>,
    #[serde(with = "crate::domain::time::micros::option")]
    pub acked_at: Option<i64>,
    pub closed_by: Option<String>,
    #[serde(with = "crate::domain::time::micros::option")]
    pub closed_at: Option<i64>,
    pub note: Option<String>,
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[serde(with = "crate::domain::time::micros")]
    pub updated_at: i64,
}

impl TaskRow {
    pub fn approvers(&self) -> Vec<String> {
        serde_json::from_str(&self.approvers).unwrap_or_default()
    }
    pub fn depends_on(&self) -> Vec<String> {
        serde_json::from_str(&self.depends_on).unwrap_or_default()
    }
    /// Done, approved, rejected or cancelled (a forced close): nothing more to do.
    pub fn is_closed(&self) -> bool {
        matches!(
            self.status.as_str(),
            "done" | "approved" | "rejected" | "cancelled"
        )
    }
    /// Satisfies a dependency: done, or approved.
    pub fn is_satisfied(&self) -> bool {
        matches!(self.status.as_str(), "done" | "approved")
    }
}

/// A department of an incident's team.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TeamRow {
    pub department: String,
    /// The escalation level paged so far.
    pub level: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub paged_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub acked_at: Option<i64>,
    pub acked_by: Option<String>,
}

/// One department's decision on an approval task.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApprovalRow {
    pub task_id: i64,
    pub department: String,
    pub decision: String,
    pub decided_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub decided_at: i64,
    pub reason: Option<String>,
}

/// Filters for listing tasks across incidents; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub incident_id: Option<i64>,
    /// Only these departments (empty = any).
    pub departments: Vec<String>,
    pub assignee: Option<String>,
    /// Only open (not done, approved or rejected) tasks.
    pub open: bool,
    /// Only tasks due before this time that are still open.
    pub overdue_at: Option<i64>,
    pub approval: Option<bool>,
    pub limit: i64,
}

macro_rules! task_select {
    ($where:literal) => {
        concat!(
            "SELECT id, incident_id, key, playbook, title, department, description, approval, approvers, ",
            "depends_on, after_task, due_offset_secs, due_at, status, assignee, acked_by, acked_at, closed_by, ",
            "closed_at, note, created_at, updated_at FROM tasks ",
            $where
        )
    };
}

impl WriteTx {
    /// Open incidents at these severities (digest), oldest first.
    pub async fn open_incident_ids(&mut self, severities: &[&str]) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = on_tx!(self, c, pg => {
            let sql = if pg {
                "SELECT id FROM incidents WHERE status NOT IN ('closed', 'false_positive', 'merged') \
                 AND severity IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id"
            } else {
                "SELECT id FROM incidents WHERE status NOT IN ('closed', 'false_positive', 'merged') \
                 AND severity IN (SELECT value FROM json_each($1)) ORDER BY id"
            };
            sqlx::query_as(sql).bind(json(severities)).fetch_all(&mut *c).await?
        });
        Ok(rows.into_iter().map(|(i,)| i).collect())
    }

    /// The playbook and severity an incident's playbook was last applied with.
    pub async fn playbook_applied(&mut self, incident_id: i64) -> Result<Option<(String, String)>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT playbook, severity FROM incident_playbooks WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn set_playbook(
        &mut self,
        incident_id: i64,
        playbook: &str,
        severity: &str,
        now: i64,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO incident_playbooks (incident_id, playbook, severity, applied_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (incident_id) DO UPDATE SET playbook = $2, severity = $3, applied_at = $4",
            )
            .bind(incident_id)
            .bind(playbook)
            .bind(severity)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Create tasks; a key the incident already has keeps its task. Returns the keys created.
    pub async fn insert_tasks(&mut self, tasks: &[NewTask], now: i64) -> Result<Vec<String>> {
        let mut created = Vec::new();
        for t in tasks {
            let n: Option<(i64,)> = on_tx!(self, c, _pg => {
                sqlx::query_as(
                    "INSERT INTO tasks (incident_id, key, playbook, title, department, description, approval, approvers, \
                     depends_on, after_task, due_offset_secs, due_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                     ON CONFLICT (incident_id, key) DO NOTHING RETURNING id",
                )
                .bind(t.incident_id)
                .bind(&t.key)
                .bind(&t.playbook)
                .bind(&t.title)
                .bind(&t.department)
                .bind(&t.description)
                .bind(t.approval)
                .bind(json(&t.approvers))
                .bind(json(&t.depends_on))
                .bind(&t.after_task)
                .bind(t.due_offset_secs)
                .bind(t.due_at)
                .bind(now)
                .fetch_optional(&mut *c)
                .await?
            });
            if let Some((id,)) = n {
                self.touch(Sealed::Tasks, id);
                created.push(t.key.clone());
            }
        }
        Ok(created)
    }

    pub async fn tasks_of(&mut self, incident_id: i64) -> Result<Vec<TaskRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(task_select!("WHERE incident_id = $1 ORDER BY id"))
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn task_by_key(&mut self, incident_id: i64, key: &str) -> Result<Option<TaskRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(task_select!("WHERE incident_id = $1 AND key = $2"))
                .bind(incident_id)
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn task_by_id(&mut self, id: i64) -> Result<Option<TaskRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(task_select!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Write back a task's mutable columns.
    pub async fn update_task(&mut self, t: &TaskRow) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE tasks SET department = $2, due_at = $3, status = $4, assignee = $5, acked_by = $6, \
                 acked_at = $7, closed_by = $8, closed_at = $9, note = $10, updated_at = $11 WHERE id = $1",
            )
            .bind(t.id)
            .bind(&t.department)
            .bind(t.due_at)
            .bind(&t.status)
            .bind(&t.assignee)
            .bind(&t.acked_by)
            .bind(t.acked_at)
            .bind(&t.closed_by)
            .bind(t.closed_at)
            .bind(&t.note)
            .bind(t.updated_at)
            .execute(&mut *c)
            .await?;
        });
        self.touch(Sealed::Tasks, t.id);
        Ok(())
    }

    /// Add a department to the team at `level`; `false` if it was already there.
    pub async fn add_team(
        &mut self,
        incident_id: i64,
        department: &str,
        level: i32,
        now: i64,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO incident_team (incident_id, department, level, paged_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (incident_id, department) DO NOTHING",
            )
            .bind(incident_id)
            .bind(department)
            .bind(level)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(Sealed::IncidentTeam, incident_id);
        Ok(n > 0)
    }

    pub async fn team_of(&mut self, incident_id: i64) -> Result<Vec<TeamRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT department, level, paged_at, acked_at, acked_by FROM incident_team \
                 WHERE incident_id = $1 ORDER BY paged_at, department",
            )
            .bind(incident_id)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }

    pub async fn set_team_level(
        &mut self,
        incident_id: i64,
        department: &str,
        level: i32,
        now: i64,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE incident_team SET level = $3, paged_at = $4 WHERE incident_id = $1 AND department = $2")
                .bind(incident_id)
                .bind(department)
                .bind(level)
                .bind(now)
                .execute(&mut *c)
                .await?;
        });
        self.touch(Sealed::IncidentTeam, incident_id);
        Ok(())
    }

    /// The department acknowledged the page (stops escalation); `false` if it already had.
    pub async fn ack_team(
        &mut self,
        incident_id: i64,
        department: &str,
        by: &str,
        now: i64,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE incident_team SET acked_at = $4, acked_by = $3 \
                 WHERE incident_id = $1 AND department = $2 AND acked_at IS NULL",
            )
            .bind(incident_id)
            .bind(department)
            .bind(by)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(Sealed::IncidentTeam, incident_id);
        Ok(n > 0)
    }

    /// Record a department's decision; `false` if the department had already decided.
    pub async fn record_approval(&mut self, a: &ApprovalRow) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO approvals (task_id, department, decision, decided_by, decided_at, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id, department) DO NOTHING",
            )
            .bind(a.task_id)
            .bind(&a.department)
            .bind(&a.decision)
            .bind(&a.decided_by)
            .bind(a.decided_at)
            .bind(&a.reason)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(Sealed::Approvals, a.task_id);
        Ok(n > 0)
    }

    pub async fn approvals_of(&mut self, task_id: i64) -> Result<Vec<ApprovalRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT task_id, department, decision, decided_by, decided_at, reason FROM approvals \
                 WHERE task_id = $1 ORDER BY decided_at",
            )
            .bind(task_id)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }
}

impl Store {
    pub async fn tasks(&self, f: &TaskFilter) -> Result<Vec<TaskRow>> {
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                task_select!(
                    "WHERE ($1::bigint IS NULL OR incident_id = $1) \
                     AND ($2::text IS NULL OR department IN (SELECT jsonb_array_elements_text($2::jsonb))) \
                     AND ($3::text IS NULL OR assignee = $3) \
                     AND ($4 = FALSE OR status IN ('open', 'acked')) \
                     AND ($5::bigint IS NULL OR (status IN ('open', 'acked') AND due_at < $5)) \
                     AND ($6::boolean IS NULL OR approval = $6) ORDER BY incident_id DESC, id LIMIT $7"
                )
            } else {
                task_select!(
                    "WHERE ($1 IS NULL OR incident_id = $1) \
                     AND ($2 IS NULL OR department IN (SELECT value FROM json_each($2))) \
                     AND ($3 IS NULL OR assignee = $3) \
                     AND ($4 = FALSE OR status IN ('open', 'acked')) \
                     AND ($5 IS NULL OR (status IN ('open', 'acked') AND due_at < $5)) \
                     AND ($6 IS NULL OR approval = $6) ORDER BY incident_id DESC, id LIMIT $7"
                )
            };
            sqlx::query_as(sql)
                .bind(f.incident_id)
                .bind((!f.departments.is_empty()).then(|| json(&f.departments)))
                .bind(&f.assignee)
                .bind(f.open)
                .bind(f.overdue_at)
                .bind(f.approval)
                .bind(f.limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// A department's work for the console's My work, soonest deadline first (none last), at
    /// most `limit` of each: its open tasks, and the open approvals it decides. Plain indexed
    /// queries (no optional filters), as they run on every view of the page.
    pub async fn work_of(
        &self,
        department: &str,
        limit: i64,
    ) -> Result<(Vec<TaskRow>, Vec<TaskRow>)> {
        let tasks = on_pool!(self, pool, _pg => {
            sqlx::query_as(task_select!(
                "WHERE department = $1 AND status IN ('open', 'acked') AND approval = FALSE \
                 ORDER BY COALESCE(due_at, 9223372036854775807), id LIMIT $2"
            ))
            .bind(department)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let approvals = on_pool!(self, pool, _pg => {
            sqlx::query_as(task_select!(
                "WHERE approval = TRUE AND status IN ('open', 'acked') AND approvers LIKE $1 \
                 ORDER BY COALESCE(due_at, 9223372036854775807), id LIMIT $2"
            ))
            .bind(format!("%\"{department}\"%"))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok((tasks, approvals))
    }

    /// Every task of these incidents (one indexed query, whatever the number of incidents).
    pub async fn tasks_of_incidents(&self, incident_ids: &[i64]) -> Result<Vec<TaskRow>> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                task_select!("WHERE incident_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint) ORDER BY incident_id, id")
            } else {
                task_select!("WHERE incident_id IN (SELECT value FROM json_each($1)) ORDER BY incident_id, id")
            };
            sqlx::query_as(sql).bind(json(incident_ids)).fetch_all(pool).await?
        });
        Ok(rows)
    }

    pub async fn team(&self, incident_id: i64) -> Result<Vec<TeamRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT department, level, paged_at, acked_at, acked_by FROM incident_team \
                 WHERE incident_id = $1 ORDER BY paged_at, department",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Decisions on these tasks.
    pub async fn approvals_for(&self, task_ids: &[i64]) -> Result<Vec<ApprovalRow>> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                "SELECT task_id, department, decision, decided_by, decided_at, reason FROM approvals \
                 WHERE task_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint) ORDER BY decided_at"
            } else {
                "SELECT task_id, department, decision, decided_by, decided_at, reason FROM approvals \
                 WHERE task_id IN (SELECT value FROM json_each($1)) ORDER BY decided_at"
            };
            sqlx::query_as(sql).bind(json(task_ids)).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// The playbook an incident runs, if any.
    pub async fn incident_playbook(&self, incident_id: i64) -> Result<Option<(String, String)>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT playbook, severity FROM incident_playbooks WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}
