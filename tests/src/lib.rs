//! Integration-test harness for the `api_keys` extension.
//!
//! Every test talks to a real PostgreSQL 15 through the `postgres` crate. The
//! harness is driven by three environment variables that `scripts/test.sh`
//! sets (the defaults match it):
//!
//! - `API_KEYS_TEST_URL`: superuser connection URL of the test cluster,
//! - `API_KEYS_TEST_TEMPLATE`: a database that already has `CREATE EXTENSION api_keys`,
//! - `API_KEYS_TEST_PGBIN`: directory holding `pg_dump`.
//!
//! Configuration (key types, environments, scope registry, policies) is
//! per-database state, so every test gets its own database ([`TestDb`]) and
//! tests can run in parallel.

pub mod api;
pub mod bouncer;
pub mod cluster;
pub mod db;
pub mod errors;
pub mod token;
pub mod totp;
pub mod usage;

pub use api::*;
pub use db::*;
pub use errors::*;
pub use token::*;
