//! PostgREST reuses connections: the identity set by one request's
//! pre-request must end with its transaction.

use serde_json::json;

use super::harness::*;

#[test]
fn identity_does_not_leak_into_next_transaction_on_same_connection() {
    let ex = Example::new();
    ex.seed("acme", &["a1", "a2"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let authed = Request::get("/todos").api_key(&acme.token);
    assert_eq!(conn.get_todos(&authed).unwrap().len(), 2);
    assert_eq!(
        conn.identity(&authed).unwrap().owner_id.as_deref(),
        Some("acme")
    );

    // Next transaction on the same backend, no key and no pre-request.
    let bare = Request::get("/todos").without_pre_request();
    conn.identity(&bare).unwrap().assert_anonymous();
    assert!(
        conn.get_todos(&bare).unwrap().is_empty(),
        "RLS let rows through without an authenticated key"
    );
    let post = Request::post("/todos").without_pre_request();
    assert_rls_violation(conn.post_todos(&post, &json!({"org_id": "acme", "title": "x"})));
    assert_eq!(ex.todos_of("acme").len(), 2);
}

#[test]
fn identity_does_not_leak_after_a_rolled_back_transaction() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    // Authenticated, then the query fails: the transaction is rolled back.
    let req = Request::post("/todos").api_key(&acme.token);
    assert_rls_violation(conn.post_todos(&req, &json!({"org_id": "globex", "title": "x"})));
    let bare = Request::get("/todos").without_pre_request();
    conn.identity(&bare).unwrap().assert_anonymous();
    assert!(conn.get_todos(&bare).unwrap().is_empty());
}

#[test]
fn rejected_key_after_a_valid_one_leaves_no_identity() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let acme = ex.rw_key("acme");
    let revoked = ex.rw_key("acme");
    assert!(api_keys_tests::revoke(&mut ex.admin(), revoked.id));
    let mut conn = ex.pool_conn();
    assert_eq!(
        conn.get_todos(&Request::get("/todos").api_key(&acme.token))
            .unwrap()
            .len(),
        1
    );
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&revoked.token)),
        "revoked",
    );
    let bare = Request::get("/todos").without_pre_request();
    conn.identity(&bare).unwrap().assert_anonymous();
}

#[test]
fn failed_authenticate_in_the_same_transaction_clears_the_earlier_identity() {
    // Authenticate with a valid key, then (in the same transaction, under a
    // savepoint) with a bad one: the valid identity must not survive the
    // failed attempt.
    let ex = Example::new();
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let c = &mut conn.client;
    c.batch_execute("BEGIN").unwrap();
    c.query(
        "SELECT set_config('role', $1, true), set_config('request.headers', $2, true)",
        &[&ex.roles.api, &json!({"x-api-key": acme.token}).to_string()],
    )
    .unwrap();
    c.query("SELECT api_keys.api_key_authenticate()", &[])
        .unwrap();
    c.batch_execute("SAVEPOINT retry").unwrap();
    c.query(
        "SELECT set_config('request.headers', '{\"x-api-key\": \"garbage\"}', true)",
        &[],
    )
    .unwrap();
    assert_401(
        c.query("SELECT api_keys.api_key_authenticate()", &[]),
        "malformed",
    );
    c.batch_execute("ROLLBACK TO SAVEPOINT retry").unwrap();
    let owner: Option<String> = c
        .query_one("SELECT api_keys.current_owner_id()", &[])
        .unwrap()
        .get(0);
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(owner, None, "identity survived a failed authenticate");
}

#[test]
fn next_request_with_another_key_sees_only_its_own_identity() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let globex = ex.org_key("globex", &["todos:read"]);
    let mut conn = ex.pool_conn();
    let a = Request::get("/todos").api_key(&acme.token);
    let b = Request::get("/todos").api_key(&globex.token);
    assert_eq!(titles(&conn.get_todos(&a).unwrap()), ["a1"]);
    assert_eq!(titles(&conn.get_todos(&b).unwrap()), ["g1"]);
    let id = conn.identity(&b).unwrap();
    assert_eq!(id.owner_id.as_deref(), Some("globex"));
    assert_eq!(id.key_id, Some(globex.id));
    assert!(!id.can_write, "globex's key inherited acme's write scope");
}

