//! Nothing acknowledged is lost, and nothing changes unnoticed: restarts, shutdown drain,
//! transient faults (503), the audit chain, configuration reload.

use crate::common;

use std::time::Duration;

use common::{Backend, INGEST, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

const GROUPED: &str = include_str!("fixtures/alertmanager-0.25-webhook-grouped.json");

both_backends!(
    restart_keeps_everything,
    shutdown_commits_every_acknowledged_alert,
    busy_store_answers_503_and_loses_nothing,
    audit_chain_verifies_and_detects_edited_events,
    audit_chain_detects_deleted_events_and_edited_alerts,
    reload_swaps_valid_config_and_keeps_the_old_on_error,
);

async fn restart_keeps_everything(mut app: TestApp) {
    let body = GROUPED.replace(
        "\"summary\": \"bench alert",
        "\"summary\": \"数据外泄 bench alert",
    );
    let first = app.alertmanager(&body).await;
    let declared = app
        .declare(&json!({"title": "Customer DB for sale", "category": "pi_leak"}))
        .await;
    let id = declared["id"].as_i64().unwrap();
    app.transition(id, "triaged", None).await;
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"affected_subjects": 7}),
    )
    .await;
    let before = app.incident(id).await;
    let (_, list_before) = app.get("/api/v1/incidents?limit=500").await;

    app.restart().await;

    assert_eq!(app.incident(id).await, before);
    let (_, list_after) = app.get("/api/v1/incidents?limit=500").await;
    assert_eq!(list_after, list_before);
    // Dedup survives: the same notification after the restart is a duplicate.
    let again = app.alertmanager(&body).await;
    assert_eq!(again["duplicates"], 10);
    assert_eq!(
        again["alerts"],
        json!(
            first["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    o["disposition"] = json!("duplicate");
                    o
                })
                .collect::<Vec<_>>()
        )
    );
    // New ids continue after the old ones.
    let next = app.declare(&json!({"title": "another"})).await;
    assert_eq!(next["id"].as_i64().unwrap(), id + 1);
    let report = app.verify().await;
    assert_eq!(report.broken_at, None, "{report:?}");
    // The group's incident, the declaration, its transition and its facts at least.
    assert!(report.events >= 4, "{report:?}");
    app.stop().await;
}

async fn shutdown_commits_every_acknowledged_alert(mut app: TestApp) {
    // Many senders in flight when the shutdown comes: every 202 must be on disk afterwards;
    // everything else must have been told to retry (503) or have failed to connect.
    let mut tasks = Vec::new();
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for sender in 0..8 {
        let http = app.http.clone();
        let url = app.url("/api/v1/alerts");
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let body = json!({"source": "load", "title": format!("数据泄露 {sender}-{i}"), "fingerprint": format!("{sender}-{i}")});
                match http.post(&url).bearer_auth(INGEST).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        acked.push(v["alerts"][0]["alert_id"].as_i64().unwrap());
                        acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(r) => assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "only 503 may refuse"),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Shut down in the middle of the load: once the senders are under way.
    common::wait_for("the first acknowledged alerts", 10, async || {
        acks.load(std::sync::atomic::Ordering::Relaxed) >= 16
    })
    .await;
    app.shutdown().await;
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "some alerts were sent before the shutdown"
    );
    app.restart().await;
    let mut stored = std::collections::HashSet::new();
    let mut before = None::<String>;
    loop {
        let q = before.map_or(String::new(), |b| format!("&cursor={b}"));
        let (_, page) = app.get(&format!("/api/v1/alerts?limit=500{q}")).await;
        for a in page["items"].as_array().unwrap() {
            stored.insert(a["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(b) => before = Some(b.to_string()),
            None => break,
        }
    }
    for id in &acked {
        assert!(
            stored.contains(id),
            "alert {id} was acknowledged but is gone"
        );
    }
    assert_eq!(app.verify().await.broken_at, None);
    app.stop().await;
}

async fn busy_store_answers_503_and_loses_nothing(app: TestApp) {
    // Someone else holds the write lock longer than the busy timeout (1 s in the test config).
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let (locked_tx, locked) = tokio::sync::oneshot::channel::<()>();
    let url = app.store_url.clone();
    let backend = app.backend;
    let holder = tokio::spawn(async move {
        match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                let _ = locked_tx.send(());
                let _ = held.await;
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                let mut tx = c.begin().await.unwrap();
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(incidentd::store::postgres::WRITE_LOCK)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let _ = locked_tx.send(());
                let _ = held.await;
                tx.rollback().await.unwrap();
            }
        }
    });
    locked.await.unwrap();
    let body = GROUPED.to_string();
    let res = app
        .raw(
            Method::POST,
            "/api/v1/alerts/alertmanager",
            Some(INGEST),
            "application/json",
            body.clone(),
        )
        .await;
    let status = res.status();
    let retry_after = res.headers().get("retry-after").cloned();
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "Alertmanager must retry, not drop: {p}"
    );
    assert_eq!(retry_after.unwrap(), "1");
    assert!(p["detail"].as_str().unwrap().contains("retry"), "{p}");
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "reads still work while a writer holds the lock"
    );
    release.send(()).unwrap();
    holder.await.unwrap();
    // Alertmanager's retry now succeeds; nothing from the failed attempt was half-written.
    let v = app.alertmanager(&body).await;
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(10), Some(0))
    );
    assert_eq!(v["alerts"][0]["alert_id"], 1);
    app.stop().await;
}

