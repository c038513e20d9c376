//! Intake stories (issue #15): correlation, triage of unmatched alerts, storms, heartbeats,
//! silences, paging, people's corrections (move, promote, merge), and the path through a real
//! Prometheus Alertmanager — on SQLite and PostgreSQL. Each part is a module.
mod alertmanager;
mod correlation;
mod heartbeats;
mod paging;
mod silences;
