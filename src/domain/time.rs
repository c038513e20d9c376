//! Timestamps: UTC everywhere, stored as microseconds since the Unix epoch.

use chrono::{DateTime, TimeZone, Utc};

/// Microseconds since the Unix epoch, UTC — how both store backends keep time.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch rather than panic,
/// because a corrupt row must not take the daemon down.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// Alertmanager marks "not ended" with the zero time `0001-01-01T00:00:00Z`.
pub fn is_zero_time(t: &DateTime<Utc>) -> bool {
    t.timestamp() <= -62_135_596_800
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 7, 57, 56).unwrap();
        assert_eq!(from_micros(to_micros(t)), t);
    }

    #[test]
    fn alertmanager_zero_time_is_recognised() {
        let z: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        assert!(is_zero_time(&z));
        assert!(!is_zero_time(&Utc::now()));
    }
}
