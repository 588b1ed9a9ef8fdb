//! The PostgREST roles of the example: authenticator can only switch role;
//! anon and api can authenticate and read the identity, and nothing else of
//! the extension — no table, no sequence, no admin function, no audit log.

use api_keys_tests::*;

use super::harness::*;

/// The functions the request roles may execute (via api_keys_verifier).
const VERIFIER_FUNCTIONS: &[&str] = &[
    "api_key_authenticate",
    "api_key_verify",
    "api_key_mask",
    "api_key_environment_of",
    "api_key_expiration_presets",
    "current_key_id",
    "current_owner_type",
    "current_owner_id",
    "current_scopes",
    "has_scope",
];

#[test]
fn example_roles_have_the_attributes_postgrest_needs() {
    let ex = Example::new();
    let mut c = ex.admin();
    let row = c
        .query_one(
            "SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls \
             FROM pg_roles WHERE rolname = $1",
            &[&ex.roles.authenticator],
        )
        .unwrap();
    let attrs: (bool, bool, bool, bool, bool, bool) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(
        attrs,
        (true, false, false, false, false, false),
        "authenticator: LOGIN NOINHERIT and nothing else"
    );
    for role in ex.roles.request_roles() {
        let row = c
            .query_one(
                "SELECT rolcanlogin, rolsuper, rolbypassrls, \
                        pg_has_role($1, 'api_keys_verifier', 'USAGE'), \
                        pg_has_role($1, 'api_keys_admin', 'MEMBER'), \
                        pg_has_role($2, $1, 'MEMBER') \
                 FROM pg_roles WHERE rolname = $1",
                &[&role, &ex.roles.authenticator],
            )
            .unwrap();
        let attrs: (bool, bool, bool, bool, bool, bool) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        assert_eq!(
            attrs,
            (false, false, false, true, false, true),
            "{role}: NOLOGIN, verifier, not admin, switchable from authenticator"
        );
    }
}

#[test]
fn todos_has_row_level_security_enabled_and_forced() {
    let ex = Example::new();
    let row = ex
        .admin()
        .query_one(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.todos'::regclass",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
}

#[test]
fn example_schema_loads_twice_without_error() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    ex.admin()
        .batch_execute(&schema_sql_with_suffix(&ex.roles.suffix))
        .unwrap_or_else(|e| panic!("second load failed: {}", describe(&e)));
    assert_eq!(ex.todos_of("acme").len(), 1, "reloading lost data");
}

#[test]
fn request_roles_hold_no_privilege_on_any_relation_in_schema_api_keys() {
    let ex = Example::new();
    let mut c = ex.admin();
    let relations: Vec<(String, String)> = c
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'api_keys' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        relations.iter().any(|(n, _)| n == "api_keys.audit_log"),
        "expected api_keys.audit_log among {relations:?}"
    );
    for role in ex.roles.request_roles() {
        for (rel, kind) in &relations {
            let (table_privs, any_column) = if kind == "S" {
                ("USAGE, SELECT, UPDATE", "false")
            } else {
                (
                    "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER",
                    "has_any_column_privilege($1, $2, 'SELECT, INSERT, UPDATE, REFERENCES')",
                )
            };
            let sql = if kind == "S" {
                format!("SELECT has_sequence_privilege($1, $2, '{table_privs}'), {any_column}")
            } else {
                format!("SELECT has_table_privilege($1, $2, '{table_privs}'), {any_column}")
            };
            let row = c.query_one(sql.as_str(), &[&role, rel]).unwrap();
            assert_eq!(
                (row.get::<_, bool>(0), row.get::<_, bool>(1)),
                (false, false),
                "{role} holds a privilege on {rel}"
            );
        }
    }
}

#[test]
fn request_roles_cannot_select_any_api_keys_table_even_when_authenticated() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let tables = api_keys_tables(&mut ex.admin());
    assert!(tables.contains(&"api_keys.audit_log".to_owned()));
    let mut conn = ex.pool_conn();
    for role in ex.roles.request_roles() {
        for table in &tables {
            let req = Request::get("/todos").api_key(&key.token).run_as(role);
            assert_permission_denied(conn.send(&req, &format!("SELECT * FROM {table}"), &[]));
        }
    }
}

#[test]
fn request_roles_cannot_call_admin_functions_even_when_authenticated() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for role in ex.roles.request_roles() {
        // POST: a read-write transaction, so a refusal is 42501, not 25006.
        let req = Request::post("/todos").api_key(&key.token).run_as(role);
        assert_permission_denied(conn.send(
            &req,
            "SELECT * FROM api_keys.api_key_issue('org', 'acme', scopes => '{todos:read}')",
            &[],
        ));
        assert_permission_denied(conn.send(&req, "SELECT api_keys.api_key_revoke($1)", &[&key.id]));
        assert_permission_denied(conn.send(
            &req,
            "SELECT * FROM api_keys.api_key_list('org', 'acme')",
            &[],
        ));
        assert_permission_denied(conn.send(&req, "SELECT * FROM api_keys.audit_log", &[]));
    }
    assert_eq!(get_key(&mut ex.admin(), key.id).status, "active");
    assert_eq!(list(&mut ex.admin(), "org", "acme").len(), 1);
}

#[test]
fn request_roles_may_execute_only_the_verifier_functions() {
    let ex = Example::new();
    let mut c = ex.admin();
    for role in ex.roles.request_roles() {
        let executable: Vec<String> = c
            .query(
                "SELECT p.proname::text FROM pg_proc p \
                 WHERE p.pronamespace = 'api_keys'::regnamespace \
                   AND has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1",
                &[&role],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut expected: Vec<String> =
            VERIFIER_FUNCTIONS.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(executable, expected, "{role} may execute");
    }
}

#[test]
fn authenticator_without_a_role_switch_can_do_nothing() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut c = ex.db().connect_as(&ex.roles.authenticator);
    c.query(
        "SELECT set_config('request.headers', $1, false)",
        &[&serde_json::json!({"x-api-key": key.token}).to_string()],
    )
    .unwrap();
    assert_permission_denied(c.query("SELECT api_keys.api_key_authenticate()", &[]));
    assert_permission_denied(c.query("SELECT * FROM app.todos", &[]));
    assert_permission_denied(c.query("SELECT * FROM api_keys.api_key_verify($1)", &[&key.token]));
    assert_permission_denied(c.query("SELECT set_config('role', 'api_keys_admin', false)", &[]));
}
