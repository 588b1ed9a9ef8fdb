//! The dashboard over HTTP (SPEC §9): the session hand-off, two owners kept
//! apart, CSRF, security headers, cookie flags, expiry and revocation.

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::dashboard::{
    cookie_value, create_link, csrf, get, link, mfa_status, open, post, sign_in, Page,
};
use crate::common::{run, Service, ALL_SCOPES};

const CSP_PARTS: [&str; 2] = ["default-src 'self'", "frame-ancestors 'none'"];

#[track_caller]
fn assert_secured(page: &Page, what: &str) {
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {what}"))
        .to_str()
        .unwrap();
    for part in CSP_PARTS {
        assert!(csp.contains(part), "{what}: CSP {csp} lacks {part}");
    }
    assert_eq!(page.headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(page.headers["referrer-policy"], "no-referrer", "{what}");
}

async fn scopes_setup(svc: &Service) {
    svc.sql(
        "SELECT api_keys.api_key_scope_define('read');
         SELECT api_keys.api_key_scope_define('write');
         SELECT api_keys.api_key_scope_define('dashboard', exclusive => true);",
    )
    .await;
}

async fn key_count(svc: &Service, owner_id: &str) -> i64 {
    svc.su
        .query_one(
            "SELECT count(*) FROM api_keys.api_key_list('user', $1) WHERE status = 'active'",
            &[&owner_id],
        )
        .await
        .unwrap()
        .get(0)
}

async fn name_of(svc: &Service, id: uuid::Uuid) -> Option<String> {
    svc.su
        .query_one("SELECT name FROM api_keys.api_key_get($1)", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[test]
fn a_link_is_exchanged_once_for_a_session_cookie() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let made = create_link(&svc, &admin, "1", json!({})).await;
        let url = made["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/dashboard/enter/", svc.base)),
            "{url}"
        );
        let expires: chrono::DateTime<chrono::Utc> =
            made["expires_at"].as_str().unwrap().parse().unwrap();
        let ttl = (expires - chrono::Utc::now()).num_seconds();
        assert!((290..=301).contains(&ttl), "default ttl 300 s, got {ttl}");
        // a HEAD (a link checker) does not spend it
        let head = crate::common::dashboard::client()
            .head(url)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert!(head.headers().get("set-cookie").is_none());
        let first = open(url).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_secured(&first, "the sign-in page");
        let session = cookie_value(&first, "api_keys_session").expect("a cookie");
        let list = get(&svc, "/dashboard/", Some(&session)).await;
        assert_eq!(list.status, 200);
        assert!(list.text.contains("Your API keys"));
        // the same link again: refused, and no second cookie
        let again = open(url).await;
        assert_eq!(again.status, 403, "{}", again.text);
        assert!(again.text.contains("already used"));
        assert!(cookie_value(&again, "api_keys_session").is_none());
        // a guessed or malformed link is refused the same way
        for bad in ["x", "%00", &"A".repeat(43), &"A".repeat(5000)] {
            let p = open(&svc.url(&format!("/dashboard/enter/{bad}"))).await;
            assert_eq!(p.status, 403, "{bad}: {}", p.text);
        }
    });
}

#[test]
fn an_expired_link_is_refused() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let made = create_link(&svc, &admin, "1", json!({"ttl_seconds": 1})).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let p = open(made["url"].as_str().unwrap()).await;
        assert_eq!(p.status, 403, "{}", p.text);
        assert!(cookie_value(&p, "api_keys_session").is_none());
    });
}

#[test]
fn the_session_cookie_is_httponly_strict_and_secure_off_loopback() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let url = link(&svc, &admin, "1").await;
        let p = open(&url).await;
        let c = p
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("api_keys_session="))
            .unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/dashboard",
            "Max-Age=43200",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!c.contains("Secure"), "plain http on loopback: {c}");
        // reached by a public name (behind a TLS proxy): Secure
        let url = link(&svc, &admin, "1").await;
        let resp = crate::common::dashboard::client()
            .get(&url)
            .header("host", "keys.example.com")
            .send()
            .await
            .unwrap();
        let c = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(c.contains("; Secure"), "{c}");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    });
}

