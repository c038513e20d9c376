//! Start-up, reload and shutdown. The server is built from settings, binds its listener (port 0
//! allowed) and runs until a shutdown future resolves, so tests start the real daemon in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::{AppState, Live, router};
use crate::channels::Channels;
use crate::config::{self, ConfigError, Settings};
use crate::dispatch::Dispatcher;
use crate::domain::playbook::Playbooks;
use crate::engine::{Engine, IngestQueue};
use crate::render::Templates;
use crate::scheduler::{Scheduler, TimerHandler};
use crate::store::{NewEvent, Store};

/// A daemon ready to serve: store open and migrated, writer running, listener bound.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    writer: JoinHandle<()>,
    dispatcher: Dispatcher,
    campaigns: CampaignRunner,
    scheduler: Scheduler,
    settings: Settings,
    reload: Reloader,
}

/// Re-reads the configuration and swaps in what may change while running.
#[derive(Clone)]
pub struct Reloader {
    reload_error: Arc<ArcSwap<Option<String>>>,
    /// The engine's "playbooks configured" flag (not the engine: that would keep the ingest
    /// queue, and so the writer, alive past shutdown).
    respond: Arc<AtomicBool>,
    /// The engine's jurisdiction packs and organisation settings.
    regulation: Arc<ArcSwap<crate::engine::obligations::Regulation>>,
    live: Arc<ArcSwap<Live>>,
    current: Arc<Mutex<Settings>>,
    store: Store,
}

