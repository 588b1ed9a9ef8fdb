//! Each route's success: the rows of the SQL functions as JSON.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{run, ALL_SCOPES};
use crate::user_key;

#[test]
fn issue_answers_201_with_the_issued_key_row() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let a = svc
            .post(
                "/v1/keys",
                &admin,
                &json!({"owner_type": "user", "owner_id": "42", "name": "ci",
                        "scopes": ["read", "write"], "expires_in": "30_days",
                        "metadata": {"team": "x"}}),
            )
            .await;
        let k = a.assert_ok(201);
        let token = k["token"].as_str().unwrap();
        assert!(token.starts_with("ak_"), "{k}");
        assert_eq!(k["owner_type"], "user");
        assert_eq!(k["owner_id"], "42");
        assert_eq!(k["name"], "ci");
        assert_eq!(k["scopes"], json!(["read", "write"]));
        assert!(k["expires_at"].is_string());
        assert!(k["masked_token"]
            .as_str()
            .unwrap()
            .ends_with(&token[token.len() - 4..]));
        // The issued token verifies.
        let v = svc
            .post(
                "/v1/verify",
                &admin,
                &json!({"token": token, "required_scopes": ["read"]}),
            )
            .await;
        assert_eq!(v.assert_ok(200)["code"], "valid");
        assert_eq!(v.body["metadata"], json!({"team": "x"}));
    });
}

#[test]
fn get_and_update_answer_key_info() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, _) = user_key(&svc).await;
        let k = svc.get(&format!("/v1/keys/{id}"), &admin).await;
        let k = k.assert_ok(200);
        assert_eq!(k["id"], id.to_string());
        assert_eq!(k["status"], "active");
        assert_eq!(k["scopes"], json!(["read"]));
        assert!(k.get("token").is_none(), "no plaintext in key_info");
        let u = svc
            .call(
                Method::PATCH,
                &format!("/v1/keys/{id}"),
                Some(&admin),
                Some(&json!({"name": "renamed", "scopes": ["write"], "metadata": {"a": 1}})),
            )
            .await;
        let u = u.assert_ok(200);
        assert_eq!(u["name"], "renamed");
        assert_eq!(u["scopes"], json!(["write"]));
        assert_eq!(u["metadata"], json!({"a": 1}));
        svc.call(
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&admin),
            Some(&json!({"metadata": [1]})),
        )
        .await
        .assert_error(400, "invalid_argument");
    });
}

#[test]
fn revoke_answers_whether_it_revoked_and_the_key() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, token) = user_key(&svc).await;
        let path = format!("/v1/keys/{id}/revoke");
        let a = svc.post(&path, &admin, &json!({})).await;
        let a = a.assert_ok(200);
        assert_eq!(a["revoked"], true);
        assert_eq!(a["key"]["status"], "revoked");
        assert!(a["key"]["revoked_at"].is_string());
        let again = svc.post(&path, &admin, &json!({})).await;
        assert_eq!(again.assert_ok(200)["revoked"], false);
        let v = svc
            .post("/v1/verify", &admin, &json!({"token": token}))
            .await;
        assert_eq!(v.assert_ok(200)["code"], "revoked");
    });
}

#[test]
fn revoke_all_answers_how_many() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        for _ in 0..3 {
            svc.issue_sql("org", "9", &[]).await;
        }
        let a = svc
            .post("/v1/owners/org/9/revoke_all", &admin, &json!({}))
            .await;
        assert_eq!(a.assert_ok(200), &json!({"revoked": 3}));
        let a = svc
            .post("/v1/owners/org/9/revoke_all", &admin, &json!({}))
            .await;
        assert_eq!(a.assert_ok(200), &json!({"revoked": 0}));
    });
}

#[test]
fn list_pages_newest_first_with_next_before_id() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(svc.issue_sql("user", "7", &[]).await.0.to_string());
        }
        ids.reverse();
        let all = svc.get("/v1/keys?owner_type=user&owner_id=7", &admin).await;
        let all = all.assert_ok(200);
        let got: Vec<&str> = all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, ids);
        assert_eq!(all["next_before_id"], Value::Null);

        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let mut path = "/v1/keys?owner_type=user&owner_id=7&limit=2".to_owned();
            if let Some(b) = &before {
                path.push_str(&format!("&before_id={b}"));
            }
            let page = svc.get(&path, &admin).await;
            let page = page.assert_ok(200).clone();
            let keys = page["keys"].as_array().unwrap();
            assert!(keys.len() <= 2);
            seen.extend(keys.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
            match page["next_before_id"].as_str() {
                Some(next) => before = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ids);

        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "status=gone",
            "colour=red",
            "before_id=not-a-uuid",
        ] {
            let a = svc
                .get(
                    &format!("/v1/keys?owner_type=user&owner_id=7&{bad}"),
                    &admin,
                )
                .await;
            a.assert_error(400, "invalid_argument");
        }
        svc.get("/v1/keys?owner_type=user", &admin)
            .await
            .assert_error(400, "invalid_argument");
        let revoked = svc
            .get("/v1/keys?owner_type=user&owner_id=7&status=revoked", &admin)
            .await;
        assert_eq!(revoked.assert_ok(200)["keys"], json!([]));
    });
}

