//! Signing primitives shared by the channels, on the one crypto stack (aws-lc-rs) that TLS
//! already uses.

use aws_lc_rs::hmac;
use base64::Engine as _;

pub use crate::domain::audit::{hmac_sha256, sha256_hex};

/// Raw HMAC-SHA1 (Aliyun's RPC signature and Twilio's webhook check require it).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        data,
    )
    .as_ref()
    .to_vec()
}

pub fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A random nonce: 16 random bytes as hex.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    // The system RNG does not fail on Linux; fall back to time-derived bytes if it ever did.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = t.to_le_bytes();
    }
    hex::encode(b)
}

/// The signature our outgoing webhooks carry, so receivers can check them:
/// hex HMAC-SHA256 over `"{timestamp}.{body}"` with the shared secret.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut msg = timestamp.to_string().into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    hex::encode(hmac_sha256(secret, &msg))
}

/// `Basic base64(user:password)`, the `Authorization` value for HTTP basic auth (Twilio's
/// Account SID and auth token).
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Percent-encoding as RFC 3986 defines it and Aliyun's RPC signature requires: the unreserved
/// characters `A–Z a–z 0–9 - _ . ~` stay, every other byte of the UTF-8 text becomes `%XX`
/// (so a space is `%20`, `*` is `%2A`, never `+`).
pub fn percent_encode_rfc3986(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

/// The sorted, encoded `k=v&…` form of `params` that Aliyun signs and that we send as the body.
pub fn aliyun_canonical_query(params: &std::collections::BTreeMap<String, String>) -> String {
    // BTreeMap iterates in byte order of the keys, which is the order Aliyun sorts by.
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode_rfc3986(k),
                percent_encode_rfc3986(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Aliyun RPC signature (SignatureMethod HMAC-SHA1, SignatureVersion 1.0), as used by SMS
/// `SendSms` and voice `SingleCallByTts`: Base64 HMAC-SHA1 with key `secret&` over
/// `METHOD&%2F&` + the percent-encoded canonical query. `params` holds every request parameter
/// except `Signature`, including `Timestamp` and `SignatureNonce` (which the caller chooses,
/// so tests can fix them).
pub fn aliyun_rpc_signature(
    secret: &str,
    method: &str,
    params: &std::collections::BTreeMap<String, String>,
) -> String {
    let string_to_sign = format!(
        "{method}&{}&{}",
        percent_encode_rfc3986("/"),
        percent_encode_rfc3986(&aliyun_canonical_query(params))
    );
    base64(&hmac_sha1(
        format!("{secret}&").as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// Tencent Cloud API 3.0 `Authorization` header (TC3-HMAC-SHA256) for a `POST /` with an empty
/// query string. `headers` are the headers to sign (at least `content-type` and `host`); names
/// and values are lower-cased and trimmed as Tencent's canonical form wants. The credential
/// scope's date is the **UTC** date of `timestamp`.
pub fn tc3_authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: i64,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> String {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_lowercase()))
        .collect();
    hs.sort();
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(payload)
    );
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// The `X-Twilio-Signature` Twilio puts on its webhooks (status callbacks): Base64 HMAC-SHA1
/// with the auth token over the full URL followed by each POST parameter's name and value,
/// sorted by name (repeated names: each distinct value once, sorted, as Twilio's libraries do).
pub fn twilio_webhook_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    base64(&hmac_sha1(
        auth_token.as_bytes(),
        twilio_signed_text(url, params).as_bytes(),
    ))
}

/// Check a Twilio webhook's `X-Twilio-Signature` in constant time.
pub fn twilio_webhook_valid(
    auth_token: &str,
    url: &str,
    params: &[(&str, &str)],
    signature: &str,
) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    hmac::verify(&key, twilio_signed_text(url, params).as_bytes(), &given).is_ok()
}

fn twilio_signed_text(url: &str, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    pairs.sort_unstable();
    pairs.dedup();
    let mut s = url.to_string();
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2202, test case 2.
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn webhook_signature_covers_timestamp_and_body() {
        let a = webhook_signature(b"s", 1, b"{}");
        assert_eq!(a, hex::encode(hmac_sha256(b"s", b"1.{}")));
        assert_ne!(a, webhook_signature(b"s", 2, b"{}"));
        assert_eq!(nonce().len(), 32);
    }

    /// Aliyun's documented SendSms example (CRATES.md), Chinese SignName included.
    #[test]
    fn aliyun_rpc_signature_matches_the_published_sms_example() {
        let params: std::collections::BTreeMap<String, String> = [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            aliyun_rpc_signature("testSecret", "GET", &params),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn rfc3986_encoding_is_the_one_aliyun_wants() {
        assert_eq!(percent_encode_rfc3986("a b*c~d+e/"), "a%20b%2Ac~d%2Be%2F");
        assert_eq!(percent_encode_rfc3986("云"), "%E4%BA%91");
    }

    /// Tencent's documented TC3 example (CVM DescribeInstances, CRATES.md).
    #[test]
    fn tc3_matches_the_published_example() {
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let auth = tc3_authorization(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            1551113065,
            &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Host", "cvm.tencentcloudapi.com"),
            ],
            payload.as_bytes(),
        );
        assert_eq!(
            auth,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tc3_scope_date_is_the_utc_date() {
        // 2019-02-25T23:30:00Z is already the 26th in Beijing; the scope must say the 25th.
        let auth = tc3_authorization("id", "k", "sms", 1551137400, &[("host", "h")], b"{}");
        assert!(
            auth.contains("Credential=id/2019-02-25/sms/tc3_request"),
            "{auth}"
        );
    }

    /// Twilio's request-validation example, in both published forms.
    #[test]
    fn twilio_webhook_signature_matches_the_published_examples() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            twilio_webhook_signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let mut reversed = params;
        reversed.reverse();
        assert!(twilio_webhook_valid(
            "12345",
            url,
            &reversed,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_webhook_valid(
            "12346",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_webhook_valid("12345", url, &params, "not base64!"));
        // The older page's parameters (+12349013030).
        let older = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            twilio_webhook_signature("12345", url, &older),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        // RFC 7617's example.
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
