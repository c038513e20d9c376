//! Signed one-click acknowledgement links in pages: `{public_url}/ack/{token}`, the token bound
//! to incident, task and member and expiring, signed with HMAC-SHA256 (`[paging] ack_secret`).
//! Opening the link shows a confirmation page; its button (a POST, so mail scanners that fetch
//! links acknowledge nothing) acknowledges the task for the member.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::channels::sign::hmac_sha256;

/// What a valid link acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckClaim {
    pub incident_id: i64,
    pub task: String,
    /// `department/member-id`.
    pub member: String,
    /// Unix seconds.
    pub expires: i64,
}

const SEP: char = '\u{1f}';

/// The token for a claim.
pub fn sign(secret: &[u8], c: &AckClaim) -> String {
    let payload = format!(
        "{}{SEP}{}{SEP}{}{SEP}{}",
        c.incident_id, c.task, c.member, c.expires
    );
    let sig = hmac_sha256(secret, payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(&sig[..16])
    )
}

/// Why a link does not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckLinkError {
    #[error("this link is not valid (it was altered, or signed with another key)")]
    Invalid,
    #[error("this link has expired; acknowledge in incidentd instead")]
    Expired,
}

/// Check a token's signature and expiry (`now` in Unix seconds).
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<AckClaim, AckLinkError> {
    let (p, s) = token.split_once('.').ok_or(AckLinkError::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| AckLinkError::Invalid)?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| AckLinkError::Invalid)?;
    let want = hmac_sha256(secret, &payload);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&want[..16], &sig).is_err() {
        return Err(AckLinkError::Invalid);
    }
    let text = String::from_utf8(payload).map_err(|_| AckLinkError::Invalid)?;
    let parts: Vec<&str> = text.split(SEP).collect();
    let [incident, task, member, expires] = parts[..] else {
        return Err(AckLinkError::Invalid);
    };
    let claim = AckClaim {
        incident_id: incident.parse().map_err(|_| AckLinkError::Invalid)?,
        task: task.to_string(),
        member: member.to_string(),
        expires: expires.parse().map_err(|_| AckLinkError::Invalid)?,
    };
    if now > claim.expires {
        return Err(AckLinkError::Expired);
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> AckClaim {
        AckClaim {
            incident_id: 42,
            task: "contain".into(),
            member: "security/1".into(),
            expires: 1_000,
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let t = sign(b"0123456789abcdef", &claim());
        assert_eq!(verify(b"0123456789abcdef", &t, 999), Ok(claim()));
        assert_eq!(
            verify(b"0123456789abcdef", &t, 1_001),
            Err(AckLinkError::Expired)
        );
    }

    #[test]
    fn altered_or_foreign_links_are_refused() {
        let t = sign(b"0123456789abcdef", &claim());
        assert_eq!(
            verify(b"another-key-of-16", &t, 0),
            Err(AckLinkError::Invalid)
        );
        let mut other = claim();
        other.incident_id = 43;
        let forged = format!(
            "{}.{}",
            sign(b"x", &other).split_once('.').unwrap().0,
            t.split_once('.').unwrap().1
        );
        assert_eq!(
            verify(b"0123456789abcdef", &forged, 0),
            Err(AckLinkError::Invalid)
        );
        assert_eq!(
            verify(b"0123456789abcdef", "nonsense", 0),
            Err(AckLinkError::Invalid)
        );
    }
}
