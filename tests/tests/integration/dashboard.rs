//! The dashboard session functions (SPEC §9) called straight in SQL, with
//! hostile input: NULL, empty, oversized and malformed digests, owners,
//! ttls and return links. Each refusal is `22023 invalid_argument` and
//! leaves nothing behind; only api_keys_admin may call them.

use api_keys_tests::*;
use postgres::types::ToSql;
use postgres::Client;

fn digest(n: u8) -> Vec<u8> {
    vec![n; 32]
}

fn sessions(c: &mut Client) -> i64 {
    c.query_one("SELECT count(*) FROM api_keys.dashboard_sessions", &[])
        .unwrap()
        .get(0)
}

fn create(
    c: &mut Client,
    args: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<postgres::Row, postgres::Error> {
    c.query_one(
        &format!("SELECT api_keys.dashboard_session_create({args})"),
        params,
    )
}

#[track_caller]
fn assert_refused(c: &mut Client, args: &str, params: &[&(dyn ToSql + Sync)]) {
    let before = table_row_counts(c);
    assert_api_error(create(c, args, params), "22023", "invalid_argument");
    assert_eq!(
        table_row_counts(c),
        before,
        "a refused call left rows: {args}"
    );
}

#[test]
fn dashboard_session_create_refuses_hostile_arguments() {
    let db = TestDb::new();
    let mut c = db.connect();
    let h = digest(1);
    let long = "x".repeat(256);
    let too_long_digest = vec![0u8; 33];
    let cases: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = vec![
        ("NULL, '1', $1", vec![&h]),
        ("'user', NULL, $1", vec![&h]),
        ("'', '1', $1", vec![&h]),
        ("'user', '   ', $1", vec![&h]),
        ("'user', $2, $1", vec![&h, &long]),
        ("'user', E'a\\x01b', $1", vec![&h]),
        ("'user', '1', NULL", vec![]),
        ("'user', '1', ''::bytea", vec![]),
        ("'user', '1', '\\x00'::bytea", vec![]),
        ("'user', '1', $1", vec![&too_long_digest]),
        ("'user', '1', $1, ttl_seconds => 0", vec![&h]),
        ("'user', '1', $1, ttl_seconds => -1", vec![&h]),
        ("'user', '1', $1, ttl_seconds => 3601", vec![&h]),
        ("'user', '1', $1, ttl_seconds => 2147483647", vec![&h]),
        (
            "'user', '1', $1, return_url => 'javascript:alert(1)'",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'JAVASCRIPT:alert(1)'",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'data:text/html,<b>'",
            vec![&h],
        ),
        ("'user', '1', $1, return_url => '//evil.example'", vec![&h]),
        ("'user', '1', $1, return_url => ''", vec![&h]),
        (
            "'user', '1', $1, return_url => E'https://e.com/\\n'",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'https://e.com/' || repeat('a', 3000)",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'https://e.com', return_text => E'Back\\x1b[31m'",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'https://e.com', return_text => E'a\\u202Eb'",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'https://e.com', return_text => ''",
            vec![&h],
        ),
        (
            "'user', '1', $1, return_url => 'https://e.com', return_text => repeat('x', 101)",
            vec![&h],
        ),
        ("'user', '1', $1, return_text => 'no url'", vec![&h]),
    ];
    for (args, params) in &cases {
        assert_refused(&mut c, args, params);
    }
    assert_eq!(sessions(&mut c), 0);
    // accepted, then the same digest again is refused without a unique violation
    let at: chrono::DateTime<chrono::Utc> =
        create(&mut c, "'user', '1', $1, ttl_seconds => 3600", &[&h])
            .unwrap()
            .get(0);
    let ttl = (at - db_now(&mut c)).num_seconds();
    assert!((3595..=3600).contains(&ttl), "{ttl}");
    assert_refused(&mut c, "'user', '2', $1", &[&h]);
}

#[test]
fn a_link_is_exchanged_once_and_only_while_alive() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (link, session) = (digest(1), digest(2));
    create(
        &mut c,
        "'user', '1', $1, return_url => 'https://e.com', return_text => 'Back'",
        &[&link],
    )
    .unwrap();
    let exchange = |c: &mut Client, l: &Vec<u8>, s: &Vec<u8>| {
        c.query(
            "SELECT owner_type, owner_id FROM api_keys.dashboard_session_exchange($1, $2)",
            &[l, s],
        )
    };
    let rows = exchange(&mut c, &link, &session).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].get::<_, String>(0), rows[0].get::<_, String>(1)),
        ("user".to_owned(), "1".to_owned())
    );
    assert!(
        exchange(&mut c, &link, &digest(3)).unwrap().is_empty(),
        "single use"
    );
    assert!(
        exchange(&mut c, &digest(9), &digest(4)).unwrap().is_empty(),
        "unknown link"
    );
    // a session digest already in use is refused, not a unique violation
    create(&mut c, "'user', '1', $1", &[&digest(5)]).unwrap();
    assert_api_error(
        exchange(&mut c, &digest(5), &session),
        "22023",
        "invalid_argument",
    );
    // hostile digests
    for (l, s) in [
        (None, Some(digest(6))),
        (Some(digest(5)), None),
        (Some(vec![]), Some(digest(6))),
        (Some(digest(5)), Some(vec![1; 31])),
    ] {
        let err = c.query(
            "SELECT * FROM api_keys.dashboard_session_exchange($1, $2)",
            &[&l, &s],
        );
        assert_api_error(err, "22023", "invalid_argument");
    }
    // expired links are not exchanged
    c.execute("UPDATE api_keys.dashboard_sessions SET link_expires_at = now() - interval '1 second' WHERE link_hash = $1", &[&digest(5)]).unwrap();
    assert!(exchange(&mut c, &digest(5), &digest(7)).unwrap().is_empty());
    // the session: owner and return link; then logout ends it
    let row = c
        .query_one("SELECT owner_type, owner_id, return_url, return_text FROM api_keys.dashboard_session_owner($1)", &[&session])
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("https://e.com")
    );
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("Back"));
    assert!(c
        .query_one("SELECT api_keys.dashboard_session_end($1)", &[&session])
        .unwrap()
        .get::<_, bool>(0));
    assert!(!c
        .query_one("SELECT api_keys.dashboard_session_end($1)", &[&session])
        .unwrap()
        .get::<_, bool>(0));
    assert!(c
        .query(
            "SELECT * FROM api_keys.dashboard_session_owner($1)",
            &[&session]
        )
        .unwrap()
        .is_empty());
    for bad in [None, Some(vec![]), Some(vec![0u8; 64])] {
        assert_api_error(
            c.query(
                "SELECT * FROM api_keys.dashboard_session_owner($1)",
                &[&bad],
            ),
            "22023",
            "invalid_argument",
        );
        assert_api_error(
            c.query("SELECT api_keys.dashboard_session_end($1)", &[&bad]),
            "22023",
            "invalid_argument",
        );
    }
}

