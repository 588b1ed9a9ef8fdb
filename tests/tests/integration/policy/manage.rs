//! Non-revocable keys, revoke_all, purge_owner, update (SPEC §5 Manage).

use api_keys_tests::*;
use postgres::Client;
use serde_json::json;

use super::support::*;

fn issue_publishable(c: &mut Client, owner_id: &str) -> IssuedKey {
    issue(
        c,
        "owner_type => 'user', owner_id => $1::text, key_type => 'publishable'",
        &[&owner_id],
    )
}

fn try_update(c: &mut Client, id: uuid::Uuid, args: &str) -> Result<KeyInfo, postgres::Error> {
    let sql = format!("SELECT * FROM api_keys.api_key_update($1::uuid{args})");
    c.query_one(sql.as_str(), &[&id])
        .map(|r| KeyInfo::from_row(&r))
}

fn count(c: &mut Client, sql: &str) -> i32 {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .get(0)
}

#[test]
fn revoking_non_revocable_key_is_key_not_revocable() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let key = issue_publishable(&mut c, "1");
    assert_api_error(try_revoke(&mut c, key.id), "42501", "key_not_revocable");
    assert_eq!(get_key(&mut c, key.id).status, "active");
    verify(&mut c, &key.token).assert_code("valid");
}

#[test]
fn non_revocable_key_cannot_have_expiry() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    for expiry in [
        "expires_in => '7_days'",
        "expires_at => now() + interval '1 day'",
    ] {
        let args =
            format!("owner_type => 'user', owner_id => '1', key_type => 'publishable', {expiry}");
        assert_api_error(try_issue(&mut c, &args, &[]), "22023", "invalid_expiry");
    }
    assert!(list(&mut c, "user", "1").is_empty());
}

// SPEC: `no_expiration` asks for no expiry, so a non-revocable type accepts it.
#[test]
fn non_revocable_key_accepts_no_expiration_preset() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'publishable', \
         expires_in => 'no_expiration'",
        &[],
    );
    assert_eq!(key.expires_at, None);
}

#[test]
fn revoke_all_revokes_active_revocable_keys_and_returns_count() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let a = issue_for(&mut c, "user", "1");
    let b = issue_for(&mut c, "user", "1");
    let already = issue_for(&mut c, "user", "1");
    revoke(&mut c, already.id);
    let public = issue_publishable(&mut c, "1");
    let other = issue_for(&mut c, "user", "2");
    assert_eq!(
        count(&mut c, "SELECT api_keys.api_key_revoke_all('user', '1')"),
        2
    );
    for id in [a.id, b.id] {
        assert_eq!(get_key(&mut c, id).status, "revoked");
    }
    assert_eq!(
        get_key(&mut c, public.id).status,
        "active",
        "non-revocable skipped"
    );
    assert_eq!(
        get_key(&mut c, other.id).status,
        "active",
        "other owner untouched"
    );
    assert_eq!(
        count(&mut c, "SELECT api_keys.api_key_revoke_all('user', '1')"),
        0
    );
}

#[test]
fn purge_owner_deletes_every_key_of_the_owner() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let a = issue_for(&mut c, "user", "1");
    let revoked = issue_for(&mut c, "user", "1");
    revoke(&mut c, revoked.id);
    let public = issue_publishable(&mut c, "1");
    let other = issue_for(&mut c, "user", "2");
    assert_eq!(
        count(&mut c, "SELECT api_keys.api_key_purge_owner('user', '1')"),
        3
    );
    assert!(list(&mut c, "user", "1").is_empty());
    for id in [a.id, revoked.id, public.id] {
        assert_api_error(try_get_key(&mut c, id), "P0002", "key_not_found");
    }
    verify(&mut c, &a.token).assert_code("not_found");
    verify(&mut c, &public.token).assert_code("not_found");
    assert_eq!(get_key(&mut c, other.id).status, "active");
}

#[test]
fn update_with_nulls_changes_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', name => 'n', scopes => '{read}', \
         metadata => '{\"a\":1}'",
        &[],
    );
    let before = get_key(&mut c, key.id);
    let after = try_update(&mut c, key.id, "").unwrap();
    assert_eq!(after.name, before.name);
    assert_eq!(after.scopes, before.scopes);
    assert_eq!(after.metadata, before.metadata);
}

#[test]
fn update_sets_name_and_empty_name_clears_it() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', name => 'old'",
        &[],
    );
    let renamed = try_update(&mut c, key.id, ", name => 'new'").unwrap();
    assert_eq!(renamed.name.as_deref(), Some("new"));
    // SPEC: a cleared name reads back as NULL.
    let cleared = try_update(&mut c, key.id, ", name => ''").unwrap();
    assert_eq!(cleared.name, None);
    assert_eq!(get_key(&mut c, key.id).name, None);
}

#[test]
fn update_clearing_name_under_require_name_is_name_required() {
    let db = TestDb::new();
    let mut c = db.connect();
    set_owner_policy(&mut c, "user", "require_name => true");
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', name => 'ci'",
        &[],
    );
    assert_api_error(
        try_update(&mut c, key.id, ", name => ''"),
        "22023",
        "name_required",
    );
    assert_eq!(get_key(&mut c, key.id).name.as_deref(), Some("ci"));
}

#[test]
fn update_processes_scopes_like_issue() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let info = try_update(&mut c, key.id, ", scopes => '{\" b \",a,\"\",b}'").unwrap();
    assert_eq!(info.scopes, ["b", "a"]);
    define_scope(&mut c, "a", false);
    assert_api_error(
        try_update(&mut c, key.id, ", scopes => '{zzz}'"),
        "22023",
        "unknown_scope",
    );
    assert_eq!(get_key(&mut c, key.id).scopes, ["b", "a"]);
}

#[test]
fn update_replaces_metadata() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', metadata => '{\"a\":1,\"b\":2}'",
        &[],
    );
    let info = try_update(&mut c, key.id, ", metadata => '{\"c\":3}'").unwrap();
    assert_eq!(info.metadata, json!({"c": 3}));
    let v = verify(&mut c, &key.token);
    assert_eq!(v.metadata, Some(json!({"c": 3})));
}

#[test]
fn update_is_allowed_on_revoked_key() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    revoke(&mut c, key.id);
    let info = try_update(&mut c, key.id, ", name => 'archived'").unwrap();
    assert_eq!(info.name.as_deref(), Some("archived"));
    assert_eq!(info.status, "revoked");
}

#[test]
fn update_of_unknown_key_is_key_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    let err = try_update(&mut c, uuid::Uuid::new_v4(), ", name => 'x'");
    assert_api_error(err, "P0002", "key_not_found");
}

#[test]
fn update_keeps_owner_type_environment_and_expiry() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "");
    define_test_and_live(&mut c);
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', environment => 'sandbox', \
         expires_in => '30_days'",
        &[],
    );
    let info = try_update(&mut c, key.id, ", name => 'x', scopes => '{read}'").unwrap();
    assert_eq!(
        (info.owner_type.as_str(), info.owner_id.as_str()),
        ("user", "1")
    );
    assert_eq!(info.key_type.as_deref(), Some("secret"));
    assert_eq!(info.environment.as_deref(), Some("sandbox"));
    assert_eq!(info.expires_at, key.expires_at);
    verify(&mut c, &key.token).assert_code("valid");
}
