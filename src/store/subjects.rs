//! Subjects (affected people), their imports, and notice campaigns.
//!
//! Contacts are stored only as ciphertexts made by [`crate::subjects::crypto::KeyRing`] and as
//! masked forms for listings; this module never sees a plaintext contact.
//!
//! A campaign's deliveries carry no contact either: their recipient is `notice:<campaign>:<subject
//! row>`, resolved by the dispatcher right before sending. Their idempotency key is
//! `<incident>:notice:<campaign>:<subject row, 12 digits>:<channel>` (a fallback appends
//! `><channel>`), so one campaign's deliveries, and one subject's, are a range of the key index,
//! and a campaign's keys are inserted in index order (appended, not scattered).

use serde::Serialize;

use super::outbox::delivery_view_columns;
use super::write::{BulkInsert, Inner, chunks, json, on_tx};
use super::{DeliveryView, Result, Store, WriteTx, on_pool};

/// A subject ready to store: contacts sealed, masks made.
#[derive(Debug, Clone)]
pub struct SealedSubject {
    pub subject_id: String,
    pub name_enc: Option<String>,
    pub phone_enc: Option<String>,
    pub email_enc: Option<String>,
    pub name_mask: Option<String>,
    pub phone_mask: Option<String>,
    pub email_mask: Option<String>,
    pub site_user_id: Option<String>,
    pub locale: String,
    /// `inbox;sms;email`
    pub channels: String,
    /// `CN`, `SG`: where the person is affected, when the list says.
    pub jurisdiction: Option<String>,
}

/// A subject as listings show it: masked.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SubjectView {
    /// The row id (what campaign deliveries name).
    pub id: i64,
    pub subject_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub site_user_id: Option<String>,
    pub locale: String,
    /// The channels this subject can be reached on.
    #[schema(value_type = Vec<String>)]
    #[serde(serialize_with = "crate::domain::records::semicolon_list")]
    pub channels: String,
    pub import_id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub updated_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub purged_at: Option<i64>,
}

/// A subject's sealed contacts, for the dispatcher.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubjectContacts {
    pub id: i64,
    pub incident_id: i64,
    pub subject_id: String,
    pub name_enc: Option<String>,
    pub phone_enc: Option<String>,
    pub email_enc: Option<String>,
    pub site_user_id: Option<String>,
    pub locale: String,
    pub purged_at: Option<i64>,
}

/// A subject as a campaign walks them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignSubject {
    pub id: i64,
    pub locale: String,
    pub channels: String,
}

/// A campaign's deliveries on one channel: (channel, enqueued, sent, failed attempts, dead).
pub type ProgressRow = (String, i64, i64, i64, i64);

/// A change to a campaign's progress on one channel.
#[derive(Debug, Clone, Default)]
pub struct ProgressBump {
    pub campaign_id: i64,
    pub channel: String,
    pub enqueued: i64,
    pub sent: i64,
    pub failed: i64,
    pub dead: i64,
}

/// The campaign a notice delivery's idempotency key names (also for its fallbacks).
pub fn campaign_of_key(key: &str) -> Option<i64> {
    let (incident, rest) = key.split_once(':')?;
    incident.parse::<i64>().ok()?;
    rest.strip_prefix("notice:")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// A campaign to create (it starts `awaiting_approval`).
#[derive(Debug, Clone, Copy)]
pub struct NewCampaign<'a> {
    pub incident_id: i64,
    pub actor: &'a str,
    pub template: &'a str,
    pub channels: &'a [String],
    pub mode: &'a str,
    pub approval_task: Option<i64>,
}

/// A subject's sealed contacts as the purge reads them.
type SealedRow = (i64, String, Option<String>, Option<String>, Option<String>);

/// A campaign row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CampaignRow {
    pub id: i64,
    pub incident_id: i64,
    pub actor: String,
    pub template: String,
    /// The channels, in order of preference.
    #[schema(value_type = Vec<String>)]
    #[serde(serialize_with = "crate::domain::records::json_text")]
    pub channels: String,
    pub mode: String,
    pub status: String,
    pub approval_task: Option<i64>,
    pub enqueued_to: i64,
    pub subjects: i64,
    pub deliveries: i64,
    pub unreachable: i64,
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub created_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub started_at: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub finished_at: Option<i64>,
    /// `all`, or `unreached`: only people no earlier campaign's delivery reached.
    pub audience: String,
    /// The incident's facts version when the campaign was asked for.
    pub facts_version: Option<i64>,
}

