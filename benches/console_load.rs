//! Web console under real volume (issue #18, part 5): a release daemon on the shipped
//! configuration, its SQLite store seeded with 10,000 incidents (one in twenty a personal-
//! information leak at S1, a third closed), 100,000 tasks (every tenth an approval for Legal and
//! Government Relations), 60,000 team pages, 90,000 obligations, 100,000 deliveries and
//! 1,000,000 subjects; the Legal on-call signed in; every console page fetched in turn.
//!
//!     cargo bench --bench console_load
//!     cargo bench --bench console_load -- --requests 500
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench --bench console_load -- --backend postgres
//!
//! Reported per page: p50, p99 and max over `--requests` sequential requests (after 20 to warm
//! up), against the aim of p99 < 50 ms. The seeding is plain SQL on the store before the daemon
//! starts (not timed); the daemon then seals the seeded rows once (its `audit.baseline`), as it
//! would for a database from before sealing. SQLite by default; `--backend postgres` seeds and
//! runs the same on a fresh PostgreSQL database (dropped at the end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use support::Daemon;

const INCIDENTS: i64 = 10_000;
const SUBJECTS: i64 = 1_000_000;
const PASSWORD: &str = "a benchmark password";

/// `--requests N` (200) and `--backend sqlite|postgres` (sqlite).
fn options() -> (usize, String) {
    let mut n = 200;
    let mut backend = "sqlite".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--requests" => n = args.next().unwrap().parse().unwrap(),
            "--backend" => backend = args.next().unwrap(),
            "--bench" => {}
            other => panic!("unknown option {other}: use --requests N, --backend sqlite|postgres"),
        }
    }
    (n, backend)
}

/// The seeding statements, written for SQLite; on PostgreSQL the row generator is
/// `generate_series` (64-bit, so the times do not overflow; the recursion `SELECT s … WHERE i <
/// e` yields s to e inclusive, as the series does) and the flags are booleans.
fn dialect(sql: String, postgres: bool) -> String {
    if !postgres {
        return sql.replace("{false}", "0").replace("{true}", "1");
    }
    let sql = sql.replace("{false}", "FALSE").replace("{true}", "TRUE");
    let Some(rest) = sql.strip_prefix("WITH RECURSIVE n(i) AS (SELECT ") else {
        return sql;
    };
    let (start, rest) = rest
        .split_once(" UNION ALL SELECT i + 1 FROM n WHERE i < ")
        .unwrap();
    let (end, rest) = rest.split_once(") ").unwrap();
    format!("WITH n(i) AS (SELECT generate_series({start}::bigint, {end})) {rest}")
}

