//! `GET /v1/expiration_presets`: the choices a dashboard offers.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::doc::Protected;
use crate::error::ApiError;
use crate::rows::ExpirationPreset;
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "keys";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(presets))
}

#[derive(Serialize, ToSchema)]
pub struct ExpirationPresets {
    /// In order.
    presets: Vec<ExpirationPreset>,
}

/// The expiry choices (`api_key_expiration_presets`).
#[utoipa::path(
    get, path = "/v1/expiration_presets", tag = TAG, operation_id = "expirationPresets",
    description = "Needs an admin key with scope `keys:read`.",
    security(("bearer" = ["keys:read"])),
    responses((status = 200, description = "The presets, in order.", body = ExpirationPresets), Protected)
)]
async fn presets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<ExpirationPresets>, ApiError> {
    let presets = caller
        .run(
            &state,
            Scope::Read,
            "(SELECT coalesce(jsonb_agg(jsonb_build_object('value', p.value, 'label', p.label)), '[]'::jsonb) \
               FROM api_keys.api_key_expiration_presets() p)",
            &[],
        )
        .await?;
    Ok(axum::Json(ExpirationPresets { presets }))
}
