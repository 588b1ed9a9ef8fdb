//! What every page shares: the layout (header, return link, logout), the
//! rows the SQL functions answer with, badges, times and reasons in words.
//! maud escapes every interpolated string, so owner-supplied text (key
//! names, return text, scopes) is always shown as text.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::session::{Owner, CSRF_FIELD};

/// The rows the SQL functions answer with (SPEC §5), as the JSON API has them.
pub use crate::rows::{IssuedKey, KeyInfo as KeyView, KeyStatus};

/// A key's name, or what to call a key without one.
pub fn display_name(key: &KeyView) -> &str {
    key.name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("Unnamed key")
}

pub fn is_active(key: &KeyView) -> bool {
    key.status == KeyStatus::Active
}

/// A key type as `dashboard_key_options` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct TypeOption {
    pub name: String,
    pub public: bool,
    pub revocable: bool,
    /// Environments a key of this type may be issued in now (limits
    /// permitting); `None` stands for "no environment".
    pub issuable_in: Vec<Option<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Preset {
    pub value: String,
    pub label: String,
}

/// The answer of `dashboard_key_options`.
#[derive(Debug, Clone, Deserialize)]
pub struct Options {
    pub key_types: Vec<TypeOption>,
    pub environments: Vec<String>,
    pub presets: Vec<Preset>,
    pub available_scopes: Vec<String>,
    /// `api_key_scope_define`'s descriptions, by scope name.
    #[serde(default)]
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// The owner's `api_key_mfa_status` (none, pending, enabled).
    #[serde(default)]
    pub mfa_status: String,
}

impl Options {
    /// Whether keys may get the MFA flag (the owner's MFA is enabled).
    pub fn mfa_enabled(&self) -> bool {
        self.mfa_status == "enabled"
    }

    pub fn is_public(&self, key_type: Option<&str>) -> bool {
        key_type.is_some_and(|t| self.key_types.iter().any(|o| o.name == t && o.public))
    }
}

pub const CSS_PATH: &str = "/dashboard/assets/dashboard.css";
pub const THEME_PATH: &str = "/dashboard/assets/theme.css";
pub const SCRIPT_PATH: &str = "/dashboard/assets/copy.js";

