//! `GET /healthz`: 200 when the database answers, else 503.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Value>, ApiError> {
    let client = state.pool.get().await?;
    client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(axum::Json(json!({"status": "ok"})))
}
