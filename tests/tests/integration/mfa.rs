//! Per-key MFA (issue 12; SPEC §5): TOTP enrollment per owner, sensitive
//! scopes, the key flag, otp_required / otp_invalid in verify, replay
//! refusal in shared memory (also for READ ONLY transactions), the `otp`
//! header of api_key_authenticate, and where the secret never shows.

use api_keys_tests::totp::{base32_decode, code_at_step, current_step};
use api_keys_tests::*;
use postgres::Client;

/// Enrolls and confirms `owner`; returns the secret's bytes and its base32.
fn enable(c: &mut Client, owner_type: &str, owner_id: &str) -> (Vec<u8>, String) {
    let row = c
        .query_one(
            "SELECT secret, otpauth_uri FROM api_keys.api_key_mfa_enroll($1, $2)",
            &[&owner_type, &owner_id],
        )
        .unwrap();
    let b32: String = row.get(0);
    let uri: String = row.get(1);
    assert!(uri.starts_with("otpauth://totp/api_keys:"), "{uri}");
    assert!(uri.contains(&format!("secret={b32}")), "{uri}");
    let secret = base32_decode(&b32);
    assert_eq!(secret.len(), 20);
    let code = code_at_step(&secret, current_step());
    let ok: bool = c
        .query_one(
            "SELECT api_keys.api_key_mfa_confirm($1, $2, $3)",
            &[&owner_type, &owner_id, &code],
        )
        .unwrap()
        .get(0);
    assert!(ok, "confirm with the current code");
    (secret, b32)
}

fn verify_otp(
    c: &mut impl postgres::GenericClient,
    token: &str,
    scopes: &[&str],
    otp: Option<&str>,
) -> Verification {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    Verification::from_row(
        &c.query_one(
            "SELECT * FROM api_keys.api_key_verify($1, $2, NULL, $3)",
            &[&token, &scopes, &otp],
        )
        .unwrap(),
    )
}

fn mfa_setup(c: &mut Client) -> (Vec<u8>, IssuedKey) {
    configure(c, "api_keys.api_key_scope_define('read')");
    configure(c, "api_keys.api_key_scope_define('admin', mfa => true)");
    let (secret, _) = enable(c, "user", "1");
    let key = issue(
        c,
        "owner_type => 'user', owner_id => '1', scopes => '{read,admin}', mfa => true",
        &[],
    );
    (secret, key)
}

#[test]
fn enrollment_goes_none_pending_enabled_and_cannot_restart_while_enabled() {
    let db = TestDb::new();
    let mut c = db.connect();
    let status = |c: &mut Client| -> String {
        c.query_one("SELECT api_keys.api_key_mfa_status('user', '1')", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(status(&mut c), "none");
    let row = c
        .query_one(
            "SELECT secret FROM api_keys.api_key_mfa_enroll('user', '1')",
            &[],
        )
        .unwrap();
    let first: String = row.get(0);
    assert_eq!(status(&mut c), "pending");
    // a new enrollment replaces a pending one
    let second: String = c
        .query_one(
            "SELECT secret FROM api_keys.api_key_mfa_enroll('user', '1')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_ne!(first, second);
    let wrong = code_at_step(&base32_decode(&first), current_step());
    let ok: bool = c
        .query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', '1', $1)",
            &[&wrong],
        )
        .unwrap()
        .get(0);
    assert!(!ok, "a code of the replaced secret does not confirm");
    assert_eq!(status(&mut c), "pending");
    let right = code_at_step(&base32_decode(&second), current_step());
    let ok: bool = c
        .query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', '1', $1)",
            &[&right],
        )
        .unwrap()
        .get(0);
    assert!(ok);
    assert_eq!(status(&mut c), "enabled");
    assert_api_error(
        c.query_one(
            "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1')",
            &[],
        ),
        "22023",
        "invalid_argument",
    );
    assert_api_error(
        c.query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', '1', '000000')",
            &[],
        ),
        "22023",
        "invalid_argument",
    );
    assert_api_error(
        c.query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', '2', '000000')",
            &[],
        ),
        "22023",
        "invalid_argument",
    );
    let disabled: bool = c
        .query_one("SELECT api_keys.api_key_mfa_disable('user', '1')", &[])
        .unwrap()
        .get(0);
    assert!(disabled);
    assert_eq!(status(&mut c), "none");
    let again: bool = c
        .query_one("SELECT api_keys.api_key_mfa_disable('user', '1')", &[])
        .unwrap()
        .get(0);
    assert!(!again);
}