#[test]
fn available_scopes_and_presets() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.sql("SELECT api_keys.api_key_type_define('ro', 'ro', permissions => '{read}')")
            .await;
        let a = svc
            .get("/v1/owners/user/1/available_scopes?key_type=ro", &admin)
            .await;
        assert_eq!(a.assert_ok(200), &json!({"scopes": ["read"]}));
        let a = svc.get("/v1/owners/user/1/available_scopes", &admin).await;
        assert_eq!(a.assert_ok(200), &json!({"scopes": []}));
        svc.get("/v1/owners/user/1/available_scopes?key_type=nope", &admin)
            .await
            .assert_error(400, "unknown_key_type");
        let p = svc.get("/v1/expiration_presets", &admin).await;
        let presets = p.assert_ok(200)["presets"].as_array().unwrap().clone();
        let values: Vec<&str> = presets
            .iter()
            .map(|p| p["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values,
            [
                "no_expiration",
                "7_days",
                "30_days",
                "60_days",
                "90_days",
                "1_year"
            ]
        );
        assert_eq!(presets[0]["label"], "No expiration");
    });
}

#[test]
fn verify_answers_200_whatever_the_code() {
    run(|svc| async move {
        let admin = svc.admin(&["keys:verify"]).await;
        let (_, token) = user_key(&svc).await;
        let v = svc
            .post("/v1/verify", &admin, &json!({"token": token}))
            .await;
        let v = v.assert_ok(200);
        assert_eq!(v["valid"], true);
        assert_eq!(v["owner_id"], "1");
        let v = svc
            .post(
                "/v1/verify",
                &admin,
                &json!({"token": token, "required_scopes": ["write"]}),
            )
            .await;
        assert_eq!(v.assert_ok(200)["code"], "insufficient_scope");
        let v = svc
            .post("/v1/verify", &admin, &json!({"token": "nope"}))
            .await;
        let v = v.assert_ok(200);
        assert_eq!(v["code"], "malformed");
        assert_eq!(v["valid"], false);
    });
}

#[test]
fn concurrent_verifies_share_connections_and_a_revocation_is_in_force_at_its_commit() {
    run(|svc| async move {
        let admin = svc.admin(&["keys:verify"]).await;
        let (id, token) = user_key(&svc).await;
        let body = json!({"token": token, "required_scopes": ["read"]});
        let burst = || {
            futures_util::future::join_all((0..100).map(|_| svc.post("/v1/verify", &admin, &body)))
        };
        for a in burst().await {
            assert_eq!(a.assert_ok(200)["code"], "valid", "{}", a.text);
        }
        let m = svc.http.get(svc.url("/metrics")).send().await.unwrap();
        let text = m.text().await.unwrap();
        let shared = api_keys_admin::state::SharedConnections::default_count().min(7);
        assert!(
            text.contains(&format!(
                "api_keys_admin_pool_connections{{state=\"shared\"}} {shared}"
            )),
            "{text}"
        );
        // No verification is cached: once the revoke has committed, every
        // verify says so, on every shared connection.
        svc.su
            .execute("SELECT api_keys.api_key_revoke($1)", &[&id])
            .await
            .unwrap();
        for a in burst().await {
            assert_eq!(a.assert_ok(200)["code"], "revoked", "{}", a.text);
        }
    });
}

#[test]
fn verify_works_with_no_shared_connection_and_never_takes_the_whole_pool() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (_, token) = user_key(&svc).await;
        // (pool size, shared connections asked for): none shared, and a pool
        // of one where sharing it would starve every other route.
        for (max, shared) in [(8, 0), (1, 4)] {
            let state = api_keys_admin::AppState::from_config(svc.role_config.clone(), max, None)
                .unwrap()
                .with_shared_connections(shared);
            let other = svc.with_state(state).await;
            for _ in 0..3 {
                let v = other
                    .post("/v1/verify", &admin, &json!({"token": token}))
                    .await;
                assert_eq!(v.assert_ok(200)["code"], "valid");
                other
                    .get("/v1/expiration_presets", &admin)
                    .await
                    .assert_ok(200);
            }
            let m = other.http.get(other.url("/metrics")).send().await.unwrap();
            let text = m.text().await.unwrap();
            assert!(
                text.contains("api_keys_admin_pool_connections{state=\"shared\"} 0"),
                "{text}"
            );
        }
    });
}