async fn seed(url: &str) {
    let now = chrono::Utc::now().timestamp_micros();
    let postgres = url.starts_with("postgres");

    let depts = "CASE i % 6 WHEN 0 THEN 'security' WHEN 1 THEN 'government_relations' WHEN 2 THEN 'legal' \
                 WHEN 3 THEN 'public_relations' WHEN 4 THEN 'customer_service' ELSE 'it_operations' END";
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {INCIDENTS}) \
             INSERT INTO incidents (id, title, category, severity, status, drill, origin, facts, facts_version, \
             first_seen_at, discovered_at, updated_at, created_by) \
             SELECT i, '基准事件 / Bench incident ' || i, \
             CASE WHEN i % 20 = 0 THEN 'pi_leak' ELSE 'malware' END, CASE WHEN i % 20 = 0 THEN 'S1' ELSE 'S3' END, \
             CASE WHEN i % 3 = 0 THEN 'closed' ELSE 'triaged' END, {{false}}, 'declaration', \
             '{{\"affected_subjects\": 4200, \"cause\": {{\"zh-CN\": \"备份可公开读取\", \"en\": \"A backup was publicly readable\"}}}}', 1, \
             {now} - i * 60000000, {now} - i * 60000000, {now}, 'bench' FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {INCIDENTS} * 10 - 1) \
             INSERT INTO tasks (incident_id, key, title, department, approval, approvers, due_offset_secs, due_at, status, \
             created_at, updated_at) \
             SELECT i / 10 + 1, 'task' || (i % 10), '任务 / Task ' || (i % 10), \
             CASE WHEN i % 10 = 9 THEN 'legal' ELSE {depts} END, \
             CASE WHEN i % 10 = 9 THEN {{true}} ELSE {{false}} END, \
             CASE WHEN i % 10 = 9 THEN '[\"legal\",\"government_relations\"]' ELSE '[]' END, \
             3600, {now} + (i % 997) * 60000000, \
             CASE WHEN (i / 10 + 1) % 3 = 0 THEN 'done' ELSE 'open' END, {now}, {now} FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {INCIDENTS} * 6 - 1) \
             INSERT INTO incident_team (incident_id, department, level, paged_at, acked_at, acked_by) \
             SELECT i / 6 + 1, {depts}, 1, {now} - 600000000, \
             CASE WHEN i % 4 = 0 THEN NULL ELSE {now} END, CASE WHEN i % 4 = 0 THEN NULL ELSE 'token:bench' END FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {INCIDENTS} * 9 - 1) \
             INSERT INTO obligations (incident_id, key, jurisdiction, obligation, kind, owner, standing, clock, clock_start, \
             due_at, detail, status, created_at, updated_at) \
             SELECT i / 9 + 1, 'CN:bench_' || (i % 9), 'CN', 'bench_' || (i % 9), 'report', 'government_relations', \
             CASE WHEN i % 9 < 3 THEN 'required' ELSE 'not_required' END, 'aware', {now}, \
             {now} + ((i * 7919) % 100000) * 1000000 - 3600000000, '{{}}', \
             CASE WHEN (i / 9 + 1) % 3 = 0 THEN 'met' ELSE 'open' END, {now}, {now} FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) \
             INSERT INTO deliveries (idempotency_key, incident_id, drill, purpose, channel, recipient, locale, content, \
             status, attempts, created_at, next_attempt_at, sent_at, updated_at) \
             SELECT 'bench-' || i, i % {INCIDENTS} + 1, {{false}}, 'page', CASE WHEN i % 2 = 0 THEN 'email' ELSE 'sms' END, \
             'member' || (i % 97) || '@example.com', 'en', '{{}}', 'sent', 1, {now}, {now}, {now}, {now} FROM n"
        ),
        format!(
            "INSERT INTO subject_imports (id, incident_id, actor, format, status, started_at) \
             VALUES (1, {INCIDENTS}, 'bench', 'csv', 'done', {now})"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {SUBJECTS} - 1) \
             INSERT INTO subjects (incident_id, subject_id, import_id, name_mask, email_mask, locale, channels, \
             created_at, updated_at) \
             SELECT {INCIDENTS} - (i % 20) * 20, 'member-' || i, 1, 'U***', 'm***@example.com', 'en', 'email', \
             {now}, {now} FROM n"
        ),
    ];
    let statements: Vec<String> = statements
        .into_iter()
        .map(|s| dialect(s, postgres))
        .collect();
    if !postgres {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s))
                .execute(&mut c)
                .await
                .unwrap();
        }
        c.close().await.unwrap();
        return;
    }
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s))
            .execute(&mut c)
            .await
            .unwrap();
    }
    // Ids were given: move the identity sequences past them, as the daemon would have.
    for t in [
        "incidents",
        "tasks",
        "deliveries",
        "subject_imports",
        "subjects",
        "obligations",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

/// `incidentd accounts password legal-oncall`, retried while the daemon, just started on a
/// large store, still holds it busy.
fn set_password(d: &Daemon, env: &[(&str, String)]) {
    for _ in 0..30 {
        if try_set_password(d, env) {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("cannot set the password");
}

fn try_set_password(d: &Daemon, env: &[(&str, String)]) -> bool {
    let mut child = Command::new(support::daemon_binary())
        .args(["accounts", "password", "legal-oncall", "--config"])
        .arg(&d.config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let o = child.wait_with_output().unwrap();
    if !o.status.success() {
        eprintln!(
            "accounts password: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o.status.success()
}

/// Sign in as the Legal on-call; the `Cookie` header of the session.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let res = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = res.text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + 32];
    let res = http
        .post(format!("{base}/console/login"))
        .header("cookie", login_cookie)
        .form(&[
            ("login", "legal-oncall"),
            ("password", PASSWORD),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("incidentd_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn main() {
    let (n, backend) = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // The schema, by the daemon's own migrations; then the volume.
        let url = {
            let db = support::open_db(&backend).await;
            db.store.close().await;
            if backend == "postgres" {
                db.url.clone()
            } else {
                let src = db.url.trim_start_matches("sqlite://").to_string();
                std::fs::copy(&src, dir.path().join("incidentd.db")).unwrap();
                format!("sqlite://{}/incidentd.db", dir.path().display())
            }
        };
        let started = Instant::now();
        seed(&url).await;
        println!(
            "console load ({backend}): seeded {INCIDENTS} incidents, {} tasks, {} team pages, {} obligations, 100000 deliveries, {SUBJECTS} subjects in {:.1} s",
            INCIDENTS * 10,
            INCIDENTS * 6,
            INCIDENTS * 9,
            started.elapsed().as_secs_f64()
        );
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let env: Vec<(&str, String)> = vec![
            ("INCIDENTD__STORE__URL", url.clone()),
            ("INCIDENTD__SERVER__LISTEN", "127.0.0.1:0".into()),
            (
                "INCIDENTD__PATHS__TEMPLATES",
                root.join("templates").display().to_string(),
            ),
        ];
        let started = Instant::now();
        let d = Daemon::start_shipped("sqlite", &env[..1]);
        println!(
            "daemon up (with the one-time seal of the seeded rows) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        set_password(&d, &env);
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://{}", d.addr);
        let cookie = sign_in(&http, &base).await;
        let pages = [
            ("My work", "/console".to_string()),
            ("incidents (open)", "/console/incidents".to_string()),
            (
                "incidents (all, S1)",
                "/console/incidents?state=all&severity=S1".to_string(),
            ),
            ("an S1 incident", format!("/console/incidents/{}", INCIDENTS - 20)),
            ("obligations board", "/console/obligations".to_string()),
            ("drills", "/console/drills".to_string()),
        ];
        println!("{:<22} {:>9} {:>9} {:>9}  aim p99 < 50 ms", "page", "p50 ms", "p99 ms", "max ms");
        let mut all_pass = true;
        for (name, path) in &pages {
            let mut ms = Vec::with_capacity(n);
            for i in 0..n + 20 {
                let t = Instant::now();
                let res = http
                    .get(format!("{base}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body = res.bytes().await.unwrap();
                assert!(status.is_success(), "{path}: {status}");
                assert!(body.len() > 500, "{path}: {} bytes", body.len());
                if i >= 20 {
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            ms.sort_by(f64::total_cmp);
            let p50 = support::pct(&ms, 0.50);
            let p99 = support::pct(&ms, 0.99);
            let max = ms.last().copied().unwrap_or_default();
            let pass = p99 < 50.0;
            all_pass &= pass;
            println!(
                "{name:<22} {p50:>9.2} {p99:>9.2} {max:>9.2}  {}",
                if pass { "PASS" } else { "MISS" }
            );
        }
        println!(
            "every page p99 < 50 ms: {}",
            if all_pass { "PASS" } else { "MISS" }
        );
        drop(d);
        if backend == "postgres" {
            support::drop_pg_db(&url).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
