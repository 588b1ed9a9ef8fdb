//! `api_key_verify`: codes, identity columns, robustness (SPEC §5 Verify).

use api_keys_tests::*;
use postgres::Client;
use rand::Rng;
use serde_json::json;

fn issue_with_scopes(c: &mut Client, scopes: &[&str]) -> IssuedKey {
    issue(
        c,
        "owner_type => 'user', owner_id => '42', name => 'ci', scopes => $1::text[], \
         metadata => '{\"plan\":\"pro\"}'",
        &[&scopes],
    )
}

#[test]
fn issued_key_verifies_as_valid_with_identity_columns() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_with_scopes(&mut c, &["read", "write"]);
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(key.id));
    assert_eq!(v.owner_type.as_deref(), Some("user"));
    assert_eq!(v.owner_id.as_deref(), Some("42"));
    assert_eq!(v.name.as_deref(), Some("ci"));
    assert_eq!(v.key_type, None);
    assert_eq!(v.environment, None);
    assert_eq!(v.scopes, Some(vec!["read".into(), "write".into()]));
    assert_eq!(v.metadata, Some(json!({"plan": "pro"})));
    assert_eq!(v.expires_at, None);
}

#[test]
fn verify_reports_expires_at_of_expiring_key() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_in => '7_days'",
        &[],
    );
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    assert_eq!(v.expires_at, key.expires_at);
    assert!(v.expires_at.is_some());
}

#[test]
fn revoked_key_verifies_as_revoked_without_identity() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert!(revoke(&mut c, key.id));
    let v = verify(&mut c, &key.token);
    v.assert_code("revoked");
    v.assert_identity_null();
}

#[test]
fn key_past_expiry_verifies_as_expired_without_identity() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    verify(&mut c, &key.token).assert_code("valid");
    wait_for_one_second_expiry();
    let v = verify(&mut c, &key.token);
    v.assert_code("expired");
    v.assert_identity_null();
}

#[test]
fn unknown_well_formed_token_is_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    issue_for(&mut c, "user", "1");
    let forged = forge_token("ak");
    assert!(checksum_ok(&forged) && scanner_regex().is_match(&forged));
    let v = verify(&mut c, &forged);
    v.assert_code("not_found");
    v.assert_identity_null();
}

#[test]
fn real_token_with_new_random_part_and_recomputed_checksum_is_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let head = &key.token[..key.token.len() - 6];
    let changed = mutate_at(head, head.len() - 1);
    let forged = with_checksum(&changed);
    verify(&mut c, &forged).assert_code("not_found");
}

// SPEC: an unknown prefix is still the right shape, so it is not `malformed`.
#[test]
fn well_formed_token_with_unknown_prefix_is_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    verify(&mut c, &forge_token("zz_live")).assert_code("not_found");
}

#[test]
fn any_single_changed_character_makes_token_malformed() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    for i in 0..key.token.len() {
        let changed = mutate_at(&key.token, i);
        let v = verify(&mut c, &changed);
        assert_eq!(v.code, "malformed", "changed index {i}: {changed}");
        v.assert_identity_null();
    }
}

#[test]
fn missing_scope_is_insufficient_scope_with_identity() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_with_scopes(&mut c, &["read"]);
    let v = verify_scopes(&mut c, &key.token, &["read", "write"]);
    v.assert_code("insufficient_scope");
    assert_eq!(v.key_id, Some(key.id));
    assert_eq!(v.owner_type.as_deref(), Some("user"));
    assert_eq!(v.owner_id.as_deref(), Some("42"));
    assert_eq!(v.name.as_deref(), Some("ci"));
    assert_eq!(v.scopes, Some(vec!["read".to_owned()]));
    assert_eq!(v.metadata, Some(json!({"plan": "pro"})));
}

#[test]
fn held_required_scopes_verify_as_valid() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_with_scopes(&mut c, &["read", "write", "admin"]);
    verify_scopes(&mut c, &key.token, &["write", "read"]).assert_code("valid");
}

#[test]
fn null_required_scopes_means_none_required() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_with_scopes(&mut c, &[]);
    let v = verify_sql(
        &mut c,
        "$1::text, required_scopes => NULL::text[]",
        &[&key.token],
    );
    v.assert_code("valid");
    assert_eq!(v.key_id, Some(key.id));
}

#[test]
fn verify_of_null_token_is_malformed() {
    let db = TestDb::new();
    let mut c = db.connect();
    // SPEC: "never raises … it answers with a code"; NULL has no valid shape.
    let v = verify_sql(&mut c, "NULL::text", &[]);
    v.assert_code("malformed");
    v.assert_identity_null();
}

