//! The test suite: one binary, one module per story file beside this one, so the crate is linked
//! once and every story runs in one process (`cargo test` prints each test as
//! `<file>::<backend>::<story>`, e.g. `alerts::sqlite::generic_alerts_one_or_many`). Run one file
//! with `cargo test --test stories alerts::`, one story with its name.
//!
//! The stories start the real daemon in-process (or as a process) on a fresh database, on SQLite
//! and PostgreSQL (`INCIDENTD_TEST_PG_URL`), and talk to it as its users do. The helpers they
//! share are in `common/`; a story waits on a condition (`common::wait_for`) rather than for a
//! fixed time, and where time itself must pass, says why.
//!
//! Tests in one process share its statics: the Prometheus recorder (a gauge another daemon
//! scrapes may be set between two reads — check gauges with `wait_for`), the tracing dispatcher
//! (capture logs with a thread-local subscriber, as `security_edge` does) and the environment
//! (read it, never set it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

// Alerts in, incidents out.
mod alerts;
mod incidents;
mod intake;

// The response: playbooks, pages, tasks, approvals, the notice.
mod deliveries;
mod email;
mod notice_lint;
mod phone;
mod response;
mod timers;

// Affected people, the public, regulators.
mod announcements;
mod obligations;
mod regulation_rules;
mod reports;
mod subjects;

// Drills.
mod drills;
mod scorecard;

// The whole story, the README's tour, the console, the command line.
mod cli;
mod console;
mod render;
mod story;
mod tour;

// The API's hygiene, the edge, side doors, durability, crashes, tampering, parsers.
mod api;
mod audit_tamper;
mod crash;
mod durability;
mod fuzz;
mod security_edge;
mod security_sidedoors;
