//! Key policy model (issue 3; SPEC §3–§5): key types, environments, scope
//! registry and ceilings, owner policies and limits, management functions,
//! the verify code matrix and the audit trail.

mod audit;
mod environments;
mod manage;
mod matrix;
mod owners;
mod scopes;
mod support;
mod types;
