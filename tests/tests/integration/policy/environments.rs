//! Environments: token segment, GUC, definition rules, strict isolation
//! (SPEC §4, §5).

use api_keys_tests::*;

use super::support::*;

fn issue_in(c: &mut postgres::Client, environment: &str) -> IssuedKey {
    issue(
        c,
        "owner_type => 'user', owner_id => '1', environment => $1::text",
        &[&environment],
    )
}

#[test]
fn environment_segment_follows_default_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    assert_eq!(prefix_of(&key.token), "ak_live", "{}", key.token);
    assert_eq!(key.environment.as_deref(), Some("production"));
    assert!(checksum_ok(&key.token) && scanner_regex().is_match(&key.token));
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    assert_eq!(v.environment.as_deref(), Some("production"));
}

#[test]
fn environment_of_returns_environment_name() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let live = issue_in(&mut c, "production");
    let test = issue_in(&mut c, "sandbox");
    assert_eq!(
        environment_of(&mut c, &live.token).as_deref(),
        Some("production")
    );
    assert_eq!(
        environment_of(&mut c, &test.token).as_deref(),
        Some("sandbox")
    );
}

// SPEC: the conflict is a bad argument, hence `invalid_argument`.
#[test]
fn two_environments_cannot_share_a_segment() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_environment(&mut c, "production", "live");
    let err = try_define_environment(&mut c, "prod2", Some("live"));
    assert_api_error(err, "22023", "invalid_argument");
}

#[test]
fn environment_segment_is_required_and_one_segment() {
    let db = TestDb::new();
    let mut c = db.connect();
    for segment in [None, Some(""), Some("Live"), Some("li_ve")] {
        let err = try_define_environment(&mut c, "production", segment);
        assert_api_error(err, "22023", "invalid_argument");
    }
}

#[test]
fn once_environments_exist_a_key_needs_one() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let err = try_issue(&mut c, "owner_type => 'user', owner_id => '1'", &[]);
    assert_api_error(err, "22023", "unknown_environment");
    assert!(list(&mut c, "user", "1").is_empty());
}

// SPEC: environments are referred to by name; a segment ("live") is not a name.
#[test]
fn undefined_environment_name_is_unknown_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    for name in ["staging", "live"] {
        let err = try_issue(
            &mut c,
            "owner_type => 'user', owner_id => '1', environment => $1::text",
            &[&name],
        );
        assert_api_error(err, "22023", "unknown_environment");
    }
}

#[test]
fn environment_guc_is_used_when_no_argument_given() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    c.batch_execute("SET api_keys.environment = 'production'")
        .unwrap();
    let key = issue_for(&mut c, "user", "1");
    assert_eq!(key.environment.as_deref(), Some("production"));
    assert_eq!(prefix_of(&key.token), "ak_live");
}

#[test]
fn environment_argument_wins_over_guc() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    c.batch_execute("SET api_keys.environment = 'production'")
        .unwrap();
    let key = issue_in(&mut c, "sandbox");
    assert_eq!(key.environment.as_deref(), Some("sandbox"));
    assert_eq!(prefix_of(&key.token), "ak_test");
}

#[test]
fn key_issued_before_environments_keeps_none_and_passes_strict_isolation() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    define_test_and_live(&mut c);
    strict_isolation_on(&mut c);
    assert_eq!(get_key(&mut c, old.id).environment, None);
    verify_env(&mut c, &old.token, "production").assert_code("valid");
    verify(&mut c, &old.token).assert_code("valid");
}

#[test]
fn without_strict_isolation_environment_does_not_matter() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    verify_env(&mut c, &key.token, "sandbox").assert_code("valid");
}

#[test]
fn strict_isolation_rejects_other_environment_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    strict_isolation_on(&mut c);
    let v = verify_env(&mut c, &key.token, "sandbox");
    v.assert_code("environment_mismatch");
    v.assert_identity_null();
    verify_env(&mut c, &key.token, "production").assert_code("valid");
}

#[test]
fn strict_isolation_uses_argument_before_guc() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    strict_isolation_on(&mut c);
    c.batch_execute("SET api_keys.environment = 'sandbox'")
        .unwrap();
    verify_env(&mut c, &key.token, "production").assert_code("valid");
    verify(&mut c, &key.token).assert_code("environment_mismatch");
}

#[test]
fn strict_isolation_falls_back_to_guc() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    strict_isolation_on(&mut c);
    c.batch_execute("SET api_keys.environment = 'production'")
        .unwrap();
    verify(&mut c, &key.token).assert_code("valid");
}

#[test]
fn strict_isolation_without_current_environment_fails_closed() {
    let db = TestDb::new();
    let mut c = db.connect();
    let legacy = issue_for(&mut c, "user", "1");
    define_test_and_live(&mut c);
    let key = issue_in(&mut c, "production");
    strict_isolation_on(&mut c);
    c.batch_execute("RESET api_keys.environment").unwrap();
    verify(&mut c, &key.token).assert_code("environment_mismatch");
    verify(&mut c, &legacy.token).assert_code("valid");
}

#[test]
fn non_superuser_cannot_turn_off_strict_isolation() {
    let db = TestDb::new();
    let mut su = db.connect();
    define_test_and_live(&mut su);
    let key = issue_in(&mut su, "production");
    su.batch_execute(&format!(
        "ALTER DATABASE {} SET api_keys.strict_environment_isolation = on",
        db.name()
    ))
    .unwrap();
    let role = db.create_login_role();
    role.grant_role("api_keys_admin");
    let mut c = role.connect();
    assert_permission_denied(c.batch_execute("SET api_keys.strict_environment_isolation = off"));
    let set_config = c.query(
        "SELECT set_config('api_keys.strict_environment_isolation', 'off', false)",
        &[],
    );
    assert_permission_denied(set_config);
    verify_env(&mut c, &key.token, "sandbox").assert_code("environment_mismatch");
}
