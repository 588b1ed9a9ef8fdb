//! The verify code matrix and its check order (SPEC §5 Verify):
//! malformed → not_found → revoked → expired → environment_mismatch →
//! insufficient_scope → valid; first failure wins.

use api_keys_tests::*;
use postgres::Client;

use super::support::*;

/// Strict isolation on, environments sandbox(test)/production(live), and a
/// type with a ceiling.
fn strict_setup(db: &TestDb) -> Client {
    let mut c = db.connect();
    define_test_and_live(&mut c);
    define_type(&mut c, "secret", "sk", "permissions => '{read,write}'");
    strict_isolation_on(&mut c);
    c
}

fn issue_live(c: &mut Client, expiry: &str) -> IssuedKey {
    let sep = if expiry.is_empty() { "" } else { ", " };
    issue(
        c,
        &format!(
            "owner_type => 'user', owner_id => '1', key_type => 'secret', \
             environment => 'production', scopes => '{{read}}'{sep}{expiry}"
        ),
        &[],
    )
}

const ONE_SECOND: &str = "expires_at => now() + interval '1 second'";

/// Verifies in the wrong environment and requiring a missing scope.
fn verify_everything_wrong(c: &mut Client, token: &str) -> Verification {
    verify_sql(
        c,
        "$1::text, required_scopes => '{write}', environment => 'sandbox'",
        &[&token],
    )
}

#[test]
fn every_code_is_produced() {
    let db = TestDb::new();
    let mut c = strict_setup(&db);
    let good = issue_live(&mut c, "");
    let revoked = issue_live(&mut c, "");
    revoke(&mut c, revoked.id);
    let expiring = issue_live(&mut c, ONE_SECOND);
    wait_for_one_second_expiry();
    let cases = [
        (mutate_at(&good.token, 12), None, "production", "malformed"),
        (forge_token("sk_live"), None, "production", "not_found"),
        (revoked.token.clone(), None, "production", "revoked"),
        (expiring.token.clone(), None, "production", "expired"),
        (good.token.clone(), None, "sandbox", "environment_mismatch"),
        (
            good.token.clone(),
            Some("write"),
            "production",
            "insufficient_scope",
        ),
        (good.token.clone(), Some("read"), "production", "valid"),
    ];
    for (token, scope, env, code) in cases {
        let scopes: Vec<&str> = scope.into_iter().collect();
        let v = verify_sql(
            &mut c,
            "$1::text, required_scopes => $2::text[], environment => $3::text",
            &[&token, &scopes, &env],
        );
        v.assert_code(code);
        if code == "valid" || code == "insufficient_scope" {
            assert_eq!(v.key_id, Some(good.id), "{code}");
            assert_eq!(v.environment.as_deref(), Some("production"));
            assert_eq!(v.key_type.as_deref(), Some("secret"));
        } else {
            v.assert_identity_null();
        }
    }
}

#[test]
fn malformed_wins_over_everything() {
    let db = TestDb::new();
    let mut c = strict_setup(&db);
    let key = issue_live(&mut c, ONE_SECOND);
    revoke(&mut c, key.id);
    wait_for_one_second_expiry();
    let v = verify_everything_wrong(&mut c, &mutate_at(&key.token, key.token.len() - 1));
    v.assert_code("malformed");
}

#[test]
fn revoked_wins_over_expired() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    assert!(revoke(&mut c, key.id));
    wait_for_one_second_expiry();
    verify(&mut c, &key.token).assert_code("revoked");
}

#[test]
fn revoked_wins_over_environment_and_scope() {
    let db = TestDb::new();
    let mut c = strict_setup(&db);
    let key = issue_live(&mut c, "");
    revoke(&mut c, key.id);
    let v = verify_everything_wrong(&mut c, &key.token);
    v.assert_code("revoked");
    v.assert_identity_null();
}

#[test]
fn expired_wins_over_environment_mismatch() {
    let db = TestDb::new();
    let mut c = strict_setup(&db);
    let key = issue_live(&mut c, ONE_SECOND);
    wait_for_one_second_expiry();
    verify_env(&mut c, &key.token, "sandbox").assert_code("expired");
}

#[test]
fn expired_wins_over_insufficient_scope() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    wait_for_one_second_expiry();
    let v = verify_scopes(&mut c, &key.token, &["admin"]);
    v.assert_code("expired");
    v.assert_identity_null();
}

#[test]
fn environment_mismatch_wins_over_insufficient_scope() {
    let db = TestDb::new();
    let mut c = strict_setup(&db);
    let key = issue_live(&mut c, "");
    let v = verify_everything_wrong(&mut c, &key.token);
    v.assert_code("environment_mismatch");
    v.assert_identity_null();
}

#[test]
fn expired_means_expires_at_not_after_now() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    let expires_at = key.expires_at.expect("expiry");
    verify(&mut c, &key.token).assert_code("valid");
    wait_for_one_second_expiry();
    let now = db_now(&mut c);
    assert!(expires_at <= now);
    verify(&mut c, &key.token).assert_code("expired");
}