async fn audit_chain_verifies_and_detects_edited_events(app: TestApp) {
    app.alertmanager(GROUPED).await;
    let id = app.declare(&json!({"title": "x"})).await["id"]
        .as_i64()
        .unwrap();
    app.transition(id, "triaged", None).await;
    app.transition(id, "false_positive", Some("drill leftovers"))
        .await;
    let ok = app.verify().await;
    // Four actions, three of which changed the incident: each of those is sealed (audit.sealed).
    assert_eq!((ok.events, ok.broken_at), (7, None), "{ok:?}");
    assert_eq!(ok.rows_checked, 1, "{ok:?}");
    assert_eq!(ok.alerts_checked, 10);
    // The trail refuses edits through normal SQL…
    let refused = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.store_url)
                .await
                .unwrap();
            sqlx::raw_sql("UPDATE events SET actor = 'x'")
                .execute(&mut c)
                .await
                .err()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.store_url).await.unwrap();
            sqlx::raw_sql("UPDATE events SET actor = 'x'")
                .execute(&mut c)
                .await
                .err()
        }
    };
    assert!(refused.unwrap().to_string().contains("append-only"));
    // …and someone who goes around that is caught at the event they changed.
    let disable = match app.backend {
        Backend::Sqlite => "DROP TRIGGER events_append_only_update",
        Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_append_only",
    };
    app.sql(&[disable, "UPDATE events SET data = replace(data, 'drill leftovers', 'nothing happened') WHERE id = 6"]).await;
    let bad = app.verify().await;
    assert_eq!(bad.broken_at, Some(6), "{bad:?}");
    assert_eq!(bad.events, 5);
    assert!(
        bad.problem
            .unwrap()
            .contains("event 6 (incident.transitioned) was changed")
    );
    app.stop().await;
}

async fn audit_chain_detects_deleted_events_and_edited_alerts(app: TestApp) {
    app.alertmanager(GROUPED).await;
    app.declare(&json!({"title": "x"})).await;
    app.declare(&json!({"title": "y"})).await;
    let (disable_update, disable_delete) = match app.backend {
        Backend::Sqlite => (
            "DROP TRIGGER events_append_only_update",
            "DROP TRIGGER events_append_only_delete",
        ),
        Backend::Postgres => (
            "ALTER TABLE events DISABLE TRIGGER events_append_only",
            "SELECT 1",
        ),
    };
    // An alert edited after its event recorded it.
    app.sql(&["UPDATE alerts SET title = 'nothing to see' WHERE id = 7"])
        .await;
    let bad = app.verify().await;
    assert_eq!(bad.broken_at, Some(1), "{bad:?}");
    assert_eq!(
        bad.problem.as_deref(),
        Some("alert 7 was changed after event 1 recorded it")
    );
    app.sql(&["UPDATE alerts SET title = 'bench alert gi1s-batch-c4-ninst10-d20-pin0-rep1-1-169' WHERE id = 7"]).await;
    assert_eq!(
        app.verify().await.broken_at,
        None,
        "restoring the content restores the chain"
    );
    // An event deleted from the middle.
    app.sql(&[
        disable_update,
        disable_delete,
        "DELETE FROM events WHERE id = 2",
    ])
    .await;
    let bad = app.verify().await;
    assert_eq!(bad.broken_at, Some(3), "{bad:?}");
    assert!(bad.problem.unwrap().contains("jump from 1 to 3"));
    app.stop().await;
}

