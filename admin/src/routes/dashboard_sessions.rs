//! `POST /v1/dashboard_sessions` (SPEC §8, §9): a host application hands
//! its signed-in user a single-use sign-in link to the dashboard.

use api_keys_core::dashboard::{self, Secret};
use axum::extract::State;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::doc::{Protected, WithBody};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "dashboard";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// Who the dashboard is for, and where its return link leads.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    owner_type: String,
    owner_id: String,
    /// An absolute http:// or https:// URL for the dashboard's return link.
    return_url: Option<String>,
    /// The return link's text (at most 100 characters; needs return_url).
    return_text: Option<String>,
    /// How long the link works: 1 to 3600 seconds, default 300.
    ttl_seconds: Option<i64>,
}

/// A single-use sign-in link.
#[derive(Serialize, ToSchema)]
pub struct SessionLink {
    /// Redirect the signed-in user here; it works once.
    url: String,
    /// When the link stops working.
    expires_at: DateTime<Utc>,
}

/// Where the link points: the configured public URL, else this request's
/// Host over http (right on one's own machine; set `--public-url` behind a
/// proxy or for https).
fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = &state.dashboard.public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'@')
        })
        .ok_or_else(|| {
            ApiError::InvalidArgument(
                "no usable Host header to build the link from; start the service with --public-url"
                    .to_owned(),
            )
        })?;
    Ok(format!("http://{host}"))
}

/// A sign-in link to the self-serve dashboard for one owner
/// (`dashboard_session_create`).
#[utoipa::path(
    post, path = "/v1/dashboard_sessions", tag = TAG, operation_id = "createDashboardSession",
    description = "Needs an admin key with scope `keys:write`. The host application redirects its \
        signed-in user to `url`, which is exchanged once for a dashboard session cookie (SPEC §9).",
    security(("bearer" = ["keys:write"])),
    request_body = SessionRequest,
    responses((status = 201, description = "The link.", body = SessionLink), Protected, WithBody)
)]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Json(req): Json<SessionRequest>,
) -> Result<(StatusCode, axum::Json<SessionLink>), ApiError> {
    // A ttl beyond an integer cannot be passed on; core says why it is refused.
    let ttl = match req.ttl_seconds.map(i32::try_from) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            let err = dashboard::link_ttl(req.ttl_seconds).expect_err("out of range");
            return Err(ApiError::InvalidArgument(err.detail));
        }
    };
    let base = base_url(&state, &headers)?;
    let link = Secret::generate().map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let digest = link.hash().0.to_vec();
    let expires_at: DateTime<Utc> = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.dashboard_session_create($3::text, $4::text, $5::bytea, \
                 $6::integer, $7::text, $8::text))",
            &[
                &req.owner_type,
                &req.owner_id,
                &digest,
                &ttl,
                &req.return_url,
                &req.return_text,
            ],
        )
        .await?;
    let url = format!("{base}/dashboard/enter/{}", link.expose());
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionLink { url, expires_at }),
    ))
}