#[test]
fn sessions_are_stored_hashed_and_survive_a_restart() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let url = link(&svc, &admin, "1").await;
        let link_secret = url.rsplit('/').next().unwrap().to_owned();
        let p = open(&url).await;
        let session = cookie_value(&p, "api_keys_session").unwrap();
        let rows = svc
            .su
            .query(
                "SELECT to_jsonb(d)::text, d.session_hash, d.link_hash FROM api_keys.dashboard_sessions d",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let text: String = rows[0].get(0);
        assert!(
            !text.contains(&session) && !text.contains(&link_secret),
            "{text}"
        );
        let session_hash: Vec<u8> = rows[0].get(1);
        let link_hash: Vec<u8> = rows[0].get(2);
        assert_eq!(session_hash, Sha256::digest(session.as_bytes()).to_vec());
        assert_eq!(link_hash, Sha256::digest(link_secret.as_bytes()).to_vec());
        // another service process (new pool, nothing in memory) knows it
        let restarted = svc.sibling(svc.role_config.clone(), None).await;
        let page = get(&restarted, "/dashboard/", Some(&session)).await;
        assert_eq!(page.status, 200, "{}", page.text);
    });
}

#[test]
fn an_idle_or_too_old_session_is_signed_out() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let idle = sign_in(&svc, &admin, "1").await;
        let old = sign_in(&svc, &admin, "1").await;
        let digest = |s: &str| Sha256::digest(s.as_bytes()).to_vec();
        svc.su
            .execute(
                "UPDATE api_keys.dashboard_sessions SET last_seen_at = now() - interval '61 minutes', \
                 started_at = now() - interval '2 hours' WHERE session_hash = $1",
                &[&digest(&idle)],
            )
            .await
            .unwrap();
        // busy all along, but started 12 h ago
        svc.su
            .execute(
                "UPDATE api_keys.dashboard_sessions SET started_at = now() - interval '12 hours 1 second', \
                 last_seen_at = now() - interval '1 minute' WHERE session_hash = $1",
                &[&digest(&old)],
            )
            .await
            .unwrap();
        for s in [&idle, &old] {
            let p = get(&svc, "/dashboard/", Some(s)).await;
            assert_eq!(p.status, 401, "{}", p.text);
            assert!(p.text.contains("session has ended"));
        }
        // 59 idle minutes are fine, and the request keeps it alive
        let live = sign_in(&svc, &admin, "1").await;
        svc.su
            .execute(
                "UPDATE api_keys.dashboard_sessions SET last_seen_at = now() - interval '59 minutes', \
                 started_at = now() - interval '11 hours' WHERE session_hash = $1",
                &[&digest(&live)],
            )
            .await
            .unwrap();
        assert_eq!(get(&svc, "/dashboard/", Some(&live)).await.status, 200);
        let fresh: bool = svc
            .su
            .query_one(
                "SELECT last_seen_at > now() - interval '1 minute' FROM api_keys.dashboard_sessions WHERE session_hash = $1",
                &[&digest(&live)],
            )
            .await
            .unwrap()
            .get(0);
        assert!(fresh);
    });
}

#[test]
fn hostile_cookies_are_signed_out_not_errors() {
    run(|svc| async move {
        let long = "A".repeat(8000);
        for bad in ["", "x", "AAAA", &"A".repeat(43), &long, "a;b", "%00%0d%0a"] {
            let p = get(&svc, "/dashboard/", Some(bad)).await;
            assert!(
                p.status == 401 || p.status == 431 || p.status == 400,
                "{bad:?}: {} {}",
                p.status,
                p.text
            );
            let p = get(&svc, "/dashboard/keys/new", Some(bad)).await;
            assert_ne!(p.status.as_u16(), 500);
        }
        // no cookie at all
        assert_eq!(get(&svc, "/dashboard/", None).await.status, 401);
    });
}

#[test]
fn logout_ends_the_session() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let s = sign_in(&svc, &admin, "1").await;
        let token = csrf(&svc, &s).await;
        let p = post(&svc, "/dashboard/logout", Some(&s), &[("csrf", &token)]).await;
        assert_eq!(p.status, 200, "{}", p.text);
        assert!(p.text.contains("signed out"));
        assert!(p
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("api_keys_session=;") && c.contains("Max-Age=0")));
        assert_eq!(get(&svc, "/dashboard/", Some(&s)).await.status, 401);
    });
}

