//! Not preloaded: at most one last_used_at write per key per resolution window.

use std::thread;
use std::time::Duration;

use api_keys_tests::cluster::{serial, Cluster, Options, APP_DB};
use api_keys_tests::usage::*;
use api_keys_tests::*;

#[test]
fn without_preload_first_verify_writes_last_used_at_and_no_request_count() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    let s = stats(&mut c);
    assert_eq!(
        s,
        Stats {
            preloaded: false,
            capacity: 0,
            pending_keys: 0,
            recorded: 0,
            dropped: 0,
            flushed: 0
        }
    );
    let woken: bool = c
        .query_one("SELECT api_keys.api_key_usage_flush()", &[])
        .unwrap()
        .get(0);
    assert!(
        !woken,
        "api_key_usage_flush() must say false without preload"
    );
    assert!(flusher_pid(&mut c).is_none(), "no flusher without preload");

    let before = db_clock(&mut c);
    verify(&mut c, &key.token).assert_code("valid");
    let after = db_clock(&mut c);
    let info = get_key(&mut c, key.id);
    let used = info.last_used_at.expect("last_used_at written by verify");
    assert!(
        used >= before && used <= after,
        "last_used_at {used} outside [{before}, {after}]"
    );
    assert_eq!(info.requests_count, 0, "requests_count needs the preload");
}

#[test]
fn without_preload_read_only_transaction_does_not_write_last_used_at() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");

    let mut tx = c.build_transaction().read_only(true).start().unwrap();
    for _ in 0..3 {
        verify(&mut tx, &key.token).assert_code("valid");
    }
    tx.commit().expect("commit of the read-only transaction");
    assert_eq!(get_key(&mut c, key.id).last_used_at, None);

    c.batch_execute("SET default_transaction_read_only = on")
        .unwrap();
    verify(&mut c, &key.token).assert_code("valid");
    c.batch_execute("SET default_transaction_read_only = off")
        .unwrap();
    assert_eq!(get_key(&mut c, key.id).last_used_at, None);

    // The same verify in a read-write transaction does write it.
    verify(&mut c, &key.token).assert_code("valid");
    assert!(get_key(&mut c, key.id).last_used_at.is_some());
}

#[test]
fn without_preload_last_used_at_is_rewritten_only_after_the_resolution_window() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");

    verify(&mut c, &key.token).assert_code("valid");
    let first = get_key(&mut c, key.id)
        .last_used_at
        .expect("first verify writes last_used_at");
    thread::sleep(Duration::from_millis(1_100));
    // Default window (60s): not rewritten.
    verify(&mut c, &key.token).assert_code("valid");
    assert_eq!(get_key(&mut c, key.id).last_used_at, Some(first));

    // A 1s window has passed: rewritten.
    c.batch_execute("SET api_keys.last_used_resolution = '1s'")
        .unwrap();
    verify(&mut c, &key.token).assert_code("valid");
    let second = get_key(&mut c, key.id).last_used_at.expect("still set");
    assert!(
        second >= first + chrono::Duration::milliseconds(1_000),
        "last_used_at should move after the 1s window: {first} -> {second}"
    );
    // Within the new window: not rewritten again.
    verify(&mut c, &key.token).assert_code("valid");
    assert_eq!(get_key(&mut c, key.id).last_used_at, Some(second));
}

#[test]
fn without_preload_verify_does_not_wait_for_a_locked_key_row() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");

    // Another transaction holds the key's row lock (an update in progress).
    let mut holder = cluster.connect(APP_DB);
    let mut tx = holder.transaction().unwrap();
    tx.query_one(
        "SELECT api_keys.api_key_update($1::uuid, name => 'renamed')",
        &[&key.id],
    )
    .expect("api_key_update");

    c.batch_execute("SET statement_timeout = '3s'").unwrap();
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    tx.rollback().unwrap();
}
