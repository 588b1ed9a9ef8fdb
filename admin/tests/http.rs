//! The admin HTTP API (SPEC §8), driven over HTTP against `app()` on
//! 127.0.0.1:0 and a real PostgreSQL with the extension.

mod common;

use common::{run, Service, ALL_SCOPES};
use reqwest::Method;
use serde_json::{json, Value};

/// Every protected route: method, path (`{id}` = a key of user/1), scope, body.
fn routes() -> Vec<(Method, &'static str, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/v1/keys",
            "keys:write",
            Some(json!({"owner_type": "user", "owner_id": "1"})),
        ),
        (
            Method::GET,
            "/v1/keys?owner_type=user&owner_id=1",
            "keys:read",
            None,
        ),
        (Method::GET, "/v1/keys/{id}", "keys:read", None),
        (
            Method::PATCH,
            "/v1/keys/{id}",
            "keys:write",
            Some(json!({"name": "renamed"})),
        ),
        (Method::POST, "/v1/keys/{id}/revoke", "keys:write", None),
        (
            Method::POST,
            "/v1/owners/user/1/revoke_all",
            "keys:write",
            None,
        ),
        (
            Method::GET,
            "/v1/owners/user/1/available_scopes",
            "keys:read",
            None,
        ),
        (Method::GET, "/v1/expiration_presets", "keys:read", None),
        (
            Method::POST,
            "/v1/verify",
            "keys:verify",
            Some(json!({"token": "ak_x"})),
        ),
    ]
}

async fn user_key(svc: &Service) -> (uuid::Uuid, String) {
    svc.issue_sql("user", "1", &["read"]).await
}

/// Callers that are not an accepted admin key, each with a label.
async fn refused_callers(svc: &Service) -> Vec<(&'static str, Option<String>)> {
    let revoked = svc.issue_sql("api_keys_admin", "ops", &ALL_SCOPES).await;
    svc.su
        .execute("SELECT api_keys.api_key_revoke($1)", &[&revoked.0])
        .await
        .unwrap();
    let expired = svc.issue_sql("api_keys_admin", "ops", &ALL_SCOPES).await;
    svc.su
        .execute(
            "UPDATE api_keys.keys SET created_at = now() - interval '2 days', \
                                      expires_at = now() - interval '1 day' WHERE id = $1",
            &[&expired.0],
        )
        .await
        .unwrap();
    let foreign = svc.issue_sql("user", "ops", &ALL_SCOPES).await;
    let admin = svc.admin(&ALL_SCOPES).await;
    // Right shape, wrong checksum.
    let mut bad_checksum = admin.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'A' { 'B' } else { 'A' });
    // Well-formed but never issued.
    let unknown = {
        let other = svc.admin(&ALL_SCOPES).await;
        svc.sql("DELETE FROM api_keys.keys WHERE owner_id = 'ops' AND created_at = (SELECT max(created_at) FROM api_keys.keys)").await;
        other
    };
    vec![
        ("no key", None),
        ("not a token", Some("garbage".to_owned())),
        ("bad checksum", Some(bad_checksum)),
        ("unknown key", Some(unknown)),
        ("revoked key", Some(revoked.1)),
        ("expired key", Some(expired.1)),
        ("key of another owner type", Some(foreign.1)),
    ]
}

#[test]
fn every_route_refuses_callers_without_an_accepted_admin_key_with_401() {
    run(|svc| async move {
        let (id, _) = user_key(&svc).await;
        let callers = refused_callers(&svc).await;
        for (method, path, _, body) in routes() {
            let path = path.replace("{id}", &id.to_string());
            for (label, token) in &callers {
                let a = svc
                    .call(method.clone(), &path, token.as_deref(), body.as_ref())
                    .await;
                assert_eq!(a.status, 401, "{method} {path} with {label}: {}", a.text);
                a.assert_error(401, "unauthorized");
            }
        }
        // The work is not even evaluated for them: its own refusal (400)
        // would show otherwise.
        for (label, token) in &callers {
            let a = svc
                .call(
                    Method::GET,
                    "/v1/keys?owner_type=user&owner_id=1&status=gone",
                    token.as_deref(),
                    None,
                )
                .await;
            assert_eq!(a.status, 401, "list with {label}: {}", a.text);
            let a = svc
                .call(
                    Method::POST,
                    "/v1/keys",
                    token.as_deref(),
                    Some(&json!({"owner_type": "user", "owner_id": "1", "expires_in": "never"})),
                )
                .await;
            assert_eq!(a.status, 401, "issue with {label}: {}", a.text);
        }
        // Nothing was done on their behalf.
        let row = svc
            .su
            .query_one("SELECT status, name FROM api_keys.api_key_get($1)", &[&id])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "active");
        assert_eq!(row.get::<_, Option<String>>(1), None);
    });
}

