//! `GET /metrics`: Prometheus text.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "service";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus text: requests by route and status, latency, verifications
/// by code, caller checks, pool use. No caller key.
#[utoipa::path(
    get, path = "/metrics", tag = TAG, operation_id = "metrics",
    responses((status = 200, description = "Prometheus exposition format 0.0.4.", body = String, content_type = "text/plain"))
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(&state.pool_use());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
