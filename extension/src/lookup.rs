//! Direct index lookups for the verify hot path.
//!
//! Verify reads one key by its token hash and, for a typed key, one key type
//! by name. Going through SPI cost about half of a verification in executor
//! start-up (measured: BENCHMARKS.md), so these are plain index scans, as
//! Postgres does for its own catalogs, under the snapshot a volatile
//! function's query would get.
//! Relations are found by name in the `api_keys` namespace (never through
//! search_path), and these scans check no privilege, as catalog scans do:
//! verify runs as its caller (SPEC §2's hot-path exception), who may hold
//! none on the tables.
//! Relation OIDs and column positions are cached per backend and dropped on
//! any relcache invalidation of those relations (DROP/ALTER), so a
//! re-created extension is picked up.
//!
//! A key's datums are read in place: they may point into the heap buffer
//! that its scan pins. [`KeyScan`] holds the scan open, and the buffer
//! pinned, for as long as its [`KeyRow`] is borrowed, and ends it when
//! dropped; nothing may write to `api_keys.keys` before then (verify records
//! usage only after the scan has ended).

use std::cell::Cell;
use std::mem::MaybeUninit;

use pgrx::prelude::*;
use pgrx::{pg_sys, FromDatum, IntoDatum};

use api_keys_core::small_list::SmallList;

use crate::text::text_elements;

/// Columns of `api_keys.keys` that verify reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Id,
    OwnerType,
    OwnerId,
    Name,
    KeyType,
    Environment,
    Scopes,
    Metadata,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
    TokenHash,
}

impl Col {
    /// Every column, in declaration order (checked below): `c as usize` is
    /// `c`'s index here and in the layout's `key_at`.
    pub const ALL: [Col; Col::COUNT] = [
        Col::Id,
        Col::OwnerType,
        Col::OwnerId,
        Col::Name,
        Col::KeyType,
        Col::Environment,
        Col::Scopes,
        Col::Metadata,
        Col::ExpiresAt,
        Col::RevokedAt,
        Col::LastUsedAt,
        Col::TokenHash,
    ];

    /// One past the last variant's discriminant (`TokenHash` stays last).
    const COUNT: usize = Col::TokenHash as usize + 1;

    /// The column's name in `api_keys.keys`.
    pub fn column_name(self) -> &'static str {
        match self {
            Col::Id => "id",
            Col::OwnerType => "owner_type",
            Col::OwnerId => "owner_id",
            Col::Name => "name",
            Col::KeyType => "key_type",
            Col::Environment => "environment",
            Col::Scopes => "scopes",
            Col::Metadata => "metadata",
            Col::ExpiresAt => "expires_at",
            Col::RevokedAt => "revoked_at",
            Col::LastUsedAt => "last_used_at",
            Col::TokenHash => "token_hash",
        }
    }

    /// The column's type, as sql/schema.sql declares it. [`layout`] refuses
    /// a table that differs: the readers of [`KeyRow`] interpret a datum by
    /// this type, and verify's row is formed from these datums.
    pub fn type_oid(self) -> pg_sys::Oid {
        match self {
            Col::Id => pg_sys::UUIDOID,
            Col::OwnerType | Col::OwnerId | Col::Name | Col::KeyType | Col::Environment => {
                pg_sys::TEXTOID
            }
            Col::Scopes => pg_sys::TEXTARRAYOID,
            Col::Metadata => pg_sys::JSONBOID,
            Col::ExpiresAt | Col::RevokedAt | Col::LastUsedAt => pg_sys::TIMESTAMPTZOID,
            Col::TokenHash => pg_sys::BYTEAOID,
        }
    }
}

const _: () = {
    let mut i = 0;
    while i < Col::COUNT {
        assert!(
            Col::ALL[i] as usize == i,
            "Col::ALL must list every column in declaration order"
        );
        i += 1;
    }
};

#[derive(Clone, Copy)]
struct Layout {
    keys: pg_sys::Oid,
    /// The owner of `api_keys.keys` (the extension's owner): the role the
    /// non-preloaded `last_used_at` write runs as (usage.rs). ALTER TABLE …
    /// OWNER TO invalidates the relation, and so this cache.
    keys_owner: pg_sys::Oid,
    keys_by_hash: pg_sys::Oid,
    /// 0-based positions of `Col::ALL` in the keys tuple.
    key_at: [usize; Col::COUNT],
    /// The boolean `mfa` column (0.2.0); `None` while the database still has
    /// 0.1.0's table (library updated, ALTER EXTENSION … UPDATE not yet run):
    /// no key is an MFA key then.
    mfa_at: Option<usize>,
    types: pg_sys::Oid,
    types_by_name: pg_sys::Oid,
    type_name_at: usize,
    type_name_collation: pg_sys::Oid,
    type_permissions_at: usize,
}

