//! Usage tracking without a write per verify (SPEC §7).
//!
//! Preloaded: verify adds to a table in shared memory (core's UsageTable
//! behind one LWLock) and a background worker flushes it every
//! `api_keys.usage_flush_interval`, one short-lived worker per database
//! (a worker can only connect to one database). Not preloaded: at most one
//! `last_used_at` write per key per `api_keys.last_used_resolution`, and only
//! where a write cannot hurt (read-write, READ COMMITTED, not on a standby).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use api_keys_core::usage::UsageTable;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{pg_shmem_init, pg_sys, PGRXSharedMemory, PgLwLock};

use crate::guc;

const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct SharedUsage {
    table: UsageTable<CAPACITY>,
    /// The flusher's latch (a PGPROC's, so valid in every process), to wake
    /// it early when the table fills up; 0 while it is not running.
    flusher_latch: AtomicUsize,
    /// Set with the latch: waiting for a flush worker also waits on (and
    /// resets) the flusher's latch, so the latch alone could lose a request.
    flush_requested: AtomicBool,
}

// SAFETY: plain old data with no pointers into process-local memory
unsafe impl PGRXSharedMemory for SharedUsage {}

static USAGE: PgLwLock<SharedUsage> = unsafe { PgLwLock::new(c"api_keys_usage") };

thread_local! {
    static PRELOADED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static TOUCH_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
}

/// Called from _PG_init: shared memory and the flusher exist only when the
/// library is in shared_preload_libraries.
pub fn init() {
    // SAFETY: read-only flag set by the postmaster
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    pg_shmem_init!(USAGE = SharedUsage::default());
    PRELOADED.with(|p| p.set(true));
    BackgroundWorkerBuilder::new("api_keys usage flusher")
        .set_type("api_keys usage flusher")
        .set_library("api_keys")
        .set_function("api_keys_usage_flusher_main")
        .enable_shmem_access(None)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

pub fn preloaded() -> bool {
    PRELOADED.with(|p| p.get())
}

/// Records one valid verification of `key_id`. `last_used_at` is the key's
/// stored value, for the fallback. Never raises for tracking's sake: a full
/// table drops the count. Called after the key's scan has ended: the
/// fallback writes the key's row.
pub fn track(key_id: [u8; 16], last_used_at: Option<i64>) {
    // SAFETY: RecoveryInProgress reads shared state that every backend may
    // read, without a lock
    if !guc::TRACK_USAGE.get() || unsafe { pg_sys::RecoveryInProgress() } {
        return; // a standby cannot flush; its verifications are not counted
    }
    let now = crate::unguarded::transaction_start();
    if preloaded() {
        // shared: recorders update slots atomically and never wait for each other
        let shared = USAGE.share();
        // SAFETY: MyDatabaseId is set once at connection and never changes
        let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
        shared.table.record(db, key_id, now);
        if shared.table.needs_flush() {
            wake_flusher(&shared);
        }
        return;
    }
    let resolution = i64::from(guc::LAST_USED_RESOLUTION.get()) * 1_000_000;
    let fresh = last_used_at.is_some_and(|t| t > now - resolution);
    // SAFETY: backend-local settings of the current transaction
    let writable = unsafe {
        !pg_sys::XactReadOnly && pg_sys::XactIsoLevel == pg_sys::XACT_READ_COMMITTED as i32
    };
    if fresh || !writable {
        return;
    }
    // verify runs as its caller (SPEC §2's hot-path exception: neither
    // SECURITY DEFINER nor SET search_path), who holds no privilege on the
    // table: the write, and only it, runs as the table's owner.
    let _owner = AsOwner::switch(crate::lookup::keys_owner());
    Spi::connect_mut(|client| touch(client, key_id, now));
}

/// Runs the code in its scope as another role, as a SECURITY DEFINER
/// function would, and restores the caller's user id and security context
/// when dropped.
///
/// `SECURITY_LOCAL_USERID_CHANGE` makes `SET ROLE` / `SET SESSION
/// AUTHORIZATION` refuse to run meanwhile; `SECURITY_RESTRICTED_OPERATION`
/// also refuses what could outlive the switch (temporary objects, cursors
/// WITH HOLD, the PREPARE / DEALLOCATE / CLOSE / DISCARD / LISTEN utility
/// commands, …): the one `UPDATE` run inside is none of them, nor are
/// SPI_connect / SPI_prepare / SPI_keepplan / SPI_execute_plan / SPI_finish
/// (C calls, not utility commands), which is all `Spi::connect_mut`,
/// `prepare_mut(…).keep()` and `update` call.
///
/// Drop restores on every path out of the scope: return, early return and
/// unwinding (pgrx turns an ERROR raised inside SPI into a Rust panic that
/// unwinds through here before it is re-raised; restoring two backend
/// globals is safe at any point). Should the restore be skipped anyway (an
/// ERROR that longjmps past Rust frames), PostgreSQL's abort restores it:
/// `AbortTransaction` and `AbortSubTransaction` (PG15 xact.c) call
/// `SetUserIdAndSecContext(s->prevUser, s->prevSecContext)` with the values
/// saved when the (sub)transaction started, for SECURITY DEFINER functions'
/// sake; a caller's EXCEPTION block or savepoint is such a subtransaction.
pub(crate) struct AsOwner {
    user: pg_sys::Oid,
    sec_context: i32,
}

impl AsOwner {
    pub(crate) fn switch(owner: pg_sys::Oid) -> AsOwner {
        let mut user = pg_sys::InvalidOid;
        let mut sec_context = 0;
        // SAFETY: reads and sets this backend's current user id and
        // security context, as fmgr_security_definer does; Drop restores them
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut sec_context);
            pg_sys::SetUserIdAndSecContext(
                owner,
                sec_context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
        AsOwner { user, sec_context }
    }
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // SAFETY: puts back what switch read
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.sec_context) };
    }
}

