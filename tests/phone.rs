//! SMS and voice providers against local HTTP servers that record the exact request and answer
//! like the real provider. Time and nonce are injected; signatures are compared with values
//! computed independently (Python's hmac for Aliyun, a second TC3 implementation below for
//! Tencent, whose signature covers the local server's port).

use std::sync::{Arc, Mutex};

use aws_lc_rs::{digest, hmac};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use incidentd::channels::sms::{PhoneChannel, PhoneConfig, Stamp};
use incidentd::channels::{Channel, ChannelKind, Content, Outgoing, Purpose, SendError};
use serde_json::{Value, json};

/// One request the fake provider received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Fake {
    base: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// A server on 127.0.0.1:0 that records each request and answers `status` with `body`
    /// (`hang`: never answers).
    async fn start(status: u16, content_type: &'static str, body: &'static str) -> Fake {
        Fake::serve(status, content_type, body, false).await
    }

    async fn hanging() -> Fake {
        Fake::serve(200, "application/json", "{}", true).await
    }

    async fn serve(
        status: u16,
        content_type: &'static str,
        body: &'static str,
        hang: bool,
    ) -> Fake {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = Router::new().fallback(move |req: Request| {
            let log = log.clone();
            async move {
                let (parts, b) = req.into_parts();
                let bytes = axum::body::to_bytes(b, usize::MAX).await.unwrap();
                log.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path_and_query: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers: parts.headers,
                    body: bytes.to_vec(),
                });
                if hang {
                    std::future::pending::<()>().await;
                }
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", content_type)],
                    body,
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            base: format!("http://127.0.0.1:{port}"),
            port,
            seen,
        }
    }

    fn only(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
        seen[0].clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn stamp() -> Stamp {
    Stamp {
        now: chrono::DateTime::parse_from_rfc3339("2017-07-12T02:42:19Z")
            .unwrap()
            .to_utc(),
        nonce: "45e25e9b-0a6f-4070-8c85-2956eda1b466".into(),
    }
}

fn channel(kind: ChannelKind, toml_text: &str) -> PhoneChannel {
    let cfg: PhoneConfig = toml::from_str(toml_text).unwrap();
    PhoneChannel::new(kind, &cfg, http())
        .unwrap()
        .with_clock(stamp)
}

fn msg(kind: ChannelKind, to: &str, template: Option<&str>, params: &[(&str, &str)]) -> Outgoing {
    Outgoing {
        delivery_id: 42,
        idempotency_key: "123".into(),
        incident_id: Some(7),
        purpose: Purpose::Page,
        channel: kind,
        recipient: to.into(),
        locale: "en".into(),
        content: Content {
            text: "P1 incident: DB leak & more".into(),
            template: template.map(str::to_string),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Content::default()
        },
    }
}

// ---------------------------------------------------------------- generic_http

#[tokio::test]
async fn generic_sms_posts_signed_json_and_records_the_id() {
    let fake = Fake::start(202, "application/json", r#"{"message_id":"gw-77"}"#).await;
    let ch = channel(
        ChannelKind::Sms,
        &format!(
            r#"provider = "generic_http"
base_url = "{}/send"
from = "INCIDENTD"
token = "gateway-token"
signing_secret = "0123456789abcdef0123"
"#,
            fake.base
        ),
    );
    assert_eq!(ch.provider(), "generic_http");
    let m = msg(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("title", "DB leak")],
    );
    let sent = ch.send(&m).await.unwrap();
    assert_eq!(sent.provider_message_id.as_deref(), Some("gw-77"));

    let r = fake.only();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path_and_query, "/send");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("idempotency-key"), "123");
    assert_eq!(r.header("authorization"), "Bearer gateway-token");
    assert_eq!(r.header("x-incidentd-timestamp"), "1499827339");
    let mut signed = b"1499827339.".to_vec();
    signed.extend_from_slice(&r.body);
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123");
    assert_eq!(
        r.header("x-incidentd-signature"),
        format!("sha256={}", hex::encode(hmac::sign(&key, &signed)))
    );
    assert_eq!(
        r.json(),
        json!({
            "kind": "sms",
            "to": "+8613800000000",
            "text": "P1 incident: DB leak & more",
            "from": "INCIDENTD",
            "template": "page/incident_opened",
            "params": {"title": "DB leak"},
            "locale": "en",
            "idempotency_key": "123",
            "delivery_id": 42
        })
    );
}

