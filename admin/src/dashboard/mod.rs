//! The self-serve dashboard (SPEC §9): server-rendered pages under
//! `/dashboard/` for one owner at a time, signed in by a single-use link
//! from `POST /v1/dashboard_sessions`. Templates are compiled (maud); the
//! stylesheet and the copy script are embedded in the binary.

mod entry;
pub mod error;
mod form;
mod forms;
mod keys;
mod mfa;
mod pages;
pub mod session;
pub mod view;

use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::map_response;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::Router;

use crate::state::AppState;
use error::DashboardError;

/// The page's CSP: nothing but our own stylesheet and script, no framing.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const CSS: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/copy.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(keys::list))
        .route("/dashboard/enter/{secret}", get(entry::enter))
        .route("/dashboard/logout", post(entry::logout))
        .route(
            "/dashboard/reset",
            get(entry::reset_confirm).post(entry::reset),
        )
        .route("/dashboard/keys", post(keys::create))
        .route("/dashboard/keys/new", get(keys::new_form))
        .route(
            "/dashboard/keys/publishable",
            post(keys::create_publishable),
        )
        .route("/dashboard/keys/{id}", post(keys::update))
        .route("/dashboard/keys/{id}/edit", get(keys::edit_form))
        .route("/dashboard/keys/{id}/created", get(keys::created))
        .route(
            "/dashboard/keys/{id}/rotate",
            get(keys::rotate_confirm).post(keys::rotate),
        )
        .route(
            "/dashboard/keys/{id}/revoke",
            get(keys::revoke_confirm).post(keys::revoke),
        )
        .route("/dashboard/mfa", get(mfa::show).post(mfa::enroll))
        .route("/dashboard/mfa/confirm", post(mfa::confirm))
        .route(
            "/dashboard/mfa/disable",
            get(mfa::disable_form).post(mfa::disable),
        )
        .route("/dashboard/assets/dashboard.css", get(css))
        .route("/dashboard/assets/theme.css", get(theme))
        .route("/dashboard/assets/copy.js", get(script))
        .route("/dashboard/{*rest}", any(not_found))
        .layer(map_response(security_headers))
}

async fn not_found() -> DashboardError {
    DashboardError::NotFound
}

async fn css() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// The operator's theme (`--dashboard-theme`), loaded after the stylesheet.
async fn theme(State(state): State<AppState>) -> Response {
    let css = state.dashboard.theme_css.clone().unwrap_or_default();
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

async fn script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// On every dashboard answer: the CSP, no framing, no sniffing, no
/// Referer (a sign-in link must not leak through one), no caching (pages
/// show tokens and CSRF tokens).
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
