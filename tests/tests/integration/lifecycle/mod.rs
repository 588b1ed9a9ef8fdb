//! Key lifecycle (issue 12; SPEC §5 "Lifecycle (0.2.0)"): rotation with a
//! grace period, import of keys whose plaintext is unknown.

mod import;
mod rotate;
