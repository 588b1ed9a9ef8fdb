//! The key pages: list, new, create (and publishable), show-once, edit,
//! revoke. Each handler runs one statement: the session check and one SQL
//! function of the extension for the session's owner. A key of another
//! owner is answered as unknown (404), checked in that statement.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use super::error::DashboardError;
use super::form::{given, FormBody};
use super::forms::{self, FieldError, KeyForm};
use super::pages;
use super::session::{cookie, set_cookie, Owner, Session, CSRF_FIELD, NEW_TOKEN_COOKIE};
use super::view::{field_of, reason_in_words, IssuedKey, KeyView, Options};
use crate::error::ApiError;
use crate::state::AppState;

/// The key `$2` if the session's owner owns it, else NULL.
const OWNED_KEY: &str = "(SELECT to_jsonb(k) FROM api_keys.api_key_get($2::uuid) k \
     WHERE k.owner_type = s.owner_type AND k.owner_id = s.owner_id)";

/// Whether the session's owner owns key `$2` (key_not_found if unknown).
const OWNS: &str = "(SELECT k.owner_type = s.owner_type AND k.owner_id = s.owner_id \
     FROM api_keys.api_key_get($2::uuid) k)";

/// The form options of `dashboard_key_options`, with the owner's MFA status
/// (`api_key_mfa_status`: the toggle is offered only when it is enabled).
macro_rules! options_of {
    ($key_type:literal) => {
        concat!(
            "(api_keys.dashboard_key_options(s.owner_type, s.owner_id",
            $key_type,
            ") || jsonb_build_object('mfa_status', api_keys.api_key_mfa_status(s.owner_type, s.owner_id)))"
        )
    };
}

const LIST: &str = concat!(
    "jsonb_build_object(\
     'keys', (SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.created_at DESC, k.id DESC), '[]'::jsonb) \
                FROM api_keys.api_key_list(s.owner_type, s.owner_id) k), \
     'options', ",
    options_of!(""),
    ")"
);

const OPTIONS: &str = options_of!(", $2::text");

const EDIT: &str = concat!(
    "(SELECT jsonb_build_object('key', to_jsonb(k), 'options', ",
    options_of!(", k.key_type"),
    ") \
       FROM api_keys.api_key_get($2::uuid) k \
      WHERE k.owner_type = s.owner_type AND k.owner_id = s.owner_id)"
);

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, DashboardError> {
    serde_json::from_value(v)
        .map_err(|e| DashboardError::Api(ApiError::Internal(format!("dashboard row: {e}"))))
}

/// A key id from the path; anything else is no key of this owner.
fn key_id(raw: &str) -> Result<Uuid, DashboardError> {
    raw.parse().map_err(|_| DashboardError::NotFound)
}

/// The key `id` if the session's owner owns it, else 404.
async fn owned_key(
    state: &AppState,
    session: &Session,
    id: &Uuid,
) -> Result<(Owner, KeyView), DashboardError> {
    let (owner, data) = session.run(state, OWNED_KEY, &[id]).await?;
    if data.is_null() {
        return Err(DashboardError::NotFound);
    }
    Ok((owner, decode(data)?))
}

/// On to the success page of a just-issued key. Show-once: the token rides
/// to that page in a cookie of its path alone, dropped there on first view;
/// the service keeps no copy.
fn show_once(headers: &HeaderMap, issued: &IssuedKey) -> Result<Response, DashboardError> {
    let page = format!("/dashboard/keys/{}/created", issued.id);
    let cookie = set_cookie(headers, NEW_TOKEN_COOKIE, &issued.token, &page, None);
    let mut response = see_other(&page);
    let value = cookie
        .parse()
        .map_err(|_| DashboardError::Api(ApiError::Internal("token cookie".to_owned())))?;
    response.headers_mut().insert(SET_COOKIE, value);
    Ok(response)
}

pub(super) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// A refusal of the SQL API that a form shows beside its field, or the
/// error page for anything else.
pub(super) fn refusal(e: DashboardError) -> Result<(StatusCode, FieldError), DashboardError> {
    match e {
        DashboardError::Api(ApiError::Refused {
            status, message, ..
        }) => Ok((
            status,
            FieldError {
                field: field_of(&message),
                text: reason_in_words(&message),
            },
        )),
        other => Err(other),
    }
}

