//! Lifecycle routes (0.2.0): rotate, import.

use reqwest::Method;
use serde_json::json;

use crate::common::{run, ALL_SCOPES};
use crate::user_key;

#[test]
fn rotate_answers_201_with_the_replacement_and_the_old_key_keeps_its_grace() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, old_token) = user_key(&svc).await;
        let r = svc
            .post(
                &format!("/v1/keys/{id}/rotate"),
                &admin,
                &json!({"grace_seconds": 60, "expires_in": "7_days"}),
            )
            .await;
        let new = r.assert_ok(201).clone();
        let token = new["token"].as_str().unwrap();
        assert_ne!(token, old_token);
        assert_eq!(new["scopes"], json!(["read"]));
        assert!(new["expires_at"].is_string());
        for t in [token, old_token.as_str()] {
            let v = svc.post("/v1/verify", &admin, &json!({"token": t})).await;
            assert_eq!(v.assert_ok(200)["code"], "valid", "{t}");
        }
        let old = svc.get(&format!("/v1/keys/{id}"), &admin).await;
        let old = old.assert_ok(200);
        assert_eq!(old["replaced_by"], new["id"]);
        assert_eq!(old["status"], "active");
        assert!(old["expires_at"].is_string());
        // a second rotation of the same key is refused
        svc.post(&format!("/v1/keys/{id}/rotate"), &admin, &json!({}))
            .await
            .assert_error(400, "invalid_argument");
    });
}

#[test]
fn rotate_without_grace_revokes_the_old_key_now() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, old_token) = user_key(&svc).await;
        svc.post(&format!("/v1/keys/{id}/rotate"), &admin, &json!({}))
            .await
            .assert_ok(201);
        let v = svc
            .post("/v1/verify", &admin, &json!({"token": old_token}))
            .await;
        assert_eq!(v.assert_ok(200)["code"], "revoked");
    });
}

#[test]
fn rotate_refusals_map_to_the_spec_statuses() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, _) = user_key(&svc).await;
        let path = format!("/v1/keys/{id}/rotate");
        for body in [
            json!({"grace_seconds": -1}),
            json!({"grace_seconds": 4294967296u64}),
            json!({"grace_seconds": "60"}),
            json!({"grace_seconds": 1.5}),
            json!({"grace_seconds": 7776001}),
            json!({"expires_in": "5_weeks"}),
            json!({"color": "red"}),
            json!([]),
        ] {
            let a = svc.post(&path, &admin, &body).await;
            assert_eq!(a.status.as_u16(), 400, "{body}: {}", a.text);
            let code = a.body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                code == "invalid_argument" || code == "invalid_expiry",
                "{body}: {}",
                a.text
            );
        }
        svc.call_raw(Method::POST, &path, &admin, "{not json")
            .await
            .assert_error(400, "invalid_argument");
        svc.post("/v1/keys/not-a-uuid/rotate", &admin, &json!({}))
            .await
            .assert_error(400, "invalid_argument");
        svc.post(
            &format!("/v1/keys/{}/rotate", uuid::Uuid::new_v4()),
            &admin,
            &json!({}),
        )
        .await
        .assert_error(404, "key_not_found");
        svc.sql("SELECT api_keys.api_key_type_define('service', 'svc', revocable => false)")
            .await;
        let row = svc
            .post(
                "/v1/keys",
                &admin,
                &json!({"owner_type": "user", "owner_id": "1", "key_type": "service"}),
            )
            .await;
        let service_id = row.assert_ok(201)["id"].as_str().unwrap().to_owned();
        svc.post(&format!("/v1/keys/{service_id}/rotate"), &admin, &json!({}))
            .await
            .assert_error(403, "key_not_revocable");
        // nothing was rotated by any refusal
        let k = svc.get(&format!("/v1/keys/{id}"), &admin).await;
        assert_eq!(k.assert_ok(200)["replaced_by"], json!(null));
    });
}

fn sha256_hex(token: &str) -> String {
    api_keys_core::token::TokenHash::of(token)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn import_answers_201_with_key_info_and_the_old_token_verifies() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.sql("SELECT api_keys.api_key_legacy_prefix_define('gem_')")
            .await;
        let body = json!({"owner_type": "user", "owner_id": "3", "token_sha256": sha256_hex("gem_s3cret").to_uppercase(),
                          "display_prefix": "gem_", "last4": "cret", "name": "from the gem",
                          "scopes": ["read"], "created_at": "2024-01-02T03:04:05Z",
                          "last_used_at": "2025-01-01T00:00:00Z", "requests_count": 12,
                          "metadata": {"from": "gem"}});
        let a = svc.post("/v1/keys/import", &admin, &body).await;
        let k = a.assert_ok(201);
        assert_eq!(k["masked_token"], "gem_••••cret");
        assert_eq!(k["imported"], true);
        assert_eq!(k["requests_count"], 12);
        assert_eq!(k["status"], "active");
        assert!(k["created_at"].as_str().unwrap().starts_with("2024-01-02"));
        let v = svc
            .post(
                "/v1/verify",
                &admin,
                &json!({"token": "gem_s3cret", "required_scopes": ["read"]}),
            )
            .await;
        let v = v.assert_ok(200);
        assert_eq!(v["code"], "valid");
        assert_eq!(v["owner_id"], "3");
        assert_eq!(v["metadata"], json!({"from": "gem"}));
        // the same digest again
        svc.post("/v1/keys/import", &admin, &body)
            .await
            .assert_error(400, "invalid_argument");
    });
}

