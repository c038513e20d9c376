//! Drills: exercises of the emergency plan (NIST SP 800-84) — scenarios as data, and the
//! scorecard that measures a drill against its targets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;

pub mod scenario;
pub mod scorecard;
pub use scenario::{Capture, Inject, Participants, Scenario, Scenarios, Start};

/// How much of the path a drill runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Tasks and pages only; people discuss the scenario.
    Tabletop,
    /// The whole path: notices and regulator reports rendered and delivered to the capture
    /// recipients.
    Functional,
}

/// What a drill is measured against (`[targets]` in a scenario). Each is a time from the
/// drill's start; an absent target is not measured against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Time to acknowledge the page, per department id; `default` for those not listed.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub acknowledge: BTreeMap<String, HumanDuration>,
    /// Time until the incident is contained.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub contain: Option<HumanDuration>,
    /// Time until the regulator grade is known (the first grade recorded).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub grade: Option<HumanDuration>,
    /// Time until the first initial regulator report is drafted.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub report_draft: Option<HumanDuration>,
    /// Time until that report is approved.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub report_approved: Option<HumanDuration>,
    /// Time until the notice to individuals is approved.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notice_approved: Option<HumanDuration>,
    /// Time until the notice reaches its (capture) recipients.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notice_delivered: Option<HumanDuration>,
}