#[test]
fn reset_revokes_the_owners_keys_and_ends_all_its_sessions() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        svc.sql("SELECT api_keys.api_key_type_define('pub', 'pk', '{read}', revocable => false, public => true)").await;
        for _ in 0..3 {
            svc.issue_sql("user", "1", &["read"]).await;
        }
        svc.su
            .execute(
                "SELECT api_keys.api_key_issue('user', '1', key_type => 'pub', scopes => '{read}')",
                &[],
            )
            .await
            .unwrap();
        let (b_key, _) = svc.issue_sql("user", "2", &["read"]).await;
        let a1 = sign_in(&svc, &admin, "1").await;
        let a2 = sign_in(&svc, &admin, "1").await;
        let b = sign_in(&svc, &admin, "2").await;
        let unused_link = link(&svc, &admin, "1").await;
        let confirm = get(&svc, "/dashboard/reset", Some(&a1)).await;
        assert_eq!(confirm.status, 200);
        let p = post(
            &svc,
            "/dashboard/reset",
            Some(&a1),
            &[("csrf", &confirm.csrf())],
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.text);
        assert!(p.text.contains("3 keys were revoked"), "{}", p.text);
        // only the non-revocable publishable key stays active
        assert_eq!(key_count(&svc, "1").await, 1);
        for s in [&a1, &a2] {
            assert_eq!(get(&svc, "/dashboard/", Some(s)).await.status, 401);
        }
        assert_eq!(open(&unused_link).await.status, 403, "links end too");
        assert_eq!(get(&svc, "/dashboard/", Some(&b)).await.status, 200);
        let b_info = svc.get(&format!("/v1/keys/{b_key}"), &admin).await;
        assert_eq!(b_info.assert_ok(200)["status"], "active");
        // the API's revoke_all ends sessions too
        let a3 = sign_in(&svc, &admin, "1").await;
        svc.post("/v1/owners/user/1/revoke_all", &admin, &json!({}))
            .await
            .assert_ok(200);
        assert_eq!(get(&svc, "/dashboard/", Some(&a3)).await.status, 401);
    });
}

/// A session of user/1 addressing user/2's key: 404 on every route, B's
/// data nowhere in the answer, B's key unchanged.
#[test]
fn a_session_addressing_another_owners_key_gets_404() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        scopes_setup(&svc).await;
        let (b_key, b_token) = svc.issue_sql("user", "2", &["read"]).await;
        svc.su
            .execute(
                "SELECT api_keys.api_key_update($1, name => 'bob-secret-name')",
                &[&b_key],
            )
            .await
            .unwrap();
        let b_masked: String = svc
            .su
            .query_one(
                "SELECT masked_token FROM api_keys.api_key_get($1)",
                &[&b_key],
            )
            .await
            .unwrap()
            .get(0);
        let a = sign_in(&svc, &admin, "1").await;
        let token = csrf(&svc, &a).await;
        let id = b_key.to_string();
        let mut answers = Vec::new();
        for path in ["edit", "created", "revoke", "rotate"] {
            answers.push((
                format!("GET {path}"),
                get(&svc, &format!("/dashboard/keys/{id}/{path}"), Some(&a)).await,
            ));
        }
        answers.push((
            "POST update".to_owned(),
            post(
                &svc,
                &format!("/dashboard/keys/{id}"),
                Some(&a),
                &[("csrf", &token), ("name", "pwned"), ("scopes", "write")],
            )
            .await,
        ));
        answers.push((
            "POST rotate".to_owned(),
            post(
                &svc,
                &format!("/dashboard/keys/{id}/rotate"),
                Some(&a),
                &[("csrf", &token), ("grace_seconds", "0")],
            )
            .await,
        ));
        answers.push((
            "POST revoke".to_owned(),
            post(
                &svc,
                &format!("/dashboard/keys/{id}/revoke"),
                Some(&a),
                &[("csrf", &token)],
            )
            .await,
        ));
        for (what, p) in &answers {
            assert_eq!(p.status, 404, "{what}: {}", p.text);
            assert_secured(p, what);
            for secret in [&b_masked, "bob-secret-name", &b_token] {
                assert!(!p.text.contains(secret), "{what} shows B's data");
            }
        }
        // unknown and malformed ids look the same
        for bad in [
            uuid::Uuid::new_v4().to_string(),
            "not-a-uuid".to_owned(),
            "%27%3B--".to_owned(),
        ] {
            let p = get(&svc, &format!("/dashboard/keys/{bad}/edit"), Some(&a)).await;
            assert_eq!(p.status, 404, "{bad}");
        }
        assert_eq!(
            name_of(&svc, b_key).await.as_deref(),
            Some("bob-secret-name")
        );
        let list = get(&svc, "/dashboard/", Some(&a)).await;
        assert!(!list.text.contains(&b_masked) && !list.text.contains("bob-secret-name"));
        let v = svc
            .post(
                "/v1/verify",
                &admin,
                &json!({"token": b_token, "required_scopes": ["read"]}),
            )
            .await;
        assert_eq!(v.assert_ok(200)["code"], "valid");
    });
}

