//! The identity cannot be forged: no setting, header or internal function
//! makes current_owner_id() non-NULL without a successful authenticate.

use api_keys_tests::*;
use postgres::Client;
use serde_json::json;

use super::harness::*;

/// Settings an attacker who can run SQL might try to forge the identity
/// with, each with the value that would name organisation `acme`.
fn forgery_attempts(key_id: &str) -> Vec<(&'static str, String)> {
    let claims = json!({"role": "api", "owner_id": "acme", "org_id": "acme",
                        "owner_type": "org", "scopes": ["todos:read"]})
    .to_string();
    vec![
        ("api_keys.current_owner_id", "acme".to_owned()),
        ("api_keys.owner_id", "acme".to_owned()),
        ("api_keys.current_owner_type", "org".to_owned()),
        ("api_keys.owner_type", "org".to_owned()),
        ("api_keys.current_key_id", key_id.to_owned()),
        ("api_keys.key_id", key_id.to_owned()),
        ("api_keys.current_scopes", "{todos:read}".to_owned()),
        ("api_keys.scopes", "{todos:read}".to_owned()),
        ("api_keys.identity", claims.clone()),
        ("api_keys.authenticated", "on".to_owned()),
        ("request.api_key.owner_id", "acme".to_owned()),
        ("request.jwt.claims", claims),
        ("request.jwt.claim.owner_id", "acme".to_owned()),
        ("app.current_owner_id", "acme".to_owned()),
    ]
}

/// Tries every forgery (each under a savepoint: a reserved prefix may make
/// set_config raise), then returns the identity and visible todo count.
fn forge_and_look(c: &mut Client, key_id: &str) -> (Option<String>, Option<String>, bool, i64) {
    for (name, value) in forgery_attempts(key_id) {
        c.batch_execute("SAVEPOINT forge").unwrap();
        match c.query("SELECT set_config($1, $2, true)", &[&name, &value]) {
            Ok(_) => c.batch_execute("RELEASE SAVEPOINT forge").unwrap(),
            Err(_) => c.batch_execute("ROLLBACK TO SAVEPOINT forge").unwrap(),
        }
    }
    let row = c
        .query_one(
            "SELECT api_keys.current_owner_id(), api_keys.current_key_id()::text, \
                    api_keys.has_scope('todos:read'), (SELECT count(*) FROM app.todos)",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[test]
fn set_config_forging_cannot_create_an_identity_for_the_api_role() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let c = &mut conn.client;
    c.batch_execute("BEGIN").unwrap();
    c.query("SELECT set_config('role', $1, true)", &[&ex.roles.api])
        .unwrap();
    let seen = forge_and_look(c, &key.id.to_string());
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(seen, (None, None, false, 0), "forged identity");
}

#[test]
fn set_config_forging_cannot_create_an_identity_even_for_a_superuser() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut c = ex.admin();
    c.batch_execute("BEGIN").unwrap();
    let (owner, key_id, can_read, _superuser_bypasses_rls) =
        forge_and_look(&mut c, &key.id.to_string());
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!((owner, key_id, can_read), (None, None, false));
}

#[test]
fn request_headers_with_a_valid_key_do_not_authenticate_without_the_pre_request() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos")
        .api_key(&key.token)
        .without_pre_request();
    conn.identity(&req).unwrap().assert_anonymous();
    assert!(conn.get_todos(&req).unwrap().is_empty());
}

#[test]
fn request_roles_cannot_call_the_internal_authenticate_function() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let headers = json!({"x-api-key": key.token}).to_string();
    let mut conn = ex.pool_conn();
    for role in ex.roles.request_roles() {
        let req = Request::post("/rpc/x").run_as(role).without_pre_request();
        assert_permission_denied(conn.send(
            &req,
            "SELECT api_keys._authenticate($1, '{}'::text[])",
            &[&headers],
        ));
        conn.identity(&req).unwrap().assert_anonymous();
    }
}

#[test]
fn request_roles_cannot_turn_off_strict_environment_isolation() {
    let ex = Example::new();
    let mut admin = ex.admin();
    configure(
        &mut admin,
        "api_keys.api_key_environment_define('live', 'live')",
    );
    configure(
        &mut admin,
        "api_keys.api_key_environment_define('test', 'test')",
    );
    let test_key = issue(
        &mut admin,
        "owner_type => 'org', owner_id => 'acme', scopes => '{todos:read}', environment => 'test'",
        &[],
    );
    ex.alter_database_set("api_keys.strict_environment_isolation", "on");
    ex.alter_database_set("api_keys.environment", "live");
    let mut conn = ex.pool_conn();
    for role in ex.roles.request_roles() {
        let req = Request::get("/todos").run_as(role).without_pre_request();
        assert_permission_denied(conn.send(
            &req,
            "SELECT set_config('api_keys.strict_environment_isolation', 'off', true)",
            &[],
        ));
        let req = Request::get("/todos").run_as(role).without_pre_request();
        assert_permission_denied(conn.send(
            &req,
            "SET LOCAL api_keys.strict_environment_isolation = off",
            &[],
        ));
    }
    // Still enforced.
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&test_key.token)),
        "environment_mismatch",
    );
}
