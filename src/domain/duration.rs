//! Durations as people write them in configuration: `90s`, `10m`, `4h`, `3d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with one unit suffix (`s`, `m`, `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!(
                "`{s}` is not a duration: write a whole number and a unit, like 90s, 10m, 4h or 3d"
            )
        })?;
        let secs = match unit {
            "s" => Some(n),
            "m" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            "d" => n.checked_mul(86_400),
            "ms" if n <= 3650 * 86_400_000 => return Ok(Self(Duration::from_millis(n))),
            "ms" => None,
            _ => {
                return Err(format!(
                    "`{s}` has unit `{unit}`; use one of s, m, h, d (e.g. 90s, 10m, 4h, 3d)"
                ));
            }
        };
        // Ten years is longer than anything incidentd waits for, and keeps date arithmetic safe.
        let secs = secs
            .filter(|s| *s <= 3650 * 86_400)
            .ok_or_else(|| format!("`{s}` is longer than ten years (3650d)"))?;
        Ok(Self(Duration::from_secs(secs)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let secs = self.0.as_secs();
        if ms % 1000 != 0 {
            write!(f, "{ms}ms")
        } else if secs != 0 && secs % 86_400 == 0 {
            write!(f, "{}d", secs / 86_400)
        } else if secs != 0 && secs % 3600 == 0 {
            write!(f, "{}h", secs / 3600)
        } else if secs != 0 && secs % 60 == 0 {
            write!(f, "{}m", secs / 60)
        } else {
            write!(f, "{secs}s")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// "2h 5m", "3d 4h", "45s": a duration in a person's terms, two units at most.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m {secs}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Met (on or before the target), missed (after it, or not reached and `now` is past it), or
/// `None` without a target or while not yet due. The scorecard judges a drill's times the same way.
pub fn verdict(
    at: Option<chrono::DateTime<chrono::Utc>>,
    target: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<bool> {
    match (at, target) {
        (Some(a), Some(t)) => Some(a <= t),
        (None, Some(t)) if now > t => Some(false),
        _ => None,
    }
}

/// The time from `from` to `at`, humanised (`1h 5m`); `None` if not reached (or before `from`).
pub fn since(
    from: chrono::DateTime<chrono::Utc>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<String> {
    let d = (at? - from).to_std().ok()?;
    Some(humanize(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        for (text, secs) in [("90s", 90), ("10m", 600), ("4h", 14_400), ("3d", 259_200)] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_secs(secs), "{text}");
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn rejects_with_a_useful_message() {
        let e = "10 minutes".parse::<HumanDuration>().unwrap_err();
        assert!(e.contains("use one of s, m, h, d"), "{e}");
        let e = "m".parse::<HumanDuration>().unwrap_err();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn humanizes() {
        assert_eq!(humanize(Duration::from_secs(45)), "45s");
        assert_eq!(humanize(Duration::from_secs(3 * 3600 + 5 * 60)), "3h 5m");
        assert_eq!(humanize(Duration::from_secs(2 * 86_400 + 3600)), "2d 1h");
    }
}
