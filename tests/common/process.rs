//! `incidentd serve` as a child process (tests that kill it, and the benchmarks).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Start the daemon on `config` and wait until it listens; its log goes to our stderr.
/// Returns the process and its `host:port`.
pub fn spawn_serve(config: &Path) -> (Child, String) {
    spawn_serve_with_env(config, &[])
}

/// The daemon binary: this build's, unless `INCIDENTD_BENCH_BIN` names another (benchmarks compare
/// two builds in alternating runs that way).
pub fn binary() -> String {
    std::env::var("INCIDENTD_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_incidentd").to_string())
}

/// As [`spawn_serve`], with environment variables set for the daemon (e.g. the
/// `INCIDENTD__<SECTION>__<KEY>` overrides of its configuration).
pub fn spawn_serve_with_env(config: &Path, env: &[(String, String)]) -> (Child, String) {
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the daemon exited before listening")
            .unwrap();
        if let Some(i) = line.find("listening on http://") {
            break line[i + 20..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
    };
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("daemon: {l}");
        }
    });
    (child, addr)
}
