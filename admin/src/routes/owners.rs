//! `/v1/owners/{owner_type}/{owner_id}/…`: revoke every key, available scopes.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/owners/{owner_type}/{owner_id}/revoke_all",
            post(revoke_all),
        )
        .route(
            "/v1/owners/{owner_type}/{owner_id}/available_scopes",
            get(available_scopes),
        )
}

async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner_type, owner_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let revoked = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_revoke_all($3::text, $4::text))",
            &[&owner_type, &owner_id],
        )
        .await?;
    Ok(axum::Json(json!({"revoked": revoked})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailableScopesQuery {
    key_type: Option<String>,
}

async fn available_scopes(
    State(state): State<AppState>,
    caller: Caller,
    // owner_id is part of the route for symmetry; the scopes a new key may
    // hold depend on the owner type's policy only.
    Path((owner_type, _owner_id)): Path<(String, String)>,
    Query(q): Query<AvailableScopesQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let scopes = caller
        .run(
            &state,
            Scope::Read,
            "to_jsonb(api_keys.api_key_available_scopes($3::text, $4::text))",
            &[&owner_type, &q.key_type],
        )
        .await?;
    Ok(axum::Json(json!({"scopes": scopes})))
}
