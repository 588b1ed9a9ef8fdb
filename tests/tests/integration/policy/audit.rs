//! The append-only audit trail `api_keys.audit_log` (issue 3).

use api_keys_tests::*;
use postgres::Client;
use uuid::Uuid;

use super::support::*;

#[derive(Debug)]
struct AuditRow {
    action: String,
    key_id: Option<Uuid>,
    owner_type: Option<String>,
    owner_id: Option<String>,
    session_user_name: Option<String>,
    current_user_name: Option<String>,
}

fn audit_rows(c: &mut Client) -> Vec<AuditRow> {
    c.query(
        "SELECT action, key_id, owner_type, owner_id, session_user_name, current_user_name \
         FROM api_keys.audit_log ORDER BY id",
        &[],
    )
    .unwrap_or_else(|e| panic!("reading api_keys.audit_log failed: {}", describe(&e)))
    .iter()
    .map(|r| AuditRow {
        action: r.get(0),
        key_id: r.get(1),
        owner_type: r.get(2),
        owner_id: r.get(3),
        session_user_name: r.get(4),
        current_user_name: r.get(5),
    })
    .collect()
}

/// Runs one of each audited action for owner user/1 and returns the keys.
fn run_every_action(c: &mut Client) -> (IssuedKey, IssuedKey) {
    let a = issue_for(c, "user", "1");
    c.query(
        "SELECT * FROM api_keys.api_key_update($1::uuid, name => 'renamed')",
        &[&a.id],
    )
    .unwrap();
    revoke(c, a.id);
    let b = issue_for(c, "user", "1");
    c.query("SELECT api_keys.api_key_revoke_all('user', '1')", &[])
        .unwrap();
    c.query("SELECT api_keys.api_key_purge_owner('user', '1')", &[])
        .unwrap();
    (a, b)
}

#[test]
fn audit_log_has_the_documented_columns() {
    let db = TestDb::new();
    let mut c = db.connect();
    let columns: Vec<(String, String)> = c
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = 'api_keys.audit_log'::regclass AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [
        ("id", "bigint"),
        ("at", "timestamp with time zone"),
        ("action", "text"),
        ("key_id", "uuid"),
        ("owner_type", "text"),
        ("owner_id", "text"),
        ("session_user_name", "text"),
        ("current_user_name", "text"),
        ("details", "jsonb"),
    ];
    for (name, ty) in want {
        assert!(
            columns.iter().any(|(n, t)| n == name && t == ty),
            "column {name} {ty} missing from {columns:?}"
        );
    }
}

#[test]
fn audit_log_records_every_management_action() {
    let db = TestDb::new();
    let mut c = db.connect();
    let (a, _) = run_every_action(&mut c);
    let rows = audit_rows(&mut c);
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for action in ["issue", "update", "revoke", "revoke_all", "purge_owner"] {
        assert!(
            actions.contains(&action),
            "no {action} entry in {actions:?}"
        );
    }
    let first = &rows[0];
    assert_eq!(first.action, "issue");
    assert_eq!(first.key_id, Some(a.id));
    assert_eq!(first.owner_type.as_deref(), Some("user"));
    assert_eq!(first.owner_id.as_deref(), Some("1"));
    let revoke = rows
        .iter()
        .find(|r| r.action == "revoke")
        .expect("revoke entry");
    assert_eq!(revoke.key_id, Some(a.id));
}

#[test]
fn audit_log_records_session_user() {
    let db = TestDb::new();
    let role = db.create_login_role();
    role.grant_role("api_keys_admin");
    let mut c = role.connect();
    issue_for(&mut c, "user", "1");
    let rows = audit_rows(&mut db.connect());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].session_user_name.as_deref(),
        Some(role.name.as_str())
    );
    assert!(rows[0].current_user_name.is_some());
}

// SPEC: only management actions are audited; verify stays read-only.
#[test]
fn verify_is_not_audited() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    let before = audit_rows(&mut c).len();
    verify(&mut c, &key.token);
    verify(&mut c, &forge_token("ak"));
    assert_eq!(audit_rows(&mut c).len(), before);
}

#[test]
fn audit_log_contains_no_token() {
    let db = TestDb::new();
    let mut c = db.connect();
    define_publishable(&mut c);
    let public = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'publishable'",
        &[],
    );
    let (a, b) = run_every_action(&mut c);
    let text: Vec<String> = c
        .query("SELECT l::text FROM api_keys.audit_log l", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for key in [&a, &b, &public] {
        let random = &body_of(&key.token)[..32];
        assert!(
            text.iter().all(|row| !row.contains(random)),
            "audit_log holds the token of {}",
            key.id
        );
    }
}

#[test]
fn admin_role_can_read_audit_log() {
    let db = TestDb::new();
    issue_for(&mut db.connect(), "user", "1");
    let role = db.create_login_role();
    role.grant_role("api_keys_admin");
    assert_eq!(audit_rows(&mut role.connect()).len(), 1);
}

#[test]
fn verifier_role_cannot_read_audit_log() {
    let db = TestDb::new();
    let role = db.create_login_role();
    role.grant_role("api_keys_verifier");
    let err = role
        .connect()
        .query("SELECT * FROM api_keys.audit_log", &[]);
    assert_permission_denied(err);
}

#[test]
fn admin_role_cannot_change_audit_log() {
    let db = TestDb::new();
    issue_for(&mut db.connect(), "user", "1");
    let role = db.create_login_role();
    role.grant_role("api_keys_admin");
    let mut c = role.connect();
    assert!(c.execute("DELETE FROM api_keys.audit_log", &[]).is_err());
    assert!(c
        .execute("UPDATE api_keys.audit_log SET action = 'x'", &[])
        .is_err());
    assert_eq!(audit_rows(&mut db.connect()).len(), 1);
}