async fn reload_swaps_valid_config_and_keeps_the_old_on_error(app: TestApp) {
    let rules_path = app.dir.path().join("classification.toml");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let before = app
        .alerts(&json!({"source": "s", "title": "kraken spotted"}))
        .await;
    assert_eq!(before["alerts"][0]["disposition"], "recorded");
    // A broken rules file: refused, the running rules stay.
    std::fs::write(
        &rules_path,
        format!(
            "{rules}\n[[rules]]\nname = \"kraken\"\ncategory = \"malware\"\ntext = \"(kraken\"\n"
        ),
    )
    .unwrap();
    let err = app.reload().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("rules[15] (kraken).text: invalid regular expression"),
        "{err}"
    );
    let v = app
        .alerts(&json!({"source": "s", "title": "kraken spotted", "fingerprint": "k2"}))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    // Fixed: swapped in.
    std::fs::write(
        &rules_path,
        format!(
            "{rules}\n[[rules]]\nname = \"kraken\"\ncategory = \"malware\"\ntext = \"kraken\"\n"
        ),
    )
    .unwrap();
    app.reload().await.unwrap();
    let v = app
        .alerts(&json!({"source": "s", "title": "kraken spotted", "fingerprint": "k3"}))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "opened");
    // Tokens reload too: a removed token stops working at once.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let without_viewer = config.replace("name = \"viewer\"", "name = \"viewer-renamed\"");
    std::fs::write(&app.config_path, &without_viewer).unwrap();
    app.reload().await.unwrap();
    let (s, _) = app.get("/api/v1/incidents").await;
    assert_eq!(s, StatusCode::OK, "same hash, new name");
    std::fs::write(
        &app.config_path,
        without_viewer.replace(
            "[[auth.tokens]]\nname = \"viewer-renamed\"",
            "[[auth.tokens]]\nname = \"viewer-renamed\"\nbogus = 1",
        ),
    )
    .unwrap();
    let err = app.reload().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("auth.tokens[2].bogus: unknown field `bogus`"),
        "{err}"
    );
    // The reload is on the audit trail.
    std::fs::write(&app.config_path, &without_viewer).unwrap();
    let report = app.verify().await;
    assert_eq!(report.broken_at, None);
    app.stop().await;
}

/// SQLite's WAL is copied into the database by the checkpointer, not inside commits: it stops
/// growing once the checkpointer has caught up (the next commit starts it over), and a
/// graceful stop leaves it empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_and_emptied_on_shutdown() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let wal = app.dir.path().join("incidentd.db-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mut sizes = Vec::new();
    for round in 0..6 {
        let batch: Vec<_> = (0..200)
            .map(|i| {
                json!({
                    "source": "wal-test",
                    "title": format!("disk full {round}-{i}"),
                    "description": "x".repeat(100),
                    "fingerprint": format!("{round}-{i}"),
                })
            })
            .collect();
        let out = app.alerts(&json!(batch)).await;
        assert_eq!(out["alerts"].as_array().unwrap().len(), 200);
        // Time for the background checkpointer to catch up before the next write (nothing
        // outside shows when it has: the WAL's size is what the test measures).
        tokio::time::sleep(Duration::from_millis(300)).await;
        sizes.push(wal_len());
    }
    assert!(sizes[0] > 0, "writes go through the WAL");
    assert!(
        sizes[5] < 2 * sizes[0],
        "the WAL starts over instead of growing with every commit: {sizes:?}"
    );
    app.shutdown().await;
    assert_eq!(
        wal_len(),
        0,
        "a graceful stop checkpoints and truncates the WAL"
    );
    app.start_again().await;
    let (_, list) = app.get("/api/v1/alerts?limit=5").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(5));
    app.stop().await;
}