#[test]
fn verify_of_empty_token_is_malformed() {
    let db = TestDb::new();
    let mut c = db.connect();
    verify(&mut c, "").assert_code("malformed");
}

#[test]
fn verify_of_one_megabyte_token_is_malformed() {
    let db = TestDb::new();
    let mut c = db.connect();
    verify(&mut c, &"A".repeat(1 << 20)).assert_code("malformed");
    let key = issue_for(&mut c, "user", "1");
    let long = format!("{}{}", key.token, "0".repeat(1 << 20));
    verify(&mut c, &long).assert_code("malformed");
}

#[test]
fn verify_of_random_bytes_never_raises() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let len = rng.gen_range(1..120);
        // Any byte but NUL, read as Latin-1 so the text is valid UTF-8.
        let text: String = (0..len)
            .map(|_| char::from(rng.gen_range(1u8..=255)))
            .collect();
        let v = verify(&mut c, &text);
        assert_eq!(v.code, "malformed", "input {text:?}");
    }
}

#[test]
fn verify_of_unicode_text_is_malformed() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let fullwidth: String = key
        .token
        .chars()
        .map(|ch| match ch {
            '0'..='9' => char::from_u32(ch as u32 - '0' as u32 + 0xFF10).unwrap_or(ch),
            _ => ch,
        })
        .collect();
    let inputs = [
        "🔑".repeat(41),
        format!("ak_{}", "ß".repeat(38)),
        format!("ak_{}", "Ωmega".repeat(8)),
        format!("ａｋ_{}", body_of(&key.token)),
        fullwidth,
        format!("{}\u{200b}", key.token),
        "\u{feff}".to_owned() + &key.token,
    ];
    for input in inputs {
        assert_ne!(input, key.token);
        assert_eq!(verify(&mut c, &input).code, "malformed", "input {input:?}");
    }
}

#[test]
fn verify_of_sql_injection_strings_is_malformed_and_harmless() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let inputs = [
        "' OR '1'='1".to_owned(),
        "'; DELETE FROM api_keys.keys; --".to_owned(),
        format!("{}' OR 1=1 --", key.token),
        "ak_') UNION SELECT * FROM pg_authid --".to_owned(),
        "$$; DROP SCHEMA api_keys CASCADE; $$".to_owned(),
        "%' AND pg_sleep(5) IS NULL --".to_owned(),
        "\\x00\\'".to_owned(),
    ];
    for input in &inputs {
        assert_eq!(verify(&mut c, input).code, "malformed", "input {input:?}");
    }
    verify(&mut c, &key.token).assert_code("valid");
}

#[test]
fn verify_works_inside_read_only_transaction() {
    let db = TestDb::new();
    let mut c = db.connect();
    let good = issue_for(&mut c, "user", "1");
    let revoked = issue_for(&mut c, "user", "1");
    revoke(&mut c, revoked.id);
    let mut tx = c.build_transaction().read_only(true).start().unwrap();
    verify(&mut tx, &good.token).assert_code("valid");
    verify(&mut tx, &good.token).assert_code("valid");
    verify(&mut tx, &revoked.token).assert_code("revoked");
    verify(&mut tx, &forge_token("ak")).assert_code("not_found");
    tx.commit().expect("read-only transaction commits");
}

/// Verify caches where the key tables are per session; a dropped and
/// re-created extension (new tables, new OIDs) must be found in the same
/// session, and a key type defined after that must be read for its ceiling.
#[test]
fn verify_follows_a_dropped_and_recreated_extension_in_the_same_session() {
    let db = TestDb::new();
    let mut c = db.connect();
    let old = issue_for(&mut c, "user", "1");
    verify(&mut c, &old.token).assert_code("valid");
    c.batch_execute("DROP EXTENSION api_keys; CREATE EXTENSION api_keys;")
        .expect("re-create the extension");
    verify(&mut c, &old.token).assert_code("not_found");
    c.batch_execute("SELECT api_keys.api_key_type_define('secret', 'sk', ARRAY['read'])")
        .expect("define a type");
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', scopes => ARRAY['read']",
        &[],
    );
    verify_scopes(&mut c, &key.token, &["read"]).assert_code("valid");
    c.batch_execute("SELECT api_keys.api_key_type_define('secret', 'sk', ARRAY['write'])")
        .expect("narrow the ceiling");
    verify_scopes(&mut c, &key.token, &["read"]).assert_code("insufficient_scope");
}

