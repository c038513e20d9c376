//! Issue #17 M5: the audit chain against someone who can write the database. Edits of sealed
//! rows are in tests/story.rs (after the whole story); here the chain itself: cut short, rewritten
//! with recomputed hashes, with and without `[audit] key`, and anchored by a head the daemon
//! logged. Both backends.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Backend, TestApp};
use incidentd::domain::audit::{EventContent, GENESIS, event_hash};
use serde_json::json;
use sqlx::Connection;

on_both_backends!(
    a_chain_cut_short_or_rewritten_without_the_key_is_caught,
    without_a_key_the_head_kept_elsewhere_catches_a_rewritten_chain,
    the_head_the_daemon_logs_anchors_the_chain,
    rows_from_before_sealing_are_sealed_once_at_start,
    every_column_of_a_sealed_table_is_sealed_or_named_as_progress,
);

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn keyed() -> String {
    format!("[audit]\nkey = \"{KEY}\"\n")
}

async fn declare(app: &TestApp, title: &str) {
    app.declare(&json!({"title": title, "severity": "S3", "category": "other"}))
        .await;
}

/// `incidentd audit verify --config … [more]`: (exit code, stdout).
async fn verify_cli(app: &TestApp, more: &[&str]) -> (i32, String) {
    let config = app.config_arg();
    let mut args = vec!["audit", "verify", "--config", &config];
    args.extend_from_slice(more);
    let (code, out, err) = app.cli("", &args).await;
    (code, format!("{out}{err}"))
}

/// The `ID:HASH` a verify printed.
fn head_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("head "))
        .unwrap_or_else(|| panic!("no head in: {out}"))
        .to_string()
}

async fn drop_append_only(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            app.sql(&[
                "DROP TRIGGER events_append_only_update",
                "DROP TRIGGER events_append_only_delete",
            ])
            .await
        }
        Backend::Postgres => {
            app.sql(&["DROP TRIGGER events_append_only ON events"])
                .await
        }
    }
}

type EventTuple = (i64, i64, String, String, Option<i64>, String);

/// What someone who can write the database but has no key can do: change an event and
/// recompute every SHA-256 hash from there on, so the chain is consistent again. `macs`:
/// keep the old MACs (`true`) or clear them.
async fn rewrite_chain(app: &TestApp, macs: bool) {
    const SELECT: &str = "SELECT id, at, actor, kind, incident_id, data FROM events ORDER BY id";
    let events: Vec<EventTuple> = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.store_url)
                .await
                .unwrap();
            sqlx::query_as(SELECT).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.store_url).await.unwrap();
            sqlx::query_as(SELECT).fetch_all(&mut c).await.unwrap()
        }
    };
    let mut prev = GENESIS.to_string();
    let mut statements = Vec::new();
    for (i, (id, at, actor, kind, incident_id, data)) in events.iter().enumerate() {
        let actor = if i == 0 { "nobody" } else { actor.as_str() };
        let hash = event_hash(
            &prev,
            EventContent {
                id: *id,
                at_micros: *at,
                actor,
                kind,
                incident_id: *incident_id,
                data,
            },
        );
        let mac = if macs { "mac" } else { "NULL" };
        statements.push(format!(
            "UPDATE events SET actor = '{actor}', prev_hash = '{prev}', hash = '{hash}', mac = {mac} WHERE id = {id}"
        ));
        prev = hash;
    }
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    app.sql(&refs).await;
}

async fn a_chain_cut_short_or_rewritten_without_the_key_is_caught(backend: Backend) {
    let Some(mut app) = TestApp::spawn_with(backend, &keyed()).await else {
        return;
    };
    declare(&app, "first").await;
    let (code, out) = verify_cli(&app, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("MACs checked"), "{out}");
    let earlier = head_of(&out);
    declare(&app, "second").await;
    // The chain still passes through the head kept earlier.
    let (code, out) = verify_cli(&app, &["--expect-head", &earlier]).await;
    assert_eq!(code, 0, "{out}");
    let r = app.verify().await;
    assert!(r.intact() && r.keyed && r.macs_checked == r.events, "{r:?}");
    let now = head_of(&out);
    app.shutdown().await;

    // The last event deleted: only the head kept elsewhere shows it.
    drop_append_only(&app).await;
    app.sql(&["DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)"])
        .await;
    let (code, out) = verify_cli(&app, &["--expect-head", &now]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("events were deleted from its end"),
        "truncation named: {out}"
    );

    // The chain rewritten with recomputed hashes: the MACs no longer match them …
    rewrite_chain(&app, true).await;
    let (code, out) = verify_cli(&app, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at event 1") && out.contains("MAC that does not match"),
        "{out}"
    );
    // … and without MACs the newest event lacks the one the key requires.
    rewrite_chain(&app, false).await;
    let (code, out) = verify_cli(&app, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("carries no MAC though [audit] key is set"),
        "{out}"
    );
    app.stop().await;
}

