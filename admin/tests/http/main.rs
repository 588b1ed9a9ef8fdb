//! The admin HTTP API (SPEC §8), driven over HTTP against `app()` on
//! 127.0.0.1:0 and a real PostgreSQL with the extension.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod dashboard;
mod errors;
mod keys;
mod lifecycle;
mod service;

use common::Service;
use reqwest::Method;
use serde_json::{json, Value};

/// Every protected route: method, path (`{id}` = a key of user/1), scope, body.
fn routes() -> Vec<(Method, &'static str, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/v1/keys",
            "keys:write",
            Some(json!({"owner_type": "user", "owner_id": "1"})),
        ),
        (
            Method::GET,
            "/v1/keys?owner_type=user&owner_id=1",
            "keys:read",
            None,
        ),
        (Method::GET, "/v1/keys/{id}", "keys:read", None),
        (
            Method::PATCH,
            "/v1/keys/{id}",
            "keys:write",
            Some(json!({"name": "renamed"})),
        ),
        (Method::POST, "/v1/keys/{id}/revoke", "keys:write", None),
        (
            Method::POST,
            "/v1/keys/import",
            "keys:write",
            Some(
                json!({"owner_type": "user", "owner_id": "1", "token_sha256": "00".repeat(32),
                        "display_prefix": "old", "last4": "abcd"}),
            ),
        ),
        (
            Method::POST,
            "/v1/keys/{id}/rotate",
            "keys:write",
            Some(json!({"grace_seconds": 60})),
        ),
        (
            Method::POST,
            "/v1/owners/user/1/revoke_all",
            "keys:write",
            None,
        ),
        (Method::POST, "/v1/owners/user/1/mfa", "keys:write", None),
        (
            Method::POST,
            "/v1/owners/user/1/mfa/confirm",
            "keys:write",
            Some(json!({"otp": "000000"})),
        ),
        (Method::DELETE, "/v1/owners/user/1/mfa", "keys:write", None),
        (
            Method::GET,
            "/v1/owners/user/1/available_scopes",
            "keys:read",
            None,
        ),
        (Method::GET, "/v1/expiration_presets", "keys:read", None),
        (
            Method::POST,
            "/v1/dashboard_sessions",
            "keys:write",
            Some(json!({"owner_type": "user", "owner_id": "1"})),
        ),
        (
            Method::POST,
            "/v1/verify",
            "keys:verify",
            Some(json!({"token": "ak_x"})),
        ),
    ]
}

async fn user_key(svc: &Service) -> (uuid::Uuid, String) {
    svc.issue_sql("user", "1", &["read"]).await
}
