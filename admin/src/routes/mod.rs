//! One module per resource, each with its own `router()`.
//!
//! # Adding a route
//! 1. Write the handler in its resource's module and put
//!    `#[utoipa::path(method, path = "/v1/…", tag = TAG, operation_id = "…",
//!    security(("bearer" = ["keys:…"])), params(…), request_body = …,
//!    responses((status = 200, body = …), Protected, …))]` on it: the scope
//!    it passes to `Caller::run`, each path/query parameter (an `IntoParams`
//!    struct or `("id" = Uuid, Path)`), its body type, its success answer
//!    and every error it can give (the shared ones in [`crate::error::doc`]:
//!    `Protected` for any route behind a caller key, `WithBody` for a JSON
//!    body, `NotFound`, `Conflict`). A route without a caller key has no
//!    `security`.
//! 2. Derive `ToSchema` on its request and response types (and
//!    `#[serde(deny_unknown_fields)]` on request bodies: the document then
//!    says `additionalProperties: false`, as the service does).
//! 3. Register it in the module's `router()` with `routes!(handler)` — one
//!    `routes!` per path, listing every method of that path. That is both
//!    the served route and its entry in `/openapi.json`.
//! 4. A new module is merged in [`api`].

pub mod health;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod mfa;
pub mod openapi;
pub mod owners;
pub mod presets;
pub mod verify;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every route and its OpenAPI description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(keys::router())
        .merge(lifecycle::router())
        .merge(owners::router())
        .merge(mfa::router())
        .merge(verify::router())
        .merge(presets::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
}
