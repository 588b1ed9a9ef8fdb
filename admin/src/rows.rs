//! The extension's composite types as the service answers them: each
//! handler reads its SQL function's `to_jsonb(…)` straight into one of these
//! and serialises it back, so `/openapi.json` (derived from these types) is
//! what the client gets, field for field. A column the extension adds is
//! not answered until it is added here.
//!
//! Timestamps stay the strings PostgreSQL wrote (RFC 3339 with offset).
//! No type here derives `Debug` where it holds a token.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// `api_keys.key_info`: a key without its secret.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: Uuid,
    pub owner_type: String,
    pub owner_id: String,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub key_type: Option<String>,
    #[schema(required)]
    pub environment: Option<String>,
    pub masked_token: String,
    /// Plaintext, for keys of a public type only.
    #[schema(required)]
    pub viewable_token: Option<String>,
    pub scopes: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[schema(inline)]
    pub status: KeyStatus,
    pub revocable: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<String>,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<String>,
    pub requests_count: i64,
    /// Verify asks for an OTP when a sensitive scope is required (0.2.0).
    pub mfa: bool,
    /// The key a rotation issued for this one (0.2.0).
    #[schema(required)]
    pub replaced_by: Option<Uuid>,
    /// Imported from a digest by `api_key_import` (0.2.0).
    pub imported: bool,
}

/// The status of a key, as `key_info` reports it.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// `api_keys.issued_key`: the only time the token is shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    /// The plaintext token: shown once, never stored.
    pub token: String,
    pub masked_token: String,
    pub owner_type: String,
    pub owner_id: String,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub key_type: Option<String>,
    #[schema(required)]
    pub environment: Option<String>,
    pub scopes: Vec<String>,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// `api_keys.verification`. Identity columns are null unless `code` is
/// `valid`, `insufficient_scope`, `otp_required` or `otp_invalid`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub valid: bool,
    /// `malformed`, `not_found`, `revoked`, `expired`,
    /// `environment_mismatch`, `insufficient_scope`, `otp_required`,
    /// `otp_invalid`, `valid`, or a code a later version adds.
    pub code: String,
    #[schema(required)]
    pub key_id: Option<Uuid>,
    #[schema(required)]
    pub owner_type: Option<String>,
    #[schema(required)]
    pub owner_id: Option<String>,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub key_type: Option<String>,
    #[schema(required)]
    pub environment: Option<String>,
    #[schema(required)]
    pub scopes: Option<Vec<String>>,
    #[schema(required, value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
}

/// One row of `api_key_expiration_presets()`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ExpirationPreset {
    /// What `expires_in` accepts.
    pub value: String,
    pub label: String,
}
