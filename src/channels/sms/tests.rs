//! In-crate tests: exact request bytes with an injected clock (expected values computed
//! independently, with Python's hmac/hashlib), answer classification, config problems.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::channels::{Content, Purpose};

fn config(toml_text: &str) -> PhoneConfig {
    toml::from_str(toml_text).unwrap()
}

fn channel(kind: ChannelKind, toml_text: &str, stamp: Stamp) -> PhoneChannel {
    PhoneChannel::new(kind, &config(toml_text), reqwest::Client::new())
        .unwrap()
        .with_clock(move || stamp.clone())
}

fn stamp(rfc3339: &str, nonce: &str) -> Stamp {
    Stamp {
        now: DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc(),
        nonce: nonce.into(),
    }
}

fn outgoing(
    kind: ChannelKind,
    to: &str,
    template: Option<&str>,
    params: &[(&str, &str)],
) -> Outgoing {
    Outgoing {
        delivery_id: 42,
        idempotency_key: "123".into(),
        incident_id: Some(7),
        purpose: Purpose::Page,
        channel: kind,
        recipient: to.into(),
        locale: "zh-CN".into(),
        content: Content {
            text: "Incident opened".into(),
            template: template.map(str::to_string),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Content::default()
        },
    }
}

fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        body: body.into(),
    }
}

const ALIYUN_SMS: &str = r#"
provider = "aliyun"
key_id = "testId"
key_secret = "testSecret"
sign_name = "阿里云短信测试专用"
[templates]
"page/incident_opened" = "SMS_71390007"
"#;

const ALIYUN_VOICE: &str = r#"
provider = "aliyun"
key_id = "testId"
key_secret = "testSecret"
from = "4001112222"
[templates]
"page/incident_opened" = "TTS_10001"
"#;

const TENCENT_SMS: &str = r#"
provider = "tencent"
key_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
key_secret = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
app_id = "1400006666"
sign_name = "腾讯云"
[templates]
"page/incident_opened" = "1110"
"#;

fn aliyun_stamp() -> Stamp {
    stamp(
        "2017-07-12T02:42:19Z",
        "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    )
}

#[test]
fn aliyun_sms_request_is_signed_over_every_parameter() {
    let ch = channel(ChannelKind::Sms, ALIYUN_SMS, aliyun_stamp());
    let msg = outgoing(
        ChannelKind::Sms,
        "+8615300000001",
        Some("page/incident_opened"),
        &[("customer", "test")],
    );
    let req = aliyun::prepare(&ch, &msg, "+8615300000001", &aliyun_stamp()).unwrap();
    assert_eq!(req.url.as_str(), "https://dysmsapi.aliyuncs.com/");
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "AccessKeyId=testId&Action=SendSms&Format=JSON&OutId=123&PhoneNumbers=15300000001\
         &RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8\
         &Signature=uXFmOZ%2BG8ZX3qPh4wK0RMGokzcw%3D&SignatureMethod=HMAC-SHA1\
         &SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
         &TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D\
         &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
    );
}

#[test]
fn aliyun_voice_request_is_signed_over_every_parameter() {
    let ch = channel(ChannelKind::Voice, ALIYUN_VOICE, aliyun_stamp());
    let msg = outgoing(
        ChannelKind::Voice,
        "+8615300000001",
        Some("page/incident_opened"),
        &[("customer", "test")],
    );
    let req = aliyun::prepare(&ch, &msg, "+8615300000001", &aliyun_stamp()).unwrap();
    assert_eq!(req.url.as_str(), "https://dyvmsapi.aliyuncs.com/");
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "AccessKeyId=testId&Action=SingleCallByTts&CalledNumber=15300000001\
         &CalledShowNumber=4001112222&Format=JSON&OutId=123&RegionId=cn-hangzhou\
         &Signature=pnaOb9w6gIXxgl3sBJPFLfj2Xo0%3D&SignatureMethod=HMAC-SHA1\
         &SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
         &Timestamp=2017-07-12T02%3A42%3A19Z&TtsCode=TTS_10001\
         &TtsParam=%7B%22customer%22%3A%22test%22%7D&Version=2017-05-25"
    );
    // Other countries are refused before anything is sent.
    let abroad = outgoing(
        ChannelKind::Voice,
        "+14155550100",
        Some("page/incident_opened"),
        &[],
    );
    let e = aliyun::prepare(&ch, &abroad, "+14155550100", &aliyun_stamp())
        .err()
        .unwrap();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("+86")),
        "{e:?}"
    );
}

