//! Scope registry, exclusive scopes, type ceilings and available scopes
//! (SPEC §4, §5 issue scope processing, verify, `api_key_available_scopes`).

use api_keys_tests::*;
use postgres::Client;

use super::support::*;

fn issue_scoped(c: &mut Client, key_type: Option<&str>, scopes: &[&str]) -> IssuedKey {
    issue(
        c,
        "owner_type => 'user', owner_id => '1', key_type => $1::text, scopes => $2::text[]",
        &[&key_type, &scopes],
    )
}

fn try_issue_scoped(c: &mut Client, scopes: &[&str]) -> Result<IssuedKey, postgres::Error> {
    try_issue(
        c,
        "owner_type => 'user', owner_id => '1', scopes => $1::text[]",
        &[&scopes],
    )
}

fn available(c: &mut Client, owner_type: &str, key_type: Option<&str>) -> Vec<String> {
    c.query_one(
        "SELECT api_keys.api_key_available_scopes($1::text, $2::text)",
        &[&owner_type, &key_type],
    )
    .unwrap_or_else(|e| panic!("api_key_available_scopes failed: {}", describe(&e)))
    .get(0)
}

#[test]
fn without_registry_any_scope_is_accepted() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_scoped(&mut c, None, &["anything:goes", "read"]);
    assert_eq!(key.scopes, ["anything:goes", "read"]);
}

#[test]
fn with_registry_unknown_scope_is_rejected() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_scope(&mut c, "read", false);
    let err = try_issue_scoped(&mut c, &["read", "write"]);
    assert_api_error(err, "22023", "unknown_scope");
    assert!(list(&mut c, "user", "1").is_empty());
    assert_eq!(
        try_issue_scoped(&mut c, &["read"]).unwrap().scopes,
        ["read"]
    );
}

#[test]
fn exclusive_scope_cannot_be_combined() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_scope(&mut c, "read", false);
    define_scope(&mut c, "show_dashboard", true);
    let err = try_issue_scoped(&mut c, &["show_dashboard", "read"]);
    assert_api_error(err, "22023", "exclusive_scope");
    let alone = try_issue_scoped(&mut c, &["show_dashboard", " show_dashboard"]).unwrap();
    assert_eq!(alone.scopes, ["show_dashboard"]);
}

#[test]
fn ceiling_drops_scopes_silently_on_issue_keeping_order() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "permissions => '{write,read}'");
    let key = issue_scoped(
        &mut c,
        Some("secret"),
        &["read", "admin", "write", "billing"],
    );
    assert_eq!(key.scopes, ["read", "write"]);
}

#[test]
fn unknown_scope_is_checked_before_ceiling() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_scope(&mut c, "read", false);
    define_type(&mut c, "secret", "sk", "permissions => '{read}'");
    let err = try_issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', scopes => '{read,bogus}'",
        &[],
    );
    assert_api_error(err, "22023", "unknown_scope");
}

#[test]
fn exclusive_scope_outside_ceiling_is_dropped_before_exclusive_check() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_scope(&mut c, "read", false);
    define_scope(&mut c, "show_dashboard", true);
    define_type(&mut c, "secret", "sk", "permissions => '{read}'");
    let key = issue_scoped(&mut c, Some("secret"), &["show_dashboard", "read"]);
    assert_eq!(key.scopes, ["read"]);
}

#[test]
fn ceiling_drops_scopes_silently_on_update() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "permissions => '{read,write}'");
    let key = issue_scoped(&mut c, Some("secret"), &["read"]);
    let row = c
        .query_one(
            "SELECT * FROM api_keys.api_key_update($1::uuid, scopes => '{admin, write ,read}')",
            &[&key.id],
        )
        .unwrap();
    assert_eq!(KeyInfo::from_row(&row).scopes, ["write", "read"]);
    assert_eq!(get_key(&mut c, key.id).scopes, ["write", "read"]);
}

#[test]
fn scope_removed_from_current_ceiling_counts_as_missing_at_verify() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "permissions => '{read,write}'");
    let key = issue_scoped(&mut c, Some("secret"), &["read", "write"]);
    verify_scopes(&mut c, &key.token, &["write"]).assert_code("valid");
    define_type(&mut c, "secret", "sk", "permissions => '{read}'");
    let v = verify_scopes(&mut c, &key.token, &["write"]);
    v.assert_code("insufficient_scope");
    assert_eq!(v.key_id, Some(key.id));
    verify_scopes(&mut c, &key.token, &["read"]).assert_code("valid");
}

#[test]
fn available_scopes_is_empty_without_any_configuration() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert!(available(&mut c, "user", None).is_empty());
}

// SPEC: "order kept" for the registry means definition order.
#[test]
fn available_scopes_lists_registry_in_definition_order() {
    let db = TestDb::new();
    let mut c = db.connect();
    for s in ["write", "admin", "read"] {
        define_scope(&mut c, s, false);
    }
    assert_eq!(available(&mut c, "user", None), ["write", "admin", "read"]);
}

#[test]
fn available_scopes_intersects_registry_with_type_ceiling() {
    let db = TestDb::new();
    let mut c = db.connect();
    for s in ["write", "admin", "read"] {
        define_scope(&mut c, s, false);
    }
    define_type(&mut c, "secret", "sk", "permissions => '{read,write}'");
    assert_eq!(available(&mut c, "user", Some("secret")), ["write", "read"]);
}

#[test]
fn available_scopes_falls_back_to_type_ceiling() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_type(&mut c, "secret", "sk", "permissions => '{deploy,read}'");
    assert_eq!(
        available(&mut c, "user", Some("secret")),
        ["deploy", "read"]
    );
    assert!(available(&mut c, "user", None).is_empty());
}

#[test]
fn available_scopes_prefers_owner_default_scopes() {
    let db = TestDb::new();
    let mut c = db.connect();
    for s in ["read", "write", "admin"] {
        define_scope(&mut c, s, false);
    }
    set_owner_policy(&mut c, "team", "default_scopes => '{write,read}'");
    define_type(&mut c, "reader", "rk", "permissions => '{read,admin}'");
    assert_eq!(available(&mut c, "team", None), ["write", "read"]);
    assert_eq!(available(&mut c, "team", Some("reader")), ["read"]);
    assert_eq!(available(&mut c, "user", None), ["read", "write", "admin"]);
}
