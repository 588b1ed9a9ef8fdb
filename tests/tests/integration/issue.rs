//! `api_key_issue` arguments, ids and timestamps; list/get/revoke (SPEC §5).

use std::time::Duration;

use api_keys_tests::*;
use chrono::{DateTime, Utc};
use postgres::Client;

fn days_from_now(c: &mut impl postgres::GenericClient, days: i32) -> DateTime<Utc> {
    c.query_one("SELECT now() + $1::int * interval '1 day'", &[&days])
        .unwrap()
        .get(0)
}

#[track_caller]
fn assert_close(got: DateTime<Utc>, want: DateTime<Utc>) {
    let diff = (got - want).num_milliseconds().abs();
    assert!(diff <= 2000, "expires_at {got} is not ≈ {want}");
}

fn issue_preset(c: &mut Client, preset: &str) -> Result<IssuedKey, postgres::Error> {
    try_issue(
        c,
        "owner_type => 'user', owner_id => '1', expires_in => $1::text",
        &[&preset],
    )
}

#[test]
fn expiry_presets_set_expires_at_to_now_plus_days() {
    let db = TestDb::new();
    let mut c = db.connect();
    let presets = [
        ("7_days", 7),
        ("30_days", 30),
        ("60_days", 60),
        ("90_days", 90),
        ("1_year", 365),
        ("1_days", 1),
        ("45_days", 45),
        ("3650_days", 3650),
    ];
    for (preset, days) in presets {
        let mut tx = c.transaction().unwrap();
        let want = days_from_now(&mut tx, days);
        let key = issue(
            &mut tx,
            "owner_type => 'user', owner_id => '1', expires_in => $1::text",
            &[&preset],
        );
        tx.commit().unwrap();
        let got = key
            .expires_at
            .unwrap_or_else(|| panic!("{preset} set no expiry"));
        assert_close(got, want);
    }
}

#[test]
fn no_expiration_preset_leaves_expires_at_null() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_preset(&mut c, "no_expiration").unwrap();
    assert_eq!(key.expires_at, None);
}

#[test]
fn invalid_expiry_presets_are_rejected() {
    let db = TestDb::new();
    let mut c = db.connect();
    for preset in [
        "",
        "0_days",
        "3651_days",
        "07_days",
        "forever",
        "7_Days",
        " 7_days",
        "7days",
        "-1_days",
        "1_years",
        "2_year",
    ] {
        let msg = assert_api_error(issue_preset(&mut c, preset), "22023", "invalid_expiry");
        assert!(!msg.is_empty(), "preset {preset:?}");
    }
    assert!(list(&mut c, "user", "1").is_empty());
}

#[test]
fn expires_in_wins_over_expires_at() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut tx = c.transaction().unwrap();
    let want = days_from_now(&mut tx, 7);
    let key = issue(
        &mut tx,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 day', \
         expires_in => '7_days'",
        &[],
    );
    assert_close(key.expires_at.expect("expiry"), want);
}

#[test]
fn explicit_future_expires_at_is_kept() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut tx = c.transaction().unwrap();
    let want = days_from_now(&mut tx, 3);
    let key = issue(
        &mut tx,
        "owner_type => 'user', owner_id => '1', expires_at => $1::timestamptz",
        &[&want],
    );
    assert_eq!(key.expires_at, Some(want));
}

#[test]
fn expires_at_in_the_past_is_invalid_expiry() {
    let db = TestDb::new();
    let mut c = db.connect();
    for when in ["now() - interval '1 minute'", "now()"] {
        let args = format!("owner_type => 'user', owner_id => '1', expires_at => {when}");
        assert_api_error(try_issue(&mut c, &args, &[]), "22023", "invalid_expiry");
    }
}

#[test]
fn scopes_are_trimmed_deduplicated_and_blank_ones_dropped_in_order() {
    let db = TestDb::new();
    let mut c = db.connect();
    let requested = ["  read ", "write", "", "   ", "read", "admin", "write "];
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', scopes => $1::text[]",
        &[&&requested[..]],
    );
    assert_eq!(key.scopes, ["read", "write", "admin"]);
    assert_eq!(get_key(&mut c, key.id).scopes, ["read", "write", "admin"]);
}

#[test]
fn null_scopes_without_policy_become_empty() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert!(key.scopes.is_empty(), "{:?}", key.scopes);
}

#[test]
fn ids_are_uuid_v7() {
    let db = TestDb::new();
    let mut c = db.connect();
    for _ in 0..10 {
        let id = issue_for(&mut c, "user", "1").id;
        assert_eq!(id.get_version_num(), 7, "{id}");
        assert_eq!(id.as_bytes()[8] >> 6, 0b10, "RFC 9562 variant: {id}");
    }
}

#[test]
fn ids_increase_with_issue_time() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(issue_for(&mut c, "user", "1").id);
        std::thread::sleep(Duration::from_millis(3));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "UUIDv7 ids must be time-ordered");
}

#[test]
fn created_at_is_transaction_now() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut tx = c.transaction().unwrap();
    let now = db_now(&mut tx);
    let key = issue_for(&mut tx, "user", "1");
    assert_eq!(key.created_at, now);
    tx.commit().unwrap();
    assert_eq!(get_key(&mut c, key.id).created_at, now);
}

#[test]
fn issue_returns_owner_name_and_echoes_arguments() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'Organization', owner_id => 'acme-7', name => 'deploy bot'",
        &[],
    );
    assert_eq!(key.owner_type, "Organization");
    assert_eq!(key.owner_id, "acme-7");
    assert_eq!(key.name.as_deref(), Some("deploy bot"));
    assert_eq!(key.key_type, None);
    assert_eq!(key.environment, None);
}

