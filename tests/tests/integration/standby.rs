//! Verify on a hot standby and in read-only transactions (SPEC §5: "Verify is
//! read-only on the hot path: it works inside READ ONLY transactions and on a
//! hot standby"; §7: a standby counts nothing).
//!
//! Each test owns a primary and, where needed, a streaming replica made with
//! `pg_basebackup -R -X stream` (see `api_keys_tests::cluster`); they run one
//! at a time.

use std::thread;
use std::time::Duration;

use api_keys_tests::cluster::{serial, wait_for, Cluster, Options, Serial, APP_DB};
use api_keys_tests::usage::{stats, usage_flush, wait_for_count};
use api_keys_tests::*;
use postgres::Client;

/// Fields drop in declaration order: the standby stops before its primary.
struct Replicated<'s> {
    standby: Cluster<'s>,
    primary: Cluster<'s>,
}

impl<'s> Replicated<'s> {
    fn start(serial: &'s Serial, options: Options) -> Self {
        let primary = Cluster::start(serial, options);
        let standby = primary.start_standby();
        Replicated { standby, primary }
    }

    fn preloaded(serial: &'s Serial) -> Self {
        Self::start(
            serial,
            Options::preloaded().set("api_keys.usage_flush_interval", "200ms"),
        )
    }

    fn primary(&self) -> Client {
        self.primary.connect(APP_DB)
    }

    fn standby(&self) -> Client {
        self.standby.connect(APP_DB)
    }

    #[track_caller]
    fn wait_for_replay(&self) {
        self.primary.wait_for_replay(&self.standby);
    }
}

/// (preloaded, pending keys, recorded) from api_key_usage_stats().
fn usage_stats(c: &mut Client) -> (bool, i32, i64) {
    let s = stats(c);
    (s.preloaded, s.pending_keys, s.recorded)
}

#[test]
fn standby_is_a_read_only_replica_in_recovery() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut s = pair.standby();
    let row = s
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
            &[],
        )
        .unwrap();
    assert_eq!(
        (row.get::<_, bool>(0), row.get::<_, String>(1)),
        (true, "on".into())
    );
    let err = s
        .batch_execute("SELECT api_keys.api_key_issue('user', '1')")
        .expect_err("issuing on a standby must fail");
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("25006"),
        "read_only_sql_transaction expected: {}",
        describe(&err)
    );
}

#[test]
fn standby_verifies_key_issued_on_primary_as_valid_with_identity() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut p = pair.primary();
    let key = issue(
        &mut p,
        "owner_type => 'org', owner_id => '7', name => 'replica', \
         scopes => '{read,write}', metadata => '{\"plan\":\"pro\"}', expires_in => '30_days'",
        &[],
    );
    let on_primary = verify(&mut p, &key.token);
    on_primary.assert_code("valid");
    pair.wait_for_replay();

    let mut s = pair.standby();
    let v = verify(&mut s, &key.token);
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(key.id));
    assert_eq!(v.owner_type.as_deref(), Some("org"));
    assert_eq!(v.owner_id.as_deref(), Some("7"));
    assert_eq!(v.name.as_deref(), Some("replica"));
    assert_eq!(v.scopes, Some(vec!["read".into(), "write".into()]));
    assert_eq!(v.metadata, Some(serde_json::json!({"plan": "pro"})));
    assert_eq!(v.expires_at, key.expires_at);
    assert_eq!(format!("{v:?}"), format!("{on_primary:?}"));

    let scoped = verify_scopes(&mut s, &key.token, &["read"]);
    scoped.assert_code("valid");
    let missing = verify_scopes(&mut s, &key.token, &["admin"]);
    missing.assert_code("insufficient_scope");
    assert_eq!(
        missing.key_id,
        Some(key.id),
        "identity for insufficient_scope"
    );
}

#[test]
fn standby_answers_not_found_and_malformed() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut p = pair.primary();
    let key = issue_for(&mut p, "user", "1");
    pair.wait_for_replay();

    let mut s = pair.standby();
    let forged = forge_token("ak");
    let v = verify(&mut s, &forged);
    v.assert_code("not_found");
    v.assert_identity_null();
    let v = verify(&mut s, &mutate_at(&key.token, key.token.len() - 1));
    v.assert_code("malformed");
    v.assert_identity_null();
    for junk in ["", "ak_", "not a token", &"x".repeat(100_000)] {
        verify(&mut s, junk).assert_code("malformed");
    }
    let v = verify_sql(&mut s, "NULL::text", &[]);
    v.assert_code("malformed");
}

/// The other never-raise functions of a token (SPEC §5: "never raise") on a
/// standby, where nothing may assign a transaction id: the environment of a
/// token was read with an SPI "update" that did, and raised there.
#[test]
fn standby_answers_mask_and_environment_of_without_raising() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut p = pair.primary();
    p.batch_execute("SELECT api_keys.api_key_environment_define('live', 'live')")
        .unwrap();
    let token: String = p
        .query_one(
            "SELECT (api_keys.api_key_issue('user', '1', environment => 'live')).token",
            &[],
        )
        .unwrap()
        .get(0);
    pair.wait_for_replay();

    let mut s = pair.standby();
    let row = s
        .query_one(
            "SELECT api_keys.api_key_environment_of($1), api_keys.api_key_mask($1), \
                    api_keys.api_key_environment_of('not a token'), \
                    pg_current_xact_id_if_assigned() IS NULL",
            &[&token],
        )
        .expect("environment_of and mask answer on a standby");
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("live"));
    assert!(row.get::<_, Option<String>>(1).is_some(), "masked");
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert!(row.get::<_, bool>(3), "no transaction id assigned");

    // and on the primary, in a READ ONLY transaction, no id is spent
    let mut tx = p.build_transaction().read_only(true).start().unwrap();
    let row = tx
        .query_one(
            "SELECT api_keys.api_key_environment_of($1), pg_current_xact_id_if_assigned() IS NULL",
            &[&token],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("live"));
    assert!(row.get::<_, bool>(1), "no transaction id assigned");
    tx.rollback().unwrap();
}

