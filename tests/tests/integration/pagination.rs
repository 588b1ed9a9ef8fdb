//! Keyset pagination of api_key_list (SPEC §5, 0.2.0): `limit` and
//! `before_id`, in the list order `created_at DESC, id DESC`.

use api_keys_tests::*;
use postgres::Client;
use uuid::Uuid;

fn page(c: &mut Client, limit: Option<i32>, before: Option<Uuid>) -> Vec<Uuid> {
    c.query(
        "SELECT id FROM api_keys.api_key_list('user', '1', \"limit\" => $1, before_id => $2)",
        &[&limit, &before],
    )
    .unwrap_or_else(|e| panic!("api_key_list page failed: {}", describe(&e)))
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn pages_walk_the_list_order_without_gaps_or_repeats() {
    let db = TestDb::new();
    let mut c = db.connect();
    for _ in 0..5 {
        issue_for(&mut c, "user", "1");
    }
    issue_for(&mut c, "user", "2");
    let all: Vec<Uuid> = list(&mut c, "user", "1").iter().map(|k| k.id).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(page(&mut c, None, None), all, "NULL limit = all");
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let p = page(&mut c, Some(2), before);
        assert!(p.len() <= 2);
        if p.is_empty() {
            break;
        }
        before = p.last().copied();
        walked.extend(p);
    }
    assert_eq!(walked, all);
    assert!(page(&mut c, Some(0), None).is_empty());
}

#[test]
fn a_bad_page_is_refused_with_its_reason() {
    let db = TestDb::new();
    let mut c = db.connect();
    issue_for(&mut c, "user", "1");
    let other = issue_for(&mut c, "user", "2");
    assert_api_error(
        c.query(
            "SELECT * FROM api_keys.api_key_list('user', '1', \"limit\" => -1)",
            &[],
        ),
        "22023",
        "invalid_argument",
    );
    // another owner's key is no position in this owner's list
    assert_api_error(
        c.query(
            "SELECT * FROM api_keys.api_key_list('user', '1', before_id => $1)",
            &[&other.id],
        ),
        "P0002",
        "key_not_found",
    );
    assert_api_error(
        c.query(
            "SELECT * FROM api_keys.api_key_list('user', '1', before_id => $1)",
            &[&Uuid::new_v4()],
        ),
        "P0002",
        "key_not_found",
    );
}
