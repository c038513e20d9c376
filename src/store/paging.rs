//! Paging in the outbox: coalescing pages to one person into a digest, and the family of
//! deliveries one page is made of (its channels and their fallbacks), for dead-page escalation.
//!
//! A page to a (channel, recipient) with coalescing on either goes out at once and opens a
//! window of `window` microseconds, or — when it comes within the window after another page
//! to them — is *held*: written `pending` with `coalesced_into` naming a digest delivery due at
//! the window's end, and never claimed by itself ([`WriteTx::claim_deliveries`] skips held
//! rows). A digest that went out opens the next window, so a person gets at most one message
//! per channel per window however long the storm lasts.
//!
//! Everything here runs in a write transaction (the writer lock on PostgreSQL, the single
//! writer on SQLite), so two instances never place pages against the same window at once. The
//! only race left is with a claim (which does not take the write lock): a page is held in a
//! digest only after locking that digest row while it is still `pending`
//! ([`WriteTx::hold_or_send`]); a digest already claimed is never added to, so it lists every
//! page it carries.

use super::seals::Sealed;
use super::write::{Inner, json, on_tx};
use super::{NewDelivery, Result, StoreError, WriteTx};
use crate::domain::message::{ChannelKind, Purpose};

/// Idempotency keys of digests start with this.
pub const DIGEST_KEY_PREFIX: &str = "coalesce:";

/// Where a page went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Its key was already in the outbox: nothing written.
    Exists(i64),
    /// Enqueued to go out at once.
    Now(i64),
    /// Held for `digest`, due at `due`. `new_digest`: this page started the digest.
    Held {
        id: i64,
        digest: i64,
        due: i64,
        new_digest: bool,
    },
}

/// What the window state says about a page at `now` (pure: the rules in one place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Send at once; the window now ends at `end`.
    Now { end: i64 },
    /// Hold for the digest due at `end` (`digest`, when one exists already).
    Hold { end: i64, digest: Option<i64> },
}

/// `current`: the (channel, recipient)'s window end and digest, if it was ever paged.
pub fn place(now: i64, window: i64, current: Option<(i64, Option<i64>)>) -> Place {
    match current {
        Some((end, digest)) if now < end => Place::Hold { end, digest },
        // A digest went out (or goes out) at `end`: that opened the next window.
        Some((end, Some(_))) if now < end.saturating_add(window) => Place::Hold {
            end: end.saturating_add(window),
            digest: None,
        },
        _ => Place::Now {
            end: now.saturating_add(window),
        },
    }
}

/// One delivery of a page's family (see [`WriteTx::page_family`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PageDelivery {
    pub id: i64,
    pub idempotency_key: String,
    pub channel: String,
    pub status: String,
    pub last_error: Option<String>,
    pub coalesced_into: Option<i64>,
    /// JSON: the fallbacks still to try when this one dies.
    pub fallback: String,
}

/// A held page as the digest lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HeldPage {
    pub id: i64,
    pub incident_id: Option<i64>,
    /// JSON: the page's own content (its `data` says what the digest shows of it).
    pub content: String,
}

/// A held page whose digest's outcome it now shares.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ResolvedHeld {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub idempotency_key: String,
    pub channel: String,
}

/// The timer kind that looks at a page whose every channel died ([`WriteTx::schedule_dead_pages`]).
pub const PAGE_DEAD_TIMER: &str = "page.dead";

/// Who a page was for, from its key `page:{incident}:{department}:{level}:{member}:{channel}`
/// (a fallback's key adds `>{channel}`). Level 0 is a department lead paged because the top
/// level's page died.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageKey {
    pub incident: i64,
    pub department: String,
    pub level: u32,
    pub member: String,
}

