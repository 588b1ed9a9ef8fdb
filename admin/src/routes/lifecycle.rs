//! Key lifecycle (0.2.0): `POST /v1/keys/{id}/rotate`, `POST /v1/keys/import`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys/{id}/rotate", post(rotate))
        .route("/v1/keys/import", post(import))
}

/// `grace_seconds` absent = 0 (the old key is revoked now). A u32 keeps
/// the interval it becomes in range; the extension bounds the grace.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    grace_seconds: Option<u32>,
    expires_in: Option<String>,
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<RotateRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let grace = f64::from(req.grace_seconds.unwrap_or(0));
    let issued = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_rotate($3::uuid, \
                 pg_catalog.make_interval(secs => $4::pg_catalog.float8), $5::text))",
            &[&id, &grace, &req.expires_in],
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(issued)))
}

/// The named arguments of `api_key_import`; `token_sha256` as hex.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    owner_type: String,
    owner_id: String,
    token_sha256: String,
    display_prefix: String,
    last4: String,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    key_type: Option<String>,
    environment: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    requests_count: Option<i64>,
    metadata: Option<Value>,
}

async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ImportRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let digest = api_keys_core::legacy::decode_hex(&req.token_sha256).ok_or_else(|| {
        ApiError::InvalidArgument("token_sha256 must be hexadecimal digits".to_owned())
    })?;
    // Absent = the function's defaults.
    let metadata = req.metadata.unwrap_or_else(|| json!({}));
    let requests_count = req.requests_count.unwrap_or(0);
    let info = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_import(owner_type => $3::text, owner_id => $4::text, \
                 token_sha256 => $5::bytea, display_prefix => $6::text, last4 => $7::text, \
                 name => $8::text, scopes => $9::text[], key_type => $10::text, \
                 environment => $11::text, expires_at => $12::timestamptz, \
                 created_at => $13::timestamptz, revoked_at => $14::timestamptz, \
                 last_used_at => $15::timestamptz, requests_count => $16::bigint, \
                 metadata => $17::jsonb))",
            &[
                &req.owner_type,
                &req.owner_id,
                &digest,
                &req.display_prefix,
                &req.last4,
                &req.name,
                &req.scopes,
                &req.key_type,
                &req.environment,
                &req.expires_at,
                &req.created_at,
                &req.revoked_at,
                &req.last_used_at,
                &requests_count,
                &metadata,
            ],
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}
