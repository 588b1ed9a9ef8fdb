//! One module per resource, each with its own `router()`.

pub mod health;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod mfa;
pub mod openapi;
pub mod owners;
pub mod presets;
pub mod verify;