/// One rendered message of a campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignContent {
    pub campaign_id: i64,
    pub channel: String,
    pub locale: String,
    pub used_locale: String,
    pub named: String,
    pub anonymous: String,
}

/// An import's row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ImportRow {
    pub id: i64,
    pub incident_id: i64,
    pub actor: String,
    pub format: String,
    pub status: String,
    /// The import report.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "crate::domain::records::json_text")]
    pub report: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub started_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub finished_at: Option<i64>,
}

const CAMPAIGN_COLUMNS: &str = "id, incident_id, actor, template, channels, mode, status, approval_task, \
     enqueued_to, subjects, deliveries, unreachable, error, created_at, started_at, finished_at, \
     audience, facts_version";

static UPSERT_SUBJECTS: BulkInsert = BulkInsert::new(
    "INSERT INTO subjects (incident_id, subject_id, import_id, name_enc, phone_enc, email_enc, \
     name_mask, phone_mask, email_mask, site_user_id, locale, channels, created_at, updated_at, \
     jurisdiction)",
    15,
    " ON CONFLICT (incident_id, subject_id) DO UPDATE SET import_id = excluded.import_id, \
     name_enc = excluded.name_enc, phone_enc = excluded.phone_enc, email_enc = excluded.email_enc, \
     name_mask = excluded.name_mask, phone_mask = excluded.phone_mask, email_mask = excluded.email_mask, \
     site_user_id = excluded.site_user_id, locale = excluded.locale, channels = excluded.channels, \
     jurisdiction = excluded.jurisdiction, updated_at = excluded.updated_at, purged_at = NULL \
     WHERE subjects.import_id <> excluded.import_id \
     RETURNING subject_id, created_at = updated_at",
);

/// The key range `[lo, hi)` of idempotency keys starting with `prefix` (`;` follows `:`).
fn key_range(prefix: &str) -> (String, String) {
    debug_assert!(prefix.ends_with(':'));
    let mut hi = prefix.to_string();
    hi.pop();
    hi.push(';');
    (prefix.to_string(), hi)
}

/// The idempotency key of a campaign's delivery to a subject on a channel.
pub fn notice_key(incident_id: i64, campaign_id: i64, subject_row: i64, channel: &str) -> String {
    format!("{incident_id}:notice:{campaign_id}:{subject_row:012}:{channel}")
}

/// The recipient a campaign's delivery carries instead of a contact.
pub fn notice_recipient(campaign_id: i64, subject_row: i64) -> String {
    format!("notice:{campaign_id}:{subject_row}")
}

/// `(campaign, subject row)` from a [`notice_recipient`].
pub fn parse_notice_recipient(r: &str) -> Option<(i64, i64)> {
    let rest = r.strip_prefix("notice:")?;
    let (c, s) = rest.split_once(':')?;
    Some((c.parse().ok()?, s.parse().ok()?))
}

