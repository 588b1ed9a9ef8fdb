//! Preloaded: shared-memory counters and the background flusher.

use std::thread;
use std::time::Duration;

use api_keys_tests::cluster::{serial, wait_for, Cluster, Options, APP_DB};
use api_keys_tests::usage::*;
use api_keys_tests::*;

use super::preloaded;

#[test]
fn requests_count_equals_number_of_valid_verifies_once_flushed() {
    const N: usize = 250;
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    let before = db_clock(&mut c);
    let fresh = get_key(&mut c, key.id);
    assert_eq!((fresh.requests_count, fresh.last_used_at), (0, None));

    verify_valid_times(&mut c, &key.token, N);
    let after = db_clock(&mut c);
    // Nothing is written per verify: the table still says 0 before a flush.
    assert_eq!(get_key(&mut c, key.id).requests_count, 0);

    let info = flush_and_wait(&mut c, key.id, N as i64);
    let used = info.last_used_at.expect("last_used_at set by the flush");
    assert!(
        used >= key.created_at && used >= before && used <= after,
        "last_used_at {used} outside [{before}, {after}] (issued {})",
        key.created_at
    );
    // And it stays exactly N: nothing is flushed twice.
    request_flush(&mut c);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(get_key(&mut c, key.id).requests_count, N as i64);
}

#[test]
fn counts_are_flushed_periodically_without_asking() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(SHORT));
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    verify_valid_times(&mut c, &key.token, 5);
    // No api_key_usage_flush(): the 200ms interval alone must do it.
    let info = wait_for_count(&mut c, key.id, 5);
    assert!(info.last_used_at.is_some());
}

#[test]
fn invalid_verifications_are_not_counted() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let good = issue_for(&mut c, "user", "1");
    let revoked = issue_for(&mut c, "user", "1");
    assert!(revoke(&mut c, revoked.id));
    let scoped = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', scopes => '{read}'",
        &[],
    );
    let expired = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    wait_for_one_second_expiry();
    let start = stats(&mut c);

    for _ in 0..5 {
        verify(&mut c, &revoked.token).assert_code("revoked");
        verify_scopes(&mut c, &scoped.token, &["write"]).assert_code("insufficient_scope");
        verify(&mut c, &expired.token).assert_code("expired");
        verify(&mut c, &forge_token("ak")).assert_code("not_found");
        verify(&mut c, &mutate_at(&good.token, 5)).assert_code("malformed");
        verify(&mut c, "").assert_code("malformed");
    }
    // One valid use, as the marker that a flush happened.
    verify(&mut c, &good.token).assert_code("valid");
    let end = stats(&mut c);
    assert_eq!(
        end.recorded - start.recorded,
        1,
        "only the one valid verify may be recorded: {start:?} -> {end:?}"
    );

    // The flush of `good` drains this database's table, so anything recorded
    // for the other keys would have been written by now too.
    flush_and_wait(&mut c, good.id, 1);
    for k in [&revoked, &scoped, &expired] {
        let info = get_key(&mut c, k.id);
        assert_eq!(
            (info.requests_count, info.last_used_at),
            (0, None),
            "key {} must not be counted: {info:?}",
            k.masked_token
        );
    }
}

#[test]
fn last_used_at_moves_forward_on_later_use() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");

    verify_valid_times(&mut c, &key.token, 1);
    let first = flush_and_wait(&mut c, key.id, 1)
        .last_used_at
        .expect("last_used_at after the first use");
    thread::sleep(Duration::from_millis(50));
    let before_second = db_clock(&mut c);
    verify_valid_times(&mut c, &key.token, 1);
    let second = flush_and_wait(&mut c, key.id, 2)
        .last_used_at
        .expect("last_used_at after the second use");
    assert!(
        second > first && second >= before_second,
        "last_used_at did not move forward: first {first}, second {second}, \
         second use started after {before_second}"
    );
}

#[test]
fn usage_in_two_databases_is_flushed_into_each_database() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let key = {
        let mut c = cluster.connect(APP_DB);
        issue_for(&mut c, "user", "1")
    };
    // A copy of the first database: the same key id exists in both, so a
    // count flushed into the wrong database would show.
    cluster
        .connect("postgres")
        .batch_execute(&format!("CREATE DATABASE app2 TEMPLATE {APP_DB}"))
        .expect("CREATE DATABASE app2");
    let mut c1 = cluster.connect(APP_DB);
    let mut c2 = cluster.connect("app2");

    verify_valid_times(&mut c1, &key.token, 3);
    verify_valid_times(&mut c2, &key.token, 5);
    request_flush(&mut c1);
    wait_for_count(&mut c1, key.id, 3);
    wait_for_count(&mut c2, key.id, 5);
    // Settled: both stay where they are.
    request_flush(&mut c1);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(get_key(&mut c1, key.id).requests_count, 3);
    assert_eq!(get_key(&mut c2, key.id).requests_count, 5);
}

