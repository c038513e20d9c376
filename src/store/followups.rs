//! Follow-up notice campaigns: a campaign's audience and facts version, and what earlier
//! campaigns' deliveries became (nobody gets the same words twice on one channel; `unreached`
//! follow-ups skip people a delivery reached).

use std::collections::HashMap;

use super::write::{Inner, json, on_tx};
use super::{Result, WriteTx};

impl WriteTx {
    /// Record what a campaign was asked for beyond its template and channels: its audience,
    /// the facts version, and its approval task (a follow-up's own gate).
    pub async fn set_campaign_followup(
        &mut self,
        id: i64,
        audience: &str,
        facts_version: i64,
        approval_task: Option<i64>,
    ) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE campaigns SET audience = $2, facts_version = $3, approval_task = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(audience)
            .bind(facts_version)
            .bind(approval_task)
            .execute(&mut *c)
            .await?;
        });
        self.touch(super::Sealed::Campaigns, id);
        Ok(())
    }

    /// The status of each delivery whose idempotency key is in `keys` (absent: none).
    pub async fn delivery_statuses(&mut self, keys: &[String]) -> Result<HashMap<String, String>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::new();
        for chunk in keys.chunks(5_000) {
            let rows: Vec<(String, String)> = on_tx!(self, c, pg => {
                let sql = if pg {
                    "SELECT idempotency_key, status FROM deliveries WHERE idempotency_key IN (SELECT jsonb_array_elements_text($1::jsonb))"
                } else {
                    "SELECT idempotency_key, status FROM deliveries WHERE idempotency_key IN (SELECT value FROM json_each($1))"
                };
                sqlx::query_as(sql).bind(json(chunk)).fetch_all(&mut *c).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }
}
