//! Intake stories (issue #15) through the running daemon, on SQLite and PostgreSQL: one module
//! per part.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod heartbeats;
mod silences;
