//! Usage-tracking helpers shared by the tests that look at counts
//! (`api_key_usage_stats()`, flushes, `requests_count`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use uuid::Uuid;

use crate::cluster::wait_for;
use crate::errors::describe;
use crate::{get_key, KeyInfo, Verification};

/// Long enough that nothing is flushed unless a test asks for it.
pub const NEVER: &str = "1h";
/// Short, so that periodic flushes happen within a test.
pub const SHORT: &str = "200ms";

/// A row of `api_keys.api_key_usage_stats()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub preloaded: bool,
    pub capacity: i32,
    pub pending_keys: i32,
    pub recorded: i64,
    pub dropped: i64,
    pub flushed: i64,
}

#[track_caller]
pub fn stats(c: &mut Client) -> Stats {
    let row = c
        .query_one("SELECT * FROM api_keys.api_key_usage_stats()", &[])
        .unwrap_or_else(|e| panic!("api_key_usage_stats() failed: {}", describe(&e)));
    Stats {
        preloaded: row.get("preloaded"),
        capacity: row.get("capacity"),
        pending_keys: row.get("pending_keys"),
        recorded: row.get("recorded"),
        dropped: row.get("dropped"),
        flushed: row.get("flushed"),
    }
}

/// `api_key_usage_flush()`: whether the flusher was woken.
#[track_caller]
pub fn usage_flush(c: &mut Client) -> bool {
    c.query_one("SELECT api_keys.api_key_usage_flush()", &[])
        .unwrap_or_else(|e| panic!("api_key_usage_flush() failed: {}", describe(&e)))
        .get(0)
}

/// `api_key_usage_flush()`, waiting (after a start or restart) until the
/// flusher runs and the call returns true.
#[track_caller]
pub fn request_flush(c: &mut Client) {
    wait_for(Duration::from_secs(15), "the usage flusher to run", || {
        usage_flush(c).then_some(())
    });
}

/// Polls `api_key_get(id)` for up to 10 s until `requests_count == expected`;
/// fails at once if it goes past `expected`.
#[track_caller]
pub fn wait_for_count(c: &mut Client, id: Uuid, expected: i64) -> KeyInfo {
    wait_for(
        Duration::from_secs(10),
        &format!("requests_count of {id} to reach {expected}"),
        || {
            let info = get_key(c, id);
            assert!(
                info.requests_count <= expected,
                "requests_count went past {expected}: {info:?}"
            );
            (info.requests_count == expected).then_some(info)
        },
    )
}

/// Flushes now and waits until the key's count is `expected`.
#[track_caller]
pub fn flush_and_wait(c: &mut Client, id: Uuid, expected: i64) -> KeyInfo {
    request_flush(c);
    wait_for_count(c, id, expected)
}

/// `n` separate `api_key_verify` calls (one statement each), all `valid`.
#[track_caller]
pub fn verify_valid_times(c: &mut Client, token: &str, n: usize) {
    let stmt = c
        .prepare("SELECT * FROM api_keys.api_key_verify($1::text)")
        .expect("prepare verify");
    for i in 0..n {
        let row = c
            .query_one(&stmt, &[&token])
            .unwrap_or_else(|e| panic!("verify #{i} raised: {}", describe(&e)));
        Verification::from_row(&row).assert_code("valid");
    }
}

/// The database's wall clock now (`clock_timestamp()`, not the
/// transaction's `now()`).
pub fn db_clock(c: &mut Client) -> DateTime<Utc> {
    c.query_one("SELECT clock_timestamp()", &[])
        .expect("clock_timestamp")
        .get(0)
}

/// The pid of the usage flusher, if it runs.
pub fn flusher_pid(c: &mut Client) -> Option<i32> {
    c.query_opt(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'api_keys usage flusher'",
        &[],
    )
    .expect("pg_stat_activity")
    .map(|r| r.get(0))
}
