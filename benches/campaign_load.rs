//! Notice campaign benchmark: a release daemon on a fresh SQLite (or PostgreSQL) database with the
//! shipped PI playbook; a personal-information incident; `--subjects` affected people (default
//! 1,000,000) streamed in as one CSV upload; the public announcement published; the notice
//! approved; a campaign on two channels — SMS to a local HTTP gateway and e-mail to a local SMTP
//! server, both in this process — enqueued and delivered.
//!
//!     cargo bench --bench campaign_load                          # 1,000,000 subjects
//!     cargo bench --bench campaign_load -- --subjects 100000 --deliver 20
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench campaign_load -- --backend postgres
//!
//! Reported: the import's time and rate, the daemon's peak RSS during it; the time from the
//! approval to the last delivery enqueued (two per subject), with peak RSS; then delivery
//! throughput for `--deliver` seconds (SMS and e-mail reaching the sinks), with RSS. The CSV is
//! written to a temporary file first (not timed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, Daemon, Receipts, TOKEN, http_sink, proc_status, response_config, smtp_sink};

struct Opts {
    backend: String,
    subjects: usize,
    deliver: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        backend: "sqlite".into(),
        subjects: 1_000_000,
        deliver: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => o.backend = args.next().unwrap(),
            "--subjects" => o.subjects = args.next().unwrap().parse().unwrap(),
            "--deliver" => o.deliver = args.next().unwrap().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown option {other}: use --backend, --subjects, --deliver"),
        }
    }
    o
}