#[test]
fn aliyun_numbers_drop_plus86_and_keep_other_country_codes() {
    assert_eq!(cn_provider_number("+8613800000000"), "13800000000");
    assert_eq!(cn_provider_number("+85291234567"), "85291234567");
}

#[test]
fn aliyun_voice_out_id_fits_in_15_bytes() {
    let ch = channel(ChannelKind::Voice, ALIYUN_VOICE, aliyun_stamp());
    let mut msg = outgoing(
        ChannelKind::Voice,
        "+8615300000001",
        Some("page/incident_opened"),
        &[],
    );
    msg.idempotency_key = "a-very-long-idempotency-key".into();
    let p = aliyun::params(&ch, &msg, "+8615300000001", &aliyun_stamp()).unwrap();
    assert_eq!(p["OutId"], "42");
    assert!(!p.contains_key("TtsParam"), "no params, no TtsParam");
}

#[test]
fn tencent_sms_request_signs_the_host_and_action() {
    let st = stamp("2019-02-25T16:44:25Z", "unused");
    assert_eq!(st.now.timestamp(), 1551113065);
    let ch = channel(ChannelKind::Sms, TENCENT_SMS, st.clone());
    let mut msg = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("2", "5"), ("1", "4370")],
    );
    msg.idempotency_key = "idem-1".into();
    let req = tencent::prepare(&ch, &msg, "+8613800000000", &st).unwrap();
    assert_eq!(req.url.as_str(), "https://sms.tencentcloudapi.com/");
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        r#"{"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1110","TemplateParamSet":["4370","5"],"SessionContext":"idem-1"}"#
    );
    let headers: BTreeMap<&str, &str> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        headers["authorization"],
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/sms/tc3_request, \
         SignedHeaders=content-type;host;x-tc-action, \
         Signature=159ff9a88eebcae1cdc93973010749d1cdd56114d7ce65517234c0c8d7fab000"
    );
    assert_eq!(headers["x-tc-action"], "SendSms");
    assert_eq!(headers["x-tc-version"], "2021-01-11");
    assert_eq!(headers["x-tc-region"], "ap-guangzhou");
    assert_eq!(headers["x-tc-timestamp"], "1551113065");
}

#[test]
fn tencent_params_follow_param_order_or_sorted_keys() {
    let with_order = format!(
        "{TENCENT_SMS}\n[param_order]\n\"page/incident_opened\" = [\"title\", \"severity\"]\n"
    );
    let ch = channel(ChannelKind::Sms, &with_order, aliyun_stamp());
    let msg = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("severity", "high"), ("title", "DB leak"), ("unused", "x")],
    );
    assert_eq!(
        tencent::ordered_params(&ch, &msg).unwrap(),
        ["DB leak", "high"]
    );
    let missing = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("title", "t")],
    );
    let e = tencent::ordered_params(&ch, &missing).unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("`severity`")),
        "{e:?}"
    );

    let plain = channel(ChannelKind::Sms, TENCENT_SMS, aliyun_stamp());
    let numeric = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("10", "ten"), ("2", "two"), ("1", "one")],
    );
    assert_eq!(
        tencent::ordered_params(&plain, &numeric).unwrap(),
        ["one", "two", "ten"]
    );
    let named = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("page/incident_opened"),
        &[("b", "B"), ("a", "A")],
    );
    assert_eq!(tencent::ordered_params(&plain, &named).unwrap(), ["A", "B"]);
}

#[test]
fn template_only_providers_refuse_free_text_and_name_the_key_to_add() {
    let ch = channel(ChannelKind::Sms, ALIYUN_SMS, aliyun_stamp());
    let free = outgoing(ChannelKind::Sms, "+8613800000000", None, &[]);
    let e = ch.template_code(&free).unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("free text")),
        "{e:?}"
    );
    let unknown = outgoing(
        ChannelKind::Sms,
        "+8613800000000",
        Some("notice/data_breach"),
        &[],
    );
    let e = ch.template_code(&unknown).unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains(r#"channels.sms.templates."notice/data_breach""#)),
        "{e:?}"
    );
    let t = channel(ChannelKind::Sms, TENCENT_SMS, aliyun_stamp());
    assert!(tencent::prepare(&t, &free, "+8613800000000", &aliyun_stamp()).is_err());
}

