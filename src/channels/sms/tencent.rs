//! Tencent Cloud SMS `SendSms` (2021-01-11) and voice `SendTtsVoice` (2020-09-02), API 3.0
//! with TC3-HMAC-SHA256.

use serde::{Deserialize, Serialize};

use super::{Answer, PhoneChannel, Prepared, Stamp, host_header, require_mainland, short};
use crate::channels::{ChannelKind, Outgoing, SendError, Sent, sign};

const DEFAULT_REGION: &str = "ap-guangzhou";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SmsBody<'a> {
    phone_number_set: [&'a str; 1],
    sms_sdk_app_id: &'a str,
    sign_name: &'a str,
    template_id: &'a str,
    template_param_set: Vec<String>,
    session_context: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VoiceBody<'a> {
    template_id: &'a str,
    called_number: &'a str,
    /// Tencent spells this one with a lower-case "id".
    #[serde(rename = "VoiceSdkAppid")]
    voice_sdk_appid: &'a str,
    template_param_set: Vec<String>,
    session_context: &'a str,
}

/// The template's positional parameters: `param_order` for this template if configured, else
/// the keys sorted (numerically when every key is a number).
pub(super) fn ordered_params(ch: &PhoneChannel, msg: &Outgoing) -> Result<Vec<String>, SendError> {
    let params = &msg.content.params;
    let template = msg.content.template.as_deref().unwrap_or_default();
    if let Some(order) = ch.cfg.param_order.get(template) {
        return order
            .iter()
            .map(|k| {
                params.get(k).cloned().ok_or_else(|| {
                    SendError::Permanent(format!(
                        "channels.{}.param_order.\"{template}\" names `{k}`, which this message's params do not have",
                        ch.kind
                    ))
                })
            })
            .collect();
    }
    let mut keys: Vec<&String> = params.keys().collect();
    if keys.iter().all(|k| k.parse::<u64>().is_ok()) {
        keys.sort_by_key(|k| k.parse::<u64>().unwrap_or_default());
    }
    Ok(keys.into_iter().map(|k| params[k].clone()).collect())
}

pub(super) fn prepare(
    ch: &PhoneChannel,
    msg: &Outgoing,
    to: &str,
    stamp: &Stamp,
) -> Result<Prepared, SendError> {
    let template_id = ch.template_code(msg)?;
    let values = ordered_params(ch, msg)?;
    let app_id = ch.cfg.app_id.as_deref().unwrap_or_default();
    let (service, action, version, body) = if ch.kind == ChannelKind::Voice {
        require_mainland(ch.cfg.provider, to)?;
        let body = serde_json::to_vec(&VoiceBody {
            template_id,
            called_number: to,
            voice_sdk_appid: app_id,
            template_param_set: values,
            session_context: &msg.idempotency_key,
        });
        ("vms", "SendTtsVoice", "2020-09-02", body)
    } else {
        let body = serde_json::to_vec(&SmsBody {
            phone_number_set: [to],
            sms_sdk_app_id: app_id,
            sign_name: ch.cfg.sign_name.as_deref().unwrap_or_default(),
            template_id,
            template_param_set: values,
            session_context: &msg.idempotency_key,
        });
        ("sms", "SendSms", "2021-01-11", body)
    };
    let body = body.map_err(|e| SendError::Permanent(format!("cannot encode the request: {e}")))?;
    let timestamp = stamp.now.timestamp();
    let host = host_header(&ch.base);
    let authorization = sign::tc3_authorization(
        ch.key_id(),
        ch.key_secret(),
        service,
        timestamp,
        &[
            ("content-type", CONTENT_TYPE),
            ("host", &host),
            ("x-tc-action", action),
        ],
        &body,
    );
    let region = ch.cfg.region.as_deref().unwrap_or(DEFAULT_REGION);
    Ok(Prepared {
        url: ch.base.clone(),
        headers: vec![
            ("authorization", authorization),
            ("content-type", CONTENT_TYPE.to_string()),
            ("x-tc-action", action.to_string()),
            ("x-tc-timestamp", timestamp.to_string()),
            ("x-tc-version", version.to_string()),
            ("x-tc-region", region.to_string()),
        ],
        body,
    })
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Reply,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(default)]
    error: Option<Failure>,
    #[serde(default)]
    send_status_set: Option<Vec<SmsStatus>>,
    #[serde(default)]
    send_status: Option<VoiceStatus>,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Failure {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SmsStatus {
    #[serde(default)]
    serial_no: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VoiceStatus {
    #[serde(default)]
    call_id: Option<String>,
}

/// Codes worth another try later: rate limits (per account and the short per-number windows),
/// Tencent's internal errors, upstream timeouts and busy carriers. Daily per-number limits,
/// authentication, parameter, template, signature and balance errors are permanent.
fn transient_code(code: &str) -> bool {
    code.starts_with("RequestLimitExceeded")
        || code.starts_with("InternalError")
        || code.starts_with("ResourceUnavailable")
        || matches!(
            code,
            "LimitExceeded.PhoneNumberThirtySecondLimit"
                | "LimitExceeded.PhoneNumberOneHourLimit"
                | "LimitExceeded.DeliveryFrequencyLimit"
                | "FailedOperation.AccessUpstreamTimeout"
                | "FailedOperation.FrequencyLimit"
                | "FailedOperation.ServiceBusy"
                | "FailedOperation.SystemBusy"
        )
        || (code.starts_with("FailedOperation.") && code.contains("Timeout"))
}

fn refused(kind: ChannelKind, code: &str, message: &str, request_id: &Option<String>) -> SendError {
    let text = format!(
        "tencent refused the {kind}: {code}: {} (RequestId {})",
        short(message),
        request_id.as_deref().unwrap_or("-")
    );
    if transient_code(code) {
        SendError::Transient(text)
    } else {
        SendError::Permanent(text)
    }
}

pub(super) fn interpret(kind: ChannelKind, answer: &Answer) -> Result<Sent, SendError> {
    if !answer.status.is_success() {
        return Err(SendError::from_status(answer.status, &answer.body));
    }
    let reply = match serde_json::from_str::<Envelope>(&answer.body) {
        Ok(e) => e.response,
        Err(_) => {
            return Err(SendError::Transient(format!(
                "tencent answered {} with something that is not its JSON: {}",
                answer.status,
                short(&answer.body)
            )));
        }
    };
    if let Some(f) = &reply.error {
        return Err(refused(kind, &f.code, &f.message, &reply.request_id));
    }
    if kind == ChannelKind::Voice {
        return match reply.send_status {
            Some(s) => Ok(Sent {
                provider_message_id: s.call_id,
            }),
            None => Err(SendError::Transient(format!(
                "tencent answered without SendStatus (RequestId {})",
                reply.request_id.as_deref().unwrap_or("-")
            ))),
        };
    }
    match reply.send_status_set.as_deref() {
        Some([s, ..]) if s.code == "Ok" => Ok(Sent {
            provider_message_id: s.serial_no.clone(),
        }),
        Some([s, ..]) => Err(refused(kind, &s.code, &s.message, &reply.request_id)),
        _ => Err(SendError::Transient(format!(
            "tencent answered without a SendStatusSet (RequestId {})",
            reply.request_id.as_deref().unwrap_or("-")
        ))),
    }
}
