//! Authenticated requests under the example's row-level security: each
//! organisation's key reads and writes its own todos and never another's.

use serde_json::json;

use super::harness::*;

#[test]
fn valid_get_returns_only_the_callers_org_todos() {
    let ex = Example::new();
    ex.seed("acme", &["a1", "a2"]);
    ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let globex = ex.rw_key("globex");
    let mut conn = ex.pool_conn();

    let todos = conn
        .get_todos(&Request::get("/todos").api_key(&acme.token))
        .unwrap();
    assert_eq!(titles(&todos), ["a1", "a2"]);
    assert!(todos.iter().all(|t| t.org_id == "acme"), "{todos:?}");

    let todos = conn
        .get_todos(&Request::get("/todos").api_key(&globex.token))
        .unwrap();
    assert_eq!(titles(&todos), ["g1"]);
}

#[test]
fn valid_get_as_anon_role_like_postgrest_without_jwt_returns_callers_rows() {
    // A request that carries an API key but no JWT runs as db-anon-role.
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos")
        .api_key(&acme.token)
        .run_as(&ex.roles.anon);
    assert_eq!(titles(&conn.get_todos(&req).unwrap()), ["a1"]);
    assert_eq!(conn.identity(&req).unwrap().current_user, ex.roles.anon);
}

#[test]
fn set_local_role_and_set_config_role_give_the_same_result() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for how in [RoleSwitch::SetConfig, RoleSwitch::SetLocalRole] {
        let req = Request::get("/todos").api_key(&acme.token).role_switch(how);
        assert_eq!(titles(&conn.get_todos(&req).unwrap()), ["a1"], "{how:?}");
        assert_eq!(conn.identity(&req).unwrap().current_user, ex.roles.api);
    }
}

#[test]
fn identity_functions_report_the_authenticated_key() {
    let ex = Example::new();
    let key = ex.org_key("acme", &["todos:read"]);
    let mut conn = ex.pool_conn();
    let id = conn
        .identity(&Request::get("/todos").api_key(&key.token))
        .unwrap();
    assert_eq!(id.owner_type.as_deref(), Some("org"));
    assert_eq!(id.owner_id.as_deref(), Some("acme"));
    assert_eq!(id.key_id, Some(key.id));
    assert_eq!(id.scopes, Some(vec!["todos:read".to_owned()]));
    assert!(id.can_read);
    assert!(!id.can_write);
}

#[test]
fn valid_post_inserts_a_todo_owned_by_the_caller() {
    let ex = Example::new();
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::post("/todos").api_key(&acme.token);
    // org_id left out: the column default is current_owner_id().
    let created = conn
        .post_todos(&req, &json!({"title": "buy milk"}))
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].org_id, "acme");
    assert_eq!(created[0].title, "buy milk");
    // Explicitly naming its own organisation is allowed too.
    conn.post_todos(&req, &json!({"org_id": "acme", "title": "call bob"}))
        .unwrap();
    let stored = ex.all_todos();
    assert_eq!(titles(&stored), ["buy milk", "call bob"]);
    assert!(stored.iter().all(|t| t.org_id == "acme"), "{stored:?}");
}

