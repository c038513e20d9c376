//! Aliyun SMS `SendSms` and voice `SingleCallByTts` (both RPC style, Version 2017-05-25,
//! signature HMAC-SHA1 over every parameter).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Answer, PhoneChannel, Prepared, Stamp, cn_provider_number, require_mainland, short};
use crate::channels::{ChannelKind, Outgoing, SendError, Sent, sign};

const VERSION: &str = "2017-05-25";
const DEFAULT_REGION: &str = "cn-hangzhou";
/// Aliyun voice keeps at most 15 bytes of `OutId`.
const VOICE_OUT_ID_MAX: usize = 15;

/// The parameters of one request, before `Signature` is added.
pub(super) fn params(
    ch: &PhoneChannel,
    msg: &Outgoing,
    to: &str,
    stamp: &Stamp,
) -> Result<BTreeMap<String, String>, SendError> {
    let code = ch.template_code(msg)?.to_string();
    let template_param = serde_json::to_string(&msg.content.params)
        .map_err(|e| SendError::Permanent(format!("cannot encode the template params: {e}")))?;
    let region = ch.cfg.region.as_deref().unwrap_or(DEFAULT_REGION);
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        p.insert(k.to_string(), v.to_string());
    };
    put("AccessKeyId", ch.key_id());
    put("Format", "JSON");
    put("RegionId", region);
    put("SignatureMethod", "HMAC-SHA1");
    put("SignatureNonce", &stamp.nonce);
    put("SignatureVersion", "1.0");
    put(
        "Timestamp",
        &stamp.now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    put("Version", VERSION);
    let with_params = !msg.content.params.is_empty();
    if ch.kind == ChannelKind::Voice {
        require_mainland(ch.cfg.provider, to)?;
        put("Action", "SingleCallByTts");
        put("CalledNumber", &cn_provider_number(to));
        put(
            "CalledShowNumber",
            ch.cfg.from.as_deref().unwrap_or_default(),
        );
        put("TtsCode", &code);
        if with_params {
            put("TtsParam", &template_param);
        }
        put("OutId", &voice_out_id(msg));
    } else {
        put("Action", "SendSms");
        put("PhoneNumbers", &cn_provider_number(to));
        put("SignName", ch.cfg.sign_name.as_deref().unwrap_or_default());
        put("TemplateCode", &code);
        if with_params {
            put("TemplateParam", &template_param);
        }
        put("OutId", &msg.idempotency_key);
    }
    Ok(p)
}

fn voice_out_id(msg: &Outgoing) -> String {
    if msg.idempotency_key.len() <= VOICE_OUT_ID_MAX {
        msg.idempotency_key.clone()
    } else {
        msg.delivery_id.to_string()
    }
}

pub(super) fn prepare(
    ch: &PhoneChannel,
    msg: &Outgoing,
    to: &str,
    stamp: &Stamp,
) -> Result<Prepared, SendError> {
    let mut p = params(ch, msg, to, stamp)?;
    let signature = sign::aliyun_rpc_signature(ch.key_secret(), "POST", &p);
    p.insert("Signature".into(), signature);
    Ok(Prepared {
        url: ch.base.clone(),
        headers: vec![
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("accept", "application/json".to_string()),
        ],
        body: sign::aliyun_canonical_query(&p).into_bytes(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    biz_id: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// Codes that mean "not now": rate limits and Aliyun's own troubles.
fn transient_code(code: &str) -> bool {
    code.starts_with("Throttling")
        || code.starts_with("ServiceUnavailable")
        || code.starts_with("InternalError")
        || matches!(
            code,
            "isv.BUSINESS_LIMIT_CONTROL"
                | "isp.SYSTEM_ERROR"
                | "isp.GATEWAY_ERROR"
                | "SignatureNonceUsed"
                | "ServiceTimeout"
        )
}

pub(super) fn interpret(kind: ChannelKind, answer: &Answer) -> Result<Sent, SendError> {
    let reply: Option<Reply> = serde_json::from_str(&answer.body).ok();
    let Some(reply) = reply.filter(|r| r.code.is_some()) else {
        if !answer.status.is_success() {
            return Err(SendError::from_status(answer.status, &answer.body));
        }
        // A 2xx that is not Aliyun's JSON: we cannot tell whether it was sent.
        return Err(SendError::Transient(format!(
            "aliyun answered {} without a Code: {}",
            answer.status,
            short(&answer.body)
        )));
    };
    let code = reply.code.as_deref().unwrap_or_default();
    if code == "OK" && answer.status.is_success() {
        let id = match kind {
            ChannelKind::Voice => reply.call_id,
            _ => reply.biz_id,
        };
        return Ok(Sent {
            provider_message_id: id,
        });
    }
    let text = format!(
        "aliyun refused the {kind}: {code}: {} (HTTP {}, RequestId {})",
        short(reply.message.as_deref().unwrap_or_default()),
        answer.status.as_u16(),
        reply.request_id.as_deref().unwrap_or("-"),
    );
    let status_transient =
        answer.status.is_server_error() || answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if transient_code(code) || status_transient {
        Err(SendError::Transient(text))
    } else {
        Err(SendError::Permanent(text))
    }
}
