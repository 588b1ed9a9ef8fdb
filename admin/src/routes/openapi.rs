//! `GET /openapi.json`: the OpenAPI 3.1 document of every route.
//!
//! Written by hand next to the code it describes (the handlers return the
//! extension's rows as JSON, so there are no Rust types to derive it from);
//! `tests/openapi.rs` checks that it names every route of [`crate::app`] and
//! schemathesis checks the answers against it.

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::routes::keys::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi))
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(document())
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn nullable_format(t: &str, format: &str) -> Value {
    json!({"type": [t, "null"], "format": format})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn error_response(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn ok(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference(schema)}}})
}

fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}})
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query_param(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema, "description": description})
}

/// The error answers of a protected route, plus `extra` (e.g. 404, 409).
fn protected(mut responses: Value, extra: &[&str]) -> Value {
    let map = responses.as_object_mut().expect("an object");
    for (status, name) in [
        ("400", "InvalidArgument"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("500", "Internal"),
        ("503", "Unavailable"),
    ] {
        map.insert(status.to_owned(), error_response(name));
    }
    for status in extra {
        let name = match *status {
            "404" => "NotFound",
            "409" => "Conflict",
            "413" => "PayloadTooLarge",
            other => panic!("no shared response for {other}"),
        };
        map.insert((*status).to_owned(), error_response(name));
    }
    responses
}

fn operation(
    id: &str,
    summary: &str,
    scope: &str,
    parameters: Value,
    body: Option<&str>,
    responses: Value,
) -> Value {
    let mut op = json!({
        "operationId": id,
        "summary": summary,
        "description": format!("Needs an admin key with scope `{scope}`."),
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(schema) = body {
        op["requestBody"] = json_body(schema);
    }
    op
}

fn schemas() -> Value {
    let text_array = json!({"type": "array", "items": {"type": "string"}});
    let key_info = json!({
        "type": "object",
        "description": "api_keys.key_info: a key without its secret.",
        "required": ["id", "owner_type", "owner_id", "name", "key_type", "environment",
                     "masked_token", "viewable_token", "scopes", "metadata", "status",
                     "revocable", "created_at", "expires_at", "revoked_at", "last_used_at",
                     "requests_count", "mfa", "replaced_by", "imported"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "owner_type": {"type": "string"},
            "owner_id": {"type": "string"},
            "name": nullable("string"),
            "key_type": nullable("string"),
            "environment": nullable("string"),
            "masked_token": {"type": "string"},
            "viewable_token": {"type": ["string", "null"], "description": "Plaintext, for keys of a public type only."},
            "scopes": text_array,
            "metadata": {"type": "object"},
            "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
            "revocable": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": nullable_format("string", "date-time"),
            "revoked_at": nullable_format("string", "date-time"),
            "last_used_at": nullable_format("string", "date-time"),
            "requests_count": {"type": "integer"},
            "mfa": {"type": "boolean", "description": "Verify asks for an OTP when a sensitive scope is required (0.2.0)."},
            "replaced_by": {"type": ["string", "null"], "format": "uuid", "description": "The key a rotation issued for this one (0.2.0)."},
            "imported": {"type": "boolean", "description": "Imported from a digest by api_key_import (0.2.0)."}
        }
    });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": false,
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "The reason: `invalid_argument`, `key_not_found`, `key_limit_reached`, `unauthorized`, `insufficient_scope`, …"},
                    "message": {"type": "string"}
                }
            }}
        },
        "IssueRequest": {
            "type": "object",
            "description": "The named arguments of api_keys.api_key_issue.",
            "required": ["owner_type", "owner_id"],
            "additionalProperties": false,
            "properties": {
                "owner_type": {"type": "string"},
                "owner_id": {"type": "string"},
                "name": nullable("string"),
                "scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "key_type": nullable("string"),
                "environment": nullable("string"),
                "expires_at": nullable_format("string", "date-time"),
                "expires_in": {"type": ["string", "null"], "description": "`no_expiration`, `7_days`, `30_days`, `60_days`, `90_days`, `1_year` or `N_days`."},
                "metadata": {"type": ["object", "null"]},
                "mfa": {"type": ["boolean", "null"], "description": "The key needs a TOTP code for sensitive scopes; the owner's MFA must be enabled (0.2.0)."}
            }
        },
        "IssuedKey": {
            "type": "object",
            "description": "api_keys.issued_key: the only time the token is shown.",
            "required": ["id", "token", "masked_token", "owner_type", "owner_id", "name",
                         "key_type", "environment", "scopes", "expires_at", "created_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "token": {"type": "string"},
                "masked_token": {"type": "string"},
                "owner_type": {"type": "string"},
                "owner_id": {"type": "string"},
                "name": nullable("string"),
                "key_type": nullable("string"),
                "environment": nullable("string"),
                "scopes": text_array,
                "expires_at": nullable_format("string", "date-time"),
                "created_at": {"type": "string", "format": "date-time"}
            }
        },
        "KeyInfo": key_info,
        "KeyList": {
            "type": "object",
            "required": ["keys", "next_before_id"],
            "properties": {
                "keys": {"type": "array", "items": reference("KeyInfo")},
                "next_before_id": {"type": ["string", "null"], "format": "uuid", "description": "Pass as before_id for the next page; null on the last page."}
            }
        },
        "UpdateRequest": {
            "type": "object",
            "description": "Absent or null = unchanged; name \"\" clears the name; metadata is replaced.",
            "additionalProperties": false,
            "properties": {
                "name": nullable("string"),
                "scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "metadata": {"type": ["object", "null"]},
                "mfa": {"type": ["boolean", "null"]}
            }
        },
        "RotateRequest": {
            "type": "object",
            "description": "grace_seconds: how long the old key stays valid (absent or 0 = revoked now; at most 90 days). expires_in: the replacement's expiry (default: the old key's lifetime length from now).",
            "additionalProperties": false,
            "properties": {
                "grace_seconds": {"type": ["integer", "null"], "minimum": 0, "maximum": 4294967295u64},
                "expires_in": {"type": ["string", "null"], "description": "`no_expiration`, `7_days`, `30_days`, `60_days`, `90_days`, `1_year` or `N_days`."}
            }
        },
        "ImportRequest": {
            "type": "object",
            "description": "The named arguments of api_keys.api_key_import; token_sha256 is the SHA-256 of the whole token as 64 hex digits.",
            "required": ["owner_type", "owner_id", "token_sha256", "display_prefix", "last4"],
            "additionalProperties": false,
            "properties": {
                "owner_type": {"type": "string"},
                "owner_id": {"type": "string"},
                "token_sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                "display_prefix": {"type": "string"},
                "last4": {"type": "string"},
                "name": nullable("string"),
                "scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "key_type": nullable("string"),
                "environment": nullable("string"),
                "expires_at": nullable_format("string", "date-time"),
                "created_at": nullable_format("string", "date-time"),
                "revoked_at": nullable_format("string", "date-time"),
                "last_used_at": nullable_format("string", "date-time"),
                "requests_count": {"type": ["integer", "null"], "minimum": 0},
                "metadata": {"type": ["object", "null"]}
            }
        },
        "MfaEnrollment": {
            "type": "object",
            "description": "The TOTP secret (base32) and its otpauth:// URI, shown once.",
            "required": ["secret", "otpauth_uri"],
            "properties": {"secret": {"type": "string"}, "otpauth_uri": {"type": "string"}}
        },
        "MfaConfirmRequest": {
            "type": "object",
            "required": ["otp"],
            "additionalProperties": false,
            "properties": {"otp": {"type": "string"}}
        },
        "MfaConfirmResult": {
            "type": "object",
            "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean", "description": "False for a wrong code."}}
        },
        "MfaDisableResult": {
            "type": "object",
            "required": ["disabled"],
            "properties": {"disabled": {"type": "boolean", "description": "False when there was no enrollment."}}
        },
        "RevokeResult": {
            "type": "object",
            "required": ["revoked", "key"],
            "properties": {
                "revoked": {"type": "boolean", "description": "False when the key was already inactive."},
                "key": reference("KeyInfo")
            }
        },
        "RevokeAllResult": {
            "type": "object",
            "required": ["revoked"],
            "properties": {"revoked": {"type": "integer", "minimum": 0}}
        },
        "AvailableScopes": {
            "type": "object",
            "required": ["scopes"],
            "properties": {"scopes": text_array}
        },
        "ExpirationPresets": {
            "type": "object",
            "required": ["presets"],
            "properties": {"presets": {"type": "array", "items": {
                "type": "object",
                "required": ["value", "label"],
                "properties": {"value": {"type": "string"}, "label": {"type": "string"}}
            }}}
        },
        "VerifyRequest": {
            "type": "object",
            "required": ["token"],
            "additionalProperties": false,
            "properties": {
                "token": {"type": "string"},
                "required_scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "environment": nullable("string"),
                "otp": {"type": ["string", "null"], "description": "A TOTP code of the key owner's MFA, for sensitive scopes (0.2.0)."}
            }
        },
        "Verification": {
            "type": "object",
            "description": "api_keys.verification. Identity columns are null unless code is valid, insufficient_scope, otp_required or otp_invalid.",
            "required": ["valid", "code", "key_id", "owner_type", "owner_id", "name", "key_type",
                         "environment", "scopes", "metadata", "expires_at"],
            "properties": {
                "valid": {"type": "boolean"},
                "code": {"type": "string", "description": "malformed, not_found, revoked, expired, environment_mismatch, insufficient_scope, otp_required, otp_invalid or valid."},
                "key_id": nullable_format("string", "uuid"),
                "owner_type": nullable("string"),
                "owner_id": nullable("string"),
                "name": nullable("string"),
                "key_type": nullable("string"),
                "environment": nullable("string"),
                "scopes": {"type": ["array", "null"], "items": {"type": "string"}},
                "metadata": {"type": ["object", "null"]},
                "expires_at": nullable_format("string", "date-time")
            }
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "const": "ok"}}
        }
    })
}