/// A flush request (or a "table nearly full" wake-up) that arrives while the
/// flusher waits for a flush worker must still lead to a flush.
#[test]
fn flush_requested_during_a_flush_is_not_lost() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let slow = issue_for(&mut c, "user", "1");
    let other = issue_for(&mut c, "user", "2");

    // A SHARE lock on the keys table lets verify read but makes the next
    // flush worker's UPDATE wait (a row lock would just be skipped).
    let mut holder = cluster.connect(APP_DB);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE api_keys.keys IN SHARE MODE")
        .expect("lock keys");

    verify_valid_times(&mut c, &slow.token, 1);
    request_flush(&mut c);
    wait_for(Duration::from_secs(10), "the first flush to start", || {
        (stats(&mut c).pending_keys == 0).then_some(())
    });
    // While that flush is stuck behind the lock: more use, another request.
    verify_valid_times(&mut c, &other.token, 2);
    request_flush(&mut c);
    thread::sleep(Duration::from_millis(200));
    tx.commit().unwrap();

    wait_for_count(&mut c, slow.id, 1);
    // The second request was made (and answered true) after other's uses:
    // they must be flushed without waiting for the 1h interval.
    let s = stats(&mut c);
    wait_for(
        Duration::from_secs(5),
        &format!("other's 2 uses to be flushed after the second request ({s:?})"),
        || (get_key(&mut c, other.id).requests_count == 2).then_some(()),
    );
}

/// A transaction holding one key's row must not stall flushing: other keys
/// are flushed at once, and the locked key's uses are kept for a later flush.
#[test]
fn a_locked_key_row_does_not_stall_flushing_and_its_uses_are_kept() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let locked = issue_for(&mut c, "user", "1");
    let other = issue_for(&mut c, "user", "2");

    let mut holder = cluster.connect(APP_DB);
    let mut tx = holder.transaction().unwrap();
    tx.query_one(
        "SELECT api_keys.api_key_update($1::uuid, name => 'renamed')",
        &[&locked.id],
    )
    .expect("api_key_update");

    verify_valid_times(&mut c, &locked.token, 3);
    verify_valid_times(&mut c, &other.token, 2);
    request_flush(&mut c);
    wait_for_count(&mut c, other.id, 2);
    assert_eq!(
        get_key(&mut c, locked.id).requests_count,
        0,
        "locked row not written"
    );
    assert_eq!(
        stats(&mut c).pending_keys,
        1,
        "the locked key's uses were put back"
    );

    tx.commit().unwrap();
    request_flush(&mut c);
    wait_for_count(&mut c, locked.id, 3);
}

#[test]
fn usage_stats_report_preloaded_and_counts_that_move() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let a = issue_for(&mut c, "user", "1");
    let b = issue_for(&mut c, "user", "2");

    let s0 = stats(&mut c);
    assert!(s0.preloaded, "{s0:?}");
    assert!(s0.capacity > 0, "{s0:?}");
    assert_eq!(
        (s0.pending_keys, s0.recorded, s0.dropped),
        (0, 0, 0),
        "{s0:?}"
    );

    verify_valid_times(&mut c, &a.token, 4);
    verify_valid_times(&mut c, &b.token, 3);
    let s1 = stats(&mut c);
    assert_eq!(
        (s1.pending_keys, s1.recorded, s1.dropped, s1.flushed),
        (2, 7, 0, s0.flushed),
        "{s1:?}"
    );

    request_flush(&mut c);
    wait_for_count(&mut c, a.id, 4);
    wait_for_count(&mut c, b.id, 3);
    let s2 = stats(&mut c);
    assert_eq!(
        (s2.pending_keys, s2.recorded, s2.dropped, s2.flushed),
        (0, 7, 0, s0.flushed + 7),
        "{s2:?}"
    );
}

