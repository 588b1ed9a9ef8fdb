//! The new-key and edit forms. A refused form comes back with the input
//! kept and the reason in words beside its field.

use maud::{html, Markup};

use super::session::Owner;
use super::view::{csrf_field, display_name, layout, KeyView, Options};

/// What a key form holds (as sent, or as the key is).
#[derive(Debug, Clone, Default)]
pub struct KeyForm {
    pub name: String,
    pub expires_in: String,
    pub key_type: String,
    pub environment: String,
    pub scopes: Vec<String>,
    /// The MFA toggle (sensitive scopes need a one-time code).
    pub mfa: bool,
}

/// A refusal and the field it belongs beside (`form` = the whole form).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: &'static str,
    pub text: String,
}

fn error_for(error: Option<&FieldError>, field: &str) -> Option<String> {
    error.filter(|e| e.field == field).map(|e| e.text.clone())
}

fn field_error(id: &str, text: Option<String>) -> Markup {
    html! { @if let Some(t) = text { p.field-error id={ (id) "-error" } role="alert" { (t) } } }
}

fn scope_checkboxes(
    options: &Options,
    offered: &[String],
    checked: &[String],
    error: Option<String>,
) -> Markup {
    html! {
        fieldset.scopes aria-describedby=[error.as_ref().map(|_| "scopes-error")] {
            legend { "Scopes" }
            @if offered.is_empty() {
                p.muted { "Keys of this kind carry no scopes." }
            }
            @for (i, s) in offered.iter().enumerate() {
                div.check {
                    input type="checkbox" id={ "scope-" (i) } name="scopes" value=(s) checked[checked.contains(s)];
                    label for={ "scope-" (i) } {
                        code { (s) }
                        @if let Some(d) = options.scope_descriptions.get(s) {
                            span.muted { " — " (d) }
                        }
                    }
                }
            }
            (field_error("scopes", error))
        }
    }
}

/// The MFA toggle, beside its refusal. `was` (edit) = the flag as the
/// page shows it: the handler sends a value only when it changed.
fn mfa_toggle(checked: bool, was: Option<bool>, error: Option<String>) -> Markup {
    html! {
        div.field.check.mfa-toggle {
            @if let Some(was) = was { input type="hidden" name="mfa_was" value=(was); }
            input type="checkbox" id="mfa" name="mfa" value="on" checked[checked]
                aria-describedby={ "mfa-hint" @if error.is_some() { " mfa-error" } };
            label for="mfa" { "Require a one-time code (MFA) for sensitive scopes" }
        }
        p.muted id="mfa-hint" { "Requests that use a sensitive scope must then also send a code from your authenticator app." }
        (field_error("mfa", error))
    }
}

pub fn new_key(
    owner: &Owner,
    csrf: &str,
    options: &Options,
    form: &KeyForm,
    error: Option<&FieldError>,
) -> Markup {
    let secret_types: Vec<_> = options.key_types.iter().filter(|t| !t.public).collect();
    let name_error = error_for(error, "name");
    let expiry_error = error_for(error, "expires_in");
    let env_error = error_for(error, "environment");
    let type_error = error_for(error, "key_type");
    let mfa_error = error_for(error, "mfa");
    layout(
        "New secret key",
        Some((owner, csrf)),
        html! {
            h1 { "New secret key" }
            @if !secret_types.is_empty() {
                form.type-picker method="get" action="/dashboard/keys/new" {
                    label for="key_type" { "Key type" }
                    select id="key_type" name="key_type" {
                        option value="" selected[form.key_type.is_empty()] { "Default" }
                        @for t in &secret_types {
                            option value=(t.name) selected[form.key_type == t.name] { (t.name) }
                        }
                    }
                    button type="submit" { "Show its scopes" }
                    (field_error("key_type", type_error))
                }
            }
            form.key-form method="post" action="/dashboard/keys" novalidate {
                (csrf_field(csrf))
                input type="hidden" name="key_type" value=(form.key_type);
                (field_error("form", error_for(error, "form")))
                div.field {
                    label for="name" { "Name" }
                    input type="text" id="name" name="name" value=(form.name) maxlength="255"
                        autocomplete="off" aria-describedby=[name_error.as_ref().map(|_| "name-error")];
                    (field_error("name", name_error))
                }
                div.field {
                    label for="expires_in" { "Expiration" }
                    select id="expires_in" name="expires_in" {
                        @for p in &options.presets {
                            option value=(p.value) selected[form.expires_in == p.value] { (p.label) }
                        }
                    }
                    (field_error("expires_in", expiry_error))
                }
                @if !options.environments.is_empty() {
                    div.field {
                        label for="environment" { "Environment" }
                        select id="environment" name="environment" {
                            @for e in &options.environments {
                                option value=(e) selected[&form.environment == e] { (e) }
                            }
                        }
                        (field_error("environment", env_error))
                    }
                }
                (scope_checkboxes(options, &options.available_scopes, &form.scopes, error_for(error, "scopes")))
                @if options.mfa_enabled() || mfa_error.is_some() {
                    (mfa_toggle(form.mfa, None, mfa_error))
                }
                div.buttons {
                    button.primary type="submit" { "Create key" }
                    a.button href="/dashboard/" { "Cancel" }
                }
            }
        },
    )
}

pub fn edit_key(
    owner: &Owner,
    csrf: &str,
    key: &KeyView,
    options: &Options,
    form: &KeyForm,
    error: Option<&FieldError>,
) -> Markup {
    // What the key holds stays offered, even if no longer available to new keys.
    let mut offered = options.available_scopes.clone();
    for s in &key.scopes {
        if !offered.contains(s) {
            offered.push(s.clone());
        }
    }
    let name_error = error_for(error, "name");
    let mfa_error = error_for(error, "mfa");
    layout(
        "Edit key",
        Some((owner, csrf)),
        html! {
            h1 { "Edit “" span.key-name { (display_name(key)) } "”" }
            p { code.masked { (key.masked_token) } }
            form.key-form method="post" action={ "/dashboard/keys/" (key.id) } novalidate {
                (csrf_field(csrf))
                (field_error("form", error_for(error, "form")))
                div.field {
                    label for="name" { "Name" }
                    input type="text" id="name" name="name" value=(form.name) maxlength="255"
                        autocomplete="off" aria-describedby=[name_error.as_ref().map(|_| "name-error")];
                    (field_error("name", name_error))
                }
                (scope_checkboxes(options, &offered, &form.scopes, error_for(error, "scopes")))
                // Offered when the owner's MFA is on, and always to turn a
                // key's flag off.
                @if options.mfa_enabled() || key.mfa || mfa_error.is_some() {
                    (mfa_toggle(form.mfa, Some(key.mfa), mfa_error))
                }
                @if key.mfa && !options.mfa_enabled() {
                    p.warning { "Two-factor authentication is off for your account: requests with this key that use a sensitive scope are refused until you " a href="/dashboard/mfa" { "set it up again" } "." }
                }
                div.buttons {
                    button.primary type="submit" { "Save" }
                    a.button href="/dashboard/" { "Cancel" }
                }
            }
        },
    )
}
