//! SQLite: the embedded default. WAL, one writer connection (so writes queue in the pool
//! instead of spinning on SQLITE_BUSY), a few read-only connections beside it.

use std::str::FromStr;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Result, StoreError, WriteTx};
use crate::config::{SqliteSync, StoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) write: SqlitePool,
    pub(super) read: SqlitePool,
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
            .pragma("cache_size", "-32000");
        let write_opts =
            base.clone()
                .create_if_missing(true)
                .synchronous(match cfg.sqlite_synchronous {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                });
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(cfg.busy_timeout.0)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(write_opts)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(cfg.busy_timeout.0)
            .connect_with(base.read_only(true))
            .await?;
        Ok(SqliteStore { write, read })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    pub(super) async fn begin_write(&self) -> Result<WriteTx> {
        let tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::sqlite(tx))
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}
