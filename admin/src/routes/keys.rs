//! `/v1/keys`: issue, list, get, update, revoke.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::doc::{Conflict, NotFound, Protected, WithBody};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::rows::{IssuedKey, KeyInfo};
use crate::state::AppState;

pub const LIST_LIMIT_DEFAULT: i64 = 100;
pub const LIST_LIMIT_MAX: i64 = 1000;

/// The OpenAPI tag of these routes.
pub const TAG: &str = "keys";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue, list))
        .routes(routes!(show, update))
        .routes(routes!(revoke))
}

/// The named arguments of `api_key_issue`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    owner_type: String,
    owner_id: String,
    name: Option<String>,
    /// Absent = the key type's default scopes.
    scopes: Option<Vec<String>>,
    key_type: Option<String>,
    environment: Option<String>,
    /// At most one of `expires_at` and `expires_in`.
    expires_at: Option<DateTime<Utc>>,
    /// An expiration preset (`GET /v1/expiration_presets`).
    expires_in: Option<String>,
    /// Absent = `{}`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The key needs a TOTP code for sensitive scopes; the owner's MFA must
    /// be enabled (0.2.0).
    mfa: Option<bool>,
}

/// Issue a key (`api_key_issue`).
#[utoipa::path(
    post, path = "/v1/keys", tag = TAG, operation_id = "issueKey",
    description = "Needs an admin key with scope `keys:write`.",
    security(("bearer" = ["keys:write"])),
    request_body = IssueRequest,
    responses(
        (status = 201, description = "The issued key, token included (shown once).", body = IssuedKey),
        Protected, WithBody, Conflict,
    )
)]
async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<IssueRequest>,
) -> Result<(StatusCode, axum::Json<IssuedKey>), ApiError> {
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    owner_type: String,
    owner_id: String,
    /// Only keys of this status (`inactive` = expired or revoked).
    #[param(inline, value_type = Option<StatusFilter>)]
    status: Option<String>,
    key_type: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
    /// The `next_before_id` of the previous page.
    before_id: Option<Uuid>,
}

/// The `status` filter of `api_key_list`. Documentation only: the value is
/// passed on as text and the extension refuses any other with 400.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum StatusFilter {
    Active,
    Inactive,
    Expired,
    Revoked,
}

/// A page of keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<KeyInfo>,
    /// Pass as `before_id` for the next page; null on the last page.
    #[schema(required)]
    next_before_id: Option<Uuid>,
}

/// One page in the list order (`created_at DESC, id DESC`) after the key
/// `before_id`, by the extension's keyset pagination; one row more than
/// asked tells whether there is a next page.
const LIST_PAGE: &str = "\
    (SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.created_at DESC, k.id DESC), '[]'::jsonb) \
       FROM api_keys.api_key_list($3::text, $4::text, $5::text, $6::text, $8::integer, $7::uuid) k)";

/// List an owner's keys, newest first (`api_key_list`).
#[utoipa::path(
    get, path = "/v1/keys", tag = TAG, operation_id = "listKeys",
    description = "Needs an admin key with scope `keys:read`.",
    security(("bearer" = ["keys:read"])),
    params(ListQuery),
    responses((status = 200, description = "A page of keys.", body = KeyList), Protected, NotFound)
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let limit = q.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::InvalidArgument(format!(
            "limit must be between 1 and {LIST_LIMIT_MAX}"
        )));
    }
    // at most LIST_LIMIT_MAX + 1: fits an integer
    let fetch = (limit + 1) as i32;
    let mut keys: Vec<KeyInfo> = caller
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
    let more = keys.len() as i64 > limit;
    keys.truncate(limit as usize);
    let next_before_id = keys.last().filter(|_| more).map(|last| last.id);
    Ok(axum::Json(KeyList {
        keys,
        next_before_id,
    }))
}

/// Show a key (`api_key_get`).
#[utoipa::path(
    get, path = "/v1/keys/{id}", tag = TAG, operation_id = "getKey",
    description = "Needs an admin key with scope `keys:read`.",
    security(("bearer" = ["keys:read"])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses((status = 200, description = "The key.", body = KeyInfo), Protected, NotFound)
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<KeyInfo>, ApiError> {
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

/// Absent or null = unchanged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// `""` clears the name.
    name: Option<String>,
    scopes: Option<Vec<String>>,
    /// Replaces the metadata.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The key needs a TOTP code for sensitive scopes; the owner's MFA must
    /// be enabled (0.2.0).
    mfa: Option<bool>,
}

/// Change a key's name, scopes or metadata (`api_key_update`).
#[utoipa::path(
    patch, path = "/v1/keys/{id}", tag = TAG, operation_id = "updateKey",
    description = "Needs an admin key with scope `keys:write`.",
    security(("bearer" = ["keys:write"])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    request_body = UpdateRequest,
    responses((status = 200, description = "The key after the change.", body = KeyInfo), Protected, WithBody, NotFound)
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateRequest>,
) -> Result<axum::Json<KeyInfo>, ApiError> {
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

/// Whether the key was revoked by this call, and the key.
#[derive(Serialize, ToSchema)]
pub struct RevokeResult {
    /// False when the key was already inactive.
    revoked: bool,
    key: KeyInfo,
}

/// Revoke a key (`api_key_revoke`).
#[utoipa::path(
    post, path = "/v1/keys/{id}/revoke", tag = TAG, operation_id = "revokeKey",
    description = "Needs an admin key with scope `keys:write`. 403 `key_not_revocable` for a key that may not be revoked.",
    security(("bearer" = ["keys:write"])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses((status = 200, description = "Whether it was revoked now, and the key.", body = RevokeResult), Protected, NotFound)
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<RevokeResult>, ApiError> {
    let client = state.pool.get().await?;
    let revoked: bool = caller
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
    let key: tokio_postgres::types::Json<KeyInfo> = row
        .try_get(0)
        .map_err(|e| ApiError::Internal(format!("reading the key: {e}")))?;
    Ok(axum::Json(RevokeResult {
        revoked,
        key: key.0,
    }))
}