/// Every POST route, without a CSRF token, with another session's, or a
/// mangled one: 403 and nothing changed.
#[test]
fn every_dashboard_post_without_the_sessions_csrf_token_is_403() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        scopes_setup(&svc).await;
        svc.sql("SELECT api_keys.api_key_type_define('pub', 'pk', '{read}', revocable => false, public => true)").await;
        let (key, _) = svc.issue_sql("user", "1", &["read"]).await;
        let a = sign_in(&svc, &admin, "1").await;
        let other = sign_in(&svc, &admin, "1").await;
        let mine = csrf(&svc, &a).await;
        let theirs = csrf(&svc, &other).await;
        assert_ne!(mine, theirs);
        // The last digit changed (to 0, or to 1 when it is 0: "…0" + "0" would be
        // the token itself, one run in sixteen).
        let last = if mine.ends_with('0') { '1' } else { '0' };
        let mangled = format!("{}{last}", &mine[..mine.len() - 1]);
        assert_ne!(mangled, mine);
        let id = key.to_string();
        let routes: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "/dashboard/keys".to_owned(),
                vec![
                    ("name", "x"),
                    ("expires_in", "no_expiration"),
                    ("scopes", "read"),
                ],
            ),
            (
                "/dashboard/keys/publishable".to_owned(),
                vec![("key_type", "pub")],
            ),
            (
                format!("/dashboard/keys/{id}"),
                vec![("name", "renamed"), ("scopes", "write")],
            ),
            (
                format!("/dashboard/keys/{id}/rotate"),
                vec![("grace_seconds", "0")],
            ),
            (format!("/dashboard/keys/{id}/revoke"), vec![]),
            ("/dashboard/mfa".to_owned(), vec![]),
            ("/dashboard/mfa/confirm".to_owned(), vec![("otp", "123456")]),
            ("/dashboard/mfa/disable".to_owned(), vec![]),
            ("/dashboard/reset".to_owned(), vec![]),
            ("/dashboard/logout".to_owned(), vec![]),
        ];
        for (path, fields) in &routes {
            for csrf_value in [
                None,
                Some(theirs.as_str()),
                Some(mangled.as_str()),
                Some(""),
                Some("x"),
            ] {
                let mut f = fields.clone();
                if let Some(c) = csrf_value {
                    f.push(("csrf", c));
                }
                let p = post(&svc, path, Some(&a), &f).await;
                assert_eq!(p.status, 403, "{path} with {csrf_value:?}: {}", p.text);
                assert_secured(&p, path);
            }
        }
        assert_eq!(key_count(&svc, "1").await, 1, "nothing issued or revoked");
        assert_eq!(name_of(&svc, key).await, None, "nothing renamed");
        assert_eq!(
            mfa_status(&svc, "1").await,
            "none",
            "no MFA enrollment started"
        );
        assert_eq!(
            get(&svc, "/dashboard/", Some(&a)).await.status,
            200,
            "still signed in"
        );
        // with the right token each one works (the last two end the session)
        let p = post(
            &svc,
            &format!("/dashboard/keys/{id}"),
            Some(&a),
            &[("csrf", &mine), ("name", "renamed"), ("scopes", "write")],
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.text);
        assert_eq!(name_of(&svc, key).await.as_deref(), Some("renamed"));
    });
}

#[test]
fn every_dashboard_page_sends_the_csp_and_refuses_framing() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let (key, _) = svc.issue_sql("user", "1", &["read"]).await;
        let s = sign_in(&svc, &admin, "1").await;
        let id = key.to_string();
        let pages = [
            "/dashboard/".to_owned(),
            "/dashboard/keys/new".to_owned(),
            format!("/dashboard/keys/{id}/edit"),
            format!("/dashboard/keys/{id}/created"),
            format!("/dashboard/keys/{id}/revoke"),
            format!("/dashboard/keys/{id}/rotate"),
            "/dashboard/reset".to_owned(),
            "/dashboard/mfa".to_owned(),
            "/dashboard/mfa/disable".to_owned(),
            "/dashboard/assets/dashboard.css".to_owned(),
            "/dashboard/assets/theme.css".to_owned(),
            "/dashboard/assets/copy.js".to_owned(),
            "/dashboard/no/such/page".to_owned(),
            "/dashboard/enter/nope".to_owned(),
            "/dashboard".to_owned(),
        ];
        for path in &pages {
            let p = get(&svc, path, Some(&s)).await;
            assert!(p.status.as_u16() < 500, "{path}: {}", p.status);
            assert_secured(&p, path);
        }
        // signed out pages too
        let p = get(&svc, "/dashboard/", None).await;
        assert_eq!(p.status, 401);
        assert_secured(&p, "signed out");
        let css = get(&svc, "/dashboard/assets/dashboard.css", None).await;
        assert!(css.text.contains("--api-keys-primary-color"));
        assert!(css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css"));
        // no page refers to anything outside the service
        let list = get(&svc, "/dashboard/", Some(&s)).await;
        for outside in [
            "http://", "https://", "//cdn", "<style", "style=", "onclick", "<script>",
        ] {
            assert!(!list.text.contains(outside), "{outside} in the list page");
        }
    });
}

