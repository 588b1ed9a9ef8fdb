//! Direct index lookups for the verify hot path.
//!
//! Verify reads one key by its token hash and, for a typed key, one key type
//! by name. Going through SPI cost about half of a verification in executor
//! start-up (measured: BENCHMARKS.md), so these are plain index scans, as
//! Postgres does for its own catalogs, under the snapshot a volatile
//! function's query would get.
//! Relation OIDs and column positions are cached per backend and dropped on
//! any relcache invalidation of those relations (DROP/ALTER), so a
//! re-created extension is picked up.

use std::cell::Cell;
use std::mem::MaybeUninit;

use pgrx::prelude::*;
use pgrx::{pg_sys, Array, FromDatum, IntoDatum};

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

const KEY_COLUMNS: [&str; 12] = [
    "id",
    "owner_type",
    "owner_id",
    "name",
    "key_type",
    "environment",
    "scopes",
    "metadata",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "token_hash",
];

#[derive(Clone, Copy)]
struct Layout {
    keys: pg_sys::Oid,
    keys_by_hash: pg_sys::Oid,
    /// 0-based positions of KEY_COLUMNS in the keys tuple.
    key_at: [usize; 12],
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

/// Positions of `names` among the live attributes of `rel`'s tuple.
unsafe fn positions<const N: usize>(rel: pg_sys::Relation, names: [&str; N]) -> [usize; N] {
    let desc = (*rel).rd_att;
    let attrs = (*desc).attrs.as_slice((*desc).natts as usize);
    std::array::from_fn(|i| {
        attrs
            .iter()
            .position(|a| !a.attisdropped && pgrx::name_data_to_str(&a.attname) == names[i])
            .unwrap_or_else(|| error!("api_keys: column {} is missing", names[i]))
    })
}

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
    let key_at = positions(keys_rel, KEY_COLUMNS);
    pg_sys::table_close(keys_rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    let types_rel = pg_sys::table_open(types, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let [type_name_at, type_permissions_at] = positions(types_rel, ["name", "permissions"]);
    let desc = (*types_rel).rd_att;
    let type_name_collation =
        (*desc).attrs.as_slice((*desc).natts as usize)[type_name_at].attcollation;
    pg_sys::table_close(types_rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    let l = Layout {
        keys,
        keys_by_hash: relid(c"keys_token_hash_key", nsp),
        key_at,
        types,
        types_by_name: relid(c"key_types_pkey", nsp),
        type_name_at,
        type_name_collation,
        type_permissions_at,
    };
    LAYOUT.with(|c| c.set(Some(l)));
    l
}

const STACK_COLUMNS: usize = 32;

/// The snapshot to read under, and whether it was pushed (pop it after).
///
/// What a VOLATILE function's query would see: the statement's snapshot,
/// unless this statement has already run commands of its own (a key issued
/// or revoked earlier in the same statement) — then a fresh one, which under
/// READ COMMITTED sees them and under REPEATABLE READ is the transaction's
/// snapshot. Taking a fresh snapshot on every call cost 2-3% of a verify.
unsafe fn snapshot() -> (pg_sys::Snapshot, bool) {
    if pg_sys::ActiveSnapshotSet() {
        let active = pg_sys::GetActiveSnapshot();
        if (*active).curcid == pg_sys::GetCurrentCommandId(false) {
            return (active, false);
        }
    }
    pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    (pg_sys::GetActiveSnapshot(), true)
}

/// Scans `index` of `heap` for rows whose column `heap_attno` (1-based) equals
/// `value`, and hands the first visible row's deformed datums to `then`
/// (valid only inside it: they may point into a pinned buffer).
unsafe fn scan_one<R>(
    heap: pg_sys::Oid,
    index: pg_sys::Oid,
    heap_attno: usize,
    procedure: u32,
    collation: pg_sys::Oid,
    value: pg_sys::Datum,
    then: impl FnOnce(Option<(&[pg_sys::Datum], &[bool])>) -> R,
) -> R {
    let rel = pg_sys::table_open(heap, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let mut key = MaybeUninit::<pg_sys::ScanKeyData>::zeroed();
    pg_sys::ScanKeyEntryInitialize(
        key.as_mut_ptr(),
        0,
        heap_attno as pg_sys::AttrNumber,
        pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
        pg_sys::InvalidOid,
        collation,
        pg_sys::Oid::from(procedure),
        value,
    );
    let (snapshot, pushed) = snapshot();
    let scan = pg_sys::systable_beginscan(rel, index, true, snapshot, 1, key.as_mut_ptr());
    let tuple = pg_sys::systable_getnext(scan);
    let result = if tuple.is_null() {
        then(None)
    } else {
        let natts = (*(*rel).rd_att).natts as usize;
        // on the stack for our tables; the heap only if columns were added
        let mut stack_values = [pg_sys::Datum::from(0); STACK_COLUMNS];
        let mut stack_nulls = [true; STACK_COLUMNS];
        let (mut heap_values, mut heap_nulls) = (Vec::new(), Vec::new());
        let (values, nulls): (&mut [pg_sys::Datum], &mut [bool]) = if natts <= STACK_COLUMNS {
            (&mut stack_values[..natts], &mut stack_nulls[..natts])
        } else {
            heap_values.resize(natts, pg_sys::Datum::from(0));
            heap_nulls.resize(natts, true);
            (&mut heap_values, &mut heap_nulls)
        };
        pg_sys::heap_deform_tuple(
            tuple,
            (*rel).rd_att,
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
        );
        then(Some((values, nulls)))
    };
    pg_sys::systable_endscan(scan);
    if pushed {
        pg_sys::PopActiveSnapshot();
    }
    // keep the lock to the end of the transaction, as the executor does
    pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    result
}

/// A stored key found by its hash; its datums live as long as the lookup.
pub struct Found<'a> {
    values: &'a [pg_sys::Datum],
    nulls: &'a [bool],
    at: &'a [usize; 12],
    /// The key type's current scope ceiling; `None` = all scopes.
    pub ceiling: Option<Vec<String>>,
}

impl Found<'_> {
    pub fn datum(&self, c: Col) -> Option<pg_sys::Datum> {
        let i = self.at[c as usize];
        (!self.nulls[i]).then(|| self.values[i])
    }

    pub fn text(&self, c: Col) -> Option<&str> {
        // SAFETY: callers pass text columns; the datum lives as long as self
        unsafe {
            self.datum(c).and_then(|d| {
                crate::text::varlena_str(pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr())).ok()
            })
        }
    }

    pub fn text_array(&self, c: Col) -> Option<Array<'_, &str>> {
        // SAFETY: callers pass text[] columns
        unsafe {
            self.datum(c)
                .and_then(|d| Array::<&str>::from_datum(d, false))
        }
    }

