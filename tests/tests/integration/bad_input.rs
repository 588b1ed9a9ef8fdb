//! Each bad `api_key_issue` argument: right SQLSTATE and reason, nothing left
//! behind (SPEC §5 bounds and issue rules).

use api_keys_tests::*;
use postgres::types::ToSql;
use postgres::Client;

/// Issues with `args`, expects `22023 <reason>`, and checks that no table in
/// schema `api_keys` gained a row and that owner user/1 has no key.
#[track_caller]
fn assert_rejected(c: &mut Client, args: &str, params: &[&(dyn ToSql + Sync)], reason: &str) {
    let before = table_row_counts(c);
    assert!(!before.is_empty(), "schema api_keys has no tables to check");
    assert_api_error(try_issue(c, args, params), "22023", reason);
    assert_eq!(
        table_row_counts(c),
        before,
        "a rejected issue left rows behind"
    );
    assert!(list(c, "user", "1").is_empty());
}

fn user_1_with(extra: &str) -> String {
    format!("owner_type => 'user', owner_id => '1', {extra}")
}

#[test]
fn blank_owner_type_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    for blank in ["", "   ", "\t"] {
        assert_rejected(
            &mut c,
            "owner_type => $1::text, owner_id => '1'",
            &[&blank],
            "invalid_argument",
        );
    }
}

#[test]
fn blank_owner_id_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    for blank in ["", "  "] {
        assert_rejected(
            &mut c,
            "owner_type => 'user', owner_id => $1::text",
            &[&blank],
            "invalid_argument",
        );
    }
}

#[test]
fn null_owner_id_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        "owner_type => 'user', owner_id => NULL",
        &[],
        "invalid_argument",
    );
}

#[test]
fn null_owner_type_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        "owner_type => NULL, owner_id => '1'",
        &[],
        "invalid_argument",
    );
}

#[test]
fn owner_id_over_255_chars_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let long = "o".repeat(256);
    assert_rejected(
        &mut c,
        "owner_type => 'user', owner_id => $1::text",
        &[&long],
        "invalid_argument",
    );
    let ok = "o".repeat(255);
    issue(&mut c, "owner_type => 'user', owner_id => $1::text", &[&ok]);
}

#[test]
fn owner_type_over_255_chars_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let long = "t".repeat(256);
    assert_rejected(
        &mut c,
        "owner_type => $1::text, owner_id => '1'",
        &[&long],
        "invalid_argument",
    );
}

#[test]
fn name_over_255_chars_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let long = "n".repeat(256);
    assert_rejected(
        &mut c,
        &user_1_with("name => $1::text"),
        &[&long],
        "invalid_argument",
    );
}

// SPEC: bounds are in characters, so 255 two-byte characters fit.
#[test]
fn name_of_255_multibyte_chars_is_accepted() {
    let db = TestDb::new();
    let mut c = db.connect();
    let name = "é".repeat(255);
    let key = issue(&mut c, &user_1_with("name => $1::text"), &[&name]);
    assert_eq!(key.name.as_deref(), Some(name.as_str()));
}

#[test]
fn more_than_100_scopes_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let scopes: Vec<String> = (0..101).map(|i| format!("scope{i}")).collect();
    assert_rejected(
        &mut c,
        &user_1_with("scopes => $1::text[]"),
        &[&scopes],
        "invalid_argument",
    );
    let key = issue(
        &mut c,
        &user_1_with("scopes => $1::text[]"),
        &[&&scopes[..100]],
    );
    assert_eq!(key.scopes.len(), 100);
}

#[test]
fn ten_kilobyte_scope_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let scopes = vec!["s".repeat(10 * 1024)];
    assert_rejected(
        &mut c,
        &user_1_with("scopes => $1::text[]"),
        &[&scopes],
        "invalid_argument",
    );
}

#[test]
fn scope_over_200_chars_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let scopes = vec!["read".to_owned(), "s".repeat(201)];
    assert_rejected(
        &mut c,
        &user_1_with("scopes => $1::text[]"),
        &[&scopes],
        "invalid_argument",
    );
    let fits = vec!["s".repeat(200)];
    issue(&mut c, &user_1_with("scopes => $1::text[]"), &[&fits]);
}

// SPEC: silent on NULL elements; a NULL scope is not a scope name.
#[test]
fn null_scope_element_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        &user_1_with("scopes => ARRAY['read', NULL]::text[]"),
        &[],
        "invalid_argument",
    );
}

#[test]
fn unknown_expiry_preset_is_invalid_expiry() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        &user_1_with("expires_in => 'forever'"),
        &[],
        "invalid_expiry",
    );
}

#[test]
fn expires_at_in_the_past_is_invalid_expiry() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        &user_1_with("expires_at => now() - interval '1 hour'"),
        &[],
        "invalid_expiry",
    );
}

#[test]
fn metadata_that_is_not_an_object_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    for json in ["[1, 2]", "\"text\"", "42", "null", "true"] {
        assert_rejected(
            &mut c,
            &user_1_with("metadata => $1::text::jsonb"),
            &[&json],
            "invalid_argument",
        );
    }
}

#[test]
fn metadata_over_16_kilobytes_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    let big = serde_json::json!({ "blob": "x".repeat(20 * 1024) });
    assert_rejected(
        &mut c,
        &user_1_with("metadata => $1::jsonb"),
        &[&big],
        "invalid_argument",
    );
    let fits = serde_json::json!({ "blob": "x".repeat(8 * 1024) });
    issue(&mut c, &user_1_with("metadata => $1::jsonb"), &[&fits]);
}

#[test]
fn unknown_key_type_is_unknown_key_type() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_rejected(
        &mut c,
        &user_1_with("key_type => 'nope'"),
        &[],
        "unknown_key_type",
    );
}

#[test]
fn error_message_explains_reason_after_prefix() {
    let db = TestDb::new();
    let mut c = db.connect();
    let msg = assert_api_error(
        try_issue(&mut c, &user_1_with("expires_in => 'forever'"), &[]),
        "22023",
        "invalid_expiry",
    );
    assert!(
        msg.len() > "api_keys: invalid_expiry: ".len(),
        "the message must explain the reason: {msg:?}"
    );
}
