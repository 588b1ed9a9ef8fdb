//! Driving the dashboard over plain HTTP: sign-in links from
//! `POST /v1/dashboard_sessions`, the session cookie they are exchanged
//! for, pages and forms. Redirects are not followed, so tests see them.

use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::Service;

/// A page or form answer.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    #[track_caller]
    pub fn csrf(&self) -> String {
        csrf_of(&self.text).unwrap_or_else(|| panic!("no CSRF field in {}", self.text))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").map(|v| v.to_str().unwrap())
    }
}

pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    Some(html[at..].split('"').next()?.to_owned())
}

/// The value of cookie `name` in a page's Set-Cookie headers.
pub fn cookie_value(page: &Page, name: &str) -> Option<String> {
    page.set_cookies().iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page_of(resp: reqwest::Response) -> Page {
    Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap_or_default(),
    }
}

/// `POST /v1/dashboard_sessions` for owner user/`owner_id` with `extra`
/// fields; returns the answer body (`url`, `expires_at`).
pub async fn create_link(svc: &Service, admin: &str, owner_id: &str, extra: Value) -> Value {
    let mut body = json!({"owner_type": "user", "owner_id": owner_id});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let a = svc.post("/v1/dashboard_sessions", admin, &body).await;
    a.assert_ok(201).clone()
}

pub async fn link(svc: &Service, admin: &str, owner_id: &str) -> String {
    create_link(svc, admin, owner_id, json!({})).await["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Opens a sign-in link.
pub async fn open(url: &str) -> Page {
    page_of(client().get(url).send().await.unwrap()).await
}

/// Opens a fresh link of user/`owner_id` and returns the session cookie.
pub async fn sign_in(svc: &Service, admin: &str, owner_id: &str) -> String {
    let url = link(svc, admin, owner_id).await;
    let page = open(&url).await;
    assert_eq!(page.status, 200, "{}", page.text);
    cookie_value(&page, "api_keys_session").expect("a session cookie")
}

pub async fn get(svc: &Service, path: &str, session: Option<&str>) -> Page {
    let mut req = client().get(svc.url(path));
    if let Some(s) = session {
        req = req.header(COOKIE, format!("api_keys_session={s}"));
    }
    page_of(req.send().await.unwrap()).await
}

/// Posts a form (already url-encoded pairs).
pub async fn post(
    svc: &Service,
    path: &str,
    session: Option<&str>,
    fields: &[(&str, &str)],
) -> Page {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = client()
        .post(svc.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = session {
        req = req.header(COOKIE, format!("api_keys_session={s}"));
    }
    page_of(req.send().await.unwrap()).await
}

/// The CSRF token of a session (from its list page).
pub async fn csrf(svc: &Service, session: &str) -> String {
    let page = get(svc, "/dashboard/", Some(session)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.csrf()
}

/// The MFA secret shown as text on the enrollment page.
pub fn mfa_secret_of(html: &str) -> Option<String> {
    let at = html.find(r#"id="mfa-secret""#)?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(rest[start..start + end].to_owned())
}

/// The value of the (first) input named `name` on a page, unescaped.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let at = html.find(&marker)? + marker.len();
    let raw = html[at..].split('"').next()?;
    Some(
        raw.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The TOTP code of a base32 `secret` for now + `steps_ahead` steps (core's
/// RFC 6238 implementation, the extension's own).
pub fn totp_now(secret: &str, steps_ahead: i64) -> String {
    use api_keys_core::mfa;
    let bytes = mfa::base32_decode(secret).expect("a base32 secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = now + steps_ahead * mfa::STEP_SECONDS as i64;
    mfa::totp(&bytes, at as u64, mfa::DIGITS)
}

/// `api_key_mfa_status('user', owner_id)`, as the superuser reads it.
pub async fn mfa_status(svc: &Service, owner_id: &str) -> String {
    svc.su
        .query_one(
            "SELECT api_keys.api_key_mfa_status('user', $1)",
            &[&owner_id],
        )
        .await
        .unwrap()
        .get(0)
}
