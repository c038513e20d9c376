//! The trial secrets: the bearer tokens, acknowledgement-link key and contact key the example
//! configuration (config/incidentd.toml) ships with. They are printed in the README, so anyone
//! can use them: fine for a trial on 127.0.0.1, not on an address others reach.

use secrecy::ExposeSecret;

use super::schema::{RawConfig, Token};

/// SHA-256 of the README's trial tokens (`dev-…-token`), with the token each one is for.
pub const TOKENS: &[(&str, &str)] = &[
    (
        "190d47f40bac429775265506c33648e856508196482962cf818db2a0ae3c7f0c",
        "dev-alertmanager-token",
    ),
    (
        "932c2909bfc54989199ec2c8a1124457cbc021e3564d9dc70e73f9b343c79e16",
        "dev-responder-token",
    ),
    (
        "ce2bc80df24ceeb9021f86ebb9b2ad727af4f9fabb308232bd168b16f1de2526",
        "dev-viewer-token",
    ),
    (
        "b2ff12463c8ac899d0610bb6bb14dc47aa47800adfc16d612e689333f6371b80",
        "dev-legal-token",
    ),
    (
        "91e202ad83f509452a599ec6816ee984f50bc1316dce517f46c3c7cce3604246",
        "dev-gr-token",
    ),
    (
        "3f83b77e909361016958d3436a14b96735b3a134b8a133291ad9f06a1b986a64",
        "dev-pr-token",
    ),
    (
        "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd",
        "dev-admin-token",
    ),
];

/// `[paging] ack_secret` of the example configuration.
pub const ACK_SECRET: &str = "trial-only-ack-link-key-replace-me";

/// The key material of `[subjects] key` in the example configuration (any key id).
pub const SUBJECT_KEY: &str = "1c8a35c1461cbfc03ff0b1d1a5f70fed9577b7671c6801af9b0420a61c860445";

/// `[audit] key` of the example configuration.
pub const AUDIT_KEY: &str = "5e0d1a7c9b3f42e8a6c1d0f97b2e4a3c8d6f1b0e9a7c5d3f2e1b0a9c8d7e6f5a";

/// Every trial secret the configuration uses, each as `key (what)`; empty when none.
pub(super) fn found(raw: &RawConfig, tokens: &[Token]) -> Vec<String> {
    let mut out: Vec<String> = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let hash = hex::encode(t.sha256);
            TOKENS.iter().find(|(h, _)| *h == hash).map(|(_, token)| {
                format!("auth.tokens[{i}] (`{}`: the trial token {token})", t.name)
            })
        })
        .collect();
    if raw
        .paging
        .ack_secret
        .as_ref()
        .is_some_and(|s| s.expose_secret() == ACK_SECRET)
    {
        out.push("paging.ack_secret (the trial acknowledgement-link key)".into());
    }
    if raw
        .subjects
        .key
        .as_ref()
        .is_some_and(|k| k.expose_secret().contains(SUBJECT_KEY))
    {
        out.push("subjects.key (the trial contact-encryption key)".into());
    }
    if raw
        .audit
        .key
        .as_ref()
        .is_some_and(|k| k.expose_secret().trim() == AUDIT_KEY)
    {
        out.push("audit.key (the trial audit-chain key)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list must name every secret the example ships, or `check` stays silent about one.
    #[test]
    fn the_example_configurations_secrets_are_all_known() {
        let text = include_str!("../../config/incidentd.toml");
        let hashes: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("sha256 = \""))
            .map(|l| l.split('"').next().unwrap_or_default())
            .collect();
        assert_eq!(hashes.len(), TOKENS.len(), "{hashes:?}");
        for h in hashes {
            assert!(TOKENS.iter().any(|(t, _)| *t == h), "{h} is not listed");
        }
        for (hash, token) in TOKENS {
            assert_eq!(
                crate::domain::audit::sha256_hex(token.as_bytes()),
                *hash,
                "{token}"
            );
        }
        assert!(text.contains(&format!("ack_secret = \"{ACK_SECRET}\"")));
        assert!(text.contains(&format!("key = \"trial:{SUBJECT_KEY}\"")));
        assert!(text.contains(&format!("key = \"{AUDIT_KEY}\"")));
    }
}