/// The fallback's write: last_used_at = now(), unless another transaction
/// holds the row or it is already fresh. Runs as the table's owner (a
/// superuser) under the caller's search_path (verify sets none), so every
/// name is qualified (relations too: pg_temp is searched first for them)
/// and every operator is written as `OPERATOR(pg_catalog.…)` between
/// arguments of its exact types: nothing resolves through search_path, also
/// when the plan is re-analysed because the search_path changed. The
/// parameters' types are given by OID, and the cut-off is computed here
/// rather than with interval arithmetic in SQL. `api_keys.keys` has no
/// trigger of its own; its CHECK constraints are stored as resolved
/// expressions, and its foreign keys are not checked by an UPDATE that
/// leaves them unchanged (PostgreSQL's RI queries are qualified anyway).
fn touch(client: &mut SpiClient<'_>, key_id: [u8; 16], now: i64) {
    TOUCH_PLAN.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            // SKIP LOCKED: never wait behind a revoke or another verifier
            let stmt = client
                .prepare_mut(
                    "UPDATE api_keys.keys SET last_used_at = pg_catalog.now() \
                      WHERE id OPERATOR(pg_catalog.=) (SELECT k.id FROM api_keys.keys k \
                              WHERE k.id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED) \
                        AND (last_used_at IS NULL OR last_used_at OPERATOR(pg_catalog.<) $2)",
                    &[pg_sys::UUIDOID.into(), pg_sys::TIMESTAMPTZOID.into()],
                )
                .unwrap_or_else(|e| error!("api_keys: preparing last_used_at update: {e}"));
            *slot = Some(stmt.keep());
        }
        let plan = slot.as_ref().expect("prepared above");
        let id = pgrx::Uuid::from_bytes(key_id);
        let resolution = i64::from(guc::LAST_USED_RESOLUTION.get()) * 1_000_000;
        let Ok(cutoff) = TimestampWithTimeZone::try_from(now - resolution) else {
            return;
        };
        let args = [DatumWithOid::from(id), DatumWithOid::from(cutoff)];
        if let Err(e) = client.update(plan, None, &args) {
            warning!("api_keys: could not record last_used_at: {e}");
        }
    });
}

/// Usage tracking counters: whether preloaded, the table's capacity, how
/// many keys have pending counts, and verifications recorded, dropped
/// (table full) and flushed since the server started.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn api_key_usage_stats() -> TableIterator<
    'static,
    (
        name!(preloaded, bool),
        name!(capacity, i32),
        name!(pending_keys, i32),
        name!(recorded, i64),
        name!(dropped, i64),
        name!(flushed, i64),
    ),
