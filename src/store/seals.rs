//! Row seals: the rows people decide from and publish are digested when incidentd writes them,
//! and the digests go into the audit chain as `audit.sealed` events, in the same transaction.
//! `incidentd audit verify` recomputes every sealed row's digest and compares it with the last
//! one the chain holds, so an edit, an insertion or a deletion made outside incidentd shows.
//!
//! Each write that changes a sealed column calls [`WriteTx::touch`] with the row's lookup id
//! (its id, or the id its key starts with); [`WriteTx::commit`] digests the touched rows and
//! appends one event. Columns that only record progress (counters, `updated_at`, a delivery's
//! attempts and status while the dispatcher works on it) are not sealed: they change in
//! transactions that hold no write lock on PostgreSQL, and what they lead to is recorded by
//! events of its own (`deliveries.recorded`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use sqlx::Row;

use super::Result;
use super::write::{Inner, NewEvent, WriteTx, json, on_tx};
use crate::domain::audit::row_digest;

/// A table whose rows are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sealed {
    Incidents,
    Tasks,
    Approvals,
    IncidentTeam,
    Deliveries,
    Campaigns,
    Announcements,
    AnnouncementVersions,
    AnnouncementGates,
    Reports,
    Obligations,
    Grades,
}

/// What a sealed table's digest covers.
pub struct Spec {
    pub table: &'static str,
    /// The row's key; the first is its lookup id (an integer).
    pub key: &'static [&'static str],
    pub sealed: &'static [&'static str],
    /// Columns left out on purpose (progress, not decisions): see the module comment.
    pub unsealed: &'static [&'static str],
}

impl Sealed {
    pub const ALL: [Sealed; 12] = [
        Sealed::Incidents,
        Sealed::Tasks,
        Sealed::Approvals,
        Sealed::IncidentTeam,
        Sealed::Deliveries,
        Sealed::Campaigns,
        Sealed::Announcements,
        Sealed::AnnouncementVersions,
        Sealed::AnnouncementGates,
        Sealed::Reports,
        Sealed::Obligations,
        Sealed::Grades,
    ];

    // Long because: it is a table, not logic — one entry per sealed table, one column per line,
    // so a change to what is sealed shows in a diff as the column it adds or moves.
    pub fn spec(self) -> &'static Spec {
        match self {
            Sealed::Incidents => &Spec {
                table: "incidents",
                key: &["id"],
                sealed: &[
                    "title",
                    "summary",
                    "category",
                    "severity",
                    "status",
                    "drill",
                    "origin",
                    "rule",
                    "facts",
                    "facts_version",
                    "first_seen_at",
                    "discovered_at",
                    "declared_at",
                    "aware_at",
                    "contained_at",
                    "closed_at",
                    "created_by",
                    "assessed_notifiable_at",
                    "handling_closed_at",
                    "merged_into",
                ],
                unsealed: &[
                    "updated_at",
                    "alert_count",
                    "truncated_alerts",
                    "alerts_firing",
                    "alerts_resolved",
                    "intake",
                    "storm",
                ],
            },
            Sealed::Tasks => &Spec {
                table: "tasks",
                key: &["id"],
                sealed: &[
                    "incident_id",
                    "key",
                    "playbook",
                    "title",
                    "department",
                    "description",
                    "approval",
                    "approvers",
                    "depends_on",
                    "after_task",
                    "due_offset_secs",
                    "due_at",
                    "status",
                    "assignee",
                    "acked_by",
                    "acked_at",
                    "closed_by",
                    "closed_at",
                    "note",
                    "created_at",
                ],
                unsealed: &["updated_at"],
            },
            Sealed::Approvals => &Spec {
                table: "approvals",
                key: &["task_id", "department"],
                sealed: &["decision", "decided_by", "decided_at", "reason"],
                unsealed: &[],
            },
            Sealed::IncidentTeam => &Spec {
                table: "incident_team",
                key: &["incident_id", "department"],
                sealed: &["level", "paged_at", "acked_at", "acked_by"],
                unsealed: &[],
            },
            Sealed::Deliveries => &Spec {
                table: "deliveries",
                key: &["id"],
                sealed: &[
                    "idempotency_key",
                    "incident_id",
                    "drill",
                    "purpose",
                    "channel",
                    "recipient",
                    "locale",
                    "content",
                    "fallback",
                    "fallback_of",
                    "created_at",
                ],
                unsealed: &[
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "sent_at",
                    "provider",
                    "provider_message_id",
                    "last_error",
                    "updated_at",
                    "coalesced_into",
                ],
            },
            Sealed::Campaigns => &Spec {
                table: "campaigns",
                key: &["id"],
                sealed: &[
                    "incident_id",
                    "actor",
                    "template",
                    "channels",
                    "mode",
                    "approval_task",
                    "audience",
                    "facts_version",
                    "created_at",
                ],
                unsealed: &[
                    "status",
                    "enqueued_to",
                    "subjects",
                    "deliveries",
                    "unreachable",
                    "error",
                    "started_at",
                    "finished_at",
                ],
            },
            Sealed::Announcements => &Spec {
                table: "announcements",
                key: &["id"],
                sealed: &["incident_id", "slug", "drill", "created_at"],
                unsealed: &["updated_at"],
            },
            Sealed::AnnouncementVersions => &Spec {
                table: "announcement_versions",
                key: &["announcement_id", "version"],
                sealed: &[
                    "published_at",
                    "actor",
                    "reason",
                    "template",
                    "locales",
                    "content_hash",
                    "facts_version",
                    "facts_hash",
                ],
                unsealed: &[],
            },
            Sealed::AnnouncementGates => &Spec {
                table: "announcement_gates",
                key: &["announcement_id", "version"],
                sealed: &[
                    "task_id",
                    "status",
                    "approvers",
                    "webhook",
                    "decided_at",
                    "decided_by",
                ],
                unsealed: &[],
            },
            Sealed::Reports => &Spec {
                table: "reports",
                key: &["id"],
                sealed: &[
                    "incident_id",
                    "obligation_key",
                    "jurisdiction",
                    "obligation",
                    "report",
                    "report_kind",
                    "recipient",
                    "version",
                    "status",
                    "locale",
                    "inputs",
                    "fields",
                    "missing",
                    "partial",
                    "subject",
                    "markdown",
                    "html",
                    "facts",
                    "facts_version",
                    "content_hash",
                    "task_id",
                    "created_by",
                    "created_at",
                    "submitted_at",
                    "submitted_by",
                    "via",
                    "reference",
                    "delivery_key",
                    "late_reason",
                ],
                unsealed: &["updated_at"],
            },
            Sealed::Obligations => &Spec {
                table: "obligations",
                key: &["incident_id", "key"],
                sealed: &[
                    "id",
                    "jurisdiction",
                    "obligation",
                    "kind",
                    "report_kind",
                    "recipient",
                    "owner",
                    "standing",
                    "clock",
                    "clock_start",
                    "due_at",
                    "detail",
                    "status",
                    "met_at",
                    "met_by",
                    "met_ref",
                    "late_reason",
                    "met_facts",
                    "created_at",
                ],
                unsealed: &["updated_at"],
            },
            Sealed::Grades => &Spec {
                table: "grades",
                key: &["incident_id", "id"],
                sealed: &["jurisdiction", "grade", "criterion", "why", "at"],
                unsealed: &[],
            },
        }
    }

    pub fn by_table(table: &str) -> Option<Sealed> {
        Sealed::ALL.into_iter().find(|s| s.spec().table == table)
    }
}