#[test]
fn flusher_survives_termination_of_a_verifying_session() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(SHORT));
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    let flusher = wait_for(Duration::from_secs(10), "the flusher", || {
        flusher_pid(&mut c)
    });

    let mut victim = cluster.connect(APP_DB);
    let victim_pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    victim
        .batch_execute("SET statement_timeout = '60s'")
        .unwrap();
    let token = key.token.clone();
    let looping = thread::spawn(move || {
        victim.query_one(
            "SELECT count(*) FROM generate_series(1, 5000000) g \
              WHERE (api_keys.api_key_verify($1::text)).valid",
            &[&token],
        )
    });

    // Mid-way: it has verified a good many times already.
    wait_for(Duration::from_secs(20), "the victim to verify", || {
        (stats(&mut c).recorded >= 2_000).then_some(())
    });
    let terminated: bool = c
        .query_one("SELECT pg_terminate_backend($1)", &[&victim_pid])
        .unwrap()
        .get(0);
    assert!(terminated, "pg_terminate_backend returned false");
    let outcome = looping.join().expect("victim thread");
    match outcome {
        Ok(row) => panic!(
            "the verify loop finished ({} rows) before it was terminated",
            row.get::<_, i64>(0)
        ),
        Err(e) => {
            // 57P01 admin_shutdown, or the connection simply closed.
            let code = e.code().map(|s| s.code().to_owned());
            assert!(
                code.is_none() || code.as_deref() == Some("57P01"),
                "unexpected error from the terminated session: {}",
                describe(&e)
            );
        }
    }

    // No crash-restart: this session survived and the flusher is the same
    // process.
    assert_eq!(flusher_pid(&mut c), Some(flusher), "the flusher changed");

    // Everything the terminated session recorded is flushed, exactly.
    request_flush(&mut c);
    let counted = wait_for(
        Duration::from_secs(10),
        "the terminated session's uses to be flushed",
        || {
            let s = stats(&mut c);
            let n = get_key(&mut c, key.id).requests_count;
            (s.pending_keys == 0 && n == s.recorded).then_some(n)
        },
    );
    assert!(counted >= 2_000, "only {counted} uses were counted");

    // And later uses are still counted.
    verify_valid_times(&mut c, &key.token, 10);
    flush_and_wait(&mut c, key.id, counted + 10);
    assert_eq!(flusher_pid(&mut c), Some(flusher), "the flusher changed");
    assert_eq!(stats(&mut c).dropped, 0);
}

/// Verify N, flush, verify M more without flushing, restart with `mode`:
/// keys intact, requests_count in [N, N+M], counting resumes.
fn restart_keeps_keys_and_bounds_lost_counts(mode: &str) {
    const N: i64 = 20;
    const M: i64 = 7;
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let keys: Vec<IssuedKey> = (0..5)
        .map(|_| issue_for(&mut c, "user", "restart"))
        .collect();
    let key = &keys[0];

    verify_valid_times(&mut c, &key.token, N as usize);
    flush_and_wait(&mut c, key.id, N);
    verify_valid_times(&mut c, &key.token, M as usize);
    let s = stats(&mut c);
    assert_eq!(
        (s.pending_keys, s.recorded),
        (1, N + M),
        "M uses must be pending: {s:?}"
    );
    drop(c);

    cluster.restart(mode);
    let mut c = cluster.connect(APP_DB);
    let kept = get_key(&mut c, key.id).requests_count;
    eprintln!("restart -m {mode}: requests_count {kept} (flushed {N}, pending {M})");
    assert!(
        (N..=N + M).contains(&kept),
        "after restart -m {mode}, requests_count {kept} is outside [{N}, {}]",
        N + M
    );
    let listed = list(&mut c, "user", "restart");
    assert_eq!(listed.len(), keys.len(), "keys lost: {listed:?}");
    assert!(listed.iter().all(|k| k.status == "active"), "{listed:?}");
    for k in &keys {
        let v = verify(&mut c, &k.token);
        v.assert_code("valid");
        assert_eq!(v.key_id, Some(k.id));
    }

    let s = stats(&mut c);
    assert!(s.preloaded, "{s:?}");
    assert_eq!(s.recorded, keys.len() as i64, "fresh counters: {s:?}");
    flush_and_wait(&mut c, key.id, kept + 1);
    for k in &keys[1..] {
        wait_for_count(&mut c, k.id, 1);
    }
}

#[test]
fn fast_restart_keeps_keys_and_loses_at_most_the_unflushed_counts() {
    restart_keeps_keys_and_bounds_lost_counts("fast");
}

