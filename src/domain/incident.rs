//! Incidents: internal severity, category and the lifecycle state machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The company's internal response level. `S1` is the highest-level emergency plan.
///
/// Ordering follows urgency: `S1 > S2 > S3 > S4`.
// Written by hand, not with `string_enum!`: its order runs against the written one (`S1` is
// the greatest), it parses in any case (`s1`), and its error explains the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Severity {
    S1,
    S2,
    S3,
    S4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::S1, Severity::S2, Severity::S3, Severity::S4];

    fn rank(self) -> u8 {
        match self {
            Severity::S1 => 4,
            Severity::S2 => 3,
            Severity::S3 => 2,
            Severity::S4 => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::S1 => "S1",
            Severity::S2 => "S2",
            Severity::S3 => "S3",
            Severity::S4 => "S4",
        }
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "S1" => Ok(Severity::S1),
            "S2" => Ok(Severity::S2),
            "S3" => Ok(Severity::S3),
            "S4" => Ok(Severity::S4),
            _ => Err(format!(
                "`{s}` is not a severity; use S1 (critical) … S4 (low)"
            )),
        }
    }
}

string_enum! {
    /// Incident category (GB/T 20986 families, with personal-information incidents split out
    /// because they always start the highest-level emergency plan).
    Category {
        PiLeak => "pi_leak",
        PiDamage => "pi_damage",
        PiLoss => "pi_loss",
        InformationDestruction => "information_destruction",
        Vulnerability => "vulnerability",
        Malware => "malware",
        NetworkAttack => "network_attack",
        Intrusion => "intrusion",
        ContentSecurity => "content_security",
        EquipmentFault => "equipment_fault",
        Disaster => "disaster",
        Other => "other",
        // An alert no rule classified, opened for triage because its sender called it
        // critical or high (`[unmatched]` in the rules file): a person decides what it is.
        Unclassified => "unclassified",
    } what = "a known category"
}

impl Category {
    /// Leak, damage or loss of personal information: always `S1`.
    pub fn is_personal_information(self) -> bool {
        matches!(
            self,
            Category::PiLeak | Category::PiDamage | Category::PiLoss
        )
    }

    /// The lowest severity this category may have. PI incidents may never be below S1.
    pub fn severity_floor(self) -> Option<Severity> {
        self.is_personal_information().then_some(Severity::S1)
    }
}

string_enum! {
    /// Lifecycle status (NIST SP 800-61 phases, plus false positives and reopening).
    Status {
        Detected => "detected",
        Triaged => "triaged",
        Contained => "contained",
        Eradicated => "eradicated",
        Recovered => "recovered",
        Closed => "closed",
        FalsePositive => "false_positive",
        Reopened => "reopened",
        // Merged into another incident (`merged_into`), which carries on: final.
        Merged => "merged",
    } what = "a known status"
}

impl Status {
    /// The statuses this one may move to.
    pub fn allowed_next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Detected => &[Triaged, FalsePositive],
            Triaged => &[Contained, FalsePositive],
            Contained => &[Eradicated],
            Eradicated => &[Recovered],
            Recovered => &[Closed],
            Closed | FalsePositive => &[Reopened],
            Reopened => &[Triaged],
            // Only a merge leads here, and nothing leads out: the survivor carries on.
            Merged => &[],
        }
    }

    /// Open incidents collect new alerts; closed, false-positive and merged ones do not.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            Status::Closed | Status::FalsePositive | Status::Merged
        )
    }

    pub fn check_transition(self, to: Status) -> Result<(), TransitionError> {
        if self.allowed_next().contains(&to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

/// An illegal lifecycle move, with what would have been allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot move an incident from `{from}` to `{to}`; from `{from}` it may move to: {}", list(.from.allowed_next()))]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

fn list(s: &[Status]) -> String {
    s.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The severity an automatic re-classification leaves: raise only, and PI stays S1.
pub fn raise_only(current: Severity, proposed: Severity, category: Category) -> Severity {
    let s = current.max(proposed);
    match category.severity_floor() {
        Some(floor) => s.max(floor),
        None => s,
    }
}

/// The category an automatic re-classification leaves: a PI category always wins; otherwise a
/// strictly more severe classification may replace the category, an equal or lesser one may not
/// — except that any real classification replaces `unclassified`, and `unclassified` replaces
/// nothing.
pub fn reclassify_category(
    current: (Category, Severity),
    proposed: (Category, Severity),
) -> Category {
    let (cur_cat, cur_sev) = current;
    let (new_cat, new_sev) = proposed;
    if cur_cat.is_personal_information() || new_cat == Category::Unclassified {
        // Not knowing what something is never replaces knowing.
        cur_cat
    } else if new_cat.is_personal_information()
        || new_sev > cur_sev
        || cur_cat == Category::Unclassified
    {
        new_cat
    } else {
        cur_cat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_by_urgency() {
        assert!(Severity::S1 > Severity::S2);
        assert!(Severity::S4 < Severity::S3);
        assert_eq!(Severity::S2.max(Severity::S3), Severity::S2);
    }

    #[test]
    fn pi_is_always_s1() {
        for c in [Category::PiLeak, Category::PiDamage, Category::PiLoss] {
            assert_eq!(raise_only(Severity::S4, Severity::S4, c), Severity::S1);
        }
        assert_eq!(
            raise_only(Severity::S3, Severity::S4, Category::Malware),
            Severity::S3
        );
    }

    #[test]
    fn reclassification_never_leaves_pi() {
        let c = reclassify_category(
            (Category::PiLeak, Severity::S1),
            (Category::Intrusion, Severity::S1),
        );
        assert_eq!(c, Category::PiLeak);
        let c = reclassify_category(
            (Category::Malware, Severity::S2),
            (Category::PiLoss, Severity::S1),
        );
        assert_eq!(c, Category::PiLoss);
        let c = reclassify_category(
            (Category::Malware, Severity::S2),
            (Category::Vulnerability, Severity::S3),
        );
        assert_eq!(c, Category::Malware);
    }

    #[test]
    fn unclassified_yields_to_any_classification_and_replaces_none() {
        let c = reclassify_category(
            (Category::Unclassified, Severity::S2),
            (Category::Malware, Severity::S3),
        );
        assert_eq!(c, Category::Malware);
        let c = reclassify_category(
            (Category::Malware, Severity::S3),
            (Category::Unclassified, Severity::S1),
        );
        assert_eq!(c, Category::Malware);
        assert!(!Status::Merged.is_open());
        assert!(Status::Merged.allowed_next().is_empty());
    }

    #[test]
    fn lifecycle_allows_only_listed_moves() {
        assert!(Status::Detected.check_transition(Status::Triaged).is_ok());
        assert!(
            Status::Triaged
                .check_transition(Status::FalsePositive)
                .is_ok()
        );
        assert!(Status::Closed.check_transition(Status::Reopened).is_ok());
        assert!(Status::Reopened.check_transition(Status::Triaged).is_ok());
        let e = Status::Detected
            .check_transition(Status::Closed)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot move an incident from `detected` to `closed`; from `detected` it may move to: `triaged`, `false_positive`"
        );
        assert!(
            Status::Contained
                .check_transition(Status::FalsePositive)
                .is_err()
        );
    }

    #[test]
    fn parses_and_names_choices() {
        assert_eq!("pi_leak".parse::<Category>().unwrap(), Category::PiLeak);
        let e = "leak".parse::<Category>().unwrap_err();
        assert!(e.contains("pi_leak, pi_damage"), "{e}");
        assert_eq!("s2".parse::<Severity>().unwrap(), Severity::S2);
    }
}