/// Open the store, bring its schema up to date and prepare the audit trail (sealing rows
/// written before sealing began; marking the chain keyed).
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(settings).await.with_context(|| {
        format!(
            "cannot open the store at {}",
            crate::store::describe(settings)
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot bring the database schema up to date")?;
    let prepared = store
        .prepare_audit()
        .await
        .context("cannot prepare the audit trail")?;
    if let Some(n) = prepared.baseline_rows {
        info!(
            rows = n,
            "audit: sealed the rows written before row sealing began (audit.baseline)"
        );
    }
    if prepared.marked_keyed {
        info!("audit: [audit] key is set; from now on every event carries a MAC (audit.keyed)");
    }
    Ok(store)
}

/// What the configuration's folders hold, loaded and checked: templates, playbooks, packs and
/// drills, with the settings they go with. A failure names the piece it is in ("templates",
/// "playbooks", "jurisdiction packs", "drill scenarios").
fn load_live(settings: &Settings) -> Result<Live, (ConfigError, &'static str)> {
    let templates = load_templates(settings).map_err(|e| (e, "templates"))?;
    let playbooks = load_playbooks(settings, &templates).map_err(|e| (e, "playbooks"))?;
    let packs = load_packs(settings, &templates).map_err(|e| (e, "jurisdiction packs"))?;
    let drills = load_drills(settings, &templates, playbooks.as_ref())
        .map_err(|e| (e, "drill scenarios"))?;
    let mut live = Live::from_settings(
        settings,
        Arc::new(templates),
        playbooks.map(Arc::new),
        Arc::new(packs),
    );
    live.drills = Arc::new(drills);
    Ok(live)
}

impl Server {
    pub async fn build(settings: Settings) -> anyhow::Result<Server> {
        let store = open_store(&settings).await?;
        let channels = Channels::new(&settings.channels, Arc::new(store.clone()))
            .context("cannot set up the delivery channels")?;
        let (queue, writer) = IngestQueue::start(store.clone(), &settings.ingest);
        let live = load_live(&settings).map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        let live = Arc::new(ArcSwap::from_pointee(live));
        let state = AppState {
            engine: Engine::new(store.clone(), queue),
            live: live.clone(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            reload_error: Arc::new(ArcSwap::from_pointee(None)),
            sign_ins: crate::api::auth::SignInLimiter::default(),
        };
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        state.engine.set_respond(state.live().playbooks.is_some());
        state.engine.set_regulation(state.live().regulation());
        let keys_live = live.clone();
        let dispatcher = Dispatcher::start(
            store.clone(),
            channels,
            settings.dispatch.clone(),
            Arc::new(move || keys_live.load().subject_keys.clone()),
        );
        if state.engine.regulates() {
            // The packs may have changed while the daemon was down: open incidents are
            // assessed again once the scheduler runs.
            let mut tx = store.begin_write().await?;
            crate::engine::obligations::recompute_open(&mut tx, Utc::now())
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot queue open incidents for re-assessment: {e}")
                })?;
            tx.commit().await?;
        }
        // Heartbeats: every configured one gets its row and its check; watching restarts now.
        crate::engine::heartbeats::arm(&store, &state.live().heartbeats, Utc::now(), true)
            .await
            .map_err(|e| anyhow::anyhow!("cannot arm the heartbeats: {e}"))?;
        let campaigns = CampaignRunner::start(state.engine.clone(), live.clone());
        // Last, as nothing may fail after it: a scheduler once started keeps running.
        let scheduler = Scheduler::start(
            store.clone(),
            Arc::new(ResponseTimers { live: live.clone() }),
            settings.scheduler.with_drills(&settings.drills),
        )
        .await
        .context("cannot start the scheduler")?;
        let reload = Reloader {
            respond: state.engine.respond_flag(),
            regulation: state.engine.regulation_handle(),
            reload_error: state.reload_error.clone(),
            live: live.clone(),
            current: Arc::new(Mutex::new(settings.clone())),
            store,
        };
        Ok(Server {
            listener,
            state,
            writer,
            dispatcher,
            campaigns,
            scheduler,
            settings,
            reload,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.server.listen)
    }

    pub fn store(&self) -> &Store {
        self.state.engine.store()
    }

    pub fn reloader(&self) -> Reloader {
        self.reload.clone()
    }

    /// Serve until `shutdown` resolves, then drain: stop accepting, finish requests (bounded by
    /// `server.shutdown_timeout`), commit every queued alert, close the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            state,
            writer,
            dispatcher,
            campaigns,
            scheduler,
            settings,
            reload,
        } = self;
        let limit = settings.server.shutdown_timeout.0;
        let flag = state.shutting_down.clone();
        let store = state.engine.store().clone();
        let app = router(
            state,
            settings.server.request_timeout.0,
            crate::console::router(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            flag.store(true, Ordering::Relaxed);
            info!("shutting down: no new connections; finishing requests in flight");
            let _ = tx.send(());
        };
        let limits = crate::edge::Limits::from_settings(&settings.server);
        log_audit_head(&store, "start").await;
        let heads = spawn_audit_head_log(store.clone(), settings.audit.head_every.0);
        {
            // Dropped at the end of this block: connections still open are closed with it.
            let mut serve = std::pin::pin!(crate::edge::serve(listener, app, limits, signal));
            tokio::select! {
                () = &mut serve => {}
                _ = async { let _ = rx.await; tokio::time::sleep(limit).await } => {
                    warn!(limit = ?limit, "requests still open at the shutdown limit; closing them");
                }
            }
        }
        drop(reload);
        // The campaign runner holds the engine (and with it an ingest queue handle): stop it first.
        campaigns.shutdown(limit).await;
        // Every queue handle is gone with the router: the writer commits what is queued, then ends.
        if tokio::time::timeout(limit, writer).await.is_err() {
            error!("the alert writer did not finish within the shutdown limit");
        }
        scheduler.shutdown(limit).await;
        dispatcher.shutdown(limit).await;
        heads.abort();
        log_audit_head(&store, "stop").await;
        store.close().await;
        info!("stopped");
        Ok(())
    }
}

impl Reloader {
    /// A reload refused: say why in the log and on `/readyz`, keep what runs; the problem.
    fn refused(&self, e: ConfigError, kept: &str) -> ConfigError {
        if kept.is_empty() {
            error!(problems = %e, "reload refused: keeping the running configuration");
        } else {
            error!(problems = %e, "reload refused: keeping the running configuration and {kept}");
        }
        self.reload_error.store(Arc::new(Some(e.to_string())));
        e
    }

    /// Re-read and validate the configuration and classification rules; swap them in, or keep
    /// the old ones and say why. Settings that need a restart are named in the log.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let mut current = self.current.lock().await;
        let new = config::load(&current.config_path).map_err(|e| self.refused(e, ""))?;
        if new.departments.is_empty() && !current.departments.is_empty() {
            let e = ConfigError {
                problems: vec![format!(
                    "{}: departments: the new configuration has no [[departments]]; pending escalations and deadlines would have nobody to page. Restart to run without departments",
                    current.config_path.display()
                )],
            };
            return Err(self.refused(e, ""));
        }
        let live = load_live(&new).map_err(|(e, what)| self.refused(e, what))?;
        let restart = restart_needed(&new, &current);
        if !restart.is_empty() {
            warn!(settings = ?restart, "these settings changed but take effect only after a restart");
        }
        let regulation = live.regulation();
        let regulation_changed = {
            let old = self.regulation.load();
            (old.operator_type, &old.jurisdictions)
                != (regulation.operator_type, &regulation.jurisdictions)
                || packs_text(&old.packs) != packs_text(&regulation.packs)
        };
        let event = NewEvent::new(
            Utc::now(),
            "incidentd",
            "config.reloaded",
            None,
            &json!({
                "rules": live.rules.len(),
                "tokens": new.tokens.iter().map(|t| &t.name).collect::<Vec<_>>(),
                "restart_needed": restart,
            }),
        );
        if let Err(e) = self.audit(event).await {
            warn!(error = %e, "reload: could not write the audit event; swapping anyway");
        }
        info!(
            rules = live.rules.len(),
            tokens = live.tokens.len(),
            "configuration reloaded"
        );
        self.respond
            .store(live.playbooks.is_some(), Ordering::Relaxed);
        self.regulation.store(Arc::new(regulation));
        self.live.store(Arc::new(live));
        self.reload_error.store(Arc::new(None));
        // After the swap: the scheduler assesses with the live packs.
        if regulation_changed {
            // Open incidents are assessed again under the new packs, by the scheduler.
            match self.recompute_open().await {
                Ok(n) => info!(
                    incidents = n,
                    "jurisdiction packs changed: open incidents will be re-assessed"
                ),
                Err(e) => {
                    warn!(error = %e, "jurisdiction packs changed but open incidents could not be queued for re-assessment")
                }
            }
        }
        // Heartbeats added by the new configuration get their row and check.
        let beats = self.live.load().heartbeats.clone();
        if let Err(e) = crate::engine::heartbeats::arm(&self.store, &beats, Utc::now(), false).await
        {
            warn!(error = %e, "reload: heartbeats could not be armed; they are armed at the next start or reload");
        }
        *current = new;
        Ok(())
    }

    /// Fire every timer due at `now` with this daemon's timer handler and live configuration,
    /// as the scheduler would at that moment; returns how many fired. Tests move time on with
    /// it instead of waiting (the scheduler itself keeps running on the wall clock).
    pub async fn fire_due(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<usize, crate::store::StoreError> {
        let cfg = self.current.lock().await.scheduler.to_config();
        let handler = ResponseTimers {
            live: self.live.clone(),
        };
        crate::scheduler::fire_due(&self.store, &handler, &cfg, now).await
    }

    async fn recompute_open(&self) -> Result<usize, crate::engine::EngineError> {
        let mut tx = self.store.begin_write().await?;
        let n = crate::engine::obligations::recompute_open(&mut tx, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn audit(&self, event: NewEvent) -> Result<(), crate::store::StoreError> {
        let mut tx = self.store.begin_write().await?;
        tx.append(&[event]).await?;
        tx.commit().await
    }
}

/// Load and compile the message templates named by the settings.
pub fn load_templates(s: &Settings) -> Result<Templates, ConfigError> {
    let t = Templates::load(&s.templates_path, &s.render)
        .map_err(|problems| ConfigError { problems })?;
    crate::engine::announce::check_config(&s.announcements, &t)
        .map_err(|p| ConfigError { problems: vec![p] })?;
    Ok(t)
}

/// The settings a reload changed that take effect only after a restart.
fn restart_needed(new: &Settings, current: &Settings) -> Vec<&'static str> {
    let mut restart = Vec::new();
    if new.server.listen != current.server.listen {
        restart.push("server.listen");
    }
    let edge = |s: &crate::config::ServerConfig| {
        (
            s.request_timeout,
            s.header_read_timeout,
            s.idle_timeout,
            s.max_connections,
        )
    };
    if edge(&new.server) != edge(&current.server) {
        restart.push("server.request_timeout/header_read_timeout/idle_timeout/max_connections");
    }
    if new.store_url.expose_secret() != current.store_url.expose_secret() {
        restart.push("store.url");
    }
    if new.store.max_connections != current.store.max_connections
        || new.store.busy_timeout.0 != current.store.busy_timeout.0
        || new.store.sqlite_synchronous != current.store.sqlite_synchronous
    {
        restart.push("store (pool, busy_timeout, sqlite_synchronous)");
    }
    if new.ingest.queue_capacity != current.ingest.queue_capacity
        || new.ingest.max_batch_alerts != current.ingest.max_batch_alerts
    {
        restart.push("ingest.queue_capacity/max_batch_alerts");
    }
    if format!("{:?}{:?}", new.channels, new.dispatch)
        != format!("{:?}{:?}", current.channels, current.dispatch)
    {
        restart.push("channels, dispatch");
    }
    if format!("{:?}", new.scheduler) != format!("{:?}", current.scheduler) {
        restart.push("scheduler");
    }
    if new.drills.schedule != current.drills.schedule {
        restart.push("drills.schedule");
    }
    restart
}

/// Fires the response's timers (playbooks, escalations, overdue tasks, digests) with the live
/// configuration of the moment.
struct ResponseTimers {
    live: Arc<ArcSwap<Live>>,
}

impl TimerHandler for ResponseTimers {
    fn fire<'a>(
        &'a self,
        tx: &'a mut crate::store::WriteTx,
        timers: &'a [crate::store::DueTimer],
        now: chrono::DateTime<Utc>,
    ) -> crate::channels::BoxFuture<'a, Result<(), crate::store::StoreError>> {
        Box::pin(async move {
            let live = self.live.load_full();
            let to_store = |e| match e {
                crate::engine::EngineError::Unavailable(m) => {
                    crate::store::StoreError::Unavailable(m)
                }
                other => crate::store::StoreError::Failed(other.to_string()),
            };
            let regulation = live.regulation();
            let drill_ctx = live.drill_ctx(&regulation);
            // `None` without departments: nothing to page, nobody to escalate to.
            let ctx = live.response_ctx();
            // Cron ticks go to their job in one place (drills and the digest).
            let (ticks, timers): (Vec<_>, Vec<_>) = timers
                .iter()
                .cloned()
                .partition(crate::engine::cron::is_tick);
            if !ticks.is_empty() {
                crate::engine::cron::fire(tx, &ticks, &drill_ctx, ctx.as_ref(), now)
                    .await
                    .map_err(to_store)?;
            }
            let (drills, timers): (Vec<_>, Vec<_>) = timers
                .into_iter()
                .partition(|t| t.kind.starts_with("drill."));
            // Heartbeat checks work without departments too (the incident opens, unpaged).
            let (heartbeats, timers): (Vec<_>, Vec<_>) = timers
                .into_iter()
                .partition(|t| t.kind == crate::engine::heartbeats::TIMER_CHECK);
            if !heartbeats.is_empty() {
                crate::engine::heartbeats::fire(tx, &live.heartbeat_ctx(), &heartbeats, now)
                    .await
                    .map_err(to_store)?;
            }
            if !drills.is_empty() {
                crate::engine::drills::fire(tx, &drill_ctx, &drills, now)
                    .await
                    .map_err(to_store)?;
            }
            let (obligations, response): (Vec<_>, Vec<_>) = timers
                .into_iter()
                .partition(|t| t.kind.starts_with("obligation."));
            if !obligations.is_empty() {
                // Deadlines are tracked without departments too: a miss is recorded, unpaged.
                crate::engine::obligations::fire(tx, &regulation, ctx.as_ref(), &obligations, now)
                    .await
                    .map_err(to_store)?;
            }
            let Some(ctx) = ctx else {
                // No departments (configured away since): nothing to page, nobody to escalate to.
                return Ok(());
            };
            if response.is_empty() {
                return Ok(());
            }
            crate::engine::response::fire(tx, &ctx, &response, now)
                .await
                .map_err(to_store)
        })
    }
}

