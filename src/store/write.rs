//! The write side: one transaction holding the write lock, with the operations the engine
//! composes. Ids are assigned here, under the lock, so they are dense and the audit chain
//! (which covers them) has exactly one order.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, SqliteConnection, Transaction};
use tokio::sync::{Notify, OwnedMutexGuard};

use super::Result;
use super::rows::{IncidentOut, IncidentRow, incident_columns};
use super::seals::{Sealed, Touched};
use crate::domain::audit::{AuditKey, EventContent, GENESIS, event_hash, event_mac};
use crate::domain::records::Incident;
use crate::domain::time::to_micros;

pub(super) enum Inner {
    /// The SQLite writer connection, inside `BEGIN IMMEDIATE`; `None` once committed or
    /// handed to the rollback in `Drop`.
    Sqlite(Option<OwnedMutexGuard<WriterConn>>),
    /// `None` once committed.
    Postgres(Option<Transaction<'static, Postgres>>),
}

/// SQLite's one writer connection. `in_tx` is true from `BEGIN` until a successful `COMMIT`
/// or `ROLLBACK`; whoever takes the connection next rolls back a transaction left open.
#[derive(Debug)]
pub(super) struct WriterConn {
    pub(super) conn: SqliteConnection,
    pub(super) in_tx: bool,
}

impl WriterConn {
    pub(super) async fn begin(
        mut me: OwnedMutexGuard<WriterConn>,
    ) -> Result<OwnedMutexGuard<WriterConn>> {
        me.rollback_if_open().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut me.conn).await?;
        me.in_tx = true;
        Ok(me)
    }

    /// Roll back a transaction left open (a failed commit, a dropped [`WriteTx`]).
    pub(super) async fn rollback_if_open(&mut self) -> Result<()> {
        if self.in_tx {
            sqlx::query("ROLLBACK").execute(&mut self.conn).await?;
            self.in_tx = false;
        }
        Ok(())
    }
}

/// A write transaction. Dropping it without [`WriteTx::commit`] rolls everything back.
pub struct WriteTx {
    pub(super) inner: Inner,
    /// (id, hash) of the newest audit event, read once per transaction.
    head: Option<(i64, String)>,
    /// `[audit] key`: each event also gets a MAC under it.
    pub(super) audit_key: Option<Arc<AuditKey>>,
    /// Rows whose sealed columns this transaction changed (store::seals).
    pub(super) touched: Touched,
    /// A PostgreSQL claim transaction: no write lock, so it must not append to the chain.
    pub(super) unlocked: bool,
    committed: Option<Arc<Notify>>,
    /// Told after a commit that enqueued deliveries: wakes the dispatcher.
    ready: Arc<Notify>,
    pub(super) enqueued: bool,
    /// Told after a commit that scheduled timers: wakes the scheduler.
    timers: Arc<Notify>,
    pub(super) timers_scheduled: bool,
}

/// Expand `$body` once per backend with `$c` the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $c:ident, $pg:ident => $body:expr) => {
        match &mut $tx.inner {
            Inner::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection =
                    &mut t.as_mut().expect("a write transaction in use is open").conn;
                let $pg = false;
                let _ = $pg;
                $body
            }
            Inner::Postgres(t) => {
                let $c: &mut sqlx::PgConnection =
                    &mut *t.as_mut().expect("a write transaction in use is open");
                let $pg = true;
                let _ = $pg;
                $body
            }
        }
    };
}
pub(super) use on_tx;

/// An audit event before it has an id and a place in the chain. `data` is its JSON, serialised
/// once: the chain hashes exactly the text that is stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: &'static str,
    pub incident_id: Option<i64>,
    pub data: String,
}

impl NewEvent {
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        kind: &'static str,
        incident_id: Option<i64>,
        data: &impl Serialize,
    ) -> Self {
        NewEvent {
            at,
            actor: actor.into(),
            kind,
            incident_id,
            data: serde_json::to_string(data).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// An alert's stored content, ready to insert once it has an id (`detail` is its JSON).
#[derive(Debug, Clone)]
pub struct NewAlertRow {
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
    pub hash: String,
}

/// An alert row with the id and incident the writer gave it.
#[derive(Debug, Clone, Copy)]
pub struct AlertInsert<'a> {
    pub id: i64,
    pub incident_id: Option<i64>,
    /// The silence that silenced it (then `incident_id` is `None`).
    pub silence_id: Option<i64>,
    pub row: &'a NewAlertRow,
}

struct EventOut<'a> {
    mac: Option<String>,
    id: i64,
    at: i64,
    actor: &'a str,
    kind: &'a str,
    incident_id: Option<i64>,
    data: &'a str,
    prev_hash: String,
    hash: String,
}

