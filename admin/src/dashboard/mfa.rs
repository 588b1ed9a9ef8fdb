//! The MFA page (SPEC §9, 0.2.0): the session owner's TOTP enrollment.
//! Status from `api_key_mfa_status`; Set up → `api_key_mfa_enroll`, whose
//! secret is shown once on the answer page (QR code as inline SVG, the
//! secret as text) with a confirm field → `api_key_mfa_confirm`; Turn off
//! (with confirmation) → `api_key_mfa_disable`. Each handler runs one
//! statement; the rules (code window, replay, lockout, "already enabled")
//! are the extension's. The secret is never logged; the pages are
//! `no-store` like every dashboard page.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;

use super::error::DashboardError;
use super::form::FormBody;
use super::forms::FieldError;
use super::keys::{checked_form, refusal, see_other};
use super::session::{Owner, Session};
use super::view::{csrf_field, layout, notice};
use crate::error::ApiError;
use crate::state::AppState;

const STATUS: &str = "to_jsonb(api_keys.api_key_mfa_status(s.owner_type, s.owner_id))";
const ENROLL: &str =
    "(SELECT to_jsonb(e) FROM api_keys.api_key_mfa_enroll(s.owner_type, s.owner_id) e)";
const CONFIRM: &str = "to_jsonb(api_keys.api_key_mfa_confirm(s.owner_type, s.owner_id, $2::text))";
const DISABLE: &str = "to_jsonb(api_keys.api_key_mfa_disable(s.owner_type, s.owner_id))";

/// The longest secret / URI taken back from the confirm form for showing
/// the page again (ours are 32 and ~100 characters).
const MAX_SECRET: usize = 128;
const MAX_URI: usize = 1024;

/// A pending enrollment as `api_key_mfa_enroll` answers it. No `Debug`:
/// it holds the secret.
#[derive(Deserialize)]
pub struct Enrollment {
    secret: String,
    otpauth_uri: String,
}

fn status_of(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("none")
}

/// `otpauth_uri` as a QR code: inline SVG markup (no image URL, so the CSP
/// `default-src 'self'` holds). The URI becomes modules, not text, so
/// nothing in it reaches the markup.
pub fn qr_svg(uri: &str) -> Option<Markup> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    let body = image.split_once("<svg")?.1;
    let body = body.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    Some(PreEscaped(format!(
        r#"<svg class="qr" role="img" aria-label="QR code of the MFA secret"{body}"#
    )))
}

fn status_badge(status: &str) -> Markup {
    let (class, label) = match status {
        "enabled" => ("badge status-active", "On"),
        "pending" => ("badge status-expired", "Set up not finished"),
        _ => ("badge", "Off"),
    };
    html! { span.mfa-status class=(class) data-status=(status) { (label) } }
}

/// The status page: what MFA does, its state, Set up / Turn off.
pub fn status_page(
    owner: &Owner,
    csrf: &str,
    status: &str,
    notice_word: Option<&str>,
    error: Option<&str>,
) -> Markup {
    layout(
        "Two-factor authentication",
        Some((owner, csrf)),
        html! {
            h1 { "Two-factor authentication" }
            @if let Some(n) = notice(notice_word) { (n) }
            @if let Some(e) = error { p.field-error role="alert" { (e) } }
            p { "Status: " (status_badge(status)) }
            p.muted { "With two-factor authentication (MFA) on, a key marked MFA needs a one-time code from your authenticator app whenever a request uses a sensitive scope." }
            @match status {
                "enabled" => {
                    a.button.danger href="/dashboard/mfa/disable" { "Turn off MFA…" }
                }
                _ => {
                    @if status == "pending" {
                        p { "Setup was started but not confirmed. Start again to get a new QR code (the old one stops working)." }
                    }
                    form method="post" action="/dashboard/mfa" {
                        (csrf_field(csrf))
                        button.primary type="submit" { @if status == "pending" { "Start again" } @else { "Set up MFA" } }
                    }
                }
            }
            p { a href="/dashboard/" { "Back to your keys" } }
        },
    )
}

/// The enrollment page: QR code, the secret in text, the confirm field.
pub fn enroll_page(
    owner: &Owner,
    csrf: &str,
    enrollment: &Enrollment,
    error: Option<&FieldError>,
) -> Markup {
    let otp_error = error.map(|e| e.text.clone());
    layout(
        "Set up two-factor authentication",
        Some((owner, csrf)),
        html! {
            h1 { "Set up two-factor authentication" }
            p.warning role="alert" { "This code is shown only now. Scan it before you leave this page." }
            div.mfa-setup {
                figure.qr {
                    @match qr_svg(&enrollment.otpauth_uri) {
                        Some(svg) => (svg),
                        None => p.muted { "No QR code for this secret: enter it by hand." }
                    }
                    figcaption.muted { "Scan with your authenticator app." }
                }
                div {
                    p { "Or enter this secret by hand (time-based, 6 digits, 30 seconds):" }
                    p { code.secret id="mfa-secret" { (enrollment.secret) } }
                    form.key-form method="post" action="/dashboard/mfa/confirm" novalidate {
                        (csrf_field(csrf))
                        input type="hidden" name="secret" value=(enrollment.secret);
                        input type="hidden" name="otpauth_uri" value=(enrollment.otpauth_uri);
                        div.field {
                            label for="otp" { "The 6-digit code your app shows now" }
                            input type="text" id="otp" name="otp" inputmode="numeric" pattern="[0-9]{6}"
                                maxlength="6" autocomplete="one-time-code"
                                aria-describedby=[otp_error.as_ref().map(|_| "otp-error")];
                            @if let Some(t) = &otp_error { p.field-error id="otp-error" role="alert" { (t) } }
                        }
                        div.buttons {
                            button.primary type="submit" { "Turn on MFA" }
                            a.button href="/dashboard/mfa" { "Cancel" }
                        }
                    }
                }
            }
        },
    )
}