#[test]
fn revoke_all_and_purge_end_the_owners_dashboard_sessions_only() {
    let db = TestDb::new();
    let mut c = db.connect();
    for (i, owner) in [(1u8, "1"), (2, "1"), (3, "2")] {
        create(&mut c, "'user', $2, $1", &[&digest(i), &owner]).unwrap();
    }
    c.query(
        "SELECT * FROM api_keys.dashboard_session_exchange($1, $2)",
        &[&digest(1), &digest(11)],
    )
    .unwrap();
    c.query_one("SELECT api_keys.api_key_revoke_all('user', '1')", &[])
        .unwrap();
    let left: Vec<String> = c
        .query("SELECT owner_id FROM api_keys.dashboard_sessions", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["2"]);
    c.query_one("SELECT api_keys.api_key_purge_owner('user', '2')", &[])
        .unwrap();
    assert_eq!(sessions(&mut c), 0);
}

#[test]
fn dashboard_key_options_answers_what_the_forms_offer() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT api_keys.api_key_scope_define('read', 'Read <things>');
         SELECT api_keys.api_key_scope_define('write');
         SELECT api_keys.api_key_environment_define('live', 'live');
         SELECT api_keys.api_key_type_define('pub', 'pk', '{read}', revocable => false, public => true, per_owner_limit => 1);
         SELECT api_keys.api_key_issue('user', '1', key_type => 'pub', environment => 'live', scopes => '{read}');",
    )
    .unwrap();
    let v: serde_json::Value = c
        .query_one("SELECT api_keys.dashboard_key_options('user', '1')", &[])
        .unwrap()
        .get(0);
    assert_eq!(v["environments"], serde_json::json!(["live"]));
    assert_eq!(v["available_scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(v["presets"][0]["value"], "no_expiration");
    assert_eq!(
        v["scope_descriptions"],
        serde_json::json!({"read": "Read <things>"})
    );
    assert_eq!(v["key_types"][0]["name"], "pub");
    assert_eq!(v["key_types"][0]["public"], true);
    assert_eq!(v["key_types"][0]["revocable"], false);
    assert_eq!(
        v["key_types"][0]["issuable_in"],
        serde_json::json!([]),
        "at its limit"
    );
    let v: serde_json::Value = c
        .query_one(
            "SELECT api_keys.dashboard_key_options('user', '2', 'pub')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        v["key_types"][0]["issuable_in"],
        serde_json::json!(["live"])
    );
    assert_eq!(v["available_scopes"], serde_json::json!(["read"]));
    for args in [
        "NULL, '1'",
        "'user', ''",
        "'user', '1', 'nope'",
        "'user', repeat('x', 300)",
    ] {
        let r = c.query_one(
            &format!("SELECT api_keys.dashboard_key_options({args})"),
            &[],
        );
        let err = r.unwrap_err();
        assert_eq!(
            err.as_db_error().unwrap().code().code(),
            "22023",
            "{args}: {err}"
        );
    }
}

#[test]
fn only_api_keys_admin_may_call_the_dashboard_functions_and_nobody_reads_the_table() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute(
        "CREATE ROLE dash_admin LOGIN; GRANT api_keys_admin TO dash_admin;
         CREATE ROLE dash_verifier LOGIN; GRANT api_keys_verifier TO dash_verifier;
         CREATE ROLE dash_nobody LOGIN;",
    )
    .unwrap();
    let h = digest(1);
    let mut admin = db.connect_as("dash_admin");
    admin
        .query_one(
            "SELECT api_keys.dashboard_session_create('user', '1', $1)",
            &[&h],
        )
        .unwrap();
    let denied = admin
        .query("SELECT * FROM api_keys.dashboard_sessions", &[])
        .unwrap_err();
    assert_eq!(denied.as_db_error().unwrap().code().code(), "42501");
    for role in ["dash_verifier", "dash_nobody"] {
        let mut c = db.connect_as(role);
        for sql in [
            "SELECT api_keys.dashboard_session_create('user', '1', '\\x0202020202020202020202020202020202020202020202020202020202020202'::bytea)",
            "SELECT * FROM api_keys.dashboard_session_owner('\\x01'::bytea)",
            "SELECT api_keys.dashboard_key_options('user', '1')",
            "SELECT * FROM api_keys.dashboard_sessions",
        ] {
            let err = c.query(sql, &[]).unwrap_err();
            assert_eq!(err.as_db_error().unwrap().code().code(), "42501", "{role}: {sql}");
        }
    }
    drop(admin);
    su.batch_execute("DROP OWNED BY dash_admin, dash_verifier, dash_nobody; DROP ROLE dash_admin, dash_verifier, dash_nobody;")
        .unwrap();
}
