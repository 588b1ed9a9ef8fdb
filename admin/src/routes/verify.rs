//! `POST /v1/verify`: a backend that does not speak SQL verifies a key.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/verify", post(verify))
}

/// No `Debug`: the token is a secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    token: String,
    required_scopes: Option<Vec<String>>,
    environment: Option<String>,
    otp: Option<String>,
}

/// 200 with the verification row whatever its code: a refused key is an
/// answer, not an error.
async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<VerifyRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let verification = caller
        .run(
            &state,
            Scope::Verify,
            "to_jsonb(api_keys.api_key_verify($3::text, $4::text[], $5::text, $6::text))",
            &[&req.token, &req.required_scopes, &req.environment, &req.otp],
        )
        .await?;
    if let Some(code) = verification.get("code").and_then(Value::as_str) {
        state.metrics.record_verification(code);
    }
    Ok(axum::Json(verification))
}