fn responses() -> Value {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}});
    json!({
        "InvalidArgument": error("Malformed JSON, path or query, or an argument the extension refused (SQLSTATE 22023)."),
        "Unauthorized": error("No caller key, or one that is not an active api_keys_admin key."),
        "Forbidden": error("The caller key lacks the route's scope, or the key is not revocable (SQLSTATE 42501)."),
        "NotFound": error("No such key (SQLSTATE P0002) or no such route."),
        "Conflict": error("A key limit is reached (SQLSTATE 23514)."),
        "PayloadTooLarge": error("The request body is larger than 64 KiB."),
        "Internal": error("Unexpected failure; details only in the server log."),
        "Unavailable": error("The database is unavailable."),
    })
}

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let key_id = path_param("id", json!({"type": "string", "format": "uuid"}));
    let owner = json!([
        path_param("owner_type", json!({"type": "string"})),
        path_param("owner_id", json!({"type": "string"})),
    ]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "api-keys-admin",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Key management over the api_keys PostgreSQL extension. Callers authenticate with `Authorization: Bearer <admin key>`, a key of owner type api_keys_admin with scopes among keys:read, keys:write, keys:verify."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
            "responses": responses(),
        },
        "paths": {
            "/v1/keys": {
                "post": operation("issueKey", "Issue a key (api_key_issue)", "keys:write", json!([]), Some("IssueRequest"),
                    protected(json!({"201": ok("The issued key, token included (shown once).", "IssuedKey")}), &["409", "413"])),
                "get": operation("listKeys", "List an owner's keys, newest first (api_key_list)", "keys:read", json!([
                    query_param("owner_type", true, json!({"type": "string"}), "Owner type."),
                    query_param("owner_id", true, json!({"type": "string"}), "Owner id."),
                    query_param("status", false, json!({"type": "string", "enum": ["active", "inactive", "expired", "revoked"]}), "Status filter."),
                    query_param("key_type", false, json!({"type": "string"}), "Key type filter."),
                    query_param("limit", false, json!({"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX, "default": LIST_LIMIT_DEFAULT}), "Page size."),
                    query_param("before_id", false, json!({"type": "string", "format": "uuid"}), "The next_before_id of the previous page."),
                ]), None, protected(json!({"200": ok("A page of keys.", "KeyList")}), &["404"])),
            },
            "/v1/keys/{id}": {
                "get": operation("getKey", "Show a key (api_key_get)", "keys:read", json!([key_id]), None,
                    protected(json!({"200": ok("The key.", "KeyInfo")}), &["404"])),
                "patch": operation("updateKey", "Change name, scopes or metadata (api_key_update)", "keys:write", json!([key_id]), Some("UpdateRequest"),
                    protected(json!({"200": ok("The key after the change.", "KeyInfo")}), &["404", "413"])),
            },
            "/v1/keys/{id}/revoke": {
                "post": operation("revokeKey", "Revoke a key (api_key_revoke)", "keys:write", json!([key_id]), None,
                    protected(json!({"200": ok("Whether it was revoked now, and the key.", "RevokeResult")}), &["404"])),
            },
            "/v1/keys/import": {
                "post": operation("importKey", "Import a key whose plaintext is unknown, from its SHA-256 (api_key_import)", "keys:write", json!([]), Some("ImportRequest"),
                    protected(json!({"201": ok("The imported key.", "KeyInfo")}), &["413"])),
            },
            "/v1/keys/{id}/rotate": {
                "post": operation("rotateKey", "Rotate a key: a replacement, the old key valid for the grace period (api_key_rotate)", "keys:write", json!([key_id.clone()]), Some("RotateRequest"),
                    protected(json!({"201": ok("The replacement, token included (shown once).", "IssuedKey")}), &["404", "413"])),
            },
            "/v1/owners/{owner_type}/{owner_id}/revoke_all": {
                "post": operation("revokeAllKeys", "Revoke every active revocable key of an owner (api_key_revoke_all)", "keys:write", owner.clone(), None,
                    protected(json!({"200": ok("How many keys were revoked.", "RevokeAllResult")}), &[])),
            },
            "/v1/owners/{owner_type}/{owner_id}/mfa": {
                "post": operation("mfaEnroll", "Start an owner's TOTP enrollment (api_key_mfa_enroll)", "keys:write", owner.clone(), None,
                    protected(json!({"200": ok("The secret and otpauth URI, shown once.", "MfaEnrollment")}), &[])),
                "delete": operation("mfaDisable", "Remove an owner's TOTP enrollment (api_key_mfa_disable)", "keys:write", owner.clone(), None,
                    protected(json!({"200": ok("Whether there was one.", "MfaDisableResult")}), &[])),
            },
            "/v1/owners/{owner_type}/{owner_id}/mfa/confirm": {
                "post": operation("mfaConfirm", "Enable a pending enrollment with a code (api_key_mfa_confirm)", "keys:write", owner.clone(), Some("MfaConfirmRequest"),
                    protected(json!({"200": ok("Whether the code enabled it.", "MfaConfirmResult")}), &["413"])),
            },
            "/v1/owners/{owner_type}/{owner_id}/available_scopes": {
                "get": operation("availableScopes", "Scopes a new key of this owner may hold (api_key_available_scopes)", "keys:read", {
                    let mut p = owner.clone();
                    p.as_array_mut().expect("an array").push(query_param("key_type", false, json!({"type": "string"}), "Key type."));
                    p
                }, None, protected(json!({"200": ok("The scopes, in order.", "AvailableScopes")}), &[])),
            },
            "/v1/expiration_presets": {
                "get": operation("expirationPresets", "The expiry choices (api_key_expiration_presets)", "keys:read", json!([]), None,
                    protected(json!({"200": ok("The presets, in order.", "ExpirationPresets")}), &[])),
            },
            "/v1/verify": {
                "post": operation("verifyKey", "Verify a key (api_key_verify)", "keys:verify", json!([]), Some("VerifyRequest"),
                    protected(json!({"200": ok("The verification, whatever its code.", "Verification")}), &["413"])),
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "200 when the database answers",
                    "security": [],
                    "responses": {
                        "200": ok("The database answers.", "Health"),
                        "503": error_response("Unavailable"),
                    }
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text: requests by route and status, latency, verifications by code, pool use",
                    "security": [],
                    "responses": {"200": {"description": "Prometheus exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            }
        }
    })
}