#[tokio::test]
async fn generic_voice_posts_without_optional_auth() {
    let fake = Fake::start(200, "application/json", r#"{"id":"call-1"}"#).await;
    let ch = channel(
        ChannelKind::Voice,
        &format!(
            "provider = \"generic_http\"\nbase_url = \"{}/call\"",
            fake.base
        ),
    );
    let sent = ch
        .send(&msg(ChannelKind::Voice, "+14155550100", None, &[]))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id.as_deref(), Some("call-1"));
    let r = fake.only();
    assert_eq!(r.path_and_query, "/call");
    assert!(r.headers.get("authorization").is_none());
    assert!(r.headers.get("x-incidentd-signature").is_none());
    let body = r.json();
    assert_eq!(body["kind"], "voice");
    assert_eq!(body["from"], Value::Null);
    assert_eq!(body["template"], Value::Null);
}

async fn generic_with_status(status: u16) -> Result<(), SendError> {
    let fake = Fake::start(status, "text/plain", "gateway says no to +8613800000000").await;
    let ch = channel(
        ChannelKind::Sms,
        &format!(
            "provider = \"generic_http\"\nbase_url = \"{}/send\"",
            fake.base
        ),
    );
    let r = ch
        .send(&msg(ChannelKind::Sms, "+8613800000000", None, &[]))
        .await;
    assert_eq!(fake.count(), 1);
    r.map(|_| ())
}

#[tokio::test]
async fn http_statuses_sort_into_transient_and_permanent() {
    for s in [429, 500, 503] {
        let e = generic_with_status(s).await.unwrap_err();
        assert!(
            matches!(&e, SendError::Transient(m) if m.contains("gateway says no")),
            "{s}: {e:?}"
        );
    }
    for s in [400, 401, 403] {
        let e = generic_with_status(s).await.unwrap_err();
        assert!(matches!(&e, SendError::Permanent(_)), "{s}: {e:?}");
        assert!(
            !e.to_string().contains("13800000000"),
            "the number is masked: {e}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (provider, extra) in [
        ("generic_http", ""),
        (
            "twilio",
            "key_id = \"AC1\"\nkey_secret = \"t\"\nfrom = \"+14155550111\"",
        ),
    ] {
        let ch = channel(
            ChannelKind::Sms,
            &format!("provider = \"{provider}\"\nbase_url = \"http://127.0.0.1:{port}/\"\n{extra}"),
        );
        let e = ch
            .send(&msg(ChannelKind::Sms, "+14155550100", None, &[]))
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::NotSent(_)), "{provider}: {e:?}");
    }
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_transient() {
    let fake = Fake::hanging().await;
    let ch = channel(
        ChannelKind::Sms,
        &format!(
            "provider = \"generic_http\"\nbase_url = \"{}/send\"\ntimeout = \"300ms\"",
            fake.base
        ),
    );
    let e = ch
        .send(&msg(ChannelKind::Sms, "+14155550100", None, &[]))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
}

// ---------------------------------------------------------------- aliyun

fn aliyun(kind: ChannelKind, fake: &Fake) -> PhoneChannel {
    let extra = match kind {
        ChannelKind::Voice => {
            "from = \"4001112222\"\n[templates]\n\"page/incident_opened\" = \"TTS_10001\""
        }
        _ => {
            "sign_name = \"阿里云短信测试专用\"\n[templates]\n\"page/incident_opened\" = \"SMS_71390007\""
        }
    };
    channel(
        kind,
        &format!(
            "provider = \"aliyun\"\nbase_url = \"{}/\"\nkey_id = \"testId\"\nkey_secret = \"testSecret\"\n{extra}",
            fake.base
        ),
    )
}

