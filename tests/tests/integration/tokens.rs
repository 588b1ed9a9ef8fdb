//! Token shape, prefix GUC and masking (SPEC §3, §5 `api_key_mask`,
//! `api_key_environment_of`).

use std::collections::HashSet;

use api_keys_tests::*;
use postgres::Client;

fn mask(c: &mut Client, token: Option<&str>) -> Option<String> {
    c.query_one("SELECT api_keys.api_key_mask($1::text)", &[&token])
        .unwrap_or_else(|e| panic!("api_key_mask must never raise: {}", describe(&e)))
        .get(0)
}

fn environment_of(c: &mut Client, token: Option<&str>) -> Option<String> {
    c.query_one(
        "SELECT api_keys.api_key_environment_of($1::text)",
        &[&token],
    )
    .unwrap_or_else(|e| panic!("api_key_environment_of must never raise: {}", describe(&e)))
    .get(0)
}

fn malformed_inputs() -> Vec<Option<String>> {
    let real_shape = forge_token("ak");
    vec![
        None,
        Some(String::new()),
        Some("garbage".into()),
        Some("ak_".into()),
        Some(mutate_at(&real_shape, 10)),
        Some(format!("{real_shape}x")),
        Some(real_shape[..real_shape.len() - 1].to_owned()),
        Some(real_shape.to_uppercase()),
        Some(format!("ak_{}", "é".repeat(38))),
        Some("x".repeat(1_000_000)),
        Some("'; SELECT pg_sleep(10); --".into()),
    ]
}

#[test]
fn issued_token_has_default_ak_prefix_and_38_char_base62_body() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert_eq!(prefix_of(&key.token), "ak", "token {}", key.token);
    assert_eq!(key.token.len(), 3 + 38);
    assert!(
        body_of(&key.token)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric()),
        "body must be base62: {}",
        key.token
    );
}

#[test]
fn issued_token_carries_crc32_base62_checksum() {
    let db = TestDb::new();
    let mut c = db.connect();
    for i in 0..20 {
        let key = issue_for(&mut c, "user", &i.to_string());
        assert!(
            checksum_ok(&key.token),
            "last 6 chars must be CRC32 base62 of the rest: {}",
            key.token
        );
    }
}

#[test]
fn issued_token_matches_secret_scanner_regex() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let re = scanner_regex();
    let text = format!("config: API_KEY=\"{}\"\n", key.token);
    let found = re.find(&text).map(|m| m.as_str());
    assert_eq!(found, Some(key.token.as_str()));
}

#[test]
fn random_part_uses_whole_base62_alphabet_and_tokens_are_unique() {
    let db = TestDb::new();
    let mut c = db.connect();
    let tokens: Vec<String> = (0..120)
        .map(|_| issue_for(&mut c, "user", "1").token)
        .collect();
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "tokens must be unique");
    // 120 * 32 random characters miss a base62 symbol with probability ~1e-21.
    let seen: HashSet<u8> = tokens
        .iter()
        .flat_map(|t| body_of(t)[..32].bytes().collect::<Vec<_>>())
        .collect();
    assert_eq!(seen.len(), 62, "random part must draw from all 62 symbols");
}

#[test]
fn token_prefix_guc_changes_prefix_of_new_tokens() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SET api_keys.token_prefix = 'acme'")
        .unwrap();
    let key = issue_for(&mut c, "user", "1");
    assert!(key.token.starts_with("acme_"), "token {}", key.token);
    assert_eq!(prefix_of(&key.token), "acme");
    assert!(checksum_ok(&key.token));
    assert!(scanner_regex().is_match(&key.token));
    verify(&mut c, &key.token).assert_code("valid");
}

#[test]
fn token_prefix_guc_defaults_to_ak() {
    let db = TestDb::new();
    let mut c = db.connect();
    let shown: String = c
        .query_one("SELECT current_setting('api_keys.token_prefix')", &[])
        .unwrap()
        .get(0);
    assert_eq!(shown, "ak");
}

#[test]
fn issued_masked_token_shows_prefix_and_last_four() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert_eq!(key.masked_token, expected_mask(&key.token));
    assert!(key.masked_token.starts_with("ak_••••"));
    assert_eq!(get_key(&mut c, key.id).masked_token, key.masked_token);
}

#[test]
fn api_key_mask_masks_a_well_formed_token() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert_eq!(
        mask(&mut c, Some(&key.token)),
        Some(expected_mask(&key.token))
    );
    let forged = forge_token("zz");
    assert_eq!(mask(&mut c, Some(&forged)), Some(expected_mask(&forged)));
}

#[test]
fn api_key_mask_returns_null_for_malformed_input() {
    let db = TestDb::new();
    let mut c = db.connect();
    for input in malformed_inputs() {
        let shown: Option<String> = input.as_deref().map(|s| s.chars().take(60).collect());
        assert_eq!(mask(&mut c, input.as_deref()), None, "input {shown:?}");
    }
}

#[test]
fn api_key_environment_of_returns_null_for_malformed_input() {
    let db = TestDb::new();
    let mut c = db.connect();
    for input in malformed_inputs() {
        let shown: Option<String> = input.as_deref().map(|s| s.chars().take(60).collect());
        assert_eq!(
            environment_of(&mut c, input.as_deref()),
            None,
            "input {shown:?}"
        );
    }
}

#[test]
fn api_key_environment_of_is_null_for_key_without_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert_eq!(environment_of(&mut c, Some(&key.token)), None);
}