/// Load and check the playbooks against the departments and templates; `None` when no
/// departments are configured (nobody to page, no team to form).
pub fn load_playbooks(
    s: &Settings,
    templates: &Templates,
) -> Result<Option<Playbooks>, ConfigError> {
    if s.departments.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&str> = s.departments.iter().map(|d| d.id.as_str()).collect();
    let names = templates.names();
    crate::config::files::playbooks(&s.playbooks_path, &ids, &|t| names.contains(&t))
        .map(Some)
        .map_err(|problems| ConfigError { problems })
}

/// Load and check the jurisdiction packs against the departments and templates; none when no
/// folder is configured or found.
pub fn load_packs(
    s: &Settings,
    templates: &Templates,
) -> Result<crate::domain::regulation::Packs, ConfigError> {
    let Some(dir) = &s.jurisdictions_path else {
        return Ok(Default::default());
    };
    let ids: Vec<&str> = s.departments.iter().map(|d| d.id.as_str()).collect();
    let names = templates.names();
    let packs = crate::config::files::packs(dir, &ids, &|t| names.contains(&t))
        .map_err(|problems| ConfigError { problems })?;
    // A regulator no pack names would leave the real one without an address.
    let unknown = crate::config::unknown_regulators(&s.regulators, &packs);
    if !unknown.is_empty() {
        let shown = s.config_path.display().to_string();
        return Err(ConfigError {
            problems: unknown
                .into_iter()
                .map(|p| format!("{shown}: {p}"))
                .collect(),
        });
    }
    Ok(packs)
}