impl Spec {
    /// `SELECT key…, literal(col)… FROM table [WHERE lookup IN (ids)]`: keys as text, each
    /// sealed value as the database's literal of it (`quote` / `quote_nullable`), so NULL, a
    /// number and a text differ.
    pub fn select(&self, pg: bool, by_lookup: bool) -> String {
        let mut cols: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("CAST({k} AS TEXT)"))
            .collect();
        for c in self.sealed {
            cols.push(if pg {
                format!("quote_nullable({c})")
            } else {
                format!("quote({c})")
            });
        }
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), self.table);
        if by_lookup {
            let lookup = self.key[0];
            sql.push_str(&if pg {
                format!(
                    " WHERE {lookup} IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
                )
            } else {
                format!(" WHERE {lookup} IN (SELECT value FROM json_each($1))")
            });
        }
        sql
    }

    /// The row's key and digest from the columns [`Spec::select`] returned.
    pub fn digest(&self, cols: &[String]) -> (String, String) {
        let k = self.key.len();
        let key = cols[..k].join("/");
        let d = row_digest(self.table, &key, self.sealed, &cols[k..]);
        (key, d)
    }
}

/// Read every column of a row as text (NULL as empty: only keys, which are never NULL, and
/// literals, which render NULL as `NULL`, are read).
macro_rules! texts {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_default())
                    })
                    .collect::<std::result::Result<Vec<String>, sqlx::Error>>()
            })
            .collect::<std::result::Result<Vec<Vec<String>>, sqlx::Error>>()?
    };
}

/// Touched rows of a transaction, by table: lookup ids.
pub(super) type Touched = BTreeMap<Sealed, BTreeSet<i64>>;

impl WriteTx {
    /// This transaction changed sealed columns of the row(s) with this lookup id.
    pub fn touch(&mut self, table: Sealed, id: i64) {
        self.touched.entry(table).or_default().insert(id);
    }

    pub fn touch_all(&mut self, table: Sealed, ids: impl IntoIterator<Item = i64>) {
        self.touched.entry(table).or_default().extend(ids);
    }

