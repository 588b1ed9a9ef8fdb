//! How a dashboard request fails: an HTML page with the reason in words,
//! never internals (those go to the log through [`ApiError`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::view;
use crate::error::ApiError;

#[derive(Debug)]
pub enum DashboardError {
    /// No cookie, a malformed one, or a session that ended or expired.
    SignedOut,
    /// A form without this session's CSRF token.
    Csrf,
    /// No such key for this owner (another owner's key looks the same).
    NotFound,
    /// A sign-in link that is malformed, unknown, expired or already used.
    LinkRefused,
    /// An error of the SQL API or the service.
    Api(ApiError),
}

impl From<ApiError> for DashboardError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Refused { status, .. } if status == StatusCode::NOT_FOUND => {
                DashboardError::NotFound
            }
            other => DashboardError::Api(other),
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            DashboardError::SignedOut => (
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your dashboard session has ended or has expired. Open the dashboard again from the application you came from.".to_owned(),
            ),
            DashboardError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from your current dashboard session. Go back, reload the page and try again.".to_owned(),
            ),
            DashboardError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such key or page in your dashboard.".to_owned(),
            ),
            DashboardError::LinkRefused => (
                StatusCode::FORBIDDEN,
                "Link not valid",
                "This sign-in link is invalid, has expired or was already used. Links work once and only for a few minutes: ask the application you came from for a new one.".to_owned(),
            ),
            DashboardError::Api(e) => {
                let status = e.status();
                let text = match e {
                    ApiError::Refused { message, .. } => view::reason_in_words(message),
                    ApiError::Unavailable(_) => {
                        "The database is unavailable right now; try again in a moment.".to_owned()
                    }
                    _ => "Something went wrong on our side; try again later.".to_owned(),
                };
                if let ApiError::Internal(detail) = e {
                    tracing::error!(%detail, "dashboard request failed");
                }
                (status, "Something went wrong", text)
            }
        };
        (status, view::message_page(title, &text, None)).into_response()
    }
}
