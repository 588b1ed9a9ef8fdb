//! `api_key_rotate(key_id, grace, expires_in)`: a replacement key, the old
//! one valid through the grace period, `replaced_by`, exempt from limits.

use std::sync::{Arc, Barrier};
use std::thread;

use api_keys_tests::*;
use chrono::{DateTime, Utc};
use postgres::Client;
use uuid::Uuid;

fn try_rotate(c: &mut Client, id: Uuid, args: &str) -> Result<IssuedKey, postgres::Error> {
    c.query_one(
        &format!("SELECT * FROM api_keys.api_key_rotate($1::uuid{args})"),
        &[&id],
    )
    .map(|r| IssuedKey::from_row(&r))
}

fn rotate(c: &mut Client, id: Uuid, args: &str) -> IssuedKey {
    try_rotate(c, id, args).unwrap_or_else(|e| panic!("rotate{args}: {}", describe(&e)))
}

#[test]
fn with_a_60_second_grace_both_tokens_verify_and_the_old_one_expires_then() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', name => 'ci', scopes => '{read,write}', \
         metadata => '{\"team\": \"a\"}'",
        &[],
    );
    let mut tx = c.transaction().unwrap();
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).unwrap().get(0);
    let new = IssuedKey::from_row(
        &tx.query_one(
            "SELECT * FROM api_keys.api_key_rotate($1, interval '60 seconds')",
            &[&old.id],
        )
        .unwrap(),
    );
    tx.commit().unwrap();
    assert_ne!(new.token, old.token);
    assert_ne!(new.id, old.id);
    verify(&mut c, &old.token).assert_code("valid");
    let v = verify(&mut c, &new.token);
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(new.id));
    let old_info = get_key(&mut c, old.id);
    assert_eq!(old_info.status, "active");
    assert_eq!(old_info.replaced_by, Some(new.id));
    assert_eq!(old_info.revoked_at, None);
    assert_eq!(
        old_info.expires_at,
        Some(now + chrono::Duration::seconds(60)),
        "the old key expires exactly at the rotation's now() + grace"
    );
    let new_info = get_key(&mut c, new.id);
    assert_eq!(
        (new_info.owner_type.as_str(), new_info.owner_id.as_str()),
        ("user", "1")
    );
    assert_eq!(new_info.name.as_deref(), Some("ci"));
    assert_eq!(new_info.scopes, ["read", "write"]);
    assert_eq!(new_info.metadata, serde_json::json!({"team": "a"}));
    assert_eq!(new_info.expires_at, None, "the old key had no expiry");
    assert_eq!(new_info.replaced_by, None);
    assert!(!new_info.mfa && !new_info.imported);
}

// The same rule with a grace short enough to wait out: the old key answers
// `expired` once now() passes now-at-rotation + grace, the new one stays valid.
#[test]
fn the_old_key_is_expired_once_the_grace_has_passed() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    let new = rotate(&mut c, old.id, ", interval '1 second'");
    verify(&mut c, &old.token).assert_code("valid");
    wait_for_one_second_expiry();
    verify(&mut c, &old.token).assert_code("expired");
    verify(&mut c, &new.token).assert_code("valid");
    assert_eq!(get_key(&mut c, old.id).status, "expired");
}

#[test]
fn with_grace_zero_the_old_key_is_revoked_at_once() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    let new = rotate(&mut c, old.id, "");
    verify(&mut c, &old.token).assert_code("revoked");
    verify(&mut c, &new.token).assert_code("valid");
    let info = get_key(&mut c, old.id);
    assert_eq!(info.status, "revoked");
    assert_eq!(info.replaced_by, Some(new.id));
    let explicit = issue_for(&mut c, "user", "1");
    rotate(&mut c, explicit.id, ", interval '0 seconds'");
    verify(&mut c, &explicit.token).assert_code("revoked");
}