    /// The key's scopes and its type's current ceiling, as `&str` lists.
    pub fn with_scopes<R>(&self, f: impl FnOnce(&[&str], Option<&[&str]>) -> R) -> R {
        let arr = self.text_array(Col::Scopes);
        let scopes: Vec<&str> = arr
            .as_ref()
            .map(|a| a.iter().flatten().collect())
            .unwrap_or_default();
        let ceiling: Option<Vec<&str>> = self
            .ceiling
            .as_ref()
            .map(|c| c.iter().map(String::as_str).collect());
        f(&scopes, ceiling.as_deref())
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

    /// A timestamptz column as microseconds since 2000-01-01.
    pub fn timestamp(&self, c: Col) -> Option<i64> {
        self.datum(c).map(|d| d.value() as i64)
    }
}

/// Looks a key up by the SHA-256 of its token and hands it to `then`.
pub fn find_key<R>(hash: &[u8; 32], then: impl FnOnce(Option<&Found>) -> R) -> R {
    // SAFETY: plain index scans under the transaction snapshot; datums are
    // used only inside the scan's lifetime.
    unsafe {
        let l = layout();
        let bytea = pgrx::rust_byte_slice_to_bytea(hash).into_pg();
        scan_one(
            l.keys,
            l.keys_by_hash,
            l.key_at[Col::TokenHash as usize] + 1,
            pg_sys::F_BYTEAEQ,
            pg_sys::InvalidOid,
            pg_sys::Datum::from(bytea),
            |row| match row {
                None => then(None),
                Some((values, nulls)) => {
                    let mut found = Found {
                        values,
                        nulls,
                        at: &l.key_at,
                        ceiling: None,
                    };
                    if let Some(type_name) = found.datum(Col::KeyType) {
                        found.ceiling = type_ceiling(&l, type_name);
                    }
                    then(Some(&found))
                }
            },
        )
    }
}

/// The current `permissions` of the key type named by `name` (a text datum).
unsafe fn type_ceiling(l: &Layout, name: pg_sys::Datum) -> Option<Vec<String>> {
    scan_one(
        l.types,
        l.types_by_name,
        l.type_name_at + 1,
        pg_sys::F_TEXTEQ,
        l.type_name_collation,
        name,
        |row| {
            let (values, nulls) = row?;
            if nulls[l.type_permissions_at] {
                return None;
            }
            let perms = Array::<&str>::from_datum(values[l.type_permissions_at], false)?;
            Some(perms.iter().flatten().map(str::to_owned).collect())
        },
    )
}