#[test]
fn a_key_cannot_get_mfa_while_its_owner_is_not_enrolled() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_api_error(
        try_issue(
            &mut c,
            "owner_type => 'user', owner_id => '1', mfa => true",
            &[],
        ),
        "22023",
        "mfa_not_enabled",
    );
    let key = issue_for(&mut c, "user", "1");
    assert_api_error(
        c.query_one(
            "SELECT api_keys.api_key_update($1, mfa => true)",
            &[&key.id],
        ),
        "22023",
        "mfa_not_enabled",
    );
    // pending is not enabled
    c.query_one(
        "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1')",
        &[],
    )
    .unwrap();
    assert_api_error(
        try_issue(
            &mut c,
            "owner_type => 'user', owner_id => '1', mfa => true",
            &[],
        ),
        "22023",
        "mfa_not_enabled",
    );
    assert!(!get_key(&mut c, key.id).mfa);
}

#[test]
fn a_sensitive_scope_needs_a_code_and_a_plain_one_does_not() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    assert!(get_key(&mut c, key.id).mfa);
    verify_otp(&mut c, &key.token, &["read"], None).assert_code("valid");
    verify_otp(&mut c, &key.token, &[], None).assert_code("valid");
    let v = verify_otp(&mut c, &key.token, &["admin"], None);
    v.assert_code("otp_required");
    assert_eq!(
        v.key_id,
        Some(key.id),
        "identity is filled for otp_required"
    );
    let v = verify_otp(&mut c, &key.token, &["read", "admin"], Some("000000"));
    v.assert_code("otp_invalid");
    assert_eq!(v.owner_id.as_deref(), Some("1"));
    for garbage in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
        verify_otp(&mut c, &key.token, &["admin"], Some(garbage)).assert_code("otp_invalid");
    }
    let code = code_at_step(&secret, current_step() + 1);
    verify_otp(&mut c, &key.token, &["admin"], Some(&code)).assert_code("valid");
    // insufficient_scope comes first
    verify_otp(&mut c, &key.token, &["admin", "other"], None).assert_code("insufficient_scope");
    // a key without the flag needs no code, even for the sensitive scope
    let plain = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', scopes => '{admin}'",
        &[],
    );
    verify_otp(&mut c, &plain.token, &["admin"], None).assert_code("valid");
}

#[test]
fn a_step_ago_and_the_next_step_are_accepted_two_steps_away_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    let now = current_step();
    // refused codes do not count as used
    verify_otp(
        &mut c,
        &key.token,
        &["admin"],
        Some(&code_at_step(&secret, now - 2)),
    )
    .assert_code("otp_invalid");
    verify_otp(
        &mut c,
        &key.token,
        &["admin"],
        Some(&code_at_step(&secret, now + 2)),
    )
    .assert_code("otp_invalid");
    // confirm used `now`: a step ago is then a replay for this owner; the
    // next step is fresh
    verify_otp(
        &mut c,
        &key.token,
        &["admin"],
        Some(&code_at_step(&secret, now + 1)),
    )
    .assert_code("valid");
    // a step ago on a fresh owner (whose confirm used step `now`… so enroll
    // and confirm another owner with the previous step's code)
    let row = c
        .query_one(
            "SELECT secret FROM api_keys.api_key_mfa_enroll('user', '2')",
            &[],
        )
        .unwrap();
    let s2 = base32_decode(&row.get::<_, String>(0));
    let now = current_step();
    let ok: bool = c
        .query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', '2', $1)",
            &[&code_at_step(&s2, now - 1)],
        )
        .unwrap()
        .get(0);
    assert!(ok, "a code from a step ago confirms");
    let k2 = issue(
        &mut c,
        "owner_type => 'user', owner_id => '2', scopes => '{admin}', mfa => true",
        &[],
    );
    verify_otp(&mut c, &k2.token, &["admin"], Some(&code_at_step(&s2, now))).assert_code("valid");
}

