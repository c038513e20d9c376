//! Bulk inserts and per-key lookups on the SQLite writer, through SQLite's C API on sqlx's own
//! connection handle.
//!
//! The ingest writer inserts four rows per alert that opens an incident (alert, incident,
//! group key, audit event). Through sqlx each bound value is copied three times (into the
//! argument buffer, into an `Arc`, and by SQLite itself, which sqlx binds with
//! `SQLITE_TRANSIENT`) and freed on another thread, and each statement is a round trip to
//! sqlx's connection thread. A profile of a batch load showed that overhead at about as much
//! CPU as SQLite's own work, all of it on the one serial path. Here the writer locks the
//! connection ([`sqlx::SqliteConnection::lock_handle`], sqlx's documented escape hatch),
//! prepares a one-row `INSERT` once per call and steps it per row, binding text in place
//! (`SQLITE_STATIC`), so SQLite copies nothing it does not store. It stays inside the
//! transaction sqlx began: the statements run on the same connection, between sqlx's own.
//!
//! The writer's dedup and open-incident lookups take the same path ([`Row::each`]): one
//! prepared `SELECT` stepped per key, an index probe each, instead of sending the batch's
//! keys as one JSON text for `json_each` to parse: a quarter less time for those lookups in
//! the batch benchmark when its keys were close together, less when they are spread like
//! hashes and the probes miss the page cache.
//!
//! The steps run on the calling task without yielding (for the largest group commits, up to
//! about ten milliseconds per table), as the same work ran on sqlx's thread while the task
//! waited; the runtime's other worker goes on serving requests. `block_in_place` around them
//! was tried and not kept: the worker threads it spins up raised peak RSS by 20–40 MB under
//! load.
//!
//! This is the crate's only `unsafe` code. Every block is a call into SQLite's C API with a
//! handle that the lock keeps open and to itself for the statement's whole life.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::{PgConnection, SqliteConnection};

use super::{Result, StoreError};

/// Lets [`super::write::insert_chunks`] take SQLite's path from code expanded for both
/// backends.
pub(super) trait AsSqlite {
    fn as_sqlite(&mut self) -> Option<&mut SqliteConnection>;
}

impl AsSqlite for SqliteConnection {
    fn as_sqlite(&mut self) -> Option<&mut SqliteConnection> {
        Some(self)
    }
}

impl AsSqlite for PgConnection {
    fn as_sqlite(&mut self) -> Option<&mut SqliteConnection> {
        None
    }
}

/// A prepared statement on a locked handle; finalized on drop.
pub(super) struct Stmt<'h> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    _handle: PhantomData<&'h mut ()>,
}

impl<'h> Stmt<'h> {
    pub(super) fn prepare(h: &'h mut LockedSqliteHandle<'_>, sql: &str) -> Result<Stmt<'h>> {
        let db = h.as_raw_handle();
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Failed("statement too long for SQLite".into()))?;
        let mut stmt = ptr::null_mut();
        // SAFETY: `db` is an open connection that the lock `h` gives us alone for 'h; `sql`
        // is valid for `len` bytes (SQLite does not need a terminating NUL when told the
        // length); `stmt` is a valid out-pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                0,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt)
            .ok_or_else(|| StoreError::Failed(format!("no statement in {sql:?}")))?;
        Ok(Stmt {
            stmt,
            db,
            _handle: PhantomData,
        })
    }

    /// Start binding the next row. Values borrowed for `'v` must outlive [`Row::exec`].
    pub(super) fn row<'s, 'v>(&'s mut self) -> Row<'s, 'v> {
        Row {
            stmt: self.stmt,
            db: self.db,
            next: 1,
            rc: ffi::SQLITE_OK,
            _stmt: PhantomData,
            _values: PhantomData,
        }
    }
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this handle, which is still locked ('h), and
        // is finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// One row's values being bound, in column order. Text is bound in place: SQLite reads it
/// during [`Row::exec`]'s step, and the row's drop clears every binding before `'v` ends.
pub(super) struct Row<'s, 'v> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    next: c_int,
    rc: c_int,
    _stmt: PhantomData<&'s mut ()>,
    _values: PhantomData<&'v [u8]>,
}

