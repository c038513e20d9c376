//! Pure domain types and rules: no I/O, no async.
//!
//! Raw strings from the outside world are parsed into these types once, at the edge (config
//! loading, HTTP extraction, CLI parsing); everything inside works with validated values.

pub mod alert;
pub mod audit;
pub mod classify;
pub mod drill;
pub mod duration;
pub mod facts;
pub mod incident;
pub mod notice;
pub mod playbook;
pub mod records;
pub mod regulation;
pub mod time;

pub use alert::{AlertStatus, NewAlert};
pub use facts::Facts;
pub use incident::{Category, Severity, Status};
