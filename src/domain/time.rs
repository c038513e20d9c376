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

/// 2000-01-01T00:00:00Z: nothing incidentd records happened before it.
const EARLIEST: i64 = 946_684_800;
/// 2100-01-01T00:00:00Z: nothing incidentd plans (a silence's end) lies after it.
const LATEST: i64 = 4_102_444_800;

/// How far ahead of our clock a time that has already happened may be (clock skew).
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Whether a time given to the API is one incidentd can work with: from 2000 to 2099. A time
/// outside (year −1, 1970 from a zeroed clock, year 9999) would set deadlines in the distant
/// past or future and break every report that shows it.
pub fn in_range(t: &DateTime<Utc>) -> Result<(), String> {
    let shown = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    if t.timestamp() < EARLIEST {
        Err(format!(
            "`{shown}` is before 2000-01-01T00:00:00Z: give when it happened (UTC, RFC 3339, e.g. 2026-11-20T02:30:00Z)"
        ))
    } else if t.timestamp() >= LATEST {
        Err(format!(
            "`{shown}` is after 2099: give a time this century (UTC, RFC 3339, e.g. 2026-11-20T02:30:00Z)"
        ))
    } else {
        Ok(())
    }
}

/// A time that has already happened: in range, and not ahead of `now` by more than the skew.
pub fn happened(t: &DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    in_range(t)?;
    if *t > now + MAX_SKEW {
        return Err(format!(
            "{t} is in the future; give the time it actually happened (UTC, RFC 3339)"
        ));
    }
    Ok(())
}

/// Serde helpers for every time the API reads: RFC 3339, in [`in_range`], refused with the
/// field's path otherwise. `#[serde(deserialize_with = "crate::domain::time::bounded::required")]`,
/// or `bounded::option` with `default` for an optional one.
pub mod bounded {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let t = DateTime::<Utc>::deserialize(d)?;
        super::in_range(&t).map_err(serde::de::Error::custom)?;
        Ok(t)
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<DateTime<Utc>>::deserialize(d)? {
            Some(t) => {
                super::in_range(&t).map_err(serde::de::Error::custom)?;
                Ok(Some(t))
            }
            None => Ok(None),
        }
    }

    /// As [`option`], with Alertmanager's zero time (`0001-01-01T00:00:00Z`, "not ended")
    /// read as none.
    pub fn option_or_zero<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<DateTime<Utc>>::deserialize(d)? {
            Some(t) if super::is_zero_time(&t) => Ok(None),
            Some(t) => {
                super::in_range(&t).map_err(serde::de::Error::custom)?;
                Ok(Some(t))
            }
            None => Ok(None),
        }
    }
}

/// Serde for a time the store keeps as microseconds and the API shows as RFC 3339 UTC
/// (`2026-11-20T02:30:00.123456Z`): `#[serde(with = "crate::domain::time::micros")]` on an
/// `i64`, `micros::option` on an `Option<i64>`; with `#[schema(value_type = String, format =
/// DateTime)]` (or `Option<String>`) so the OpenAPI description says the same. Reading accepts
/// both forms, so JSON written before the API spoke RFC 3339 still reads.
pub mod micros {
    use serde::{Deserialize, Deserializer, Serializer};

    /// How every time in the API and in `--json` output is written.
    pub fn rfc3339(us: i64) -> String {
        super::from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Micros(i64),
        Text(String),
    }

    fn from_either<E: serde::de::Error>(v: Either) -> Result<i64, E> {
        match v {
            Either::Micros(us) => Ok(us),
            Either::Text(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.timestamp_micros())
                .map_err(|e| E::custom(format!("`{s}` is not an RFC 3339 time ({e})"))),
        }
    }

    pub fn serialize<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*us))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        from_either(Either::deserialize(d)?)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match us {
                Some(us) => s.serialize_str(&super::rfc3339(*us)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Option::<super::Either>::deserialize(d)?
                .map(super::from_either)
                .transpose()
        }
    }
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
    fn times_outside_this_century_are_refused() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = t("2026-11-25T00:00:00Z");
        assert!(in_range(&t("2000-01-01T00:00:00Z")).is_ok());
        assert!(in_range(&t("2099-12-31T23:59:59Z")).is_ok());
        for bad in [
            "-0001-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
            "9999-12-31T00:00:00Z",
        ] {
            let e = in_range(&t(bad)).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert!(happened(&t("2026-11-25T00:04:00Z"), now).is_ok());
        assert!(happened(&t("2026-11-25T00:06:00Z"), now).is_err());
        #[derive(serde::Deserialize)]
        struct W {
            #[serde(default, deserialize_with = "bounded::option_or_zero")]
            at: Option<DateTime<Utc>>,
        }
        let w: W = serde_json::from_str(r#"{"at":"0001-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(w.at, None);
        let e = serde_json::from_str::<W>(r#"{"at":"1960-01-01T00:00:00Z"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("before 2000-01-01"), "{e}");
    }

    #[test]
    fn alertmanager_zero_time_is_recognised() {
        let z: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        assert!(is_zero_time(&z));
        assert!(!is_zero_time(&Utc::now()));
    }
}
