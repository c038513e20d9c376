#![deny(unsafe_code)]
//! incidentd: security incident response and notification.

pub mod api;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod domain;
pub mod edge;
pub mod engine;
pub mod ingest;
pub mod render;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod subjects;
pub mod telemetry;

#[cfg(test)]
mod architecture;
