//! Core's dashboard session rules (SPEC §9) bound for the hand-written SQL
//! functions `api_keys.dashboard_session_*`. Internal: names start with `_`.

use api_keys_core::dashboard;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::raise::OrRaise;

fn timestamptz(micros: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(micros)
        .unwrap_or_else(|_| error!("api_keys: timestamp out of range"))
}

/// When a link made now stops working; raises invalid_argument for a
/// ttl outside 1..3600 or a return link that is not http(s).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _dashboard_link_expires_at(
    ttl_seconds: Option<i32>,
    return_url: Option<&str>,
    return_text: Option<&str>,
    now: TimestampWithTimeZone,
) -> TimestampWithTimeZone {
    dashboard::check_return(return_url, return_text).or_raise();
    let now = pg_sys::TimestampTz::from(now);
    timestamptz(dashboard::link_expires_at(now, ttl_seconds.map(i64::from)).or_raise())
}

/// When a session started at `started_at` and last used at `last_seen_at`
/// ends (12 h lifetime, 1 h idle).
#[pg_extern(immutable, strict, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _dashboard_session_expires_at(
    started_at: TimestampWithTimeZone,
    last_seen_at: TimestampWithTimeZone,
) -> TimestampWithTimeZone {
    timestamptz(dashboard::session_expires_at(
        pg_sys::TimestampTz::from(started_at),
        pg_sys::TimestampTz::from(last_seen_at),
    ))
}
