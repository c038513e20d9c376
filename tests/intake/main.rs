//! Issue #15's stories (intake a monitoring stack can trust), one module per part, in one test
//! binary: every test binary links the whole crate, so they share this one.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod paging;
