//! Migration (SPEC §5 "Lifecycle (0.2.0)"): registered legacy prefixes for
//! verify's legacy path, and the decision for `api_key_import`.
//!
//! Verify must answer `malformed` for a token that does not parse as ours
//! without touching a table, unless it starts with a registered legacy
//! prefix. The prefixes are read once per backend into [`PREFIXES`] and
//! forgotten on a relcache invalidation of `api_keys.legacy_prefixes`,
//! which every change to that table sends (`_legacy_prefixes_changed`, run
//! by a statement trigger): other sessions, and standbys replaying the
//! commit, reload them at their next transaction. With no prefix defined
//! the hot path costs one check of an empty list.

use std::cell::{Cell, RefCell};

use api_keys_core::legacy::{self, ImportRequest};
use api_keys_core::scopes::RegisteredScope;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{pg_sys, FromDatum};

use crate::raise::OrRaise;

thread_local! {
    /// `None` = not read since the last invalidation.
    static PREFIXES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    /// The table's OID when [`PREFIXES`] was read.
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Relcache invalidation callback: forgets the prefixes when their table
/// (or, for `InvalidOid`, any relation) changes.
///
/// # Safety
/// Called by Postgres' invalidation machinery; touches only this backend's
/// cache.
#[pg_guard]
unsafe extern "C-unwind" fn forget_prefixes(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == TABLE.with(Cell::get) {
        PREFIXES.with(|p| p.borrow_mut().take());
    }
}

/// Reads every registered prefix. `None` when the table does not exist (a
/// database still on 0.1.0's SQL with this library): nothing is cached then.
///
/// # Safety
/// Inside a transaction.
unsafe fn read_prefixes() -> Option<(pg_sys::Oid, Vec<String>)> {
    let nsp = pg_sys::get_namespace_oid(c"api_keys".as_ptr(), true);
    if nsp == pg_sys::InvalidOid {
        return None;
    }
    let table = pg_sys::get_relname_relid(c"legacy_prefixes".as_ptr(), nsp);
    if table == pg_sys::InvalidOid {
        return None;
    }
    let rel = pg_sys::table_open(table, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let desc = (*rel).rd_att;
    let natts = (*desc).natts as usize;
    let attrs = (*desc).attrs.as_slice(natts);
    let at = attrs.iter().position(|a| {
        !a.attisdropped
            && a.atttypid == pg_sys::TEXTOID
            && pgrx::name_data_to_str(&a.attname) == "prefix"
    });
    let mut prefixes = Vec::new();
    if let Some(at) = at {
        let pushed = !pg_sys::ActiveSnapshotSet();
        if pushed {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let scan = pg_sys::systable_beginscan(
            rel,
            pg_sys::InvalidOid,
            false,
            pg_sys::GetActiveSnapshot(),
            0,
            std::ptr::null_mut(),
        );
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![true; natts];
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            if let Some(p) = String::from_datum(values[at], nulls[at]) {
                prefixes.push(p);
            }
        }
        pg_sys::systable_endscan(scan);
        if pushed {
            pg_sys::PopActiveSnapshot();
        }
    }
    pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    Some((table, prefixes))
}

/// Whether `token`, which does not parse as ours, starts with a registered
/// legacy prefix (core legacy::is_legacy_token).
pub fn is_legacy_token(token: &str) -> bool {
    if let Some(answer) = PREFIXES.with(|p| {
        p.borrow()
            .as_ref()
            .map(|list| !list.is_empty() && legacy::is_legacy_token(token, list))
    }) {
        return answer;
    }
    if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
        // SAFETY: a guarded function of this library, which is never
        // unloaded; registered once per backend.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_prefixes), pg_sys::Datum::from(0))
        };
    }
    // SAFETY: verify runs inside a transaction
    let Some((table, list)) = (unsafe { read_prefixes() }) else {
        return false;
    };
    let answer = legacy::is_legacy_token(token, &list);
    TABLE.with(|t| t.set(table));
    PREFIXES.with(|p| *p.borrow_mut() = Some(list));
    answer
}

/// Sends a relcache invalidation of `api_keys.legacy_prefixes`, so every
/// backend rereads the prefixes. Internal: run by the table's trigger.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _legacy_prefixes_changed() -> bool {
    // SAFETY: a SQL function, inside a transaction; the invalidation is
    // sent (to this and every other backend) when the transaction commits.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"api_keys".as_ptr(), false);
        let table = pg_sys::get_relname_relid(c"legacy_prefixes".as_ptr(), nsp);
        if table != pg_sys::InvalidOid {
            pg_sys::CacheInvalidateRelcacheByRelid(table);
        }
    }
    true
}

/// A legacy prefix checked (core legacy::check_prefix): the prefix to store.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _legacy_prefix_check(prefix: Option<&str>) -> String {
    legacy::check_prefix(prefix).or_raise().to_owned()
}

fn flat(v: Option<Vec<Option<String>>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().flatten().collect())
}

/// The decision for `api_key_import` (core legacy::plan_import).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _import_plan(
    owner_type: Option<&str>,
    owner_id: Option<&str>,
    digest_bytes: Option<i32>,
    display_prefix: Option<&str>,
    last4: Option<&str>,
    name: Option<&str>,
    scopes: Option<Vec<Option<String>>>,
    key_type: Option<&str>,
    type_found: bool,
    type_permissions: Option<Vec<Option<String>>>,
    type_revocable: Option<bool>,
    type_public: Option<bool>,
    environment: Option<&str>,
    environment_found: bool,
    environments_defined: bool,
    expires_at: Option<TimestampWithTimeZone>,
    created_at: Option<TimestampWithTimeZone>,
    revoked_at: Option<TimestampWithTimeZone>,
    requests_count: Option<i64>,
    metadata_type: Option<&str>,
    metadata_bytes: Option<i32>,
    require_name: Option<bool>,
    default_scopes: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
    registry_exclusive: Option<Vec<Option<bool>>>,
    now: TimestampWithTimeZone,
) -> TableIterator<
    'static,
    (
        name!(name, Option<String>),
        name!(scopes, Vec<String>),
        name!(display_prefix, String),
        name!(created_at, Option<TimestampWithTimeZone>),
    ),
> {
    let micros = |t: Option<TimestampWithTimeZone>| t.map(pg_sys::TimestampTz::from);
    let permissions = flat(type_permissions);
    let defaults = flat(default_scopes);
    let reg: Vec<RegisteredScope> = crate::rules::registry(
        &registry_names.unwrap_or_default(),
        &registry_exclusive.unwrap_or_default(),
    );
    let request = ImportRequest {
        owner_type,
        owner_id,
        digest_bytes: digest_bytes.map(|n| n.max(0) as usize),
        display_prefix,
        last4,
        name,
        scopes: scopes.as_deref(),
        expires_at: micros(expires_at),
        created_at: micros(created_at),
        revoked_at: micros(revoked_at),
        requests_count,
        metadata_type: metadata_type.unwrap_or("null"),
        metadata_bytes: metadata_bytes.unwrap_or(0).max(0) as usize,
    };
    let facts = crate::rules::issue_facts(
        key_type,
        type_found,
        permissions.as_deref(),
        type_revocable,
        type_public,
        (environment, environment_found, environments_defined),
        require_name,
        defaults.as_deref(),
        &reg,
        now,
    );
    let plan = legacy::plan_import(&request, &facts).or_raise();
    TableIterator::once((
        plan.name,
        plan.scopes,
        plan.display_prefix,
        TimestampWithTimeZone::try_from(plan.created_at).ok(),
    ))
}
