//! Unauthenticated routes: health, metrics, the OpenAPI document.

use reqwest::Method;
use serde_json::json;

use crate::common::{run, ALL_SCOPES};
use crate::{routes, user_key};

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
