//! Lifecycle rules (core lifecycle) bound for sql/functions.sql: rotation.
//! Internal: names start with `_`, nothing is granted on them.

use api_keys_core::lifecycle::{self, Interval, RotateFacts};
use pgrx::datum::{Interval as PgInterval, TimestampWithTimeZone};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::raise::OrRaise;

fn micros(t: TimestampWithTimeZone) -> i64 {
    pg_sys::TimestampTz::from(t)
}

fn timestamptz(t: Option<i64>) -> Option<TimestampWithTimeZone> {
    t.and_then(|t| TimestampWithTimeZone::try_from(t).ok())
}

/// The decision for `api_key_rotate` (core lifecycle::plan_rotate): the
/// replacement's expiry, and whether the old key is revoked now or expires
/// at `old_expires_at`, the prefix head of an untyped replacement; the
/// first broken rule raised.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _rotate_plan(
    key_id: pgrx::Uuid,
    revocable: bool,
    revoked: bool,
    created_at: TimestampWithTimeZone,
    expires_at: Option<TimestampWithTimeZone>,
    replaced_by: Option<pgrx::Uuid>,
    display_prefix: &str,
    imported: bool,
    grace: Option<PgInterval>,
    expires_in: Option<&str>,
    now: TimestampWithTimeZone,
) -> TableIterator<
    'static,
    (
        name!(new_expires_at, Option<TimestampWithTimeZone>),
        name!(revoke_old, bool),
        name!(old_expires_at, Option<TimestampWithTimeZone>),
        name!(untyped_head, Option<String>),
    ),
> {
    let id = key_id.to_string();
    let next = replaced_by.map(|u| u.to_string());
    let facts = RotateFacts {
        key_id: &id,
        revocable,
        revoked,
        created_at: micros(created_at),
        expires_at: expires_at.map(micros),
        replaced_by: next.as_deref(),
        now: micros(now),
    };
    let grace = grace.map(|g| Interval {
        months: g.months(),
        days: g.days(),
        micros: g.micros(),
    });
    let plan = lifecycle::plan_rotate(&facts, grace, expires_in).or_raise();
    TableIterator::once((
        timestamptz(plan.new_expires_at),
        plan.revoke_old,
        timestamptz(plan.old_expires_at),
        lifecycle::untyped_head(display_prefix, imported).map(str::to_owned),
    ))
}