#[test]
fn expiration_presets_are_listed_in_spec_order() {
    let db = TestDb::new();
    let mut c = db.connect();
    let rows: Vec<(String, String)> = c
        .query(
            "SELECT value, label FROM api_keys.api_key_expiration_presets()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [
        ("no_expiration", "No expiration"),
        ("7_days", "7 days"),
        ("30_days", "30 days"),
        ("60_days", "60 days"),
        ("90_days", "90 days"),
        ("1_year", "1 year"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn list_orders_by_created_at_desc_then_id_desc() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(issue_for(&mut c, "user", "1"));
    }
    let mut tx = c.transaction().unwrap();
    for _ in 0..3 {
        issued.push(issue_for(&mut tx, "user", "1"));
    }
    tx.commit().unwrap();
    issue_for(&mut c, "user", "2");
    let mut want: Vec<_> = issued.iter().map(|k| (k.created_at, k.id)).collect();
    want.sort_by(|a, b| b.cmp(a));
    let got: Vec<_> = list(&mut c, "user", "1")
        .iter()
        .map(|k| (k.created_at, k.id))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn list_filters_by_status() {
    let db = TestDb::new();
    let mut c = db.connect();
    let expiring = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    let revoked = issue_for(&mut c, "user", "1");
    assert!(revoke(&mut c, revoked.id));
    let active = issue_for(&mut c, "user", "1");
    wait_for_one_second_expiry();
    let ids = |c: &mut Client, status: &str| -> Vec<uuid::Uuid> {
        let mut v: Vec<_> = list_status(c, "user", "1", status)
            .iter()
            .map(|k| k.id)
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<uuid::Uuid>| {
        v.sort();
        v
    };
    assert_eq!(ids(&mut c, "active"), vec![active.id]);
    assert_eq!(ids(&mut c, "expired"), vec![expiring.id]);
    assert_eq!(ids(&mut c, "revoked"), vec![revoked.id]);
    assert_eq!(
        ids(&mut c, "inactive"),
        sorted(vec![expiring.id, revoked.id])
    );
    assert_eq!(list(&mut c, "user", "1").len(), 3);
    assert_eq!(get_key(&mut c, expiring.id).status, "expired");
    assert_eq!(get_key(&mut c, revoked.id).status, "revoked");
    assert_eq!(get_key(&mut c, active.id).status, "active");
}

// SPEC: `revoked` wins in status, so the `expired` filter excludes a key that
// was revoked before it expired.
#[test]
fn revoked_status_wins_over_expired() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    assert!(revoke(&mut c, key.id));
    wait_for_one_second_expiry();
    assert_eq!(get_key(&mut c, key.id).status, "revoked");
    assert!(list_status(&mut c, "user", "1", "expired").is_empty());
    assert_eq!(list_status(&mut c, "user", "1", "revoked").len(), 1);
}

#[test]
fn list_with_invalid_status_is_invalid_argument() {
    let db = TestDb::new();
    let mut c = db.connect();
    for status in ["bogus", "", "all"] {
        assert_api_error(
            try_list(&mut c, "user", "1", Some(status)),
            "22023",
            "invalid_argument",
        );
    }
}

#[test]
fn get_returns_key_info_of_fresh_key() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', name => 'n', scopes => '{read}', \
         metadata => '{\"a\":1}'",
        &[],
    );
    let info = get_key(&mut c, key.id);
    assert_eq!(info.id, key.id);
    assert_eq!(
        (info.owner_type.as_str(), info.owner_id.as_str()),
        ("user", "1")
    );
    assert_eq!(info.name.as_deref(), Some("n"));
    assert_eq!(info.masked_token, key.masked_token);
    assert_eq!(info.viewable_token, None);
    assert_eq!(info.scopes, ["read"]);
    assert_eq!(info.metadata, serde_json::json!({"a": 1}));
    assert_eq!(info.status, "active");
    assert!(info.revocable);
    assert_eq!(info.created_at, key.created_at);
    assert_eq!(info.revoked_at, None);
    assert_eq!(info.requests_count, 0);
    assert_eq!(
        (info.mfa, info.replaced_by, info.imported),
        (false, None, false)
    );
}

#[test]
fn get_of_unknown_id_is_key_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    let id = uuid::Uuid::new_v4();
    assert_api_error(try_get_key(&mut c, id), "P0002", "key_not_found");
}

#[test]
fn revoke_returns_true_then_false() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "1");
    assert!(revoke(&mut c, key.id));
    let first = get_key(&mut c, key.id).revoked_at.expect("revoked_at set");
    assert!(!revoke(&mut c, key.id));
    let info = get_key(&mut c, key.id);
    assert_eq!(info.status, "revoked");
    assert_eq!(
        info.revoked_at,
        Some(first),
        "second revoke must change nothing"
    );
}

#[test]
fn revoke_of_expired_key_returns_false_and_changes_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', expires_at => now() + interval '1 second'",
        &[],
    );
    wait_for_one_second_expiry();
    assert!(!revoke(&mut c, key.id));
    let info = get_key(&mut c, key.id);
    assert_eq!(info.status, "expired");
    assert_eq!(info.revoked_at, None);
}

#[test]
fn revoke_of_unknown_id_is_key_not_found() {
    let db = TestDb::new();
    let mut c = db.connect();
    let id = uuid::Uuid::new_v4();
    assert_api_error(try_revoke(&mut c, id), "P0002", "key_not_found");
}
