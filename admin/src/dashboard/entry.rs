//! Signing in with a hand-off link, signing out, and Reset (which signs out).

use api_keys_core::dashboard::Secret;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{HeaderName, SET_COOKIE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::DashboardError;
use super::form::FormBody;
use super::pages;
use super::session::{clear_session_cookie, session_cookie, Owner, Session, CSRF_FIELD};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /dashboard/enter/{secret}`: exchanges the single-use link for a
/// cookie session. A link that is malformed, unknown, expired or used is
/// refused the same way (403), so a guess learns nothing.
pub async fn enter(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(link): Path<String>,
) -> Result<Response, DashboardError> {
    // A HEAD (link checkers, previews) must not spend the single-use link.
    if method == Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    let link = Secret::parse(&link).ok_or(DashboardError::LinkRefused)?;
    let session = Secret::generate()
        .map_err(|e| DashboardError::Api(ApiError::Internal(format!("no randomness: {e}"))))?;
    let client = state.pool.get().await.map_err(ApiError::from)?;
    let row = client
        .query_opt(
            "SELECT owner_type FROM api_keys.dashboard_session_exchange($1::bytea, $2::bytea)",
            &[&link.hash().0.to_vec(), &session.hash().0.to_vec()],
        )
        .await
        .map_err(ApiError::from)?;
    if row.is_none() {
        return Err(DashboardError::LinkRefused);
    }
    Ok((
        [
            (SET_COOKIE, session_cookie(&headers, &session)),
            (
                HeaderName::from_static("refresh"),
                "0; url=/dashboard/".to_owned(),
            ),
        ],
        pages::entered(),
    )
        .into_response())
}

/// Runs `work`, which ends the session, for a form with this session's
/// CSRF token.
async fn end_session(
    state: &AppState,
    session: &Session,
    body: &Bytes,
    work: &str,
) -> Result<(Owner, serde_json::Value), DashboardError> {
    session.check_csrf(FormBody::parse(body).get(CSRF_FIELD))?;
    session.run(state, work, &[]).await
}

/// The page after the session ended, with the cookie removed.
fn signed_out(headers: &HeaderMap, owner: &Owner, title: &str, text: &str) -> Response {
    (
        [(SET_COOKIE, clear_session_cookie(headers))],
        pages::signed_out(owner, title, text),
    )
        .into_response()
}

/// `POST /dashboard/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let work = "to_jsonb(api_keys.dashboard_session_end($1::bytea))";
    let (owner, _) = end_session(&state, &session, &body, work).await?;
    let text = "You are signed out of the API keys dashboard.";
    Ok(signed_out(&headers, &owner, "Signed out", text))
}

/// `GET /dashboard/reset`: the confirmation.
pub async fn reset_confirm(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, DashboardError> {
    let (owner, _) = session.run(&state, "NULL::jsonb", &[]).await?;
    Ok(pages::reset_confirm(&owner, &session.csrf_token()).into_response())
}

/// `POST /dashboard/reset`: `api_key_revoke_all`, which also ends every
/// dashboard session of the owner, this one included.
pub async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let work = "to_jsonb(api_keys.api_key_revoke_all(s.owner_type, s.owner_id))";
    let (owner, revoked) = end_session(&state, &session, &body, work).await?;
    let n = revoked.as_i64().unwrap_or(0);
    let text = format!(
        "{n} key{} revoked. Every dashboard session of your account has ended, this one too.",
        if n == 1 { " was" } else { "s were" }
    );
    Ok(signed_out(&headers, &owner, "All keys revoked", &text))
}