/// Signature computed with Python's hmac over the same parameters (POST, Format=JSON).
const ALIYUN_SMS_BODY: &str = "AccessKeyId=testId&Action=SendSms&Format=JSON&OutId=123\
&PhoneNumbers=15300000001&RegionId=cn-hangzhou\
&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8\
&Signature=uXFmOZ%2BG8ZX3qPh4wK0RMGokzcw%3D&SignatureMethod=HMAC-SHA1\
&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D\
&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25";

#[tokio::test]
async fn aliyun_sms_sends_the_signed_template_request() {
    let fake = Fake::start(
        200,
        "application/json;charset=utf-8",
        r#"{"Message":"OK","RequestId":"F655A8D5-B967-440B-8683-DAD6FF8DE990","Code":"OK","BizId":"900619746936498440^0"}"#,
    )
    .await;
    let ch = aliyun(ChannelKind::Sms, &fake);
    assert_eq!(ch.provider(), "aliyun");
    let m = msg(
        ChannelKind::Sms,
        "+8615300000001",
        Some("page/incident_opened"),
        &[("customer", "test")],
    );
    let sent = ch.send(&m).await.unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("900619746936498440^0")
    );
    let r = fake.only();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path_and_query, "/");
    assert_eq!(
        r.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(r.text(), ALIYUN_SMS_BODY);
    assert!(!r.text().contains("DB%20leak"), "free text is never sent");
}

#[tokio::test]
async fn aliyun_voice_calls_with_the_tts_template() {
    let fake = Fake::start(
        200,
        "application/json",
        r#"{"RequestId":"D9CB3933","CallId":"116012354148^10281378","Code":"OK","Message":"OK"}"#,
    )
    .await;
    let ch = aliyun(ChannelKind::Voice, &fake);
    let m = msg(
        ChannelKind::Voice,
        "+8615300000001",
        Some("page/incident_opened"),
        &[("customer", "test")],
    );
    let sent = ch.send(&m).await.unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("116012354148^10281378")
    );
    assert_eq!(
        fake.only().text(),
        "AccessKeyId=testId&Action=SingleCallByTts&CalledNumber=15300000001\
&CalledShowNumber=4001112222&Format=JSON&OutId=123&RegionId=cn-hangzhou\
&Signature=pnaOb9w6gIXxgl3sBJPFLfj2Xo0%3D&SignatureMethod=HMAC-SHA1\
&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
&Timestamp=2017-07-12T02%3A42%3A19Z&TtsCode=TTS_10001\
&TtsParam=%7B%22customer%22%3A%22test%22%7D&Version=2017-05-25"
    );
}

#[tokio::test]
async fn aliyun_refusals_keep_the_providers_words() {
    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Message":"触发小时级流控Permits:5","RequestId":"R-1","Code":"isv.BUSINESS_LIMIT_CONTROL"}"#,
    )
    .await;
    let m = msg(
        ChannelKind::Sms,
        "+8615300000001",
        Some("page/incident_opened"),
        &[],
    );
    let e = aliyun(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Transient(t) if t.contains("isv.BUSINESS_LIMIT_CONTROL") && t.contains("流控")),
        "{e:?}"
    );

    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Message":"该账号下找不到对应模板","RequestId":"R-2","Code":"isv.SMS_TEMPLATE_ILLEGAL"}"#,
    )
    .await;
    let e = aliyun(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("isv.SMS_TEMPLATE_ILLEGAL") && t.contains("找不到对应模板")),
        "{e:?}"
    );

    let fake = Fake::start(
        404,
        "application/json",
        r#"{"Message":"Specified access key is not found.","RequestId":"R-3","Code":"InvalidAccessKeyId.NotFound"}"#,
    )
    .await;
    let e = aliyun(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("InvalidAccessKeyId.NotFound")),
        "{e:?}"
    );
    assert!(!e.to_string().contains("testSecret"));
}

