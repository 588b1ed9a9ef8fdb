//! The dashboard's cookie session (SPEC §9): the cookie, the CSRF token
//! derived from it, and the one statement per request that finds the live
//! session of the cookie and does the page's work for its owner.
//!
//! Like [`crate::auth`], the session is checked by
//! `api_keys.dashboard_session_owner` in the same SQL statement that does the
//! work, which runs only for a live session and sees the owner the database
//! stored, never one the browser sent.

use api_keys_core::dashboard::{Secret, SESSION_LIFETIME_SECS};
use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::error::DashboardError;
use crate::state::AppState;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "api_keys_session";
/// Name of the show-once cookie carrying a just-issued token to its page.
pub const NEW_TOKEN_COOKIE: &str = "api_keys_new_token";
/// Name of the CSRF field of every form.
pub const CSRF_FIELD: &str = "csrf";

/// The owner a live session is bound to, and its return link.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    pub owner_type: String,
    pub owner_id: String,
    pub return_url: Option<String>,
    pub return_text: Option<String>,
}

/// The session cookie of a request, parsed but not yet checked.
pub struct Session {
    secret: Secret,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(…)")
    }
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = DashboardError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Anything that is not the shape of a secret is refused here, with
        // no database round trip.
        let secret = cookie(&parts.headers, COOKIE_NAME)
            .and_then(Secret::parse)
            .ok_or(DashboardError::SignedOut)?;
        Ok(Session { secret })
    }
}

/// Whether the request reached us by a loopback name: only there may the
/// cookies go without `Secure` (plain http on one's own machine).
pub fn on_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure unless on loopback.
pub fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if !on_loopback(headers) {
        c.push_str("; Secure");
    }
    c
}

/// The session cookie for a new session: it lives as long as a session may.
pub fn session_cookie(headers: &HeaderMap, secret: &Secret) -> String {
    set_cookie(
        headers,
        COOKIE_NAME,
        secret.expose(),
        "/dashboard",
        Some(SESSION_LIFETIME_SECS),
    )
}

/// A `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(headers: &HeaderMap) -> String {
    set_cookie(headers, COOKIE_NAME, "", "/dashboard", Some(0))
}

/// The statement that finds the session and, for a live one, evaluates
/// `work` (an SQL expression over `s.owner_type`, `s.owner_id` and the
/// parameters `$2…`).
fn statement(work: &str) -> String {
    format!(
        "SELECT s.owner_type, s.owner_id, s.return_url, s.return_text, ({work}) AS result \
           FROM api_keys.dashboard_session_owner($1::bytea) s"
    )
}

impl Session {
    pub fn csrf_token(&self) -> String {
        self.secret.csrf_token()
    }

    /// Refuses a form whose CSRF field is missing or wrong (403).
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), DashboardError> {
        match sent {
            Some(t) if self.secret.csrf_matches(t) => Ok(()),
            _ => Err(DashboardError::Csrf),
        }
    }

    /// The SHA-256 digest by which the database knows this session.
    pub fn digest(&self) -> Vec<u8> {
        self.secret.hash().0.to_vec()
    }

    /// Finds the live session and runs `work` for its owner in one
    /// statement; `params` are `$2`, `$3`, …
    pub async fn run(
        &self,
        state: &AppState,
        work: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(Owner, Value), DashboardError> {
        let client = state.pool.get().await.map_err(crate::ApiError::from)?;
        let statement = client
            .prepare_cached(&statement(work))
            .await
            .map_err(crate::ApiError::from)?;
        let digest = self.digest();
        let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
        all.push(&digest);
        all.extend_from_slice(params);
        let row = client
            .query_opt(&statement, &all)
            .await
            .map_err(crate::ApiError::from)?
            .ok_or(DashboardError::SignedOut)?;
        let owner = Owner {
            owner_type: row.try_get(0).map_err(crate::ApiError::from)?,
            owner_id: row.try_get(1).map_err(crate::ApiError::from)?,
            return_url: row.try_get(2).map_err(crate::ApiError::from)?,
            return_text: row.try_get(3).map_err(crate::ApiError::from)?,
        };
        let result: Option<Value> = row.try_get(4).map_err(crate::ApiError::from)?;
        Ok((owner, result.unwrap_or(Value::Null)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "a.localhost",
            "127.1.2.3",
        ] {
            assert!(on_loopback(&host(h)), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:8080",
            "localhost.example.com",
            "[2001:db8::1]:80",
        ] {
            assert!(!on_loopback(&host(h)), "{h}");
        }
        assert!(!on_loopback(&HeaderMap::new()));
    }

    #[test]
    fn cookies_are_secure_off_loopback() {
        let c = set_cookie(&host("keys.example.com"), "a", "b", "/dashboard", None);
        assert_eq!(c, "a=b; Path=/dashboard; HttpOnly; SameSite=Strict; Secure");
        let c = set_cookie(&host("127.0.0.1:3000"), "a", "b", "/dashboard", Some(5));
        assert_eq!(
            c,
            "a=b; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=5"
        );
    }

    #[test]
    fn the_named_cookie_is_found_among_others() {
        let mut m = HeaderMap::new();
        m.append(
            COOKIE,
            HeaderValue::from_static("x=1; api_keys_session=abc"),
        );
        m.append(COOKIE, HeaderValue::from_static("y=2"));
        assert_eq!(cookie(&m, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie(&m, "y"), Some("2"));
        assert_eq!(cookie(&m, "z"), None);
    }
}
