//! Lifecycle routes (0.2.0): rotate.

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
