//! PostgreSQL functions that may raise, called in runs under one guard.
//!
//! pgrx wraps every `pg_sys` function in its own `sigsetjmp` barrier, which
//! turns an `ereport(ERROR)` into a Rust panic instead of a `longjmp` across
//! Rust frames. That is about 80 instructions a call, and a verify made 15
//! such calls, 10 of them in straight runs with nothing of Rust's in between
//! (open the key's relations, begin the scan, end it).
//!
//! The functions here are declared once more, without the guard, and may be
//! called only inside [`guarded`]: one barrier for the whole run, exactly as
//! pgrx's own guard is one barrier around one call. The same contract holds
//! (pgrx's `pg_guard_ffi_boundary`): the run's closure holds nothing that has
//! a destructor and cannot panic (raw pointers and plain values only), so a
//! `longjmp` out of any call in it skips nothing that needed running. What
//! the calls acquired before the error (an open relation, a pinned buffer)
//! is released by the transaction's abort, as for PostgreSQL's own code.

use pgrx::pg_sys;

#[allow(non_snake_case)]
pub mod raw {
    use pgrx::pg_sys;
    // Same symbols and signatures as pgrx's bindings (PostgreSQL 15).
    extern "C-unwind" {
        pub fn table_open(relationId: pg_sys::Oid, lockmode: pg_sys::LOCKMODE) -> pg_sys::Relation;
        pub fn table_close(relation: pg_sys::Relation, lockmode: pg_sys::LOCKMODE);
        pub fn index_open(relationId: pg_sys::Oid, lockmode: pg_sys::LOCKMODE) -> pg_sys::Relation;
        pub fn index_close(relation: pg_sys::Relation, lockmode: pg_sys::LOCKMODE);
        pub fn index_beginscan(
            heapRelation: pg_sys::Relation,
            indexRelation: pg_sys::Relation,
            snapshot: pg_sys::Snapshot,
            nkeys: core::ffi::c_int,
            norderbys: core::ffi::c_int,
        ) -> pg_sys::IndexScanDesc;
        pub fn index_rescan(
            scan: pg_sys::IndexScanDesc,
            keys: pg_sys::ScanKey,
            nkeys: core::ffi::c_int,
            orderbys: pg_sys::ScanKey,
            norderbys: core::ffi::c_int,
        );
        pub fn index_getnext_slot(
            scan: pg_sys::IndexScanDesc,
            direction: pg_sys::ScanDirection::Type,
            slot: *mut pg_sys::TupleTableSlot,
        ) -> bool;
        pub fn index_endscan(scan: pg_sys::IndexScanDesc);
        pub fn table_slot_create(
            rel: pg_sys::Relation,
            reglist: *mut *mut pg_sys::List,
        ) -> *mut pg_sys::TupleTableSlot;
        pub fn ExecFetchSlotHeapTuple(
            slot: *mut pg_sys::TupleTableSlot,
            materialize: bool,
            shouldFree: *mut bool,
        ) -> pg_sys::HeapTuple;
        pub fn ExecDropSingleTupleTableSlot(slot: *mut pg_sys::TupleTableSlot);
        pub fn PopActiveSnapshot();
    }
}

/// Runs `f`, a straight run of calls to [`raw`] functions, under one guard:
/// an ERROR raised by any of them becomes a Rust panic here, as it would
/// from a `pg_sys` call.
///
/// # Safety
/// Call from the backend's main thread (as every `pg_sys` call). `f` keeps
/// nothing with a destructor on its stack and does not panic; each call in
/// it meets that function's own contract.
pub unsafe fn guarded<T>(f: impl FnOnce() -> T) -> T {
    pg_sys::ffi::pg_guard_ffi_boundary(f)
}
