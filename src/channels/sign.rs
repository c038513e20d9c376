//! Signing primitives shared by the channels, on the one crypto stack (aws-lc-rs) that TLS
//! already uses.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// Raw HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

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
}
