//! Where the key comes from: `x-api-key`, else `Authorization: Bearer` when
//! the credential is one of our tokens; odd, empty and oversized headers.

use serde_json::json;

use super::harness::*;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                   eyJyb2xlIjoiYXBpIiwic3ViIjoiMTIzIn0.\
                   c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU";

fn owner_of(conn: &mut Conn, req: &Request) -> Option<String> {
    conn.identity(req)
        .unwrap_or_else(|e| panic!("request failed: {}", api_keys_tests::describe(&e)))
        .owner_id
}

#[test]
fn mixed_case_header_names_are_lower_cased_like_postgrest_and_accepted() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for name in ["X-API-Key", "X-Api-Key", "x-API-KEY"] {
        let req = Request::get("/todos").header(name, &key.token);
        assert!(req.headers_json().contains("\"x-api-key\""));
        assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"), "{name}");
    }
    let req = Request::get("/todos").header("AUTHORIZATION", &format!("Bearer {}", key.token));
    assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"));
}

#[test]
fn mixed_case_header_names_in_raw_json_are_matched_case_insensitively() {
    // A proxy that hands the names over unchanged.
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for headers in [
        json!({"X-Api-Key": key.token}),
        json!({"Authorization": format!("Bearer {}", key.token)}),
    ] {
        let req = Request::get("/todos").raw_headers(&headers.to_string());
        assert_eq!(
            owner_of(&mut conn, &req).as_deref(),
            Some("acme"),
            "{headers}"
        );
    }
}

#[test]
fn bearer_key_is_accepted_without_x_api_key() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").bearer(&key.token);
    assert_eq!(titles(&conn.get_todos(&req).unwrap()), ["a1"]);
    // The scheme is case-insensitive (RFC 9110).
    let req = Request::get("/todos").header("authorization", &format!("bearer {}", key.token));
    assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"));
}

#[test]
fn x_api_key_wins_when_both_headers_carry_keys() {
    let ex = Example::new();
    let acme = ex.rw_key("acme");
    let globex = ex.rw_key("globex");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos")
        .api_key(&acme.token)
        .bearer(&globex.token);
    assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"));
}

#[test]
fn rejected_x_api_key_is_not_rescued_by_a_valid_bearer_key() {
    let ex = Example::new();
    let revoked = ex.rw_key("acme");
    assert!(api_keys_tests::revoke(&mut ex.admin(), revoked.id));
    let valid = ex.rw_key("globex");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos")
        .api_key(&revoked.token)
        .bearer(&valid.token);
    assert_401(conn.get_todos(&req), "revoked");
}

#[test]
fn jwt_in_authorization_is_ignored_when_x_api_key_carries_the_key() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").bearer(JWT).api_key(&key.token);
    assert_eq!(titles(&conn.get_todos(&req).unwrap()), ["a1"]);
}

#[test]
fn only_a_jwt_in_authorization_is_rejected_with_pt401() {
    let ex = Example::new();
    let mut conn = ex.pool_conn();
    let message = assert_401(
        conn.get_todos(&Request::get("/todos").bearer(JWT)),
        "malformed",
    );
    assert!(
        !message.contains(JWT),
        "the credential is echoed: {message}"
    );
}

#[test]
fn our_token_under_another_authorization_scheme_is_not_used() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for value in [
        format!("Basic {}", key.token),
        key.token.clone(),
        format!("Token {}", key.token),
    ] {
        let req = Request::get("/todos").header("Authorization", &value);
        assert_401(conn.get_todos(&req), "malformed");
    }
}

#[test]
fn empty_header_values_are_rejected_with_pt401() {
    let ex = Example::new();
    let mut conn = ex.pool_conn();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("x-api-key", "")],
        vec![("x-api-key", "   ")],
        vec![("authorization", "")],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer ")],
        vec![("x-api-key", ""), ("authorization", "")],
    ];
    for headers in cases {
        let mut req = Request::get("/todos");
        for (n, v) in &headers {
            req = req.header(n, v);
        }
        assert_401(conn.get_todos(&req), "malformed");
    }
}

#[test]
fn empty_x_api_key_falls_back_to_a_bearer_key() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key("").bearer(&key.token);
    assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"));
}

#[test]
fn x_api_key_value_with_surrounding_whitespace_is_accepted() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let req = Request::get("/todos").api_key(&format!("  {}\t", key.token));
    assert_eq!(owner_of(&mut conn, &req).as_deref(), Some("acme"));
}

#[test]
fn request_headers_that_are_not_a_json_object_are_rejected_with_pt401() {
    let ex = Example::new();
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    for raw in [
        String::new(),
        "not json".to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        format!("[\"x-api-key\", \"{}\"]", key.token),
        json!({"x-api-key": 42}).to_string(),
        json!({"x-api-key": [key.token]}).to_string(),
        format!("{{\"x-api-key\": \"{}\"", key.token), // truncated
    ] {
        let req = Request::get("/todos").raw_headers(&raw);
        assert_401(conn.get_todos(&req), "malformed");
    }
}

#[test]
fn oversized_headers_are_rejected_with_pt401_and_the_connection_survives() {
    let ex = Example::new();
    ex.seed("acme", &["a1"]);
    let key = ex.rw_key("acme");
    let mut conn = ex.pool_conn();
    let huge = "A".repeat(1024 * 1024);
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&huge)),
        "malformed",
    );
    let bearer = Request::get("/todos").bearer(&huge);
    assert_401(conn.get_todos(&bearer), "malformed");
    // 1 MB of other headers next to a valid key: accepted.
    let padded = Request::get("/todos")
        .header("x-padding", &huge)
        .api_key(&key.token);
    assert_eq!(titles(&conn.get_todos(&padded).unwrap()), ["a1"]);
    // A key-shaped prefix followed by 1 MB.
    let long_key = format!("{}{}", key.token, huge);
    assert_401(
        conn.get_todos(&Request::get("/todos").api_key(&long_key)),
        "malformed",
    );
    // Same backend, still healthy.
    let req = Request::get("/todos").api_key(&key.token);
    assert_eq!(titles(&conn.get_todos(&req).unwrap()), ["a1"]);
}
