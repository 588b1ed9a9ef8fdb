//! Key lifecycle (0.2.0): `POST /v1/keys/{id}/rotate`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/keys/{id}/rotate", post(rotate))
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
