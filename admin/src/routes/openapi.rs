//! `GET /openapi.json`.

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi))
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(document())
}

pub fn document() -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "api-keys-admin", "version": env!("CARGO_PKG_VERSION")}, "paths": {}})
}
