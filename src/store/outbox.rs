//! The delivery outbox and the in-site inbox.
//!
//! Enqueueing is a [`WriteTx`] operation, so a delivery commits (or not) together with the
//! state change and audit event that caused it. Claims and outcomes are the dispatcher's:
//! a claim marks due rows `sending` and sets `next_attempt_at` to the end of its lease, so a
//! claim whose claimer died is simply due again once the lease ends. An outcome is written only
//! if the row is still held by the same claim (`status = 'sending'` and the same attempt
//! number), so a claimer that lost its lease cannot overwrite the newer claim's result.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::seals::Sealed;
use super::write::{BulkInsert, Inner, chunks, insert_chunks, json, on_tx};
use super::{Result, Store, StoreError, WriteTx, on_pool};
use crate::domain::message::{ChannelKind, Content, Outgoing, Purpose};
use crate::domain::string_enum;

/// Where to try next if a delivery dies: another channel, its own address, its own words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackTarget {
    pub channel: ChannelKind,
    pub recipient: String,
    pub content: Content,
}

/// A delivery to enqueue. Recipients must already be validated
/// ([`crate::domain::message::validate_recipient`]).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Unique per message: enqueueing the same key twice makes one row.
    pub idempotency_key: String,
    pub incident_id: Option<i64>,
    pub purpose: Purpose,
    pub channel: ChannelKind,
    pub recipient: String,
    pub locale: String,
    pub content: Content,
    pub fallback: Vec<FallbackTarget>,
    /// The delivery whose death this one replaces.
    pub fallback_of: Option<i64>,
}

/// A delivery the dispatcher holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub idempotency_key: String,
    pub incident_id: Option<i64>,
    pub drill: bool,
    pub purpose: Purpose,
    pub channel: ChannelKind,
    pub recipient: String,
    pub locale: String,
    pub content: Content,
    pub fallback: Vec<FallbackTarget>,
    /// This claim's attempt number (1 for the first).
    pub attempts: i32,
}

impl Claimed {
    pub fn outgoing(&self) -> Outgoing {
        Outgoing {
            delivery_id: self.id,
            idempotency_key: self.idempotency_key.clone(),
            incident_id: self.incident_id,
            purpose: self.purpose,
            channel: self.channel,
            recipient: self.recipient.clone(),
            locale: self.locale.clone(),
            content: self.content.clone(),
        }
    }
}

/// The columns a [`DeliveryView`] is read from, as a literal for `concat!`.
macro_rules! delivery_view_columns {
    () => {
        "id, incident_id, purpose, channel, recipient, locale, status, attempts, created_at, \
         next_attempt_at, sent_at, provider, provider_message_id, last_error, fallback_of, coalesced_into"
    };
}
pub(super) use delivery_view_columns;

string_enum! {
    /// Delivery states.
    DeliveryStatus {
        Pending => "pending",
        Sending => "sending",
        Sent => "sent",
        /// The last attempt failed; another is due at `next_attempt_at`.
        Failed => "failed",
        /// No more attempts.
        Dead => "dead",
    } what = "a delivery status"
}

/// How one claimed attempt ended, to record.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: i64,
    /// The claim's attempt number: the outcome applies only if the row is still that claim's.
    pub attempts: i32,
    pub status: DeliveryStatus,
    /// When the next attempt is due (`failed`), else now.
    pub next: i64,
    pub sent_at: Option<i64>,
    pub provider: Option<String>,
    pub mid: Option<String>,
    pub error: Option<String>,
}

/// A delivery as listings show it (recipient masked).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub purpose: String,
    pub channel: String,
    pub recipient: String,
    pub locale: String,
    pub status: String,
    pub attempts: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub next_attempt_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub sent_at: Option<i64>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub fallback_of: Option<i64>,
    /// A page coalesced into a digest: the digest's delivery id. Pending until the digest's
    /// outcome, then sent or dead with it.
    pub coalesced_into: Option<i64>,
}