/// Load and check the drill scenarios against the departments, templates and playbooks (every
/// department the playbook a scenario's drill gets pages must be a participant), and the
/// `[[drills.schedule]]` entries against the scenarios; none when no folder is configured or
/// found.
pub fn load_drills(
    s: &Settings,
    templates: &Templates,
    playbooks: Option<&Playbooks>,
) -> Result<crate::domain::drill::Scenarios, ConfigError> {
    let shown = s.config_path.display().to_string();
    let Some(dir) = &s.drills_path else {
        return match s.drills.schedule.first() {
            None => Ok(Default::default()),
            Some(d) => Err(ConfigError {
                problems: vec![format!(
                    "{shown}: drills.schedule[0].scenario: `{}`: there is no drills folder (add config/drills/*.toml or set [paths] drills)",
                    d.scenario
                )],
            }),
        };
    };
    let ids: Vec<&str> = s.departments.iter().map(|d| d.id.as_str()).collect();
    let names = templates.names();
    let pb_ids: Vec<&str> = playbooks
        .map(|p| p.all().iter().map(|p| p.id.as_str()).collect())
        .unwrap_or_default();
    let scenarios = crate::config::files::scenarios(dir, &ids, &|t| names.contains(&t), &pb_ids)
        .map_err(|problems| ConfigError { problems })?;
    // Every department the drill's playbook pages must be let through the drill guard.
    let mut problems: Vec<String> = playbooks
        .map(|pbs| {
            scenarios
                .all()
                .flat_map(|sc| crate::domain::drill::scenario::check_coverage(sc, pbs, &s.rules))
                .collect()
        })
        .unwrap_or_default();
    problems.extend(s
        .drills
        .schedule
        .iter()
        .enumerate()
        .filter(|(_, d)| scenarios.get(&d.scenario).is_none())
        .map(|(i, d)| {
            format!(
                "{shown}: drills.schedule[{i}].scenario: unknown scenario `{}`; the scenarios in {} are: {}",
                d.scenario,
                dir.display(),
                scenarios.names().join(", ")
            )
        }));
    if problems.is_empty() {
        Ok(scenarios)
    } else {
        Err(ConfigError { problems })
    }
}

