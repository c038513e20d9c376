//! The e-mail channel against a real SMTP server process (`incidentd sink`, this build's trial
//! sink): each message is read back as the `mail-parser` crate parses it, which is what a mail
//! client sees. Hung and silent servers, which the sink does not play, are small TCP listeners
//! in this file. The sink itself is tested here too: its files, its HTTP side, SIGTERM, and the
//! example of docs/deliveries.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common;

use incidentd::channels::email::{EmailChannel, EmailConfig};
use incidentd::channels::{Channel, ChannelKind, Content, Outgoing, Purpose, SendError};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::TcpListener;

/// The shared SMTP server process (`tests/common/smtp.rs`).
use common::smtp::KillOnDrop;
use common::smtp::Smtp as Sink;

fn config(url: &str, extra: &str) -> EmailConfig {
    let toml =
        format!("smtp_url = \"{url}\"\nfrom = \"安全应急中心 <security@example.com>\"\n{extra}\n");
    let cfg: EmailConfig = toml::from_str(&toml).unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    cfg
}

fn channel(url: &str, extra: &str) -> EmailChannel {
    EmailChannel::new(&config(url, extra)).unwrap()
}

fn outgoing(id: i64, key: &str, to: &str, content: Content) -> Outgoing {
    Outgoing {
        delivery_id: id,
        idempotency_key: key.into(),
        incident_id: Some(7),
        purpose: Purpose::Notice,
        channel: ChannelKind::Email,
        recipient: to.into(),
        locale: "zh-CN".into(),
        content,
    }
}

const SUBJECT: &str = "【安全事件】关于您的个人信息可能泄露的通知";
const TEXT: &str = "尊敬的用户：\n\n我们于 2025 年 3 月 1 日发现一起安全事件，您的手机号与邮箱可能受到影响。\n请修改密码。\n";
const HTML: &str = "<p>尊敬的用户：</p><p>我们发现一起<strong>安全事件</strong>，请修改密码。</p>";

fn chinese(html: bool) -> Content {
    Content {
        subject: Some(SUBJECT.into()),
        text: TEXT.into(),
        html: html.then(|| HTML.into()),
        ..Content::default()
    }
}

/// A decoded body as a reader sees it: MIME text is CRLF on the wire (lettre writes canonical
/// line ends, also inside base64), which clients show as plain line breaks.
fn body(v: &Value) -> String {
    s(v).replace("\r\n", "\n").trim_end().to_string()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[tokio::test]
async fn chinese_multipart_arrives_decoded_with_our_headers() {
    let sink = Sink::start();
    let ch = channel(&sink.url(), "");
    let sent = ch
        .send(&outgoing(
            41,
            "dlv-41",
            "张三 <zhang.san@example.org>",
            chinese(true),
        ))
        .await
        .unwrap();
    assert!(sent.provider_message_id.unwrap().contains("queued as"));

    let got = sink.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(s(&m["subject"]), SUBJECT);
    assert_eq!(s(&m["content_type"]), "multipart/alternative");
    assert_eq!(m["parts"], serde_json::json!(["text/plain", "text/html"]));
    assert_eq!(body(&m["text"]), TEXT.trim_end());
    assert_eq!(body(&m["html"]), HTML);
    assert_eq!(s(&m["mail_from"]), "security@example.com");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["zhang.san@example.org"]));
    assert_eq!(s(&m["from"]), "安全应急中心 <security@example.com>");
    assert_eq!(s(&m["to"]), "张三 <zhang.san@example.org>");
    assert_eq!(s(&m["message_id"]), "<incidentd.dlv-41@example.com>");
    assert_eq!(s(&m["message_id"]), ch.message_id("dlv-41"));
    assert_eq!(s(&m["delivery"]), "41");
    assert!(!s(&m["date"]).is_empty());
    // What travelled was 7-bit clean: the subject RFC 2047-encoded, the bodies transfer-encoded.
    let raw = s(&m["raw"]);
    assert!(raw.is_ascii(), "{raw}");
    assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
}