/// Filters for listing deliveries; newest first, paged by `before`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub id: Option<i64>,
    pub incident_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub channel: Option<ChannelKind>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// An in-site notice as the host site reads it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InboxNotice {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub locale: String,
    pub subject: Option<String>,
    pub body: String,
    /// JSON text of the notice's structured data, if any.
    pub data: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub read_at: Option<i64>,
}

static INSERT_DELIVERIES: BulkInsert = BulkInsert::new(
    "INSERT INTO deliveries (idempotency_key, incident_id, drill, purpose, channel, recipient, \
     locale, content, fallback, fallback_of, created_at, next_attempt_at, updated_at)",
    13,
    " ON CONFLICT (idempotency_key) DO NOTHING",
);

type ClaimRow = (
    i64,
    String,
    Option<i64>,
    bool,
    String,
    String,
    String,
    String,
    String,
    String,
    i32,
);

fn claimed(r: ClaimRow) -> Result<Claimed> {
    let (
        id,
        key,
        incident_id,
        drill,
        purpose,
        channel,
        recipient,
        locale,
        content,
        fallback,
        attempts,
    ) = r;
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Failed(format!("delivery {id}: stored {what} is unreadable: {e}"))
    };
    Ok(Claimed {
        id,
        idempotency_key: key,
        incident_id,
        drill,
        purpose: Purpose::parse(&purpose).ok_or_else(|| bad("purpose", &purpose))?,
        channel: channel.parse().map_err(|e: String| bad("channel", &e))?,
        recipient,
        locale,
        content: serde_json::from_str(&content).map_err(|e| bad("content", &e))?,
        fallback: serde_json::from_str(&fallback).map_err(|e| bad("fallback", &e))?,
        attempts,
    })
}

/// The claim statement: due rows (only pages, with `$page`) marked `sending` until the lease
/// ends, oldest first; `$lock` is PostgreSQL's `FOR UPDATE SKIP LOCKED`.
macro_rules! claim_sql {
    ($page:literal, $lock:literal) => {
        concat!(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1, updated_at = $2 ",
            "WHERE id IN (SELECT id FROM deliveries WHERE status IN ('pending', 'failed', 'sending') ",
            // Pages held for a digest go out in it, never by themselves (store::paging).
            "AND coalesced_into IS NULL ",
            $page,
            " AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3 ",
            $lock,
            ") RETURNING id, idempotency_key, incident_id, drill, purpose, channel, recipient, locale, content, fallback, attempts"
        )
    };
}

impl WriteTx {
    /// Enqueue deliveries in this transaction. A key already present keeps its row. Returns
    /// each delivery's id, in order. A delivery of a drill incident is marked as a drill here,
    /// from the incident row, whatever the caller says.
    pub async fn enqueue_deliveries(
        &mut self,
        items: &[NewDelivery],
        now: i64,
    ) -> Result<Vec<i64>> {
        self.enqueue(items, now, true).await
    }

    /// [`WriteTx::enqueue_deliveries`] without reading the ids back (for bulk enqueues whose
    /// callers do not need them: a notice campaign's thousands per batch).
    pub async fn enqueue_deliveries_quietly(
        &mut self,
        items: &[NewDelivery],
        now: i64,
    ) -> Result<()> {
        self.enqueue(items, now, false).await.map(|_| ())
    }

