//! `/v1/owners/{owner_type}/{owner_id}/…`: revoke every key, available scopes.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::doc::Protected;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "owners";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke_all))
        .routes(routes!(available_scopes))
}

/// The owner in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Owner {
    pub(crate) owner_type: String,
    pub(crate) owner_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct RevokeAllResult {
    /// How many keys were revoked.
    #[schema(minimum = 0)]
    revoked: i64,
}

/// Revoke every active revocable key of an owner (`api_key_revoke_all`).
#[utoipa::path(
    post, path = "/v1/owners/{owner_type}/{owner_id}/revoke_all", tag = TAG,
    operation_id = "revokeAllKeys",
    description = "Needs an admin key with scope `keys:write`.",
    security(("bearer" = ["keys:write"])),
    params(Owner),
    responses((status = 200, description = "How many keys were revoked.", body = RevokeAllResult), Protected)
)]
async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(owner): Path<Owner>,
) -> Result<axum::Json<RevokeAllResult>, ApiError> {
    let revoked = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_revoke_all($3::text, $4::text))",
            &[&owner.owner_type, &owner.owner_id],
        )
        .await?;
    Ok(axum::Json(RevokeAllResult { revoked }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailableScopesQuery {
    /// The key type of the new key; absent = the owner type's default.
    key_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AvailableScopes {
    /// In order.
    scopes: Vec<String>,
}

/// Scopes a new key of this owner may hold (`api_key_available_scopes`).
#[utoipa::path(
    get, path = "/v1/owners/{owner_type}/{owner_id}/available_scopes", tag = TAG,
    operation_id = "availableScopes",
    description = "Needs an admin key with scope `keys:read`.",
    security(("bearer" = ["keys:read"])),
    params(Owner, AvailableScopesQuery),
    responses((status = 200, description = "The scopes, in order.", body = AvailableScopes), Protected)
)]
async fn available_scopes(
    State(state): State<AppState>,
    caller: Caller,
    // owner_id is part of the route for symmetry; the scopes a new key may
    // hold depend on the owner type's policy only.
    Path(owner): Path<Owner>,
    Query(q): Query<AvailableScopesQuery>,
) -> Result<axum::Json<AvailableScopes>, ApiError> {
    let scopes: Option<Vec<String>> = caller
        .run(
            &state,
            Scope::Read,
            "to_jsonb(api_keys.api_key_available_scopes($3::text, $4::text))",
            &[&owner.owner_type, &q.key_type],
        )
        .await?;
    Ok(axum::Json(AvailableScopes {
        scopes: scopes.unwrap_or_default(),
    }))
}