#[test]
fn every_route_answers_403_to_an_admin_key_without_its_scope() {
    run(|svc| async move {
        let (id, _) = user_key(&svc).await;
        for (method, path, scope, body) in routes() {
            let path = path.replace("{id}", &id.to_string());
            let others: Vec<&str> = ALL_SCOPES.into_iter().filter(|s| *s != scope).collect();
            let token = svc.admin(&others).await;
            let a = svc
                .call(method.clone(), &path, Some(&token), body.as_ref())
                .await;
            assert_eq!(a.status, 403, "{method} {path}: {}", a.text);
            a.assert_error(403, "insufficient_scope");
        }
        let status: String = svc
            .su
            .query_one("SELECT status FROM api_keys.api_key_get($1)", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(status, "active", "a refused revoke revoked nothing");
    });
}

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
fn issue_refusals_map_to_the_spec_statuses() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.post(
            "/v1/keys",
            &admin,
            &json!({"owner_type": "user", "owner_id": "1", "expires_in": "5_weeks"}),
        )
        .await
        .assert_error(400, "invalid_expiry");
        svc.post(
            "/v1/keys",
            &admin,
            &json!({"owner_type": "user", "owner_id": "1", "key_type": "nope"}),
        )
        .await
        .assert_error(400, "unknown_key_type");
        svc.sql("SELECT api_keys.api_key_owner_policy_set('team', max_keys => 1)")
            .await;
        let body = json!({"owner_type": "team", "owner_id": "7"});
        svc.post("/v1/keys", &admin, &body).await.assert_ok(201);
        svc.post("/v1/keys", &admin, &body)
            .await
            .assert_error(409, "key_limit_reached");
    });
}

#[test]
fn malformed_bodies_are_400_invalid_argument() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, _) = user_key(&svc).await;
        let patch = format!("/v1/keys/{id}");
        for (method, path, body) in [
            (Method::POST, "/v1/keys", "{not json"),
            (
                Method::POST,
                "/v1/keys",
                r#"{"owner_type": 1, "owner_id": "1"}"#,
            ),
            (Method::POST, "/v1/keys", r#"{"owner_type": "user"}"#),
            (
                Method::POST,
                "/v1/keys",
                r#"{"owner_type": "user", "owner_id": "1", "color": "red"}"#,
            ),
            (
                Method::POST,
                "/v1/keys",
                r#"{"owner_type": "user", "owner_id": "1", "scopes": "read"}"#,
            ),
            (
                Method::POST,
                "/v1/keys",
                r#"{"owner_type": "user", "owner_id": "1", "expires_at": "soon"}"#,
            ),
            (Method::POST, "/v1/keys", "[]"),
            (Method::PATCH, patch.as_str(), r#"{"name": 5}"#),
            (Method::PATCH, patch.as_str(), r#"{"owner_id": "2"}"#),
            (Method::POST, "/v1/verify", r#"{"token": null}"#),
            (
                Method::POST,
                "/v1/verify",
                r#"{"token": "x", "otp": "123456"}"#,
            ),
            (
                Method::POST,
                "/v1/verify",
                r#"{"token": "x", "required_scopes": [1]}"#,
            ),
        ] {
            let a = svc.call_raw(method.clone(), path, &admin, body).await;
            assert_eq!(a.status, 400, "{method} {path} {body}: {}", a.text);
            a.assert_error(400, "invalid_argument");
        }
        // No content type at all.
        let resp = svc
            .http
            .post(svc.url("/v1/keys"))
            .bearer_auth(&admin)
            .body(r#"{"owner_type":"user","owner_id":"1"}"#)
            .send()
            .await
            .unwrap();
        common::answer(resp)
            .await
            .assert_error(400, "invalid_argument");
    });
}

#[test]
fn an_oversized_body_is_refused_with_413() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let big = json!({"owner_type": "user", "owner_id": "1", "name": "x".repeat(70 * 1024)});
        svc.post("/v1/keys", &admin, &big)
            .await
            .assert_error(413, "invalid_argument");
        // Without a length (chunked), cut off while reading.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
        let resp = svc
            .http
            .post(svc.url("/v1/keys"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
            .send()
            .await
            .unwrap();
        common::answer(resp)
            .await
            .assert_error(413, "invalid_argument");
    });
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_core_stream::iter(chunks)
}

/// A minimal `Stream` so the test needs no extra crate.
mod futures_core_stream {
    pub use futures_util::stream::{iter, Stream};
}

#[test]
fn a_ten_megabyte_body_is_refused_before_it_is_sent() {
    run(|svc| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let admin = svc.admin(&ALL_SCOPES).await;
        let mut tcp = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
        let head = format!(
            "POST /v1/keys HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {admin}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{{",
            10 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains(r#""code":"invalid_argument""#), "{text}");
    });
}

#[test]
fn unknown_routes_and_ids_are_404_and_bad_ids_400() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.get("/v1/nope", &admin)
            .await
            .assert_error(404, "not_found");
        svc.call(Method::GET, "/", None, None)
            .await
            .assert_error(404, "not_found");
        let unknown = uuid::Uuid::now_v7();
        svc.get(&format!("/v1/keys/{unknown}"), &admin)
            .await
            .assert_error(404, "key_not_found");
        svc.call(
            Method::PATCH,
            &format!("/v1/keys/{unknown}"),
            Some(&admin),
            Some(&json!({"name": "x"})),
        )
        .await
        .assert_error(404, "key_not_found");
        svc.post(&format!("/v1/keys/{unknown}/revoke"), &admin, &json!({}))
            .await
            .assert_error(404, "key_not_found");
        svc.get("/v1/keys/not-a-uuid", &admin)
            .await
            .assert_error(400, "invalid_argument");
        svc.call(Method::DELETE, "/v1/keys", Some(&admin), None)
            .await
            .assert_error(405, "method_not_allowed");
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
fn a_non_revocable_key_is_403_key_not_revocable() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.sql("SELECT api_keys.api_key_type_define('pinned', 'pin', revocable => false)")
            .await;
        let k = svc
            .post(
                "/v1/keys",
                &admin,
                &json!({"owner_type": "user", "owner_id": "1", "key_type": "pinned"}),
            )
            .await;
        let id = k.assert_ok(201)["id"].as_str().unwrap().to_owned();
        svc.post(&format!("/v1/keys/{id}/revoke"), &admin, &json!({}))
            .await
            .assert_error(403, "key_not_revocable");
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
fn a_revoked_admin_key_is_refused_at_once() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.get("/v1/expiration_presets", &admin)
            .await
            .assert_ok(200);
        let a = svc
            .post(
                "/v1/owners/api_keys_admin/ops/revoke_all",
                &admin,
                &json!({}),
            )
            .await;
        assert_eq!(a.assert_ok(200)["revoked"], 1);
        svc.get("/v1/expiration_presets", &admin)
            .await
            .assert_error(401, "unauthorized");
    });
}

