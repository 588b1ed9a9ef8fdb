//! Unauthenticated routes: health, metrics, the OpenAPI document.

use reqwest::Method;
use serde_json::{json, Value};

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

/// Every (method, path template) the SPEC routes table gives this service.
fn spec_operations() -> Vec<(String, String)> {
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
    expected.sort();
    expected
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    ops
}

/// Follows a local `$ref` (`#/components/…`).
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(target) => {
            let mut n = doc;
            for part in target.trim_start_matches("#/").split('/') {
                n = &n[part];
            }
            assert!(!n.is_null(), "dangling $ref {target}");
            n
        }
        None => node,
    }
}

#[test]
fn the_openapi_document_matches_the_served_routes() {
    run(|svc| async move {
        let doc = svc.call(Method::GET, "/openapi.json", None, None).await;
        let doc = doc.assert_ok(200).clone();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: Vec<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        assert_eq!(documented, spec_operations(), "documented = SPEC routes");
        // Every documented operation is served: no fallback answer (404
        // `not_found` for an unknown route, 405 for a wrong method).
        let (id, _) = user_key(&svc).await;
        for (method, path) in &documented {
            let path = path
                .replace("{id}", &id.to_string())
                .replace("{owner_type}", "user")
                .replace("{owner_id}", "1");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let a = svc.call(method.clone(), &path, None, None).await;
            assert_ne!(a.status, 405, "{method} {path} is served");
            assert_ne!(
                a.body["error"]["code"], "not_found",
                "{method} {path} is served: {}",
                a.text
            );
        }
        // And a route that is not documented is not served.
        for (method, path) in [
            (Method::DELETE, "/v1/keys/{id}"),
            (Method::PUT, "/v1/keys/{id}"),
            (Method::GET, "/v1/verify"),
        ] {
            let path = path.replace("{id}", &id.to_string());
            let a = svc.call(method.clone(), &path, None, None).await;
            assert_eq!(a.status, 405, "{method} {path}: {}", a.text);
        }
        svc.call(Method::GET, "/v1/owners", None, None)
            .await
            .assert_error(404, "not_found");
    });
}

/// The generated document says what the service does: the scope of each
/// route, every error answer with the SPEC body, and no unknown fields.
#[test]
fn the_openapi_document_describes_scopes_errors_and_bodies() {
    run(|svc| async move {
        let doc = svc.call(Method::GET, "/openapi.json", None, None).await;
        let doc = doc.assert_ok(200).clone();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"],
            json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
        );
        let error_schema = json!({"$ref": "#/components/schemas/ErrorBody"});
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, _) = user_key(&svc).await;
        // mfa/confirm answers 200 (enabled or not) only with a pending enrollment
        svc.sql("SELECT * FROM api_keys.api_key_mfa_enroll('user', '1')")
            .await;
        let ops = operations(&doc);
        for (method, path, scope, body) in routes() {
            let template = path
                .split('?')
                .next()
                .unwrap()
                .replace("user/1", "{owner_type}/{owner_id}");
            let (_, _, op) = ops
                .iter()
                .find(|(m, p, _)| *m == method.as_str().to_lowercase() && *p == template)
                .unwrap_or_else(|| panic!("{method} {template} documented"));
            assert_eq!(
                op["security"],
                json!([{"bearer": [scope]}]),
                "{method} {template} names its scope"
            );
            for status in ["400", "401", "403", "500", "503"] {
                let r = resolve(&doc, &op["responses"][status]);
                assert_eq!(
                    r["content"]["application/json"]["schema"], error_schema,
                    "{method} {template} {status}"
                );
            }
            let Some(body) = body else {
                assert!(op["requestBody"].is_null(), "{method} {template}");
                continue;
            };
            for status in ["408", "413"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {template} {status}"
                );
            }
            // The body schema refuses unknown fields, as the service does.
            let schema = resolve(
                &doc,
                &op["requestBody"]["content"]["application/json"]["schema"],
            );
            assert_eq!(schema["additionalProperties"], false, "{method} {template}");
            let path = path.replace("{id}", &id.to_string());
            let mut extra = body.clone();
            extra["not_a_field"] = json!(1);
            svc.call(method.clone(), &path, Some(&admin), Some(&extra))
                .await
                .assert_error(400, "invalid_argument");
            // Every documented property is accepted (as null, where it may be).
            let props = schema["properties"].as_object().unwrap();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            for name in &required {
                assert!(body.get(*name).is_some(), "{template}: {name} required");
                let mut without = body.clone();
                without.as_object_mut().unwrap().remove(*name);
                svc.call(method.clone(), &path, Some(&admin), Some(&without))
                    .await
                    .assert_error(400, "invalid_argument");
            }
            let mut all_null = body.clone();
            for name in props.keys().filter(|n| !required.contains(&n.as_str())) {
                all_null[name.as_str()] = Value::Null;
            }
            let a = svc
                .call(method.clone(), &path, Some(&admin), Some(&all_null))
                .await;
            assert!(
                a.status.is_success(),
                "{method} {template} with {all_null}: {}",
                a.text
            );
        }
    });
}

/// Routes are registered only through `utoipa_axum::routes!`, which adds
/// each to the document too: a plain axum `.route(…)` would be served
/// undocumented.
#[test]
fn every_route_is_registered_through_the_openapi_router() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !text.contains(forbidden),
                "{} registers a route with {forbidden}: use routes!",
                file.display()
            );
        }
    }
}
