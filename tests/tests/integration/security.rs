//! Plaintext never at rest, definer functions, roles and grants (SPEC §2).

use api_keys_tests::*;
use postgres::Client;

fn issue_several(c: &mut Client) -> Vec<IssuedKey> {
    let mut keys = Vec::new();
    for i in 0..5 {
        keys.push(issue(
            c,
            "owner_type => 'user', owner_id => $1::text, name => 'k', scopes => '{read}'",
            &[&i.to_string()],
        ));
    }
    let revoked = issue_for(c, "user", "9");
    revoke(c, revoked.id);
    keys.push(revoked);
    keys
}

/// Every form of a token's secret that must not appear anywhere.
fn secret_forms(key: &IssuedKey) -> Vec<String> {
    let hex: String = key.token.bytes().map(|b| format!("{b:02x}")).collect();
    vec![key.token.clone(), body_of(&key.token)[..32].to_owned(), hex]
}

#[test]
fn no_table_in_schema_holds_token_plaintext() {
    let db = TestDb::new();
    let mut c = db.connect();
    let keys = issue_several(&mut c);
    for k in &keys {
        verify(&mut c, &k.token);
    }
    let tables = api_keys_tables(&mut c);
    let mut rows_seen = 0;
    for table in &tables {
        let sql = format!("SELECT t::text FROM {table} t");
        for row in c.query(sql.as_str(), &[]).unwrap() {
            rows_seen += 1;
            let text: String = row.get(0);
            for key in &keys {
                for secret in secret_forms(key) {
                    assert!(
                        !text.contains(&secret),
                        "{table} holds plaintext of {}",
                        key.id
                    );
                }
            }
        }
    }
    assert!(
        rows_seen >= keys.len(),
        "keys must be stored somewhere: {tables:?}"
    );
}

#[test]
fn pg_dump_does_not_contain_token_plaintext() {
    let db = TestDb::new();
    let mut c = db.connect();
    let keys = issue_several(&mut c);
    let dump = db.pg_dump();
    for key in &keys {
        for secret in secret_forms(key) {
            assert!(
                !dump.contains(&secret),
                "pg_dump output holds plaintext of {}",
                key.id
            );
        }
    }
}

// SPEC: silent on backups; a careful user expects pg_dump to carry the keys
// (pg_extension_config_dump), otherwise restoring a backup loses every key.
#[test]
fn pg_dump_contains_issued_keys() {
    let db = TestDb::new();
    let mut c = db.connect();
    let keys = issue_several(&mut c);
    let dump = db.pg_dump();
    for key in &keys {
        assert!(
            dump.contains(&key.id.to_string()),
            "dump lacks key {}",
            key.id
        );
    }
}

#[test]
fn no_notice_or_debug_message_contains_token_plaintext() {
    let db = TestDb::new();
    let (mut c, notices) = db.connect_recording_notices();
    c.batch_execute("SET client_min_messages = debug5").unwrap();
    let key = issue_for(&mut c, "user", "1");
    verify(&mut c, &key.token);
    verify_scopes(&mut c, &key.token, &["missing"]);
    revoke(&mut c, key.id);
    verify(&mut c, &key.token);
    c.batch_execute("RESET client_min_messages").unwrap();
    for notice in notices.lock().unwrap().iter() {
        for secret in secret_forms(&key) {
            assert!(
                !notice.contains(&secret),
                "a server message leaks the token: {notice}"
            );
        }
    }
}

/// SPEC §2's hot-path exception: exactly these may run as their caller
/// without a fixed search_path (hot_path.rs proves what makes that safe).
const HOT_PATH_EXEMPT: [&str; 6] = [
    "api_keys.api_key_verify(text,text[],text,text)",
    "api_keys.current_key_id()",
    "api_keys.current_owner_type()",
    "api_keys.current_owner_id()",
    "api_keys.current_scopes()",
    "api_keys.has_scope(text)",
];

#[test]
fn every_function_is_security_definer_with_fixed_search_path() {
    let db = TestDb::new();
    let mut c = db.connect();
    let rows = c
        .query(
            "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'api_keys'",
            &[],
        )
        .unwrap();
    assert!(
        rows.len() >= 10,
        "expected the SPEC §5 functions, found {}",
        rows.len()
    );
    let want = Some(vec!["search_path=pg_catalog, api_keys, pg_temp".to_owned()]);
    let mut exempt_seen = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let definer: bool = row.get(1);
        let config: Option<Vec<String>> = row.get(2);
        if HOT_PATH_EXEMPT.contains(&name.as_str()) {
            assert!(!definer, "{name} (hot path) must not be SECURITY DEFINER");
            assert_eq!(config, None, "{name} (hot path) must have no SET clause");
            exempt_seen.push(name);
            continue;
        }
        assert!(definer, "{name} is not SECURITY DEFINER");
        assert_eq!(config, want, "{name} has the wrong SET clause");
    }
    exempt_seen.sort();
    let mut exempt: Vec<String> = HOT_PATH_EXEMPT.iter().map(|s| s.to_string()).collect();
    exempt.sort();
    assert_eq!(exempt_seen, exempt, "every exempt function exists");
}

