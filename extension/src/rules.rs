//! Core rules bound for the hand-written SQL functions (sql/functions.sql).
//! Internal: names start with `_`, nothing is granted on them.

use api_keys_core::issue::{
    self, EnvironmentFacts, IssueFacts, IssueRequest, KeyTypeFacts, UpdateFacts, UpdateRequest,
};
use api_keys_core::limits::LimitCheck;
use api_keys_core::scopes::{self, RegisteredScope};
use api_keys_core::status::{self, KeyStatus};
use api_keys_core::verify::AuthOutcome;
use api_keys_core::{bounds, define, expiry, Reason, RuleError};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
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

pub(crate) fn registry(
    names: &[Option<String>],
    exclusive: &[Option<bool>],
) -> Vec<RegisteredScope> {
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

fn micros(t: Option<TimestampWithTimeZone>) -> Option<i64> {
    t.map(pg_sys::TimestampTz::from)
}

fn timestamptz(t: Option<i64>) -> Option<TimestampWithTimeZone> {
    t.and_then(|t| TimestampWithTimeZone::try_from(t).ok())
}

/// The facts SQL gathered for an operation that makes a key (issue,
/// import), as core's `IssueFacts`: one binding for both plans.
#[allow(clippy::too_many_arguments)]
pub(crate) fn issue_facts<'a>(
    key_type: Option<&'a str>,
    type_found: bool,
    permissions: Option<&'a [String]>,
    type_revocable: Option<bool>,
    type_public: Option<bool>,
    (environment, environment_found, environments_defined): (Option<&'a str>, bool, bool),
    require_name: Option<bool>,
    default_scopes: Option<&'a [String]>,
    registry: &'a [RegisteredScope],
    now: TimestampWithTimeZone,
) -> IssueFacts<'a> {
    IssueFacts {
        require_name: require_name.unwrap_or(false),
        default_scopes,
        key_type: key_type.map(|name| {
            if type_found {
                Ok(KeyTypeFacts {
                    name,
                    permissions,
                    revocable: issue::revocable(type_revocable),
                    public: type_public.unwrap_or(false),
                })
            } else {
                Err(name)
            }
        }),
        environment: EnvironmentFacts {
            wanted: environment,
            found: environment_found,
            any_defined: environments_defined,
        },
        registry,
        now: pg_sys::TimestampTz::from(now),
    }
}

/// The decision for `api_key_issue` (core issue::plan): the facts the SQL
/// function gathered in, what to store out (name, scopes, expiry, whether to
/// keep the plaintext), or the first broken rule raised.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _issue_plan(
    owner_type: Option<&str>,
    owner_id: Option<&str>,
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
    expires_in: Option<&str>,
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
        name!(expires_at, Option<TimestampWithTimeZone>),
        name!(keep_plaintext, bool),
    ),
> {
    let permissions = flat(type_permissions);
    let defaults = flat(default_scopes);
    let reg = registry(
        &registry_names.unwrap_or_default(),
        &registry_exclusive.unwrap_or_default(),
    );
    let request = IssueRequest {
        owner_type,
        owner_id,
        name,
        scopes: scopes.as_deref(),
        expires_at: micros(expires_at),
        expires_in,
        metadata_type: metadata_type.unwrap_or("null"),
        metadata_bytes: metadata_bytes.unwrap_or(0).max(0) as usize,
    };
    let facts = issue_facts(
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
    let plan = issue::plan(&request, &facts).or_raise();
    TableIterator::once((
        plan.name,
        plan.scopes,
        timestamptz(plan.expires_at),
        plan.keep_plaintext,
    ))
}

/// Raises unknown_key_type / unknown_environment as issue would, for the
/// functions that look a type and an environment up without issuing
/// (can_issue, list, available_scopes).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _check_targets(
    key_type: Option<&str>,
    type_found: bool,
    environment: Option<&str>,
    environment_found: bool,
    environments_defined: bool,
) -> bool {
    let lookup = key_type.map(|n| {
        if type_found {
            Ok(KeyTypeFacts {
                name: n,
                permissions: None,
                revocable: true,
                public: false,
            })
        } else {
            Err(n)
        }
    });
    issue::resolve_type(lookup).or_raise();
    EnvironmentFacts {
        wanted: environment,
        found: environment_found,
        any_defined: environments_defined,
    }
    .check()
    .or_raise();
    true
}

/// The decision for `api_key_update` (core issue::plan_update).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _update_plan(
    name: Option<&str>,
    scopes: Option<Vec<Option<String>>>,
    metadata_type: Option<&str>,
    metadata_bytes: Option<i32>,
    owner_type: &str,
    current_name: Option<&str>,
    current_scopes: Option<Vec<Option<String>>>,
    require_name: Option<bool>,
    ceiling: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
    registry_exclusive: Option<Vec<Option<bool>>>,
) -> TableIterator<
    'static,
    (
        name!(name, Option<String>),
        name!(scopes, Vec<String>),
        name!(changed, Vec<String>),
    ),
