//! Every integration test in one binary (one link instead of thirteen on a
//! two-core machine), one module per area. Each test gets its own database
//! from the template (`TestDb`) or, when it must restart or reconfigure a
//! server, a throwaway cluster of its own (`api_keys_tests::cluster`).
//! Run a part with a filter, e.g. `cargo test -p api-keys-tests -- usage::`.

mod bad_input;
mod concurrency;
mod custom_scan;
mod dashboard;
mod hardening;
mod hostile;
mod hot_path;
mod issue;
mod lifecycle;
mod mfa;
mod pagination;
mod pgbouncer;
mod policy;
mod postgrest;
mod security;
mod standby;
mod tokens;
mod usage;
mod verify;
