//! `POST /v1/verify`: a backend that does not speak SQL verifies a key.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::doc::{Protected, WithBody};
use crate::error::ApiError;
use crate::extract::Json;
use crate::rows::Verification;
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "verify";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

/// The arguments of `api_key_verify`.
// No `Debug`: the token is a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    token: String,
    /// Absent or null = none.
    required_scopes: Option<Vec<String>>,
    /// Absent or null = the service connection's `api_keys.environment`.
    environment: Option<String>,
    /// A TOTP code, for keys flagged mfa when a sensitive scope is required.
    otp: Option<String>,
}

/// Verify a key (`api_key_verify`). 200 with the verification row whatever
/// its code: a refused key is an answer, not an error.
#[utoipa::path(
    post, path = "/v1/verify", tag = TAG, operation_id = "verifyKey",
    description = "Needs an admin key with scope `keys:verify`. Nothing is cached: a revocation is in force at its commit.",
    security(("bearer" = ["keys:verify"])),
    request_body = VerifyRequest,
    responses((status = 200, description = "The verification, whatever its code.", body = Verification), Protected, WithBody)
)]
async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<VerifyRequest>,
) -> Result<axum::Json<Verification>, ApiError> {
    let client = state.shared.get().await?;
    let verification: Verification = caller
        .run_on(
            &client,
            &state,
            Scope::Verify,
            // json, not jsonb: the row is only read once, and to_json
            // writes its text directly where to_jsonb builds a tree first.
            "to_json(api_keys.api_key_verify($3::text, $4::text[], $5::text, $6::text))",
            &[&req.token, &req.required_scopes, &req.environment, &req.otp],
        )
        .await?;
    state.metrics.record_verification(&verification.code);
    Ok(axum::Json(verification))
}