thread_local! {
    static LAYOUT: Cell<Option<Layout>> = const { Cell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Relcache invalidation callback: forgets the layout when one of its
/// relations (or, for `InvalidOid`, any relation) changes.
///
/// # Safety
/// Called by Postgres' invalidation machinery, with the `Datum` given at
/// registration; it touches only this backend's cache.
#[pg_guard]
unsafe extern "C-unwind" fn forget_layout(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    LAYOUT.with(|l| {
        if let Some(layout) = l.get() {
            if relid == pg_sys::InvalidOid
                || [
                    layout.keys,
                    layout.keys_by_hash,
                    layout.types,
                    layout.types_by_name,
                ]
                .contains(&relid)
            {
                l.set(None);
            }
        }
    });
}

/// The OID of relation `name` in `namespace`; raises if it is missing.
///
/// # Safety
/// Inside a transaction: it is a syscache lookup.
unsafe fn relid(name: &std::ffi::CStr, namespace: pg_sys::Oid) -> pg_sys::Oid {
    let oid = pg_sys::get_relname_relid(name.as_ptr(), namespace);
    if oid == pg_sys::InvalidOid {
        error!(
            "api_keys: relation api_keys.{} is missing",
            name.to_string_lossy()
        );
    }
    oid
}

/// Positions of `columns` (name and type) among the live attributes of
/// `rel`'s tuple; raises if one is missing or of another type.
///
/// # Safety
/// `rel` is open: its tuple descriptor is valid while it is.
unsafe fn positions<const N: usize>(
    rel: pg_sys::Relation,
    columns: [(&str, pg_sys::Oid); N],
) -> [usize; N] {
    let desc = (*rel).rd_att;
    let attrs = (*desc).attrs.as_slice((*desc).natts as usize);
    std::array::from_fn(|i| {
        let (name, type_oid) = columns[i];
        let at = attrs
            .iter()
            .position(|a| !a.attisdropped && pgrx::name_data_to_str(&a.attname) == name)
            .unwrap_or_else(|| error!("api_keys: column {name} is missing"));
        if attrs[at].atttypid != type_oid {
            error!("api_keys: column {name} does not have the type sql/schema.sql gives it");
        }
        at
    })
}

/// The relations verify scans and where its columns are, read once per
/// backend (until an invalidation).
///
/// # Safety
/// Inside a transaction: it reads the catalogs and opens relations.
unsafe fn layout() -> Layout {
    if let Some(l) = LAYOUT.with(Cell::get) {
        return l;
    }
    if !CALLBACK_REGISTERED.with(Cell::get) {
        pg_sys::CacheRegisterRelcacheCallback(Some(forget_layout), pg_sys::Datum::from(0));
        CALLBACK_REGISTERED.with(|c| c.set(true));
    }
    let nsp = pg_sys::get_namespace_oid(c"api_keys".as_ptr(), false);
    let keys = relid(c"keys", nsp);
    let types = relid(c"key_types", nsp);
    let keys_rel = pg_sys::table_open(keys, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let key_at = positions(keys_rel, Col::ALL.map(|c| (c.column_name(), c.type_oid())));
    let mfa_at = {
        let desc = (*keys_rel).rd_att;
        (*desc)
            .attrs
            .as_slice((*desc).natts as usize)
            .iter()
            .position(|a| {
                !a.attisdropped
                    && a.atttypid == pg_sys::BOOLOID
                    && pgrx::name_data_to_str(&a.attname) == "mfa"
            })
    };
    let keys_owner = (*(*keys_rel).rd_rel).relowner;
    pg_sys::table_close(keys_rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    let types_rel = pg_sys::table_open(types, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let [type_name_at, type_permissions_at] = positions(
        types_rel,
        [
            ("name", pg_sys::TEXTOID),
            ("permissions", pg_sys::TEXTARRAYOID),
        ],
    );
    let desc = (*types_rel).rd_att;
    let type_name_collation =
        (*desc).attrs.as_slice((*desc).natts as usize)[type_name_at].attcollation;
    pg_sys::table_close(types_rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    let l = Layout {
        keys,
        keys_owner,
        keys_by_hash: relid(c"keys_token_hash_key", nsp),
        key_at,
        mfa_at,
        types,
        types_by_name: relid(c"key_types_pkey", nsp),
        type_name_at,
        type_name_collation,
        type_permissions_at,
    };
    LAYOUT.with(|c| c.set(Some(l)));
    l
}

/// The owner of `api_keys.keys`, from the cached layout.
pub fn keys_owner() -> pg_sys::Oid {
    // SAFETY: called from verify, a SQL function: inside a transaction
    unsafe { layout() }.keys_owner
}

const STACK_COLUMNS: usize = 32;

/// The snapshot to read under, and whether it was pushed (pop it after).
///
/// What a VOLATILE function's query would see: the statement's snapshot,
/// unless this statement has already run commands of its own (a key issued
/// or revoked earlier in the same statement) — then a fresh one, which under
/// READ COMMITTED sees them and under REPEATABLE READ is the transaction's
/// snapshot. Taking a fresh snapshot on every call cost 2-3% of a verify.
///
/// # Safety
/// Inside a transaction. When it answers `true`, the caller pops the
/// snapshot with `PopActiveSnapshot` once done, before any snapshot pushed
/// earlier is popped.
unsafe fn snapshot() -> (pg_sys::Snapshot, bool) {
    if let Some(active) = crate::unguarded::active_snapshot_at_current_command() {
        return (active, false);
    }
    pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    (pg_sys::GetActiveSnapshot(), true)
}

thread_local! {
    /// Equality functions the scans compare with, looked up once per backend.
    static EQUALITY: std::cell::RefCell<Vec<(u32, &'static pg_sys::FmgrInfo)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The `FmgrInfo` of built-in function `procedure`, made once per backend in
/// `TopMemoryContext` and kept for the backend's life.
///
/// # Safety
/// `procedure` is the OID of a built-in function; call inside a transaction.
unsafe fn equality_function(procedure: u32) -> *mut pg_sys::FmgrInfo {
    if let Some(found) = EQUALITY.with(|e| {
        e.borrow()
            .iter()
            .find(|(p, _)| *p == procedure)
            .map(|(_, f)| *f)
    }) {
        return (found as *const pg_sys::FmgrInfo).cast_mut();
    }
    let info = pg_sys::MemoryContextAllocZero(
        pg_sys::TopMemoryContext,
        std::mem::size_of::<pg_sys::FmgrInfo>(),
    )
    .cast::<pg_sys::FmgrInfo>();
    pg_sys::fmgr_info_cxt(pg_sys::Oid::from(procedure), info, pg_sys::TopMemoryContext);
    // SAFETY: allocated in TopMemoryContext, never freed: lives as long as
    // the backend, and is only read (copied into scan keys) from now on.
    let info: &'static pg_sys::FmgrInfo = &*info;
    EQUALITY.with(|e| e.borrow_mut().push((procedure, info)));
    (info as *const pg_sys::FmgrInfo).cast_mut()
}

/// A deformed tuple: in place for our tables, on the heap only if columns
/// were added.
struct Datums {
    natts: usize,
    inline_values: [pg_sys::Datum; STACK_COLUMNS],
    inline_nulls: [bool; STACK_COLUMNS],
    /// Used instead when natts > STACK_COLUMNS.
    heap_values: Vec<pg_sys::Datum>,
    heap_nulls: Vec<bool>,
}

impl Datums {
    fn new(natts: usize) -> Datums {
        let on_heap = if natts > STACK_COLUMNS { natts } else { 0 };
        Datums {
            natts,
            inline_values: [pg_sys::Datum::from(0); STACK_COLUMNS],
            inline_nulls: [true; STACK_COLUMNS],
            heap_values: vec![pg_sys::Datum::from(0); on_heap],
            heap_nulls: vec![true; on_heap],
        }
    }

    fn slices(&self) -> (&[pg_sys::Datum], &[bool]) {
        if self.natts <= STACK_COLUMNS {
            (
                &self.inline_values[..self.natts],
                &self.inline_nulls[..self.natts],
            )
        } else {
            (&self.heap_values, &self.heap_nulls)
        }
    }

    fn slices_mut(&mut self) -> (&mut [pg_sys::Datum], &mut [bool]) {
        if self.natts <= STACK_COLUMNS {
            (
                &mut self.inline_values[..self.natts],
                &mut self.inline_nulls[..self.natts],
            )
        } else {
            (&mut self.heap_values, &mut self.heap_nulls)
        }
    }
}

/// An open index scan of one relation for rows whose indexed column equals
/// a value; dropping it ends the scan, pops the snapshot it pushed and
/// closes both relations, keeping their locks to the end of the
/// transaction, as the executor does.
///
/// It drives the index AM directly (what `systable_beginscan` wraps), the
/// calls of each step in one run under one guard ([`crate::grouped`]): the
/// run that begins a scan was three guarded calls, and `systable_endscan`
/// released the index's lock, which cost ~1,000 instructions a verify
/// (UnlockRelationId) while the executor keeps it.
struct IndexScan {
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    scan: pg_sys::IndexScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    pushed_snapshot: bool,
}

impl IndexScan {
    /// Begins scanning `index` of `heap` for rows whose column `heap_attno`
    /// (1-based) equals `value`, compared with `procedure` under `collation`.
    /// Raises unless the index's first column is that column.
    ///
    /// # Safety
    /// Inside a transaction; `index` is a btree index of `heap`;
    /// `procedure` is the equality function of that column's type; `value`
    /// is a datum of that type that stays valid until the scan ends. Scans
    /// end in the reverse order of their beginning (drop order does that
    /// for scans in nested scopes).
    unsafe fn begin(
        heap: pg_sys::Oid,
        index: pg_sys::Oid,
        heap_attno: usize,
        procedure: u32,
        collation: pg_sys::Oid,
        value: pg_sys::Datum,
    ) -> IndexScan {
        // What ScanKeyEntryInitializeWithInfo writes, with the equality
        // function looked up once per backend (fmgr_info_copy of a built-in
        // function is a plain copy), for the index's first column.
        let mut key: pg_sys::ScanKeyData = MaybeUninit::zeroed().assume_init();
        key.sk_flags = 0;
        key.sk_attno = 1;
        key.sk_strategy = pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber;
        key.sk_subtype = pg_sys::InvalidOid;
        key.sk_collation = collation;
        key.sk_argument = value;
        key.sk_func = *equality_function(procedure);
        key.sk_func.fn_mcxt = pg_sys::CurrentMemoryContext;
        key.sk_func.fn_extra = std::ptr::null_mut();
        let (snapshot, pushed_snapshot) = snapshot();
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let key_ptr: *mut pg_sys::ScanKeyData = &mut key;
        // SAFETY: the run holds raw pointers and plain values only. The
        // scan copies the key (not the datum it points to) in index_rescan,
        // so `key` may go after it; the snapshot stays active until drop.
        let (heap, index, scan, slot) = crate::grouped::guarded(|| {
            use crate::grouped::raw;
            let heap = raw::table_open(heap, lock);
            let index = raw::index_open(index, lock);
            let scan = raw::index_beginscan(heap, index, snapshot, 1, 0);
            raw::index_rescan(scan, key_ptr, 1, std::ptr::null_mut(), 0);
            let slot = raw::table_slot_create(heap, std::ptr::null_mut());
            (heap, index, scan, slot)
        });
        let this = IndexScan {
            heap,
            index,
            scan,
            slot,
            pushed_snapshot,
        };
        // systable_beginscan's check, which maps the heap column to the
        // index's: here the key is on the index's first column.
        let form = (*index).rd_index;
        if (*form).indnatts < 1 || (*form).indkey.values.as_slice(1)[0] as usize != heap_attno {
            error!(
                "api_keys: index {} is not on the column verify looks up",
                (*index).rd_id
            );
        }
        this
    }

    /// The first visible row, deformed. Its datums may point into the heap
    /// buffer the scan pins: they are valid only until the scan ends.
    fn first(&mut self) -> Option<Datums> {
        // SAFETY: the scan, its slot and the relations are open until drop.
        // The tuple returned lives in the scan's slot, its buffer pinned,
        // until the next getnext or the end of the scan; it is deformed at
        // once, with the descriptor of the relation it belongs to, into
        // arrays of natts.
        unsafe {
            let (scan, slot) = (self.scan, self.slot);
            let tuple = crate::grouped::guarded(|| {
                use crate::grouped::raw;
                if raw::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot)
                {
                    raw::ExecFetchSlotHeapTuple(slot, false, std::ptr::null_mut())
                } else {
                    std::ptr::null_mut()
                }
            });
            if tuple.is_null() {
                return None;
            }
            let desc = (*self.heap).rd_att;
            let mut datums = Datums::new((*desc).natts as usize);
            let (values, nulls) = datums.slices_mut();
            crate::unguarded::deform(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            Some(datums)
        }
    }
}

impl Drop for IndexScan {
    fn drop(&mut self) {
        // Unwinding from an error (or a bug): the (sub)transaction's abort
        // releases the scan, its buffer pins, the relations and the
        // snapshot, as it does for Postgres' own scans; ending them here
        // could touch state the error left half-done.
        if std::thread::panicking() {
            return;
        }
        let IndexScan {
            heap,
            index,
            scan,
            slot,
            pushed_snapshot,
        } = *self;
        // SAFETY: begin opened both relations, began the scan, made its
        // slot and pushed a snapshot iff `pushed_snapshot`; each is released
        // once, here, in systable_endscan's order, and scans end in reverse
        // order of their beginning (begin's contract), so the snapshot
        // popped is the one this scan pushed. The run holds raw pointers
        // and plain values only.
        unsafe {
            crate::grouped::guarded(|| {
                use crate::grouped::raw;
                let keep = pg_sys::NoLock as pg_sys::LOCKMODE;
                raw::ExecDropSingleTupleTableSlot(slot);
                raw::index_endscan(scan);
                raw::index_close(index, keep);
                if pushed_snapshot {
                    raw::PopActiveSnapshot();
                }
                raw::table_close(heap, keep);
            })
        }
    }
}

/// A key looked up by the SHA-256 of its token, with its type's current
/// scope ceiling. The scan stays open while [`KeyScan::key`]'s row is
/// borrowed and ends when this is dropped.
pub struct KeyScan {
    key_at: [usize; Col::COUNT],
    mfa_at: Option<usize>,
    row: Option<Datums>,
    /// `None` = all scopes (or an untyped key).
    ceiling: Option<Vec<String>>,
    // Dropped after the datums above, which may point into the buffer it pins.
    _scan: IndexScan,
}

impl KeyScan {
    /// Begins the lookup of the key whose token hashes to `hash`.
    pub fn by_hash(hash: &[u8; 32]) -> KeyScan {
        // SAFETY: verify runs as a SQL function, inside a transaction. The
        // scan compares token_hash, a bytea column (layout checked its
        // type) indexed by keys_token_hash_key, with bytea equality; the
        // bytea is palloc'd in the current memory context, which lasts the
        // whole call and so outlives the scan. The type's scan begins and
        // ends inside this one, while the key_type datum it is given stays
        // pinned.
        unsafe {
            let l = layout();
            let bytea = pgrx::rust_byte_slice_to_bytea(hash).into_pg();
            let mut scan = IndexScan::begin(
                l.keys,
                l.keys_by_hash,
                l.key_at[Col::TokenHash as usize] + 1,
                pg_sys::F_BYTEAEQ,
                pg_sys::InvalidOid,
                pg_sys::Datum::from(bytea),
            );
            let row = scan.first();
            let key_type = row.as_ref().and_then(|r| {
                let (values, nulls) = r.slices();
                let i = l.key_at[Col::KeyType as usize];
                (!nulls[i]).then(|| values[i])
            });
            let ceiling = key_type.and_then(|name| type_ceiling(&l, name));
            KeyScan {
                key_at: l.key_at,
                mfa_at: l.mfa_at,
                row,
                ceiling,
                _scan: scan,
            }
        }
    }

    /// The key found, if any, valid while this scan is borrowed.
    pub fn key(&self) -> Option<KeyRow<'_>> {
        let (values, nulls) = self.row.as_ref()?.slices();
        Some(KeyRow {
            values,
            nulls,
            at: &self.key_at,
            mfa_at: self.mfa_at,
            ceiling: self.ceiling.as_deref(),
        })
    }
}

/// The current `permissions` of the key type named by `name` (a text
/// datum), copied out of its row: `None` = all scopes, or no such type.
///
/// # Safety
/// Inside a transaction, with `l` from [`layout`]; `name` is a text datum
/// that stays valid during the call.
unsafe fn type_ceiling(l: &Layout, name: pg_sys::Datum) -> Option<Vec<String>> {
    let mut scan = IndexScan::begin(
        l.types,
        l.types_by_name,
        l.type_name_at + 1,
        pg_sys::F_TEXTEQ,
        l.type_name_collation,
        name,
    );
    let row = scan.first()?;
    let (values, nulls) = row.slices();
    if nulls[l.type_permissions_at] {
        return None;
    }
    // permissions is text[] (layout checked its type); the strings are
    // copied before the scan ends at the end of this function. A NULL or
    // unreadable element grants nothing.
    let perms = text_elements(values[l.type_permissions_at]);
    Some(perms.flatten().flatten().map(str::to_owned).collect())
}

/// The key a [`KeyScan`] found. Its datums may point into the heap buffer
/// the scan pins, hence the borrow: copy what must outlive the scan.
#[derive(Clone, Copy)]
pub struct KeyRow<'scan> {
    values: &'scan [pg_sys::Datum],
    nulls: &'scan [bool],
    at: &'scan [usize; Col::COUNT],
    mfa_at: Option<usize>,
    ceiling: Option<&'scan [String]>,
}

impl<'scan> KeyRow<'scan> {
    pub fn datum(&self, c: Col) -> Option<pg_sys::Datum> {
        let i = self.at[c as usize];
        (!self.nulls[i]).then(|| self.values[i])
    }

    /// Column `c`'s datum, which the caller reads as a `ty`.
    fn datum_as(&self, c: Col, ty: pg_sys::Oid) -> Option<pg_sys::Datum> {
        assert!(
            c.type_oid() == ty,
            "api_keys: column {} read as another type",
            c.column_name()
        );
        self.datum(c)
    }

    /// A text column; `None` when NULL or not readable text.
    pub fn text(&self, c: Col) -> Option<&'scan str> {
        let d = self.datum_as(c, pg_sys::TEXTOID)?;
        // SAFETY: a non-NULL text datum is a varlena: in place it lives in
        // the buffer pinned for 'scan; compressed or toasted, it is expanded
        // into the current memory context, which outlives the scan.
        unsafe { crate::text::varlena_str(crate::text::detoast_packed(d.cast_mut_ptr())).ok() }
    }

    /// The key's MFA flag (false on a 0.1.0 table).
    pub fn mfa(&self) -> bool {
        self.mfa_at
            .is_some_and(|i| !self.nulls[i] && self.values[i].value() != 0)
    }

    /// The key's id, copied.
    pub fn key_id(&self) -> Option<pgrx::Uuid> {
        let d = self.datum_as(Col::Id, pg_sys::UUIDOID)?;
        // SAFETY: uuid is a fixed-length by-reference type, never toasted:
        // a non-NULL datum points at its 16 bytes, which from_datum copies.
        unsafe { pgrx::Uuid::from_datum(d, false) }
    }

    /// A timestamptz column as microseconds since 2000-01-01.
    pub fn timestamp(&self, c: Col) -> Option<i64> {
        self.datum_as(c, pg_sys::TIMESTAMPTZOID)
            .map(|d| d.value() as i64)
    }

    /// The key's scopes and its type's current ceiling, as `&str` lists. A
    /// NULL or unreadable stored scope grants nothing and is left out.
    pub fn with_scopes<R>(&self, f: impl FnOnce(&[&str], Option<&[&str]>) -> R) -> R {
        let stored = self.datum_as(Col::Scopes, pg_sys::TEXTARRAYOID);
        // SAFETY: a non-NULL text[] datum; in place it lives in the buffer
        // pinned for 'scan, detoasted it is in the current memory context,
        // which outlives the scan.
        let scopes = stored.map(|d| unsafe { text_elements(d) });
        let scopes = scopes.into_iter().flatten().flatten().flatten();
        let scopes: SmallList<&str> = scopes.collect();
        match self.ceiling {
            None => f(&scopes, None),
            Some(c) => {
                let ceiling: SmallList<&str> = c.iter().map(String::as_str).collect();
                f(&scopes, Some(&ceiling))
            }
        }
    }

    /// The key's effective scopes (stored ∩ its type's current ceiling) as
    /// a text[] datum: the stored datum itself when the ceiling takes
    /// nothing away, the common case.
    pub fn effective_scopes_datum(&self) -> Option<pg_sys::Datum> {
        let stored = self.datum(Col::Scopes)?;
        if self.ceiling.is_none() {
            return Some(stored);
        }
        self.with_scopes(|scopes, ceiling| {
            let effective = api_keys_core::scopes::effective(scopes, ceiling);
            if effective.len() == scopes.len() {
                Some(stored)
            } else {
                effective.into_datum()
            }
        })
    }
}