#[test]
fn a_refused_form_comes_back_with_the_reason_beside_the_field_and_the_input_kept() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        scopes_setup(&svc).await;
        let s = sign_in(&svc, &admin, "1").await;
        let token = csrf(&svc, &s).await;
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&s),
            &[
                ("csrf", &token),
                ("name", "keep <me>"),
                ("expires_in", "30_days"),
                ("scopes", "dashboard"),
                ("scopes", "read"),
            ],
        )
        .await;
        assert_eq!(p.status, 400, "{}", p.text);
        assert!(p.text.contains(r#"id="scopes-error""#), "{}", p.text);
        assert!(p.text.contains("must be the only one"), "{}", p.text);
        assert!(
            p.text.contains(r#"value="keep &lt;me&gt;""#),
            "name kept: {}",
            p.text
        );
        assert!(
            p.text.contains(r#"value="30_days" selected"#),
            "expiry kept"
        );
        assert!(
            p.text.contains(r#"value="dashboard" checked"#)
                && p.text.contains(r#"value="read" checked"#),
            "scopes kept"
        );
        assert_eq!(key_count(&svc, "1").await, 0);
        // name_required under the owner policy: beside the name
        svc.sql(
            "SELECT api_keys.api_key_owner_policy_set('user', max_keys => 1, require_name => true)",
        )
        .await;
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&s),
            &[("csrf", &token), ("name", ""), ("scopes", "read")],
        )
        .await;
        assert_eq!(p.status, 400);
        assert!(
            p.text.contains(r#"id="name-error""#) && p.text.contains("A name is required"),
            "{}",
            p.text
        );
        // a limit: on top of the form
        let ok = post(
            &svc,
            "/dashboard/keys",
            Some(&s),
            &[("csrf", &token), ("name", "one"), ("scopes", "read")],
        )
        .await;
        assert_eq!(ok.status, 303);
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&s),
            &[("csrf", &token), ("name", "two"), ("scopes", "read")],
        )
        .await;
        assert_eq!(p.status, 409, "{}", p.text);
        assert!(
            p.text.contains(r#"id="form-error""#)
                && p.text.contains("maximum number of active keys"),
            "{}",
            p.text
        );
        assert!(p.text.contains(r#"value="two""#));
    });
}

#[test]
fn dashboard_sessions_refuses_bad_requests() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let before: i64 = svc
            .su
            .query_one("SELECT count(*) FROM api_keys.dashboard_sessions", &[])
            .await
            .unwrap()
            .get(0);
        let bad = [
            json!({"owner_type": "user"}),
            json!({"owner_type": "user", "owner_id": ""}),
            json!({"owner_type": "user", "owner_id": null}),
            json!({"owner_type": "user", "owner_id": "x".repeat(256)}),
            json!({"owner_type": "user", "owner_id": "a\u{0000}b"}),
            json!({"owner_type": "user", "owner_id": "1", "ttl_seconds": 0}),
            json!({"owner_type": "user", "owner_id": "1", "ttl_seconds": -5}),
            json!({"owner_type": "user", "owner_id": "1", "ttl_seconds": 3601}),
            json!({"owner_type": "user", "owner_id": "1", "ttl_seconds": 99999999999i64}),
            json!({"owner_type": "user", "owner_id": "1", "ttl_seconds": "300"}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": "javascript:alert(1)"}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": "data:text/html,x"}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": "//evil.example"}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": format!("https://e.com/{}", "a".repeat(3000))}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": "https://e.com", "return_text": "a\u{001b}[31mb"}),
            json!({"owner_type": "user", "owner_id": "1", "return_url": "https://e.com", "return_text": "x".repeat(101)}),
            json!({"owner_type": "user", "owner_id": "1", "return_text": "no url"}),
            json!({"owner_type": "user", "owner_id": "1", "extra": 1}),
            json!([]),
        ];
        for body in &bad {
            svc.post("/v1/dashboard_sessions", &admin, body)
                .await
                .assert_error(400, "invalid_argument");
        }
        svc.call_raw(Method::POST, "/v1/dashboard_sessions", &admin, "{not json")
            .await
            .assert_error(400, "invalid_argument");
        let ok = json!({"owner_type": "user", "owner_id": "1"});
        svc.call(Method::POST, "/v1/dashboard_sessions", None, Some(&ok))
            .await
            .assert_error(401, "unauthorized");
        let reader = svc.admin(&["keys:read"]).await;
        svc.post("/v1/dashboard_sessions", &reader, &ok)
            .await
            .assert_error(403, "insufficient_scope");
        let user_key = svc.issue_sql("user", "1", &ALL_SCOPES).await.1;
        svc.post("/v1/dashboard_sessions", &user_key, &ok)
            .await
            .assert_error(401, "unauthorized");
        let after: i64 = svc
            .su
            .query_one("SELECT count(*) FROM api_keys.dashboard_sessions", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(before, after, "nothing stored by a refused request");
        // accepted: max ttl, a return link shown escaped
        let made = create_link(&svc, &admin, "1", json!({"ttl_seconds": 3600, "return_url": "https://example.com/account?a=1&b=\"2\"", "return_text": "Back to <Acme>"})).await;
        let p = open(made["url"].as_str().unwrap()).await;
        let s = cookie_value(&p, "api_keys_session").unwrap();
        let list = get(&svc, "/dashboard/", Some(&s)).await;
        assert!(list.text.contains("Back to &lt;Acme&gt;"), "{}", list.text);
        assert!(
            list.text
                .contains(r#"href="https://example.com/account?a=1&amp;b=&quot;2&quot;""#),
            "{}",
            list.text
        );
    });
}

#[test]
fn hostile_form_input_is_refused_in_words_and_creates_nothing() {
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        scopes_setup(&svc).await;
        let s = sign_in(&svc, &admin, "1").await;
        let token = csrf(&svc, &s).await;
        let long = "n".repeat(300);
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![("name", "a\u{0000}b"), ("scopes", "read")],
            vec![("name", "a\u{001b}[31mb"), ("scopes", "read")],
            vec![("name", &long), ("scopes", "read")],
            vec![("name", "x"), ("scopes", "nope")],
            vec![("name", "x"), ("scopes", "re\u{0000}ad")],
            vec![("name", "x"), ("expires_in", "forever")],
            vec![("name", "x"), ("expires_in", "0_days")],
            vec![("name", "x"), ("key_type", "nope")],
            vec![("name", "x"), ("environment", "nope")],
        ];
        for fields in &cases {
            let mut f = fields.clone();
            f.push(("csrf", &token));
            let p = post(&svc, "/dashboard/keys", Some(&s), &f).await;
            assert!(
                p.status.is_client_error(),
                "{fields:?}: {} {}",
                p.status,
                p.text
            );
            assert_secured(&p, "a refused form");
            assert!(
                p.text.contains("field-error") || p.text.contains("<h1>"),
                "{fields:?}: {}",
                p.text
            );
        }
        // a publishable key of a type that is not public, or of no type
        for key_type in ["", "nope"] {
            let p = post(
                &svc,
                "/dashboard/keys/publishable",
                Some(&s),
                &[("csrf", &token), ("key_type", key_type)],
            )
            .await;
            assert!(
                p.status.is_client_error(),
                "{key_type:?}: {} {}",
                p.status,
                p.text
            );
        }
        // an edit with hostile input
        let (id, _) = svc.issue_sql("user", "1", &["read"]).await;
        let p = post(
            &svc,
            &format!("/dashboard/keys/{id}"),
            Some(&s),
            &[("csrf", &token), ("name", "a\u{0007}"), ("scopes", "read")],
        )
        .await;
        assert_eq!(p.status, 400, "{}", p.text);
        assert!(p.text.contains(r#"id="name-error""#), "{}", p.text);
        // rotate with a bad grace: refused, nothing issued
        for grace in ["abc", "-1", "1e9", "99999999", ""] {
            let p = post(
                &svc,
                &format!("/dashboard/keys/{id}/rotate"),
                Some(&s),
                &[("csrf", &token), ("grace_seconds", grace)],
            )
            .await;
            assert_eq!(p.status, 400, "{grace:?}: {}", p.text);
        }
        // a body over the limit
        let big = "x".repeat(70 * 1024);
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&s),
            &[("csrf", &token), ("name", &big)],
        )
        .await;
        assert_eq!(p.status, 413);
        assert_eq!(key_count(&svc, "1").await, 1, "only the key issued in SQL");
        assert_eq!(name_of(&svc, id).await, None);
    });
}

