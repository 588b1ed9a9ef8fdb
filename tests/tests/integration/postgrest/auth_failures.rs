//! Requests the pre-request must reject: PT401 with the verify code in the
//! message for no, malformed, unknown, revoked, expired or wrong-environment
//! keys; PT403 for a missing scope. A rejected request runs no query.

use api_keys_tests::*;
use serde_json::json;

use super::harness::*;

#[test]
fn get_without_any_key_is_rejected_with_pt401() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let mut conn = ex.pool_conn();
    let message = assert_401(conn.get_todos(&Request::get("/todos")), "malformed");
    assert!(
        message.contains("no API key"),
        "the message should say that no key was sent: {message}"
    );
}

#[test]
fn get_with_malformed_key_is_rejected_with_pt401_malformed() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for bad in [
        "not-a-key".to_owned(),
        mutate_at(&key.token, key.token.len() - 10), // checksum no longer matches
        format!("{}x", key.token),
    ] {
        assert_401(
            conn.get_todos(&Request::get("/todos").api_key(&bad)),
            "malformed",
        );
    }
}

#[test]
fn get_with_well_formed_unknown_key_is_rejected_with_pt401_not_found() {
    let ex = Example::new();
    let mut conn = ex.pool_conn();
    let forged = forge_token("ak");
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&forged)),
        "not_found",
    );
}

#[test]
fn get_with_revoked_key_is_rejected_with_pt401_revoked() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&key.token);
    assert_eq!(
        conn.get_todos(&req).unwrap().len(),
        1,
        "baseline: key works"
    );
    assert!(revoke(&mut ex.admin(), key.id));
    assert_401(conn.get_todos(&req), "revoked");
}

#[test]
fn post_with_revoked_key_is_rejected_with_pt401_and_inserts_nothing() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    assert!(revoke(&mut ex.admin(), key.id));
    let mut conn = ex.pool_conn();
    let req = Request::post("/todos").api_key(&key.token);
    assert_401(conn.post_todos(&req, &json!({"title": "t"})), "revoked");
    assert!(ex.all_todos().is_empty(), "a rejected POST inserted a row");
}

#[test]
fn get_with_expired_key_is_rejected_with_pt401_expired() {
    let ex = Example::new();
    let key = issue(
        &mut ex.admin(),
        "owner_type => 'org', owner_id => 'acme', scopes => '{todos:read}', \
         expires_at => now() + interval '1 second'",
        &[],
    );
    wait_for_one_second_expiry();
    let mut conn = ex.pool_conn();
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&key.token)),
        "expired",
    );
}

fn issue_in_environment(ex: &Example, org: &str, environment: &str) -> IssuedKey {
    issue(
        &mut ex.admin(),
        "owner_type => 'org', owner_id => $1::text, scopes => '{todos:read}', \
         environment => $2::text",
        &[&org, &environment],
    )
}

#[test]
fn key_of_other_environment_is_rejected_with_pt401_environment_mismatch_under_strict_isolation() {
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
    ex.seed("acme", &["a1"]);
    let live = issue_in_environment(&ex, "acme", "live");
    let test = issue_in_environment(&ex, "acme", "test");

    // Baseline, isolation off: both keys authenticate.
    let mut conn = ex.pool_conn();
    for key in [&live, &test] {
        let req = Request::get("/todos").api_key(&key.token);
        assert_eq!(conn.get_todos(&req).unwrap().len(), 1);
    }

    ex.alter_database_set("api_keys.strict_environment_isolation", "on");
    ex.alter_database_set("api_keys.environment", "live");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&live.token);
    assert_eq!(conn.get_todos(&req).unwrap().len(), 1, "live key in live");
    let message = assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&test.token)),
        "environment_mismatch",
    );
    assert!(message.contains("environment_mismatch"), "{message}");
}

#[test]
fn strict_isolation_without_a_current_environment_rejects_every_environment_key() {
    let ex = Example::new();
    let mut admin = ex.admin();
    configure(
        &mut admin,
        "api_keys.api_key_environment_define('live', 'live')",
    );
    let live = issue_in_environment(&ex, "acme", "live");
    ex.alter_database_set("api_keys.strict_environment_isolation", "on");
    let mut conn = ex.pool_conn();
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&live.token)),
        "environment_mismatch",
    );
}

#[test]
fn key_without_required_scope_is_rejected_with_pt403_insufficient_scope() {
    let ex = Example::new();
    let read_only = ex.org_key("acme", &["todos:read"]);
    let mut conn = ex.pool_conn();
    let req = Request::post("/todos")
        .api_key(&read_only.token)
        .require(&["todos:write"]);
    let message = assert_403(conn.post_todos(&req, &json!({"title": "t"})));
    assert!(message.contains("insufficient_scope"), "{message}");
    assert!(ex.all_todos().is_empty(), "a rejected POST inserted a row");
    // The same key passes when only todos:read is required.
    let ok = Request::get("/todos")
        .api_key(&read_only.token)
        .require(&["todos:read"]);
    assert!(conn.get_todos(&ok).unwrap().is_empty());
}

#[test]
fn per_route_pre_request_answers_pt403_for_a_write_with_a_read_only_key() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let read_only = ex.org_key("acme", &["todos:read"]);
    let pre = PreRequest::Function("app_private.authenticate_request".to_owned());
    let mut conn = ex.pool_conn();

    let get = Request::get("/todos")
        .api_key(&read_only.token)
        .pre_request(pre.clone());
    assert_eq!(titles(&conn.get_todos(&get).unwrap()), ["a1"]);

    let post = Request::post("/todos")
        .api_key(&read_only.token)
        .pre_request(pre.clone());
    assert_403(conn.post_todos(&post, &json!({"title": "t"})));

    let no_scopes = ex.org_key("acme", &[]);
    let get = Request::get("/todos")
        .api_key(&no_scopes.token)
        .pre_request(pre);
    assert_403(conn.get_todos(&get));
    assert_eq!(ex.todos_of("acme").len(), 1);
}

#[test]
fn pre_request_without_arguments_never_answers_pt403() {
    // PostgREST passes no arguments: a valid key without the scope gets in,
    // and RLS (has_scope) decides what it sees: nothing here.
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let no_scopes = ex.org_key("acme", &[]);
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&no_scopes.token);
    assert!(conn.get_todos(&req).unwrap().is_empty());
    let id = conn.identity(&req).unwrap();
    assert_eq!(id.owner_id.as_deref(), Some("acme"));
    assert!(!id.can_read);
}
