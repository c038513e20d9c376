//! Logging (tracing) and metrics (Prometheus).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Install the tracing subscriber once per process. `RUST_LOG` overrides the configured level.
pub fn init_logging(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; tests start many daemons in
/// one process, so this must not fail the second time).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Suffix("_alerts".into()),
                    &[1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0],
                )
            })
            .expect("static bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

const MAX_SOURCES: usize = 64;
static SOURCES: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

/// Alert sources are chosen by senders; cap the label's cardinality so a misbehaving sender
/// cannot grow the metrics without bound. Past the cap, new sources are counted as `other`.
pub fn source_label(source: &str) -> String {
    let set = SOURCES.get_or_init(|| Mutex::new(HashSet::new()));
    let Ok(mut set) = set.lock() else {
        return "other".into();
    };
    if set.contains(source) {
        return source.to_string();
    }
    if set.len() < MAX_SOURCES {
        set.insert(source.to_string());
        source.to_string()
    } else {
        "other".into()
    }
}
