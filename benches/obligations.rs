//! Obligations benchmark: recomputing an incident's grades and obligations after a facts
//! change. In this process, through the library API, with the shipped jurisdiction packs, on a
//! fresh SQLite file (`synchronous = full`, as the daemon ships) or PostgreSQL database.
//!
//!     cargo bench --bench obligations
//!     cargo bench --bench obligations -- --changes 5000
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench obligations -- --backend postgres
//!
//! One PI incident under CN, SG and EU (ten obligations) takes `--changes` facts changes that
//! alternate across the CN threshold and change material facts, so every change regrades,
//! withdraws or adds obligations, moves deadlines and schedules their reminder timers. Two
//! figures, p50/p99/max:
//!
//! * `recompute`: the recompute alone — reading the incident's obligations and grades,
//!   assessing, and writing what changed — inside the facts change's transaction;
//! * `facts change`: the whole `PATCH …/facts` command through the engine (load, merge,
//!   classify, recompute, audit events, commit).
//!
//! The aim (issue #6) is a recompute under 5 ms at p99.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use incidentd::domain::regulation::OperatorType;
use incidentd::engine::obligations::{Regulation, recompute};
use incidentd::engine::{Declaration, Engine, IngestQueue};
use serde_json::json;

struct Opts {
    backend: String,
    changes: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        backend: "sqlite".into(),
        changes: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("a value after the option");
        match a.as_str() {
            "--backend" => o.backend = v(),
            "--changes" => o.changes = v().parse().expect("--changes N"),
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// The facts change number `i`: across the CN relatively-major threshold and back, with
/// material facts that differ each time.
fn patch(i: usize) -> serde_json::Value {
    json!({
        "affected_subjects": if i % 2 == 0 { 999_999 + i as u64 } else { 400_000 + i as u64 },
        "cause": format!("change {i}"),
        "critical_infrastructure": i % 3 == 0,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = opts();
    let db = support::open_db(&o.backend).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jurisdictions");
    let packs = incidentd::config::files::packs(&dir, &[], &|_| true)
        .unwrap_or_else(|p| panic!("{}", p.join("\n")));
    let reg = Regulation {
        packs: Arc::new(packs),
        operator_type: OperatorType::Other,
        jurisdictions: vec!["CN".parse().unwrap()],
    };
    let (queue, _writer) = IngestQueue::start(db.store.clone(), &Default::default());
    let engine = Engine::new(db.store.clone(), queue);
    engine.set_regulation(reg.clone());
    let rules = incidentd::config::load_rules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/classification.toml"),
    )
    .unwrap();
    let inc = engine
        .declare(
            serde_json::from_value::<Declaration>(json!({
                "title": "会员库被拖库",
                "category": "pi_leak",
                "facts": {
                    "affected_subjects": 1_200_000,
                    "data_types": ["name", "phone", "bank_account"],
                    "jurisdictions": ["CN", "SG", "EU"],
                    "risk": "high"
                }
            }))
            .unwrap(),
            &rules,
            "bench",
        )
        .await
        .unwrap();
    let rows = db.store.obligations_of(inc.id).await.unwrap();
    println!(
        "backend {}: one PI incident under CN, SG and EU, {} obligations; {} facts changes",
        o.backend,
        rows.len(),
        o.changes
    );

    // The recompute alone, in a transaction like the facts change's (facts applied first).
    let mut recompute_ms = Vec::with_capacity(o.changes);
    for i in 0..o.changes {
        let mut tx = db.store.begin_write().await.unwrap();
        let mut cur = tx.incident(inc.id).await.unwrap().unwrap();
        cur.facts = cur.facts.apply_patch(&patch(i)).unwrap();
        cur.facts_version += 1;
        tx.update_incident(&cur).await.unwrap();
        let t = Instant::now();
        let events = recompute(&mut tx, &reg, &mut cur, Utc::now())
            .await
            .unwrap();
        recompute_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tx.append(&events).await.unwrap();
        tx.commit().await.unwrap();
    }
    // The whole command.
    let mut command_ms = Vec::with_capacity(o.changes);
    for i in 0..o.changes {
        let t = Instant::now();
        engine
            .update_facts(inc.id, patch(o.changes + i), &rules, "bench")
            .await
            .unwrap();
        command_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let grades = db.store.grades_of(inc.id).await.unwrap().len();
    let after = db.store.obligations_of(inc.id).await.unwrap();
    println!(
        "after: {grades} grade changes recorded, {} obligation rows ({} withdrawn)",
        after.len(),
        after.iter().filter(|r| r.standing == "withdrawn").count()
    );
    let p99 = support::latency("recompute", recompute_ms, 3);
    support::latency("facts change", command_ms, 3);
    println!(
        "aim: recompute p99 < 5 ms: {}",
        if p99 < 5.0 { "met" } else { "NOT met" }
    );
    db.store.close().await;
    if o.backend == "postgres" {
        support::drop_pg_db(&db.url).await;
    }
}