/// The packs' validated content, to tell whether a reload changed them.
fn packs_text(p: &crate::domain::regulation::Packs) -> String {
    format!("{:?}", p.all())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received"),
        _ = term => info!("SIGTERM received"),
    }
}

/// Write the audit chain's head to the log: a log kept elsewhere anchors the chain
/// (`incidentd audit verify --expect-head ID:HASH`).
async fn log_audit_head(store: &Store, when: &'static str) {
    match store.audit_head().await {
        Ok(Some((id, hash, mac))) => info!(
            target: "incidentd::audit",
            when,
            head = %format!("{id}:{hash}"),
            mac = mac.as_deref().unwrap_or("none"),
            "audit head (keep it elsewhere; `incidentd audit verify --expect-head` checks the chain still passes through it)"
        ),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "cannot read the audit head"),
    }
}

fn spawn_audit_head_log(store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            log_audit_head(&store, "periodic").await;
        }
    })
}

/// Reload on every SIGHUP.
pub fn spawn_reload_on_sighup(reloader: Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            info!("SIGHUP received: reloading configuration");
            let _ = reloader.reload().await;
        }
    });
}

/// systemd: READY once serving, WATCHDOG while the store answers, STATUS lines along the way.
pub fn notify_systemd(store: Store, addr: SocketAddr) {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("serving on {addr}")),
    ]);
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = period / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match tokio::time::timeout(every, store.ping()).await {
                Ok(Ok(())) => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "watchdog: the store does not answer");
                    let _ =
                        sd_notify::notify(&[sd_notify::NotifyState::Status("store not answering")]);
                }
                Err(_) => warn!("watchdog: the store did not answer in time"),
            }
        }
    });
}

