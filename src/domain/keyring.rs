//! Encryption of affected people's contact data at rest: AES-256-GCM (aws-lc-rs, the crypto
//! stack the TLS clients already use), a random 96-bit nonce per value, and the row's identity
//! (incident, subject id, field) as associated data, so a ciphertext copied into another row or
//! field does not decrypt.
//!
//! Keys come from `[subjects] key` (or `key_file`, which may name a systemd credential): one or
//! more `<key id>:<64 hex digits>` separated by whitespace or newlines. The **first** key
//! encrypts; every key decrypts. To rotate, put a new key first and keep the old ones until
//! every incident that used them has been purged. A stored value is
//! `<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`, so each value names the key it needs.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

/// The contact keys: the first encrypts, all decrypt.
pub struct KeyRing {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    /// Per key, a MAC key derived from it for per-subject notice links.
    link_keys: HashMap<String, Vec<u8>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

string_enum! {
    /// Which field of a subject a value belongs to (part of the associated data).
    Field {
        Name => "name",
        Phone => "phone",
        Email => "email",
    } what = "a subject field"
}

impl KeyRing {
    /// Parse `<id>:<64 hex>` keys separated by whitespace. Errors say what to fix and never
    /// echo key material.
    pub fn parse(text: &str) -> Result<KeyRing, String> {
        let mut current = None;
        let mut keys = HashMap::new();
        let mut link_keys = HashMap::new();
        for (n, item) in text.split_whitespace().enumerate() {
            let (id, hex_key) = item.split_once(':').ok_or_else(|| {
                format!("key {}: write each key as <key id>:<64 hex digits>", n + 1)
            })?;
            if id.is_empty()
                || id.len() > 32
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "key {}: the key id must be 1–32 letters, digits, `-` or `_`",
                    n + 1
                ));
            }
            let bytes = hex::decode(hex_key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    format!(
                        "key `{id}`: the key must be 64 hex digits (32 bytes); make one with `incidentd subjects keygen`"
                    )
                })?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| format!("key `{id}`: not a usable AES-256 key"))?;
            link_keys.insert(
                id.to_string(),
                crate::domain::audit::hmac_sha256(&bytes, b"incidentd notice links v1"),
            );
            if keys.insert(id.to_string(), LessSafeKey::new(key)).is_some() {
                return Err(format!("key id `{id}` is given twice"));
            }
            current.get_or_insert_with(|| id.to_string());
        }
        let current = current.ok_or_else(|| {
            "no key given: write at least one <key id>:<64 hex digits>".to_string()
        })?;
        Ok(KeyRing {
            current,
            keys,
            link_keys,
        })
    }

    /// The token of a subject's own notice page (`/n/<token>`): campaign and subject row,
    /// signed with a key derived from the current contact key.
    pub fn link_token(&self, campaign: i64, subject: i64) -> String {
        let payload = format!("{campaign}.{subject}.{}", self.current);
        let mac =
            crate::domain::audit::hmac_sha256(&self.link_keys[&self.current], payload.as_bytes());
        format!(
            "{payload}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac[..12])
        )
    }

    /// `(campaign, subject row)` of a valid [`KeyRing::link_token`].
    pub fn verify_link(&self, token: &str) -> Option<(i64, i64)> {
        let (payload, mac) = token.rsplit_once('.')?;
        let mut parts = payload.splitn(3, '.');
        let campaign = parts.next()?.parse().ok()?;
        let subject = parts.next()?.parse().ok()?;
        let key = self.link_keys.get(parts.next()?)?;
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .ok()?;
        let want = crate::domain::audit::hmac_sha256(key, payload.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&want[..12], &mac).ok()?;
        Some((campaign, subject))
    }

    /// A new random key line, `<id>:<64 hex>`.
    pub fn generate(id: &str) -> String {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).expect("the system random source works");
        format!("{id}:{}", hex::encode(k))
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    fn aad(incident_id: i64, subject_id: &str, field: Field) -> Vec<u8> {
        format!("{incident_id}\u{1f}{subject_id}\u{1f}{}", field.as_str()).into_bytes()
    }

    /// Encrypt one field of one subject with the current key.
    pub fn seal(&self, incident_id: i64, subject_id: &str, field: Field, plain: &str) -> String {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random source works");
        let mut buf = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(Self::aad(incident_id, subject_id, field)),
            &mut buf,
        )
        .expect("AES-GCM sealing cannot fail for inputs this small");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        format!("{}:{}", self.current, B64.encode(out))
    }

    /// Decrypt a value [`KeyRing::seal`] made for this subject and field.
    pub fn open(
        &self,
        incident_id: i64,
        subject_id: &str,
        field: Field,
        sealed: &str,
    ) -> Result<String, String> {
        let (id, b64) = sealed
            .split_once(':')
            .ok_or("the stored value is not in <key id>:<data> form")?;
        let key = self.keys.get(id).ok_or_else(|| {
            format!("the value was encrypted with key `{id}`, which is no longer configured")
        })?;
        let mut data = B64
            .decode(b64)
            .map_err(|_| "the stored value is not valid base64".to_string())?;
        if data.len() < NONCE_LEN {
            return Err("the stored value is too short".into());
        }
        let nonce: [u8; NONCE_LEN] = data[..NONCE_LEN].try_into().expect("length checked");
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(incident_id, subject_id, field)),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| {
                "the stored value does not decrypt with its key (altered, or moved from another row)"
                    .to_string()
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| "the decrypted value is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(text: &str) -> KeyRing {
        KeyRing::parse(text).expect("valid keys")
    }

    #[test]
    fn round_trip_and_binding_to_the_row() {
        let k1 = KeyRing::generate("k1");
        let r = ring(&k1);
        let s = r.seal(7, "u-1", Field::Phone, "+8613800000000");
        assert!(s.starts_with("k1:"));
        assert!(!s.contains("13800000000"));
        assert_eq!(
            r.open(7, "u-1", Field::Phone, &s).unwrap(),
            "+8613800000000"
        );
        // Same plaintext twice: different ciphertexts (random nonces).
        assert_ne!(s, r.seal(7, "u-1", Field::Phone, "+8613800000000"));
        // Moved to another subject, field or incident: refused.
        assert!(r.open(7, "u-2", Field::Phone, &s).is_err());
        assert!(r.open(7, "u-1", Field::Email, &s).is_err());
        assert!(r.open(8, "u-1", Field::Phone, &s).is_err());
        // Altered: refused.
        let mut bad = s.clone();
        bad.pop();
        bad.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(r.open(7, "u-1", Field::Phone, &bad).is_err());
    }

    #[test]
    fn rotation_first_key_encrypts_all_decrypt() {
        let old = KeyRing::generate("2025");
        let new = KeyRing::generate("2026");
        let before = ring(&old).seal(1, "s", Field::Name, "张三");
        let rotated = ring(&format!("{new}\n{old}\n"));
        assert_eq!(rotated.current_id(), "2026");
        assert_eq!(rotated.open(1, "s", Field::Name, &before).unwrap(), "张三");
        let after = rotated.seal(1, "s", Field::Name, "张三");
        assert!(after.starts_with("2026:"));
        let e = ring(&old).open(1, "s", Field::Name, &after).unwrap_err();
        assert!(e.contains("key `2026`"), "{e}");
    }

    #[test]
    fn notice_links_are_signed_and_survive_rotation() {
        let old = KeyRing::generate("a");
        let r = ring(&old);
        let t = r.link_token(3, 77);
        assert_eq!(r.verify_link(&t), Some((3, 77)));
        assert_eq!(r.verify_link(&t.replace("3.77", "3.78")), None);
        assert_eq!(r.verify_link("3.77.a.AAAA"), None);
        let rotated = ring(&format!("{} {old}", KeyRing::generate("b")));
        assert_eq!(rotated.verify_link(&t), Some((3, 77)));
        assert_eq!(ring(&KeyRing::generate("a")).verify_link(&t), None);
    }

    #[test]
    fn bad_keys_are_explained_without_echoing_them() {
        for (text, needle) in [
            ("", "no key given"),
            ("abc", "<key id>:<64 hex digits>"),
            ("k:1234", "64 hex digits"),
            ("k/1:00", "key id"),
        ] {
            let e = KeyRing::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("1234"), "never echo key material: {e}");
        }
        let k = KeyRing::generate("same");
        assert!(
            KeyRing::parse(&format!("{k} {k}"))
                .unwrap_err()
                .contains("twice")
        );
    }
}
