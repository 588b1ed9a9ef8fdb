//! Key lifecycle (0.2.0): `POST /v1/keys/{id}/rotate`, `POST /v1/keys/import`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::doc::{Conflict, NotFound, Protected, WithBody};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::routes::keys::TAG;
use crate::rows::{IssuedKey, KeyInfo};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rotate))
        .routes(routes!(import))
}

/// `grace_seconds` absent = 0 (the old key is revoked now). A u32 keeps
/// the interval it becomes in range; the extension bounds the grace.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old key stays valid; absent or 0 = revoked now (at most
    /// 90 days).
    grace_seconds: Option<u32>,
    /// The replacement's expiry preset; absent = the old key's lifetime
    /// length from now, or none.
    expires_in: Option<String>,
}

/// Rotate a key (`api_key_rotate`): a replacement with the same owner,
/// name, type, environment, scopes and metadata; the old key stays valid for
/// the grace period.
#[utoipa::path(
    post, path = "/v1/keys/{id}/rotate", tag = TAG, operation_id = "rotateKey",
    description = "Needs an admin key with scope `keys:write`. Exempt from limits; a non-revocable key is refused (403), an inactive one is 400.",
    security(("bearer" = ["keys:write"])),
    params(("id" = Uuid, Path, description = "The key to rotate.")),
    request_body = RotateRequest,
    responses(
        (status = 201, description = "The replacement, token included (shown once).", body = IssuedKey),
        Protected, WithBody, NotFound,
    )
)]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<RotateRequest>,
) -> Result<(StatusCode, axum::Json<IssuedKey>), ApiError> {
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    owner_type: String,
    owner_id: String,
    /// The SHA-256 of the whole token, as 64 hexadecimal digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
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
    #[schema(minimum = 0)]
    requests_count: Option<i64>,
    /// Absent = `{}`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// Import a key whose plaintext is unknown, from its SHA-256
/// (`api_key_import`).
#[utoipa::path(
    post, path = "/v1/keys/import", tag = TAG, operation_id = "importKey",
    description = "Needs an admin key with scope `keys:write`. Exempt from limits; the expiry may be past.",
    security(("bearer" = ["keys:write"])),
    request_body = ImportRequest,
    responses(
        (status = 201, description = "The imported key.", body = KeyInfo),
        Protected, WithBody, Conflict,
    )
)]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ImportRequest>,
) -> Result<(StatusCode, axum::Json<KeyInfo>), ApiError> {
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