#[test]
fn aliyun_answers_are_classified() {
    let ok =
        r#"{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"F655A8D5"}"#;
    assert_eq!(
        aliyun::interpret(ChannelKind::Sms, &answer(200, ok)).unwrap(),
        Sent {
            provider_message_id: Some("900619746936498440^0".into())
        }
    );
    let call = r#"{"Code":"OK","Message":"OK","CallId":"116012354148^10281378","RequestId":"x"}"#;
    assert_eq!(
        aliyun::interpret(ChannelKind::Voice, &answer(200, call))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("116012354148^10281378")
    );
    let limited = r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1","RequestId":"r1"}"#;
    let e = aliyun::interpret(ChannelKind::Sms, &answer(200, limited)).unwrap_err();
    assert!(
        matches!(&e, SendError::Transient(m) if m.contains("isv.BUSINESS_LIMIT_CONTROL") && m.contains("流控")),
        "{e:?}"
    );
    let throttled = r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control.","RequestId":"r"}"#;
    assert!(matches!(
        aliyun::interpret(ChannelKind::Sms, &answer(400, throttled)),
        Err(SendError::Transient(_))
    ));
    let bad = r#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号","RequestId":"r2"}"#;
    let e = aliyun::interpret(ChannelKind::Sms, &answer(200, bad)).unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("isv.MOBILE_NUMBER_ILLEGAL") && m.contains("非法手机号") && m.contains("r2")),
        "{e:?}"
    );
    let sig = r#"{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation.","RequestId":"r3"}"#;
    assert!(matches!(
        aliyun::interpret(ChannelKind::Sms, &answer(400, sig)),
        Err(SendError::Permanent(_))
    ));
    assert!(matches!(
        aliyun::interpret(ChannelKind::Sms, &answer(503, "<html>busy</html>")),
        Err(SendError::Transient(_))
    ));
    assert!(matches!(
        aliyun::interpret(ChannelKind::Sms, &answer(200, "not json")),
        Err(SendError::Transient(_))
    ));
}

#[test]
fn tencent_answers_are_classified() {
    let ok = r#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8613800000000","Fee":1,"SessionContext":"idem-1","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6"}}"#;
    assert_eq!(
        tencent::interpret(ChannelKind::Sms, &answer(200, ok))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("5000:1045710669157053657849499619")
    );
    let voice = r#"{"Response":{"SendStatus":{"CallId":"12582bce-4ce9-4bd5-a5de-d2ed3b0e7b20","SessionContext":"sc"},"RequestId":"r"}}"#;
    assert_eq!(
        tencent::interpret(ChannelKind::Voice, &answer(200, voice))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("12582bce-4ce9-4bd5-a5de-d2ed3b0e7b20")
    );
    let auth = r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"ed93f3cb"}}"#;
    let e = tencent::interpret(ChannelKind::Sms, &answer(200, auth)).unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("AuthFailure.SignatureFailure") && m.contains("ed93f3cb")),
        "{e:?}"
    );
    for code in [
        "RequestLimitExceeded",
        "InternalError.Timeout",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "FailedOperation.AccessUpstreamTimeout",
    ] {
        let body = format!(
            r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"m"}},"RequestId":"r"}}}}"#
        );
        assert!(
            matches!(
                tencent::interpret(ChannelKind::Voice, &answer(200, &body)),
                Err(SendError::Transient(_))
            ),
            "{code}"
        );
    }
    let per_number = r#"{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800000000","Fee":0,"Code":"InvalidParameterValue.IncorrectPhoneNumber","Message":"incorrect number +8613800000000"}],"RequestId":"r"}}"#;
    let e = tencent::interpret(ChannelKind::Sms, &answer(200, per_number))
        .map_err(|e| scrub_error(e, "+8613800000000"))
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("IncorrectPhoneNumber") && m.contains("+86138****0000") && !m.contains("13800000000")),
        "{e:?}"
    );
    assert!(matches!(
        tencent::interpret(ChannelKind::Sms, &answer(502, "bad gateway")),
        Err(SendError::Transient(_))
    ));
}

#[test]
fn twilio_answers_are_classified() {
    let ok = r#"{"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued"}"#;
    assert_eq!(
        twilio::interpret(&answer(201, ok))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("SM1f0e8ae6ade43cb3c0ce4525424e404f")
    );
    let invalid = r#"{"code":21211,"message":"The 'To' number +15005550001 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
    let e = twilio::interpret(&answer(400, invalid))
        .map_err(|e| scrub_error(e, "+15005550001"))
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(m) if m.contains("21211") && m.contains("not a valid phone number") && !m.contains("15005550001")),
        "{e:?}"
    );
    let busy = r#"{"code":20429,"message":"Too Many Requests","status":429}"#;
    assert!(
        matches!(twilio::interpret(&answer(429, busy)), Err(SendError::Transient(m)) if m.contains("20429"))
    );
    assert!(matches!(
        twilio::interpret(&answer(500, "oops")),
        Err(SendError::Transient(_))
    ));
    assert!(matches!(
        twilio::interpret(&answer(401, "")),
        Err(SendError::Permanent(_))
    ));
}

