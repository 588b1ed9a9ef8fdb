//! The one error type of the service and the SQLSTATE → HTTP mapping (SPEC §8).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::{RefOr, Response as DocResponse, ResponseBuilder};
use utoipa::ToSchema;

/// The SPEC error body: `{"error":{"code","message"}}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The reason: `invalid_argument`, `key_not_found`, `key_limit_reached`,
    /// `key_not_revocable`, `unauthorized`, `insufficient_scope`, `not_found`,
    /// `unavailable`, `internal`, or another reason of the extension.
    pub code: String,
    pub message: String,
}

/// Everything a request can end in besides success. The body is always
/// `{"error":{"code","message"}}`; internals go to the log, never the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal raised by an SQL function of the extension: its reason and
    /// message are the client's to see.
    #[error("{reason}: {message}")]
    Refused {
        status: StatusCode,
        reason: String,
        message: String,
    },
    /// The request's JSON, path or query does not have the documented shape.
    #[error("invalid_argument: {0}")]
    InvalidArgument(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// No caller key, or one that is not an accepted admin key.
    #[error("unauthorized")]
    Unauthorized,
    /// An admin key without the route's scope.
    #[error("insufficient_scope: {scope}")]
    InsufficientScope { scope: &'static str },
    /// The client did not send its body in time.
    #[error("request body timeout")]
    BodyTimeout,
    #[error("no route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database cannot be reached (pool timeout, connection lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected database error.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused { status, .. } => *status,
            ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_message(&self) -> (&str, String) {
        match self {
            ApiError::Refused {
                reason, message, ..
            } => (reason, message.clone()),
            ApiError::InvalidArgument(m) => ("invalid_argument", m.clone()),
            ApiError::PayloadTooLarge { limit } => (
                "invalid_argument",
                format!("the request body is larger than {limit} bytes"),
            ),
            ApiError::Unauthorized => (
                "unauthorized",
                "a valid admin API key is required (Authorization: Bearer <key>)".to_owned(),
            ),
            ApiError::InsufficientScope { scope } => (
                "insufficient_scope",
                format!("the API key lacks the scope {scope}"),
            ),
            ApiError::BodyTimeout => (
                "invalid_argument",
                "the request body did not arrive in time".to_owned(),
            ),
            ApiError::NoRoute => ("not_found", "no such route".to_owned()),
            ApiError::MethodNotAllowed => (
                "method_not_allowed",
                "this route does not accept that method".to_owned(),
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "the database is unavailable; retry later".to_owned(),
            ),
            ApiError::Internal(_) => ("internal", "internal server error".to_owned()),
        }
    }
}

/// Maps an error of the extension's SQL API. Its message starts with
/// `api_keys: <reason>: …` (SPEC §5); the reason is the word after it.
impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No server error: the connection is gone or never came up.
            return ApiError::Unavailable(e.to_string());
        };
        let status = match db.code().code() {
            "22023" => StatusCode::BAD_REQUEST,
            "23514" => StatusCode::CONFLICT,
            "42501" => StatusCode::FORBIDDEN,
            "P0002" => StatusCode::NOT_FOUND,
            // Server shutting down, too many connections, cannot connect now.
            "57P01" | "57P02" | "57P03" | "53300" => {
                return ApiError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
            }
            // Other data exceptions (a NUL in text, an out-of-range
            // timestamp): the request's values, not the service, are wrong.
            code if code.starts_with("22") => StatusCode::BAD_REQUEST,
            code => return ApiError::Internal(format!("{code}: {}", db.message())),
        };
        let message = db.message().to_owned();
        let reason = reason_of(&message).unwrap_or(match status {
            StatusCode::BAD_REQUEST => "invalid_argument",
            StatusCode::CONFLICT => "key_limit_reached",
            StatusCode::FORBIDDEN => "key_not_revocable",
            _ => "key_not_found",
        });
        ApiError::Refused {
            status,
            reason: reason.to_owned(),
            message,
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// `api_keys: key_limit_reached: owner …` → `key_limit_reached`.
pub fn reason_of(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("api_keys: ")?;
    let reason = rest.split(':').next()?.trim();
    let well_formed =
        !reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    well_formed.then_some(reason)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // Details of these stay in the log; the client gets a generic message.
            ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            _ => tracing::debug!(status = status.as_u16(), "request refused"),
        }
        let (code, message) = self.code_and_message();
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The error answers as the OpenAPI document names them: each a shared
/// response under `#/components/responses/`, with the [`ErrorBody`] schema.
/// A handler lists the ones it can give in its `#[utoipa::path(responses(…))]`,
/// e.g. `responses((status = 200, body = KeyInfo), Protected, NotFound)`.
pub mod doc {
    use super::*;

    /// Every status an [`ApiError`] can answer with, its shared response's
    /// name and description.
    pub const RESPONSES: [(&str, &str, &str); 9] = [
        ("400", "InvalidArgument", "Malformed JSON, path or query, an unknown field, or an argument the extension refused (SQLSTATE 22023)."),
        ("401", "Unauthorized", "No caller key, or one that is not an active api_keys_admin key (malformed, unknown, revoked, expired, or of another owner type)."),
        ("403", "Forbidden", "The caller key lacks the route's scope, or the key is not revocable (SQLSTATE 42501)."),
        ("404", "NotFound", "No such key (SQLSTATE P0002)."),
        ("408", "BodyTimeout", "The request body did not arrive within 10 seconds."),
        ("409", "Conflict", "A key limit is reached (SQLSTATE 23514)."),
        ("413", "PayloadTooLarge", "The request body is larger than 64 KiB."),
        ("500", "Internal", "Unexpected failure; details only in the server log."),
        ("503", "Unavailable", "The database is unavailable, or the request timed out."),
    ];

    /// The shared responses, for `components.responses`.
    pub fn components() -> Vec<(String, RefOr<DocResponse>)> {
        RESPONSES
            .iter()
            .map(|(_, name, description)| {
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ErrorBody",
                            ))))
                            .build(),
                    )
                    .build();
                ((*name).to_owned(), RefOr::T(response))
            })
            .collect()
    }

    fn refs(statuses: &[&str]) -> BTreeMap<String, RefOr<DocResponse>> {
        statuses
            .iter()
            .map(|status| {
                let (_, name, _) = RESPONSES
                    .iter()
                    .find(|(s, _, _)| s == status)
                    .expect("a documented status");
                (
                    (*status).to_owned(),
                    RefOr::Ref(utoipa::openapi::Ref::from_response_name(*name)),
                )
            })
            .collect()
    }

    macro_rules! error_responses {
        ($($(#[$doc:meta])* $name:ident = [$($status:literal),+];)+) => {$(
            $(#[$doc])*
            pub struct $name;
            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
                    refs(&[$($status),+])
                }
            }
        )+};
    }

    error_responses! {
        /// What every route behind a caller key can answer: 400 (its
        /// arguments), 401, 403 (scope), 500 and 503.
        Protected = ["400", "401", "403", "500", "503"];
        /// A route with a JSON body: 408 when it comes too slowly, 413
        /// beyond [`crate::BODY_LIMIT`].
        WithBody = ["408", "413"];
        /// A route about one key: 404 when there is none.
        NotFound = ["404"];
        /// Issuing: 409 at a key limit.
        Conflict = ["409"];
        /// `/healthz`: 503 when the database does not answer.
        Unavailable = ["503"];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_the_word_after_the_prefix() {
        assert_eq!(
            reason_of("api_keys: key_limit_reached: owner user/42 already has 10 active keys"),
            Some("key_limit_reached")
        );
        assert_eq!(reason_of("api_keys: key_not_found"), Some("key_not_found"));
        assert_eq!(reason_of("something else: x"), None);
        assert_eq!(reason_of("api_keys: Not A Reason: x"), None);
    }
}