#[test]
fn the_replacement_keeps_the_lifetime_length_or_takes_expires_in() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_in => '30_days'",
        &[],
    );
    let mut tx = c.transaction().unwrap();
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).unwrap().get(0);
    let new = IssuedKey::from_row(
        &tx.query_one("SELECT * FROM api_keys.api_key_rotate($1)", &[&old.id])
            .unwrap(),
    );
    tx.commit().unwrap();
    let lifetime = old.expires_at.unwrap() - old.created_at;
    assert_eq!(new.expires_at, Some(now + lifetime));
    let other = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_in => '30_days'",
        &[],
    );
    let shorter = rotate(&mut c, other.id, ", expires_in => '7_days'");
    let days = (shorter.expires_at.unwrap() - shorter.created_at).num_days();
    assert_eq!(days, 7);
    let never = issue_for(&mut c, "user", "1");
    let r = rotate(&mut c, never.id, ", expires_in => 'no_expiration'");
    assert_eq!(r.expires_at, None);
    let bad = issue_for(&mut c, "user", "1");
    assert_api_error(
        try_rotate(&mut c, bad.id, ", expires_in => ''"),
        "22023",
        "invalid_expiry",
    );
    verify(&mut c, &bad.token).assert_code("valid");
}

#[test]
fn the_replacement_keeps_type_and_environment_and_their_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    configure(
        &mut c,
        "api_keys.api_key_type_define('secret', 'sk', '{read,write}')",
    );
    configure(
        &mut c,
        "api_keys.api_key_environment_define('live', 'live')",
    );
    let old = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', environment => 'live', \
         scopes => '{read}'",
        &[],
    );
    let new = rotate(&mut c, old.id, "");
    assert!(new.token.starts_with("sk_live_"), "{}", new.token);
    assert_eq!(new.key_type.as_deref(), Some("secret"));
    assert_eq!(new.environment.as_deref(), Some("live"));
    assert_eq!(new.scopes, ["read"]);
    // an untyped key keeps the prefix it was issued with, whatever the
    // rotating session's api_keys.token_prefix
    c.batch_execute("SET api_keys.token_prefix = 'acme'")
        .unwrap();
    let acme = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', environment => 'live'",
        &[],
    );
    c.batch_execute("RESET api_keys.token_prefix").unwrap();
    let r = rotate(&mut c, acme.id, "");
    assert!(r.token.starts_with("acme_live_"), "{}", r.token);
    verify(&mut c, &r.token).assert_code("valid");
}

#[test]
fn rotating_at_the_owners_limit_works() {
    let db = TestDb::new();
    let mut c = db.connect();
    configure(
        &mut c,
        "api_keys.api_key_owner_policy_set('user', max_keys => 1)",
    );
    configure(
        &mut c,
        "api_keys.api_key_type_define('secret', 'sk', per_owner_limit => 1)",
    );
    let old = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret'",
        &[],
    );
    assert_api_error(
        try_issue(&mut c, "owner_type => 'user', owner_id => '1'", &[]),
        "23514",
        "key_limit_reached",
    );
    let new = rotate(&mut c, old.id, ", interval '60 seconds'");
    verify(&mut c, &old.token).assert_code("valid");
    verify(&mut c, &new.token).assert_code("valid");
    // the grace does not open room for another key
    assert_api_error(
        try_issue(&mut c, "owner_type => 'user', owner_id => '1'", &[]),
        "23514",
        "key_limit_reached",
    );
    rotate(&mut c, new.id, "");
}

