//! Key types: prefixes, public/secret, definition rules (SPEC §4).

use api_keys_tests::*;

use super::support::*;

#[test]
fn typed_key_token_starts_with_type_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret'",
        &[],
    );
    assert_eq!(prefix_of(&key.token), "sk", "{}", key.token);
    assert!(checksum_ok(&key.token) && scanner_regex().is_match(&key.token));
    assert_eq!(key.key_type.as_deref(), Some("secret"));
    assert_eq!(key.masked_token, expected_mask(&key.token));
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    assert_eq!(v.key_type.as_deref(), Some("secret"));
}

#[test]
fn typed_key_with_environment_gets_type_then_environment_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    define_publishable(&mut c);
    define_test_and_live(&mut c);
    let sk = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', environment => 'production'",
        &[],
    );
    let pk = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'publishable', environment => 'sandbox'",
        &[],
    );
    assert_eq!(prefix_of(&sk.token), "sk_live", "{}", sk.token);
    assert_eq!(prefix_of(&pk.token), "pk_test", "{}", pk.token);
    assert!(sk.masked_token.starts_with("sk_live_••••"));
    for t in [&sk.token, &pk.token] {
        assert!(checksum_ok(t) && scanner_regex().is_match(t), "{t}");
        verify(&mut c, t).assert_code("valid");
    }
}

// SPEC: the conflict is a bad argument, hence `invalid_argument`.
#[test]
fn two_types_cannot_share_a_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    let err = try_define_type(&mut c, "server", "sk", "");
    assert_api_error(err, "22023", "invalid_argument");
}

#[test]
fn redefining_a_type_with_its_own_prefix_is_an_upsert() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "permissions => '{read,write}'");
    define_type(&mut c, "secret", "sk", "permissions => '{read}'");
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', scopes => '{read,write}'",
        &[],
    );
    assert_eq!(
        key.scopes,
        ["read"],
        "the second definition's ceiling applies"
    );
}

#[test]
fn type_prefix_must_be_one_segment() {
    let db = TestDb::new();
    let mut c = db.connect();
    for bad in ["", "SK", "s_k", "1sk", "sk-", "abcdefghijklmnopq"] {
        let err = try_define_type(&mut c, "t", bad, "");
        assert_api_error(err, "22023", "invalid_argument");
    }
    define_type(&mut c, "t", "abcdefghijklmnop", "");
}

#[test]
fn public_type_must_be_non_revocable() {
    let db = TestDb::new();
    let mut c = db.connect();
    let err = try_define_type(
        &mut c,
        "publishable",
        "pk",
        "permissions => '{read}', revocable => true, public => true",
    );
    assert_api_error(err, "22023", "invalid_argument");
}

#[test]
fn public_type_must_have_a_ceiling() {
    let db = TestDb::new();
    let mut c = db.connect();
    let err = try_define_type(
        &mut c,
        "publishable",
        "pk",
        "permissions => NULL, revocable => false, public => true",
    );
    assert_api_error(err, "22023", "invalid_argument");
}

#[test]
fn public_key_shows_viewable_token() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'publishable'",
        &[],
    );
    let info = get_key(&mut c, key.id);
    assert_eq!(info.viewable_token.as_deref(), Some(key.token.as_str()));
    assert!(!info.revocable);
    let listed = list(&mut c, "user", "1");
    assert_eq!(
        listed[0].viewable_token.as_deref(),
        Some(key.token.as_str())
    );
}

#[test]
fn secret_and_untyped_keys_have_null_viewable_token() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "revocable => false");
    define_publishable(&mut c);
    let sk = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret'",
        &[],
    );
    let plain = issue_for(&mut c, "user", "1");
    assert_eq!(get_key(&mut c, sk.id).viewable_token, None);
    assert_eq!(get_key(&mut c, plain.id).viewable_token, None);
}

#[test]
fn unknown_key_type_is_rejected() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    let err = try_issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'Secret'",
        &[],
    );
    assert_api_error(err, "22023", "unknown_key_type");
}

#[test]
fn list_filters_by_key_type() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    define_publishable(&mut c);
    let sk = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret'",
        &[],
    );
    issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'publishable'",
        &[],
    );
    issue_for(&mut c, "user", "1");
    let ids: Vec<uuid::Uuid> = c
        .query(
            "SELECT id FROM api_keys.api_key_list('user', '1', key_type => 'secret')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![sk.id]);
}