#[test]
fn crash_restart_keeps_keys_and_loses_at_most_the_unflushed_counts() {
    restart_keeps_keys_and_bounds_lost_counts("immediate");
}

#[test]
fn flusher_comes_back_after_a_backend_crash_and_counting_resumes() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(SHORT));
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    verify_valid_times(&mut c, &key.token, 3);
    flush_and_wait(&mut c, key.id, 3);
    let flusher = wait_for(Duration::from_secs(10), "the flusher", || {
        flusher_pid(&mut c)
    });

    // SIGKILL a backend: the postmaster reinitialises shared memory and
    // restarts every process, the flusher included.
    let mut victim = cluster.connect(APP_DB);
    let victim_pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim_pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    drop(victim);
    drop(c);

    let mut c = wait_for(
        Duration::from_secs(30),
        "the server after the crash",
        || {
            let mut c = cluster.try_connect(APP_DB).ok()?;
            let pid = flusher_pid(&mut c)?;
            (pid != flusher).then_some(c)
        },
    );
    assert_eq!(get_key(&mut c, key.id).requests_count, 3);
    verify_valid_times(&mut c, &key.token, 4);
    flush_and_wait(&mut c, key.id, 7);
}

#[test]
fn full_usage_table_never_fails_verify_and_accounts_for_every_use() {
    let serial = serial();
    let cluster = Cluster::start(&serial, preloaded(NEVER));
    let mut c = cluster.connect(APP_DB);
    let capacity = stats(&mut c).capacity;
    assert!(capacity > 0);
    let n = i64::from(capacity) + 1_000;
    c.batch_execute(&format!(
        "CREATE TABLE issued AS \
           SELECT k.id, k.token FROM generate_series(1, {n}) g, \
                  LATERAL api_keys.api_key_issue('user', g::text) k"
    ))
    .unwrap_or_else(|e| panic!("issuing {n} keys failed: {}", describe(&e)));

    // More distinct keys than the table holds, within one (1h) interval.
    let valid: i64 = c
        .query_one(
            "SELECT count(*) FROM issued WHERE (api_keys.api_key_verify(token)).valid",
            &[],
        )
        .unwrap_or_else(|e| panic!("verify raised with a full table: {}", describe(&e)))
        .get(0);
    assert_eq!(valid, n, "every verify must stay valid");

    let s = stats(&mut c);
    assert_eq!(s.recorded + s.dropped, n, "every use accounted for: {s:?}");
    // Asks again on every poll: a request made while the early flush (at
    // three quarters full) is still running can be lost, see
    // flush_requested_during_a_flush_is_not_lost.
    let (counted, s) = wait_for(Duration::from_secs(20), "everything flushed", || {
        request_flush(&mut c);
        let s = stats(&mut c);
        let counted: i64 = c
            .query_one(
                "SELECT sum((api_keys.api_key_get(id)).requests_count)::bigint FROM issued",
                &[],
            )
            .unwrap()
            .get(0);
        (s.pending_keys == 0 && counted == s.recorded).then_some((counted, s))
    });
    eprintln!("full table: {n} uses, {counted} counted, {s:?}");
    assert_eq!(counted + s.dropped, n, "{s:?}");
    let over: i64 = c
        .query_one(
            "SELECT count(*) FROM issued WHERE (api_keys.api_key_get(id)).requests_count > 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(over, 0, "a key used once was counted more than once");
}

#[test]
fn track_usage_off_records_nothing_with_or_without_preload() {
    let serial = serial();
    {
        let cluster = Cluster::start(&serial, preloaded(NEVER));
        let mut c = cluster.connect(APP_DB);
        let key = issue_for(&mut c, "user", "1");
        c.batch_execute("SET api_keys.track_usage = off").unwrap();
        verify_valid_times(&mut c, &key.token, 5);
        assert_eq!(stats(&mut c).recorded, 0, "recorded with track_usage off");
        c.batch_execute("SET api_keys.track_usage = on").unwrap();
        verify_valid_times(&mut c, &key.token, 2);
        flush_and_wait(&mut c, key.id, 2);
    }
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut c = cluster.connect(APP_DB);
    let key = issue_for(&mut c, "user", "1");
    c.batch_execute("SET api_keys.track_usage = off").unwrap();
    verify_valid_times(&mut c, &key.token, 1);
    assert_eq!(get_key(&mut c, key.id).last_used_at, None);
}
