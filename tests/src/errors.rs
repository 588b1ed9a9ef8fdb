//! Assertions on the extension's errors: SQLSTATE plus `api_keys: <reason>: …`.

use std::fmt::Debug;

/// Asserts that `result` is a database error with `sqlstate` whose message
/// starts with `api_keys: <reason>:`, and returns the message.
#[track_caller]
pub fn assert_api_error<T: Debug>(
    result: Result<T, postgres::Error>,
    sqlstate: &str,
    reason: &str,
) -> String {
    let err = match result {
        Ok(v) => panic!("expected error {sqlstate} {reason}, got success: {v:?}"),
        Err(e) => e,
    };
    let Some(db) = err.as_db_error() else {
        panic!("expected database error {sqlstate} {reason}, got: {err}");
    };
    let message = db.message().to_owned();
    assert_eq!(
        db.code().code(),
        sqlstate,
        "wrong SQLSTATE for reason {reason}; message: {message}"
    );
    let wanted = format!("api_keys: {reason}:");
    assert!(
        message.starts_with(&wanted),
        "message should start with {wanted:?}, got {message:?}"
    );
    message
}

/// Asserts that `result` failed with `sqlstate`, whatever the message (for
/// errors raised by PostgreSQL itself, such as permission checks).
#[track_caller]
pub fn assert_sqlstate<T: Debug>(result: Result<T, postgres::Error>, sqlstate: &str) -> String {
    let err = match result {
        Ok(v) => panic!("expected SQLSTATE {sqlstate}, got success: {v:?}"),
        Err(e) => e,
    };
    let Some(db) = err.as_db_error() else {
        panic!("expected database error {sqlstate}, got: {err}");
    };
    assert_eq!(
        db.code().code(),
        sqlstate,
        "wrong SQLSTATE; message: {}",
        db.message()
    );
    db.message().to_owned()
}

/// Asserts a permission failure (42501 insufficient_privilege).
#[track_caller]
pub fn assert_permission_denied<T: Debug>(result: Result<T, postgres::Error>) -> String {
    assert_sqlstate(result, "42501")
}

/// `SQLSTATE: message (detail)` for a database error, the Display text otherwise
/// (postgres' Display of a server error says only "db error").
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => e.to_string(),
    }
}