/// Parses a form body and checks its CSRF token.
pub(super) fn checked_form(session: &Session, body: &Bytes) -> Result<FormBody, DashboardError> {
    let form = FormBody::parse(body);
    session.check_csrf(form.get(CSRF_FIELD))?;
    Ok(form)
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let (owner, data) = session.run(&state, LIST, &[]).await?;
    let keys: Vec<KeyView> = decode(data["keys"].clone())?;
    let options: Options = decode(data["options"].clone())?;
    let q = FormBody::from_query(query.as_deref());
    let page = pages::list(
        &owner,
        &session.csrf_token(),
        &keys,
        &options,
        &Utc::now(),
        q.get("notice"),
    );
    Ok(page.into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let q = FormBody::from_query(query.as_deref());
    let key_type = q.text("key_type");
    let (owner, data) = session.run(&state, OPTIONS, &[&given(&key_type)]).await?;
    let options: Options = decode(data)?;
    let form = KeyForm {
        key_type,
        expires_in: options
            .presets
            .first()
            .map(|p| p.value.clone())
            .unwrap_or_default(),
        environment: options.environments.first().cloned().unwrap_or_default(),
        ..KeyForm::default()
    };
    Ok(forms::new_key(&owner, &session.csrf_token(), &options, &form, None).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let f = checked_form(&session, &body)?;
    let form = KeyForm {
        name: f.text("name"),
        expires_in: f.text("expires_in"),
        key_type: f.text("key_type"),
        environment: f.text("environment"),
        scopes: f.all("scopes"),
        mfa: f.get("mfa").is_some(),
    };
    let issued = session
        .run(
            &state,
            "to_jsonb(api_keys.api_key_issue(s.owner_type, s.owner_id, name => $2::text, \
                 scopes => $3::text[], key_type => $4::text, environment => $5::text, \
                 expires_in => $6::text, mfa => $7::boolean))",
            &[
                &given(&form.name),
                &form.scopes,
                &given(&form.key_type),
                &given(&form.environment),
                &given(&form.expires_in),
                &form.mfa,
            ],
        )
        .await;
    match issued {
        Ok((_, issued)) => show_once(&headers, &decode(issued)?),
        Err(e) => {
            let (status, error) = refusal(e)?;
            let (owner, data) = session
                .run(&state, OPTIONS, &[&given(&form.key_type)])
                .await?;
            let options: Options = decode(data)?;
            let page = forms::new_key(&owner, &session.csrf_token(), &options, &form, Some(&error));
            Ok((status, page).into_response())
        }
    }
}

pub async fn create_publishable(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let f = checked_form(&session, &body)?;
    let key_type = f.text("key_type");
    let environment = f.text("environment");
    // Only a public type: its plaintext stays viewable, so nothing is lost
    // by not showing it once. Its scopes are all it may hold.
    let (_, issued) = session
        .run(
            &state,
            "CASE WHEN api_keys.dashboard_key_options(s.owner_type, s.owner_id)->'key_types' \
                       @> jsonb_build_array(jsonb_build_object('name', $2::text, 'public', true)) \
                  THEN to_jsonb(api_keys.api_key_issue(s.owner_type, s.owner_id, \
                       name => 'Publishable key', \
                       scopes => api_keys.api_key_available_scopes(s.owner_type, $2::text), \
                       key_type => $2::text, environment => $3::text)) END",
            &[&key_type, &given(&environment)],
        )
        .await?;
    if issued.is_null() {
        return Err(DashboardError::Api(ApiError::InvalidArgument(
            "not a publishable key type".to_owned(),
        )));
    }
    Ok(see_other("/dashboard/?notice=created_publishable"))
}

pub async fn created(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let (owner, key) = owned_key(&state, &session, &id).await?;
    let path = format!("/dashboard/keys/{id}/created");
    // The cookie's token is shown only if it is this key's (same masked form).
    let token = cookie(&headers, NEW_TOKEN_COOKIE)
        .filter(|t| api_keys_core::token::mask(t).as_deref() == Some(key.masked_token.as_str()));
    let page = pages::created(&owner, &session.csrf_token(), &key, token, &Utc::now());
    let mut response = page.into_response();
    if cookie(&headers, NEW_TOKEN_COOKIE).is_some() {
        let clear = set_cookie(&headers, NEW_TOKEN_COOKIE, "", &path, Some(0));
        if let Ok(v) = clear.parse() {
            response.headers_mut().insert(SET_COOKIE, v);
        }
    }
    Ok(response)
}

fn edit_form_of(key: &KeyView) -> KeyForm {
    KeyForm {
        name: key.name.clone().unwrap_or_default(),
        scopes: key.scopes.clone(),
        mfa: key.mfa,
        ..KeyForm::default()
    }
}

async fn load_edit(
    state: &AppState,
    session: &Session,
    id: &Uuid,
) -> Result<(Owner, KeyView, Options), DashboardError> {
    let (owner, data) = session.run(state, EDIT, &[id]).await?;
    if data.is_null() {
        return Err(DashboardError::NotFound);
    }
    Ok((
        owner,
        decode(data["key"].clone())?,
        decode(data["options"].clone())?,
    ))
}

pub async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let (owner, key, options) = load_edit(&state, &session, &id).await?;
    let form = edit_form_of(&key);
    Ok(forms::edit_key(&owner, &session.csrf_token(), &key, &options, &form, None).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let f = checked_form(&session, &body)?;
    let name = f.text("name");
    let scopes = f.all("scopes");
    // The toggle's value when the form offered it (`mfa_was` = the flag
    // shown) and it was changed; else NULL: the flag stays as it is.
    let mfa: Option<bool> = f
        .get("mfa_was")
        .map(|was| (was == "true", f.get("mfa").is_some()))
        .and_then(|(was, now)| (was != now).then_some(now));
    let updated = session
        .run(
            &state,
            &format!(
                "CASE WHEN {OWNS} THEN to_jsonb(api_keys.api_key_update($2::uuid, \
                     name => $3::text, scopes => $4::text[], mfa => $5::boolean)) END"
            ),
            &[&id, &name, &scopes, &mfa],
        )
        .await;
    match updated {
        Ok((_, v)) if v.is_null() => Err(DashboardError::NotFound),
        Ok(_) => Ok(see_other("/dashboard/?notice=updated")),
        Err(e) => {
            let (status, error) = refusal(e)?;
            let (owner, key, options) = load_edit(&state, &session, &id).await?;
            let form = KeyForm {
                name,
                scopes,
                mfa: mfa.unwrap_or(key.mfa),
                ..KeyForm::default()
            };
            let page = forms::edit_key(
                &owner,
                &session.csrf_token(),
                &key,
                &options,
                &form,
                Some(&error),
            );
            Ok((status, page).into_response())
        }
    }
}

pub async fn revoke_confirm(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let (owner, key) = owned_key(&state, &session, &id).await?;
    Ok(pages::revoke_confirm(&owner, &session.csrf_token(), &key).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    checked_form(&session, &body)?;
    let (_, revoked) = session
        .run(
            &state,
            &format!("CASE WHEN {OWNS} THEN to_jsonb(api_keys.api_key_revoke($2::uuid)) END"),
            &[&id],
        )
        .await?;
    if revoked.is_null() {
        return Err(DashboardError::NotFound);
    }
    Ok(see_other("/dashboard/?notice=revoked"))
}

pub async fn rotate_confirm(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let (owner, key) = owned_key(&state, &session, &id).await?;
    Ok(pages::rotate_confirm(&owner, &session.csrf_token(), &key).into_response())
}

/// `api_key_rotate`: the replacement's token is shown once, on its own
/// success page, as after creating a key.
pub async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let id = key_id(&id)?;
    let f = checked_form(&session, &body)?;
    // The grace in seconds; its bounds are the extension's (core's) rule.
    let grace: f64 = match f.get("grace_seconds").unwrap_or("0").parse::<u32>() {
        Ok(g) => f64::from(g),
        Err(_) => {
            return Err(DashboardError::Api(ApiError::InvalidArgument(
                "grace_seconds must be a number of seconds".to_owned(),
            )))
        }
    };
    let (_, issued) = session
        .run(
            &state,
            &format!(
                "CASE WHEN {OWNS} THEN to_jsonb(api_keys.api_key_rotate($2::uuid, \
                     pg_catalog.make_interval(secs => $3::pg_catalog.float8))) END"
            ),
            &[&id, &grace],
        )
        .await?;
    if issued.is_null() {
        return Err(DashboardError::NotFound);
    }
    let issued: IssuedKey = decode(issued)?;
    show_once(&headers, &issued)
}
