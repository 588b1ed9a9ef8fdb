//! `/v1/keys`: issue, list, get, update, revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub const LIST_LIMIT_DEFAULT: i64 = 100;
pub const LIST_LIMIT_MAX: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(issue).get(list))
        .route("/v1/keys/{id}", get(show).patch(update))
        .route("/v1/keys/{id}/revoke", post(revoke))
}

/// The named arguments of `api_key_issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    owner_type: String,
    owner_id: String,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    key_type: Option<String>,
    environment: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    expires_in: Option<String>,
    metadata: Option<Value>,
    mfa: Option<bool>,
}

async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<IssueRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    // An absent metadata is the function's default, the empty object.
    let metadata = req.metadata.unwrap_or_else(|| json!({}));
    let issued = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_issue(owner_type => $3::text, owner_id => $4::text, \
                 name => $5::text, scopes => $6::text[], key_type => $7::text, \
                 environment => $8::text, expires_at => $9::timestamptz, \
                 expires_in => $10::text, metadata => $11::jsonb, \
                 mfa => coalesce($12::boolean, false)))",
            &[
                &req.owner_type,
                &req.owner_id,
                &req.name,
                &req.scopes,
                &req.key_type,
                &req.environment,
                &req.expires_at,
                &req.expires_in,
                &metadata,
                &req.mfa,
            ],
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(issued)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    owner_type: String,
    owner_id: String,
    status: Option<String>,
    key_type: Option<String>,
    limit: Option<i64>,
    before_id: Option<Uuid>,
}

/// One page in the list order (`created_at DESC, id DESC`) after the key
/// `before_id`, by the extension's keyset pagination; one row more than
/// asked tells whether there is a next page.
const LIST_PAGE: &str = "\
    (SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.created_at DESC, k.id DESC), '[]'::jsonb) \
       FROM api_keys.api_key_list($3::text, $4::text, $5::text, $6::text, $8::integer, $7::uuid) k)";

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::InvalidArgument(format!(
            "limit must be between 1 and {LIST_LIMIT_MAX}"
        )));
    }
    // at most LIST_LIMIT_MAX + 1: fits an integer
    let fetch = (limit + 1) as i32;
    let page = caller
        .run(
            &state,
            Scope::Read,
            LIST_PAGE,
            &[
                &q.owner_type,
                &q.owner_id,
                &q.status,
                &q.key_type,
                &q.before_id,
                &fetch,
            ],
        )
        .await?;
    let mut keys = match page {
        Value::Array(keys) => keys,
        other => return Err(ApiError::Internal(format!("list returned {other}"))),
    };
    let more = keys.len() as i64 > limit;
    keys.truncate(limit as usize);
    let next_before_id = match keys.last() {
        Some(last) if more => last.get("id").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Ok(axum::Json(
        json!({"keys": keys, "next_before_id": next_before_id}),
    ))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>, ApiError> {
    let info = caller
        .run(
            &state,
            Scope::Read,
            "to_jsonb(api_keys.api_key_get($3::uuid))",
            &[&id],
        )
        .await?;
    Ok(axum::Json(info))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    metadata: Option<Value>,
    mfa: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let info = caller
        .run(
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_update($3::uuid, $4::text, $5::text[], $6::jsonb, $7::boolean))",
            &[&id, &req.name, &req.scopes, &req.metadata, &req.mfa],
        )
        .await?;
    Ok(axum::Json(info))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>, ApiError> {
    let client = state.pool.get().await?;
    let revoked = caller
        .run_on(
            &client,
            &state,
            Scope::Write,
            "to_jsonb(api_keys.api_key_revoke($3::uuid))",
            &[&id],
        )
        .await?;
    // A second statement: api_key_get is STABLE and would not see a
    // revocation made earlier in the same statement.
    let row = client
        .query_one("SELECT to_jsonb(api_keys.api_key_get($1::uuid))", &[&id])
        .await?;
    let key: Value = row.try_get(0)?;
    Ok(axum::Json(json!({"revoked": revoked, "key": key})))
}