    async fn enqueue(&mut self, items: &[NewDelivery], now: i64, ids: bool) -> Result<Vec<i64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut incident_ids: Vec<i64> = items.iter().filter_map(|d| d.incident_id).collect();
        incident_ids.sort_unstable();
        incident_ids.dedup();
        let drills: HashMap<i64, bool> = if incident_ids.is_empty() {
            HashMap::new()
        } else {
            let rows: Vec<(i64, bool)> = on_tx!(self, c, pg => {
                let sql = if pg {
                    "SELECT id, drill FROM incidents WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
                } else {
                    "SELECT id, drill FROM incidents WHERE id IN (SELECT value FROM json_each($1))"
                };
                sqlx::query_as(sql).bind(json(&incident_ids)).fetch_all(&mut *c).await?
            });
            rows.into_iter().collect()
        };
        if let Some(missing) = incident_ids.iter().find(|i| !drills.contains_key(i)) {
            return Err(StoreError::Failed(format!(
                "cannot enqueue a delivery for incident {missing}: no such incident"
            )));
        }
        struct Row<'a> {
            d: &'a NewDelivery,
            drill: bool,
            content: String,
            fallback: String,
        }
        let rows: Vec<Row<'_>> = items
            .iter()
            .map(|d| Row {
                d,
                drill: d
                    .incident_id
                    .is_some_and(|i| drills.get(&i).copied().unwrap_or(false))
                    || d.purpose == Purpose::Drill,
                content: json(&d.content),
                fallback: json(&d.fallback),
            })
            .collect();
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, INSERT_DELIVERIES, rows, |q, r| {
                q.bind(&r.d.idempotency_key)
                    .bind(r.d.incident_id)
                    .bind(r.drill)
                    .bind(r.d.purpose.as_str())
                    .bind(r.d.channel.as_str())
                    .bind(&r.d.recipient)
                    .bind(&r.d.locale)
                    .bind(&r.content)
                    .bind(&r.fallback)
                    .bind(r.d.fallback_of)
                    .bind(now)
                    .bind(now)
                    .bind(now)
            });
        });
        self.enqueued = true;
        let keys: Vec<&str> = items.iter().map(|d| d.idempotency_key.as_str()).collect();
        let found: Vec<(String, i64)> = on_tx!(self, c, pg => {
            let sql = if pg {
                "SELECT idempotency_key, id FROM deliveries WHERE idempotency_key IN (SELECT jsonb_array_elements_text($1::jsonb))"
            } else {
                "SELECT idempotency_key, id FROM deliveries WHERE idempotency_key IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(json(&keys)).fetch_all(&mut *c).await?
        });
        self.touch_all(Sealed::Deliveries, found.iter().map(|(_, id)| *id));
        if !ids {
            return Ok(Vec::new());
        }
        let found: HashMap<String, i64> = found.into_iter().collect();
        keys.iter()
            .map(|k| {
                found.get(*k).copied().ok_or_else(|| {
                    StoreError::Failed(format!("delivery `{k}` vanished while enqueueing"))
                })
            })
            .collect()
    }

    /// Let a drill incident reach these (channel, recipient) pairs.
    pub async fn allow_drill_recipients(
        &mut self,
        incident_id: i64,
        recipients: &[(ChannelKind, String)],
    ) -> Result<()> {
        for (channel, recipient) in recipients {
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "INSERT INTO drill_recipients (incident_id, channel, recipient) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(incident_id)
                .bind(channel.as_str())
                .bind(recipient)
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// Claim up to `limit` due deliveries until `lease_until`, pages to responders first.
    ///
    /// A row whose claims keep running out (its sender crashed or hung each time) is not
    /// claimed past `max_attempts`: it dies here. A row that cannot be read (written by a newer
    /// version, say) dies here too, with the reason, instead of blocking every claim after it.
    pub async fn claim_deliveries(
        &mut self,
        now: i64,
        lease_until: i64,
        limit: i64,
        max_attempts: i32,
    ) -> Result<Vec<Claimed>> {
        let mut rows: Vec<ClaimRow> = Vec::new();
        for pages in [true, false] {
            let want = limit - rows.len() as i64;
            if want <= 0 {
                break;
            }
            let got: Vec<ClaimRow> = on_tx!(self, c, pg => {
                let sql = match (pg, pages) {
                    (true, true) => claim_sql!("AND purpose = 'page'", "FOR UPDATE SKIP LOCKED"),
                    (true, false) => claim_sql!("", "FOR UPDATE SKIP LOCKED"),
                    (false, true) => claim_sql!("AND purpose = 'page'", ""),
                    (false, false) => claim_sql!("", ""),
                };
                sqlx::query_as(sql).bind(lease_until).bind(now).bind(want).fetch_all(&mut *c).await?
            });
            rows.extend(got);
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut dead: Vec<(i64, String, String)> = Vec::new();
        for r in rows {
            let (id, attempts, key) = (r.0, r.10, r.1.clone());
            if attempts > max_attempts {
                dead.push((
                    id,
                    key,
                    format!(
                        "gave up after {} claims: its sender stopped (crashed, or held it past the lease) each time",
                        attempts - 1
                    ),
                ));
                continue;
            }
            match claimed(r) {
                Ok(c) => out.push(c),
                Err(e) => dead.push((id, key, e.to_string())),
            }
        }
        for (id, _, error) in &dead {
            tracing::warn!(delivery = id, %error, "delivery dies at claim");
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'dead', last_error = $2, next_attempt_at = $3, updated_at = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(error)
                .bind(now)
                .execute(&mut *c)
                .await?;
            });
        }
        if !dead.is_empty() {
            // A digest's held pages die with it; a dead page escalates (store::paging).
            self.after_deaths_at_claim(&dead, now).await?;
        }
        Ok(out)
    }

    /// Record outcomes; returns the (id, attempt) claims that still held (the others were taken
    /// over after their lease ended, and the newer claim's outcome counts).
    pub async fn record_outcomes(
        &mut self,
        outcomes: &[Outcome],
        now: i64,
    ) -> Result<HashSet<(i64, i32)>> {
        if outcomes.is_empty() {
            return Ok(HashSet::new());
        }
        let mut applied = HashSet::new();
        for (at, n) in chunks(outcomes.len()) {
            let part = json(&outcomes[at..at + n]);
            let ids: Vec<(i64, i32)> = on_tx!(self, c, pg => {
                let sql = if pg {
                    "UPDATE deliveries AS d SET status = j.status, next_attempt_at = j.next, sent_at = j.sent_at, \
                     provider = j.provider, provider_message_id = j.mid, last_error = j.error, updated_at = $2 \
                     FROM jsonb_to_recordset($1::jsonb) AS j(id bigint, attempts int, status text, next bigint, \
                     sent_at bigint, provider text, mid text, error text) \
                     WHERE d.id = j.id AND d.status = 'sending' AND d.attempts = j.attempts RETURNING d.id, d.attempts"
                } else {
                    "UPDATE deliveries SET status = j.value ->> 'status', next_attempt_at = j.value ->> 'next', \
                     sent_at = j.value ->> 'sent_at', provider = j.value ->> 'provider', \
                     provider_message_id = j.value ->> 'mid', last_error = j.value ->> 'error', updated_at = $2 \
                     FROM json_each($1) AS j \
                     WHERE deliveries.id = j.value ->> 'id' AND deliveries.status = 'sending' \
                     AND deliveries.attempts = j.value ->> 'attempts' RETURNING deliveries.id, deliveries.attempts"
                };
                sqlx::query_as(sql).bind(part).bind(now).fetch_all(&mut *c).await?
            });
            applied.extend(ids);
        }
        Ok(applied)
    }

    /// Give back claims not sent (shutdown): due again at once, the attempt not counted.
    pub async fn release_claims(&mut self, claims: &[(i64, i32)], now: i64) -> Result<()> {
        for (id, attempts) in claims {
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "UPDATE deliveries SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END, \
                     attempts = attempts - 1, next_attempt_at = $3, updated_at = $3 \
                     WHERE id = $1 AND status = 'sending' AND attempts = $2",
                )
                .bind(id)
                .bind(attempts)
                .bind(now)
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }
}