#[test]
fn valid_patch_updates_the_callers_todo() {
    let ex = Example::new();
    let ids = ex.seed("acme", &["a1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::patch("/todos").api_key(&acme.token);
    let updated = conn
        .patch_todo(&req, ids[0], &json!({"done": true}))
        .unwrap();
    assert_eq!(updated.len(), 1);
    assert!(ex.todos_of("acme")[0].done);
}

#[test]
fn key_of_org_a_cannot_read_org_b_todo_by_id() {
    let ex = Example::new();
    let b_ids = ex.seed("globex", &["secret"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&acme.token);
    assert!(conn.get_todo(&req, b_ids[0]).unwrap().is_empty());
    assert!(conn.get_todos(&req).unwrap().is_empty());
}

#[test]
fn key_of_org_a_cannot_insert_a_todo_for_org_b() {
    let ex = Example::new();
    ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::post("/todos").api_key(&acme.token);
    assert_rls_violation(conn.post_todos(&req, &json!({"org_id": "globex", "title": "x"})));
    // Mixed batch: one own row, one foreign row: nothing is inserted.
    assert_rls_violation(conn.post_todos(
        &req,
        &json!([{"org_id": "acme", "title": "mine"}, {"org_id": "globex", "title": "x"}]),
    ));
    assert_eq!(titles(&ex.all_todos()), ["g1"]);
}

#[test]
fn key_of_org_a_cannot_update_org_b_todos() {
    let ex = Example::new();
    let b_ids = ex.seed("globex", &["g1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::patch("/todos").api_key(&acme.token);
    let updated = conn
        .patch_todo(&req, b_ids[0], &json!({"title": "pwned", "done": true}))
        .unwrap();
    assert!(updated.is_empty(), "updated another org's row: {updated:?}");
    let b = ex.todos_of("globex");
    assert_eq!((b[0].title.as_str(), b[0].done), ("g1", false));
}

#[test]
fn key_of_org_a_cannot_move_its_todo_to_org_b() {
    let ex = Example::new();
    let a_ids = ex.seed("acme", &["a1"]);
    let acme = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::patch("/todos").api_key(&acme.token);
    assert_rls_violation(conn.patch_todo(&req, a_ids[0], &json!({"org_id": "globex"})));
    assert_eq!(ex.todos_of("acme").len(), 1);
    assert!(ex.todos_of("globex").is_empty());
}

#[test]
fn read_only_key_cannot_insert_or_update() {
    let ex = Example::new();
    let ids = ex.seed("acme", &["a1"]);
    let read_only = ex.org_key("acme", &["todos:read"]);
    let mut conn = ex.pool_conn();
    let post = Request::post("/todos").api_key(&read_only.token);
    assert_rls_violation(conn.post_todos(&post, &json!({"title": "x"})));
    let patch = Request::patch("/todos").api_key(&read_only.token);
    let updated = conn
        .patch_todo(&patch, ids[0], &json!({"done": true}))
        .unwrap();
    assert!(updated.is_empty());
    assert_eq!(titles(&ex.all_todos()), ["a1"]);
    assert!(!ex.all_todos()[0].done);
}

#[test]
fn key_without_read_scope_sees_no_rows() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let write_only = ex.org_key("acme", &["todos:write"]);
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&write_only.token);
    assert!(conn.get_todos(&req).unwrap().is_empty());
}

#[test]
fn key_of_another_owner_type_with_the_same_id_sees_no_org_rows() {
    // ('user', 'acme') is not organisation 'acme'.
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let user_key = api_keys_tests::issue(
        &mut ex.admin(),
        "owner_type => 'user', owner_id => 'acme', scopes => '{todos:read,todos:write}'",
        &[],
    );
    let mut conn = ex.pool_conn();
    let get = Request::get("/todos").api_key(&user_key.token);
    assert!(conn.get_todos(&get).unwrap().is_empty());
    let post = Request::post("/todos").api_key(&user_key.token);
    assert_rls_violation(conn.post_todos(&post, &json!({"title": "x"})));
    assert_eq!(ex.all_todos().len(), 1);
}

#[test]
fn key_of_org_a_never_sees_org_b_rows_across_many_requests() {
    let ex = Example::new();
    ex.seed("acme", &["a1", "a2"]);
    ex.seed("globex", &["g1", "g2", "g3"]);
    let acme = ex.rw_key("acme");
    let globex = ex.rw_key("globex");
    let mut conn = ex.pool_conn();
    // Alternate keys on one pooled connection, writes between reads.
    for round in 0..5 {
        for (key, org) in [(&acme, "acme"), (&globex, "globex")] {
            let post = Request::post("/todos").api_key(&key.token);
            conn.post_todos(&post, &json!({"title": format!("{org}-{round}")}))
                .unwrap();
            let todos = conn
                .get_todos(&Request::get("/todos").api_key(&key.token))
                .unwrap();
            assert!(
                todos.iter().all(|t| t.org_id == org),
                "{org} saw a foreign row: {todos:?}"
            );
            assert_eq!(todos.len(), ex.todos_of(org).len());
        }
    }
}