#[test]
fn healthz_metrics_and_openapi_need_no_key() {
    run(|svc| async move {
        let a = svc.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(a.assert_ok(200), &json!({"status": "ok"}));
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.post("/v1/verify", &admin, &json!({"token": "nope"}))
            .await
            .assert_ok(200);
        let (id, _) = user_key(&svc).await;
        svc.get(&format!("/v1/keys/{id}"), &admin)
            .await
            .assert_ok(200);
        let m = svc.http.get(svc.url("/metrics")).send().await.unwrap();
        assert_eq!(m.status(), 200);
        let text = m.text().await.unwrap();
        assert!(
            text.contains(r#"api_keys_admin_requests_total{route="/v1/keys/{id}",method="GET",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"api_keys_admin_verifications_total{code="malformed"} 1"#),
            "{text}"
        );
        assert!(text.contains("api_keys_admin_request_duration_seconds_bucket{route=\"/v1/verify\",le=\"+Inf\"} 1"), "{text}");
        assert!(
            text.contains("api_keys_admin_pool_connections{state=\"max\"} 8"),
            "{text}"
        );
        assert!(!text.contains(&id.to_string()), "no ids in labels");
        let o = svc.call(Method::GET, "/openapi.json", None, None).await;
        let doc = o.assert_ok(200);
        assert_eq!(doc["openapi"], "3.1.0");
    });
}

#[test]
fn the_service_role_is_not_a_superuser() {
    run(|svc| async move {
        let client = svc.state.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT rolsuper, pg_has_role(current_user, 'api_keys_admin', 'MEMBER') \
                   FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .unwrap();
        assert!(!row.get::<_, bool>(0));
        assert!(row.get::<_, bool>(1));
    });
}

#[test]
fn the_openapi_document_describes_every_route() {
    run(|svc| async move {
        let doc = svc.call(Method::GET, "/openapi.json", None, None).await;
        let doc = doc.assert_ok(200).clone();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut expected: Vec<(String, String)> = routes()
            .into_iter()
            .map(|(m, p, _, _)| {
                let path = p
                    .split('?')
                    .next()
                    .unwrap()
                    .replace("user/1", "{owner_type}/{owner_id}");
                (m.as_str().to_lowercase(), path)
            })
            .collect();
        for p in ["/healthz", "/metrics", "/openapi.json"] {
            expected.push(("get".to_owned(), p.to_owned()));
        }
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                documented.push((method.clone(), path.clone()));
                assert!(op["responses"].is_object(), "{method} {path}");
                let protected = !op["security"].as_array().unwrap().is_empty();
                if protected {
                    for status in ["400", "401", "403", "500", "503"] {
                        assert!(
                            op["responses"][status].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        expected.sort();
        documented.sort();
        assert_eq!(documented, expected);
        // Every $ref resolves.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/").skip(1) {
            let target = piece.split('"').next().unwrap();
            let mut node = &doc;
            for part in target.split('/') {
                node = &node[part];
            }
            assert!(!node.is_null(), "dangling $ref {target}");
        }
    });
}