/// The page frame. `owner` = signed in (return link, logout); `csrf` for
/// the logout form.
pub fn layout(title: &str, owner: Option<(&Owner, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · API keys" }
                link rel="stylesheet" href=(CSS_PATH);
                link rel="stylesheet" href=(THEME_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                header.top {
                    div.wrap {
                        a.brand href="/dashboard/" { "API keys" }
                        @if let Some((owner, csrf)) = owner {
                            nav aria-label="Account" {
                                a.nav-mfa href="/dashboard/mfa" title="Two-factor authentication" { "MFA" }
                                @if let Some(url) = &owner.return_url {
                                    a.return href=(url) {
                                        "← " (owner.return_text.as_deref().unwrap_or("Back"))
                                    }
                                }
                                form.inline method="post" action="/dashboard/logout" {
                                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main.wrap id="main" { (body) }
            }
        }
    }
}

/// A page with one message (errors, signed out, link refused).
pub fn message_page(title: &str, text: &str, extra: Option<Markup>) -> Markup {
    layout(
        title,
        None,
        html! {
            h1 { (title) }
            p { (text) }
            @if let Some(extra) = extra { (extra) }
        },
    )
}

/// An SQL error message (`api_keys: exclusive_scope: …`) in words for the
/// page: a sentence for the reason, then the function's own detail.
pub fn reason_in_words(message: &str) -> String {
    let reason = crate::error::reason_of(message).unwrap_or("");
    let detail = message
        .strip_prefix("api_keys: ")
        .and_then(|rest| rest.split_once(": ").map(|(_, d)| d))
        .unwrap_or(message);
    let lead = match reason {
        "exclusive_scope" => "This scope must be the only one on a key.",
        "unknown_scope" => "One of these scopes does not exist.",
        "name_required" => "A name is required.",
        "invalid_expiry" => "This expiry cannot be used.",
        "key_limit_reached" => "You have reached the maximum number of active keys.",
        "type_limit_reached" => "You have reached the maximum number of keys of this type.",
        "unknown_key_type" => "This key type does not exist.",
        "unknown_environment" => "Choose an environment.",
        "key_not_revocable" => "This key cannot be revoked.",
        "key_not_found" => "There is no such key.",
        "mfa_not_enabled" => "Turn on two-factor authentication (MFA) for your account first.",
        _ => "This was refused.",
    };
    format!("{lead} ({detail})")
}

/// Which form field an SQL refusal belongs beside.
pub fn field_of(message: &str) -> &'static str {
    match crate::error::reason_of(message).unwrap_or("") {
        "exclusive_scope" | "unknown_scope" => "scopes",
        "name_required" => "name",
        "invalid_expiry" => "expires_in",
        "unknown_key_type" => "key_type",
        "unknown_environment" => "environment",
        "mfa_not_enabled" => "mfa",
        "invalid_argument" if message.contains("name") => "name",
        "invalid_argument" if message.contains("scope") => "scopes",
        _ => "form",
    }
}

/// `2026-12-01 22:54:02 UTC`.
pub fn exact(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "3 days ago", "in 2 hours", "just now".
pub fn relative(t: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    let secs = (*now - *t).num_seconds();
    let (n, future) = if secs < 0 {
        (-secs, true)
    } else {
        (secs, false)
    };
    if n < 45 {
        return "just now".to_owned();
    }
    let (count, unit) = match n {
        n if n < 3600 => ((n + 30) / 60, "minute"),
        n if n < 86_400 => ((n + 1800) / 3600, "hour"),
        n if n < 30 * 86_400 => ((n + 43_200) / 86_400, "day"),
        n if n < 365 * 86_400 => (n / (30 * 86_400), "month"),
        n => (n / (365 * 86_400), "year"),
    };
    let count = count.max(1);
    let plural = if count == 1 { "" } else { "s" };
    if future {
        format!("in {count} {unit}{plural}")
    } else {
        format!("{count} {unit}{plural} ago")
    }
}

/// A time (as PostgreSQL wrote it) shown relatively, with the exact UTC
/// time as its tooltip.
pub fn time(t: &str, now: &DateTime<Utc>) -> Markup {
    match DateTime::parse_from_rfc3339(t) {
        Ok(t) => {
            let t = t.with_timezone(&Utc);
            html! { time datetime=(t.to_rfc3339()) title=(exact(&t)) { (relative(&t, now)) } }
        }
        Err(_) => html! { time { (t) } },
    }
}

pub fn status_badge(status: KeyStatus) -> Markup {
    let (class, label) = match status {
        KeyStatus::Active => ("badge status-active", "Active"),
        KeyStatus::Expired => ("badge status-expired", "Expired"),
        KeyStatus::Revoked => ("badge status-revoked", "Revoked"),
    };
    html! { span class=(class) { (label) } }
}

pub fn environment_badge(environment: Option<&str>) -> Markup {
    html! {
        @match environment {
            Some(e) => {
                @let class = match e { "live" | "production" | "prod" => "badge env env-live", "test" | "sandbox" | "development" => "badge env env-test", _ => "badge env" };
                span class=(class) { (e) }
            }
            None => span.muted { "—" }
        }
    }
}

/// The badge of a key whose sensitive scopes need a one-time code.
pub fn mfa_badge(key: &KeyView) -> Markup {
    html! {
        @if key.mfa {
            " " span.badge.mfa title="Needs a one-time code for sensitive scopes" { "MFA" }
        }
    }
}

pub fn type_badge(key_type: Option<&str>, public: bool) -> Markup {
    let class = if public {
        "badge type-publishable"
    } else {
        "badge type-secret"
    };
    html! { span class=(class) { (key_type.unwrap_or("secret")) } }
}

/// The token `id` with a copy button (shown only when the script runs).
pub fn token_box(id: &str, token: &str) -> Markup {
    html! {
        div.token {
            code id=(id) { (token) }
            button.copy type="button" data-copy=(id) hidden aria-label="Copy the key to the clipboard" { "Copy" }
        }
    }
}

/// The hidden CSRF field of every form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(csrf); }
}

/// A notice after a redirect (`?notice=`): only known words are shown.
pub fn notice(which: Option<&str>) -> Option<Markup> {
    let text = match which? {
        "updated" => "The key was updated.",
        "revoked" => "The key was revoked. Requests with it are refused from now on.",
        "created_publishable" => "The publishable key was created.",
        "mfa_enabled" => "Two-factor authentication is on. Keys marked MFA now ask for a code for sensitive scopes.",
        "mfa_disabled" => "Two-factor authentication is off.",
        _ => return None,
    };
    Some(html! { p.notice role="status" { (text) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_ages_read_like_words() {
        let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(relative(&t("2026-12-01T12:00:00Z"), &now), "3 days ago");
        assert_eq!(relative(&t("2026-12-04T11:59:50Z"), &now), "just now");
        assert_eq!(relative(&t("2026-12-04T11:59:00Z"), &now), "1 minute ago");
        assert_eq!(relative(&t("2026-12-04T10:00:00Z"), &now), "2 hours ago");
        assert_eq!(relative(&t("2026-12-11T12:00:00Z"), &now), "in 7 days");
        assert_eq!(relative(&t("2025-12-04T12:00:00Z"), &now), "1 year ago");
        assert_eq!(exact(&now), "2026-12-04 12:00:00 UTC");
    }

    #[test]
    fn refusals_are_put_in_words_beside_their_field() {
        let m = "api_keys: exclusive_scope: scope dashboard cannot be combined with other scopes";
        assert_eq!(field_of(m), "scopes");
        assert!(reason_in_words(m).starts_with("This scope must be the only one"));
        assert!(reason_in_words(m).contains("cannot be combined"));
        assert_eq!(field_of("api_keys: name_required: x"), "name");
        assert_eq!(field_of("api_keys: key_limit_reached: x"), "form");
        assert_eq!(field_of("api_keys: mfa_not_enabled: x"), "mfa");
        assert!(reason_in_words("api_keys: mfa_not_enabled: x").starts_with("Turn on two-factor"));
    }

    #[test]
    fn owner_supplied_text_is_escaped() {
        let owner = Owner {
            return_url: Some("https://e.com/?a=\"><script>".to_owned()),
            return_text: Some("<script>alert(1)</script>".to_owned()),
            ..Owner::default()
        };
        let page = layout("t", Some((&owner, "c")), html! {}).into_string();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("\"><script>"));
    }
}
