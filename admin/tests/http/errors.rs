//! The SPEC error body for malformed requests and the extension's refusals.

use reqwest::Method;
use serde_json::json;

use crate::common::{self, run, ALL_SCOPES};
use crate::{routes, user_key};

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
                r#"{"token": "x", "otp": 123456}"#,
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
        assert_refused_oversized(&svc, Method::POST, "/v1/keys", &admin, &big).await;
        // Without a length (chunked), cut off while reading. The service
        // answers 413 and closes as soon as the limit is passed, so the
        // client may still be writing and see a broken pipe or a reset
        // instead of the answer: that race is retried, any other outcome
        // fails at once, and one 413 must come through.
        let mut refused = false;
        for _ in 0..10 {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
            let sent = svc
                .http
                .post(svc.url("/v1/keys"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    common::answer(resp)
                        .await
                        .assert_error(413, "invalid_argument");
                    refused = true;
                    break;
                }
                Err(e) if closed_while_sending(&e) => continue,
                Err(e) => panic!("chunked oversized body: {e:?}"),
            }
        }
        assert!(refused, "no 413 came back in 10 tries");
    });
}

/// Sends a JSON body over the limit, with its length, until the SPEC's 413
/// comes back. The service refuses it from the length, before reading it,
/// and closes the connection, which may meet the client still writing (a
/// broken pipe or a reset instead of the answer): that race is retried; any
/// other outcome fails at once.
async fn assert_refused_oversized(
    svc: &common::Service,
    method: Method,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) {
    for _ in 0..10 {
        let sent = svc
            .http
            .request(method.clone(), svc.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                common::answer(resp)
                    .await
                    .assert_error(413, "invalid_argument");
                return;
            }
            Err(e) if closed_while_sending(&e) => continue,
            Err(e) => panic!("{method} {path} with an oversized body: {e:?}"),
        }
    }
    panic!("{method} {path}: no 413 came back in 10 tries");
}

/// Whether a request failed because the server closed the connection while
/// the body was still being written (EPIPE or a reset).
/// (hyper's "connection closed before message completed" is the same race
/// seen from the reading side.)
fn closed_while_sending(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            );
        }
        if err
            .to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        source = err.source();
    }
    false
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
fn every_route_with_a_body_refuses_an_oversized_one_with_413() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (id, _) = user_key(&svc).await;
        for (method, path, _, body) in routes() {
            let Some(mut body) = body else { continue };
            let path = path.replace("{id}", &id.to_string());
            body["name"] = json!("x".repeat(70 * 1024));
            assert_refused_oversized(&svc, method.clone(), &path, &admin, &body).await;
        }
        // Nothing was changed by the refused PATCH.
        let name: Option<String> = svc
            .su
            .query_one("SELECT name FROM api_keys.api_key_get($1)", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(name, None);
    });
}

#[test]
fn unknown_query_parameters_are_400() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.get("/v1/owners/user/1/available_scopes?colour=red", &admin)
            .await
            .assert_error(400, "invalid_argument");
        svc.get("/v1/owners/user/1/available_scopes?key_type=nope", &admin)
            .await
            .assert_error(400, "unknown_key_type");
    });
}

/// Sends `head` and `parts` of a body over a raw connection, sleeping
/// `gap` before each part, and returns the whole answer's text.
async fn send_slowly(
    addr: std::net::SocketAddr,
    head: &str,
    parts: &[&str],
    gap: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    for part in parts {
        tokio::time::sleep(gap).await;
        // The service may already have answered and closed: then the answer
        // is what counts.
        if tcp.write_all(part.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_body_that_stops_arriving_is_408_and_one_that_keeps_coming_is_served() {
    use std::time::Duration;
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let state = api_keys_admin::AppState::from_config(svc.role_config.clone(), 4, None)
            .unwrap()
            .with_body_timeout(Duration::from_millis(400));
        let quick = svc.with_state(state).await;
        let body = r#"{"owner_type": "user", "owner_id": "slow-1", "name": "late"}"#;
        let head = |len: usize| {
            format!(
                "POST /v1/keys HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {admin}\r\n\
                 content-type: application/json\r\ncontent-length: {len}\r\n\r\n"
            )
        };
        // Half the body, then silence longer than the timeout: 408, SPEC body.
        let (first, rest) = body.split_at(20);
        let text = send_slowly(
            quick.addr,
            &head(body.len()),
            &[first, rest],
            Duration::ZERO,
        )
        .await;
        assert!(
            text.starts_with("HTTP/1.1 201"),
            "whole body at once: {text}"
        );
        let text = send_slowly(
            quick.addr,
            &format!("{}{first}", head(body.len())),
            &[rest],
            Duration::from_millis(1500),
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains(r#""code":"invalid_argument""#), "{text}");
        // Pieces that each come within the timeout: served, whatever the total.
        let pieces: Vec<String> = body
            .chars()
            .collect::<Vec<_>>()
            .chunks(8)
            .map(|c| c.iter().collect())
            .collect();
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let text = send_slowly(
            quick.addr,
            &head(body.len()),
            &pieces,
            Duration::from_millis(100),
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 201"), "{text}");
        // Only the keys of the bodies that arrived were issued.
        let n: i64 = svc
            .su
            .query_one(
                "SELECT count(*) FROM api_keys.keys WHERE owner_id = 'slow-1'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 2);
    });
}
