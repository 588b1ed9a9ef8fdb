//! Thin wrappers over the SQL API of SPEC §5 and the composite types it returns.

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::{GenericClient, Row};
use serde_json::Value;
use uuid::Uuid;

use crate::errors::describe;

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A row of `api_keys.issued_key`.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub id: Uuid,
    pub token: String,
    pub masked_token: String,
    pub owner_type: String,
    pub owner_id: String,
    pub name: Option<String>,
    pub key_type: Option<String>,
    pub environment: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl IssuedKey {
    pub fn from_row(row: &Row) -> Self {
        IssuedKey {
            id: row.get("id"),
            token: row.get("token"),
            masked_token: row.get("masked_token"),
            owner_type: row.get("owner_type"),
            owner_id: row.get("owner_id"),
            name: row.get("name"),
            key_type: row.get("key_type"),
            environment: row.get("environment"),
            scopes: row.get("scopes"),
            expires_at: row.get("expires_at"),
            created_at: row.get("created_at"),
        }
    }
}

/// A row of `api_keys.verification`.
#[derive(Debug, Clone)]
pub struct Verification {
    pub valid: bool,
    pub code: String,
    pub key_id: Option<Uuid>,
    pub owner_type: Option<String>,
    pub owner_id: Option<String>,
    pub name: Option<String>,
    pub key_type: Option<String>,
    pub environment: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Verification {
    pub fn from_row(row: &Row) -> Self {
        let valid: Option<bool> = row.get("valid");
        let code: Option<String> = row.get("code");
        Verification {
            valid: valid.expect("verify returned NULL `valid`: it must always answer"),
            code: code.expect("verify returned NULL `code`: it must always answer"),
            key_id: row.get("key_id"),
            owner_type: row.get("owner_type"),
            owner_id: row.get("owner_id"),
            name: row.get("name"),
            key_type: row.get("key_type"),
            environment: row.get("environment"),
            scopes: row.get("scopes"),
            metadata: row.get("metadata"),
            expires_at: row.get("expires_at"),
        }
    }

    /// Asserts that every identity column (all but `valid` and `code`) is NULL.
    #[track_caller]
    pub fn assert_identity_null(&self) {
        assert!(
            self.key_id.is_none()
                && self.owner_type.is_none()
                && self.owner_id.is_none()
                && self.name.is_none()
                && self.key_type.is_none()
                && self.environment.is_none()
                && self.scopes.is_none()
                && self.metadata.is_none()
                && self.expires_at.is_none(),
            "identity columns must be NULL for code {}: {self:?}",
            self.code
        );
    }

    /// Asserts `code`, `valid = (code == "valid")`.
    #[track_caller]
    pub fn assert_code(&self, code: &str) {
        assert_eq!(self.code, code, "unexpected verification: {self:?}");
        assert_eq!(self.valid, code == "valid", "valid flag: {self:?}");
    }
}

/// A row of `api_keys.key_info`.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: Uuid,
    pub owner_type: String,
    pub owner_id: String,
    pub name: Option<String>,
    pub key_type: Option<String>,
    pub environment: Option<String>,
    pub masked_token: String,
    pub viewable_token: Option<String>,
    pub scopes: Vec<String>,
    pub metadata: Value,
    pub status: String,
    pub revocable: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub requests_count: i64,
    pub mfa: bool,
    pub replaced_by: Option<Uuid>,
    pub imported: bool,
}