/// Moves notice campaigns on (start when approved, enqueue batch after batch) and purges
/// contact data past its retention, in the background.
struct CampaignRunner {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl CampaignRunner {
    fn start(engine: Engine, live: Arc<ArcSwap<Live>>) -> CampaignRunner {
        let stop = Arc::new(tokio::sync::Notify::new());
        let wake = engine.campaigns_wake();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut last_purge: Option<std::time::Instant> = None;
            loop {
                let l = live.load_full();
                let more = match engine.run_campaigns(&l.campaign_ctx()).await {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(error = %e, "notice campaigns: will try again shortly");
                        false
                    }
                };
                if last_purge.is_none_or(|t| t.elapsed() >= l.subjects.purge_every.0) {
                    last_purge = Some(std::time::Instant::now());
                    if let Err(e) = engine.purge_expired_subjects(l.subjects.retention.0).await {
                        warn!(error = %e, "purging expired contact data failed; will try again");
                    }
                }
                if more {
                    tokio::select! {
                        biased;
                        _ = stopped.notified() => break,
                        _ = tokio::task::yield_now() => {}
                    }
                    continue;
                }
                tokio::select! {
                    _ = stopped.notified() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        CampaignRunner { stop, task }
    }

    async fn shutdown(self, limit: Duration) {
        self.stop.notify_one();
        if tokio::time::timeout(limit, self.task).await.is_err() {
            warn!("the notice campaign runner did not stop within the shutdown limit");
        }
    }
}

/// The inbox channel keeps its notices in the store.
impl crate::channels::inbox::InboxSink for Store {
    fn keep<'a>(
        &'a self,
        msg: &'a crate::domain::message::Outgoing,
    ) -> crate::channels::BoxFuture<'a, Result<i64, String>> {
        Box::pin(async move { self.put_inbox_notice(msg).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests;
