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

/// A pending enrollment: shown once. No `Debug`: it holds the secret.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MfaEnrollment {
    /// The TOTP secret, base32 (RFC 6238: SHA-1, 6 digits, 30 s).
    secret: String,
    /// `otpauth://totp/…` for authenticator apps (a QR code of it).
    otpauth_uri: String,
}

/// Enroll an owner in MFA (`api_key_mfa_enroll`): a pending TOTP secret,
/// replacing a pending one, enabled by a confirmed code.
#[utoipa::path(
    post, path = "/v1/owners/{owner_type}/{owner_id}/mfa", tag = TAG,
    operation_id = "enrollMfa",
    description = "Needs an admin key with scope `keys:write`. 400 when MFA is already enabled.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    responses((status = 200, description = "The pending secret and its otpauth URI (shown once).", body = MfaEnrollment), Protected)
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
    /// The 6-digit code the authenticator shows now.
    otp: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaConfirmed {
    /// Whether MFA is now enabled (false: wrong or stale code).
    enabled: bool,
}

/// Confirm a pending enrollment with a code (`api_key_mfa_confirm`).
#[utoipa::path(
    post, path = "/v1/owners/{owner_type}/{owner_id}/mfa/confirm", tag = TAG,
    operation_id = "confirmMfa",
    description = "Needs an admin key with scope `keys:write`.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    request_body = ConfirmRequest,
    responses((status = 200, description = "Whether MFA is enabled now.", body = MfaConfirmed), Protected, WithBody)
)]
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
    Json(req): Json<ConfirmRequest>,
) -> Result<axum::Json<MfaConfirmed>, ApiError> {
    let enabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_confirm($3::text, $4::text, $5::text))",
            &[&owner.owner_type, &owner.owner_id, &req.otp],
        )
        .await?;
    Ok(axum::Json(MfaConfirmed { enabled }))
}

#[derive(Serialize, ToSchema)]
pub struct MfaDisabled {
    /// Whether MFA was enrolled (pending or enabled) and is now off.
    disabled: bool,
}

/// Disable an owner's MFA (`api_key_mfa_disable`).
#[utoipa::path(
    delete, path = "/v1/owners/{owner_type}/{owner_id}/mfa", tag = TAG,
    operation_id = "disableMfa",
    description = "Needs an admin key with scope `keys:write`. Keys flagged mfa then fail closed (see the README).",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    responses((status = 200, description = "Whether it was disabled.", body = MfaDisabled), Protected)
)]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
) -> Result<axum::Json<MfaDisabled>, ApiError> {
    let disabled = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_mfa_disable($3::text, $4::text))",
            &[&owner.owner_type, &owner.owner_id],
        )
        .await?;
    Ok(axum::Json(MfaDisabled { disabled }))
}
