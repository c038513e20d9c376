//! The dispatcher: claims committed deliveries from the outbox and sends them.
//!
//! (Being built.)
