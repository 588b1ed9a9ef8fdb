//! Per-owner MFA (0.2.0): `POST /v1/owners/{owner_type}/{owner_id}/mfa`
//! (enroll), `…/mfa/confirm`, `DELETE …/mfa`. The secret leaves only in the
//! enroll answer, once; it is never logged.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/owners/{owner_type}/{owner_id}/mfa",
            post(enroll).delete(disable),
        )
        .route(
            "/v1/owners/{owner_type}/{owner_id}/mfa/confirm",
            post(confirm),
        )
}

async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner_type, owner_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let enrollment = caller
        .run(
            &state,
            Scope::Write,
            "(SELECT to_jsonb(e) FROM api_keys.api_key_mfa_enroll($3::text, $4::text) e)",
            &[&owner_type, &owner_id],
        )
        .await?;
    Ok(axum::Json(enrollment))
}

/// No `Debug`: a code is a credential for its 30 seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    otp: String,
}

async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner_type, owner_id)): Path<(String, String)>,
    Json(req): Json<ConfirmRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let enabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_confirm($3::text, $4::text, $5::text))",
            &[&owner_type, &owner_id, &req.otp],
        )
        .await?;
    Ok(axum::Json(json!({"enabled": enabled})))
}

async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner_type, owner_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let disabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_disable($3::text, $4::text))",
            &[&owner_type, &owner_id],
        )
        .await?;
    Ok(axum::Json(json!({"disabled": disabled})))
}
