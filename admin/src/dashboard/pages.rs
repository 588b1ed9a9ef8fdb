//! The keys list, the show-once page and the confirmations.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::session::Owner;
use super::view::{
    csrf_field, display_name, environment_badge, is_active, layout, mfa_badge, notice,
    status_badge, time, token_box, type_badge, KeyStatus, KeyView, Options,
};

fn scopes_cell(scopes: &[String]) -> Markup {
    html! {
        @if scopes.is_empty() { span.muted { "none" } }
        @else { ul.scopes { @for s in scopes { li { code { (s) } } } } }
    }
}

fn key_table(caption: &str, keys: &[&KeyView], options: &Options, now: &DateTime<Utc>) -> Markup {
    html! {
        div.table-scroll {
            table.keys {
                caption.sr-only { (caption) }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Scopes" }
                    th scope="col" { "Type" } th scope="col" { "Environment" } th scope="col" { "Status" }
                    th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Requests" }
                    th scope="col" { "Expires" } th scope="col" { span.sr-only { "Actions" } }
                } }
                tbody {
                    @for k in keys {
                        tr data-key-id=(k.id) {
                            td data-label="Name" { strong.key-name { (display_name(k)) } (mfa_badge(k)) }
                            td data-label="Key" { code.masked { (k.masked_token) } }
                            td data-label="Scopes" { (scopes_cell(&k.scopes)) }
                            td data-label="Type" { (type_badge(k.key_type.as_deref(), options.is_public(k.key_type.as_deref()))) }
                            td data-label="Environment" { (environment_badge(k.environment.as_deref())) }
                            td data-label="Status" { (status_badge(k.status)) }
                            td data-label="Created" { (time(&k.created_at, now)) }
                            td data-label="Last used" {
                                @match &k.last_used_at { Some(t) => (time(t, now)), None => span.muted { "never" } }
                            }
                            td data-label="Requests" { (k.requests_count) }
                            td data-label="Expires" {
                                @match (&k.revoked_at, &k.expires_at) {
                                    (Some(t), _) => span { "revoked " (time(t, now)) }
                                    (None, Some(t)) => (time(t, now)),
                                    (None, None) => span.muted { "never" }
                                }
                            }
                            td.actions {
                                a.button.small href={ "/dashboard/keys/" (k.id) "/edit" } aria-label={ "Edit " (display_name(k)) } { "Edit" }
                                @if k.revocable && is_active(k) {
                                    a.button.small href={ "/dashboard/keys/" (k.id) "/rotate" } aria-label={ "Rotate " (display_name(k)) } { "Rotate" }
                                    a.button.small.danger href={ "/dashboard/keys/" (k.id) "/revoke" } aria-label={ "Revoke " (display_name(k)) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn list(
    owner: &Owner,
    csrf: &str,
    keys: &[KeyView],
    options: &Options,
    now: &DateTime<Utc>,
    notice_word: Option<&str>,
) -> Markup {
    let public_types: Vec<_> = options.key_types.iter().filter(|t| t.public).collect();
    let is_public = |k: &&KeyView| options.is_public(k.key_type.as_deref());
    let publishable: Vec<&KeyView> = keys
        .iter()
        .filter(|k| is_public(k) && is_active(k))
        .collect();
    let secret: Vec<&KeyView> = keys
        .iter()
        .filter(|k| !is_public(k) && is_active(k))
        .collect();
    let inactive: Vec<&KeyView> = keys.iter().filter(|k| !is_active(k)).collect();
    let any_revocable = keys.iter().any(|k| k.revocable && is_active(k));
    layout(
        "Your API keys",
        Some((owner, csrf)),
        html! {
            h1 { "Your API keys" }
            @if let Some(n) = notice(notice_word) { (n) }
            @if !public_types.is_empty() {
                section aria-labelledby="publishable-heading" {
                    h2 id="publishable-heading" { "Publishable keys" }
                    p.muted { "Publishable keys identify your account in code that runs in a browser or an app. They can be shown again at any time." }
                    @if publishable.is_empty() { p.empty { "No publishable keys yet." } }
                    @else {
                        ul.publishable {
                            @for k in &publishable {
                                li data-key-id=(k.id) {
                                    div.row {
                                        strong.key-name { (display_name(k)) }
                                        (type_badge(k.key_type.as_deref(), true))
                                        (environment_badge(k.environment.as_deref()))
                                        span.muted { "created " (time(&k.created_at, now)) }
                                    }
                                    code.masked { (k.masked_token) }
                                    @if let Some(token) = &k.viewable_token {
                                        details.show {
                                            summary { "Show" span.sr-only { " the full key " (display_name(k)) } }
                                            (token_box(&format!("token-{}", k.id), token))
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @for t in &public_types {
                        @if !t.issuable_in.is_empty() {
                            form.inline-form method="post" action="/dashboard/keys/publishable" {
                                (csrf_field(csrf))
                                input type="hidden" name="key_type" value=(t.name);
                                @if !options.environments.is_empty() {
                                    label for={ "pk-env-" (t.name) } { "Environment" }
                                    select id={ "pk-env-" (t.name) } name="environment" {
                                        @for e in t.issuable_in.iter().flatten() { option value=(e) { (e) } }
                                    }
                                }
                                button.primary type="submit" { "Create publishable key" }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="secret-heading" {
                div.section-head {
                    h2 id="secret-heading" { "Secret keys" }
                    a.button.primary href="/dashboard/keys/new" { "New secret key" }
                }
                p.muted { "Secret keys are shown once, when they are created. Keep them on your servers." }
                @if secret.is_empty() { p.empty { "No active secret keys." } }
                @else { (key_table("Active secret keys", &secret, options, now)) }
            }
            @if !inactive.is_empty() {
                section aria-labelledby="inactive-heading" {
                    h2 id="inactive-heading" { "Inactive keys" }
                    p.muted { "Revoked and expired keys no longer work." }
                    (key_table("Inactive keys", &inactive, options, now))
                }
            }
            @if any_revocable {
                section.danger-zone aria-labelledby="reset-heading" {
                    h2 id="reset-heading" { "Reset" }
                    p { "Revoke every key that can be revoked, at once — for example after a leak." }
                    a.button.danger href="/dashboard/reset" { "Reset all keys…" }
                }
            }
        },
    )
}

/// The show-once page: the token when it is in the request's show-once
/// cookie, else "Token already shown".
pub fn created(
    owner: &Owner,
    csrf: &str,
    key: &KeyView,
    token: Option<&str>,
    now: &DateTime<Utc>,
) -> Markup {
    layout(
        "New key",
        Some((owner, csrf)),
        html! {
            @match token {
                Some(token) => {
                    h1 { "Your new key" }
                    p.warning role="alert" { "Copy this key now and keep it somewhere safe. It will not be shown again." }
                    (token_box("new-token", token))
                }
                None => {
                    h1 { "Token already shown" }
                    p { "The full key was shown once, when it was created, and cannot be shown again. If you lost it, revoke it and create a new one." }
                    p { code.masked { (key.masked_token) } }
                }
            }
            dl.facts {
                dt { "Name" } dd.key-name { (display_name(key)) }
                dt { "Scopes" } dd { (scopes_cell(&key.scopes)) }
                dt { "Environment" } dd { (environment_badge(key.environment.as_deref())) }
                dt { "Expires" } dd { @match &key.expires_at { Some(t) => (time(t, now)), None => "never" } }
            }
            a.button.primary href="/dashboard/" { "Back to your keys" }
        },
    )
}

pub fn revoke_confirm(owner: &Owner, csrf: &str, key: &KeyView) -> Markup {
    layout(
        "Revoke key",
        Some((owner, csrf)),
        html! {
            h1 { "Revoke “" span.key-name { (display_name(key)) } "”?" }
            p { code.masked { (key.masked_token) } }
            @if !key.revocable {
                p { "This key cannot be revoked." }
            } @else if key.status == KeyStatus::Revoked {
                p { "This key is already revoked." }
            } @else if key.status == KeyStatus::Expired {
                p { "This key has expired." }
            } @else {
                p { "Requests with this key are refused as soon as you revoke it. This cannot be undone." }
                form method="post" action={ "/dashboard/keys/" (key.id) "/revoke" } {
                    (csrf_field(csrf))
                    button.danger type="submit" { "Revoke key" }
                    " "
                    a.button href="/dashboard/" { "Cancel" }
                }
            }
        },
    )
}

pub fn reset_confirm(owner: &Owner, csrf: &str) -> Markup {
    layout(
        "Reset",
        Some((owner, csrf)),
        html! {
            h1 { "Reset: revoke all keys?" }
            p { "Every active key that can be revoked is revoked at once, and you are signed out of this dashboard. Keys that cannot be revoked (publishable keys) keep working. This cannot be undone." }
            form method="post" action="/dashboard/reset" {
                (csrf_field(csrf))
                button.danger type="submit" { "Revoke all keys" }
                " "
                a.button href="/dashboard/" { "Cancel" }
            }
        },
    )
}

/// A page after the session ended (logout, reset): the return link only.
pub fn signed_out(owner: &Owner, title: &str, text: &str) -> Markup {
    layout(
        title,
        None,
        html! {
            h1 { (title) }
            p role="status" { (text) }
            @if let Some(url) = &owner.return_url {
                p { a.button.primary href=(url) { (owner.return_text.as_deref().unwrap_or("Back")) } }
            }
        },
    )
}

/// After a link was exchanged: on to the keys (the handler adds a
/// `Refresh` header). A page, not a redirect, so the SameSite=Strict cookie
/// is sent with the next request (a redirect would still count as the
/// cross-site navigation that brought the link).
pub fn entered() -> Markup {
    layout(
        "Signing in",
        None,
        html! {
            h1 { "Signed in" }
            p { a.button.primary href="/dashboard/" { "Continue to your API keys" } }
        },
    )
}

/// Grace periods offered for the old key of a rotation (seconds, label).
pub const ROTATE_GRACE: [(u32, &str); 4] = [
    (0, "Revoke the old key now"),
    (3600, "Keep the old key working for 1 hour"),
    (86_400, "Keep the old key working for 24 hours"),
    (604_800, "Keep the old key working for 7 days"),
];

pub fn rotate_confirm(owner: &Owner, csrf: &str, key: &KeyView) -> Markup {
    layout(
        "Rotate key",
        Some((owner, csrf)),
        html! {
            h1 { "Rotate “" span.key-name { (display_name(key)) } "”?" }
            p { code.masked { (key.masked_token) } }
            @if !key.revocable {
                p { "This key cannot be rotated: it cannot be revoked." }
            } @else if !is_active(key) {
                p { "Only an active key can be rotated." }
            } @else {
                p { "A new key with the same name, scopes, type and environment replaces this one. Its token is shown once." }
                form method="post" action={ "/dashboard/keys/" (key.id) "/rotate" } {
                    (csrf_field(csrf))
                    div.field {
                        label for="grace_seconds" { "The old key" }
                        select id="grace_seconds" name="grace_seconds" {
                            @for (secs, label) in ROTATE_GRACE { option value=(secs) { (label) } }
                        }
                    }
                    div.buttons {
                        button.primary type="submit" { "Rotate key" }
                        a.button href="/dashboard/" { "Cancel" }
                    }
                }
            }
        },
    )
}
