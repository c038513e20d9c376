//! PostgreSQL: the backend for several instances behind a load balancer. Writers serialise on
//! one transaction-scoped advisory lock, so every instance appends to the same audit chain and
//! assigns ids without gaps or forks.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Notify;

use super::{Result, WriteTx};
use crate::config::StoreConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The advisory lock key all writers take ("incidentd" in ASCII, folded to 63 bits).
pub const WRITE_LOCK: i64 = 0x0069_6e63_6964_656e;

#[derive(Clone, Debug)]
pub struct PgStore {
    pub(super) pool: PgPool,
    pub(super) ready: Arc<Notify>,
    pub(super) timers: Arc<Notify>,
    pub(super) audit_key: Option<Arc<crate::domain::audit::AuditKey>>,
}

impl PgStore {
    pub async fn connect(url: &str, cfg: &StoreConfig) -> Result<PgStore> {
        // A writer that cannot get a lock within the busy timeout gives up (503) instead of
        // hanging a request: the same promise SQLite's busy_timeout makes.
        let ms = cfg.busy_timeout.0.as_millis().to_string();
        let opts = PgConnectOptions::from_str(url)?
            .application_name("incidentd")
            .options([("lock_timeout", ms.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.busy_timeout.0)
            .connect_with(opts)
            .await?;
        Ok(PgStore {
            pool,
            ready: Arc::new(Notify::new()),
            timers: Arc::new(Notify::new()),
            audit_key: None,
        })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn begin_write(&self) -> Result<WriteTx> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(WriteTx::postgres(
            tx,
            self.ready.clone(),
            self.timers.clone(),
            self.audit_key.clone(),
        ))
    }

    /// A transaction without the write lock, for claiming deliveries: `FOR UPDATE SKIP LOCKED`
    /// lets every instance claim at once.
    pub(super) async fn begin_claim(&self) -> Result<WriteTx> {
        let mut tx = WriteTx::postgres(
            self.pool.begin().await?,
            self.ready.clone(),
            self.timers.clone(),
            self.audit_key.clone(),
        );
        tx.unlocked = true;
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