impl WriteTx {
    pub async fn create_import(
        &mut self,
        incident_id: i64,
        actor: &str,
        format: &str,
        now: i64,
    ) -> Result<i64> {
        let id: i64 = on_tx!(self, c, _pg => {
            sqlx::query_scalar(
                "INSERT INTO subject_imports (incident_id, actor, format, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(incident_id)
            .bind(actor)
            .bind(format)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn finish_import(
        &mut self,
        import_id: i64,
        status: &str,
        report: &str,
        now: i64,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE subject_imports SET status = $1, report = $2, finished_at = $3 WHERE id = $4")
                .bind(status)
                .bind(report)
                .bind(now)
                .bind(import_id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Insert or update subjects. Returns `(subject_id, inserted)` for each row written; a row
    /// not returned already came from this same import (a duplicate: the first copy stays).
    /// `rows` must not repeat a subject id.
    pub async fn upsert_subjects(
        &mut self,
        incident_id: i64,
        import_id: i64,
        rows: &[SealedSubject],
        now: i64,
    ) -> Result<Vec<(String, bool)>> {
        let mut out = Vec::with_capacity(rows.len());
        on_tx!(self, c, pg => {
            for (at, n) in chunks(rows.len()) {
                let mut q = sqlx::query_as::<_, (String, bool)>(UPSERT_SUBJECTS.statement(n, pg));
                for r in &rows[at..at + n] {
                    q = q
                        .bind(incident_id)
                        .bind(&r.subject_id)
                        .bind(import_id)
                        .bind(&r.name_enc)
                        .bind(&r.phone_enc)
                        .bind(&r.email_enc)
                        .bind(&r.name_mask)
                        .bind(&r.phone_mask)
                        .bind(&r.email_mask)
                        .bind(&r.site_user_id)
                        .bind(&r.locale)
                        .bind(&r.channels)
                        .bind(now)
                        .bind(now)
                        .bind(&r.jurisdiction);
                }
                out.extend(q.fetch_all(&mut *c).await?);
            }
        });
        Ok(out)
    }

    pub async fn create_campaign(&mut self, n: &NewCampaign<'_>, now: i64) -> Result<i64> {
        let NewCampaign {
            incident_id,
            actor,
            template,
            channels,
            mode,
            approval_task,
        } = *n;
        let id: i64 = on_tx!(self, c, _pg => {
            sqlx::query_scalar(
                "INSERT INTO campaigns (incident_id, actor, template, channels, mode, status, approval_task, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(incident_id)
            .bind(actor)
            .bind(template)
            .bind(json(channels))
            .bind(mode)
            .bind("awaiting_approval")
            .bind(approval_task)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        self.touch(super::Sealed::Campaigns, id);
        Ok(id)
    }

    pub async fn campaign(&mut self, id: i64) -> Result<Option<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *c).await?
        });
        Ok(row)
    }

    pub async fn campaigns_of(&mut self, incident_id: i64) -> Result<Vec<CampaignRow>> {
        let sql =
            format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE incident_id = $1 ORDER BY id");
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(incident_id).fetch_all(&mut *c).await?
        });
        Ok(rows)
    }

    pub async fn cancel_campaign(&mut self, id: i64, why: &str, now: i64) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE campaigns SET status = 'cancelled', error = $1, finished_at = $2 WHERE id = $3")
                .bind(why)
                .bind(now)
                .bind(id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// The locales an incident's subjects have.
    pub async fn subject_locales(&mut self, incident_id: i64) -> Result<Vec<String>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_scalar("SELECT DISTINCT locale FROM subjects WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    /// (channel, locale) pairs a campaign has words for.
    pub async fn campaign_content_keys(&mut self, id: i64) -> Result<Vec<(String, String)>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT channel, locale FROM campaign_contents WHERE campaign_id = $1")
                .bind(id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn add_campaign_contents(&mut self, contents: &[CampaignContent]) -> Result<()> {
        on_tx!(self, c, _pg => {
            for x in contents {
                sqlx::query(
                    "INSERT INTO campaign_contents (campaign_id, channel, locale, used_locale, named, anonymous) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(x.campaign_id)
                .bind(&x.channel)
                .bind(&x.locale)
                .bind(&x.used_locale)
                .bind(&x.named)
                .bind(&x.anonymous)
                .execute(&mut *c)
                .await?;
            }
        });
        Ok(())
    }

    /// Add to campaigns' progress counters.
    pub async fn bump_campaign_progress(&mut self, bumps: &[ProgressBump]) -> Result<()> {
        for b in bumps {
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "INSERT INTO campaign_progress (campaign_id, channel, enqueued, sent, failed, dead) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (campaign_id, channel) DO UPDATE SET \
                     enqueued = campaign_progress.enqueued + excluded.enqueued, \
                     sent = campaign_progress.sent + excluded.sent, \
                     failed = campaign_progress.failed + excluded.failed, \
                     dead = campaign_progress.dead + excluded.dead",
                )
                .bind(b.campaign_id)
                .bind(&b.channel)
                .bind(b.enqueued)
                .bind(b.sent)
                .bind(b.failed)
                .bind(b.dead)
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// Campaigns that finished enqueueing go on with subjects imported since.
    pub async fn resume_campaigns(&mut self, incident_id: i64) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE campaigns SET status = 'enqueueing', finished_at = NULL WHERE incident_id = $1 AND status = 'enqueued'")
                .bind(incident_id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Start a campaign: status `enqueueing`, with its rendered contents.
    pub async fn start_campaign(
        &mut self,
        id: i64,
        contents: &[CampaignContent],
        now: i64,
    ) -> Result<()> {
        self.add_campaign_contents(contents).await?;
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE campaigns SET status = 'enqueueing', started_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// The next `limit` subjects of an incident after row `after`, with a contact left.
    pub async fn subjects_after(
        &mut self,
        incident_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<CampaignSubject>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT id, locale, channels FROM subjects WHERE incident_id = $1 AND id > $2 \
                 AND purged_at IS NULL ORDER BY id LIMIT $3",
            )
            .bind(incident_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows)
    }

    /// Record a campaign's progress (in the transaction that enqueued the deliveries).
    pub async fn advance_campaign(
        &mut self,
        id: i64,
        enqueued_to: i64,
        subjects: i64,
        deliveries: i64,
        unreachable: i64,
        done: Option<i64>,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE campaigns SET enqueued_to = $1, subjects = subjects + $2, deliveries = deliveries + $3, \
                 unreachable = unreachable + $4, status = CASE WHEN $5 IS NULL THEN status ELSE 'enqueued' END, \
                 finished_at = COALESCE($5, finished_at) WHERE id = $6",
            )
            .bind(enqueued_to)
            .bind(subjects)
            .bind(deliveries)
            .bind(unreachable)
            .bind(done)
            .bind(id)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    pub async fn fail_campaign(&mut self, id: i64, error: &str) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("UPDATE campaigns SET error = $1 WHERE id = $2")
                .bind(error)
                .bind(id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Clear the contacts of every subject of an incident. Returns how many rows were purged and
    /// a SHA-256 over their ids and ciphertexts (the audit trail keeps that, not the contacts).
    pub async fn purge_subjects(&mut self, incident_id: i64, now: i64) -> Result<(i64, String)> {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut count = 0i64;
        let mut after = 0i64;
        // In chunks: a million subjects' ciphertexts never sit in memory at once.
        loop {
            let rows: Vec<SealedRow> = on_tx!(self, c, _pg => {
                sqlx::query_as(
                    "SELECT id, subject_id, name_enc, phone_enc, email_enc FROM subjects \
                     WHERE incident_id = $1 AND purged_at IS NULL AND id > $2 ORDER BY id LIMIT 10000",
                )
                .bind(incident_id)
                .bind(after)
                .fetch_all(&mut *c)
                .await?
            });
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            for (_, id, a, b, c) in &rows {
                for part in [Some(id), a.as_ref(), b.as_ref(), c.as_ref()] {
                    h.update(part.map_or("", String::as_str).as_bytes());
                    h.update(b"\x1f");
                }
                h.update(b"\n");
            }
            count += rows.len() as i64;
            on_tx!(self, c, _pg => {
                sqlx::query(
                    "UPDATE subjects SET name_enc = NULL, phone_enc = NULL, email_enc = NULL, name_mask = NULL, \
                     phone_mask = NULL, email_mask = NULL, purged_at = $1 \
                     WHERE incident_id = $2 AND purged_at IS NULL AND id > $3 AND id <= $4",
                )
                .bind(now)
                .bind(incident_id)
                .bind(after)
                .bind(last)
                .execute(&mut *c)
                .await?;
            });
            after = last;
        }
        Ok((count, hex::encode(h.finish().as_ref())))
    }
}

impl Store {
    /// Subjects held per jurisdiction (those without one left out), for `by_jurisdiction`.
    pub async fn subject_counts_by_jurisdiction(
        &self,
        incident_id: i64,
    ) -> Result<Vec<(String, i64)>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT jurisdiction, COUNT(*) FROM subjects WHERE incident_id = $1 \
                 AND jurisdiction IS NOT NULL GROUP BY jurisdiction ORDER BY jurisdiction",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn subject_count(&self, incident_id: i64) -> Result<i64> {
        let n = on_pool!(self, pool, _pg => {
            sqlx::query_scalar("SELECT COUNT(*) FROM subjects WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    /// Subjects reachable per channel (and with none), for the announcement rule.
    pub async fn subject_reach(&self, incident_id: i64) -> Result<Vec<(String, i64)>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT channels, COUNT(*) FROM subjects WHERE incident_id = $1 AND purged_at IS NULL GROUP BY channels",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn subjects_page(
        &self,
        incident_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SubjectView>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, subject_id, name_mask AS name, phone_mask AS phone, email_mask AS email, site_user_id, \
                 locale, channels, import_id, created_at, updated_at, purged_at FROM subjects \
                 WHERE incident_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(incident_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn subject(&self, incident_id: i64, subject_id: &str) -> Result<Option<SubjectView>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, subject_id, name_mask AS name, phone_mask AS phone, email_mask AS email, site_user_id, \
                 locale, channels, import_id, created_at, updated_at, purged_at FROM subjects \
                 WHERE incident_id = $1 AND subject_id = $2",
            )
            .bind(incident_id)
            .bind(subject_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Sealed contacts of these subject rows (for the dispatcher).
    pub async fn subject_contacts(&self, ids: &[i64]) -> Result<Vec<SubjectContacts>> {
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                "SELECT id, incident_id, subject_id, name_enc, phone_enc, email_enc, site_user_id, locale, purged_at \
                 FROM subjects WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
            } else {
                "SELECT id, incident_id, subject_id, name_enc, phone_enc, email_enc, site_user_id, locale, purged_at \
                 FROM subjects WHERE id IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(json(ids)).fetch_all(pool).await?
        });
        Ok(rows)
    }

    pub async fn campaign_contents(&self, campaign_ids: &[i64]) -> Result<Vec<CampaignContent>> {
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                "SELECT campaign_id, channel, locale, used_locale, named, anonymous FROM campaign_contents \
                 WHERE campaign_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
            } else {
                "SELECT campaign_id, channel, locale, used_locale, named, anonymous FROM campaign_contents \
                 WHERE campaign_id IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(json(campaign_ids)).fetch_all(pool).await?
        });
        Ok(rows)
    }

    pub async fn campaigns(&self, incident_id: Option<i64>) -> Result<Vec<CampaignRow>> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE ($1 IS NULL OR incident_id = $1) ORDER BY id"
        );
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(incident_id).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Campaigns waiting for their approval or still enqueueing.
    pub async fn active_campaigns(&self) -> Result<Vec<CampaignRow>> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status IN ('awaiting_approval', 'enqueueing') ORDER BY id"
        );
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// A campaign's progress by channel: (channel, enqueued, sent, failed attempts, dead).
    pub async fn campaign_progress(&self, campaign_id: i64) -> Result<Vec<ProgressRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT channel, enqueued, sent, failed, dead FROM campaign_progress \
                 WHERE campaign_id = $1 ORDER BY channel",
            )
            .bind(campaign_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every notice delivery to one subject, over all the incident's campaigns, oldest first.
    pub async fn subject_deliveries(
        &self,
        incident_id: i64,
        subject_row: i64,
    ) -> Result<Vec<(i64, DeliveryView)>> {
        let campaigns: Vec<i64> = on_pool!(self, pool, _pg => {
            sqlx::query_scalar("SELECT id FROM campaigns WHERE incident_id = $1 ORDER BY id")
                .bind(incident_id)
                .fetch_all(pool)
                .await?
        });
        let mut out = Vec::new();
        for cid in campaigns {
            let (lo, hi) = key_range(&format!("{incident_id}:notice:{cid}:{subject_row:012}:"));
            let rows: Vec<DeliveryView> = on_pool!(self, pool, _pg => {
                sqlx::query_as(concat!(
                    "SELECT ", delivery_view_columns!(), " FROM deliveries \
                     WHERE idempotency_key >= $1 AND idempotency_key < $2 ORDER BY id",
                ))
                .bind(lo)
                .bind(hi)
                .fetch_all(pool)
                .await?
            });
            out.extend(rows.into_iter().map(|d| (cid, d)));
        }
        Ok(out)
    }

    pub async fn imports(&self, incident_id: i64) -> Result<Vec<ImportRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT id, incident_id, actor, format, status, report, started_at, finished_at \
                 FROM subject_imports WHERE incident_id = $1 ORDER BY id",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Whether the incident's audit trail has an event of this kind.
    pub async fn has_event(&self, incident_id: i64, kind: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, pool, _pg => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE incident_id = $1 AND kind = $2")
                .bind(incident_id)
                .bind(kind)
                .fetch_one(pool)
                .await?
        });
        Ok(n > 0)
    }

    /// Incidents closed before `before` whose subjects still hold contacts.
    pub async fn incidents_to_purge(&self, before: i64) -> Result<Vec<i64>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_scalar(
                "SELECT i.id FROM incidents i WHERE i.status = 'closed' AND i.closed_at < $1 \
                 AND EXISTS (SELECT 1 FROM subjects s WHERE s.incident_id = i.id AND s.purged_at IS NULL) ORDER BY i.id",
            )
            .bind(before)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests;
