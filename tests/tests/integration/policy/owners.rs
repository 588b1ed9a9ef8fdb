//! Owner policies and limits: default scopes, require_name, max_keys,
//! per_owner_limit, `api_key_can_issue` (SPEC §4, §5).

use api_keys_tests::*;
use postgres::Client;

use super::support::*;

fn issue_typed(
    c: &mut Client,
    owner_id: &str,
    key_type: Option<&str>,
    env: Option<&str>,
) -> Result<IssuedKey, postgres::Error> {
    try_issue(
        c,
        "owner_type => 'user', owner_id => $1::text, key_type => $2::text, environment => $3::text",
        &[&owner_id, &key_type, &env],
    )
}

fn can_issue(c: &mut Client, owner_id: &str, key_type: Option<&str>, env: Option<&str>) -> bool {
    c.query_one(
        "SELECT api_keys.api_key_can_issue('user', $1::text, $2::text, $3::text)",
        &[&owner_id, &key_type, &env],
    )
    .unwrap_or_else(|e| panic!("api_key_can_issue failed: {}", describe(&e)))
    .get(0)
}

#[test]
fn default_scopes_apply_when_scopes_are_null() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "team", "default_scopes => '{read,deploy}'");
    let key = issue_for(&mut c, "team", "7");
    assert_eq!(key.scopes, ["read", "deploy"]);
    assert!(issue_for(&mut c, "user", "7").scopes.is_empty());
}

// SPEC: only NULL means "use the defaults"; an explicit empty array is kept.
#[test]
fn explicit_empty_scopes_are_not_replaced_by_defaults() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "team", "default_scopes => '{read}'");
    let key = issue(
        &mut c,
        "owner_type => 'team', owner_id => '7', scopes => '{}'",
        &[],
    );
    assert!(key.scopes.is_empty(), "{:?}", key.scopes);
}

#[test]
fn require_name_rejects_unnamed_key() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "team", "require_name => true");
    let err = try_issue(&mut c, "owner_type => 'team', owner_id => '7'", &[]);
    assert_api_error(err, "22023", "name_required");
    assert!(list(&mut c, "team", "7").is_empty());
    issue(
        &mut c,
        "owner_type => 'team', owner_id => '7', name => 'ci'",
        &[],
    );
}

#[test]
fn max_keys_is_enforced_with_key_limit_reached() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 2");
    issue_typed(&mut c, "1", None, None).unwrap();
    issue_typed(&mut c, "1", None, None).unwrap();
    assert_api_error(
        issue_typed(&mut c, "1", None, None),
        "23514",
        "key_limit_reached",
    );
    assert_eq!(list(&mut c, "user", "1").len(), 2);
    issue_typed(&mut c, "2", None, None).expect("another owner has its own limit");
    issue_for(&mut c, "team", "1");
}

#[test]
fn revoked_key_frees_a_max_keys_slot() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 1");
    let first = issue_typed(&mut c, "1", None, None).unwrap();
    assert_api_error(
        issue_typed(&mut c, "1", None, None),
        "23514",
        "key_limit_reached",
    );
    assert!(revoke(&mut c, first.id));
    issue_typed(&mut c, "1", None, None).expect("revoked key frees its slot");
}

#[test]
fn expired_key_frees_a_max_keys_slot() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 1");
    issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    assert_api_error(
        issue_typed(&mut c, "1", None, None),
        "23514",
        "key_limit_reached",
    );
    wait_for_one_second_expiry();
    issue_typed(&mut c, "1", None, None).expect("expired key frees its slot");
}

#[test]
fn per_owner_limit_is_enforced_with_type_limit_reached() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    issue_typed(&mut c, "1", Some("secret"), None).unwrap();
    let err = issue_typed(&mut c, "1", Some("secret"), None);
    assert_api_error(err, "23514", "type_limit_reached");
    issue_typed(&mut c, "2", Some("secret"), None).expect("per owner");
}

// SPEC: per_owner_limit belongs to the type, so it counts that type's keys only.
#[test]
fn per_owner_limit_ignores_keys_of_other_types() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    issue_typed(&mut c, "1", None, None).unwrap();
    issue_typed(&mut c, "1", Some("secret"), None).expect("untyped key does not count");
}

#[test]
fn per_owner_limit_counts_per_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    define_test_and_live(&mut c);
    issue_typed(&mut c, "1", Some("secret"), Some("sandbox")).unwrap();
    issue_typed(&mut c, "1", Some("secret"), Some("production")).unwrap();
    for env in ["sandbox", "production"] {
        let err = issue_typed(&mut c, "1", Some("secret"), Some(env));
        assert_api_error(err, "23514", "type_limit_reached");
    }
}

#[test]
fn revoked_key_frees_a_per_owner_limit_slot() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    let first = issue_typed(&mut c, "1", Some("secret"), None).unwrap();
    assert!(revoke(&mut c, first.id));
    issue_typed(&mut c, "1", Some("secret"), None).expect("revoked key frees its slot");
}

#[test]
fn max_keys_is_checked_before_per_owner_limit() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 1");
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    issue_typed(&mut c, "1", Some("secret"), None).unwrap();
    let err = issue_typed(&mut c, "1", Some("secret"), None);
    assert_api_error(err, "23514", "key_limit_reached");
}

#[test]
fn max_keys_counts_keys_of_every_type_and_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 2");
    define_type(&mut c, "secret", "sk", "");
    define_test_and_live(&mut c);
    issue_typed(&mut c, "1", Some("secret"), Some("sandbox")).unwrap();
    issue_typed(&mut c, "1", None, Some("production")).unwrap();
    let err = issue_typed(&mut c, "1", Some("secret"), Some("production"));
    assert_api_error(err, "23514", "key_limit_reached");
}

#[test]
fn can_issue_reflects_limits() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "max_keys => 2");
    define_type(&mut c, "secret", "sk", "per_owner_limit => 1");
    assert!(can_issue(&mut c, "1", Some("secret"), None));
    issue_typed(&mut c, "1", Some("secret"), None).unwrap();
    assert!(
        !can_issue(&mut c, "1", Some("secret"), None),
        "type limit reached"
    );
    assert!(can_issue(&mut c, "1", None, None));
    issue_typed(&mut c, "1", None, None).unwrap();
    assert!(!can_issue(&mut c, "1", None, None), "max_keys reached");
    assert!(can_issue(&mut c, "2", None, None));
}

#[test]
fn can_issue_raises_for_unknown_type_or_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let err = c.query_one(
        "SELECT api_keys.api_key_can_issue('user', '1', 'nope', 'sandbox')",
        &[],
    );
    assert_api_error(err, "22023", "unknown_key_type");
    let err = c.query_one(
        "SELECT api_keys.api_key_can_issue('user', '1', NULL, 'staging')",
        &[],
    );
    assert_api_error(err, "22023", "unknown_environment");
}