#[test]
fn two_concurrent_rotations_of_one_key_make_one_replacement() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    for round in 0..5 {
        let key = if round == 0 {
            old.clone()
        } else {
            issue_for(&mut c, "user", "1")
        };
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let mut c = db.connect();
                let barrier = Arc::clone(&barrier);
                let id = key.id;
                thread::spawn(move || {
                    barrier.wait();
                    try_rotate(&mut c, id, ", interval '60 seconds'").map_err(|e| {
                        let db = e.as_db_error().expect("a server error");
                        (db.code().code().to_owned(), db.message().to_owned())
                    })
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(ok.len(), 1, "exactly one rotation wins: {outcomes:?}");
        for o in &outcomes {
            if let Err((state, message)) = o {
                assert_eq!(state, "22023", "{message}");
                assert!(
                    message.starts_with("api_keys: invalid_argument:")
                        && message.contains("already rotated"),
                    "{message}"
                );
            }
        }
        let replacements: i64 = c
            .query_one(
                "SELECT count(*) FROM api_keys.audit_log WHERE action = 'rotate' AND key_id = $1",
                &[&key.id],
            )
            .unwrap()
            .get(0);
        assert_eq!(replacements, 1);
        assert_eq!(get_key(&mut c, key.id).replaced_by, Some(ok[0].id));
        // one replacement key for this key, and nothing else new
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM api_keys.audit_log WHERE action = 'issue' \
                  AND details->>'rotated_from' = $1::text",
                &[&key.id.to_string()],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }
}

#[test]
fn a_non_revocable_key_is_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    configure(
        &mut c,
        "api_keys.api_key_type_define('service', 'svc', revocable => false)",
    );
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'service'",
        &[],
    );
    let before = table_row_counts(&mut c);
    assert_api_error(try_rotate(&mut c, key.id, ""), "42501", "key_not_revocable");
    assert_eq!(table_row_counts(&mut c), before);
    verify(&mut c, &key.token).assert_code("valid");
}

#[test]
fn inactive_and_unknown_keys_are_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    let revoked = issue_for(&mut c, "user", "1");
    revoke(&mut c, revoked.id);
    assert_api_error(
        try_rotate(&mut c, revoked.id, ""),
        "22023",
        "invalid_argument",
    );
    let expiring = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    wait_for_one_second_expiry();
    assert_api_error(
        try_rotate(&mut c, expiring.id, ""),
        "22023",
        "invalid_argument",
    );
    assert_api_error(
        try_rotate(&mut c, Uuid::new_v4(), ""),
        "P0002",
        "key_not_found",
    );
    assert_api_error(
        c.query_one("SELECT api_keys.api_key_rotate(NULL)", &[]),
        "22023",
        "invalid_argument",
    );
}

#[test]
fn bad_grace_is_invalid_argument_and_changes_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let before = table_row_counts(&mut c);
    for grace in [
        "NULL::interval",
        "interval '-1 second'",
        "interval '-1 month'",
        "interval '91 days'",
        "interval '1000000 years'",
        "interval '178000000 years'",
    ] {
        assert_api_error(
            try_rotate(&mut c, key.id, &format!(", {grace}")),
            "22023",
            "invalid_argument",
        );
    }
    assert_eq!(
        table_row_counts(&mut c),
        before,
        "a refused rotation left rows"
    );
    verify(&mut c, &key.token).assert_code("valid");
    assert_eq!(get_key(&mut c, key.id).replaced_by, None);
    rotate(&mut c, key.id, ", interval '90 days'");
}

#[test]
fn rotation_is_audited_without_a_token() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    let new = rotate(&mut c, old.id, ", interval '30 seconds'");
    let rows = c
        .query(
            "SELECT action, key_id, details::text FROM api_keys.audit_log \
              WHERE action IN ('rotate', 'issue') ORDER BY id",
            &[],
        )
        .unwrap();
    let last = &rows[rows.len() - 2..];
    assert_eq!(last[0].get::<_, String>(0), "rotate");
    assert_eq!(last[0].get::<_, Uuid>(1), old.id);
    assert!(last[0].get::<_, String>(2).contains(&new.id.to_string()));
    assert_eq!(last[1].get::<_, String>(0), "issue");
    assert_eq!(last[1].get::<_, Uuid>(1), new.id);
    for r in &rows {
        let details: String = r.get(2);
        assert!(!details.contains(&new.token) && !details.contains(&old.token));
    }
}
