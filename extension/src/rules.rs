//! Core rules bound for the hand-written SQL functions (sql/functions.sql).
//! Internal: names start with `_`, nothing is granted on them.

use api_keys_core::limits::LimitCheck;
use api_keys_core::scopes::{self, RegisteredScope};
use api_keys_core::{bounds, expiry, token, ExpiresIn, Reason, RuleError};
use pgrx::prelude::*;

use crate::raise::{raise, OrRaise};

/// Raises `api_keys: <reason>: <detail>` with the reason's SQLSTATE.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _raise(reason: &str, detail: &str) -> bool {
    let reason =
        Reason::parse(reason).unwrap_or_else(|| error!("api_keys: unknown reason {reason}"));
    raise(RuleError::new(reason, detail))
}

/// Bounds on owner, name and metadata (given as jsonb_typeof and byte size).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_key_args(
    owner_type: Option<&str>,
    owner_id: Option<&str>,
    name: Option<&str>,
    metadata_type: Option<&str>,
    metadata_bytes: Option<i32>,
) -> bool {
    bounds::check_owner(owner_type, owner_id).or_raise();
    bounds::check_name(name).or_raise();
    if let Some(t) = metadata_type {
        bounds::check_metadata(t, metadata_bytes.unwrap_or(0).max(0) as usize).or_raise();
    }
    true
}

#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_owner(owner_type: Option<&str>, owner_id: Option<&str>) -> bool {
    bounds::check_owner(owner_type, owner_id).or_raise();
    true
}

/// A user-given name (key type, environment): 1–255 characters, not blank.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_label(what: &str, value: Option<&str>) -> bool {
    bounds::check_label(what, value).or_raise();
    true
}

#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_segment(what: &str, value: Option<&str>) -> bool {
    token::check_segment(what, value.unwrap_or("")).or_raise();
    true
}

/// Days an `expires_in` preset asks for; NULL for `no_expiration`.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _expires_in_days(expires_in: &str) -> Option<i32> {
    match ExpiresIn::parse(expires_in).or_raise() {
        ExpiresIn::Never => None,
        ExpiresIn::Days(n) => Some(n as i32),
    }
}

fn registry(names: &[Option<String>], exclusive: &[Option<bool>]) -> Vec<RegisteredScope> {
    names
        .iter()
        .zip(exclusive.iter().chain(std::iter::repeat(&None)))
        .filter_map(|(n, e)| {
            n.as_ref().map(|n| RegisteredScope {
                name: n.clone(),
                exclusive: e.unwrap_or(false),
            })
        })
        .collect()
}

fn flat(v: Option<Vec<Option<String>>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().flatten().collect())
}

/// Requested scopes after normalising, registry, ceiling and exclusivity.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scopes_process(
    requested: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
    registry_exclusive: Option<Vec<Option<bool>>>,
    ceiling: Option<Vec<Option<String>>>,
) -> Vec<String> {
    let reg = registry(
        &registry_names.unwrap_or_default(),
        &registry_exclusive.unwrap_or_default(),
    );
    let ceiling = flat(ceiling);
    scopes::process(&requested.unwrap_or_default(), &reg, ceiling.as_deref()).or_raise()
}

/// A ceiling or default-scope list: normalised, unknown scopes rejected.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scopes_known(
    requested: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
) -> Vec<String> {
    let reg = registry(&registry_names.unwrap_or_default(), &[]);
    scopes::known(&requested.unwrap_or_default(), &reg).or_raise()
}

/// What a new key may hold (SPEC §5 api_key_available_scopes).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scopes_available(
    default_scopes: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
    ceiling: Option<Vec<Option<String>>>,
) -> Vec<String> {
    let reg = registry(&registry_names.unwrap_or_default(), &[]);
    let defaults = flat(default_scopes);
    let ceiling = flat(ceiling);
    scopes::available(defaults.as_deref(), &reg, ceiling.as_deref())
}

/// A scope definition checked (core scopes::check_definition): the name
/// to store, trimmed.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scope_definition(name: Option<&str>, description: Option<&str>) -> String {
    scopes::check_definition(name, description).or_raise()
}

/// A key's effective scopes: its own, within its type's current ceiling.
/// Used by the key_infos view, as verify uses it on the hot path.
#[pg_extern(immutable, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scopes_effective(
    scopes: Option<Vec<Option<String>>>,
    ceiling: Option<Vec<Option<String>>>,
) -> Vec<String> {
    let scopes = flat(scopes).unwrap_or_default();
    let ceiling = flat(ceiling);
    scopes::effective(&scopes, ceiling.as_deref())
}

/// Raises key_limit_reached / type_limit_reached; true when within limits.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_limits(
    owner_type: &str,
    owner_id: &str,
    active_keys: i64,
    max_keys: Option<i32>,
    key_type: Option<&str>,
    environment: Option<&str>,
    active_in_bucket: i64,
    per_owner_limit: Option<i32>,
    raise_error: bool,
) -> bool {
    let check = LimitCheck {
        owner_type,
        owner_id,
        active_keys,
        max_keys,
        key_type,
        environment,
        active_in_bucket,
        per_owner_limit,
    };
    match check.check() {
        Ok(()) => true,
        Err(e) if raise_error => raise(e),
        Err(_) => false,
    }
}

/// A new UUIDv7 key id.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _key_id_new() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(api_keys_core::ids::new_key_id())
}

/// The expiration presets a dashboard offers, in order.
#[pg_extern(immutable, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn api_key_expiration_presets(
) -> TableIterator<'static, (name!(value, String), name!(label, String))> {
    TableIterator::new(
        expiry::PRESETS
            .iter()
            .map(|(v, l)| (v.to_string(), l.to_string())),
    )
}