#[tokio::test]
async fn text_only_is_plain_utf8() {
    let sink = Sink::start();
    let ch = channel(&sink.url(), "");
    ch.send(&outgoing(1, "k1", "li.si@example.org", chinese(false)))
        .await
        .unwrap();
    let m = &sink.messages()[0];
    assert_eq!(s(&m["content_type"]), "text/plain");
    assert_eq!(m["parts"], serde_json::json!(["text/plain"]));
    assert_eq!(body(&m["text"]), TEXT.trim_end());
    assert!(m["html"].is_null());
    assert!(
        s(&m["raw"]).to_ascii_lowercase().contains("charset=utf-8"),
        "{}",
        s(&m["raw"])
    );
}

#[tokio::test]
async fn message_id_is_stable_for_one_delivery_and_distinct_across_deliveries() {
    let sink = Sink::start();
    let ch = channel(&sink.url(), "");
    // Two attempts of one delivery (same key), then another delivery.
    for (id, key) in [
        (5, "delivery-5:attempt"),
        (5, "delivery-5:attempt"),
        (6, "delivery-6"),
    ] {
        ch.send(&outgoing(id, key, "a@example.org", chinese(true)))
            .await
            .unwrap();
    }
    let ids: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| s(&m["message_id"]).to_string())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(ids[0], "<incidentd.delivery-5=3Aattempt@example.com>");
}