impl Store {
    /// Told whenever a commit enqueued deliveries (in this process).
    pub fn deliveries_ready(&self) -> Arc<Notify> {
        match self {
            Store::Sqlite(s) => s.ready.clone(),
            Store::Postgres(s) => s.ready.clone(),
        }
    }

    /// A transaction for claiming deliveries: SQLite's writer, or on PostgreSQL a plain
    /// transaction (row locks with SKIP LOCKED, no global write lock).
    pub async fn begin_claim(&self) -> Result<WriteTx> {
        match self {
            Store::Sqlite(s) => s.begin_write().await,
            Store::Postgres(s) => s.begin_claim().await,
        }
    }

    /// The (incident, channel, recipient) pairs drills among `incident_ids` may reach.
    pub async fn drill_allowed(
        &self,
        incident_ids: &[i64],
    ) -> Result<HashSet<(i64, String, String)>> {
        if incident_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<(i64, String, String)> = on_pool!(self, pool, pg => {
            let sql = if pg {
                "SELECT incident_id, channel, recipient FROM drill_recipients WHERE incident_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
            } else {
                "SELECT incident_id, channel, recipient FROM drill_recipients WHERE incident_id IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(json(incident_ids)).fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// The earliest `next_attempt_at` of a delivery waiting for a retry or a lease to end.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>> {
        let (t,): (Option<i64>,) = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'failed', 'sending')")
                .fetch_one(pool)
                .await?
        });
        Ok(t)
    }

