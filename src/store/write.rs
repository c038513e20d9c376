//! The write side: one transaction holding the write lock, with the operations the engine
//! composes. Ids are assigned here, under the lock, so they are dense and the audit chain
//! (which covers them) has exactly one order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, Sqlite, Transaction};

use super::Result;
use super::rows::{IncidentJson, IncidentRow, incident_columns};
use crate::domain::audit::{EventContent, GENESIS, event_hash};
use crate::domain::records::Incident;
use crate::domain::time::to_micros;

enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A write transaction. Dropping it without [`WriteTx::commit`] rolls everything back.
pub struct WriteTx {
    inner: Inner,
    /// (id, hash) of the newest audit event, read once per transaction.
    head: Option<(i64, String)>,
}

/// Expand `$body` once per backend with `$c` the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $c:ident, $pg:ident => $body:expr) => {
        match &mut $tx.inner {
            Inner::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                let $pg = false;
                let _ = $pg;
                $body
            }
            Inner::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                let $pg = true;
                let _ = $pg;
                $body
            }
        }
    };
}

/// An audit event before it has an id and a place in the chain.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: &'static str,
    pub incident_id: Option<i64>,
    pub data: serde_json::Value,
}

/// An alert row ready to insert (`detail` is its canonical JSON).
#[derive(Debug, Clone, Serialize)]
pub struct NewAlertRow {
    pub id: i64,
    pub dedup_key: String,
    pub source: String,
    pub status: &'static str,
    pub fingerprint: String,
    pub group_key: String,
    pub title: String,
    pub detail: String,
    pub occurred_at: i64,
    pub ends_at: Option<i64>,
    pub received_at: i64,
    pub category: Option<&'static str>,
    pub severity: Option<&'static str>,
    pub rule: Option<String>,
    pub incident_id: Option<i64>,
    pub hash: String,
}

#[derive(Serialize)]
struct EventJson<'a> {
    id: i64,
    at: i64,
    actor: &'a str,
    kind: &'a str,
    incident_id: Option<i64>,
    data: String,
    prev_hash: String,
    hash: String,
}