async fn without_a_key_the_head_kept_elsewhere_catches_a_rewritten_chain(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else {
        return;
    };
    declare(&app, "first").await;
    declare(&app, "second").await;
    let (code, out) = verify_cli(&app, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no [audit] key: MACs not checked"), "{out}");
    let kept = head_of(&out);
    app.shutdown().await;
    drop_append_only(&app).await;
    rewrite_chain(&app, false).await;
    // Unkeyed, a consistent rewrite verifies (SECURITY.md says so) …
    let (code, out) = verify_cli(&app, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_ne!(head_of(&out), kept);
    // … but not through the head kept elsewhere.
    let (code, out) = verify_cli(&app, &["--expect-head", &kept]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not the head written down earlier"),
        "{out}"
    );
    // A head that is not one is refused with how to give it.
    let (code, out) = verify_cli(&app, &["--expect-head", "12:abc"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("64 hex digits"), "{out}");
    app.stop().await;
}

async fn the_head_the_daemon_logs_anchors_the_chain(backend: Backend) {
    let Some(mut app) = TestApp::spawn_with(backend, &keyed()).await else {
        return;
    };
    declare(&app, "first").await;
    app.shutdown().await;
    // The daemon as a process: it logs the head when it starts (and every head_every).
    let mut child = Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(["serve", "--config", &app.config_arg()])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logged = None;
    for l in lines.map_while(Result::ok) {
        if l.contains("audit head") {
            logged = Some(l);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = logged.expect("the daemon logs the audit head");
    let head = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("head="))
        .unwrap_or_else(|| panic!("{line}"))
        .trim_matches('"')
        .to_string();
    assert!(line.contains("mac="), "{line}");
    let (code, out) = verify_cli(&app, &["--expect-head", &head]).await;
    assert_eq!(code, 0, "{line}\n{out}");
    app.stop().await;
}

async fn rows_from_before_sealing_are_sealed_once_at_start(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else {
        return;
    };
    declare(&app, "first").await;
    app.shutdown().await;
    // A row written by a version from before sealing, and no baseline yet.
    app.sql(&[
        "INSERT INTO grades (incident_id, jurisdiction, grade, criterion, why, at) \
         VALUES ((SELECT MIN(id) FROM incidents), 'CN', 'IV', 'c', 'written before sealing', 1)",
        "DELETE FROM audit_baseline",
    ])
    .await;
    let r = app.verify().await;
    assert!(
        r.problem
            .as_deref()
            .is_some_and(|p| p.starts_with("grades ") && p.contains("added outside")),
        "{r:?}"
    );
    let settings = incidentd::config::load(&app.config_path).unwrap();
    let store = incidentd::store::Store::connect(&settings).await.unwrap();
    let first = store.prepare_audit().await.unwrap();
    let again = store.prepare_audit().await.unwrap();
    store.close().await;
    assert!(first.baseline_rows.is_some_and(|n| n > 1), "{first:?}");
    assert_eq!(again.baseline_rows, None, "once only");
    let r = app.verify().await;
    assert!(r.intact(), "{r:?}");
    app.stop().await;
}

/// A column added to a sealed table must be sealed or named as progress on purpose
/// (src/store/seals.rs): otherwise an edit of it would go unseen.
async fn every_column_of_a_sealed_table_is_sealed_or_named_as_progress(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for table in incidentd::store::Sealed::ALL {
        let spec = table.spec();
        let mut columns: Vec<String> = match app.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&app.store_url)
                    .await
                    .unwrap();
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                    .bind(spec.table)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&app.store_url).await.unwrap();
                sqlx::query_scalar(
                    "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = current_schema()",
                )
                .bind(spec.table)
                .fetch_all(&mut c)
                .await
                .unwrap()
            }
        };
        columns.sort();
        let mut named: Vec<String> = spec
            .key
            .iter()
            .chain(spec.sealed)
            .chain(spec.unsealed)
            .map(|c| c.to_string())
            .collect();
        named.sort();
        assert_eq!(columns, named, "{}", spec.table);
    }
    app.stop().await;
}