    /// The digests of `table`'s rows with these lookup ids (`None`: all of them), by key.
    async fn digests(
        &mut self,
        table: Sealed,
        ids: Option<&[i64]>,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let spec = table.spec();
        let parts: Vec<Option<&[i64]>> = match ids {
            Some(ids) => ids.chunks(2000).map(Some).collect(),
            None => vec![None],
        };
        for part in parts {
            let got: Vec<Vec<String>> = on_tx!(self, c, pg => {
                let sql = sqlx::AssertSqlSafe(spec.select(pg, part.is_some()));
                let found = match part {
                    Some(ids) => sqlx::query(sql).bind(json(ids)).fetch_all(&mut *c).await?,
                    None => sqlx::query(sql).fetch_all(&mut *c).await?,
                };
                texts!(found)
            });
            for cols in got {
                let (key, digest) = spec.digest(&cols);
                out.insert(key, digest);
            }
        }
        Ok(())
    }

    /// Digest the touched rows and append them to the chain (`audit.sealed`). Called by
    /// `commit`; a transaction that touched nothing appends nothing.
    pub(super) async fn seal_touched(&mut self) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        let mut rows: BTreeMap<&'static str, BTreeMap<String, String>> = BTreeMap::new();
        for (table, ids) in &touched {
            let ids: Vec<i64> = ids.iter().copied().collect();
            let mut out = BTreeMap::new();
            self.digests(*table, Some(&ids), &mut out).await?;
            if !out.is_empty() {
                rows.insert(table.spec().table, out);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let event = NewEvent::new(
            Utc::now(),
            "incidentd",
            "audit.sealed",
            None,
            &serde_json::json!({ "rows": rows }),
        );
        self.append(&[event]).await?;
        Ok(())
    }

    /// Seal every row of every sealed table (`audit.baseline`): once, for a database written
    /// before rows were sealed. Returns how many rows (none: no event).
    async fn seal_everything(&mut self) -> Result<u64> {
        let mut rows: BTreeMap<&'static str, BTreeMap<String, String>> = BTreeMap::new();
        for table in Sealed::ALL {
            let mut out = BTreeMap::new();
            self.digests(table, None, &mut out).await?;
            if !out.is_empty() {
                rows.insert(table.spec().table, out);
            }
        }
        let n: u64 = rows.values().map(|r| r.len() as u64).sum();
        if n == 0 {
            return Ok(0);
        }
        let event = NewEvent::new(
            Utc::now(),
            "incidentd",
            "audit.baseline",
            None,
            &serde_json::json!({ "rows": rows }),
        );
        self.append(&[event]).await?;
        Ok(n)
    }
}

/// What [`Store::prepare_audit`] did.
#[derive(Debug, Default)]
pub struct AuditPrepared {
    /// Rows sealed by the one-time baseline (a database from before sealing).
    pub baseline_rows: Option<u64>,
    /// The chain was unkeyed and `[audit] key` is now set: an `audit.keyed` event marks it.
    pub marked_keyed: bool,
}

impl super::Store {
    /// At start: seal the rows of a database written before sealing began (once), and mark
    /// the chain keyed when `[audit] key` was just set, so `audit verify` can require a MAC on
    /// the newest event from then on.
    pub async fn prepare_audit(&self) -> Result<AuditPrepared> {
        let mut out = AuditPrepared::default();
        let mut tx = self.begin_write().await?;
        let baseline: Option<(i64,)> = on_tx!(tx, c, _pg => {
            sqlx::query_as("SELECT event_id FROM audit_baseline LIMIT 1").fetch_optional(&mut *c).await?
        });
        if baseline.is_none() {
            let n = tx.seal_everything().await?;
            let head: Option<(i64,)> = on_tx!(tx, c, _pg => {
                sqlx::query_as("SELECT id FROM events ORDER BY id DESC LIMIT 1").fetch_optional(&mut *c).await?
            });
            let at = if n > 0 { head.map_or(0, |h| h.0) } else { 0 };
            on_tx!(tx, c, _pg => {
                sqlx::query("INSERT INTO audit_baseline (event_id) VALUES ($1)").bind(at).execute(&mut *c).await?;
            });
            if n > 0 {
                out.baseline_rows = Some(n);
            }
        }
        if tx.audit_key.is_some() {
            let head: Option<(Option<String>,)> = on_tx!(tx, c, _pg => {
                sqlx::query_as("SELECT mac FROM events ORDER BY id DESC LIMIT 1").fetch_optional(&mut *c).await?
            });
            if let Some((None,)) = head {
                let e = NewEvent::new(
                    Utc::now(),
                    "incidentd",
                    "audit.keyed",
                    None,
                    &serde_json::json!({ "note": "from this event on, every event carries a MAC under [audit] key" }),
                );
                tx.append(&[e]).await?;
                out.marked_keyed = true;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The newest event: (id, hash, MAC), for the log that anchors the chain.
    pub async fn audit_head(&self) -> Result<Option<(i64, String, Option<String>)>> {
        let row = super::on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT id, hash, mac FROM events ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}