impl PageKey {
    /// `None` for anything not a page of a department's member.
    pub fn parse(key: &str) -> Option<PageKey> {
        let base = key.split('>').next()?;
        let parts: Vec<&str> = base.split(':').collect();
        match parts.as_slice() {
            ["page", incident, department, level, member, channel]
                if channel.parse::<ChannelKind>().is_ok() && !department.is_empty() =>
            {
                Some(PageKey {
                    incident: incident.parse().ok()?,
                    department: department.to_string(),
                    level: level.parse().ok()?,
                    member: member.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The page's key on each channel it may have gone out on.
    pub fn channel_keys(&self) -> Vec<String> {
        ChannelKind::ALL
            .iter()
            .map(|c| {
                format!(
                    "page:{}:{}:{}:{}:{c}",
                    self.incident, self.department, self.level, self.member
                )
            })
            .collect()
    }

    /// The timer that escalates this page's death: one per page, whatever the channels.
    pub fn dead_timer(&self, now: i64) -> super::NewTimer {
        super::NewTimer {
            key: format!(
                "page.dead:{}:{}:{}:{}",
                self.incident, self.department, self.level, self.member
            ),
            kind: PAGE_DEAD_TIMER.to_string(),
            incident_id: Some(self.incident),
            due_at: now,
            payload: serde_json::json!({
                "department": self.department,
                "level": self.level,
                "member": self.member,
            }),
        }
    }
}

/// A digest's key: by channel, recipient (hashed: keys show up in logs) and window end.
pub fn digest_key(channel: ChannelKind, recipient: &str, end: i64) -> String {
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, recipient.as_bytes());
    format!(
        "{DIGEST_KEY_PREFIX}{channel}:{}:{end}",
        hex::encode(&h.as_ref()[..8])
    )
}

impl WriteTx {
    /// Enqueue one page with coalescing over `window` microseconds (see the module notes).
    /// `placeholder` is the digest's content until the caller renders it; the digest takes the
    /// page's locale. Pages of drills, and anything not a page, are enqueued as they are.
    pub async fn hold_or_send(
        &mut self,
        page: &NewDelivery,
        placeholder: &crate::domain::message::Content,
        now: i64,
        window: i64,
    ) -> Result<Placement> {
        if let Some(id) = self.delivery_id_by_key(&page.idempotency_key).await? {
            return Ok(Placement::Exists(id));
        }
        if page.purpose != Purpose::Page || window <= 0 || self.is_drill(page.incident_id).await? {
            let ids = self
                .enqueue_deliveries(std::slice::from_ref(page), now)
                .await?;
            return Ok(Placement::Now(ids[0]));
        }
        let current: Option<(i64, Option<i64>)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT window_end, digest_id FROM page_windows WHERE channel = $1 AND recipient = $2",
            )
            .bind(page.channel.as_str())
            .bind(&page.recipient)
            .fetch_optional(&mut *c)
            .await?
        });
        let (end, digest) = match place(now, window, current) {
            Place::Now { end } => {
                self.set_window(page.channel, &page.recipient, end, None)
                    .await?;
                let id = self.insert_page(page, now, now, None).await?;
                return Ok(Placement::Now(id));
            }
            Place::Hold { end, digest } => (end, digest),
        };
        // The current digest, if it is still pending (locked until this transaction ends, so
        // no claim takes it meanwhile); else the next window's.
        let (end, existing) = match digest {
            Some(d) if self.lock_pending(d, now).await? => (end, Some(d)),
            Some(_) => (end.saturating_add(window), None),
            None => (end, None),
        };
        let (digest, new_digest) = match existing {
            Some(d) => (d, false),
            None => {
                let key = digest_key(page.channel, &page.recipient, end);
                match self
                    .insert_digest(page, &key, placeholder, now, end)
                    .await?
                {
                    Some(d) => (d, true),
                    // Its key exists but it is not pending (cannot happen while windows are
                    // kept; if it does, the page is not held back behind a digest that left).
                    None => {
                        self.set_window(page.channel, &page.recipient, now + window, None)
                            .await?;
                        let id = self.insert_page(page, now, now, None).await?;
                        return Ok(Placement::Now(id));
                    }
                }
            }
        };
        self.set_window(page.channel, &page.recipient, end, Some(digest))
            .await?;
        let id = self.insert_page(page, now, end, Some(digest)).await?;
        Ok(Placement::Held {
            id,
            digest,
            due: end,
            new_digest,
        })
    }

    async fn delivery_id_by_key(&mut self, key: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT id FROM deliveries WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row.map(|r| r.0))
    }

    async fn is_drill(&mut self, incident_id: Option<i64>) -> Result<bool> {
        let Some(id) = incident_id else {
            return Ok(false);
        };
        let row: Option<(bool,)> = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT drill FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        match row {
            Some((d,)) => Ok(d),
            None => Err(StoreError::Failed(format!(
                "cannot enqueue a delivery for incident {id}: no such incident"
            ))),
        }
    }

    /// Lock a digest for adding to it, if it is still pending.
    async fn lock_pending(&mut self, id: i64, now: i64) -> Result<bool> {
        let row: Option<(i64,)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "UPDATE deliveries SET updated_at = $2 WHERE id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(row.is_some())
    }

