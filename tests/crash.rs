//! A crash in the middle of dispatching: the daemon is SIGKILLed while thousands of deliveries
//! are going out, started again, and every delivery still ends `sent` exactly once in the
//! store, with duplicates at the provider no more than the sends that were in flight.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{Backend, Daemon, RESPONDER, VIEWER};
use serde_json::{Value, json};

const TOTAL: usize = 3000;
const BATCH: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_mid_dispatch_loses_nothing() {
    sigkill_mid_dispatch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_mid_dispatch_loses_nothing() {
    sigkill_mid_dispatch(Backend::Postgres).await;
}

async fn call(http: &reqwest::Client, url: String, token: &str, body: Option<Value>) -> Value {
    let mut r = http
        .request(
            if body.is_some() {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            },
            url,
        )
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn sigkill_mid_dispatch(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some((store_url, pg)) = common::fresh_store(backend, dir.path()).await else {
        return;
    };
    let sink = Sink::start().await;
    // Each send takes a while at the "provider", so many are in flight when the kill comes.
    sink.delay(Duration::from_millis(20));
    std::fs::copy(
        common::repo().join("config/classification.toml"),
        dir.path().join("classification.toml"),
    )
    .unwrap();
    let config = dir.path().join("incidentd.toml");
    let extra = format!(
        r#"
[dispatch]
batch_size = {BATCH}
lease = "2s"
poll_interval = "200ms"

[[channels.webhooks]]
name = "provider"
url = "{}"
secret = "a-shared-secret-of-32-characters"
timeout = "1s"

[log]
level = "warn,incidentd::cli=info"
"#,
        sink.url("/send")
    );
    std::fs::write(&config, common::config_text(&store_url, &extra)).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut daemon = Daemon::start(&config);
    let inc = call(
        &http,
        daemon.url("/api/v1/incidents"),
        RESPONDER,
        Some(json!({"title": "Crash test", "category": "malware"})),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    for chunk in 0..TOTAL / 300 {
        let deliveries: Vec<Value> = (0..300)
            .map(|i| {
                json!({"channel": "webhook", "recipient": "provider",
                       "content": {"text": format!("message {}", chunk * 300 + i)}})
            })
            .collect();
        call(
            &http,
            daemon.url(&format!("/api/v1/incidents/{inc}/deliveries")),
            RESPONDER,
            Some(json!({ "deliveries": deliveries })),
        )
        .await;
    }
    // Looking every 2 ms: the sooner after the mark, the more is in flight at the kill.
    let until = Instant::now() + Duration::from_secs(60);
    while sink.count() < TOTAL / 4 {
        assert!(Instant::now() < until, "dispatching did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.kill();
    let at_kill = sink.count();
    assert!(
        at_kill < TOTAL,
        "the kill came after everything was sent; the test proves nothing"
    );

    let daemon = Daemon::start(&config);
    let listing = common::wait_until("every delivery sent after the restart", 90, async || {
        let v = call(
            &http,
            daemon.url(&format!("/api/v1/incidents/{inc}/deliveries?limit=1")),
            VIEWER,
            None,
        )
        .await;
        (v["by_status"]["sent"].as_u64() == Some(TOTAL as u64)).then_some(v)
    })
    .await;
    assert_eq!(
        listing["by_status"].as_object().unwrap().len(),
        1,
        "every delivery is sent, none pending, failed or dead: {listing}"
    );

    // At the provider: every message arrived; duplicates only from sends in flight at the kill.
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in sink.received() {
        *per_key
            .entry(r.header("idempotency-key").unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_key.len(), TOTAL, "every delivery reached the provider");
    let duplicates: usize = per_key.values().map(|n| n - 1).sum();
    let in_flight_bound = BATCH * 2;
    eprintln!("killed after {at_kill} sends; {duplicates} duplicates (bound {in_flight_bound})");
    assert!(
        duplicates <= in_flight_bound,
        "{duplicates} duplicates, more than the {in_flight_bound} sends that can be in flight"
    );
    drop(daemon);
    if let Some((admin, name)) = pg {
        common::drop_pg_database(&admin, &name).await;
    }
}