impl<'v> Row<'_, 'v> {
    /// Bind the next parameter. A failure is kept and reported by [`Row::exec`].
    pub(super) fn bind<T: Value<'v>>(mut self, v: T) -> Self {
        if self.rc == ffi::SQLITE_OK {
            self.rc = v.bind(Slot {
                stmt: self.stmt,
                index: self.next,
                _values: PhantomData,
            });
        }
        self.next += 1;
        self
    }

    /// Step a query to its end, handing each result row to `f`; the row's columns are valid
    /// only during that call.
    pub(super) fn each(self, mut f: impl FnMut(Cols<'_>)) -> Result<()> {
        if self.rc != ffi::SQLITE_OK {
            return Err(error(self.db, self.rc));
        }
        loop {
            // SAFETY: as in `exec`.
            match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
                ffi::SQLITE_ROW => f(Cols {
                    stmt: self.stmt,
                    _row: PhantomData,
                }),
                ffi::SQLITE_DONE => return Ok(()),
                rc => return Err(error(self.db, rc)),
            }
        }
    }

    /// Step the statement once (an INSERT: to completion).
    pub(super) fn exec(self) -> Result<()> {
        if self.rc != ffi::SQLITE_OK {
            return Err(error(self.db, self.rc));
        }
        // SAFETY: the statement is live (borrowed from its `Stmt` for 's) and every text it
        // points at is borrowed for 'v, which outlives this call.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        if rc != ffi::SQLITE_DONE && rc != ffi::SQLITE_ROW {
            return Err(error(self.db, rc));
        }
        Ok(())
    }
}

impl Drop for Row<'_, '_> {
    /// Reset the statement and drop its bindings, so that it holds no pointer into `'v`.
    fn drop(&mut self) {
        // SAFETY: the statement is live; reset and clear_bindings are valid in any state.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
    }
}

/// The current result row of a query, for one call of [`Row::each`]'s closure: SQLite's
/// column values are valid until the next step, so everything read is copied out.
pub(super) struct Cols<'r> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _row: PhantomData<&'r ()>,
}

impl Cols<'_> {
    /// Column `i` (from 0) as an integer; `None` for NULL.
    pub(super) fn int(&self, i: c_int) -> Option<i64> {
        // SAFETY: the statement is live and on a row (we are inside `each`, between a step
        // that returned SQLITE_ROW and the next); SQLite range-checks `i` (NULL past the end).
        unsafe {
            (ffi::sqlite3_column_type(self.stmt.as_ptr(), i) != ffi::SQLITE_NULL)
                .then(|| ffi::sqlite3_column_int64(self.stmt.as_ptr(), i))
        }
    }

    /// Column `i` (from 0) as text (copied out); `None` for NULL.
    pub(super) fn text(&self, i: c_int) -> Option<String> {
        // SAFETY: as in `int`. `sqlite3_column_text` then `sqlite3_column_bytes` (the order
        // SQLite documents) give a pointer and a length valid until the next step or reset;
        // the bytes are copied before this returns. A NULL pointer with a non-NULL type is an
        // out-of-memory, read as NULL.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), i) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i);
            if p.is_null() {
                return None;
            }
            let bytes = std::slice::from_raw_parts(p, usize::try_from(n).unwrap_or(0));
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// Where one value goes: a parameter of a live statement, for values living `'v`.
pub(super) struct Slot<'v> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    index: c_int,
    _values: PhantomData<&'v [u8]>,
}