    /// Deliveries waiting to be sent, and when the oldest of them was enqueued.
    pub async fn delivery_queue(&self) -> Result<(i64, Option<i64>)> {
        let row: (i64, Option<i64>) = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status IN ('pending', 'failed')")
                .fetch_one(pool)
                .await?
        });
        Ok(row)
    }

    pub async fn deliveries(&self, f: &DeliveryFilter) -> Result<Vec<DeliveryView>> {
        let rows: Vec<DeliveryView> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!(
                "SELECT ", delivery_view_columns!(), " FROM deliveries \
                 WHERE ($1 IS NULL OR incident_id = $1) AND ($2 IS NULL OR status = $2) \
                 AND ($3 IS NULL OR channel = $3) AND ($4 IS NULL OR id < $4) AND ($6 IS NULL OR id = $6) \
                 ORDER BY id DESC LIMIT $5",
            ))
            .bind(f.incident_id)
            .bind(f.status.map(DeliveryStatus::as_str))
            .bind(f.channel.map(ChannelKind::as_str))
            .bind(f.before)
            .bind(f.limit)
            .bind(f.id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|mut d| {
                if let Ok(k) = d.channel.parse::<ChannelKind>() {
                    d.recipient = crate::domain::message::mask(k, &d.recipient);
                }
                d
            })
            .collect())
    }

    /// Counts of one incident's deliveries by (channel, status).
    pub async fn delivery_counts(&self, incident_id: i64) -> Result<Vec<(String, String, i64)>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT channel, status, COUNT(*) FROM deliveries WHERE incident_id = $1 \
                 GROUP BY channel, status ORDER BY channel, status",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Keep an in-site notice for the inbox channel; returns its id. Idempotent per delivery,
    /// so a resend after a crash does not show the notice twice.
    pub async fn put_inbox_notice(&self, msg: &Outgoing) -> Result<i64> {
        let now = crate::domain::time::to_micros(chrono::Utc::now());
        let data = msg.content.data.as_ref().map(|d| d.to_string());
        let mut tx = self.begin_write().await?;
        let id: (i64,) = on_tx!(tx, c, _pg => {
            sqlx::query(
                "INSERT INTO inbox_notices (site_user_id, delivery_id, incident_id, locale, subject, body, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (delivery_id) DO NOTHING",
            )
            .bind(&msg.recipient)
            .bind(msg.delivery_id)
            .bind(msg.incident_id)
            .bind(&msg.locale)
            .bind(&msg.content.subject)
            .bind(&msg.content.text)
            .bind(&data)
            .bind(now)
            .execute(&mut *c)
            .await?;
            sqlx::query_as("SELECT id FROM inbox_notices WHERE delivery_id = $1")
                .bind(msg.delivery_id)
                .fetch_one(&mut *c)
                .await?
        });
        tx.commit().await?;
        Ok(id.0)
    }

    /// A site user's notices, newest first.
    pub async fn inbox(
        &self,
        site_user_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InboxNotice>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, incident_id, locale, subject, body, data, created_at, read_at FROM inbox_notices \
                 WHERE site_user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            )
            .bind(site_user_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Mark a notice read (idempotent). `false` if the user has no such notice.
    pub async fn inbox_mark_read(&self, site_user_id: &str, id: i64) -> Result<bool> {
        let now = crate::domain::time::to_micros(chrono::Utc::now());
        let mut tx = self.begin_write().await?;
        let n = on_tx!(tx, c, _pg => {
            sqlx::query(
                "UPDATE inbox_notices SET read_at = COALESCE(read_at, $3) WHERE site_user_id = $1 AND id = $2",
            )
            .bind(site_user_id)
            .bind(id)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(n > 0)
    }
}
