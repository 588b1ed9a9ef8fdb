//! Limits hold under concurrent issuers (SPEC §5 limits, issue 3).

use std::sync::{Arc, Barrier};
use std::thread;

use api_keys_tests::*;

/// One concurrent call: its environment and `Ok`, or `(SQLSTATE, message)`.
type Outcome = (Option<&'static str>, Result<IssuedKey, (String, String)>);

/// Starts one thread per element of `environments`, each with its own
/// connection; all call `api_key_issue` at the same instant.
fn issue_all_at_once(
    db: &TestDb,
    owner_type: &str,
    key_type: Option<&str>,
    environments: Vec<Option<&'static str>>,
) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(environments.len()));
    let handles: Vec<_> = environments
        .into_iter()
        .map(|env| {
            let mut c = db.connect();
            let barrier = Arc::clone(&barrier);
            let owner_type = owner_type.to_owned();
            let key_type = key_type.map(str::to_owned);
            thread::spawn(move || {
                barrier.wait();
                let outcome = try_issue(
                    &mut c,
                    "owner_type => $1::text, owner_id => '42', key_type => $2::text, \
                     environment => $3::text",
                    &[&owner_type, &key_type, &env],
                )
                .map_err(|e| match e.as_db_error() {
                    Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
                    None => ("client".to_owned(), e.to_string()),
                });
                (env, outcome)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("issuer thread panicked"))
        .collect()
}

#[test]
fn concurrent_issuers_cannot_exceed_max_keys() {
    let db = TestDb::new();
    let mut c = db.connect();
    configure(
        &mut c,
        "api_keys.api_key_owner_policy_set('user', max_keys => 10)",
    );
    let outcomes = issue_all_at_once(&db, "user", None, vec![None; 32]);
    let ok = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
    assert_eq!(ok, 10, "exactly max_keys issues must succeed");
    for (_, outcome) in &outcomes {
        if let Err((state, message)) = outcome {
            assert_eq!(state, "23514", "{message}");
            assert!(
                message.starts_with("api_keys: key_limit_reached:"),
                "{message}"
            );
        }
    }
    assert_eq!(list_status(&mut c, "user", "42", "active").len(), 10);
    assert_eq!(list(&mut c, "user", "42").len(), 10);
}

#[test]
fn concurrent_issuers_cannot_exceed_per_owner_limit_per_environment() {
    let db = TestDb::new();
    let mut c = db.connect();
    configure(
        &mut c,
        "api_keys.api_key_environment_define('test', 'test')",
    );
    configure(
        &mut c,
        "api_keys.api_key_environment_define('live', 'live')",
    );
    configure(
        &mut c,
        "api_keys.api_key_type_define('secret', 'sk', per_owner_limit => 1)",
    );
    let mut environments = vec![Some("test"); 32];
    environments.extend(vec![Some("live"); 32]);
    let outcomes = issue_all_at_once(&db, "user", Some("secret"), environments);
    for env in ["test", "live"] {
        let mine: Vec<_> = outcomes.iter().filter(|(e, _)| *e == Some(env)).collect();
        let ok = mine.iter().filter(|(_, o)| o.is_ok()).count();
        assert_eq!(ok, 1, "exactly one {env} key must be issued");
        for (_, outcome) in mine {
            if let Err((state, message)) = outcome {
                assert_eq!(state, "23514", "{message}");
                assert!(
                    message.starts_with("api_keys: type_limit_reached:"),
                    "{message}"
                );
            }
        }
    }
    let keys = list_status(&mut c, "user", "42", "active");
    let mut envs: Vec<_> = keys.iter().map(|k| k.environment.clone()).collect();
    envs.sort();
    assert_eq!(envs, [Some("live".to_owned()), Some("test".to_owned())]);
}