    async fn set_window(
        &mut self,
        channel: ChannelKind,
        recipient: &str,
        end: i64,
        digest: Option<i64>,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO page_windows (channel, recipient, window_end, digest_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (channel, recipient) DO UPDATE SET window_end = excluded.window_end, \
                 digest_id = excluded.digest_id",
            )
            .bind(channel.as_str())
            .bind(recipient)
            .bind(end)
            .bind(digest)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    async fn insert_page(
        &mut self,
        d: &NewDelivery,
        now: i64,
        due: i64,
        digest: Option<i64>,
    ) -> Result<i64> {
        let (id,): (i64,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO deliveries (idempotency_key, incident_id, drill, purpose, channel, recipient, \
                 locale, content, fallback, fallback_of, created_at, next_attempt_at, updated_at, coalesced_into) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $13) RETURNING id",
            )
            .bind(&d.idempotency_key)
            .bind(d.incident_id)
            .bind(false)
            .bind(d.purpose.as_str())
            .bind(d.channel.as_str())
            .bind(&d.recipient)
            .bind(&d.locale)
            .bind(json(&d.content))
            .bind(json(&d.fallback))
            .bind(d.fallback_of)
            .bind(now)
            .bind(due)
            .bind(digest)
            .fetch_one(&mut *c)
            .await?
        });
        self.enqueued = true;
        self.touch(Sealed::Deliveries, id);
        Ok(id)
    }

    /// A new digest due at `due`; `None` if its key exists and is not pending any more.
    async fn insert_digest(
        &mut self,
        page: &NewDelivery,
        key: &str,
        content: &crate::domain::message::Content,
        now: i64,
        due: i64,
    ) -> Result<Option<i64>> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO deliveries (idempotency_key, incident_id, drill, purpose, channel, recipient, \
                 locale, content, fallback, created_at, next_attempt_at, updated_at) \
                 VALUES ($1, NULL, $2, 'page', $3, $4, $5, $6, '[]', $7, $8, $7) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(key)
            .bind(false)
            .bind(page.channel.as_str())
            .bind(&page.recipient)
            .bind(&page.locale)
            .bind(json(content))
            .bind(now)
            .bind(due)
            .execute(&mut *c)
            .await?;
        });
        self.enqueued = true;
        let id = self.delivery_id_by_key(key).await?;
        if let Some(id) = id {
            self.touch(Sealed::Deliveries, id);
        }
        match id {
            Some(id) if self.lock_pending(id, now).await? => Ok(Some(id)),
            _ => Ok(None),
        }
    }

    /// The pages a digest holds, oldest first.
    pub async fn held_pages(&mut self, digest: i64) -> Result<Vec<HeldPage>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT id, incident_id, content FROM deliveries WHERE coalesced_into = $1 ORDER BY id",
            )
            .bind(digest)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }

    /// Replace a pending delivery's content (a digest's, as pages join it).
    pub async fn set_pending_content(
        &mut self,
        id: i64,
        content: &crate::domain::message::Content,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query("UPDATE deliveries SET content = $2 WHERE id = $1 AND status = 'pending'")
                .bind(id)
                .bind(json(content))
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        self.touch(Sealed::Deliveries, id);
        Ok(n > 0)
    }

    /// Give the pages a digest holds the digest's final outcome (`sent` or `dead`); returns
    /// them.
    #[allow(clippy::too_many_arguments)]
    pub async fn resolve_held(
        &mut self,
        digest: i64,
        status: super::DeliveryStatus,
        sent_at: Option<i64>,
        provider: Option<&str>,
        mid: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<Vec<ResolvedHeld>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "UPDATE deliveries SET status = $2, sent_at = $3, provider = $4, provider_message_id = $5, \
                 last_error = $6, next_attempt_at = $7, updated_at = $7 \
                 WHERE coalesced_into = $1 AND status = 'pending' \
                 RETURNING id, incident_id, idempotency_key, channel",
            )
            .bind(digest)
            .bind(status.as_str())
            .bind(sent_at)
            .bind(provider)
            .bind(mid)
            .bind(error)
            .bind(now)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }

    /// After deliveries died (`keys`, refusals by the drill guard left out): a `page.dead`
    /// timer, due now, for each page whose every channel and fallback is now dead. Returns how
    /// many were scheduled (a page whose timer already exists keeps it).
    pub async fn schedule_dead_pages(&mut self, keys: &[String], now: i64) -> Result<u64> {
        let mut pages: Vec<PageKey> = keys.iter().filter_map(|k| PageKey::parse(k)).collect();
        pages.sort();
        pages.dedup();
        let mut timers = Vec::new();
        for p in pages {
            let family = self.page_family(&p.channel_keys()).await?;
            if !family.is_empty() && family.iter().all(|d| d.status == "dead") {
                timers.push(p.dead_timer(now));
            }
        }
        self.schedule_timers(&timers, now).await
    }

    /// Deliveries that died while being claimed (their sender kept stopping, or the row is
    /// unreadable): a digest's held pages die with it, and dead pages escalate.
    pub(super) async fn after_deaths_at_claim(
        &mut self,
        dead: &[(i64, String, String)],
        now: i64,
    ) -> Result<()> {
        let mut keys = Vec::new();
        for (id, key, error) in dead {
            keys.push(key.clone());
            if key.starts_with(DIGEST_KEY_PREFIX) {
                let why = format!("coalesced into digest #{id}, which died: {error}");
                let held = self
                    .resolve_held(
                        *id,
                        super::DeliveryStatus::Dead,
                        None,
                        None,
                        None,
                        Some(&why),
                        now,
                    )
                    .await?;
                keys.extend(held.into_iter().map(|h| h.idempotency_key));
            }
        }
        self.schedule_dead_pages(&keys, now).await?;
        Ok(())
    }

    /// The deliveries with these keys and every fallback enqueued after them (`{key}>{channel}`):
    /// one page to one person, on all its channels.
    pub async fn page_family(&mut self, keys: &[String]) -> Result<Vec<PageDelivery>> {
        let mut out: Vec<PageDelivery> = Vec::new();
        let mut next: Vec<String> = keys.to_vec();
        // Fallback chains are at most a few long; the bound guards against a cycle of keys.
        for _ in 0..8 {
            if next.is_empty() {
                break;
            }
            let rows: Vec<PageDelivery> = on_tx!(self, c, pg => {
                let sql = if pg {
                    "SELECT id, idempotency_key, channel, status, last_error, coalesced_into, fallback \
                     FROM deliveries WHERE idempotency_key IN (SELECT jsonb_array_elements_text($1::jsonb))"
                } else {
                    "SELECT id, idempotency_key, channel, status, last_error, coalesced_into, fallback \
                     FROM deliveries WHERE idempotency_key IN (SELECT value FROM json_each($1))"
                };
                sqlx::query_as(sql).bind(json(&next)).fetch_all(&mut *c).await?
            });
            next = rows
                .iter()
                .filter_map(|r| {
                    let fb: Vec<super::FallbackTarget> =
                        serde_json::from_str(&r.fallback).unwrap_or_default();
                    fb.first()
                        .map(|f| format!("{}>{}", r.idempotency_key, f.channel))
                })
                .filter(|k| !out.iter().any(|o| &o.idempotency_key == k))
                .collect();
            out.extend(rows);
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_opens_a_window_and_later_ones_wait_for_its_end() {
        let w = 120;
        assert_eq!(place(1000, w, None), Place::Now { end: 1120 });
        assert_eq!(
            place(1050, w, Some((1120, None))),
            Place::Hold {
                end: 1120,
                digest: None
            }
        );
        assert_eq!(
            place(1100, w, Some((1120, Some(7)))),
            Place::Hold {
                end: 1120,
                digest: Some(7)
            }
        );
        // After a window with no digest, the next page goes out at once.
        assert_eq!(place(1120, w, Some((1120, None))), Place::Now { end: 1240 });
        // A digest that went out at 1120 opened the next window: held until 1240.
        assert_eq!(
            place(1130, w, Some((1120, Some(7)))),
            Place::Hold {
                end: 1240,
                digest: None
            }
        );
        // Quiet for a whole window after the digest: at once again.
        assert_eq!(
            place(1240, w, Some((1120, Some(7)))),
            Place::Now { end: 1360 }
        );
    }

    #[test]
    fn page_keys_say_who_was_paged() {
        let k = PageKey::parse("page:12:government_relations:2:3:sms").unwrap();
        assert_eq!(k.incident, 12);
        assert_eq!(k.department, "government_relations");
        assert_eq!(k.level, 2);
        assert_eq!(k.member, "3");
        assert_eq!(
            PageKey::parse("page:12:security:1:oncall:voice>sms")
                .unwrap()
                .member,
            "oncall"
        );
        for not in [
            "overdue:page:12:security:0:1:sms:contain:sms",
            "digest:12:1700000000:security:1",
            "coalesce:sms:abcd:42",
            "page:x:security:1:1:sms",
            "page:12:security:1:1:fax",
        ] {
            assert_eq!(PageKey::parse(not), None, "{not}");
        }
        assert!(
            k.channel_keys()
                .contains(&"page:12:government_relations:2:3:email".to_string())
        );
        assert_eq!(k.dead_timer(5).key, "page.dead:12:government_relations:2:3");
    }

    #[test]
    fn digest_keys_do_not_show_the_recipient() {
        let k = digest_key(ChannelKind::Sms, "+8613900000101", 42);
        assert!(k.starts_with("coalesce:sms:"), "{k}");
        assert!(k.ends_with(":42"), "{k}");
        assert!(!k.contains("139"), "{k}");
    }
}
