//! PostgREST and row-level security (issue 5; SPEC §6 and §2).
//!
//! No PostgREST binary is available, so [`harness`] replays PostgREST's
//! transactions against a real PostgreSQL with the example schema of
//! `examples/postgrest/schema.sql` loaded and per-test `authenticator`,
//! `anon` and `api` roles. `client_py` runs `examples/postgrest/client.py`
//! (psycopg) against a fresh database.

mod auth_failures;
mod client_py;
mod forging;
mod harness;
mod headers;
mod pooling;
mod privileges;
mod rls;