/// Verify looks its row type up once per session and follows the type
/// cache: once `api_keys.verification` is altered, a session that verified
/// before refuses with the library's check (in both forms) instead of
/// building rows of the old layout.
#[test]
fn verify_checks_its_row_type_again_once_the_type_changes() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    verify(&mut c, &key.token).assert_code("valid");
    // A changed descriptor that still fits: rebuilt (the old copy freed)
    // and used, twice.
    for rename in [
        "ALTER TYPE api_keys.verification RENAME ATTRIBUTE name TO key_name",
        "ALTER TYPE api_keys.verification RENAME ATTRIBUTE key_name TO name",
    ] {
        c.batch_execute(rename).expect("rename an attribute");
        let code: String = c
            .query_one("SELECT (api_keys.api_key_verify($1)).code", &[&key.token])
            .expect("verify after the rename")
            .get(0);
        assert_eq!(code, "valid", "{rename}");
    }
    verify(&mut c, &key.token).assert_code("valid");
    c.batch_execute("ALTER TYPE api_keys.verification ADD ATTRIBUTE extra integer")
        .expect("alter the type");
    for sql in [
        "SELECT * FROM api_keys.api_key_verify($1)",
        "SELECT api_keys.api_key_verify($1)",
    ] {
        let e = c.query_one(sql, &[&key.token]).unwrap_err();
        let message = e.as_db_error().map(|d| d.message().to_owned());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("has 12 attributes, but this library fills 11")),
            "{sql}: {e:?}"
        );
    }
}

/// Verify is VOLATILE: like any volatile function's queries it sees a key
/// issued earlier in the same statement.
#[test]
fn key_issued_earlier_in_the_same_statement_verifies() {
    let db = TestDb::new();
    let mut c = db.connect();
    let code: String = c
        .query_one(
            "SELECT (api_keys.api_key_verify(k.token)).code \
               FROM api_keys.api_key_issue('user', '1') AS k",
            &[],
        )
        .expect("issue and verify in one statement")
        .get(0);
    assert_eq!(code, "valid");
}

/// Under REPEATABLE READ, verify sees the transaction's snapshot: a key
/// revoked by another session after the snapshot was taken still verifies.
#[test]
fn repeatable_read_transaction_sees_its_own_snapshot() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    verify(&mut tx, &key.token).assert_code("valid");
    let mut other = db.connect();
    assert!(revoke(&mut other, key.id));
    verify(&mut tx, &key.token).assert_code("valid");
    tx.commit().unwrap();
    verify(&mut c, &key.token).assert_code("revoked");
}

/// verify walks text[] arguments itself (no deconstruct_array): every shape
/// PostgreSQL can pass must read as deconstruct_array would give it, every
/// dimension flattened, and a NULL requirement is never met.
#[test]
fn required_scopes_read_the_same_in_every_array_shape() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut held: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    held.push("ünïcødé:read".into());
    let held_refs: Vec<&str> = held.iter().map(String::as_str).collect();
    let key = issue_with_scopes(&mut c, &held_refs);
    let all = format!("'{{{}}}'::text[]", held.join(","));
    let all_but_last_null = format!("'{{{},NULL}}'::text[]", held.join(","));
    let with_null_at_33 = {
        let mut v: Vec<&str> = held_refs.clone();
        v.insert(33, "NULL");
        format!("'{{{}}}'::text[]", v.join(","))
    };
    let all_and_one_more = format!("'{{{},nope}}'::text[]", held.join(","));
    let cases: Vec<(&str, &str)> = vec![
        ("'{}'::text[]", "valid"),
        ("ARRAY[]::text[]", "valid"),
        ("array_fill('s0'::text, ARRAY[2, 3])", "valid"),
        ("'{s0,NULL}'::text[]", "insufficient_scope"),
        ("ARRAY[NULL]::text[]", "insufficient_scope"),
        ("'{{s0,s1},{s2,s3}}'::text[]", "valid"),
        ("'{{s0,s1},{s2,nope}}'::text[]", "insufficient_scope"),
        ("'{{{s0}},{{s39}}}'::text[]", "valid"),
        ("'[5:6]={s0,s1}'::text[]", "valid"),
        ("'[-3:-2]={s0,nope}'::text[]", "insufficient_scope"),
        ("'{ünïcødé:read}'::text[]", "valid"),
        ("'{ünïcødé:write}'::text[]", "insufficient_scope"),
        ("ARRAY['s1', 's1', 's1']", "valid"),
        ("ARRAY[''::text]", "insufficient_scope"),
        (&all, "valid"),
        (&all_but_last_null, "insufficient_scope"),
        (&with_null_at_33, "insufficient_scope"),
        (&all_and_one_more, "insufficient_scope"),
    ];
    for (required, expected) in cases {
        let v = verify_sql(
            &mut c,
            &format!("$1::text, required_scopes => {required}"),
            &[&key.token],
        );
        assert_eq!(v.code, expected, "required_scopes => {required}");
        if expected == "valid" {
            assert_eq!(v.scopes.as_deref(), Some(&held[..]), "{required}");
        }
    }
}

