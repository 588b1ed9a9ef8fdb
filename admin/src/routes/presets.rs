//! `GET /v1/expiration_presets`: the choices a dashboard offers.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/expiration_presets", get(presets))
}

async fn presets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    let presets = caller
        .run(
            &state,
            Scope::Read,
            "(SELECT coalesce(jsonb_agg(jsonb_build_object('value', p.value, 'label', p.label)), '[]'::jsonb) \
               FROM api_keys.api_key_expiration_presets() p)",
            &[],
        )
        .await?;
    Ok(axum::Json(json!({"presets": presets})))
}
