//! Replays PostgREST's transactions against a database that holds the example
//! schema of `examples/postgrest/schema.sql`.
//!
//! PostgREST logs in as the `authenticator` role (LOGIN NOINHERIT) and runs
//! every HTTP request as one transaction on a pooled connection:
//!
//! ```sql
//! BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;   -- GET/HEAD; BEGIN for writes
//! SELECT set_config('search_path', '"app", "public"', true),
//!        set_config('role', 'anon', true),             -- or SET LOCAL ROLE
//!        set_config('request.jwt.claims', '{...}', true),
//!        set_config('request.method', 'GET', true),
//!        set_config('request.path', '/todos', true),
//!        set_config('request.headers', '{"x-api-key": "..."}', true),  -- names lower-cased
//!        set_config('request.cookies', '{}', true);
//! SELECT "api_keys"."api_key_authenticate"();      -- db-pre-request, no arguments
//! WITH pgrst_source AS (...) SELECT ...;           -- the request's query
//! COMMIT;                                          -- ROLLBACK after any error
//! ```
//!
//! [`Conn::send`] does exactly that; [`Request`] describes the HTTP side.

mod example;
mod request;

pub use example::*;
pub use request::*;

use api_keys_tests::*;

/// Asserts a PostgREST 401: SQLSTATE PT401, message `api_keys: <reason>: …`.
#[track_caller]
pub fn assert_401<T: std::fmt::Debug>(result: Result<T, postgres::Error>, reason: &str) -> String {
    assert_api_error(result, "PT401", reason)
}

/// Asserts a PostgREST 403 from the pre-request: SQLSTATE PT403, reason
/// `insufficient_scope`.
#[track_caller]
pub fn assert_403<T: std::fmt::Debug>(result: Result<T, postgres::Error>) -> String {
    assert_api_error(result, "PT403", "insufficient_scope")
}

/// Asserts an RLS `WITH CHECK` violation (42501, "row-level security").
#[track_caller]
pub fn assert_rls_violation<T: std::fmt::Debug>(result: Result<T, postgres::Error>) {
    let message = assert_permission_denied(result);
    assert!(
        message.contains("row-level security"),
        "expected a row-level security violation, got: {message}"
    );
}

/// Titles of `todos`, in order.
pub fn titles(todos: &[Todo]) -> Vec<&str> {
    todos.iter().map(|t| t.title.as_str()).collect()
}