#[test]
fn authenticate_outside_a_transaction_block_does_not_outlive_its_statement() {
    // Autocommit (e.g. a statement-pooling proxy): each statement is its
    // own transaction, so the identity is gone by the next statement.
    let ex = Example::new();
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let c = &mut conn.client;
    c.batch_execute(&format!("SET ROLE {}", ex.roles.api))
        .unwrap();
    c.query(
        "SELECT set_config('request.headers', $1, false)",
        &[&json!({"x-api-key": acme.token}).to_string()],
    )
    .unwrap();
    let same_statement: Option<String> = c
        .query_one(
            "SELECT api_keys.current_owner_id() FROM (SELECT api_keys.api_key_authenticate()) a",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(same_statement.as_deref(), Some("acme"));
    let next: Option<String> = c
        .query_one("SELECT api_keys.current_owner_id()", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, None, "identity outlived its autocommit transaction");
}

#[test]
fn identity_is_not_visible_to_another_connection() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let acme = ex.rw_key("acme");
    let mut first = ex.pool_conn();
    let mut second = ex.pool_conn();
    first.client.batch_execute("BEGIN").unwrap();
    first
        .client
        .query(
            "SELECT set_config('role', $1, true), set_config('request.headers', $2, true)",
            &[&ex.roles.api, &json!({"x-api-key": acme.token}).to_string()],
        )
        .unwrap();
    first
        .client
        .query("SELECT api_keys.api_key_authenticate()", &[])
        .unwrap();
    // While the first connection's transaction is open:
    let bare = Request::get("/todos").without_pre_request();
    second.identity(&bare).unwrap().assert_anonymous();
    assert!(second.get_todos(&bare).unwrap().is_empty());
    first.client.batch_execute("COMMIT").unwrap();
}

#[test]
fn prepared_query_reused_across_requests_sees_each_requests_identity() {
    // PostgREST prepares its statements per connection; after five runs
    // PostgreSQL may switch to a generic plan. The policy's identity must be
    // evaluated per execution, never baked into the plan.
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    ex.seed("globex", &["g1", "g2"]);
    let acme = ex.rw_key("acme");
    let globex = ex.rw_key("globex");
    let mut conn = ex.pool_conn();
    // Prepared once, the first time it runs under the request role (the
    // authenticator itself cannot even see schema app); kept for the
    // connection's lifetime.
    conn.client.batch_execute("BEGIN").unwrap();
    conn.client
        .query("SELECT set_config('role', $1, true)", &[&ex.roles.api])
        .unwrap();
    let stmt = conn
        .client
        .prepare("SELECT title FROM app.todos WHERE id > $1 ORDER BY id")
        .unwrap();
    conn.client.batch_execute("COMMIT").unwrap();
    for round in 0..8 {
        for (key, want) in [(&acme, vec!["a1"]), (&globex, vec!["g1", "g2"])] {
            let req = Request::get("/todos").api_key(&key.token);
            let rows = conn.send(&req, &stmt, &[&0i64]).unwrap();
            let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(got, want, "round {round}");
        }
        let bare = Request::get("/todos").without_pre_request();
        assert!(conn.send(&bare, &stmt, &[&0i64]).unwrap().is_empty());
    }
}

#[test]
fn identity_set_inside_a_rolled_back_savepoint_is_discarded() {
    let ex = Example::new();
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let c = &mut conn.client;
    c.batch_execute("BEGIN").unwrap();
    c.query("SELECT set_config('role', $1, true)", &[&ex.roles.api])
        .unwrap();
    c.batch_execute("SAVEPOINT request").unwrap();
    c.query(
        "SELECT set_config('request.headers', $1, true)",
        &[&json!({"x-api-key": acme.token}).to_string()],
    )
    .unwrap();
    c.query("SELECT api_keys.api_key_authenticate()", &[])
        .unwrap();
    c.batch_execute("ROLLBACK TO SAVEPOINT request").unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('request.headers', true), api_keys.current_owner_id()",
            &[],
        )
        .unwrap();
    c.batch_execute("ROLLBACK").unwrap();
    let headers: Option<String> = row.get(0);
    let owner: Option<String> = row.get(1);
    assert!(
        headers.as_deref().unwrap_or_default().is_empty(),
        "request.headers was rolled back"
    );
    assert_eq!(owner, None, "identity outlived the savepoint that set it");
}