#[test]
fn a_code_is_refused_the_second_time_also_after_a_read_only_use() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    let code = code_at_step(&secret, current_step() + 1);
    let mut tx = c.build_transaction().read_only(true).start().unwrap();
    verify_otp(&mut tx, &key.token, &["admin"], Some(&code)).assert_code("valid");
    tx.commit().unwrap();
    verify_otp(&mut c, &key.token, &["admin"], Some(&code)).assert_code("otp_invalid");
    // from another session too (shared memory), and for another key of the owner
    let mut other = db.connect();
    let second = issue(
        &mut other,
        "owner_type => 'user', owner_id => '1', scopes => '{admin}', mfa => true",
        &[],
    );
    verify_otp(&mut other, &second.token, &["admin"], Some(&code)).assert_code("otp_invalid");
}

#[test]
fn disabling_mfa_makes_mfa_keys_fail_closed_for_sensitive_scopes() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    configure(&mut c, "api_keys.api_key_mfa_disable('user', '1')");
    assert!(get_key(&mut c, key.id).mfa, "the key keeps its flag");
    verify_otp(&mut c, &key.token, &["admin"], None).assert_code("otp_required");
    let code = code_at_step(&secret, current_step() + 1);
    verify_otp(&mut c, &key.token, &["admin"], Some(&code)).assert_code("otp_invalid");
    verify_otp(&mut c, &key.token, &["read"], None).assert_code("valid");
    // enrolling again revives the key with the new secret
    let (fresh, _) = enable(&mut c, "user", "1");
    let code = code_at_step(&fresh, current_step() + 1);
    verify_otp(&mut c, &key.token, &["admin"], Some(&code)).assert_code("valid");
    // and the flag can be taken off
    c.query_one(
        "SELECT api_keys.api_key_update($1, mfa => false)",
        &[&key.id],
    )
    .unwrap();
    verify_otp(&mut c, &key.token, &["admin"], None).assert_code("valid");
}

#[test]
fn the_otp_header_reaches_api_key_authenticate() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    let attempt = |c: &mut Client, otp: Option<&str>| -> Result<(), postgres::Error> {
        let headers = match otp {
            Some(o) => serde_json::json!({"x-api-key": key.token, "otp": o}),
            None => serde_json::json!({"x-api-key": key.token}),
        };
        let mut tx = c.transaction().unwrap();
        tx.execute(
            "SELECT set_config('request.headers', $1, true)",
            &[&headers.to_string()],
        )
        .unwrap();
        let r = tx
            .execute("SELECT api_keys.api_key_authenticate('{admin}')", &[])
            .map(|_| ());
        if r.is_ok() {
            let id: Option<uuid::Uuid> = tx
                .query_one("SELECT api_keys.current_key_id()", &[])
                .unwrap()
                .get(0);
            assert_eq!(id, Some(key.id));
        }
        r
    };
    let m = assert_sqlstate(attempt(&mut c, None), "PT401");
    assert!(m.contains("otp_required"), "{m}");
    let m = assert_sqlstate(attempt(&mut c, Some("000000")), "PT401");
    assert!(m.contains("otp_invalid"), "{m}");
    attempt(&mut c, Some(&code_at_step(&secret, current_step() + 1))).expect("a fresh code");
}

