//! What the obligations read to be met by outcomes: how a report's submission delivery ended,
//! and whether every reachable person was told by the incident's notice campaigns.

use super::write::{Inner, on_tx};
use super::{Result, WriteTx};

/// How one delivery stands: its status, when it reached its provider, and its last error.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryOutcome {
    pub id: i64,
    pub status: String,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// What the incident's notice deliveries achieved, per person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeReach {
    /// A started campaign is still enqueueing people.
    pub enqueueing: bool,
    /// Notice deliveries not yet sent or dead (pending, sending, or waiting for a retry).
    pub in_flight: i64,
    /// People (subject rows) with at least one notice delivery.
    pub people: i64,
    /// Of those, people with a delivery that reached its provider.
    pub reached: i64,
}

impl WriteTx {
    /// The delivery with this idempotency key, as it stands.
    pub async fn delivery_outcome(&mut self, key: &str) -> Result<Option<DeliveryOutcome>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT id, status, sent_at, last_error FROM deliveries WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(row)
    }

    /// Open a met obligation again (what met it did not happen after all); `false` if it was
    /// not met.
    pub async fn reopen_obligation(
        &mut self,
        incident_id: i64,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE obligations SET status = 'open', met_at = NULL, met_by = NULL, met_ref = NULL, \
                 late_reason = NULL, met_facts = NULL, updated_at = $3 \
                 WHERE incident_id = $1 AND key = $2 AND status = 'met'",
            )
            .bind(incident_id)
            .bind(key)
            .bind(crate::domain::time::to_micros(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.touch(super::Sealed::Obligations, incident_id);
        Ok(n > 0)
    }

    /// Of these campaigns, the ones that finished enqueueing and whose every delivery is sent
    /// or dead (their progress counters say so): `(campaign, incident)`.
    pub async fn settled_campaigns(&mut self, ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for id in ids {
            let row: Option<(i64, i64, i64)> = on_tx!(self, c, _pg => {
                sqlx::query_as(
                    "SELECT c.incident_id, CAST(COALESCE(SUM(p.enqueued), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(p.sent + p.dead), 0) AS BIGINT) \
                     FROM campaigns c LEFT JOIN campaign_progress p ON p.campaign_id = c.id \
                     WHERE c.id = $1 AND c.status = 'enqueued' GROUP BY c.incident_id",
                )
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
            });
            if let Some((incident, enqueued, done)) = row
                && done >= enqueued
            {
                out.push((*id, incident));
            }
        }
        Ok(out)
    }

    /// Whether the incident's notices reached every person they were for.
    pub async fn notice_reach(&mut self, incident_id: i64) -> Result<NoticeReach> {
        let enqueueing: i64 = on_tx!(self, c, _pg => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM campaigns WHERE incident_id = $1 AND status = 'enqueueing'",
            )
            .bind(incident_id)
            .fetch_one(&mut *c)
            .await?
        });
        let rows: Vec<(String, String)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT recipient, status FROM deliveries WHERE incident_id = $1 AND purpose = 'notice'",
            )
            .bind(incident_id)
            .fetch_all(&mut *c)
            .await?
        });
        // One person may have deliveries in several campaigns and on several channels.
        let mut people: std::collections::HashMap<i64, bool> = Default::default();
        let mut in_flight = 0;
        for (recipient, status) in &rows {
            if status != "sent" && status != "dead" {
                in_flight += 1;
            }
            let Some((_, subject)) = super::parse_notice_recipient(recipient) else {
                continue;
            };
            *people.entry(subject).or_default() |= status == "sent";
        }
        Ok(NoticeReach {
            enqueueing: enqueueing > 0,
            in_flight,
            people: people.len() as i64,
            reached: people.values().filter(|r| **r).count() as i64,
        })
    }
}