#[test]
fn import_refusals_are_400() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let good = json!({"owner_type": "user", "owner_id": "1", "token_sha256": "ab".repeat(32),
                          "display_prefix": "old", "last4": "abcd"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = good.clone();
            b[k] = v;
            b
        };
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("last4");
        for (body, code) in [
            (
                with("token_sha256", json!("zz".repeat(32))),
                "invalid_argument",
            ),
            (with("token_sha256", json!("abc")), "invalid_argument"),
            (
                with("token_sha256", json!("ab".repeat(31))),
                "invalid_argument",
            ),
            (
                with(
                    "token_sha256",
                    json!("$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
                ),
                "invalid_argument",
            ),
            (with("token_sha256", json!(null)), "invalid_argument"),
            (with("display_prefix", json!("")), "invalid_argument"),
            (with("last4", json!("too long!")), "invalid_argument"),
            (with("owner_id", json!("")), "invalid_argument"),
            (with("scopes", json!("read")), "invalid_argument"),
            (with("requests_count", json!(-1)), "invalid_argument"),
            (with("created_at", json!("soon")), "invalid_argument"),
            (with("color", json!("red")), "invalid_argument"),
            (with("key_type", json!("nope")), "unknown_key_type"),
            (with("expires_at", json!("2020-01-01T00:00:00Z")), "ok"),
            (missing, "invalid_argument"),
        ] {
            let a = svc.post("/v1/keys/import", &admin, &body).await;
            if code == "ok" {
                a.assert_ok(201);
            } else {
                a.assert_error(400, code);
            }
        }
        svc.call_raw(Method::POST, "/v1/keys/import", &admin, "{not json")
            .await
            .assert_error(400, "invalid_argument");
    });
}

fn totp_now(secret_b32: &str, ahead: u64) -> String {
    let secret = api_keys_core::mfa::base32_decode(secret_b32).expect("base32");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    api_keys_core::mfa::totp(&secret, now + ahead * 30, 6)
}

#[test]
fn mfa_enroll_confirm_verify_with_otp_and_disable() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.sql(
            "SELECT api_keys.api_key_scope_define('read'); \
                 SELECT api_keys.api_key_scope_define('admin', mfa => true); \
                 SELECT api_keys.api_key_scope_define('keys:read'); \
                 SELECT api_keys.api_key_scope_define('keys:write'); \
                 SELECT api_keys.api_key_scope_define('keys:verify');",
        )
        .await;
        let e = svc.post("/v1/owners/user/5/mfa", &admin, &json!({})).await;
        let e = e.assert_ok(200).clone();
        let secret = e["secret"].as_str().unwrap().to_owned();
        assert!(e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/"));
        // a key cannot get the flag before confirmation
        svc.post(
            "/v1/keys",
            &admin,
            &json!({"owner_type": "user", "owner_id": "5", "scopes": ["admin"], "mfa": true}),
        )
        .await
        .assert_error(400, "mfa_not_enabled");
        let c = svc
            .post(
                "/v1/owners/user/5/mfa/confirm",
                &admin,
                &json!({"otp": "000000"}),
            )
            .await;
        assert_eq!(c.assert_ok(200)["enabled"], false);
        let c = svc
            .post(
                "/v1/owners/user/5/mfa/confirm",
                &admin,
                &json!({"otp": totp_now(&secret, 0)}),
            )
            .await;
        assert_eq!(c.assert_ok(200)["enabled"], true);
        svc.post("/v1/owners/user/5/mfa", &admin, &json!({}))
            .await
            .assert_error(400, "invalid_argument");
        let k = svc
            .post(
                "/v1/keys",
                &admin,
                &json!({"owner_type": "user", "owner_id": "5", "scopes": ["read", "admin"], "mfa": true}),
            )
            .await;
        let token = k.assert_ok(201)["token"].as_str().unwrap().to_owned();
        let v = svc
            .post(
                "/v1/verify",
                &admin,
                &json!({"token": token, "required_scopes": ["admin"]}),
            )
            .await;
        assert_eq!(v.assert_ok(200)["code"], "otp_required");
        let otp = totp_now(&secret, 1);
        let body = json!({"token": token, "required_scopes": ["admin"], "otp": otp});
        let v = svc.post("/v1/verify", &admin, &body).await;
        assert_eq!(v.assert_ok(200)["code"], "valid");
        let v = svc.post("/v1/verify", &admin, &body).await;
        assert_eq!(
            v.assert_ok(200)["code"],
            "otp_invalid",
            "a code is used once"
        );
        let d = svc
            .call(Method::DELETE, "/v1/owners/user/5/mfa", Some(&admin), None)
            .await;
        assert_eq!(d.assert_ok(200)["disabled"], true);
        let d = svc
            .call(Method::DELETE, "/v1/owners/user/5/mfa", Some(&admin), None)
            .await;
        assert_eq!(d.assert_ok(200)["disabled"], false);
        // the secret is in no later answer
        let listed = svc.get("/v1/keys?owner_type=user&owner_id=5", &admin).await;
        assert!(!listed.text.contains(&secret));
        assert_eq!(listed.body["keys"][0]["mfa"], true);
    });
}

#[test]
fn mfa_refusals_are_400() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let long = "o".repeat(256);
        svc.post(&format!("/v1/owners/user/{long}/mfa"), &admin, &json!({}))
            .await
            .assert_error(400, "invalid_argument");
        svc.post(
            "/v1/owners/user/9/mfa/confirm",
            &admin,
            &json!({"otp": "123456"}),
        )
        .await
        .assert_error(400, "invalid_argument");
        for body in [
            json!({}),
            json!({"otp": 123456}),
            json!({"otp": "1", "x": 1}),
        ] {
            svc.post("/v1/owners/user/9/mfa/confirm", &admin, &body)
                .await
                .assert_error(400, "invalid_argument");
        }
    });
}