/// The MFA page: the enroll answer carries the secret (as text and as an
/// inline SVG QR code, nothing from outside), is never cached and keeps
/// the CSP; confirm/disable act on the session's owner only; hostile
/// codes and hostile fields sent back are refused in words or shown as
/// text, never a 500.
#[test]
fn the_mfa_page_enrolls_the_sessions_owner_only_and_is_never_cached() {
    use crate::common::dashboard::{field_value, mfa_secret_of, totp_now};
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let a = sign_in(&svc, &admin, "1").await;
        let b = sign_in(&svc, &admin, "2").await;
        let token_a = csrf(&svc, &a).await;
        let token_b = csrf(&svc, &b).await;
        let status = get(&svc, "/dashboard/mfa", Some(&a)).await;
        assert_eq!(status.status, 200);
        assert!(
            status.text.contains(r#"data-status="none""#),
            "{}",
            status.text
        );

        let page = post(&svc, "/dashboard/mfa", Some(&a), &[("csrf", &token_a)]).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_secured(&page, "the enroll answer");
        assert_eq!(page.headers["cache-control"], "no-store");
        let secret = mfa_secret_of(&page.text).expect("the secret as text");
        let uri = field_value(&page.text, "otpauth_uri").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/") && uri.contains(&secret),
            "{uri}"
        );
        assert!(
            page.text.contains(r#"<svg class="qr""#),
            "an inline SVG QR code"
        );
        for outside in ["http://", "https://", "data:", "<img", "style=", "<script>"] {
            assert!(!page.text.contains(outside), "{outside} in the MFA page");
        }
        assert_eq!(mfa_status(&svc, "1").await, "pending");
        assert_eq!(
            mfa_status(&svc, "2").await,
            "none",
            "the other owner is untouched"
        );

        // owner 2's session cannot confirm (or see) owner 1's enrollment
        let code = totp_now(&secret, 0);
        let p = post(
            &svc,
            "/dashboard/mfa/confirm",
            Some(&b),
            &[
                ("csrf", &token_b),
                ("otp", &code),
                ("secret", &secret),
                ("otpauth_uri", &uri),
            ],
        )
        .await;
        assert_eq!(p.status, 400, "{}", p.text);
        assert!(p.text.contains("no pending MFA enrollment"), "{}", p.text);
        assert!(
            !p.text.contains(&secret),
            "another owner's secret is not echoed as theirs"
        );
        assert_eq!(mfa_status(&svc, "2").await, "none");
        assert_eq!(mfa_status(&svc, "1").await, "pending");
        // owner 1's CSRF token does not work with owner 2's session
        let p = post(&svc, "/dashboard/mfa", Some(&b), &[("csrf", &token_a)]).await;
        assert_eq!(p.status, 403);

        // hostile codes: refused in words, the page kept, no 500
        let big = "9".repeat(100_000);
        for otp in [
            "",
            "12345",
            "1234567",
            "abcdef",
            "12 456",
            "\u{0}12345",
            "١٢٣٤٥٦",
            big.as_str(),
        ] {
            let p = post(
                &svc,
                "/dashboard/mfa/confirm",
                Some(&a),
                &[
                    ("csrf", &token_a),
                    ("otp", otp),
                    ("secret", &secret),
                    ("otpauth_uri", &uri),
                ],
            )
            .await;
            assert!(
                p.status == 400 || p.status == 413,
                "{:?}: {} {}",
                otp.chars().take(10).collect::<String>(),
                p.status,
                p.text
            );
            if p.status == 400 {
                assert_secured(&p, "a refused code");
                assert!(
                    p.text.contains(r#"id="otp-error""#) || p.text.contains("field-error"),
                    "{}",
                    p.text
                );
            }
        }
        assert_eq!(
            mfa_status(&svc, "1").await,
            "pending",
            "no bad code enabled it"
        );
        // hostile fields sent back are not shown as they came
        let p = post(
            &svc,
            "/dashboard/mfa/confirm",
            Some(&a),
            &[
                ("csrf", &token_a),
                ("otp", "000000"),
                ("secret", "<script>alert(1)</script>"),
                ("otpauth_uri", "javascript:alert(2)"),
            ],
        )
        .await;
        assert!(p.status.is_client_error(), "{}", p.status);
        assert!(
            !p.text.contains("<script>alert") && !p.text.contains("javascript:"),
            "{}",
            p.text
        );

        // the right code enables owner 1 only; enrolling again is refused in words
        let p = post(
            &svc,
            "/dashboard/mfa/confirm",
            Some(&a),
            &[
                ("csrf", &token_a),
                ("otp", &totp_now(&secret, 1)),
                ("secret", &secret),
                ("otpauth_uri", &uri),
            ],
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.text);
        assert_eq!(p.location(), Some("/dashboard/mfa?notice=mfa_enabled"));
        assert_eq!(mfa_status(&svc, "1").await, "enabled");
        assert_eq!(mfa_status(&svc, "2").await, "none");
        let again = post(&svc, "/dashboard/mfa", Some(&a), &[("csrf", &token_a)]).await;
        assert_eq!(again.status, 400, "{}", again.text);
        assert!(again.text.contains("already enabled"), "{}", again.text);
        assert!(mfa_secret_of(&again.text).is_none(), "no new secret");

        // the MFA toggle: offered to owner 1 only; a forged toggle of owner 2 is refused beside the field
        let new_a = get(&svc, "/dashboard/keys/new", Some(&a)).await;
        assert!(new_a.text.contains(r#"id="mfa""#));
        let new_b = get(&svc, "/dashboard/keys/new", Some(&b)).await;
        assert!(!new_b.text.contains(r#"id="mfa""#));
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&b),
            &[("csrf", &token_b), ("name", "forged"), ("mfa", "on")],
        )
        .await;
        assert_eq!(p.status, 400, "{}", p.text);
        assert!(p.text.contains(r#"id="mfa-error""#), "{}", p.text);
        assert!(
            p.text.contains("Turn on two-factor authentication"),
            "{}",
            p.text
        );
        assert!(p.text.contains(r#"value="forged""#), "the input is kept");
        assert_eq!(key_count(&svc, "2").await, 0);
        let p = post(
            &svc,
            "/dashboard/keys",
            Some(&a),
            &[("csrf", &token_a), ("name", "with mfa"), ("mfa", "on")],
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.text);
        let flagged: bool = svc
            .su
            .query_one(
                "SELECT mfa FROM api_keys.api_key_list('user', '1') WHERE name = 'with mfa'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(flagged);

        // disable: owner 2 disabling touches nothing of owner 1
        let p = post(
            &svc,
            "/dashboard/mfa/disable",
            Some(&b),
            &[("csrf", &token_b)],
        )
        .await;
        assert_eq!(p.status, 303);
        assert_eq!(mfa_status(&svc, "1").await, "enabled");
        let p = post(
            &svc,
            "/dashboard/mfa/disable",
            Some(&a),
            &[("csrf", &token_a)],
        )
        .await;
        assert_eq!(p.status, 303);
        assert_eq!(p.location(), Some("/dashboard/mfa?notice=mfa_disabled"));
        assert_eq!(mfa_status(&svc, "1").await, "none");

        // edit with MFA off: the flagged key is renamed with its toggle left
        // as shown (no mfa sent); turning the flag on is refused beside the
        // field with the input kept; turning it off works
        let flagged_id: uuid::Uuid = svc
            .su
            .query_one(
                "SELECT id FROM api_keys.api_key_list('user', '1') WHERE name = 'with mfa'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let edit = get(
            &svc,
            &format!("/dashboard/keys/{flagged_id}/edit"),
            Some(&a),
        )
        .await;
        assert!(
            edit.text.contains(r#"name="mfa_was" value="true""#),
            "{}",
            edit.text
        );
        let p = post(
            &svc,
            &format!("/dashboard/keys/{flagged_id}"),
            Some(&a),
            &[
                ("csrf", &token_a),
                ("name", "still mfa"),
                ("mfa_was", "true"),
                ("mfa", "on"),
            ],
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.text);
        assert_eq!(
            name_of(&svc, flagged_id).await.as_deref(),
            Some("still mfa")
        );
        let (plain, _) = svc.issue_sql("user", "1", &[]).await;
        let p = post(
            &svc,
            &format!("/dashboard/keys/{plain}"),
            Some(&a),
            &[
                ("csrf", &token_a),
                ("name", "wants mfa"),
                ("mfa_was", "false"),
                ("mfa", "on"),
            ],
        )
        .await;
        assert_eq!(p.status, 400, "{}", p.text);
        assert!(p.text.contains(r#"id="mfa-error""#), "{}", p.text);
        assert!(p.text.contains(r#"value="wants mfa""#), "the input is kept");
        assert_eq!(name_of(&svc, plain).await, None, "nothing changed");
        let p = post(
            &svc,
            &format!("/dashboard/keys/{flagged_id}"),
            Some(&a),
            &[("csrf", &token_a), ("name", "no mfa"), ("mfa_was", "true")],
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.text);
        let flag: bool = svc
            .su
            .query_one("SELECT mfa FROM api_keys.api_key_get($1)", &[&flagged_id])
            .await
            .unwrap()
            .get(0);
        assert!(!flag, "the flag can be removed with MFA off");
        // signed out: no MFA page
        assert_eq!(get(&svc, "/dashboard/mfa", None).await.status, 401);
        assert_eq!(
            post(&svc, "/dashboard/mfa", None, &[("csrf", &token_a)])
                .await
                .status,
            401
        );
    });
}
