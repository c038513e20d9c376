//! Intake a monitoring stack can trust (issue #15), through the running daemon on SQLite and
//! PostgreSQL: alert groups as incidents, triage of unmatched critical alerts, storms, and
//! people's corrections (move, promote, merge).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod correlation;