#[test]
fn the_secret_is_in_no_readable_table_audit_row_or_error() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (_, b32) = enable(&mut c, "user", "1");
    let hex: String = base32_decode(&b32)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // no role but the owner may read the table
    for role in ["api_keys_admin", "api_keys_verifier"] {
        let can: bool = c
            .query_one(
                "SELECT has_table_privilege($1, 'api_keys.mfa_enrollments', 'SELECT')
                     OR has_any_column_privilege($1, 'api_keys.mfa_enrollments', 'SELECT')",
                &[&role],
            )
            .unwrap()
            .get(0);
        assert!(!can, "{role} can read the TOTP secrets");
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
        assert_permission_denied(tx.query("SELECT * FROM api_keys.mfa_enrollments", &[]));
        drop(tx);
    }
    let audit: String = c
        .query_one(
            "SELECT coalesce(string_agg(details::text || action, ' '), '') FROM api_keys.audit_log",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        !audit.contains(&b32) && !audit.to_lowercase().contains(&hex),
        "{audit}"
    );
    // errors of the MFA functions never echo it
    let e = c
        .query_one(
            "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1')",
            &[],
        )
        .unwrap_err();
    let text = describe(&e);
    assert!(!text.contains(&b32) && !text.contains(&hex), "{text}");
    // nor does any readable table (key_info, audit, scopes)
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT to_jsonb(k)::text AS t FROM api_keys.keys k
                                   UNION ALL SELECT to_jsonb(a)::text FROM api_keys.audit_log a
                                   UNION ALL SELECT to_jsonb(s)::text FROM api_keys.scopes s) x
              WHERE x.t ILIKE '%' || $1 || '%' OR x.t LIKE '%' || $2 || '%'",
            &[&hex, &b32],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn bad_mfa_arguments_are_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    for call in [
        "SELECT * FROM api_keys.api_key_mfa_enroll(NULL, '1')",
        "SELECT * FROM api_keys.api_key_mfa_enroll('user', '')",
        "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1', issuer => NULL)",
        "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1', issuer => '')",
        "SELECT * FROM api_keys.api_key_mfa_enroll('user', '1', account => E'a\\u202Eb')",
        "SELECT api_keys.api_key_mfa_confirm('user', '1', NULL)",
        "SELECT api_keys.api_key_mfa_disable(NULL, NULL)",
        "SELECT api_keys.api_key_mfa_status('', '1')",
    ] {
        assert_api_error(c.query_one(call, &[]), "22023", "invalid_argument");
    }
    let long = "o".repeat(256);
    assert_api_error(
        c.query_one(
            "SELECT * FROM api_keys.api_key_mfa_enroll('user', $1)",
            &[&long],
        ),
        "22023",
        "invalid_argument",
    );
}

// On a hot standby (read-only, in recovery) a code is checked against the
// replicated secret and refused the second time: the replay memory is the
// standby's shared memory.
#[test]
fn on_a_standby_a_code_is_accepted_once() {
    use api_keys_tests::cluster::{serial, Cluster, Options, APP_DB};
    let serial = serial();
    let primary = Cluster::start(&serial, Options::preloaded());
    let standby = primary.start_standby();
    let mut p = primary.connect(APP_DB);
    let (secret, key) = mfa_setup(&mut p);
    primary.wait_for_replay(&standby);
    let mut s = standby.connect(APP_DB);
    verify_otp(&mut s, &key.token, &["admin"], None).assert_code("otp_required");
    let code = code_at_step(&secret, current_step() + 1);
    verify_otp(&mut s, &key.token, &["admin"], Some(&code)).assert_code("valid");
    verify_otp(&mut s, &key.token, &["admin"], Some(&code)).assert_code("otp_invalid");
    let mut other = standby.connect(APP_DB);
    verify_otp(&mut other, &key.token, &["admin"], Some(&code)).assert_code("otp_invalid");
    drop((s, other));
    drop(standby);
}

// Ten wrong codes in a window refuse every code of the owner, the right one
// included, until the window has passed (no brute force through verify).
#[test]
fn ten_wrong_codes_refuse_the_right_one_too() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (secret, key) = mfa_setup(&mut c);
    let step = current_step();
    let right = code_at_step(&secret, step + 1);
    let mut wrong = 0;
    for n in 0..1_000_000u32 {
        let guess = format!("{n:06}");
        if [step - 1, step, step + 1]
            .iter()
            .any(|s| code_at_step(&secret, *s) == guess)
        {
            continue;
        }
        verify_otp(&mut c, &key.token, &["admin"], Some(&guess)).assert_code("otp_invalid");
        wrong += 1;
        if wrong == 10 {
            break;
        }
    }
    verify_otp(&mut c, &key.token, &["admin"], Some(&right)).assert_code("otp_invalid");
}