impl KeyInfo {
    pub fn from_row(row: &Row) -> Self {
        // SPEC: the integer width of requests_count is not fixed; accept both.
        let requests_count = row
            .try_get::<_, Option<i64>>("requests_count")
            .or_else(|_| {
                row.try_get::<_, Option<i32>>("requests_count")
                    .map(|v| v.map(i64::from))
            })
            .expect("requests_count is an integer")
            .unwrap_or(0);
        KeyInfo {
            id: row.get("id"),
            owner_type: row.get("owner_type"),
            owner_id: row.get("owner_id"),
            name: row.get("name"),
            key_type: row.get("key_type"),
            environment: row.get("environment"),
            masked_token: row.get("masked_token"),
            viewable_token: row.get("viewable_token"),
            scopes: row.get("scopes"),
            metadata: row.get("metadata"),
            status: row.get("status"),
            revocable: row.get("revocable"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            revoked_at: row.get("revoked_at"),
            last_used_at: row.get("last_used_at"),
            requests_count,
            mfa: row.get("mfa"),
            replaced_by: row.get("replaced_by"),
            imported: row.get("imported"),
        }
    }
}

/// `SELECT * FROM api_keys.api_key_issue(<args>)`; `args` is SQL such as
/// `owner_type => 'user', owner_id => $1`.
pub fn try_issue(
    c: &mut impl GenericClient,
    args: &str,
    params: Params,
) -> Result<IssuedKey, postgres::Error> {
    let sql = format!("SELECT * FROM api_keys.api_key_issue({args})");
    c.query_one(sql.as_str(), params)
        .map(|r| IssuedKey::from_row(&r))
}

/// Issues and panics on failure.
#[track_caller]
pub fn issue(c: &mut impl GenericClient, args: &str, params: Params) -> IssuedKey {
    match try_issue(c, args, params) {
        Ok(k) => k,
        Err(e) => panic!("api_key_issue({args}) failed: {}", describe(&e)),
    }
}

/// Issues a key for `owner_type/owner_id` with every other argument defaulted.
#[track_caller]
pub fn issue_for(c: &mut impl GenericClient, owner_type: &str, owner_id: &str) -> IssuedKey {
    issue(
        c,
        "owner_type => $1, owner_id => $2",
        &[&owner_type, &owner_id],
    )
}

/// `SELECT * FROM api_keys.api_key_verify(<args>)`.
#[track_caller]
pub fn verify_sql(c: &mut impl GenericClient, args: &str, params: Params) -> Verification {
    let sql = format!("SELECT * FROM api_keys.api_key_verify({args})");
    match c.query_one(sql.as_str(), params) {
        Ok(row) => Verification::from_row(&row),
        Err(e) => panic!(
            "api_key_verify must never raise, but raised: {}",
            describe(&e)
        ),
    }
}

/// Verifies `token` with the default `required_scopes` and environment.
#[track_caller]
pub fn verify(c: &mut impl GenericClient, token: &str) -> Verification {
    verify_sql(c, "$1::text", &[&token])
}

/// Verifies `token` requiring `scopes`.
#[track_caller]
pub fn verify_scopes(c: &mut impl GenericClient, token: &str, scopes: &[&str]) -> Verification {
    verify_sql(
        c,
        "$1::text, required_scopes => $2::text[]",
        &[&token, &scopes],
    )
}

/// Verifies `token` against `environment` (the argument, not the GUC).
#[track_caller]
pub fn verify_env(c: &mut impl GenericClient, token: &str, environment: &str) -> Verification {
    verify_sql(
        c,
        "$1::text, environment => $2::text",
        &[&token, &environment],
    )
}

pub fn try_get_key(c: &mut impl GenericClient, id: Uuid) -> Result<KeyInfo, postgres::Error> {
    c.query_one("SELECT * FROM api_keys.api_key_get($1::uuid)", &[&id])
        .map(|r| KeyInfo::from_row(&r))
}

#[track_caller]
pub fn get_key(c: &mut impl GenericClient, id: Uuid) -> KeyInfo {
    try_get_key(c, id).unwrap_or_else(|e| panic!("api_key_get({id}) failed: {}", describe(&e)))
}

pub fn try_list(
    c: &mut impl GenericClient,
    owner_type: &str,
    owner_id: &str,
    status: Option<&str>,
) -> Result<Vec<KeyInfo>, postgres::Error> {
    c.query(
        "SELECT * FROM api_keys.api_key_list($1::text, $2::text, status => $3::text)",
        &[&owner_type, &owner_id, &status],
    )
    .map(|rows| rows.iter().map(KeyInfo::from_row).collect())
}

#[track_caller]
pub fn list(c: &mut impl GenericClient, owner_type: &str, owner_id: &str) -> Vec<KeyInfo> {
    try_list(c, owner_type, owner_id, None).unwrap_or_else(|e| {
        panic!(
            "api_key_list({owner_type}, {owner_id}) failed: {}",
            describe(&e)
        )
    })
}

#[track_caller]
pub fn list_status(
    c: &mut impl GenericClient,
    owner_type: &str,
    owner_id: &str,
    status: &str,
) -> Vec<KeyInfo> {
    try_list(c, owner_type, owner_id, Some(status))
        .unwrap_or_else(|e| panic!("api_key_list(status => {status}) failed: {}", describe(&e)))
}

pub fn try_revoke(c: &mut impl GenericClient, id: Uuid) -> Result<bool, postgres::Error> {
    c.query_one("SELECT api_keys.api_key_revoke($1::uuid)", &[&id])
        .map(|r| r.get(0))
}

#[track_caller]
pub fn revoke(c: &mut impl GenericClient, id: Uuid) -> bool {
    try_revoke(c, id).unwrap_or_else(|e| panic!("api_key_revoke({id}) failed: {}", describe(&e)))
}

/// Runs a configuration call such as `api_keys.api_key_type_define(...)`,
/// ignoring whatever it returns.
pub fn try_configure(
    c: &mut impl GenericClient,
    call: &str,
    params: Params,
) -> Result<(), postgres::Error> {
    c.query(format!("SELECT {call}").as_str(), params)
        .map(|_| ())
}

#[track_caller]
pub fn configure(c: &mut impl GenericClient, call: &str) {
    try_configure(c, call, &[]).unwrap_or_else(|e| panic!("{call} failed: {}", describe(&e)));
}

/// Row count of every table in schema `api_keys`, keyed by table name.
/// Used to prove that a failed call left nothing behind.
pub fn table_row_counts(c: &mut impl GenericClient) -> Vec<(String, i64)> {
    api_keys_tables(c)
        .into_iter()
        .map(|t| {
            let n: i64 = c
                .query_one(format!("SELECT count(*) FROM {t}").as_str(), &[])
                .unwrap_or_else(|e| panic!("counting {t} failed: {}", describe(&e)))
                .get(0);
            (t, n)
        })
        .collect()
}

/// Qualified, quoted names of every table in schema `api_keys`.
pub fn api_keys_tables(c: &mut impl GenericClient) -> Vec<String> {
    c.query(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'api_keys' AND c.relkind IN ('r', 'p') ORDER BY 1",
        &[],
    )
    .expect("listing tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Database `now()` (the start of the current transaction).
pub fn db_now(c: &mut impl GenericClient) -> DateTime<Utc> {
    c.query_one("SELECT now()", &[]).expect("now()").get(0)
}

/// Waits long enough for a key issued with `expires_at => now() + interval
/// '1 second'` to be past its expiry.
pub fn wait_for_one_second_expiry() {
    std::thread::sleep(std::time::Duration::from_millis(1300));
}
