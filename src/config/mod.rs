//! Configuration: one TOML file, unknown keys refused, `INCIDENTD__SECTION__KEY` environment
//! overrides, secrets from `<key>_file` or systemd credentials, validated before anything starts.

mod checks;
pub mod files;
mod load;
mod schema;
pub mod trial;

pub use load::{ConfigError, load, load_rules, unknown_regulators};
pub use schema::*;