#[test]
fn no_function_is_executable_by_public() {
    let db = TestDb::new();
    let mut c = db.connect();
    let open: Vec<String> = c
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'api_keys' AND (p.proacl IS NULL OR EXISTS ( \
               SELECT 1 FROM aclexplode(p.proacl) a \
               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(open.is_empty(), "executable by PUBLIC: {open:?}");
}

#[test]
fn nothing_in_schema_is_granted_to_public() {
    let db = TestDb::new();
    let mut c = db.connect();
    let row = c
        .query_one(
            "SELECT has_schema_privilege('public', 'api_keys', 'USAGE'), \
             (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, \
              aclexplode(c.relacl) a WHERE n.nspname = 'api_keys' AND a.grantee = 0)",
            &[],
        )
        .unwrap();
    let usage: bool = row.get(0);
    let relation_grants: i64 = row.get(1);
    assert!(!usage, "PUBLIC has USAGE on schema api_keys");
    assert_eq!(
        relation_grants, 0,
        "a relation in api_keys is granted to PUBLIC"
    );
}

#[test]
fn verifier_and_admin_roles_exist_nologin_and_admin_is_member_of_verifier() {
    let db = TestDb::new();
    let mut c = db.connect();
    for role in ["api_keys_verifier", "api_keys_admin"] {
        let row = c
            .query_opt(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .unwrap()
            .unwrap_or_else(|| panic!("role {role} missing"));
        assert!(!row.get::<_, bool>(0), "{role} must be NOLOGIN");
    }
    let member: bool = c
        .query_one(
            "SELECT pg_has_role('api_keys_admin', 'api_keys_verifier', 'MEMBER')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        member,
        "api_keys_admin must be a member of api_keys_verifier"
    );
}

#[test]
fn role_without_grants_cannot_execute_functions() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let key = issue_for(&mut admin, "user", "1");
    let role = db.create_login_role();
    let mut c = role.connect();
    assert_permission_denied(c.query("SELECT * FROM api_keys.api_key_verify($1)", &[&key.token]));
    assert_permission_denied(c.query("SELECT * FROM api_keys.api_key_issue('user', '2')", &[]));
    assert_permission_denied(c.query("SELECT api_keys.api_key_revoke($1)", &[&key.id]));
    assert_eq!(verify(&mut admin, &key.token).code, "valid");
}

#[test]
fn role_without_grants_cannot_select_any_table() {
    let db = TestDb::new();
    let mut admin = db.connect();
    issue_for(&mut admin, "user", "1");
    let tables = api_keys_tables(&mut admin);
    assert!(!tables.is_empty());
    let role = db.create_login_role();
    let mut c = role.connect();
    for table in tables {
        assert_permission_denied(c.query(format!("SELECT * FROM {table}").as_str(), &[]));
    }
}

#[test]
fn verifier_role_can_verify() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let key = issue(
        &mut admin,
        "owner_type => 'user', owner_id => '1', scopes => '{read}'",
        &[],
    );
    let role = db.create_login_role();
    role.grant_role("api_keys_verifier");
    let mut c = role.connect();
    let v = verify_scopes(&mut c, &key.token, &["read"]);
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(key.id));
}

#[test]
fn verifier_role_cannot_issue_revoke_list_or_get() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let key = issue_for(&mut admin, "user", "1");
    let role = db.create_login_role();
    role.grant_role("api_keys_verifier");
    let mut c = role.connect();
    assert_permission_denied(try_issue(
        &mut c,
        "owner_type => 'user', owner_id => '2'",
        &[],
    ));
    assert_permission_denied(try_revoke(&mut c, key.id));
    assert_permission_denied(try_list(&mut c, "user", "1", None));
    assert_permission_denied(try_get_key(&mut c, key.id));
    assert_eq!(get_key(&mut admin, key.id).status, "active");
    assert_eq!(list(&mut admin, "user", "2").len(), 0);
}

#[test]
fn verifier_role_cannot_select_any_table() {
    let db = TestDb::new();
    let mut admin = db.connect();
    issue_for(&mut admin, "user", "1");
    let tables = api_keys_tables(&mut admin);
    let role = db.create_login_role();
    role.grant_role("api_keys_verifier");
    let mut c = role.connect();
    for table in tables {
        assert_permission_denied(c.query(format!("SELECT * FROM {table}").as_str(), &[]));
    }
}

#[test]
fn admin_role_can_issue_verify_revoke_and_list() {
    let db = TestDb::new();
    let role = db.create_login_role();
    role.grant_role("api_keys_admin");
    let mut c = role.connect();
    let key = issue_for(&mut c, "user", "1");
    verify(&mut c, &key.token).assert_code("valid");
    assert_eq!(list(&mut c, "user", "1").len(), 1);
    assert_eq!(get_key(&mut c, key.id).id, key.id);
    assert!(revoke(&mut c, key.id));
    verify(&mut c, &key.token).assert_code("revoked");
    assert_eq!(list_status(&mut c, "user", "1", "revoked").len(), 1);
}