/// Rows per multi-row INSERT at most; batches are cut into chunks of 1024, 512, … 1 rows, so a
/// handful of prepared statements serve every batch size.
const MAX_CHUNK: usize = 1024;

/// The multi-row INSERT statements of one table, built once per chunk size and dialect, and
/// the one-row statement the SQLite writer steps per row.
///
/// SQLite gets anonymous `?` parameters: with numbered ones, binding costs SQLite a name lookup
/// per parameter that is linear in the parameter count (quadratic per statement).
pub(super) struct BulkInsert {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    sqlite: OnceLock<Vec<String>>,
    postgres: OnceLock<Vec<String>>,
    /// The one-row SQLite statement [`insert_chunks`] steps per row.
    sqlite_row: OnceLock<String>,
}

impl BulkInsert {
    pub(super) const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        BulkInsert {
            head,
            columns,
            tail,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
            sqlite_row: OnceLock::new(),
        }
    }

    /// The statement for `rows` rows (a power of two up to [`MAX_CHUNK`]).
    pub(super) fn statement(&'static self, rows: usize, pg: bool) -> &'static str {
        debug_assert!(rows.is_power_of_two() && rows <= MAX_CHUNK);
        let cache = if pg { &self.postgres } else { &self.sqlite };
        let all = cache.get_or_init(|| {
            (0..=MAX_CHUNK.trailing_zeros())
                .map(|k| self.build(1 << k, pg))
                .collect()
        });
        &all[rows.trailing_zeros() as usize]
    }

    /// The one-row SQLite statement, without building the multi-row ones.
    pub(super) fn sqlite_row(&'static self) -> &'static str {
        self.sqlite_row.get_or_init(|| self.build(1, false))
    }

    fn build(&self, rows: usize, pg: bool) -> String {
        let mut sql = String::from(self.head);
        let mut p = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { " VALUES (" } else { ", (" });
            for col in 0..self.columns {
                p += 1;
                if col > 0 {
                    sql.push_str(", ");
                }
                if pg {
                    sql.push('$');
                    sql.push_str(&p.to_string());
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

/// (offset, length) chunks covering `n` rows: as many of [`MAX_CHUNK`] as fit, then powers of two.
pub(super) fn chunks(n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < n {
        let left = n - at;
        let len = if left >= MAX_CHUNK {
            MAX_CHUNK
        } else {
            1 << left.ilog2()
        };
        out.push((at, len));
        at += len;
    }
    out
}

static INSERT_INCIDENTS: BulkInsert = BulkInsert::new(
    concat!("INSERT INTO incidents (", incident_columns!(), ")"),
    28,
    "",
);
static INSERT_INCIDENT_KEYS: BulkInsert = BulkInsert::new(
    "INSERT INTO incident_keys (group_key, incident_id)",
    2,
    " ON CONFLICT DO NOTHING",
);
static INSERT_ALERTS: BulkInsert = BulkInsert::new(
    "INSERT INTO alerts (id, dedup_key, source, status, fingerprint, group_key, title, detail, \
     occurred_at, ends_at, received_at, category, severity, rule, incident_id, hash, silence_id)",
    17,
    "",
);
static INSERT_EVENTS: BulkInsert = BulkInsert::new(
    "INSERT INTO events (id, at, actor, kind, incident_id, data, prev_hash, hash, mac)",
    9,
    "",
);

/// Which table's next id to compute.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Incidents,
    Alerts,
}

pub(super) fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Insert `$rows` with the bulk statement `$stmt`, binding each row with `$bind` (inside
/// [`on_tx!`], whose `$c` and `$pg` it takes); `$bind` is written once and serves both
/// backends. SQLite steps one prepared one-row statement per row on the locked connection
/// handle ([`super::raw`]); PostgreSQL gets multi-row statements, chunk by chunk.
macro_rules! insert_chunks {
    ($c:ident, $pg:ident, $stmt:expr, $rows:expr, |$q:ident, $r:pat_param| $bind:expr) => {
        if $rows.is_empty() {
        } else if let Some(lite) = super::raw::AsSqlite::as_sqlite(&mut *$c) {
            let mut handle = lite.lock_handle().await?;
            let mut stmt = super::raw::Stmt::prepare(&mut handle, $stmt.sqlite_row())?;
            for $r in $rows.iter() {
                let $q = stmt.row();
                let row = $bind;
                row.exec()?;
            }
        } else {
            for (at, n) in chunks($rows.len()) {
                let mut $q = sqlx::query($stmt.statement(n, $pg));
                for $r in &$rows[at..at + n] {
                    $q = $bind;
                }
                $q.execute(&mut *$c).await?;
            }
        }
    };
}
pub(super) use insert_chunks;

impl WriteTx {
    /// `committed` is told after every commit (the SQLite checkpointer listens).
    pub(super) fn sqlite(
        conn: OwnedMutexGuard<WriterConn>,
        committed: Arc<Notify>,
        ready: Arc<Notify>,
        timers: Arc<Notify>,
        audit_key: Option<Arc<AuditKey>>,
    ) -> Self {
        WriteTx {
            inner: Inner::Sqlite(Some(conn)),
            head: None,
            audit_key,
            touched: Touched::new(),
            unlocked: false,
            committed: Some(committed),
            ready,
            enqueued: false,
            timers,
            timers_scheduled: false,
        }
    }

    pub(super) fn postgres(
        tx: Transaction<'static, Postgres>,
        ready: Arc<Notify>,
        timers: Arc<Notify>,
        audit_key: Option<Arc<AuditKey>>,
    ) -> Self {
        WriteTx {
            inner: Inner::Postgres(Some(tx)),
            head: None,
            audit_key,
            touched: Touched::new(),
            unlocked: false,
            committed: None,
            ready,
            enqueued: false,
            timers,
            timers_scheduled: false,
        }
    }

    /// Commit. On failure `self` drops with the transaction still open, and `Drop` rolls
    /// it back.
    pub async fn commit(mut self) -> Result<()> {
        self.seal_touched().await?;
        match &mut self.inner {
            Inner::Sqlite(w) => {
                if let Some(g) = w.as_mut() {
                    sqlx::query("COMMIT").execute(&mut g.conn).await?;
                    g.in_tx = false;
                }
                w.take();
            }
            Inner::Postgres(t) => {
                if let Some(t) = t.take() {
                    t.commit().await?;
                }
            }
        }
        if let Some(n) = &self.committed {
            n.notify_one();
        }
        if self.enqueued {
            self.ready.notify_one();
        }
        if self.timers_scheduled {
            self.timers.notify_one();
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
        let rows: Vec<IncidentOut<'_>> = incidents.iter().map(IncidentOut::from).collect();
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, INSERT_INCIDENTS, rows, |q, r| {
                q
                    .bind(r.id)
                    .bind(r.title)
                    .bind(r.summary)
                    .bind(r.category)
                    .bind(r.severity)
                    .bind(r.status)
                    .bind(r.drill)
                    .bind(r.origin)
                    .bind(r.rule)
                    .bind(&r.facts)
                    .bind(r.facts_version)
                    .bind(r.first_seen_at)
                    .bind(r.discovered_at)
                    .bind(r.declared_at)
                    .bind(r.aware_at)
                    .bind(r.contained_at)
                    .bind(r.closed_at)
                    .bind(r.updated_at)
                    .bind(r.alert_count)
                    .bind(r.truncated_alerts)
                    .bind(r.created_by)
                    .bind(r.assessed_notifiable_at)
                    .bind(r.handling_closed_at)
                    .bind(r.alerts_firing)
                    .bind(r.alerts_resolved)
                    .bind(r.merged_into)
                    .bind(r.intake)
                    .bind(r.storm)
            });
        });
        self.touch_all(Sealed::Incidents, incidents.iter().map(|i| i.id));
        Ok(())
    }

    /// Write back an incident that was `before`: as [`WriteTx::update_incident`], sealing it
    /// anew only when a sealed column changed (an alert joining changes counters only).
    pub async fn update_incident_from(&mut self, before: &Incident, i: &Incident) -> Result<()> {
        let sealed_changed = {
            let mut b = before.clone();
            b.updated_at = i.updated_at;
            b.alert_count = i.alert_count;
            b.alerts_firing = i.alerts_firing;
            b.alerts_resolved = i.alerts_resolved;
            b.truncated_alerts = i.truncated_alerts;
            b.intake.clone_from(&i.intake);
            b.storm = i.storm;
            b != *i
        };
        let touched = self
            .touched
            .get(&Sealed::Incidents)
            .is_some_and(|t| t.contains(&i.id));
        self.update_incident(i).await?;
        if !sealed_changed
            && !touched
            && let Some(t) = self.touched.get_mut(&Sealed::Incidents)
        {
            t.remove(&i.id);
        }
        Ok(())
    }

    /// Write back an incident's mutable columns.
    pub async fn update_incident(&mut self, i: &Incident) -> Result<()> {
        let r = IncidentOut::from(i);
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE incidents SET title = $2, summary = $3, category = $4, severity = $5, status = $6, \
                 rule = $7, facts = $8, facts_version = $9, discovered_at = $10, declared_at = $11, aware_at = $12, \
                 contained_at = $13, closed_at = $14, updated_at = $15, alert_count = $16, truncated_alerts = $17, \
                 assessed_notifiable_at = $18, handling_closed_at = $19, alerts_firing = $20, alerts_resolved = $21, \
                 merged_into = $22, storm = $23 WHERE id = $1",
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
            .bind(r.assessed_notifiable_at)
            .bind(r.handling_closed_at)
            .bind(r.alerts_firing)
            .bind(r.alerts_resolved)
            .bind(r.merged_into)
            .bind(r.storm)
            .execute(&mut *c)
            .await?;
        });
        self.touch(Sealed::Incidents, i.id);
        Ok(())
    }

    pub async fn insert_incident_keys(&mut self, keys: &[(&str, i64)]) -> Result<()> {
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, INSERT_INCIDENT_KEYS, keys, |q, (key, id)| {
                q.bind(*key).bind(*id)
            });
        });
        Ok(())
    }

    pub async fn insert_alerts(&mut self, rows: &[AlertInsert<'_>]) -> Result<()> {
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, INSERT_ALERTS, rows, |q, AlertInsert { id, incident_id, silence_id, row: r }| {
                q
                    .bind(*id)
                    .bind(&r.dedup_key)
                    .bind(&r.source)
                    .bind(r.status)
                    .bind(&r.fingerprint)
                    .bind(&r.group_key)
                    .bind(&r.title)
                    .bind(&r.detail)
                    .bind(r.occurred_at)
                    .bind(r.ends_at)
                    .bind(r.received_at)
                    .bind(r.category)
                    .bind(r.severity)
                    .bind(&r.rule)
                    .bind(*incident_id)
                    .bind(&r.hash)
                    .bind(*silence_id)
            });
        });
        Ok(())
    }

    /// The audit chain's head as a lookup already read it (saves [`WriteTx::append`] a query).
    pub(super) fn set_head(&mut self, head: (i64, String)) {
        self.head = Some(head);
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
        if self.unlocked {
            return Err(super::StoreError::Failed(
                "an audit event was written in a transaction without the write lock (a bug)".into(),
            ));
        }
        let (mut id, mut prev) = self.head().await?;
        let mut rows = Vec::with_capacity(events.len());
        let mut ids = Vec::with_capacity(events.len());
        for e in events {
            id += 1;
            let at = to_micros(e.at);
            let hash = event_hash(
                &prev,
                EventContent {
                    id,
                    at_micros: at,
                    actor: &e.actor,
                    kind: e.kind,
                    incident_id: e.incident_id,
                    data: &e.data,
                },
            );
            let mac = self.audit_key.as_deref().map(|k| event_mac(k, &hash));
            rows.push(EventOut {
                mac,
                id,
                at,
                actor: &e.actor,
                kind: e.kind,
                incident_id: e.incident_id,
                data: &e.data,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
            ids.push(id);
        }
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, INSERT_EVENTS, rows, |q, r| {
                q
                    .bind(r.id)
                    .bind(r.at)
                    .bind(r.actor)
                    .bind(r.kind)
                    .bind(r.incident_id)
                    .bind(r.data)
                    .bind(&r.prev_hash)
                    .bind(&r.hash)
                    .bind(&r.mac)
            });
        });
        self.head = Some((id, prev));
        Ok(ids)
    }
}