impl<'v> Slot<'v> {
    fn int(self, v: i64) -> c_int {
        // SAFETY: a live statement and a parameter index SQLite range-checks itself.
        unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), self.index, v) }
    }

    fn null(self) -> c_int {
        // SAFETY: as for `int`.
        unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), self.index) }
    }

    fn text(self, v: &'v str) -> c_int {
        // SAFETY: `v` is valid UTF-8 for `v.len()` bytes and lives for 'v, past the step that
        // reads it (see `Row`); SQLITE_STATIC tells SQLite not to copy or free it.
        unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt.as_ptr(),
                self.index,
                v.as_ptr().cast(),
                v.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            )
        }
    }
}

/// A value that binds to a parameter.
pub(super) trait Value<'v> {
    fn bind(self, slot: Slot<'v>) -> c_int;
}

impl<'v> Value<'v> for i64 {
    fn bind(self, slot: Slot<'v>) -> c_int {
        slot.int(self)
    }
}

impl<'v> Value<'v> for bool {
    fn bind(self, slot: Slot<'v>) -> c_int {
        slot.int(i64::from(self))
    }
}

impl<'v> Value<'v> for &'v str {
    fn bind(self, slot: Slot<'v>) -> c_int {
        slot.text(self)
    }
}

impl<'v> Value<'v> for &'v String {
    fn bind(self, slot: Slot<'v>) -> c_int {
        slot.text(self)
    }
}

impl<'v, T: Value<'v>> Value<'v> for Option<T> {
    fn bind(self, slot: Slot<'v>) -> c_int {
        match self {
            Some(v) => v.bind(slot),
            None => slot.null(),
        }
    }
}

impl<'v> Value<'v> for &'v Option<String> {
    fn bind(self, slot: Slot<'v>) -> c_int {
        self.as_deref().bind(slot)
    }
}

