//! Client commands: each is one call to the running daemon.

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::output;
use super::{
    AlertArgs, AlertsCommand, ClientArgs, DeclareArgs, FactsArgs, IncidentsCommand, TransitionArgs,
    UpdateArgs, key_value,
};

pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub(super) fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("incidentd-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token.clone(),
        })
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.with_context(|| {
            format!(
                "cannot reach incidentd at {} (is it running? set --url or INCIDENTD_URL)",
                self.base
            )
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)));
        }
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            " (set INCIDENTD_TOKEN or --token)"
        } else {
            ""
        };
        anyhow::bail!("{status}: {detail}{hint}")
    }
}

pub(super) fn print(args: &ClientArgs, v: &Value, human: impl FnOnce(&Value)) {
    if args.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        human(v);
    }
}

/// A fact given on the command line: numbers, booleans, comma lists for list facts; empty clears.
fn facts_object(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    crate::domain::facts::patch_of_pairs(pairs.iter().map(String::as_str))
        .map_err(|e| anyhow::anyhow!(e))
}

pub async fn declare(a: DeclareArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut body = json!({ "title": a.title, "summary": a.summary, "drill": a.drill });
    let facts: Map<String, Value> = facts_object(&a.facts)?
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    body["facts"] = Value::Object(facts);
    if let Some(x) = a.category {
        body["category"] = json!(x);
    }
    if let Some(x) = a.severity {
        body["severity"] = json!(x);
    }
    if let Some(x) = a.discovered_at {
        body["discovered_at"] = json!(x);
    }
    if let Some(x) = a.aware_at {
        body["aware_at"] = json!(x);
    }
    let v = c
        .call(Method::POST, "/api/v1/incidents", Some(body))
        .await?;
    print(&a.client, &v, |v| {
        println!("declared incident {}", v["id"]);
        output::incident_summary(v);
    });
    Ok(0)
}

pub async fn alert(a: AlertArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut labels = Map::new();
    for l in &a.labels {
        let (k, v) = key_value(l, "label")?;
        labels.insert(k, json!(v));
    }
    let mut annotations = Map::new();
    for l in &a.annotations {
        let (k, v) = key_value(l, "annotation")?;
        annotations.insert(k, json!(v));
    }
    let mut body = json!({
        "source": a.source, "title": a.title, "description": a.description,
        "labels": labels, "annotations": annotations,
        "status": if a.resolved { "resolved" } else { "firing" },
    });
    if let Some(f) = a.fingerprint {
        body["fingerprint"] = json!(f);
    }
    if let Some(g) = a.group_key {
        body["group_key"] = json!(g);
    }
    let v = c.call(Method::POST, "/api/v1/alerts", Some(body)).await?;
    print(&a.client, &v, |v| {
        for o in v["alerts"].as_array().into_iter().flatten() {
            let incident = o["incident_id"]
                .as_i64()
                .map_or("no incident".to_string(), |i| format!("incident {i}"));
            println!(
                "alert {}: {} ({incident})",
                o["alert_id"],
                o["disposition"].as_str().unwrap_or("?")
            );
        }
    });
    Ok(0)
}

pub async fn incidents(cmd: IncidentsCommand) -> anyhow::Result<i32> {
    match cmd {
        IncidentsCommand::List {
            status,
            open,
            closed,
            severity,
            category,
            drill,
            limit,
            client,
        } => {
            let c = Client::new(&client)?;
            let mut q = vec![format!("limit={limit}")];
            if let Some(s) = status {
                q.push(format!("status={s}"));
            }
            if open {
                q.push("open=true".into());
            }
            if closed {
                q.push("open=false".into());
            }
            if let Some(s) = severity {
                q.push(format!("severity={s}"));
            }
            if let Some(s) = category {
                q.push(format!("category={s}"));
            }
            if let Some(d) = drill {
                q.push(format!("drill={d}"));
            }
            let v = c
                .call(
                    Method::GET,
                    &format!("/api/v1/incidents?{}", q.join("&")),
                    None,
                )
                .await?;
            print(&client, &v, output::incident_table);
        }
        IncidentsCommand::Show { id, client } => {
            let c = Client::new(&client)?;
            let v = c
                .call(Method::GET, &format!("/api/v1/incidents/{id}"), None)
                .await?;
            print(&client, &v, output::incident_detail);
        }
    }
    Ok(0)
}

