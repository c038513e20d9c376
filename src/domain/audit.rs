//! The audit trail's hash chain: each event's hash covers its content and the previous hash,
//! so editing, deleting or reordering any stored event breaks the chain from that point on.
//!
//! Two things make the chain more than a checksum:
//! * **A keyed MAC per event** ([`event_mac`]): with `[audit] key` set, each event also carries
//!   HMAC-SHA-256(key, hash). Someone who can write the database but does not hold the key
//!   cannot rewrite the chain with recomputed hashes.
//! * **Row seals** ([`row_digest`]): the rows people decide from and publish (incidents, tasks,
//!   approvals, deliveries, announcements, reports, obligations, …) are digested when incidentd
//!   writes them, and the digests go into the chain (`audit.sealed` events). An edit of such a
//!   row outside incidentd no longer matches the last digest the chain holds for it.

use aws_lc_rs::{digest, hmac};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256: the one digest helper (content hashes, idempotency keys, session tokens).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// Raw HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// SHA-256 over length-prefixed parts, so `("ab","c")` and `("a","bc")` differ.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The fields of an event that the chain protects.
#[derive(Debug, Clone, Copy)]
pub struct EventContent<'a> {
    pub id: i64,
    pub at_micros: i64,
    pub actor: &'a str,
    pub kind: &'a str,
    pub incident_id: Option<i64>,
    pub data: &'a str,
}

/// hex(SHA-256(prev_hash ‖ id ‖ at ‖ actor ‖ kind ‖ incident ‖ data)).
pub fn event_hash(prev_hash: &str, e: EventContent<'_>) -> String {
    let id = e.id.to_be_bytes();
    let at = e.at_micros.to_be_bytes();
    let incident = e.incident_id.map(|i| i.to_be_bytes());
    let incident: &[u8] = incident.as_ref().map_or(&[], |b| b.as_slice());
    hex::encode(sha256_parts(&[
        prev_hash.as_bytes(),
        &id,
        &at,
        e.actor.as_bytes(),
        e.kind.as_bytes(),
        incident,
        e.data.as_bytes(),
    ]))
}

/// The key of the audit chain's MACs (`[audit] key`): it lives outside the database.
#[derive(Clone)]
pub struct AuditKey(hmac::Key);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

impl AuditKey {
    /// 64 hex digits (32 bytes), as `incidentd audit keygen` prints.
    pub fn parse(hex_key: &str) -> Result<AuditKey, String> {
        let raw = hex::decode(hex_key.trim()).map_err(|_| {
            "give 64 hex digits (32 random bytes), e.g. from `incidentd audit keygen`".to_string()
        })?;
        if raw.len() != 32 {
            return Err(format!(
                "give 64 hex digits (32 bytes); this key has {} bytes",
                raw.len()
            ));
        }
        Ok(AuditKey(hmac::Key::new(hmac::HMAC_SHA256, &raw)))
    }
}

/// hex(HMAC-SHA-256(key, event hash)).
pub fn event_mac(key: &AuditKey, hash: &str) -> String {
    hex::encode(hmac::sign(&key.0, hash.as_bytes()).as_ref())
}

/// Whether `mac` is the MAC of `hash` under `key` (constant time).
pub fn mac_matches(key: &AuditKey, hash: &str, mac: &str) -> bool {
    hex::decode(mac).is_ok_and(|m| hmac::verify(&key.0, hash.as_bytes(), &m).is_ok())
}

/// Hex SHA-256 (128 bits) over a sealed row: its table, its key and each sealed column's name
/// and value (as the database renders it as a literal).
pub fn row_digest(table: &str, key: &str, columns: &[&str], values: &[String]) -> String {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 + 2 * columns.len());
    parts.push(table.as_bytes());
    parts.push(key.as_bytes());
    for (c, v) in columns.iter().zip(values) {
        parts.push(c.as_bytes());
        parts.push(v.as_bytes());
    }
    hex::encode(&sha256_parts(&parts)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_need_the_key() {
        let k = AuditKey::parse(&"11".repeat(32)).unwrap();
        let other = AuditKey::parse(&"22".repeat(32)).unwrap();
        let mac = event_mac(&k, "abc");
        assert_eq!(mac.len(), 64);
        assert!(mac_matches(&k, "abc", &mac));
        assert!(!mac_matches(&other, "abc", &mac));
        assert!(!mac_matches(&k, "abd", &mac));
        assert!(!mac_matches(&k, "abc", "zz"));
        assert!(AuditKey::parse("abcd").unwrap_err().contains("2 bytes"));
        assert!(AuditKey::parse("xyz").is_err());
    }

    #[test]
    fn a_row_digest_covers_table_key_names_and_values() {
        let d = row_digest("tasks", "1", &["status"], &["'open'".into()]);
        assert_ne!(d, row_digest("tasks", "1", &["status"], &["'done'".into()]));
        assert_ne!(d, row_digest("tasks", "2", &["status"], &["'open'".into()]));
        assert_ne!(
            d,
            row_digest("reports", "1", &["status"], &["'open'".into()])
        );
        assert_ne!(d, row_digest("tasks", "1", &["note"], &["'open'".into()]));
    }

    fn ev(data: &str) -> EventContent<'_> {
        EventContent {
            id: 1,
            at_micros: 1,
            actor: "a",
            kind: "k",
            incident_id: Some(7),
            data,
        }
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let h = event_hash(GENESIS, ev("{}"));
        assert_eq!(h.len(), 64);
        assert_ne!(h, event_hash(GENESIS, ev("{ }")));
        assert_ne!(h, event_hash(&h, ev("{}")));
        let mut e = ev("{}");
        e.incident_id = None;
        assert_ne!(h, event_hash(GENESIS, e));
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(sha256_parts(&[b"ab", b"c"]), sha256_parts(&[b"a", b"bc"]));
    }
}

/// The fields of a stored alert that its audit event vouches for.
#[derive(Debug, Clone, Copy)]
pub struct AlertContent<'a> {
    pub dedup_key: &'a str,
    pub source: &'a str,
    pub status: &'a str,
    pub fingerprint: &'a str,
    pub group_key: &'a str,
    pub title: &'a str,
    pub detail: &'a str,
    pub occurred_at: i64,
    pub ends_at: Option<i64>,
    pub received_at: i64,
    pub category: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub rule: Option<&'a str>,
}

/// Hex SHA-256 (128 bits) over an alert's content.
pub fn alert_hash(a: AlertContent<'_>) -> String {
    let occurred = a.occurred_at.to_be_bytes();
    let ends = a.ends_at.unwrap_or(i64::MIN).to_be_bytes();
    let received = a.received_at.to_be_bytes();
    hex::encode(
        &sha256_parts(&[
            a.dedup_key.as_bytes(),
            a.source.as_bytes(),
            a.status.as_bytes(),
            a.fingerprint.as_bytes(),
            a.group_key.as_bytes(),
            a.title.as_bytes(),
            a.detail.as_bytes(),
            &occurred,
            &ends,
            &received,
            a.category.unwrap_or("").as_bytes(),
            a.severity.unwrap_or("").as_bytes(),
            a.rule.unwrap_or("").as_bytes(),
        ])[..16],
    )
}