/// SQLite's message for a failed call, worded as sqlx words database errors, and transient
/// (503) for the codes a retry can cure.
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: `db` is the live, locked handle the failing call used; the message is copied
    // out before any other call on it.
    let (code, msg) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr()))
            .to_string_lossy()
            .into_owned();
        (code, msg)
    };
    let code = if code == ffi::SQLITE_OK { rc } else { code };
    let text = format!("error returned from database: (code: {code}) {msg}");
    if super::is_transient_code(Some(&code.to_string())) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Failed(text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sqlx::Connection;

    use super::*;

    /// id, name, note, flag, n.
    type In<'a> = (i64, String, Option<&'a str>, bool, Option<i64>);
    type Out = (i64, String, Option<String>, bool, Option<i64>);

    async fn conn() -> SqliteConnection {
        let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT, flag BOOLEAN, n INTEGER)")
            .execute(&mut c)
            .await
            .unwrap();
        c
    }

    fn insert(c: &mut LockedSqliteHandle<'_>, rows: &[In<'_>]) -> Result<()> {
        let mut stmt = Stmt::prepare(
            c,
            "INSERT INTO t (id, name, note, flag, n) VALUES (?, ?, ?, ?, ?)",
        )?;
        for (id, name, note, flag, n) in rows {
            stmt.row()
                .bind(*id)
                .bind(name)
                .bind(*note)
                .bind(*flag)
                .bind(*n)
                .exec()?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn rows_go_in_as_bound_and_text_is_read_in_place() {
        let mut c = conn().await;
        {
            let mut h = c.lock_handle().await.unwrap();
            // Each name is dropped right after its row: the statement must not keep it.
            for i in 0..3 {
                let name = format!("用户数据外泄 {i}\u{0}tail");
                insert(
                    &mut h,
                    &[(i, name, (i == 1).then_some("note"), i == 2, None)],
                )
                .unwrap();
            }
        }
        let rows: Vec<Out> = sqlx::query_as("SELECT id, name, note, flag, n FROM t ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].1, "用户数据外泄 1\u{0}tail");
        assert_eq!(rows[1].2.as_deref(), Some("note"));
        assert_eq!(
            (rows[0].2.as_deref(), rows[2].3, rows[0].3, rows[0].4),
            (None, true, false, None)
        );
    }

    #[tokio::test]
    async fn text_columns_are_copied_out_whole_and_null_is_none() {
        let mut c = conn().await;
        let mut h = c.lock_handle().await.unwrap();
        insert(
            &mut h,
            &[
                (1, "用户数据外泄\u{0}tail".into(), None, false, Some(7)),
                (2, "b".into(), Some(""), true, None),
            ],
        )
        .unwrap();
        let mut stmt = Stmt::prepare(&mut h, "SELECT name, note, n FROM t ORDER BY id").unwrap();
        let mut seen = Vec::new();
        stmt.row()
            .each(|r| seen.push((r.text(0), r.text(1), r.text(2), r.text(9))))
            .unwrap();
        assert_eq!(
            seen,
            [
                (
                    Some("用户数据外泄\u{0}tail".into()),
                    None,
                    Some("7".into()),
                    None
                ),
                (Some("b".into()), Some(String::new()), None, None),
            ]
        );
    }

    #[tokio::test]
    async fn a_constraint_failure_is_reported_with_sqlites_words_and_is_not_transient() {
        let mut c = conn().await;
        let mut h = c.lock_handle().await.unwrap();
        let e = insert(
            &mut h,
            &[
                (1, "a".into(), None, false, Some(1)),
                (2, "a".into(), None, false, None),
            ],
        )
        .unwrap_err();
        match e {
            StoreError::Failed(m) => {
                assert!(m.contains("UNIQUE constraint failed: t.name"), "{m}");
                assert!(m.contains("(code: 2067)"), "{m}");
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
        // The statement was reset: the connection goes on working.
        insert(&mut h, &[(3, "b".into(), None, false, None)]).unwrap();
    }

    #[tokio::test]
    async fn a_query_hands_over_every_row_and_reads_null_as_none() {
        let mut c = conn().await;
        let mut h = c.lock_handle().await.unwrap();
        insert(
            &mut h,
            &[
                (1, "a".into(), None, false, Some(10)),
                (2, "b".into(), None, true, None),
                (3, "c".into(), None, true, Some(-3)),
            ],
        )
        .unwrap();
        let mut stmt =
            Stmt::prepare(&mut h, "SELECT id, n FROM t WHERE flag = ? ORDER BY id").unwrap();
        let mut seen = Vec::new();
        stmt.row()
            .bind(true)
            .each(|r| seen.push((r.int(0), r.int(1), r.int(7))))
            .unwrap();
        assert_eq!(seen, [(Some(2), None, None), (Some(3), Some(-3), None)]);
        // Reused for the next parameter; no row is no call.
        let mut seen = Vec::new();
        stmt.row()
            .bind(false)
            .each(|r| seen.push(r.int(0)))
            .unwrap();
        assert_eq!(seen, [Some(1)]);
        stmt.row()
            .bind(7)
            .each(|_| panic!("no row has flag 7"))
            .unwrap();
        // A failing step is an error, and the statement goes on working after it.
        let e = stmt.row().bind(true).bind(1).each(|_| {}).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let mut n = 0;
        stmt.row().bind(true).each(|_| n += 1).unwrap();
        assert_eq!(n, 2);
        drop(stmt);
        let mut stmt = Stmt::prepare(
            &mut h,
            "SELECT CAST(name AS INTEGER) / 0 FROM t WHERE abs(?) > 0",
        )
        .unwrap();
        let e = stmt
            .row()
            .bind(-9_223_372_036_854_775_807_i64 - 1)
            .each(|_| {})
            .unwrap_err();
        assert!(e.to_string().contains("integer overflow"), "{e}");
    }

    #[tokio::test]
    async fn too_many_values_and_bad_sql_are_refused() {
        let mut c = conn().await;
        let mut h = c.lock_handle().await.unwrap();
        let mut stmt = Stmt::prepare(&mut h, "INSERT INTO t (id, name) VALUES (?, ?)").unwrap();
        let e = stmt
            .row()
            .bind(1)
            .bind("x")
            .bind("extra")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        drop(stmt);
        let e = Stmt::prepare(&mut h, "INSERT INTO nowhere VALUES (?)")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no such table: nowhere"), "{e}");
    }
}