impl Drop for WriteTx {
    /// A transaction dropped without commit (an error, a cancelled request) is rolled back now,
    /// so it does not hold SQLite's write lock until the next write. PostgreSQL's
    /// `Transaction` does the same by itself.
    fn drop(&mut self) {
        if let Inner::Sqlite(w) = &mut self.inner
            && let Some(mut w) = w.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                // If this fails too, the next `begin` tries again.
                let _ = w.rollback_if_open().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_with_few_sizes() {
        for n in [0, 1, 2, 3, 127, 128, 129, 300, 5000] {
            let c = chunks(n);
            assert_eq!(c.iter().map(|(_, l)| l).sum::<usize>(), n);
            let mut at = 0;
            for (o, l) in &c {
                assert_eq!(*o, at);
                assert!(l.is_power_of_two() && *l <= MAX_CHUNK);
                at += l;
            }
        }
        assert_eq!(chunks(300), vec![(0, 256), (256, 32), (288, 8), (296, 4)]);
        assert_eq!(
            chunks(2100),
            vec![(0, 1024), (1024, 1024), (2048, 32), (2080, 16), (2096, 4)]
        );
    }

    #[test]
    fn statements_number_their_parameters() {
        assert_eq!(
            INSERT_INCIDENT_KEYS.statement(2, true),
            "INSERT INTO incident_keys (group_key, incident_id) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            INSERT_INCIDENT_KEYS.statement(2, false),
            "INSERT INTO incident_keys (group_key, incident_id) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert!(INSERT_ALERTS.statement(128, true).ends_with("$2176)"));
        assert_eq!(
            INSERT_INCIDENT_KEYS.sqlite_row(),
            "INSERT INTO incident_keys (group_key, incident_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
        );
    }
}
