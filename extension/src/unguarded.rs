//! PostgreSQL functions the verify hot path calls without pgrx's FFI guard.
//!
//! pgrx wraps every `pg_sys` function in a `sigsetjmp` barrier (plus a
//! thread check) so that an `ereport(ERROR)` inside it becomes a Rust panic
//! instead of a `longjmp` across Rust frames. That costs about 90
//! instructions a call (callgrind: tests/bench/instructions.sh), and verify
//! made a dozen such calls to functions that cannot raise at all. These are
//! declared here once more, unguarded, and only functions that have no
//! error path — plain reads of backend state, or pure computations on
//! in-memory data — may be: each says why it cannot raise. Anything that
//! can (catalog or buffer access, allocation that may fail, detoasting)
//! stays on `pg_sys`'s guarded path.

use pgrx::pg_sys;

#[allow(non_snake_case)]
mod ffi {
    use pgrx::pg_sys;
    // Same symbols and signatures as pgrx's bindings (PostgreSQL 15).
    extern "C-unwind" {
        pub fn GetDatabaseEncoding() -> core::ffi::c_int;
        pub fn ActiveSnapshotSet() -> bool;
        pub fn GetActiveSnapshot() -> pg_sys::Snapshot;
        pub fn GetCurrentCommandId(used: bool) -> pg_sys::CommandId;
        pub fn GetCurrentTransactionStartTimestamp() -> pg_sys::TimestampTz;
        pub fn heap_deform_tuple(
            tuple: pg_sys::HeapTuple,
            tuple_desc: pg_sys::TupleDesc,
            values: *mut pg_sys::Datum,
            isnull: *mut bool,
        );
    }
}

/// `GetDatabaseEncoding()`: returns a global set at connection start.
pub fn database_encoding() -> core::ffi::c_int {
    // SAFETY: a read of a process-global; no error path (mbutils.c).
    unsafe { ffi::GetDatabaseEncoding() }
}

/// `GetCurrentTransactionStartTimestamp()`: returns a field of the
/// transaction state (now()); no error path (xact.c).
pub fn transaction_start() -> pg_sys::TimestampTz {
    // SAFETY: a read of backend-local state, meaningful inside a transaction,
    // where every SQL function runs.
    unsafe { ffi::GetCurrentTransactionStartTimestamp() }
}

/// The active snapshot, if one is set and was taken at the current command:
/// `ActiveSnapshotSet`, `GetActiveSnapshot` and `GetCurrentCommandId(false)`
/// only read backend state (snapmgr.c, xact.c; with `used = false` the
/// command id is not marked used, the only path that can raise).
///
/// # Safety
/// Inside a transaction.
pub unsafe fn active_snapshot_at_current_command() -> Option<pg_sys::Snapshot> {
    if !ffi::ActiveSnapshotSet() {
        return None;
    }
    let active = ffi::GetActiveSnapshot();
    ((*active).curcid == ffi::GetCurrentCommandId(false)).then_some(active)
}

/// `heap_deform_tuple`: splits a tuple into datums, pointing into it; a
/// pure computation on memory the caller holds, no error path
/// (heaptuple.c).
///
/// # Safety
/// `tuple` is a valid heap tuple of `desc`; `values` and `isnull` have room
/// for `desc`'s natts entries.
pub unsafe fn deform(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
) {
    ffi::heap_deform_tuple(tuple, desc, values, isnull)
}
