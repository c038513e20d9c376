//! `incidentd deliveries` and `incidentd send-test`.

use std::time::{Duration, Instant};

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const LIST_HELP: &str = "\
Examples:
  incidentd deliveries 42                      counts and the newest 50 deliveries
  incidentd deliveries 42 --status dead        what could not be delivered, and why
  incidentd deliveries 42 --channel sms --json

Recipients are masked. A delivery goes pending → sending → sent, or failed (retried with
backoff) → dead after [dispatch] max_attempts; a dead delivery that names a fallback enqueues
the next channel. A page held for a digest ([paging] coalesce) stays pending, held for digest
#N, and ends sent or dead with that digest.";

pub const SEND_TEST_HELP: &str = "\
Examples:
  incidentd send-test --channel email --to oncall@example.com
  incidentd send-test --channel sms --to +8613800000000
  incidentd send-test --channel webhook --to chatops --text 'hello from incidentd'

The message goes the whole way a real one does — the outbox, the dispatcher, the configured
provider — and the command waits for the outcome: exit 0 when sent, 1 when it is dead (with
the provider's words), 2 when it is still pending or being retried after --wait. Needs an admin token.";

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// The incident.
    pub incident: i64,
    /// Only pending, sending, sent, failed or dead.
    #[arg(long)]
    pub status: Option<String>,
    /// Only email, sms, voice, inbox, site_webhook or webhook.
    #[arg(long)]
    pub channel: Option<String>,
    /// At most this many rows (1–500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// email, sms, voice, inbox, site_webhook or webhook.
    #[arg(long)]
    pub channel: String,
    /// Address: e-mail, phone number (+country code, or national in the default region), site
    /// user id, or webhook name.
    #[arg(long)]
    pub to: String,
    /// Words to send instead of the standard test message.
    #[arg(long)]
    pub text: Option<String>,
    /// How long to wait for the outcome, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn list(a: DeliveriesArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut q = vec![format!("limit={}", a.limit)];
    if let Some(s) = &a.status {
        q.push(format!("status={s}"));
    }
    if let Some(ch) = &a.channel {
        q.push(format!("channel={ch}"));
    }
    let v = c
        .call(
            Method::GET,
            &format!(
                "/api/v1/incidents/{}/deliveries?{}",
                a.incident,
                q.join("&")
            ),
            None,
        )
        .await?;
    print(&a.client, &v, table);
    Ok(0)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(v: &Value) {
    let counts: Vec<String> = v["by_status"]
        .as_object()
        .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect())
        .unwrap_or_default();
    println!(
        "deliveries: {}",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    );
    if let Some(by) = v["by_channel"].as_object() {
        for (ch, m) in by {
            let parts: Vec<String> = m
                .as_object()
                .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect())
                .unwrap_or_default();
            println!("  {ch:<13} {}", parts.join(", "));
        }
    }
    let rows = v["items"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "{:>6}  {:<12} {:<8} {:<18} {:<8} {:>3}  PROVIDER / LAST ERROR",
        "ID", "CHANNEL", "PURPOSE", "RECIPIENT", "STATUS", "TRY"
    );
    for d in rows {
        let digest = d["coalesced_into"].as_i64();
        let tail = match (d["status"].as_str(), digest) {
            (Some("sent"), Some(g)) => format!(
                "in digest #{g}: {} {}",
                s(&d["provider"]),
                s(&d["provider_message_id"])
            ),
            (Some("sent"), None) => {
                format!("{} {}", s(&d["provider"]), s(&d["provider_message_id"]))
            }
            (Some("pending"), Some(g)) => format!("held for digest #{g}"),
            _ => s(&d["last_error"]),
        };
        println!(
            "{:>6}  {:<12} {:<8} {:<18} {:<8} {:>3}  {}",
            s(&d["id"]),
            s(&d["channel"]),
            s(&d["purpose"]),
            s(&d["recipient"]),
            s(&d["status"]),
            s(&d["attempts"]),
            tail
        );
    }
    if let Some(n) = v["next_cursor"].as_str() {
        println!("(more: the API pages with cursor={n})");
    }
}

pub async fn send_test(a: SendTestArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut body = json!({ "channel": a.channel, "to": a.to });
    if let Some(t) = &a.text {
        body["text"] = json!(t);
    }
    let v = c
        .call(Method::POST, "/api/v1/deliveries/test", Some(body))
        .await?;
    let id = v["ids"][0]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("the daemon answered without a delivery id: {v}"))?;
    if !a.client.json {
        eprintln!("delivery {id} enqueued; waiting for the outcome…");
    }
    let until = Instant::now() + Duration::from_secs(a.wait);
    loop {
        let d = c
            .call(Method::GET, &format!("/api/v1/deliveries/{id}"), None)
            .await?;
        let status = d["status"].as_str().unwrap_or_default().to_string();
        let done = matches!(status.as_str(), "sent" | "dead");
        if done || Instant::now() >= until {
            print(&a.client, &d, |d| match status.as_str() {
                "sent" => println!(
                    "sent via {} to {} (provider message id {})",
                    s(&d["provider"]),
                    s(&d["recipient"]),
                    s(&d["provider_message_id"])
                ),
                "dead" => println!(
                    "not delivered to {} after {} attempt(s): {}",
                    s(&d["recipient"]),
                    s(&d["attempts"]),
                    s(&d["last_error"])
                ),
                other => println!(
                    "still {other} after {}s (attempt {}, last error: {}); `incidentd deliveries` cannot list it (no incident): query /api/v1/deliveries/{id}",
                    a.wait,
                    s(&d["attempts"]),
                    s(&d["last_error"])
                ),
            });
            return Ok(match status.as_str() {
                "sent" => 0,
                "dead" => 1,
                _ => 2,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
