//! No token — the caller's or an issued one — in any log line, at TRACE.
//! A test binary of its own: it installs the process-wide subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{dashboard, run, ALL_SCOPES};
use reqwest::Method;
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The 32 random characters of a token: what must never be seen.
fn secret_part(token: &str) -> &str {
    let body = &token[token.len() - 38..];
    &body[..32]
}

#[test]
fn no_token_appears_in_any_log_line_at_trace_level() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::registry()
        .with(api_keys_admin::log_filter("trace"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .try_init()
        .expect("the only subscriber of this test binary");

    let mut tokens = Vec::new();
    let mut dashboard_secrets = Vec::new();
    run(|svc| {
        let tokens = &mut tokens;
        let dashboard_secrets = &mut dashboard_secrets;
        async move {
            let admin = svc.admin(&ALL_SCOPES).await;
            tokens.push(admin.clone());
            let issued = svc
                .post(
                    "/v1/keys",
                    &admin,
                    &json!({"owner_type": "user", "owner_id": "1", "scopes": ["read"]}),
                )
                .await;
            let token = issued.assert_ok(201)["token"].as_str().unwrap().to_owned();
            tokens.push(token.clone());
            svc.post("/v1/verify", &admin, &json!({"token": token}))
                .await
                .assert_ok(200);
            // Refused callers and failing requests log too.
            let foreign = svc.issue_sql("user", "2", &ALL_SCOPES).await.1;
            tokens.push(foreign.clone());
            svc.get("/v1/expiration_presets", &foreign)
                .await
                .assert_error(401, "unauthorized");
            let weak = svc.admin(&["keys:read"]).await;
            tokens.push(weak.clone());
            svc.post("/v1/verify", &weak, &json!({"token": token}))
                .await
                .assert_error(403, "insufficient_scope");
            svc.call_raw(
                Method::POST,
                "/v1/verify",
                &admin,
                &format!("{{\"token\": \"{token}\", \"x\": 1}}"),
            )
            .await
            .assert_error(400, "invalid_argument");
            // A token in the path is no route parameter: it must not be logged either.
            svc.get(&format!("/v1/keys/{token}"), &admin)
                .await
                .assert_error(400, "invalid_argument");
            svc.get(&format!("/v1/nothing/{token}"), &admin)
                .await
                .assert_error(404, "not_found");
            // The dashboard: link secret, session cookie, CSRF token and a
            // token issued through a form.
            let url = dashboard::link(&svc, &admin, "1").await;
            dashboard_secrets.push(url.rsplit('/').next().unwrap().to_owned());
            let session = dashboard::cookie_value(&dashboard::open(&url).await, "api_keys_session")
                .expect("a session");
            dashboard_secrets.push(session.clone());
            let csrf = dashboard::csrf(&svc, &session).await;
            dashboard_secrets.push(csrf.clone());
            let created = dashboard::post(
                &svc,
                "/dashboard/keys",
                Some(&session),
                &[("csrf", &csrf), ("name", "from the dashboard")],
            )
            .await;
            assert_eq!(created.status, 303, "{}", created.text);
            let issued = dashboard::cookie_value(&created, "api_keys_new_token").unwrap();
            tokens.push(issued);
            let page = dashboard::get(&svc, created.location().unwrap(), Some(&session)).await;
            assert_eq!(page.status, 200);
            dashboard::post(
                &svc,
                "/dashboard/keys",
                Some(&session),
                &[("csrf", "wrong")],
            )
            .await;
            // MFA: a secret from the API, one from the dashboard's page,
            // a wrong and a right code sent back with the page's fields.
            let api_mfa = svc.post("/v1/owners/user/2/mfa", &admin, &json!({})).await;
            dashboard_secrets.push(
                api_mfa.assert_ok(200)["secret"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            let enroll =
                dashboard::post(&svc, "/dashboard/mfa", Some(&session), &[("csrf", &csrf)]).await;
            assert_eq!(enroll.status, 200, "{}", enroll.text);
            let secret = dashboard::mfa_secret_of(&enroll.text).expect("the secret on the page");
            let uri = dashboard::field_value(&enroll.text, "otpauth_uri").expect("the URI");
            let code = dashboard::totp_now(&secret, 0);
            let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
            for otp in [&wrong, &code] {
                dashboard::post(
                    &svc,
                    "/dashboard/mfa/confirm",
                    Some(&session),
                    &[
                        ("csrf", &csrf),
                        ("secret", &secret),
                        ("otpauth_uri", &uri),
                        ("otp", otp),
                    ],
                )
                .await;
            }
            assert!(
                dashboard::get(&svc, "/dashboard/mfa", Some(&session))
                    .await
                    .text
                    .contains("data-status=\"enabled\""),
                "enabled through the dashboard"
            );
            dashboard_secrets.push(secret);
            dashboard::open(&url).await; // reused: refused
            dashboard::post(
                &svc,
                "/dashboard/logout",
                Some(&session),
                &[("csrf", &csrf)],
            )
            .await;
            dashboard::get(&svc, "/dashboard/", Some(&session)).await; // signed out
            let metrics = svc
                .http
                .get(svc.url("/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for t in tokens.iter() {
                assert!(!metrics.contains(secret_part(t)), "token in /metrics");
            }
        }
    });

    let logs = buffer.text();
    assert!(
        logs.contains(r#"route="/v1/verify""#),
        "request spans were captured:\n{logs}"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "verbose levels were captured"
    );
    for t in &tokens {
        assert!(
            !logs.contains(secret_part(t)),
            "a token appears in the logs:\n{logs}"
        );
    }
    assert!(
        logs.contains(r#"route="/dashboard/enter/{secret}""#),
        "dashboard requests were captured:\n{logs}"
    );
    assert_eq!(dashboard_secrets.len(), 5);
    for s in &dashboard_secrets {
        assert!(
            !logs.contains(s.as_str()),
            "a dashboard secret appears in the logs:\n{logs}"
        );
    }
}