/// Which table's next id to compute.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Incidents,
    Alerts,
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl WriteTx {
    pub(super) fn sqlite(tx: Transaction<'static, Sqlite>) -> Self {
        WriteTx {
            inner: Inner::Sqlite(tx),
            head: None,
        }
    }

    pub(super) fn postgres(tx: Transaction<'static, Postgres>) -> Self {
        WriteTx {
            inner: Inner::Postgres(tx),
            head: None,
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await?,
            Inner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// The largest id in use in `table` (0 when empty).
    pub async fn max_id(&mut self, table: Table) -> Result<i64> {
        let sql = match table {
            Table::Incidents => "SELECT COALESCE(MAX(id), 0) FROM incidents",
            Table::Alerts => "SELECT COALESCE(MAX(id), 0) FROM alerts",
        };
        let (n,): (i64,) = on_tx!(self, c, _pg => sqlx::query_as(sql).fetch_one(&mut *c).await?);
        Ok(n)
    }

    /// Alerts already stored under these dedup keys: key → (alert id, incident id).
    pub async fn existing_alerts(
        &mut self,
        keys: &[&str],
    ) -> Result<HashMap<String, (i64, Option<i64>)>> {
        let rows: Vec<(String, i64, Option<i64>)> = on_tx!(self, c, pg => {
            let sql = if pg {
                "SELECT dedup_key, id, incident_id FROM alerts WHERE dedup_key IN (SELECT jsonb_array_elements_text($1::jsonb))"
            } else {
                "SELECT dedup_key, id, incident_id FROM alerts WHERE dedup_key IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(json(keys)).fetch_all(&mut *c).await?
        });
        Ok(rows
            .into_iter()
            .map(|(k, id, inc)| (k, (id, inc)))
            .collect())
    }

    /// Open incidents collecting alerts under these group keys: key → newest such incident.
    pub async fn open_incidents_by_key(&mut self, keys: &[&str]) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_tx!(self, c, pg => {
            let sql = if pg {
                "SELECT k.group_key, MAX(k.incident_id) FROM incident_keys k JOIN incidents i ON i.id = k.incident_id \
                 WHERE k.group_key IN (SELECT jsonb_array_elements_text($1::jsonb)) \
                 AND i.status NOT IN ('closed', 'false_positive') GROUP BY k.group_key"
            } else {
                "SELECT k.group_key, MAX(k.incident_id) FROM incident_keys k JOIN incidents i ON i.id = k.incident_id \
                 WHERE k.group_key IN (SELECT value FROM json_each($1)) \
                 AND i.status NOT IN ('closed', 'false_positive') GROUP BY k.group_key"
            };
            sqlx::query_as(sql).bind(json(keys)).fetch_all(&mut *c).await?
        });
        Ok(rows.into_iter().collect())
    }

    pub async fn incidents(&mut self, ids: &[i64]) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = on_tx!(self, c, pg => {
            let sql = if pg {
                concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)")
            } else {
                concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id IN (SELECT value FROM json_each($1))")
            };
            sqlx::query_as(sql).bind(json(ids)).fetch_all(&mut *c).await?
        });
        rows.into_iter().map(Incident::try_from).collect()
    }

    pub async fn incident(&mut self, id: i64) -> Result<Option<Incident>> {
        Ok(self.incidents(&[id]).await?.pop())
    }

    pub async fn insert_incidents(&mut self, incidents: &[Incident]) -> Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        let rows: Vec<IncidentJson<'_>> = incidents.iter().map(IncidentJson::from).collect();
        let payload = json(&rows);
        on_tx!(self, c, pg => {
            let sql = if pg {
                concat!("INSERT INTO incidents (", incident_columns!(), ") SELECT ", incident_columns!(),
                    " FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, title text, summary text, category text, severity text, \
                    status text, drill boolean, origin text, rule text, facts text, facts_version bigint, first_seen_at bigint, \
                    discovered_at bigint, declared_at bigint, aware_at bigint, contained_at bigint, closed_at bigint, \
                    updated_at bigint, alert_count bigint, truncated_alerts bigint, created_by text)")
            } else {
                concat!("INSERT INTO incidents (", incident_columns!(), ") SELECT \
                    value->>'id', value->>'title', value->>'summary', value->>'category', value->>'severity', \
                    value->>'status', value->>'drill', value->>'origin', value->>'rule', value->>'facts', value->>'facts_version', \
                    value->>'first_seen_at', value->>'discovered_at', value->>'declared_at', value->>'aware_at', \
                    value->>'contained_at', value->>'closed_at', value->>'updated_at', value->>'alert_count', \
                    value->>'truncated_alerts', value->>'created_by' FROM json_each($1)")
            };
            sqlx::query(sql).bind(payload).execute(&mut *c).await?;
        });
        Ok(())
    }

    /// Write back an incident's mutable columns.
    pub async fn update_incident(&mut self, i: &Incident) -> Result<()> {
        let r = IncidentJson::from(i);
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE incidents SET title = $2, summary = $3, category = $4, severity = $5, status = $6, \
                 rule = $7, facts = $8, facts_version = $9, discovered_at = $10, declared_at = $11, aware_at = $12, \
                 contained_at = $13, closed_at = $14, updated_at = $15, alert_count = $16, truncated_alerts = $17 \
                 WHERE id = $1",
            )
            .bind(r.id)
            .bind(r.title)
            .bind(r.summary)
            .bind(r.category)
            .bind(r.severity)
            .bind(r.status)
            .bind(r.rule)
            .bind(&r.facts)
            .bind(r.facts_version)
            .bind(r.discovered_at)
            .bind(r.declared_at)
            .bind(r.aware_at)
            .bind(r.contained_at)
            .bind(r.closed_at)
            .bind(r.updated_at)
            .bind(r.alert_count)
            .bind(r.truncated_alerts)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    pub async fn insert_incident_keys(&mut self, keys: &[(&str, i64)]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        on_tx!(self, c, pg => {
            let sql = if pg {
                "INSERT INTO incident_keys (group_key, incident_id) SELECT x->>0, (x->>1)::bigint \
                 FROM jsonb_array_elements($1::jsonb) AS x ON CONFLICT DO NOTHING"
            } else {
                "INSERT INTO incident_keys (group_key, incident_id) SELECT value->>0, value->>1 \
                 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING"
            };
            sqlx::query(sql).bind(json(keys)).execute(&mut *c).await?;
        });
        Ok(())
    }

    pub async fn insert_alerts(&mut self, rows: &[NewAlertRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        on_tx!(self, c, pg => {
            let sql = if pg {
                "INSERT INTO alerts (id, dedup_key, source, status, fingerprint, group_key, title, detail, occurred_at, \
                 ends_at, received_at, category, severity, rule, incident_id, hash) \
                 SELECT id, dedup_key, source, status, fingerprint, group_key, title, detail, occurred_at, ends_at, \
                 received_at, category, severity, rule, incident_id, hash FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, \
                 dedup_key text, source text, status text, fingerprint text, group_key text, title text, detail text, \
                 occurred_at bigint, ends_at bigint, received_at bigint, category text, severity text, rule text, \
                 incident_id bigint, hash text)"
            } else {
                "INSERT INTO alerts (id, dedup_key, source, status, fingerprint, group_key, title, detail, occurred_at, \
                 ends_at, received_at, category, severity, rule, incident_id, hash) \
                 SELECT value->>'id', value->>'dedup_key', value->>'source', value->>'status', value->>'fingerprint', \
                 value->>'group_key', value->>'title', value->>'detail', value->>'occurred_at', value->>'ends_at', \
                 value->>'received_at', value->>'category', value->>'severity', value->>'rule', value->>'incident_id', \
                 value->>'hash' FROM json_each($1)"
            };
            sqlx::query(sql).bind(json(rows)).execute(&mut *c).await?;
        });
        Ok(())
    }

    async fn head(&mut self) -> Result<(i64, String)> {
        if let Some(h) = &self.head {
            return Ok(h.clone());
        }
        let row: Option<(i64, String)> = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *c)
                .await?
        });
        let head = row.unwrap_or_else(|| (0, GENESIS.to_string()));
        self.head = Some(head.clone());
        Ok(head)
    }

    /// Append events to the audit chain, in order. Returns their ids.
    pub async fn append(&mut self, events: &[NewEvent]) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (mut id, mut prev) = self.head().await?;
        let mut rows = Vec::with_capacity(events.len());
        let mut ids = Vec::with_capacity(events.len());
        for e in events {
            id += 1;
            let data = e.data.to_string();
            let at = to_micros(e.at);
            let hash = event_hash(
                &prev,
                EventContent {
                    id,
                    at_micros: at,
                    actor: &e.actor,
                    kind: e.kind,
                    incident_id: e.incident_id,
                    data: &data,
                },
            );
            rows.push(EventJson {
                id,
                at,
                actor: &e.actor,
                kind: e.kind,
                incident_id: e.incident_id,
                data,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
            ids.push(id);
        }
        let payload = json(&rows);
        on_tx!(self, c, pg => {
            let sql = if pg {
                "INSERT INTO events (id, at, actor, kind, incident_id, data, prev_hash, hash) \
                 SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM jsonb_to_recordset($1::jsonb) \
                 AS x(id bigint, at bigint, actor text, kind text, incident_id bigint, data text, prev_hash text, hash text)"
            } else {
                "INSERT INTO events (id, at, actor, kind, incident_id, data, prev_hash, hash) \
                 SELECT value->>'id', value->>'at', value->>'actor', value->>'kind', value->>'incident_id', \
                 value->>'data', value->>'prev_hash', value->>'hash' FROM json_each($1)"
            };
            sqlx::query(sql).bind(payload).execute(&mut *c).await?;
        });
        self.head = Some((id, prev));
        Ok(ids)
    }
}