> {
    let row = if preloaded() {
        let s = USAGE.share();
        let flushed = s.table.flushed();
        (
            true,
            CAPACITY as i32,
            s.table.len() as i32,
            (flushed + s.table.pending_uses()) as i64,
            s.table.dropped() as i64,
            flushed as i64,
        )
    } else {
        (false, 0, 0, 0, 0, 0)
    };
    TableIterator::once(row)
}

/// Wakes the flusher now instead of at the next interval; false when usage
/// is not tracked in shared memory (library not preloaded).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn api_key_usage_flush() -> bool {
    if !preloaded() {
        return false;
    }
    wake_flusher(&USAGE.share())
}

fn wake_flusher(shared: &SharedUsage) -> bool {
    shared.flush_requested.store(true, Ordering::Release);
    let latch = shared.flusher_latch.load(Ordering::Acquire);
    if latch != 0 {
        // SAFETY: the latch is the flusher's PGPROC latch, in shared memory
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
    }
    latch != 0
}

/// The flusher: wakes every interval (or when the table fills), and for each
/// database with pending counts starts a worker connected to it.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn api_keys_usage_flusher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Connected to no database (shared catalogs only): a worker without a
    // connection ignores SIGUSR1, and would never hear that a flush worker
    // it waits for has exited. This also shows it in pg_stat_activity.
    BackgroundWorker::connect_worker_to_spi(None, None);
    // SAFETY: MyLatch is this process's PGPROC latch
    USAGE
        .share()
        .flusher_latch
        .store(unsafe { pg_sys::MyLatch } as usize, Ordering::Release);
    loop {
        let interval = Duration::from_millis(guc::USAGE_FLUSH_INTERVAL.get().max(100) as u64);
        // a request made during the last flush is served at once
        if !USAGE.share().flush_requested.swap(false, Ordering::AcqRel) {
            if !BackgroundWorker::wait_latch(Some(interval)) {
                break;
            }
            USAGE
                .share()
                .flush_requested
                .store(false, Ordering::Release);
        }
        if BackgroundWorker::sigterm_received() {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: called from the worker's main loop, as Postgres' own workers do
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let databases = USAGE.share().table.databases();
        for db in databases {
            flush_database(db);
        }
    }
    USAGE.share().flusher_latch.store(0, Ordering::Release);
}

fn flush_database(db: u32) {
    // Checked before and after the flush worker: a DROP DATABASE can slip in
    // between the check and the worker's connection (the worker then fails
    // once). No lock is held meanwhile: the worker's own connection lock
    // would queue behind a waiting DROP DATABASE, which would wait for us.
    if database_exists(db) {
        run_flush_worker(db);
        if database_exists(db) {
            return;
        }
    }
    // Its counts can never be written: drop them once, with one line.
    let uses = USAGE.exclusive().table.discard(db);
    log!("api_keys: dropped {uses} pending uses of database {db}, which no longer exists");
}

fn run_flush_worker(db: u32) {
    let started = BackgroundWorkerBuilder::new("api_keys usage flush")
        .set_type("api_keys usage flush")
        .set_library("api_keys")
        .set_function("api_keys_usage_flush_db")
        .set_argument(Some(pg_sys::Datum::from(db)))
        .enable_spi_access()
        // SAFETY: read-only global
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic();
    match started {
        Ok(worker) => {
            if let Err(e) = worker.wait_for_shutdown() {
                log!("api_keys: usage flush worker for database {db} ended: {e:?}");
            }
        }
        Err(_) => log!("api_keys: no background worker slot to flush usage of database {db}; retrying next interval"),
    }
}

/// Whether pg_database (a shared catalog, readable without a database
/// connection) still has `db`.
fn database_exists(db: u32) -> bool {
    BackgroundWorker::transaction(|| {
        // SAFETY: a syscache probe inside a transaction, as the autovacuum
        // launcher does from a process connected to no database
        unsafe {
            pg_sys::SearchSysCacheExists(
                pg_sys::SysCacheIdentifier::DATABASEOID as i32,
                pg_sys::Datum::from(db),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
            )
        }
    })
}