pub fn disable_confirm(owner: &Owner, csrf: &str, status: &str) -> Markup {
    layout(
        "Turn off two-factor authentication",
        Some((owner, csrf)),
        html! {
            h1 { "Turn off two-factor authentication?" }
            @if status == "none" {
                p { "Two-factor authentication is not set up." }
                p { a.button href="/dashboard/mfa" { "Back" } }
            } @else {
                p { "Keys marked MFA keep their mark: requests that use a sensitive scope are refused until you set up MFA again (fail closed)." }
                form method="post" action="/dashboard/mfa/disable" {
                    (csrf_field(csrf))
                    button.danger type="submit" { "Turn off MFA" }
                    " "
                    a.button href="/dashboard/mfa" { "Cancel" }
                }
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let (owner, status) = session.run(&state, STATUS, &[]).await?;
    let q = FormBody::from_query(query.as_deref());
    let page = status_page(
        &owner,
        &session.csrf_token(),
        status_of(&status),
        q.get("notice"),
        None,
    );
    Ok(page.into_response())
}

/// Set up (or start again): a new pending secret, shown on this answer.
pub async fn enroll(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    checked_form(&session, &body)?;
    match session.run(&state, ENROLL, &[]).await {
        Ok((owner, v)) => {
            let enrollment: Enrollment = serde_json::from_value(v).map_err(|_| {
                DashboardError::Api(ApiError::Internal("mfa enrollment row".to_owned()))
            })?;
            Ok(enroll_page(&owner, &session.csrf_token(), &enrollment, None).into_response())
        }
        Err(e) => {
            let (status, error) = refusal(e)?;
            let (owner, s) = session.run(&state, STATUS, &[]).await?;
            let page = status_page(
                &owner,
                &session.csrf_token(),
                status_of(&s),
                None,
                Some(&error.text),
            );
            Ok((status, page).into_response())
        }
    }
}

/// The secret and URI the confirm form carries back, for showing the page
/// again after a wrong code; they are only displayed (the code is checked
/// against the stored secret), and only what has their shape is taken.
fn shown_again(f: &FormBody) -> Option<Enrollment> {
    let secret = f.get("secret")?;
    let uri = f.get("otpauth_uri")?;
    let secret_ok = !secret.is_empty()
        && secret.len() <= MAX_SECRET
        && api_keys_core::mfa::base32_decode(secret).is_some();
    let uri_ok = uri.len() <= MAX_URI && uri.starts_with("otpauth://totp/");
    (secret_ok && uri_ok).then(|| Enrollment {
        secret: secret.to_owned(),
        otpauth_uri: uri.to_owned(),
    })
}

pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let f = checked_form(&session, &body)?;
    let otp = f.text("otp");
    let refused = match session.run(&state, CONFIRM, &[&otp]).await {
        Ok((_, v)) if v.as_bool() == Some(true) => {
            return Ok(see_other("/dashboard/mfa?notice=mfa_enabled"))
        }
        Ok(_) => (
            StatusCode::BAD_REQUEST,
            "This code is not right (or was already used). Check your device's clock and enter the code your app shows now.".to_owned(),
        ),
        Err(e) => {
            let (status, error) = refusal(e)?;
            (status, error.text)
        }
    };
    let (status, text) = refused;
    let (owner, s) = session.run(&state, STATUS, &[]).await?;
    let csrf = session.csrf_token();
    let page = match shown_again(&f) {
        Some(enrollment) if status_of(&s) == "pending" => enroll_page(
            &owner,
            &csrf,
            &enrollment,
            Some(&FieldError { field: "otp", text }),
        ),
        _ => status_page(&owner, &csrf, status_of(&s), None, Some(&text)),
    };
    Ok((status, page).into_response())
}

pub async fn disable_form(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, DashboardError> {
    let (owner, status) = session.run(&state, STATUS, &[]).await?;
    Ok(disable_confirm(&owner, &session.csrf_token(), status_of(&status)).into_response())
}

pub async fn disable(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    checked_form(&session, &body)?;
    session.run(&state, DISABLE, &[]).await?;
    Ok(see_other("/dashboard/mfa?notice=mfa_disabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg_without_outside_references() {
        let svg =
            qr_svg("otpauth://totp/api_keys:user%2F1?secret=JBSWY3DPEHPK3PXP&issuer=api_keys")
                .unwrap()
                .into_string();
        assert!(svg.starts_with("<svg class=\"qr\""), "{svg}");
        assert!(svg.ends_with("</svg>"));
        for outside in ["http", "<?xml", "style=", "href", "<script"] {
            assert!(!svg.contains(outside), "{outside} in {svg}");
        }
        assert!(!svg.contains("JBSW"), "the secret is in modules, not text");
    }

    #[test]
    fn only_a_secret_and_uri_of_their_shape_are_shown_again() {
        let ok = FormBody::parse(b"secret=JBSWY3DPEHPK3PXP&otpauth_uri=otpauth%3A%2F%2Ftotp%2Fx");
        assert!(shown_again(&ok).is_some());
        for bad in [
            &b"secret=JBSWY3DPEHPK3PXP&otpauth_uri=javascript%3Aalert(1)"[..],
            b"secret=not+base32!&otpauth_uri=otpauth%3A%2F%2Ftotp%2Fx",
            b"secret=&otpauth_uri=otpauth%3A%2F%2Ftotp%2Fx",
            b"otpauth_uri=otpauth%3A%2F%2Ftotp%2Fx",
        ] {
            assert!(shown_again(&FormBody::parse(bad)).is_none());
        }
    }
}
