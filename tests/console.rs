//! Issue #18, the web console: people of the joint team sign in and work the incident in a
//! browser. The stories click through headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver); the refusals are checked with plain HTTP. The
//! shipped configuration, both backends.

use crate::common;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    legal_approves_and_security_acknowledges_in_the_browser,
    government_relations_approves_a_report_and_submits_it,
    refusals_without_role_csrf_or_password_and_sessions_that_end,
);

const RESPONDER: &str = "dev-responder-token";
const VIEWER: &str = "dev-viewer-token";
const PASSWORD: &str = "correct horse battery staple";

/// The shipped configuration, with a read-only member added to Legal.
async fn app(backend: Backend, idle: &str) -> Option<TestApp> {
    let idle = idle.to_string();
    TestApp::spawn_shipped(backend, move |c| {
        let depts = c
            .get_mut("departments")
            .unwrap()
            .as_array_mut()
            .unwrap();
        let legal = depts
            .iter_mut()
            .find(|d| d["id"].as_str() == Some("legal"))
            .unwrap();
        let members = legal
            .get_mut("members")
            .unwrap()
            .as_array_mut()
            .unwrap();
        let viewer: toml::Table = toml::from_str(
            "name = \"Legal observer\"\nemail = \"legal-observer@example.com\"\nlogin = \"legal-viewer\"\nroles = [\"viewer\"]\nlevel = 3\n",
        )
        .unwrap();
        members.push(toml::Value::Table(viewer));
        let console = c
            .entry("console")
            .or_insert(toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
        console.insert("idle_timeout".into(), idle.into());
        // The shipped config's commented-out schedule, on: a drill every Wednesday at 10:00.
        let schedule: toml::Table = toml::from_str(
            "scenario = \"phone_id_dump\"\ncron = \"0 0 10 * * Wed\"\ntime_zone = \"Asia/Shanghai\"\n",
        )
        .unwrap();
        let drills = c
            .entry("drills")
            .or_insert(toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
        drills.insert(
            "schedule".into(),
            toml::Value::Array(vec![toml::Value::Table(schedule)]),
        );
    })
    .await
}

/// `incidentd accounts password LOGIN`, the password on standard input.
fn set_password(app: &TestApp, login: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(["accounts", "password", login, "--config", &app.config_arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(&format!("password set for {login}")),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A personal-information leak whose notice approval waits for Legal, its preparation done.
async fn leak_waiting_for_legal(app: &TestApp) -> (i64, i64) {
    let (s, v) = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(RESPONDER),
            Some(&json!({
                "title": "客户数据库被导出 / Customer database exported",
                "category": "pi_leak",
                "severity": "S1",
                "facts": {
                    "data_types": ["phone", "id_number"],
                    "affected_subjects": 4200,
                    "cause": {"zh-CN": "客户数据库被未经授权导出", "en": "Our customer database was exported without authorisation"},
                    "impact": {"zh-CN": "手机号可能被用于诈骗", "en": "Phone numbers may be used for fraud"},
                    "measures_taken": {"zh-CN": "已阻断并轮换凭据", "en": "Access was blocked and credentials rotated"},
                    "measures_planned": {"zh-CN": "全面排查数据访问权限", "en": "A review of every data access right"},
                    "advice_to_subjects": {"zh-CN": "警惕诈骗电话", "en": "Beware of fraudulent calls"},
                    "remedies": {"zh-CN": "一年免费账户安全提醒", "en": "A year of free account alerts"},
                },
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().unwrap();
    // The playbook is applied just after the incident opens.
    common::wait_for("the playbook's tasks", 20, || async {
        let (_, v) = app
            .call(
                Method::GET,
                &format!("/api/v1/incidents/{id}/tasks"),
                Some(VIEWER),
                None,
            )
            .await;
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let (s, v) = app
            .call(
                Method::POST,
                &format!("/api/v1/incidents/{id}/tasks/{key}/complete"),
                Some(RESPONDER),
                Some(&json!({"note": "done"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    let gate = task(app, id, "approve_notice").await["id"]
        .as_i64()
        .unwrap();
    (id, gate)
}

async fn task(app: &TestApp, id: i64, key: &str) -> Value {
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{id}/tasks"),
            Some(VIEWER),
            None,
        )
        .await;
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key}: {v:#}"))
        .clone()
}

// --- a tiny WebDriver client ---------------------------------------------------------------

struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Headless Chromium through chromedriver; `None` (saying why) when it is not installed.
    async fn start() -> Option<Browser> {
        let install = "apt-get install -y chromium chromium-driver";
        if !common::have_browser("chromium", install)
            || !common::have_browser("chromedriver", install)
        {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        common::wait_for("chromedriver answering", 10, async || {
            http.get(format!("{base}/status")).send().await.is_ok()
        })
        .await;
        let profile = tempfile::tempdir().unwrap().keep();
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1000,1300", format!("--user-data-dir={}", profile.display())],
                },
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Some(Browser {
            driver,
            base,
            session,
            http,
        })
    }

    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        match v[ELEMENT].as_str() {
            Some(e) => e.to_string(),
            None => panic!("no element {css} ({v}) on:\n{}", self.source().await),
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.cmd(Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page once `ok` holds for it (a click's navigation may still be under way).
    async fn page_when(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        for _ in 0..100 {
            let page = self.source().await;
            if ok(&page) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: {}", self.source().await)
    }

    /// With `INCIDENTD_SCREENSHOTS=<folder>`, a PNG of the page (the README's pictures).
    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("INCIDENTD_SCREENSHOTS") else {
            return;
        };
        use base64::Engine as _;
        let v = self.cmd(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }

    async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn sign_in(&self, app: &TestApp, login: &str) {
        self.go(&app.url("/console")).await;
        assert!(self.url().await.contains("/console/login"));
        self.type_into("#login", login).await;
        self.type_into("#password", PASSWORD).await;
        self.click("#sign-in").await;
        self.page_when("signed in", |p| p.contains("action=\"/console/logout\""))
            .await;
    }

    async fn sign_out(&self) {
        self.click("header form button").await;
        self.page_when("signed out", |p| p.contains("id=\"sign-in\""))
            .await;
    }

    async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn legal_approves_and_security_acknowledges_in_the_browser(backend: Backend) {
    let Some(app) = app(backend, "30m").await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        app.stop().await;
        return;
    };
    for login in ["legal-oncall", "security-oncall", "cs-lead", "legal-viewer"] {
        set_password(&app, login);
    }
    let (id, gate) = leak_waiting_for_legal(&app).await;

    // The Legal on-call signs in and finds the notice approval in My work.
    b.sign_in(&app, "legal-oncall").await;
    let page = b.source().await;
    assert!(
        page.contains("我的工作") && page.contains("法务部审批个人通知"),
        "{page}"
    );
    // English, and it stays English.
    b.click("a[href='/console/lang/en']").await;
    let page = b
        .page_when("in English", |p| p.contains("lang=\"en\""))
        .await;
    assert!(
        page.contains("My work") && page.contains("Approval"),
        "{page}"
    );
    b.go(&app.url("/console")).await;
    assert!(b.source().await.contains("Sign out"));
    b.screenshot("console-my-work").await;
    b.click(&format!("#approve-{gate}")).await;
    let approve_button = format!("approve-{gate}");
    b.page_when("approved", |p| !p.contains(&approve_button))
        .await;
    let t = task(&app, id, "approve_notice").await;
    assert_eq!(t["status"], "approved", "{t:#}");
    assert_eq!(
        t["decisions"][0]["decided_by"], "person:legal-oncall@legal",
        "{t:#}"
    );
    let page = b.source().await;
    assert!(!page.contains(&format!("approve-{gate}")), "{page}");
    b.sign_out().await;

    // The security on-call opens the incident's console page (the link a page carries), signs
    // in, lands back on it, and takes a task from My work.
    b.go(&app.url(&format!("/console/incidents/{id}"))).await;
    assert!(b.url().await.contains("/console/login?next="));
    b.type_into("#login", "security-oncall").await;
    b.type_into("#password", PASSWORD).await;
    b.click("#sign-in").await;
    b.page_when("signed in", |p| p.contains("action=\"/console/logout\""))
        .await;
    assert!(
        b.url().await.ends_with(&format!("/console/incidents/{id}")),
        "back where the link pointed"
    );
    let page = b.source().await;
    assert!(
        page.contains("Joint team") && page.contains("Obligations"),
        "{page}"
    );
    // The facts in the page's language.
    assert!(
        page.contains("Our customer database was exported without authorisation")
            && !page.contains("客户数据库被未经授权导出"),
        "{page}"
    );
    b.screenshot("console-incident").await;
    b.go(&app.url("/console")).await;
    b.click(&format!(
        "form[action='/console/incidents/{id}/tasks/preserve_evidence/ack'] button"
    ))
    .await;
    b.page_when("acknowledged", |p| {
        !p.contains("tasks/preserve_evidence/ack")
    })
    .await;
    let t = task(&app, id, "preserve_evidence").await;
    assert_eq!(
        (t["status"].as_str(), t["acked_by"].as_str()),
        (Some("acked"), Some("person:security-oncall@security")),
        "{t:#}"
    );
    b.sign_out().await;

    // Customer Service was paged and nobody acknowledged yet: its lead does, from My work.
    b.sign_in(&app, "cs-lead").await;
    let page = b.source().await;
    assert!(page.contains("Page to acknowledge"), "{page}");
    b.click(&format!(
        "form[action='/console/incidents/{id}/page/ack'] button"
    ))
    .await;
    b.page_when("page acknowledged", |p| !p.contains("Page to acknowledge"))
        .await;
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{id}/tasks"),
            Some(VIEWER),
            None,
        )
        .await;
    let cs = v["team"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["department"] == "customer_service")
        .unwrap()
        .clone();
    assert_eq!(cs["acked_by"], "person:cs-lead@customer_service", "{v:#}");
    assert!(!b.source().await.contains("Page to acknowledge"));
    b.sign_out().await;

    // A viewer sees the work but no button to approve.
    b.sign_in(&app, "legal-viewer").await;
    let page = b.source().await;
    assert!(page.contains("My work"), "{page}");
    assert!(
        !page.contains("/approve\""),
        "no approve form for a viewer: {page}"
    );
    b.close().await;
    // The audit trail names the people, and is intact.
    let (_, tl) = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{id}/timeline"),
            Some(VIEWER),
            None,
        )
        .await;
    let text = tl.to_string();
    assert!(
        text.contains("person:legal-oncall@legal")
            && text.contains("person:security-oncall@security"),
        "{tl:#}"
    );
    assert!(app.verify().await.intact());
    app.stop().await;
}

/// A console client over plain HTTP: cookies by hand, no redirects followed.
struct Client {
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Client {
    fn new() -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, url: &str) -> (StatusCode, String, String) {
        self.send(self.http.get(url)).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        self.send(self.http.post(url).form(form)).await
    }

    /// Send with the cookies kept so far; keep the ones it sets: (status, Location, body).
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let res = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        let status = res.status();
        let loc = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, loc, res.text().await.unwrap())
    }

    /// The value of the hidden `csrf` field on a page.
    fn csrf(page: &str) -> String {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + page[at..].find('"').unwrap()].to_string()
    }

    async fn sign_in(&mut self, app: &TestApp, login: &str, password: &str) -> StatusCode {
        let (_, _, form) = self.get(&app.url("/console/login")).await;
        let csrf = Client::csrf(&form);
        let (s, _, _) = self
            .post(
                &app.url("/console/login"),
                &[("login", login), ("password", password), ("csrf", &csrf)],
            )
            .await;
        s
    }
}

async fn refusals_without_role_csrf_or_password_and_sessions_that_end(backend: Backend) {
    let Some(app) = app(backend, "2s").await else {
        return;
    };
    for login in ["legal-oncall", "legal-viewer"] {
        set_password(&app, login);
    }
    let (_, gate) = leak_waiting_for_legal(&app).await;
    let approve = app.url(&format!("/console/approvals/{gate}/approve"));

    // Not signed in: to the sign-in page.
    let mut c = Client::new();
    let (s, loc, _) = c.get(&app.url("/console")).await;
    assert_eq!(
        (s, loc.as_str()),
        (StatusCode::SEE_OTHER, "/console/login?next=%2Fconsole")
    );
    // A wrong password, and a form without its token.
    assert_eq!(
        c.sign_in(&app, "legal-oncall", "not the password").await,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, _) = c
        .post(
            &app.url("/console/login"),
            &[("login", "legal-oncall"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The viewer: signed in, but the approval is refused.
    let mut viewer = Client::new();
    assert_eq!(
        viewer.sign_in(&app, "legal-viewer", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let (s, _, page) = viewer.get(&app.url("/console")).await;
    assert_eq!(s, StatusCode::OK);
    let csrf = Client::csrf(&page);
    let (s, _, page) = viewer.post(&approve, &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("(legal-viewer: viewer)"), "{page}");

    // Legal: a form posted without its CSRF token (or with another session's) is refused.
    let mut legal = Client::new();
    assert_eq!(
        legal.sign_in(&app, "legal-oncall", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    // The drills page lists a drill once one ran.
    let (s, v) = app
        .call(
            Method::POST,
            "/api/v1/drills",
            Some(RESPONDER),
            Some(&json!({"scenario": "phone_id_dump"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v:#}");
    let (s, _, page) = legal.get(&app.url("/console/drills")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("phone_id_dump") && page.contains("演练"),
        "{page}"
    );
    // … and when the scheduled one runs next: a Wednesday, 02:00 UTC (10:00 in Shanghai).
    let next = page
        .split("下次 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no next run on the drills page: {page}"));
    let day: chrono::NaiveDate = next[..10].parse().unwrap();
    assert_eq!(
        (chrono::Datelike::weekday(&day), &next[10..21]),
        (chrono::Weekday::Wed, " 02:00 UTC "),
        "{next}"
    );
    let (s, _, page) = legal.get(&app.url("/console/incidents?drill=drill")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("【演练】"),
        "the drill incident is listed as one: {page}"
    );
    let (s, _, page) = legal.post(&approve, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("CSRF"), "{page}");
    let (s, _, _) = legal.post(&approve, &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        task(&app, 1, "approve_notice").await["status"],
        "open",
        "nothing was approved"
    );

    // A session unused past [console] idle_timeout (2s here) ends (time must pass: the session's
    // clock is the wall clock).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, loc, _) = legal.get(&app.url("/console")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(loc.contains("expired=1"), "{loc}");

    // Too many wrong passwords: locked out for [console] lockout, even with the right one.
    let mut guesser = Client::new();
    for _ in 0..5 {
        assert_eq!(
            guesser.sign_in(&app, "legal-oncall", "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guesser.sign_in(&app, "legal-oncall", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The cookies the console sets.
    let res = reqwest::Client::new()
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"));
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    app.stop().await;
}

async fn government_relations_approves_a_report_and_submits_it(backend: Backend) {
    let Some(app) = app(backend, "30m").await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        app.stop().await;
        return;
    };
    set_password(&app, "gr-oncall");
    let (id, _) = leak_waiting_for_legal(&app).await;
    // The report to the PI-protection authority, drafted by a responder, approved by Legal.
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/reports"),
            Some(RESPONDER),
            Some(&json!({"obligation": "CN:pipl_authority", "inputs": {
                "system": "客户关系管理系统",
                "location": "上海数据中心",
                "likely_development": "数据可能在黑市流通",
                "tracing": "导出目标主机已锁定",
            }})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r:#}");
    let rid = r["id"].as_i64().unwrap();
    let gate = r["approval_task"].as_i64().unwrap();
    let (s, v) = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{gate}/approve"),
            Some("dev-legal-token"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");

    // Government Relations reads the version in the browser — the document, Legal's decision —
    b.sign_in(&app, "gr-oncall").await;
    b.go(&app.url(&format!("/console/reports/{rid}"))).await;
    let page = b.source().await;
    assert!(
        page.contains("客户关系管理系统") && page.contains("legal") && page.contains("approved"),
        "{page}"
    );
    assert!(page.contains(&format!("approve-{gate}")), "{page}");
    // … and approves it from My work …
    b.go(&app.url("/console")).await;
    let page = b.source().await;
    assert!(page.contains(&format!("approve-{gate}")), "{page}");
    b.click(&format!("#approve-{gate}")).await;
    let approve_button = format!("approve-{gate}");
    b.page_when("approved", |p| !p.contains(&approve_button))
        .await;
    // … and, from the incident's page, records that it was submitted through the portal.
    b.go(&app.url(&format!("/console/incidents/{id}"))).await;
    b.type_into(&format!("#reference-{rid}"), "CAC-2026-0412")
        .await;
    let select = b.find(&format!("#via-{rid} option[value='manual']")).await;
    b.cmd(
        Method::POST,
        &format!("/element/{select}/click"),
        Some(json!({})),
    )
    .await;
    b.click(&format!("#submit-{rid}")).await;
    b.page_when("submitted", |p| p.contains("CAC-2026-0412"))
        .await;
    let (_, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/reports/{rid}"),
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["reference"].as_str()),
        (Some("submitted"), Some("CAC-2026-0412")),
        "{v:#}"
    );
    assert!(
        v.to_string()
            .contains("person:gr-oncall@government_relations"),
        "{v:#}"
    );
    // The obligations board lists what is still owed; the incidents list finds the incident.
    b.go(&app.url("/console/obligations")).await;
    let page = b.source().await;
    assert!(
        !page.contains("CN:pipl_authority"),
        "met, no longer owed: {page}"
    );
    b.go(&app.url("/console/incidents?severity=S1")).await;
    assert!(
        b.source()
            .await
            .contains(&format!("/console/incidents/{id}\""))
    );
    b.screenshot("console-obligations").await;
    // Government Relations learns more people in China are affected: a new version of the facts.
    let incident = || async {
        let path = format!("/api/v1/incidents/{id}");
        app.call(Method::GET, &path, Some(VIEWER), None).await.1
    };
    let before = incident().await["facts_version"].as_i64().unwrap();
    b.go(&app.url(&format!("/console/incidents/{id}"))).await;
    b.click("#facts-edit").await;
    b.type_into("#facts-set", "by_jurisdiction.CN.affected_subjects=2400000")
        .await;
    b.click("#facts-save").await;
    b.page_when("the new facts", |p| p.contains("2400000"))
        .await;
    let inc = incident().await;
    assert_eq!(inc["facts_version"].as_i64(), Some(before + 1), "{inc:#}");
    assert_eq!(
        inc["facts"]["by_jurisdiction"]["CN"]["affected_subjects"], 2400000,
        "{inc:#}"
    );
    let (_, tl) = app
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{id}/timeline?limit=500"),
            Some(VIEWER),
            None,
        )
        .await;
    assert!(
        tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "incident.facts_updated"
                && e["actor"] == "person:gr-oncall@government_relations"),
        "{tl:#}"
    );
    b.close().await;
    assert!(app.verify().await.intact());
    app.stop().await;
}