/// Samples the daemon's RSS every 100 ms; `peak()` since the last `reset()`.
struct RssWatch {
    peak: Arc<AtomicU64>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(0));
        let p = peak.clone();
        tokio::spawn(async move {
            loop {
                p.fetch_max(proc_status(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssWatch { peak }
    }
    fn reset(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }
    fn peak_mb(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) / 1024
    }
}

fn write_csv(path: &std::path::Path, n: usize) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        f,
        "subject_id,name,phone,email,site_user_id,locale,channels"
    )
    .unwrap();
    for i in 0..n {
        let (name, locale) = if i % 2 == 0 {
            (format!("用户{i}"), "zh-CN")
        } else {
            (format!("User {i}"), "en")
        };
        writeln!(
            f,
            "member-{i:08},{name},+86138{i:08},member{i}@example.com,site-{i},{locale},sms;email",
        )
        .unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sms = Arc::new(Receipts::default());
        let mail = Arc::new(Receipts::default());
        let sms_url = http_sink(sms.clone()).await;
        let smtp_url = smtp_sink(mail.clone()).await;
        let extra = format!(
            "{}\n[channels.sms]\nprovider = \"generic_http\"\nbase_url = \"{sms_url}\"\nconcurrency = 64\ntimeout = \"10s\"\n\
             [channels.email]\nsmtp_url = \"{smtp_url}\"\nfrom = \"Security <security@example.com>\"\npool_max = 32\nconcurrency = 64\n\
             [dispatch]\nbatch_size = 512\n\
             [subjects]\nkey = \"bench:{}\"\n",
            response_config(),
            "ab".repeat(32)
        );
        let d = Daemon::start(&o.backend, &extra);
        let pid = d.child.id();
        let rss = RssWatch::start(pid);
        println!(
            "campaign load: {} backend, {} subjects, release daemon {}",
            o.backend,
            o.subjects,
            support::daemon_binary()
        );
        let api = Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("http://{}", d.addr),
        };
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("subjects.csv");
        let bytes = write_csv(&csv, o.subjects);
        let id = api
            .post(
                "/api/v1/incidents",
                // The facts in each language the shipped configuration's notices and
                // announcement speak (zh-CN, en): a reader is told in their own.
                json!({"title": "会员数据库泄露（基准测试）", "category": "pi_leak", "facts": {
                    "cause": {"zh-CN": "数据库备份可被公开读取。", "en": "A database backup was publicly readable."},
                    "impact": {"zh-CN": "姓名和手机号可能被用于诈骗。", "en": "Names and phone numbers may be used for fraud."},
                    "data_types": ["name", "phone"],
                    "measures_taken": {"zh-CN": "该备份已被删除。", "en": "The backup was removed."},
                    "advice_to_subjects": {"zh-CN": "警惕自称本公司的来电。", "en": "Beware of calls claiming to be from us."},
                    "remedies": {"zh-CN": "一年免费身份监控。", "en": "Free identity monitoring for a year."},
                }}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        // Let the playbook apply (its tasks hold the notice approval).
        for _ in 0..100 {
            let t = api.get(&format!("/api/v1/incidents/{id}/tasks")).await;
            if t["tasks"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // 1. Import, streamed.
        rss.reset();
        let started = Instant::now();
        let file = tokio::fs::File::open(&csv).await.unwrap();
        let res = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://{}/api/v1/incidents/{id}/subjects", d.addr))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(incidentd::cli::file_body(file, Arc::new(AtomicU64::new(0))))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let report: Value = res.json().await.unwrap();
        let import_secs = started.elapsed().as_secs_f64();
        assert!(status.is_success(), "{report}");
        assert_eq!(report["accepted"].as_u64(), Some(o.subjects as u64), "{report}");
        println!(
            "import      {:>9} rows ({:.0} MB) in {:>6.1} s = {:>7.0} rows/s   peak RSS {} MB",
            o.subjects,
            bytes as f64 / 1e6,
            import_secs,
            o.subjects as f64 / import_secs,
            rss.peak_mb()
        );

        // 2. The public announcement, then the campaign: created, approved, enqueued.
        let a = api
            .post(
                &format!("/api/v1/incidents/{id}/announcement"),
                json!({"reason": "a million people: a public announcement as well"}),
            )
            .await;
        // Nothing reaches the public unapproved: the announcement's approvers approve it.
        let task = a["approval_task"].as_i64().expect("the announcement's approval");
        api.post(
            &format!("/api/v1/approvals/{task}/approve"),
            json!({"reason": "bench"}),
        )
        .await;
        let page = api
            .http
            .get(format!("{}/announcements/{}", api.base, a["slug"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert!(page.status().is_success());
        println!("announcement {} published", a["url"].as_str().unwrap_or("?"));
        let c = api
            .post(
                &format!("/api/v1/incidents/{id}/notices"),
                json!({"channels": ["sms", "email"], "mode": "all"}),
            )
            .await;
        let campaign = c["id"].as_i64().unwrap();
        for key in ["contain", "assess_affected", "prepare_notice"] {
            api.post(
                &format!("/api/v1/incidents/{id}/tasks/{key}/complete"),
                json!({"note": "bench"}),
            )
            .await;
        }
        let t = api.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        let gate = t["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "approve_notice")
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        rss.reset();
        sms.reset();
        mail.reset();
        let approved = Instant::now();
        api.post(&format!("/api/v1/approvals/{gate}/approve"), json!({"reason": "bench"}))
            .await;
        let enqueued = loop {
            let list = api.get(&format!("/api/v1/incidents/{id}/notices")).await;
            let c = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == campaign)
                .unwrap()
                .clone();
            if c["status"] == "enqueued" {
                break c;
            }
            assert!(c["error"].is_null(), "{c}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let enqueue_secs = approved.elapsed().as_secs_f64();
        println!(
            "enqueue     {:>9} deliveries in {:>6.1} s = {:>7.0} /s          peak RSS {} MB   (import + enqueue {:.1} s; sent meanwhile: SMS {}, e-mail {})",
            enqueued["deliveries"],
            enqueue_secs,
            enqueued["deliveries"].as_f64().unwrap() / enqueue_secs,
            rss.peak_mb(),
            import_secs + enqueue_secs,
            sms.count(),
            mail.count()
        );

        // 3. Delivery for a while.
        rss.reset();
        let (sms0, mail0) = (sms.count(), mail.count());
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(o.deliver)).await;
        let secs = t0.elapsed().as_secs_f64();
        let (sms_n, mail_n) = (sms.count() - sms0, mail.count() - mail0);
        println!(
            "deliver     {:>9} at the sinks in {:>4.1} s = {:>7.0} /s (SMS {:.0} /s, e-mail {:.0} /s)   peak RSS {} MB",
            sms_n + mail_n,
            secs,
            (sms_n + mail_n) as f64 / secs,
            sms_n as f64 / secs,
            mail_n as f64 / secs,
            rss.peak_mb()
        );
        let c = api.get(&format!("/api/v1/incidents/{id}/notices/{campaign}")).await;
        println!("campaign    {}", c["progress"]);
    });
}