/// The flush's statements. The worker runs as the bootstrap superuser in a
/// database whose owner is not trusted, so no name or operator may resolve
/// through search_path (set to pg_catalog only, and everything qualified
/// besides): an operator such as `*(bigint, interval)` in `public` would
/// otherwise run as superuser. Timestamps arrive as timestamptz, so there
/// is no arithmetic in SQL at all.
/// Also undoes timeouts a database owner may set for its database and so
/// for this session (ALTER DATABASE … SET), which would fail every flush.
const FLUSH_SETUP: [&str; 3] = [
    "SET LOCAL search_path = pg_catalog, pg_temp",
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL lock_timeout = 0",
];
const FLUSH_INSTALLED: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e \
      WHERE e.extname OPERATOR(pg_catalog.=) 'api_keys'::pg_catalog.name)";
const FLUSH_UPDATE: &str = "WITH u AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]), \
              pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.timestamptz[])) \
              AS u(id, n, t)), \
          locked AS (SELECT k.id FROM api_keys.keys k \
              WHERE k.id OPERATOR(pg_catalog.=) ANY (SELECT u.id FROM u) FOR UPDATE OF k SKIP LOCKED) \
     UPDATE api_keys.keys k \
        SET requests_count = k.requests_count OPERATOR(pg_catalog.+) u.n, \
            last_used_at = GREATEST(k.last_used_at, u.t) \
       FROM u, locked \
      WHERE k.id OPERATOR(pg_catalog.=) u.id AND locked.id OPERATOR(pg_catalog.=) u.id \
     RETURNING k.id";
const FLUSH_EXISTING: &str = "SELECT k.id FROM api_keys.keys k \
      WHERE k.id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.uuid[])";

/// One database's flush: takes its pending counts out of shared memory and
/// adds them to the keys in one UPDATE. A crash here loses at most these
/// counts (one interval), never keys.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn api_keys_usage_flush_db(arg: pg_sys::Datum) {
    let db = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    // BYPASS_ALLOWCONN: a database owner cannot pin its counts in shared
    // memory (and so take slots from other databases) by refusing connections.
    // SAFETY: called once, from a registered background worker, before any
    // database access, as BackgroundWorker::connect_worker_to_spi_by_oid does
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(
            db,
            pg_sys::InvalidOid,
            pg_sys::BGWORKER_BYPASS_ALLOWCONN,
        )
    };
    BackgroundWorker::transaction(|| {
        for setup in FLUSH_SETUP {
            Spi::run(setup).unwrap_or_else(|e| error!("api_keys: flushing usage: {e}"));
        }
        let installed = Spi::get_one::<bool>(FLUSH_INSTALLED)
            .ok()
            .flatten()
            .unwrap_or(false);
        let drained = USAGE.exclusive().table.drain(db.to_u32());
        if !installed || drained.is_empty() {
            return;
        }
        let ids: Vec<pgrx::Uuid> = drained
            .iter()
            .map(|u| pgrx::Uuid::from_bytes(u.key))
            .collect();
        let counts: Vec<i64> = drained.iter().map(|u| u.count as i64).collect();
        let times: Vec<Option<TimestampWithTimeZone>> = drained
            .iter()
            .map(|u| TimestampWithTimeZone::try_from(u.last_used).ok())
            .collect();
        // SKIP LOCKED: a transaction holding a key's row (an open update or
        // revoke) must not stall flushing; its counts go back for next time.
        let written: HashSet<[u8; 16]> = Spi::connect_mut(|client| {
            client
                .update(
                    FLUSH_UPDATE,
                    None,
                    &[ids.clone().into(), counts.into(), times.into()],
                )
                .unwrap_or_else(|e| error!("api_keys: flushing usage: {e}"))
                .filter_map(|row| row.get::<pgrx::Uuid>(1).ok().flatten())
                .map(|id| *id.as_bytes())
                .collect()
        });
        let skipped: Vec<pgrx::Uuid> = ids
            .into_iter()
            .filter(|id| !written.contains(id.as_bytes()))
            .collect();
        if skipped.is_empty() {
            return;
        }
        // keys that still exist were locked: put their counts back
        let existing: HashSet<[u8; 16]> = Spi::connect(|client| {
            client
                .select(FLUSH_EXISTING, None, &[skipped.into()])
                .map(|t| {
                    t.filter_map(|row| row.get::<pgrx::Uuid>(1).ok().flatten())
                        .map(|id| *id.as_bytes())
                        .collect()
                })
                .unwrap_or_default()
        });
        let shared = USAGE.share();
        for u in drained.iter().filter(|u| existing.contains(&u.key)) {
            shared.table.restore(*u);
        }
    });
}
