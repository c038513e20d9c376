//! SQLite: the embedded default. WAL, one writer connection (so writes queue in the pool
//! instead of spinning on SQLITE_BUSY), a few read-only connections beside it, and a
//! checkpointer that copies the WAL into the database off the write path.
//!
//! SQLite's own auto-checkpoint runs inside the commit that crosses its threshold, so every
//! few group commits one of them would also copy ~1000 pages and fsync the database file
//! while every request in the queue waits. Here the writer never checkpoints: after each
//! commit it wakes the checkpointer, which runs a PASSIVE checkpoint on its own connection
//! (concurrently with the writer, on the other core). Wake-ups coalesce, and an idle daemon
//! does nothing at all. If sustained writing outruns it and the WAL passes
//! [`WAL_RESTART_FRAMES`], it runs a RESTART checkpoint between two of the writer's
//! transactions (holding the writer's mutex), so the WAL starts over from its beginning
//! instead of growing.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::write::WriterConn;
use super::{Result, StoreError, WriteTx};
use crate::config::{SqliteSync, StoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The least time between two checkpoints.
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(1000);

/// WAL frames (pages) beyond which the checkpointer makes the WAL start over (~64 MB).
const WAL_RESTART_FRAMES: i64 = 16384;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The one writer connection. Held directly rather than in a pool: taking a mutex is
    /// immediate, where a pool hands a connection back through a spawned task.
    write: Arc<Mutex<WriterConn>>,
    busy_timeout: std::time::Duration,
    pub(super) read: SqlitePool,
    committed: Arc<Notify>,
    pub(super) ready: Arc<Notify>,
    pub(super) timers: Arc<Notify>,
    checkpointer: Arc<Mutex<Option<Checkpointer>>>,
    pub(super) audit_key: Option<Arc<crate::domain::audit::AuditKey>>,
}

#[derive(Debug)]
struct Checkpointer {
    stop: Arc<Notify>,
    task: JoinHandle<SqliteConnection>,
}

impl SqliteStore {
    pub async fn connect(url: &str, cfg: &StoreConfig) -> Result<SqliteStore> {
        let file = url
            .strip_prefix("sqlite://")
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or_default();
        if let Some(dir) = std::path::Path::new(file).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Failed(format!(
                    "cannot create the database folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let base = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(cfg.busy_timeout.0)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-8000");
        let write_opts = base
            .clone()
            .create_if_missing(true)
            .pragma("cache_size", "-16000")
            .pragma("wal_autocheckpoint", "0")
            .synchronous(match cfg.sqlite_synchronous {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            });
        let write = SqliteConnection::connect_with(&write_opts).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(cfg.busy_timeout.0)
            .connect_with(base.clone().read_only(true))
            .await?;
        let conn = SqliteConnection::connect_with(&base.pragma("cache_size", "-2000")).await?;
        let committed = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let write = Arc::new(Mutex::new(WriterConn {
            conn: write,
            in_tx: false,
        }));
        let task = tokio::spawn(checkpoint_loop(
            conn,
            write.clone(),
            committed.clone(),
            stop.clone(),
        ));
        Ok(SqliteStore {
            write,
            busy_timeout: cfg.busy_timeout.0,
            read,
            committed,
            ready: Arc::new(Notify::new()),
            timers: Arc::new(Notify::new()),
            checkpointer: Arc::new(Mutex::new(Some(Checkpointer { stop, task }))),
            audit_key: None,
        })
    }

    pub async fn migrate(&self) -> Result<()> {
        let mut w = self.write.lock().await;
        MIGRATOR.run(&mut w.conn).await?;
        Ok(())
    }

    pub(super) async fn begin_write(&self) -> Result<WriteTx> {
        let w = tokio::time::timeout(self.busy_timeout, self.write.clone().lock_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "the database stayed busy for {:?}",
                    self.busy_timeout
                ))
            })?;
        Ok(WriteTx::sqlite(
            WriterConn::begin(w).await?,
            self.committed.clone(),
            self.ready.clone(),
            self.timers.clone(),
            self.audit_key.clone(),
        ))
    }

    /// Stop the checkpointer, close the pools, and leave the database without a WAL to replay.
    pub async fn close(&self) {
        self.read.close().await;
        let _ = self.write.lock().await.rollback_if_open().await;
        if let Some(c) = self.checkpointer.lock().await.take() {
            c.stop.notify_one();
            if let Ok(mut conn) = c.task.await {
                if let Err(e) = checkpoint(&mut conn, "PRAGMA wal_checkpoint(TRUNCATE)").await {
                    warn!(error = %e, "final WAL checkpoint failed; SQLite replays the WAL on the next start");
                }
                let _ = conn.close().await;
            }
        }
    }
}

/// Run checkpoints when the writer has committed, until told to stop. Hands back its
/// connection for the final checkpoint.
///
/// The RESTART checkpoint is run holding the writer's mutex: between two of our own
/// transactions, so SQLite never has to wait for the write lock. Left to SQLite's busy handler,
/// it polled for a gap between back-to-back group commits with growing sleeps while blocking
/// every new transaction, and stalled ingest for one to four seconds under sustained load.
/// Holding the mutex, it copies only what the PASSIVE checkpoint just before did not, then
/// waits for readers (short queries) — a stall of milliseconds.
async fn checkpoint_loop(
    mut conn: SqliteConnection,
    writer: Arc<Mutex<WriterConn>>,
    committed: Arc<Notify>,
    stop: Arc<Notify>,
) -> SqliteConnection {
    loop {
        tokio::select! {
            biased;
            _ = stop.notified() => return conn,
            _ = committed.notified() => {}
        }
        match checkpoint(&mut conn, "PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok((log, done)) if log >= WAL_RESTART_FRAMES => {
                debug!(log, done, "WAL is large; restarting it");
                let mut w = writer.lock().await;
                let restarted = match w.rollback_if_open().await {
                    Ok(()) => checkpoint(&mut conn, "PRAGMA wal_checkpoint(RESTART)").await,
                    Err(e) => Err(e),
                };
                drop(w);
                if let Err(e) = restarted {
                    warn!(error = %e, "WAL restart checkpoint failed; will retry after the next commit");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "WAL checkpoint failed; will retry after the next commit"),
        }
        // Let commits accumulate before the next pass: a checkpoint after every small group
        // commit fsyncs the database file as often as the writer fsyncs the WAL, and the
        // writer's fsyncs queue behind those on the same disk.
        tokio::select! {
            biased;
            _ = stop.notified() => return conn,
            _ = tokio::time::sleep(CHECKPOINT_PAUSE) => {}
        }
    }
}

/// Run a `PRAGMA wal_checkpoint(…)`: (frames in the WAL, frames copied into the database).
async fn checkpoint(conn: &mut SqliteConnection, pragma: &'static str) -> Result<(i64, i64)> {
    let (_busy, log, done): (i64, i64, i64) = sqlx::query_as(pragma).fetch_one(&mut *conn).await?;
    Ok((log, done))
}