#[test]
fn twiml_is_escaped_and_speaks_the_locale() {
    assert_eq!(
        twilio::twiml("P1 <db> & \"x\"", "zh-CN"),
        r#"<Response><Say language="zh-CN">P1 &lt;db&gt; &amp; &quot;x&quot;</Say></Response>"#
    );
    assert_eq!(twilio::say_language("en"), "en-US");
    assert_eq!(twilio::say_language("zh"), "zh-CN");
    assert_eq!(twilio::say_language("en_GB"), "en-GB");
}

#[test]
fn generic_answers_record_the_id() {
    assert_eq!(
        generic::interpret(&answer(202, r#"{"message_id":"m-1"}"#))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("m-1")
    );
    assert_eq!(
        generic::interpret(&answer(200, r#"{"id":17}"#))
            .unwrap()
            .provider_message_id
            .as_deref(),
        Some("17")
    );
    assert_eq!(
        generic::interpret(&answer(204, "")).unwrap(),
        Sent::default()
    );
    assert!(matches!(
        generic::interpret(&answer(400, "no")),
        Err(SendError::Permanent(_))
    ));
}

#[test]
fn tencent_host_includes_a_non_default_port() {
    let u = reqwest::Url::parse("http://127.0.0.1:8080/").unwrap();
    assert_eq!(host_header(&u), "127.0.0.1:8080");
    let u = reqwest::Url::parse("https://sms.tencentcloudapi.com/").unwrap();
    assert_eq!(host_header(&u), "sms.tencentcloudapi.com");
}

fn keys(p: &[(String, String)]) -> Vec<&str> {
    p.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn problems_name_each_missing_key() {
    assert!(config(ALIYUN_SMS).problems_for(ChannelKind::Sms).is_empty());
    assert!(
        config(ALIYUN_VOICE)
            .problems_for(ChannelKind::Voice)
            .is_empty()
    );
    assert!(
        config(TENCENT_SMS)
            .problems_for(ChannelKind::Sms)
            .is_empty()
    );

    let p = config(r#"provider = "aliyun""#).problems_for(ChannelKind::Sms);
    assert_eq!(keys(&p), ["key_id", "key_secret", "sign_name"]);
    assert!(p[1].1.contains("key_secret_file"), "{p:?}");
    let p = config(r#"provider = "aliyun""#).problems_for(ChannelKind::Voice);
    assert_eq!(keys(&p), ["key_id", "key_secret", "from"]);

    let p = config(
        "provider = \"tencent\"\n[templates]\n\"a\" = \"SMS_1\"\n[param_order]\n\"b\" = [\"x\"]",
    )
    .problems_for(ChannelKind::Sms);
    assert_eq!(
        keys(&p),
        [
            "key_id",
            "key_secret",
            "app_id",
            "templates.\"a\"",
            "param_order.\"b\"",
            "sign_name"
        ]
    );
    let p = config(r#"provider = "twilio""#).problems();
    assert_eq!(keys(&p), ["key_id", "key_secret", "from"]);

    let p = config(r#"provider = "generic_http""#).problems();
    assert_eq!(keys(&p), ["base_url"]);
    assert!(p[0].1.contains("base_url = "), "{p:?}");
    let p = config("provider = \"generic_http\"\nbase_url = \"ftp://x\"").problems();
    assert!(p[0].1.contains("not http or https"), "{p:?}");
    assert!(
        config("provider = \"generic_http\"\nbase_url = \"https://gw.example/send\"")
            .problems()
            .is_empty()
    );

    let e = PhoneChannel::new(
        ChannelKind::Sms,
        &config(r#"provider = "tencent""#),
        reqwest::Client::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("channels.sms.app_id"), "{e}");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let cfg = config(
        "provider = \"generic_http\"\nbase_url = \"https://gw.example/\"\ntoken = \"tok-very-secret\"\nkey_secret = \"ks-very-secret\"",
    );
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    let ch = PhoneChannel::new(ChannelKind::Sms, &cfg, reqwest::Client::new()).unwrap();
    assert!(!format!("{ch:?}").contains("very-secret"));
}