> {
    let current = flat(current_scopes).unwrap_or_default();
    let ceiling = flat(ceiling);
    let reg = registry(
        &registry_names.unwrap_or_default(),
        &registry_exclusive.unwrap_or_default(),
    );
    let request = UpdateRequest {
        name,
        scopes: scopes.as_deref(),
        metadata: metadata_type.map(|t| (t, metadata_bytes.unwrap_or(0).max(0) as usize)),
    };
    let facts = UpdateFacts {
        owner_type,
        current_name,
        current_scopes: &current,
        require_name: require_name.unwrap_or(false),
        ceiling: ceiling.as_deref(),
        registry: &reg,
    };
    let plan = issue::plan_update(&request, &facts).or_raise();
    TableIterator::once((
        plan.name,
        plan.scopes,
        plan.changed.into_iter().map(str::to_owned).collect(),
    ))
}

/// A key type definition checked (core define::key_type): the ceiling to store.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _key_type_check(
    name: Option<&str>,
    prefix: Option<&str>,
    permissions: Option<Vec<Option<String>>>,
    revocable: Option<bool>,
    public: Option<bool>,
    per_owner_limit: Option<i32>,
    prefix_taken_by: Option<&str>,
    registry_names: Option<Vec<Option<String>>>,
) -> Option<Vec<String>> {
    let reg = registry(&registry_names.unwrap_or_default(), &[]);
    let definition = define::KeyTypeDefinition {
        name,
        prefix,
        permissions: permissions.as_deref(),
        revocable,
        public,
        per_owner_limit,
    };
    define::key_type(&definition, prefix_taken_by, &reg).or_raise()
}

/// An environment definition checked (core define::environment).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _environment_check(
    name: Option<&str>,
    prefix_segment: Option<&str>,
    segment_taken_by: Option<&str>,
) -> bool {
    define::environment(name, prefix_segment, segment_taken_by).or_raise();
    true
}

/// A scope definition checked (core define::scope): the name to store.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _scope_check(name: Option<&str>, description: Option<&str>, exclusive: Option<bool>) -> String {
    define::scope(name, description, exclusive).or_raise()
}

/// An owner policy checked (core define::owner_policy): the default scopes to store.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _owner_policy_check(
    owner_type: Option<&str>,
    max_keys: Option<i32>,
    default_scopes: Option<Vec<Option<String>>>,
    registry_names: Option<Vec<Option<String>>>,
) -> Option<Vec<String>> {
    let reg = registry(&registry_names.unwrap_or_default(), &[]);
    define::owner_policy(owner_type, max_keys, default_scopes.as_deref(), &reg).or_raise()
}

/// A key's status word (core status::KeyStatus): revoked wins, else expired
/// once `expires_at <= now`, else active.
#[pg_extern(immutable, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _key_status(
    revoked_at: Option<TimestampWithTimeZone>,
    expires_at: Option<TimestampWithTimeZone>,
    now: TimestampWithTimeZone,
) -> &'static str {
    KeyStatus::of(
        revoked_at.is_some(),
        micros(expires_at),
        pg_sys::TimestampTz::from(now),
    )
    .as_str()
}

/// The status words `api_key_list(…, status, limit)` keeps;
/// invalid_argument for a status other than active, inactive, expired,
/// revoked or NULL, and for a negative limit.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _list_filter(status: Option<&str>, limit: Option<i32>) -> Vec<&'static str> {
    status::list_filter(status, limit)
        .or_raise()
        .iter()
        .map(|s| s.as_str())
        .collect()
}

/// Whether a key is revocable: an untyped key is; a typed one as its type says.
#[pg_extern(immutable, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _revocable(type_revocable: Option<bool>) -> bool {
    issue::revocable(type_revocable)
}

/// PostgREST's refusal of an authentication outcome (core AuthOutcome):
/// the SQLSTATE (PT401 or PT403) and message; no row when accepted.
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _auth_refusal(
    outcome: &str,
) -> TableIterator<
    'static,
    (
        name!(sqlstate, String),
        name!(message, String),
        name!(lists_required, bool),
    ),
> {
    let outcome = AuthOutcome::parse(outcome)
        .unwrap_or_else(|| error!("api_keys: unknown authentication outcome {outcome}"));
    let lists_required = outcome.refusal_status() == Some(403);
    TableIterator::new(
        outcome
            .refusal()
            .map(|(state, message)| (state.to_owned(), message, lists_required)),
    )
}