#[tokio::test]
async fn template_only_providers_refuse_messages_without_a_template_code() {
    let fake = Fake::start(200, "application/json", r#"{"Code":"OK"}"#).await;
    let ch = aliyun(ChannelKind::Sms, &fake);
    let e = ch
        .send(&msg(ChannelKind::Sms, "+8615300000001", None, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("free text")),
        "{e:?}"
    );
    let e = ch
        .send(&msg(
            ChannelKind::Sms,
            "+8615300000001",
            Some("notice/breach"),
            &[],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains(r#"channels.sms.templates."notice/breach""#)),
        "{e:?}"
    );
    let t = tencent(ChannelKind::Voice, &fake);
    let e = t
        .send(&msg(ChannelKind::Voice, "+8613800000000", None, &[]))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Permanent(_)), "{e:?}");
    assert_eq!(fake.count(), 0, "nothing reached the provider");
}

// ---------------------------------------------------------------- tencent

fn tencent(kind: ChannelKind, fake: &Fake) -> PhoneChannel {
    let extra = match kind {
        ChannelKind::Voice => {
            "app_id = \"1400006667\"\n[templates]\n\"page/incident_opened\" = \"4356\""
        }
        _ => {
            "app_id = \"1400006666\"\nsign_name = \"腾讯云\"\n[templates]\n\"page/incident_opened\" = \"1110\"\n[param_order]\n\"page/incident_opened\" = [\"title\", \"code\"]"
        }
    };
    channel(
        kind,
        &format!(
            "provider = \"tencent\"\nbase_url = \"{}/\"\nkey_id = \"AKIDtest\"\nkey_secret = \"tencent-secret\"\n{extra}",
            fake.base
        ),
    )
}

/// A second, independent TC3-HMAC-SHA256 implementation (Tencent's documented steps).
fn tc3_expected(
    secret_id: &str,
    key: &str,
    service: &str,
    ts: i64,
    host: &str,
    action: &str,
    body: &[u8],
) -> String {
    let sha = |b: &[u8]| hex::encode(digest::digest(&digest::SHA256, b));
    let mac = |k: &[u8], m: &[u8]| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k), m)
            .as_ref()
            .to_vec()
    };
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:{host}\nx-tc-action:{}\n\ncontent-type;host;x-tc-action\n{}",
        action.to_lowercase(),
        sha(body)
    );
    let date = "2017-07-12"; // the UTC date of the injected time
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/{service}/tc3_request\n{}",
        sha(canonical.as_bytes())
    );
    let k = mac(
        &mac(
            &mac(format!("TC3{key}").as_bytes(), date.as_bytes()),
            service.as_bytes(),
        ),
        b"tc3_request",
    );
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature={}",
        hex::encode(mac(&k, to_sign.as_bytes()))
    )
}

#[tokio::test]
async fn tencent_sms_sends_a_tc3_signed_request_for_the_host_used() {
    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:104571066915705365784949619","PhoneNumber":"+8613800000000","Fee":1,"SessionContext":"123","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#,
    )
    .await;
    let ch = tencent(ChannelKind::Sms, &fake);
    assert_eq!(ch.provider(), "tencent");
    let m = msg(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("code", "P1"), ("title", "DB leak")],
    );
    let sent = ch.send(&m).await.unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("5000:104571066915705365784949619")
    );

    let r = fake.only();
    assert_eq!(
        (r.method.as_str(), r.path_and_query.as_str()),
        ("POST", "/")
    );
    let host = format!("127.0.0.1:{}", fake.port);
    assert_eq!(r.header("host"), host);
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(r.header("x-tc-action"), "SendSms");
    assert_eq!(r.header("x-tc-version"), "2021-01-11");
    assert_eq!(r.header("x-tc-region"), "ap-guangzhou");
    assert_eq!(r.header("x-tc-timestamp"), "1499827339");
    assert_eq!(
        r.header("authorization"),
        tc3_expected(
            "AKIDtest",
            "tencent-secret",
            "sms",
            1499827339,
            &host,
            "SendSms",
            &r.body
        )
    );
    assert_eq!(
        r.json(),
        json!({
            "PhoneNumberSet": ["+8613800000000"],
            "SmsSdkAppId": "1400006666",
            "SignName": "腾讯云",
            "TemplateId": "1110",
            "TemplateParamSet": ["DB leak", "P1"],
            "SessionContext": "123"
        })
    );
}

