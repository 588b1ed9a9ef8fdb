//! One module per resource, each with its own `router()`.

pub mod dashboard_sessions;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod owners;
pub mod presets;
pub mod verify;