#[tokio::test]
async fn smtp_4xx_is_transient_and_5xx_permanent_with_the_servers_words() {
    let sink = Sink::start();
    let ch = channel(&sink.url(), "");
    let e = ch
        .send(&outgoing(1, "k1", "tempfail-1@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
    assert!(e.to_string().contains("451"), "{e}");
    assert!(e.to_string().contains("try again later"), "{e}");

    let e = ch
        .send(&outgoing(2, "k2", "reject-me@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Permanent(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("550"), "{text}");
    assert!(text.contains("Recipient address rejected"), "{text}");
    assert!(
        !text.contains("reject-me@"),
        "the address is masked: {text}"
    );
    assert!(text.contains("r***@example.org"), "{text}");

    // The channel still works after refusals (their connections were dropped, not reused).
    ch.send(&outgoing(3, "k3", "ok@example.org", chinese(true)))
        .await
        .unwrap();
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_missing_subject_is_permanent_and_nothing_is_sent() {
    let sink = Sink::start();
    let ch = channel(&sink.url(), "");
    let mut content = chinese(true);
    content.subject = None;
    let e = ch
        .send(&outgoing(1, "k", "a@example.org", content))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Permanent(_)), "{e:?}");
    assert!(e.to_string().contains("no subject"), "{e}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_not_sent() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = channel(&format!("smtp://127.0.0.1:{port}"), "timeout = \"2s\"");
    let e = ch
        .send(&outgoing(1, "k", "a@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::NotSent(_)), "{e:?}");
}

#[tokio::test]
async fn tls_that_cannot_be_set_up_is_not_sent() {
    let sink = Sink::start();
    // Implicit TLS against a plain server: the handshake fails.
    let ch = channel(
        &format!("smtps://127.0.0.1:{}", sink.port),
        "timeout = \"2s\"",
    );
    let e = ch
        .send(&outgoing(1, "k", "a@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::NotSent(_)), "{e:?}");
    // STARTTLS required, and the server does not offer it.
    let ch = channel(
        &format!("smtp://127.0.0.1:{}?tls=required", sink.port),
        "timeout = \"2s\"",
    );
    let e = ch
        .send(&outgoing(2, "k", "a@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::NotSent(_)), "{e:?}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_burst_through_the_pool_arrives_exactly_once() {
    const N: i64 = 200;
    const POOL: usize = 5;
    let sink = Sink::start();
    let ch = Arc::new(channel(
        &sink.url(),
        &format!("pool_max = {POOL}\npool_timeout = \"60s\"\ntimeout = \"30s\""),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let ch = ch.clone();
        tasks.spawn(async move {
            ch.send(&outgoing(
                i,
                &format!("burst-{i}"),
                &format!("user{i}@example.org"),
                chinese(true),
            ))
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let got = sink.messages();
    assert_eq!(got.len(), N as usize);
    let mut by_id: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &got {
        let id: i64 = s(&m["delivery"]).parse().unwrap();
        *by_id.entry(id).or_default() += 1;
        assert_eq!(
            m["rcpt_tos"],
            serde_json::json!([format!("user{id}@example.org")])
        );
        assert_eq!(s(&m["subject"]), SUBJECT);
    }
    assert_eq!(
        by_id.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>()
    );
    assert!(by_id.values().all(|&n| n == 1));
    // The pool held at most POOL connections open, and reused them.
    let peers: BTreeSet<&str> = got.iter().map(|m| s(&m["peer"])).collect();
    assert!(
        peers.len() <= POOL,
        "{} connections were used: {peers:?}",
        peers.len()
    );
}

/// A server that greets and accepts everything up to the message, then answers it too late —
/// on its first connection only; later connections are served normally. Returns the port,
/// the number of connections accepted, and what the later connections were sent.
async fn hang_after_data_once() -> (u16, Arc<AtomicUsize>, Arc<tokio::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let (acc, log) = (accepted.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let n = acc.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = TokioBufReader::new(r).lines();
                w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if n > 0 {
                        log.lock().await.push(line.clone());
                    }
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        if n == 0 {
                            // Time must pass (the test plays a hung server): answer only after
                            // the client gave up. A client that put this
                            // connection back in its pool would read this late reply as the
                            // answer to its next command and carry on out of step.
                            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                        }
                        b"250 2.0.0 queued\r\n"
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => b"250-fake\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => b"221 bye\r\n",
                            _ => b"250 ok\r\n",
                        }
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, accepted, seen)
}

#[tokio::test]
async fn a_timeout_mid_transaction_is_transient_and_the_connection_is_not_reused() {
    let (port, accepted, seen) = hang_after_data_once().await;
    let ch = channel(
        &format!("smtp://127.0.0.1:{port}"),
        "timeout = \"500ms\"\npool_max = 1",
    );
    let e = ch
        .send(&outgoing(1, "k1", "a@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
    assert!(e.to_string().contains("may or may not have arrived"), "{e}");

    // The next send opens a fresh connection and runs a clean transaction from EHLO.
    ch.send(&outgoing(2, "k2", "b@example.org", chinese(true)))
        .await
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let seen = seen.lock().await;
    assert!(seen[0].starts_with("EHLO"), "{seen:?}");
    assert!(
        seen.iter().any(|l| l == "X-Incidentd-Delivery: 2"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l == "X-Incidentd-Delivery: 1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_greets_is_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            held.push(sock);
        }
    });
    let ch = channel(&format!("smtp://127.0.0.1:{port}"), "timeout = \"300ms\"");
    let e = ch
        .send(&outgoing(1, "k", "a@example.org", chinese(true)))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::NotSent(_)), "{e:?}");
}

/// The whole path through the running daemon: an e-mail delivery enqueued over the API is
/// committed, claimed, sent over SMTP to a real server process and recorded as sent.
async fn daemon_sends_email_end_to_end(backend: common::Backend) {
    let smtp = Sink::start();
    let extra = format!(
        "[channels.email]\nsmtp_url = \"{}\"\nfrom = \"Security <security@example.com>\"\n",
        smtp.url()
    );
    let Some(app) = common::TestApp::spawn_with(backend, &extra).await else {
        return;
    };
    // By hand, only the response team is reached on a real incident; a drill reaches the
    // addresses an admin lists for it (here the SMTP server's two test mailboxes).
    let id = app
        .declare(&serde_json::json!({"title": "Leak", "category": "pi_leak", "drill": true}))
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/drill/recipients"),
            common::ADMIN,
            &serde_json::json!({"recipients": [
                {"channel": "email", "recipient": "zhang.san@example.com"},
                {"channel": "email", "recipient": "reject-me@example.com"}
            ]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{v}");
    let (status, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/deliveries"),
            common::RESPONDER,
            &serde_json::json!({"deliveries": [{
                "channel": "email", "recipient": "zhang.san@example.com",
                "content": {"subject": SUBJECT, "text": TEXT, "html": HTML}
            }, {
                "channel": "email", "recipient": "reject-me@example.com",
                "content": {"subject": "x", "text": "x"}
            }]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{v}");
    let v = app
        .wait_deliveries(id, 15, |v| {
            v["by_status"]["sent"] == 1 && v["by_status"]["dead"] == 1
        })
        .await;
    let sent = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "sent")
        .unwrap()
        .clone();
    assert_eq!(sent["recipient"], "z***@example.com");
    assert_eq!(sent["provider"], "smtp");
    let dead = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "dead")
        .unwrap()
        .clone();
    assert!(
        dead["last_error"].as_str().unwrap().contains("550"),
        "{dead}"
    );
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(s(&msgs[0]["subject"]), SUBJECT);
    assert_eq!(body(&msgs[0]["text"]), TEXT.trim_end());
    assert!(
        s(&msgs[0]["message_id"]).contains("@example.com>"),
        "{}",
        msgs[0]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_daemon_sends_email_end_to_end() {
    daemon_sends_email_end_to_end(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_daemon_sends_email_end_to_end() {
    daemon_sends_email_end_to_end(common::Backend::Postgres).await;
}

/// `incidentd sink` as a person runs it, on free ports: (process, SMTP address, HTTP address).
fn sink_process(dir: &std::path::Path) -> (KillOnDrop, String, String) {
    let mut child = common::smtp::spawn_sink(dir);
    let (smtp, http) = common::smtp::listening(&mut child);
    (KillOnDrop(child), smtp, http)
}

/// Sends SIGTERM and waits (at most 5 s) for the exit status.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    common::exited_within(child, std::time::Duration::from_secs(5)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("incidentd sink did not stop within 5 s of SIGTERM")
    })
}

#[tokio::test]
async fn the_sink_keeps_each_message_before_its_250_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, smtp, _) = sink_process(dir.path());
    let ch = channel(&format!("smtp://{smtp}"), "");
    for id in [1, 2] {
        let sent = ch
            .send(&outgoing(
                id,
                &format!("k{id}"),
                "张三 <zhang.san@example.org>",
                chinese(true),
            ))
            .await
            .unwrap();
        let answer = sent.provider_message_id.unwrap();
        assert!(answer.contains(&format!("queued as test-{id}")), "{answer}");
        // On disk by the time the client has its answer: the message whole, its envelope beside.
        let eml = std::fs::read(dir.path().join(format!("00000{id}.eml"))).unwrap();
        let meta: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("00000{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["size"], eml.len());
        assert_eq!(
            meta["rcpt_tos"],
            serde_json::json!(["zhang.san@example.org"])
        );
        assert_eq!(meta["mail_from"], "security@example.com");
        assert!(s(&meta["peer"]).starts_with("127.0.0.1:"), "{meta}");
        let m = common::smtp::parse(&eml);
        assert_eq!(s(&m["subject"]), SUBJECT);
        assert_eq!(s(&m["delivery"]), id.to_string());
    }
    // It does not read its standard input (it has none here) and is still there.
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the sink stopped by itself"
    );
    let status = terminate(&mut child.0);
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
}

#[tokio::test]
async fn the_sink_answers_an_http_post_as_a_gateway_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _, http) = sink_process(dir.path());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = client
        .post(format!("http://{http}/sms?trial=1"))
        .header("authorization", "Bearer gateway-token")
        .json(&serde_json::json!({"kind": "sms", "to": "+8613800138000", "text": "测试"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["id"], "sink-1",
        "the id generic_http reads as the provider's"
    );
    let kept: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("http-000001.json")).unwrap())
            .unwrap();
    assert_eq!(kept["method"], "POST");
    assert_eq!(kept["path"], "/sms");
    assert_eq!(kept["query"], "trial=1");
    assert_eq!(kept["headers"]["authorization"], "Bearer gateway-token");
    assert_eq!(kept["body"]["to"], "+8613800138000");
    assert_eq!(kept["body"]["text"], "测试");
    // Text that is not JSON is kept as text; GET / says what the sink is; other methods 405.
    client
        .post(format!("http://{http}/voice"))
        .body("plain words")
        .send()
        .await
        .unwrap();
    let kept: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("http-000002.json")).unwrap())
            .unwrap();
    assert_eq!(kept["body"], "plain words");
    let about = client.get(format!("http://{http}/")).send().await.unwrap();
    assert!(about.text().await.unwrap().contains("trial sink"));
    let put = client
        .put(format!("http://{http}/sms"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert!(terminate(&mut child.0).success());
}

/// The first ```sh block under `heading` in a page of the repository, as lines.
fn doc_block(page: &str, heading: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{}/{page}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = text
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{page} has no `{heading}` section"))
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, b)| b.split_once("\n```"))
        .unwrap_or_else(|| panic!("{page}: `{heading}` has no ```sh block"))
        .0;
    block.lines().map(str::to_string).collect()
}

/// Each command of a block with the lines (`#   …`) it is shown to print.
fn commands(block: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for line in block.iter().map(|l| l.trim()) {
        if let Some(printed) = line.strip_prefix("#   ") {
            out.last_mut().unwrap().1.push(printed.trim().to_string());
        } else if !line.is_empty() && !line.starts_with('#') {
            let command = line.split(" # ").next().unwrap();
            out.push((shlex::split(command).unwrap(), Vec::new()));
        }
    }
    out
}

/// Points the shipped configuration's e-mail and SMS/voice gateways, which the sink's defaults
/// match, at the sink's actual addresses.
fn at_sink(config: &mut toml::Table, smtp: &str, http: &str) {
    let channels = config["channels"].as_table_mut().unwrap();
    for (channel, key, default, actual) in [
        ("email", "smtp_url", "127.0.0.1:2525", smtp),
        ("sms", "base_url", "127.0.0.1:9000", http),
        ("voice", "base_url", "127.0.0.1:9000", http),
    ] {
        let section = channels[channel].as_table_mut().unwrap();
        let url = section[key].as_str().unwrap().to_string();
        assert!(
            url.contains(default),
            "config/incidentd.toml's {channel}.{key} = {url}: the sink's default is {default}"
        );
        section.insert(key.into(), url.replace(default, actual).into());
    }
}

/// docs/deliveries.md's trial-sink example, run as the page writes it against a daemon on the
/// shipped configuration; what must differ: the sink's ports (free ones, the daemon pointed at
/// them) and its folder (the test's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trial_sink_example_of_docs_deliveries_runs_as_written() {
    let steps = commands(&doc_block("docs/deliveries.md", "## A trial sink"));
    let dir = tempfile::tempdir().unwrap();
    let mut sink: Option<KillOnDrop> = None;
    let mut app: Option<common::TestApp> = None;
    let mut token = String::new();
    for (words, printed) in &steps {
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["incidentd", "sink", rest @ .., "&"] => {
                let out = rest.iter().position(|a| *a == "--out").expect("--out DIR");
                let mut args: Vec<String> = rest.iter().map(|a| a.to_string()).collect();
                args[out + 1] = dir.path().display().to_string();
                args.extend(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"].map(String::from));
                let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
                    .arg("sink")
                    .args(&args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let (smtp, http) = common::smtp::listening(&mut child);
                assert_eq!(
                    printed,
                    &["SMTP 127.0.0.1:2525", "HTTP 127.0.0.1:9000"],
                    "the page shows the sink's default addresses"
                );
                let (smtp, http) = (smtp.clone(), http.clone());
                app = common::TestApp::spawn_shipped(common::Backend::Sqlite, move |c| {
                    at_sink(c, &smtp, &http)
                })
                .await;
                sink = Some(KillOnDrop(child));
            }
            ["export", assignment] => {
                token = assignment
                    .strip_prefix("INCIDENTD_TOKEN=")
                    .unwrap()
                    .to_string();
            }
            ["incidentd", rest @ ..] => {
                let app = app.as_ref().expect("the daemon, started with the sink");
                let (code, stdout, stderr) = app.cli(&token, rest).await;
                assert_eq!(code, 0, "`{}` failed:\n{stdout}{stderr}", words.join(" "));
                for line in printed {
                    assert!(
                        stdout.contains(line.as_str()),
                        "`{}` should print `{line}`:\n{stdout}",
                        words.join(" ")
                    );
                }
            }
            ["ls", _] => {
                let mut names: Vec<String> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                names.sort();
                let shown: Vec<&str> = printed.iter().flat_map(|l| l.split_whitespace()).collect();
                assert_eq!(names, shown);
            }
            ["kill", "%1"] => {
                let status = terminate(&mut sink.as_mut().expect("the sink, started before").0);
                assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
            }
            _ => panic!("the test does not know how to run `{}`", words.join(" ")),
        }
    }
    assert!(
        sink.is_some_and(|mut s| s.0.try_wait().unwrap().is_some()),
        "the example stops the sink"
    );
    app.unwrap().stop().await;
}