#[tokio::test]
async fn tencent_voice_sends_send_tts_voice() {
    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Response":{"SendStatus":{"CallId":"12582bce-4ce9-4bd5-a5de-d2ed3b0e7b20","SessionContext":"123"},"RequestId":"r-1"}}"#,
    )
    .await;
    let ch = tencent(ChannelKind::Voice, &fake);
    let m = msg(
        ChannelKind::Voice,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("1", "7652")],
    );
    let sent = ch.send(&m).await.unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("12582bce-4ce9-4bd5-a5de-d2ed3b0e7b20")
    );
    let r = fake.only();
    let host = format!("127.0.0.1:{}", fake.port);
    assert_eq!(r.header("x-tc-action"), "SendTtsVoice");
    assert_eq!(r.header("x-tc-version"), "2020-09-02");
    assert_eq!(
        r.header("authorization"),
        tc3_expected(
            "AKIDtest",
            "tencent-secret",
            "vms",
            1499827339,
            &host,
            "SendTtsVoice",
            &r.body
        )
    );
    assert_eq!(
        r.json(),
        json!({
            "TemplateId": "4356",
            "CalledNumber": "+8613800000000",
            "VoiceSdkAppid": "1400006667",
            "TemplateParamSet": ["7652"],
            "SessionContext": "123"
        })
    );
}

#[tokio::test]
async fn tencent_errors_arrive_with_http_200_and_are_classified() {
    let m = msg(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("code", "P1"), ("title", "t")],
    );
    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Response":{"Error":{"Code":"FailedOperation.TemplateIncorrectOrUnapproved","Message":"template is not approved"},"RequestId":"r-2"}}"#,
    )
    .await;
    let e = tencent(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("TemplateIncorrectOrUnapproved") && t.contains("not approved") && t.contains("r-2")),
        "{e:?}"
    );

    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"too many requests"},"RequestId":"r-3"}}"#,
    )
    .await;
    let e = tencent(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");

    let fake = Fake::start(
        200,
        "application/json",
        r#"{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800000000","Fee":0,"SessionContext":"123","Code":"LimitExceeded.PhoneNumberDailyLimit","Message":"the number +8613800000000 reached its daily limit","IsoCode":"CN"}],"RequestId":"r-4"}}"#,
    )
    .await;
    let e = tencent(ChannelKind::Sms, &fake).send(&m).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("PhoneNumberDailyLimit")),
        "{e:?}"
    );
    assert!(
        !e.to_string().contains("13800000000"),
        "the number is masked: {e}"
    );
}

// ---------------------------------------------------------------- twilio

const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn twilio(kind: ChannelKind, fake: &Fake, from: &str) -> PhoneChannel {
    channel(
        kind,
        &format!(
            "provider = \"twilio\"\nbase_url = \"{}\"\nkey_id = \"{SID}\"\nkey_secret = \"twilio-token\"\nfrom = \"{from}\"",
            fake.base
        ),
    )
}

#[tokio::test]
async fn twilio_sms_posts_the_messages_form_with_basic_auth() {
    let fake = Fake::start(
        201,
        "application/json",
        r#"{"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued","to":"+14155550100"}"#,
    )
    .await;
    let ch = twilio(ChannelKind::Sms, &fake, "+14155550111");
    assert_eq!(ch.provider(), "twilio");
    let sent = ch
        .send(&msg(ChannelKind::Sms, "+14155550100", None, &[]))
        .await
        .unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("SM1f0e8ae6ade43cb3c0ce4525424e404f")
    );
    let r = fake.only();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path_and_query,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        r.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        r.header("authorization"),
        "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0d2lsaW8tdG9rZW4="
    );
    assert_eq!(
        r.text(),
        "To=%2B14155550100&From=%2B14155550111&Body=P1%20incident%3A%20DB%20leak%20%26%20more"
    );
}

