//! Storage behind one type, one module per backend. The backend is chosen by the URL scheme.
//!
//! SQL that both backends share is written once: the `on_pool!`/`on_tx!` macros expand a body
//! once per backend, so each expansion is type-checked against its own driver (no `Any`
//! driver, no generic bounds). Where the dialects differ, the body picks between two
//! `&'static str` by the `pg` flag the macro provides.

mod announcements;
mod console;
mod correlate;
mod drills;
mod followups;
mod heartbeats;
mod intake;
mod obligations;
mod outbox;
mod outcomes;
mod paging;
pub mod postgres;
mod raw;
mod read;
mod reports;
mod rows;
mod scorecard;
mod seals;
mod silences;
pub mod sqlite;
mod subjects;
mod tasks;
mod timers;
mod verify;
mod write;

use secrecy::ExposeSecret;

pub use announcements::{
    AnnouncementGateRow, AnnouncementRow, AnnouncementVersionRow, PublishedVersionRow,
};
pub use console::{SessionRow, WaitingPage};
pub use correlate::{HeldAlert, IncidentAlertRow};
pub use drills::{DrillRow, NewDrill};
pub use heartbeats::{HeartbeatRow, WasLate};
pub use intake::{IntakeKey, IntakeLookups, storm_key};
pub use obligations::{GradeRow, ObligationFilter, ObligationRow};
pub use outbox::{
    Claimed, DeliveryFilter, DeliveryStatus, DeliveryView, FallbackTarget, InboxNotice,
    NewDelivery, Outcome,
};
pub use outcomes::{DeliveryOutcome, NoticeReach};
pub use paging::{
    DIGEST_KEY_PREFIX, HeldPage, PAGE_DEAD_TIMER, PageDelivery, PageKey, Place, Placement,
    ResolvedHeld, digest_key, place,
};
pub use read::{AlertFilter, IncidentFilter};
pub use reports::{NewReport, NoticeStats, ReportRow, Submission};
pub use seals::{AuditPrepared, Sealed};
pub use silences::{ActiveSilence, NewSilenceRow, SilenceFilter, SilenceRow};
pub use subjects::{
    CampaignContent, CampaignRow, CampaignSubject, ImportRow, NewCampaign, ProgressBump,
    ProgressRow, SealedSubject, SubjectContacts, SubjectView, campaign_of_key, notice_key,
    notice_recipient, parse_notice_recipient,
};
pub use tasks::{ApprovalRow, NewTask, TaskFilter, TaskRow, TeamRow};
pub use timers::{DueTimer, NewTimer, TimerView};
pub use verify::{ExpectHead, VerifyReport};
pub use write::{AlertInsert, NewAlertRow, NewEvent, Table, WriteTx};

use crate::config::{Settings, redact_url};

/// One of the two backends. Cloning is cheap (pools are shared).
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Store failures, sorted by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy, locked, unreachable or shutting down: worth retrying (HTTP 503).
    #[error("the database is unavailable right now: {0}")]
    Unavailable(String),
    /// Anything else (HTTP 500): a bug, a full disk the OS reports as such, a corrupt row.
    #[error("database error: {0}")]
    Failed(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) if is_transient_code(db.code().as_deref()) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Failed(e.to_string()),
        }
    }
}

/// SQLite: BUSY (5, 261, 517), LOCKED (6), IOERR (10), FULL (13).
/// PostgreSQL: connection (08…), serialization/deadlock (40001, 40P01), lock timeout (55P03),
/// statement timeout (57014), resources (53…), shutdown (57P01–57P03).
fn is_transient_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    matches!(
        code,
        "5" | "6" | "10" | "13" | "261" | "517" | "40001" | "40P01" | "55P03" | "57014"
    ) || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Failed(format!("migration failed: {e}"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl Store {
    /// Open the store named by the settings (creating a SQLite file if needed).
    pub async fn connect(settings: &Settings) -> Result<Store> {
        let url = settings.store_url.expose_secret();
        let key = settings.audit_key.clone();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut s = postgres::PgStore::connect(url, &settings.store).await?;
            s.audit_key = key;
            Ok(Store::Postgres(s))
        } else {
            let mut s = sqlite::SqliteStore::connect(url, &settings.store).await?;
            s.audit_key = key;
            Ok(Store::Sqlite(s))
        }
    }

    /// `[audit] key`, if the configuration gives one.
    pub fn audit_key(&self) -> Option<&crate::domain::audit::AuditKey> {
        match self {
            Store::Sqlite(s) => s.audit_key.as_deref(),
            Store::Postgres(s) => s.audit_key.as_deref(),
        }
    }

    /// Bring the schema up to date (idempotent; PostgreSQL takes a lock so instances agree).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(s) => s.migrate().await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Start a write transaction holding the store's write lock (the SQLite writer
    /// connection, or a PostgreSQL advisory lock shared by every instance).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        match self {
            Store::Sqlite(s) => s.begin_write().await,
            Store::Postgres(s) => s.begin_write().await,
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

/// A printable description of where the store is, without secrets.
pub fn describe(settings: &Settings) -> String {
    redact_url(settings.store_url.expose_secret())
}

/// Run `$body` with `$pool` bound to the backend's read pool and `$pg` telling which backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $pg:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(s) => {
                let $pool = &s.read;
                let $pg = false;
                let _ = $pg;
                $body
            }
            $crate::store::Store::Postgres(s) => {
                let $pool = &s.pool;
                let $pg = true;
                let _ = $pg;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_connection_errors_are_transient() {
        for code in [
            "5", "517", "08006", "40001", "55P03", "57014", "57P01", "53300",
        ] {
            assert!(is_transient_code(Some(code)), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01"] {
            assert!(!is_transient_code(Some(code)), "{code}");
        }
    }
}