#[test]
fn revocation_on_primary_is_seen_on_standby_after_replay() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut p = pair.primary();
    let key = issue_for(&mut p, "user", "1");
    let other = issue_for(&mut p, "user", "1");
    pair.wait_for_replay();
    let mut s = pair.standby();
    verify(&mut s, &key.token).assert_code("valid");

    assert!(revoke(&mut p, key.id));
    pair.wait_for_replay();
    let v = verify(&mut s, &key.token);
    v.assert_code("revoked");
    v.assert_identity_null();
    // Only that key.
    verify(&mut s, &other.token).assert_code("valid");
    assert_eq!(get_key(&mut s, key.id).status, "revoked");
}

#[test]
fn standby_counts_nothing_and_never_errors() {
    let serial = serial();
    let pair = Replicated::preloaded(&serial);
    let mut p = pair.primary();
    let key = issue(
        &mut p,
        "owner_type => 'user', owner_id => '1', scopes => '{read}'",
        &[],
    );
    verify(&mut p, &key.token).assert_code("valid");
    wait_for(Duration::from_secs(10), "the primary's flusher", || {
        usage_flush(&mut p).then_some(())
    });
    wait_for_count(&mut p, key.id, 1);
    pair.wait_for_replay();

    let mut s = pair.standby();
    assert_eq!(usage_stats(&mut s), (true, 0, 0), "standby stats at start");
    for _ in 0..50 {
        verify(&mut s, &key.token).assert_code("valid");
        verify_scopes(&mut s, &key.token, &["read"]).assert_code("valid");
        verify_env(&mut s, &key.token, "live").assert_code("valid");
    }
    let mut tx = s.build_transaction().read_only(true).start().unwrap();
    verify(&mut tx, &key.token).assert_code("valid");
    tx.commit().unwrap();

    // Nothing recorded on the standby, nothing to flush there, no flusher.
    assert_eq!(usage_stats(&mut s), (true, 0, 0), "standby stats after use");
    assert!(
        !usage_flush(&mut s),
        "api_key_usage_flush() on a standby: no flusher runs in recovery"
    );
    let flushers: i64 = s
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'api_keys usage flush%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(flushers, 0);

    // And the primary's count did not move because of them.
    assert!(usage_flush(&mut p));
    thread::sleep(Duration::from_millis(500));
    let info = get_key(&mut p, key.id);
    assert_eq!(info.requests_count, 1, "{info:?}");
    assert_eq!(
        usage_stats(&mut p).2,
        1,
        "primary recorded only its own use"
    );
    pair.wait_for_replay();
    assert_eq!(get_key(&mut s, key.id).requests_count, 1);
}

#[test]
fn standby_without_preload_verifies_and_writes_nothing() {
    let serial = serial();
    let pair = Replicated::start(&serial, Options::not_preloaded());
    let mut p = pair.primary();
    let key = issue_for(&mut p, "user", "1");
    pair.wait_for_replay();

    let mut s = pair.standby();
    assert_eq!(usage_stats(&mut s), (false, 0, 0));
    for _ in 0..3 {
        verify(&mut s, &key.token).assert_code("valid");
    }
    // Not even the fallback's last_used_at write is attempted.
    pair.wait_for_replay();
    assert_eq!(get_key(&mut s, key.id).last_used_at, None);
    assert_eq!(get_key(&mut p, key.id).last_used_at, None);
}

#[test]
fn verify_in_read_only_transaction_on_primary_is_valid_and_counted() {
    let serial = serial();
    let primary = Cluster::start(
        &serial,
        Options::preloaded().set("api_keys.usage_flush_interval", "200ms"),
    );
    let mut c = primary.connect(APP_DB);
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', scopes => '{read}'",
        &[],
    );

    let mut tx = c.build_transaction().read_only(true).start().unwrap();
    let v = verify(&mut tx, &key.token);
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(key.id));
    verify_scopes(&mut tx, &key.token, &["write"]).assert_code("insufficient_scope");
    verify(&mut tx, &forge_token("ak")).assert_code("not_found");
    tx.commit().expect("commit of the read-only transaction");

    let mut tx = c
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::Serializable)
        .deferrable(true)
        .start()
        .unwrap();
    verify(&mut tx, &key.token).assert_code("valid");
    tx.commit().unwrap();

    c.batch_execute("SET default_transaction_read_only = on")
        .unwrap();
    verify(&mut c, &key.token).assert_code("valid");
    c.batch_execute("SET default_transaction_read_only = off")
        .unwrap();

    // Preloaded, the three valid read-only uses are counted in shared memory.
    assert!(usage_flush(&mut c));
    wait_for_count(&mut c, key.id, 3);
}