#[tokio::test]
async fn twilio_sms_can_use_a_messaging_service() {
    let fake = Fake::start(201, "application/json", r#"{"sid":"SM2"}"#).await;
    let ch = twilio(
        ChannelKind::Sms,
        &fake,
        "MG0123456789abcdef0123456789abcdef",
    );
    let mut m = msg(ChannelKind::Sms, "+14155550100", None, &[]);
    m.content.text = "hi".into();
    ch.send(&m).await.unwrap();
    assert_eq!(
        fake.only().text(),
        "To=%2B14155550100&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&Body=hi"
    );
}

#[tokio::test]
async fn twilio_voice_says_the_escaped_text() {
    let fake = Fake::start(
        201,
        "application/json",
        r#"{"sid":"CA5ef8732a3c49700934481addd5ce1659","status":"queued"}"#,
    )
    .await;
    let ch = twilio(ChannelKind::Voice, &fake, "+14155550111");
    let sent = ch
        .send(&msg(ChannelKind::Voice, "+14155550100", None, &[]))
        .await
        .unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("CA5ef8732a3c49700934481addd5ce1659")
    );
    let r = fake.only();
    assert_eq!(
        r.path_and_query,
        format!("/2010-04-01/Accounts/{SID}/Calls.json")
    );
    assert_eq!(
        r.text(),
        "To=%2B14155550100&From=%2B14155550111&Twiml=%3CResponse%3E%3CSay%20language%3D%22en-US%22%3EP1%20incident%3A%20DB%20leak%20%26amp%3B%20more%3C%2FSay%3E%3C%2FResponse%3E"
    );
}

#[tokio::test]
async fn twilio_errors_keep_code_and_message_with_the_number_masked() {
    let fake = Fake::start(
        400,
        "application/json",
        r#"{"code":21211,"message":"The 'To' number +14155550100 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
    )
    .await;
    let e = twilio(ChannelKind::Sms, &fake, "+14155550111")
        .send(&msg(ChannelKind::Sms, "+14155550100", None, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("21211") && t.contains("not a valid phone number")),
        "{e:?}"
    );
    assert!(!e.to_string().contains("4155550100"), "masked: {e}");
    assert!(!e.to_string().contains("twilio-token"));

    let fake = Fake::start(
        429,
        "application/json",
        r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
    )
    .await;
    let e = twilio(ChannelKind::Voice, &fake, "+14155550111")
        .send(&msg(ChannelKind::Voice, "+14155550100", None, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Transient(t) if t.contains("20429")),
        "{e:?}"
    );

    let fake = Fake::start(
        401,
        "application/json",
        r#"{"code":20003,"message":"Authenticate","status":401}"#,
    )
    .await;
    let e = twilio(ChannelKind::Sms, &fake, "+14155550111")
        .send(&msg(ChannelKind::Sms, "+14155550100", None, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("20003")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- config

#[test]
fn problems_say_what_to_write() {
    let cfg: PhoneConfig = toml::from_str("provider = \"twilio\"\nkey_id = \"AC1\"").unwrap();
    let p = cfg.problems();
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["key_secret", "from"]);
    assert!(p[0].1.contains("key_secret_file"), "{p:?}");
    assert!(p[1].1.contains("from = "), "{p:?}");
    let cfg: PhoneConfig =
        toml::from_str("provider = \"generic_http\"\nbase_url = \"not a url\"").unwrap();
    assert_eq!(cfg.problems()[0].0, "base_url");
    let limits = channel(
        ChannelKind::Sms,
        "provider = \"generic_http\"\nbase_url = \"http://x/\"\nconcurrency = 4\nrate_per_second = 9",
    )
    .limits();
    assert_eq!((limits.concurrency, limits.per_second), (4, Some(9)));
}
