//! Usage tracking (SPEC §7): `requests_count` and `last_used_at` without a
//! write per verify, preloaded (shared memory and the flusher) and not
//! (the `last_used_at` fallback).
//!
//! Every test here owns a throwaway cluster (restarts, crashes, terminated
//! sessions and GUC changes must not disturb the shared one); they run one at
//! a time (see `api_keys_tests::cluster`).

mod fallback;
mod preloaded;

use api_keys_tests::cluster::Options;

fn preloaded(flush_interval: &str) -> Options {
    Options::preloaded().set("api_keys.usage_flush_interval", flush_interval)
}