/// A required-scopes array that arrives compressed or out of line (read
/// from a table) is expanded before it is walked.
#[test]
fn required_scopes_from_a_compressed_or_toasted_column_are_read() {
    let db = TestDb::new();
    let mut c = db.connect();
    let held: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let held_refs: Vec<&str> = held.iter().map(String::as_str).collect();
    let key = issue_with_scopes(&mut c, &held_refs);
    c.batch_execute(
        "CREATE TEMP TABLE req (kind text, r text[]);
         INSERT INTO req SELECT 'compressed', array_agg('s' || (g % 40)) FROM generate_series(1, 5000) g;
         INSERT INTO req SELECT 'compressed_miss', array_agg('s' || (g % 40)) || 'nope'::text FROM generate_series(1, 5000) g;
         ALTER TABLE req ALTER COLUMN r SET STORAGE EXTERNAL;
         INSERT INTO req SELECT 'external', array_agg('s' || (g % 40)) FROM generate_series(1, 5000) g;
         INSERT INTO req SELECT 'external_miss', 'nope'::text || array_agg('s' || (g % 40)) FROM generate_series(1, 5000) g;",
    )
    .unwrap();
    let rows = c
        .query(
            "SELECT kind, (api_keys.api_key_verify($1, r)).code, \
                    pg_column_compression(r) IS NOT NULL AS compressed, \
                    pg_column_size(r) > 8160 AS out_of_line \
               FROM req ORDER BY kind",
            &[&key.token],
        )
        .unwrap();
    let got: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            // compressed, in line or not
            ("compressed".into(), "valid".into(), true, false),
            (
                "compressed_miss".into(),
                "insufficient_scope".into(),
                true,
                false
            ),
            // uncompressed and larger than a page: out of line
            ("external".into(), "valid".into(), false, true),
            (
                "external_miss".into(),
                "insufficient_scope".into(),
                false,
                true
            ),
        ]
    );
}

/// A key's stored scopes are read in place whatever their storage: a short
/// in-line array, a long in-line one, one compressed, one out of line.
#[test]
fn stored_scopes_read_the_same_in_every_storage() {
    let db = TestDb::new();
    let mut c = db.connect();
    let one = vec!["read".to_owned()];
    let forty: Vec<String> = (0..40).map(|i| format!("scope:{i}")).collect();
    // 100 scopes of 200 characters, over TOAST's threshold: 20 KB that
    // compresses well, and 60 KB of random CJK that does not
    let repetitive: Vec<String> = (0..100)
        .map(|i| format!("{i:03}{}", "r".repeat(197)))
        .collect();
    let mut rng = rand::thread_rng();
    let random: Vec<String> = (0..100)
        .map(|_| {
            (0..200)
                .map(|_| char::from_u32(rng.gen_range(0x4E00..0x9FA0)).unwrap())
                .collect()
        })
        .collect();
    for (what, scopes) in [
        ("one", &one),
        ("forty", &forty),
        ("compressible", &repetitive),
        ("incompressible", &random),
    ] {
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let key = issue_with_scopes(&mut c, &refs);
        let last = scopes.last().unwrap().as_str();
        let v = verify_scopes(&mut c, &key.token, &[last, &scopes[0]]);
        v.assert_code("valid");
        assert_eq!(v.scopes.as_ref(), Some(scopes), "{what}");
        let v = verify_scopes(&mut c, &key.token, &[last, "not-held"]);
        v.assert_code("insufficient_scope");
        assert_eq!(v.scopes.as_ref(), Some(scopes), "{what}");
    }
    // How each array is stored: compressed or not, and its stored size
    // (uncompressed and over a page's 8 KB means out of line).
    let storage: Vec<(i64, bool, i32)> = c
        .query(
            "SELECT cardinality(scopes)::int8, pg_column_compression(scopes) IS NOT NULL, \
                    pg_column_size(scopes) \
               FROM api_keys.keys ORDER BY created_at, cardinality(scopes)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(storage.len(), 4, "{storage:?}");
    assert!(
        storage[0].2 < 127,
        "one scope: a short in-line array: {storage:?}"
    );
    assert!(
        !storage[1].1 && storage[1].2 < 2000,
        "forty: in line, uncompressed: {storage:?}"
    );
    assert!(
        storage[2].1,
        "the repetitive scopes are stored compressed: {storage:?}"
    );
    assert!(
        !storage[3].1 && storage[3].2 > 8160,
        "the random ones out of line: {storage:?}"
    );
}