pub async fn alerts(cmd: AlertsCommand) -> anyhow::Result<i32> {
    let AlertsCommand::List {
        unmatched,
        silenced,
        incident,
        limit,
        client,
    } = cmd
    else {
        unreachable!("run() sends move and promote elsewhere");
    };
    let c = Client::new(&client)?;
    let mut q = vec![format!("limit={limit}")];
    if unmatched {
        q.push("unmatched=true".into());
    }
    if silenced {
        q.push("silenced=true".into());
    }
    if let Some(i) = incident {
        q.push(format!("incident={i}"));
    }
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/alerts?{}", q.join("&")),
            None,
        )
        .await?;
    print(&client, &v, output::alert_table);
    Ok(0)
}

pub async fn transition(a: TransitionArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{}/transitions", a.id),
            Some(json!({ "to": a.to, "note": a.note, "force": a.force, "reason": a.reason })),
        )
        .await?;
    print(&a.client, &v, |v| {
        println!(
            "incident {} is now {}",
            v["id"],
            v["status"].as_str().unwrap_or("?")
        );
    });
    // A forced close: say what it cancelled and what is still owed, as the timeline records.
    if a.force && !a.client.json {
        let tasks = c
            .call(
                Method::GET,
                &format!("/api/v1/incidents/{}/tasks", a.id),
                None,
            )
            .await?;
        let cancelled: Vec<String> = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["status"] == "cancelled")
            .map(|t| {
                format!(
                    "{} ({})",
                    t["key"].as_str().unwrap_or("?"),
                    t["department"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if !cancelled.is_empty() {
            println!(
                "  cancelled {} open task(s): {}",
                cancelled.len(),
                cancelled.join(", ")
            );
        }
        let o = c
            .call(
                Method::GET,
                &format!("/api/v1/incidents/{}/obligations", a.id),
                None,
            )
            .await?;
        let owed: Vec<String> = o["obligations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["status"] == "open" && o["standing"] == "required")
            .map(|o| o["key"].as_str().unwrap_or("?").to_string())
            .collect();
        if !owed.is_empty() {
            println!(
                "  still owed, not met by closing: {} (see `incidentd obligations --incident {}`)",
                owed.join(", "),
                a.id
            );
        }
    }
    Ok(0)
}

pub async fn facts(a: FactsArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let patch: Value = match &a.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            serde_json::from_str(&s).context("standard input is not a JSON object")?
        }
        Some(p) => {
            let s = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str(&s)
                .with_context(|| format!("{} is not a JSON object", p.display()))?
        }
        None => {
            anyhow::ensure!(
                !a.set.is_empty(),
                "give --set KEY=VALUE (repeatable) or --file"
            );
            Value::Object(facts_object(&a.set)?)
        }
    };
    let v = c
        .call(
            Method::PATCH,
            &format!("/api/v1/incidents/{}/facts", a.id),
            Some(patch),
        )
        .await?;
    print(&a.client, &v, |v| {
        println!("incident {} facts version {}", v["id"], v["facts_version"]);
        output::incident_summary(v);
    });
    Ok(0)
}

pub async fn update(a: UpdateArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("title", a.title.map(|x| json!(x)));
    put("summary", a.summary.map(|x| json!(x)));
    put("category", a.category.map(|x| json!(x)));
    put("severity", a.severity.map(|x| json!(x)));
    put("discovered_at", a.discovered_at.map(|x| json!(x)));
    put("aware_at", a.aware_at.map(|x| json!(x)));
    put(
        "assessed_notifiable_at",
        a.assessed_notifiable_at.map(|x| json!(x)),
    );
    put("handling_closed_at", a.handling_closed_at.map(|x| json!(x)));
    put("reason", a.reason.map(|x| json!(x)));
    let v = c
        .call(
            Method::PATCH,
            &format!("/api/v1/incidents/{}", a.id),
            Some(Value::Object(body)),
        )
        .await?;
    print(&a.client, &v, output::incident_summary);
    Ok(0)
}

/// One incident as `GET /api/v1/incidents/{id}` shows it (for `render --incident`).
pub async fn fetch_incident(args: &ClientArgs, id: i64) -> anyhow::Result<Value> {
    Client::new(args)?
        .call(Method::GET, &format!("/api/v1/incidents/{id}"), None)
        .await
}
