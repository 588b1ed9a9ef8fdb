//! `GET /healthz`: 200 when the database answers, else 503.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::doc::Unavailable;
use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "service";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: HealthStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// 200 when the database answers. No caller key.
#[utoipa::path(
    get, path = "/healthz", tag = TAG, operation_id = "healthz",
    responses((status = 200, description = "The database answers.", body = Health), Unavailable)
)]
async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    let client = state.pool.get().await?;
    client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(axum::Json(Health {
        status: HealthStatus::Ok,
    }))
}
