//! The caller of an admin route: an `Authorization: Bearer <key>` whose key
//! is an `api_keys_admin` key holding the route's scope (SPEC §8).
//!
//! The key is verified by `api_key_verify` in the same SQL statement that
//! does the route's work, so a request costs one round trip; the work runs
//! only inside a `CASE` branch taken for an accepted caller. Nothing is
//! cached: a revocation is in force at its commit.

use std::fmt;

use api_keys_core::verify::{AuthOutcome, VerifyCode};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tokio_postgres::types::{Json, ToSql};

use crate::error::ApiError;
use crate::state::AppState;

/// The owner type of admin keys.
pub const ADMIN_OWNER_TYPE: &str = "api_keys_admin";

/// The scopes of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Verify,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Verify];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "keys:read",
            Scope::Write => "keys:write",
            Scope::Verify => "keys:verify",
        }
    }
}

/// The bearer token of a request. Its `Debug` shows only the masked form.
pub struct Caller {
    token: String,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = api_keys_core::token::mask(&self.token);
        write!(f, "Caller({})", masked.as_deref().unwrap_or("malformed"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let (scheme, token) = header.split_once(' ').ok_or(ApiError::Unauthorized)?;
        let token = token.trim();
        // Admin keys are tokens of ours: anything that does not parse (shape
        // or checksum) is refused here without a database round trip.
        if !scheme.eq_ignore_ascii_case("bearer") || api_keys_core::token::parse(token).is_none() {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller {
            token: token.to_owned(),
        })
    }
}

/// The verify code as `core` knows it; codes added by later versions
/// (e.g. `otp_required`) refuse like any other non-valid code.
fn outcome_of(code: &str) -> AuthOutcome {
    let code = VerifyCode::ALL
        .into_iter()
        .find(|c| c.as_str() == code)
        .unwrap_or(VerifyCode::Malformed);
    AuthOutcome::Verified(code)
}

/// The statement that checks the caller and, for an accepted one, evaluates
/// `work` (an SQL expression of type jsonb using parameters `$3…`).
fn statement(scope: Scope, work: &str) -> String {
    format!(
        "SELECT v.code, v.owner_type, \
                CASE WHEN v.code = 'valid' AND v.owner_type = '{ADMIN_OWNER_TYPE}' \
                     THEN ({work}) END AS result \
           FROM api_keys.api_key_verify($1::text, ARRAY['{scope}']::text[], $2::text) v",
        scope = scope.as_str()
    )
}

impl Caller {
    /// Checks the caller for `scope` and runs `work` in one statement on one
    /// pooled connection. `params` are `$3`, `$4`, … of `work`; its jsonb
    /// result is read straight into `T` (an SQL NULL as JSON `null`).
    pub async fn run<T: DeserializeOwned>(
        &self,
        state: &AppState,
        scope: Scope,
        work: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T, ApiError> {
        let client = state.pool.get().await?;
        self.run_on(&client, state, scope, work, params).await
    }

    /// [`run`](Self::run) on a connection the handler already holds.
    pub async fn run_on<T: DeserializeOwned>(
        &self,
        client: &deadpool_postgres::Client,
        state: &AppState,
        scope: Scope,
        work: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T, ApiError> {
        let sql = statement(scope, work);
        let statement = client.prepare_cached(&sql).await?;
        let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 2);
        all.push(&self.token);
        all.push(&state.caller_environment);
        all.extend_from_slice(params);
        let row = client.query_one(&statement, &all).await?;
        let code: Option<String> = row.try_get(0)?;
        let owner_type: Option<String> = row.try_get(1)?;
        let admin = owner_type.as_deref() == Some(ADMIN_OWNER_TYPE);
        let outcome = outcome_of(code.as_deref().unwrap_or("malformed"));
        match outcome.refusal_status() {
            None if admin => {
                state.metrics.record_caller_check("accepted");
                // A result that does not fit `T` is the service's bug, not
                // an unreachable database.
                let result: Option<Json<T>> = row
                    .try_get(2)
                    .map_err(|e| ApiError::Internal(format!("reading the result: {e}")))?;
                match result {
                    Some(Json(value)) => Ok(value),
                    None => serde_json::from_value(serde_json::Value::Null)
                        .map_err(|e| ApiError::Internal(format!("{work} returned NULL: {e}"))),
                }
            }
            Some(403) if admin => {
                state.metrics.record_caller_check("forbidden");
                Err(ApiError::InsufficientScope {
                    scope: scope.as_str(),
                })
            }
            // A key of another owner type is no admin key at all, whatever
            // its scopes: 401, not 403.
            _ => {
                state.metrics.record_caller_check("unauthorized");
                Err(ApiError::Unauthorized)
            }
        }
    }
}
