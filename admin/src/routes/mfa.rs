//! Per-owner MFA (0.2.0): `POST /v1/owners/{owner_type}/{owner_id}/mfa`
//! (enroll), `…/mfa/confirm`, `DELETE …/mfa`. The secret leaves only in the
//! enroll answer, once; it is never logged.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::doc::{Protected, WithBody};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::routes::owners::{Owner, TAG};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll, disable))
        .routes(routes!(confirm))
}

/// The TOTP secret (base32) and its otpauth:// URI, shown once. No `Debug`.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct MfaEnrollment {
    secret: String,
    otpauth_uri: String,
}

/// Start (or restart) an owner's TOTP enrollment (`api_key_mfa_enroll`).
#[utoipa::path(
    post, path = "/v1/owners/{owner_type}/{owner_id}/mfa", tag = TAG, operation_id = "mfaEnroll",
    description = "Needs an admin key with scope `keys:write`. Issuer `api_keys`, account `owner_type/owner_id`; 400 when MFA is already enabled.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    responses((status = 200, description = "The secret and otpauth URI, shown once.", body = MfaEnrollment), Protected)
)]
async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
) -> Result<axum::Json<MfaEnrollment>, ApiError> {
    let enrollment = caller
        .run(
            &state,
            Scope::Write,
            "(SELECT to_jsonb(e) FROM api_keys.api_key_mfa_enroll($3::text, $4::text) e)",
            &[&owner.owner_type, &owner.owner_id],
        )
        .await?;
    Ok(axum::Json(enrollment))
}

/// No `Debug`: a code is a credential for its 30 seconds.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// A current 6-digit code of the pending secret.
    otp: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmResult {
    /// False for a wrong code.
    enabled: bool,
}

/// Enable a pending enrollment with a code (`api_key_mfa_confirm`).
#[utoipa::path(
    post, path = "/v1/owners/{owner_type}/{owner_id}/mfa/confirm", tag = TAG,
    operation_id = "mfaConfirm",
    description = "Needs an admin key with scope `keys:write`. 400 when nothing is pending.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    request_body = ConfirmRequest,
    responses((status = 200, description = "Whether the code enabled it.", body = ConfirmResult), Protected, WithBody)
)]
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
    Json(req): Json<ConfirmRequest>,
) -> Result<axum::Json<ConfirmResult>, ApiError> {
    let enabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_confirm($3::text, $4::text, $5::text))",
            &[&owner.owner_type, &owner.owner_id, &req.otp],
        )
        .await?;
    Ok(axum::Json(ConfirmResult { enabled }))
}

#[derive(Serialize, ToSchema)]
pub struct DisableResult {
    /// False when there was no enrollment.
    disabled: bool,
}

/// Remove an owner's TOTP enrollment (`api_key_mfa_disable`); its MFA keys
/// then fail closed for sensitive scopes.
#[utoipa::path(
    delete, path = "/v1/owners/{owner_type}/{owner_id}/mfa", tag = TAG, operation_id = "mfaDisable",
    description = "Needs an admin key with scope `keys:write`.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    responses((status = 200, description = "Whether there was one.", body = DisableResult), Protected)
)]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
) -> Result<axum::Json<DisableResult>, ApiError> {
    let disabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_disable($3::text, $4::text))",
            &[&owner.owner_type, &owner.owner_id],
        )
        .await?;
    Ok(axum::Json(DisableResult { disabled }))
}
