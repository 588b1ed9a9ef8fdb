//! The dashboard in a real headless Chromium (Debian's chromium +
//! chromium-driver, over WebDriver) against the real service and
//! PostgreSQL: what an owner sees and does (SPEC §9). The list, new-key
//! and success pages are photographed at 1280 and 390 px into
//! docs/screenshots/.

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use common::dashboard::{create_link, mfa_status};
use common::{run, Service, ALL_SCOPES};
use serde_json::json;
use webdriver::Browser;

/// One Chromium at a time: the machine has two cores.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

async fn sign_in_link(svc: &Service, owner_id: &str) -> String {
    let admin = svc.admin(&ALL_SCOPES).await;
    let made = create_link(
        svc,
        &admin,
        owner_id,
        json!({"return_url": "https://example.com/account", "return_text": "Back to Acme"}),
    )
    .await;
    made["url"].as_str().unwrap().to_owned()
}

/// Opens the link and waits for the keys list.
async fn open_dashboard(b: &Browser, link: &str) {
    b.goto(link).await;
    b.wait_for_url(|u| u.ends_with("/dashboard/")).await;
    assert_eq!(b.text_of("h1").await, "Your API keys");
}

async fn key_id_by_name(svc: &Service, owner_id: &str, name: &str) -> uuid::Uuid {
    svc.su
        .query_one(
            "SELECT id FROM api_keys.api_key_list('user', $1) WHERE name = $2",
            &[&owner_id, &name],
        )
        .await
        .unwrap()
        .get(0)
}

/// The verification of `token` for `scopes`: (code, scopes, name, days to expiry).
async fn verify_sql(
    svc: &Service,
    token: &str,
    scopes: &[&str],
) -> (String, Option<Vec<String>>, Option<String>, Option<i64>) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let row = svc
        .su
        .query_one(
            "SELECT v.code, v.scopes, v.name, \
                    extract(epoch FROM v.expires_at - now())::bigint / 86400 \
               FROM api_keys.api_key_verify($1, $2) v",
            &[&token, &scopes],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// Scopes, environments, a publishable type and a few keys of user/1 with
/// some history, so that the list shows what a real one does.
async fn demo_owner(svc: &Service) {
    svc.sql(
        "SELECT api_keys.api_key_scope_define('read', 'Read your data');
         SELECT api_keys.api_key_scope_define('write', 'Change your data');
         SELECT api_keys.api_key_scope_define('billing', 'See invoices');
         SELECT api_keys.api_key_environment_define('live', 'live');
         SELECT api_keys.api_key_environment_define('test', 'test');
         SELECT api_keys.api_key_type_define('publishable', 'pk', '{read}', revocable => false, public => true, per_owner_limit => 2);
         SELECT api_keys.api_key_issue('user', '1', name => 'Website widget', key_type => 'publishable', environment => 'live', scopes => '{read}');
         SELECT api_keys.api_key_issue('user', '1', name => 'Production server', environment => 'live', scopes => '{read,write}');
         SELECT api_keys.api_key_issue('user', '1', name => 'CI', environment => 'test', scopes => '{read}', expires_in => '90_days');
         SELECT api_keys.api_key_issue('user', '1', name => 'Old laptop', environment => 'test', scopes => '{read,billing}');
         SELECT api_keys.api_key_revoke(id) FROM api_keys.api_key_list('user', '1') WHERE name = 'Old laptop';
         UPDATE api_keys.keys SET created_at = now() - interval '3 days', last_used_at = now() - interval '2 hours', requests_count = 1284
          WHERE owner_type = 'user' AND owner_id = '1' AND name = 'Production server';
         UPDATE api_keys.keys SET created_at = now() - interval '12 days', last_used_at = now() - interval '5 days', requests_count = 37
          WHERE owner_type = 'user' AND owner_id = '1' AND name = 'CI';
         UPDATE api_keys.keys SET created_at = now() - interval '40 days', revoked_at = now() - interval '9 days'
          WHERE owner_type = 'user' AND owner_id = '1' AND name = 'Old laptop';
         UPDATE api_keys.keys SET created_at = now() - interval '20 days'
          WHERE owner_type = 'user' AND owner_id = '1' AND name = 'Website widget';",
    )
    .await;
}

#[test]
fn an_owner_creates_reads_edits_and_revokes_a_key_in_the_browser() {
    let _one = one_at_a_time();
    run(|svc| async move {
        // the admin key first: once environments exist, new keys need one
        let link = sign_in_link(&svc, "1").await;
        demo_owner(&svc).await;
        let b = Browser::start(1280, 900).await;
        open_dashboard(&b, &link).await;
        assert_eq!(b.text_of("a.return").await, "← Back to Acme");
        b.screenshot(1280, &screenshots().join("list-1280.png"))
            .await;
        b.screenshot(390, &screenshots().join("list-390.png")).await;

        // new key: a name, an expiry preset and two scopes
        b.click_css("a[href='/dashboard/keys/new']").await;
        b.wait_for_url(|u| u.ends_with("/dashboard/keys/new")).await;
        let unlabelled = b
            .run_script(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                   .filter(e => e.labels.length === 0).map(e => e.name);",
            )
            .await;
        assert_eq!(unlabelled, json!([]), "every form control has a label");
        b.type_into("#name", "Deploy bot").await;
        b.click_css("#expires_in option[value='30_days']").await;
        b.click_css("#environment option[value='live']").await;
        let read_label = b.text_of("label[for='scope-0']").await;
        assert_eq!(
            read_label, "read — Read your data",
            "scopes carry their description"
        );
        b.click_css("input[name='scopes'][value='read']").await;
        b.click_css("input[name='scopes'][value='write']").await;
        b.screenshot(1280, &screenshots().join("new-key-1280.png"))
            .await;
        b.screenshot(390, &screenshots().join("new-key-390.png"))
            .await;
        b.click_css("form.key-form button.primary").await;

        // the success page shows the token once, with a working copy button
        let created = b.wait_for_url(|u| u.ends_with("/created")).await;
        assert_eq!(b.text_of("h1").await, "Your new key");
        let token = b.text_of("#new-token").await;
        assert!(token.starts_with("ak_live_"), "{token}");
        let copy = b.find("button[data-copy='new-token']").await;
        assert_eq!(
            b.attribute(&copy, "hidden").await,
            None,
            "the copy script ran"
        );
        b.screenshot(1280, &screenshots().join("success-1280.png"))
            .await;
        b.screenshot(390, &screenshots().join("success-390.png"))
            .await;
        let (code, scopes, name, days) = verify_sql(&svc, &token, &["read", "write"]).await;
        assert_eq!(code, "valid");
        assert_eq!(scopes, Some(vec!["read".to_owned(), "write".to_owned()]));
        assert_eq!(name.as_deref(), Some("Deploy bot"));
        assert!(matches!(days, Some(29 | 30)), "30-day preset: {days:?}");

        // reload: not shown again
        b.refresh().await;
        assert_eq!(b.url().await, created);
        assert_eq!(b.text_of("h1").await, "Token already shown");
        assert!(
            !b.source().await.contains(&token),
            "the token is gone from the page"
        );

        // edit its scopes: drop write
        let id = key_id_by_name(&svc, "1", "Deploy bot").await;
        b.goto(&svc.url("/dashboard/")).await;
        b.click_css(&format!("tr[data-key-id='{id}'] a[href$='/edit']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/edit")).await;
        let write = b.find("input[name='scopes'][value='write']").await;
        assert!(b.selected(&write).await, "current scopes are checked");
        b.click(&write).await;
        b.click_css("form.key-form button.primary").await;
        b.wait_for_url(|u| u.contains("notice=updated")).await;
        let (code, scopes, _, _) = verify_sql(&svc, &token, &["read"]).await;
        assert_eq!(
            (code.as_str(), scopes),
            ("valid", Some(vec!["read".to_owned()]))
        );
        assert_eq!(
            verify_sql(&svc, &token, &["write"]).await.0,
            "insufficient_scope"
        );

        // revoke it, with confirmation; it moves to the inactive keys
        b.click_css(&format!("tr[data-key-id='{id}'] a[href$='/revoke']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/revoke")).await;
        assert!(b.text_of("h1").await.contains("Deploy bot"));
        b.click_css("form button.danger").await;
        b.wait_for_url(|u| u.contains("notice=revoked")).await;
        let badge = b
            .text_of(&format!(
                "section[aria-labelledby='inactive-heading'] tr[data-key-id='{id}'] .status-revoked"
            ))
            .await;
        assert_eq!(badge, "Revoked");
        assert!(
            b.try_find(&format!(
                "section[aria-labelledby='secret-heading'] tr[data-key-id='{id}']"
            ))
            .await
            .is_none(),
            "no longer among the active keys"
        );
        assert_eq!(verify_sql(&svc, &token, &["read"]).await.0, "revoked");
    });
}

#[test]
fn publishable_keys_show_their_token_and_non_revocable_keys_have_no_revoke() {
    let _one = one_at_a_time();
    run(|svc| async move {
        svc.sql(
            "SELECT api_keys.api_key_type_define('publishable', 'pk', '{read}', revocable => false, public => true, per_owner_limit => 2);
             SELECT api_keys.api_key_type_define('service', 'svc', '{read,write}', revocable => false);",
        )
        .await;
        let row = svc
            .su
            .query_one(
                "SELECT (k).id, (k).token FROM (SELECT api_keys.api_key_issue('user', '1', name => 'Widget', key_type => 'publishable', scopes => '{read}') k) s",
                &[],
            )
            .await
            .unwrap();
        let (pk_id, pk_token): (uuid::Uuid, String) = (row.get(0), row.get(1));
        let svc_id: uuid::Uuid = svc
            .su
            .query_one("SELECT (api_keys.api_key_issue('user', '1', name => 'Backend', key_type => 'service', scopes => '{read}')).id", &[])
            .await
            .unwrap()
            .get(0);
        let (plain_id, _) = svc.issue_sql("user", "1", &["read"]).await;
        let link = sign_in_link(&svc, "1").await;
        let b = Browser::start(1280, 900).await;
        open_dashboard(&b, &link).await;

        // Show reveals the full token of a public key
        let shown = format!("#token-{pk_id}");
        assert_eq!(b.text_of(&shown).await, "", "hidden until Show");
        b.click_css(&format!("li[data-key-id='{pk_id}'] summary"))
            .await;
        assert_eq!(b.text_of(&shown).await, pk_token);
        assert!(b
            .try_find(&format!("li[data-key-id='{pk_id}'] a[href$='/revoke']"))
            .await
            .is_none());

        // a non-revocable secret key: Edit, no Revoke; a revocable one has both
        let row = format!("tr[data-key-id='{svc_id}']");
        assert!(b
            .try_find(&format!("{row} a[href$='/edit']"))
            .await
            .is_some());
        assert!(
            b.try_find(&format!("{row} a[href$='/revoke']"))
                .await
                .is_none(),
            "no Revoke for a non-revocable key"
        );
        assert!(
            b.try_find(&format!("{row} a[href$='/rotate']"))
                .await
                .is_none(),
            "no Rotate for a non-revocable key"
        );
        assert!(b
            .try_find(&format!("tr[data-key-id='{plain_id}'] a[href$='/revoke']"))
            .await
            .is_some());

        // "Create publishable key" while api_key_can_issue allows it (limit 2)
        b.click_css("form[action='/dashboard/keys/publishable'] button")
            .await;
        b.wait_for_url(|u| u.contains("notice=created_publishable"))
            .await;
        assert_eq!(b.find_all("ul.publishable > li").await.len(), 2);
        assert!(
            b.try_find("form[action='/dashboard/keys/publishable']")
                .await
                .is_none(),
            "no offer once the limit is reached"
        );
    });
}

#[test]
fn expired_and_reused_sign_in_links_are_refused() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let short = create_link(&svc, &admin, "1", json!({"ttl_seconds": 1})).await;
        let link = sign_in_link(&svc, "1").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let b = Browser::start(1280, 900).await;
        b.goto(short["url"].as_str().unwrap()).await;
        assert_eq!(b.text_of("h1").await, "Link not valid");
        b.goto(&svc.url("/dashboard/")).await;
        assert_eq!(
            b.text_of("h1").await,
            "Signed out",
            "no session from an expired link"
        );

        open_dashboard(&b, &link).await;
        b.goto(&link).await;
        assert_eq!(b.text_of("h1").await, "Link not valid", "a link works once");
        // a second browser with the used link gets nothing either
        drop(b);
        let other = Browser::start(1280, 900).await;
        other.goto(&link).await;
        assert_eq!(other.text_of("h1").await, "Link not valid");
        other.goto(&svc.url("/dashboard/")).await;
        assert_eq!(other.text_of("h1").await, "Signed out");
    });
}

#[test]
fn a_key_named_like_a_script_renders_as_text() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let evil = "<script>alert(1)</script>";
        let id: uuid::Uuid = svc
            .su
            .query_one(
                "SELECT (api_keys.api_key_issue('user', '1', name => $1, scopes => '{read}')).id",
                &[&evil],
            )
            .await
            .unwrap()
            .get(0);
        let admin = svc.admin(&ALL_SCOPES).await;
        let made = create_link(
            &svc,
            &admin,
            "1",
            json!({"return_url": "https://example.com/?q=\"><img/src=x/onerror=alert(2)>", "return_text": "<img src=x onerror=alert(3)>"}),
        )
        .await;
        let b = Browser::start(1280, 900).await;
        open_dashboard(&b, made["url"].as_str().unwrap()).await;
        assert!(!b.alert_open().await, "no script ran");
        assert_eq!(
            b.text_of(&format!("tr[data-key-id='{id}'] .key-name"))
                .await,
            evil
        );
        assert_eq!(
            b.text_of("a.return").await,
            "← <img src=x onerror=alert(3)>"
        );
        assert!(
            b.find_all("img").await.is_empty(),
            "no element was injected"
        );
        b.click_css(&format!("tr[data-key-id='{id}'] a[href$='/edit']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/edit")).await;
        assert!(!b.alert_open().await);
        assert_eq!(b.text_of("h1 .key-name").await, evil);
        let name = b.find("#name").await;
        assert_eq!(
            b.run_script("return document.getElementById('name').value")
                .await,
            evil
        );
        let _ = name;
    });
}

/// The host application links (or redirects) to the sign-in link from its
/// own site: the session cookie is SameSite=Strict, and must still be sent
/// on the way to the keys (the exchange answers a page, not a redirect).
#[test]
fn a_link_followed_from_another_site_signs_in() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let link = sign_in_link(&svc, "1").await;
        let b = Browser::start(1280, 900).await;
        let host_page = format!(
            "data:text/html,%3Ca%20id=go%20href=%22{link}%22%3EManage%20API%20keys%3C/a%3E"
        );
        b.goto(&host_page).await;
        b.click_css("#go").await;
        b.wait_for_url(|u| u.ends_with("/dashboard/")).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while b.text_of("h1").await != "Your API keys" {
            assert!(
                std::time::Instant::now() < deadline,
                "not signed in: {}",
                b.text_of("h1").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Everything but the copy button works with JavaScript off.
#[test]
fn the_dashboard_works_without_javascript() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let link = sign_in_link(&svc, "1").await;
        svc.sql("SELECT api_keys.api_key_scope_define('read'); SELECT api_keys.api_key_scope_define('write');")
            .await;
        let b = Browser::start_with(1280, 900, false).await;
        open_dashboard(&b, &link).await;
        b.click_css("a[href='/dashboard/keys/new']").await;
        b.wait_for_url(|u| u.ends_with("/dashboard/keys/new")).await;
        b.type_into("#name", "no script").await;
        b.click_css("#expires_in option[value='7_days']").await;
        b.click_css("input[name='scopes'][value='write']").await;
        b.click_css("form.key-form button.primary").await;
        b.wait_for_url(|u| u.ends_with("/created")).await;
        let token = b.text_of("#new-token").await;
        assert_eq!(verify_sql(&svc, &token, &["write"]).await.0, "valid");
        assert!(
            b.try_find("button[data-copy][hidden]").await.is_some(),
            "the copy button stays hidden without its script"
        );
        let id = key_id_by_name(&svc, "1", "no script").await;
        b.goto(&svc.url(&format!("/dashboard/keys/{id}/revoke")))
            .await;
        b.click_css("form button.danger").await;
        b.wait_for_url(|u| u.contains("notice=revoked")).await;
        assert_eq!(verify_sql(&svc, &token, &["write"]).await.0, "revoked");
        b.click_css("header form button").await; // Sign out
        assert_eq!(b.text_of("h1").await, "Signed out");
        b.goto(&svc.url("/dashboard/")).await;
        assert_eq!(b.text_of("h1").await, "Signed out");
    });
}

/// Rotate: the replacement's token is shown once; the old key keeps working
/// for the chosen grace period, then stops.
#[test]
fn an_owner_rotates_a_key_and_sees_the_new_token_once() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let link = sign_in_link(&svc, "1").await;
        let row = svc
            .su
            .query_one(
                "SELECT (k).id, (k).token FROM (SELECT api_keys.api_key_issue('user', '1', name => 'Worker', scopes => '{read,write}') k) s",
                &[],
            )
            .await
            .unwrap();
        let (old_id, old_token): (uuid::Uuid, String) = (row.get(0), row.get(1));
        let b = Browser::start(1280, 900).await;
        open_dashboard(&b, &link).await;
        b.click_css(&format!("tr[data-key-id='{old_id}'] a[href$='/rotate']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/rotate")).await;
        assert!(b.text_of("h1").await.contains("Worker"));
        b.click_css("#grace_seconds option[value='3600']").await;
        b.click_css("form button.primary").await;
        let created = b.wait_for_url(|u| u.ends_with("/created")).await;
        assert!(
            !created.contains(&old_id.to_string()),
            "the replacement's page"
        );
        assert_eq!(b.text_of("h1").await, "Your new key");
        let new_token = b.text_of("#new-token").await;
        assert_ne!(new_token, old_token);
        let (code, scopes, name, _) = verify_sql(&svc, &new_token, &["write"]).await;
        assert_eq!((code.as_str(), name.as_deref()), ("valid", Some("Worker")));
        assert_eq!(scopes, Some(vec!["read".to_owned(), "write".to_owned()]));
        // the old key: still valid for the grace hour, then it expires
        assert_eq!(verify_sql(&svc, &old_token, &["read"]).await.0, "valid");
        let left: i64 = svc
            .su
            .query_one("SELECT extract(epoch FROM expires_at - now())::bigint FROM api_keys.api_key_get($1)", &[&old_id])
            .await
            .unwrap()
            .get(0);
        assert!((3500..=3600).contains(&left), "{left}");
        b.refresh().await;
        assert_eq!(b.text_of("h1").await, "Token already shown");
        // grace 0 on the replacement: revoked at once
        b.goto(&svc.url("/dashboard/")).await;
        let new_id: uuid::Uuid = svc
            .su
            .query_one("SELECT (api_keys.api_key_verify($1)).key_id", &[&new_token])
            .await
            .unwrap()
            .get(0);
        b.click_css(&format!("tr[data-key-id='{new_id}'] a[href$='/rotate']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/rotate")).await;
        b.click_css("form button.primary").await;
        b.wait_for_url(|u| u.ends_with("/created")).await;
        let third = b.text_of("#new-token").await;
        assert_eq!(verify_sql(&svc, &new_token, &["read"]).await.0, "revoked");
        assert_eq!(verify_sql(&svc, &third, &["read"]).await.0, "valid");
    });
}

/// Waits until an element matching `css` is on the page (after a form
/// whose answer keeps the URL).
async fn wait_for_css(b: &Browser, css: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.try_find(css).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "no {css} on the page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `api_key_verify(token, scopes, NULL, otp)`'s code.
async fn verify_code_sql(svc: &Service, token: &str, scopes: &[&str], otp: Option<&str>) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    svc.su
        .query_one(
            "SELECT (api_keys.api_key_verify($1, $2, NULL, $3)).code",
            &[&token, &scopes, &otp],
        )
        .await
        .unwrap()
        .get(0)
}

/// MFA (SPEC §9, 0.2.0): enroll from the QR page, read the secret, confirm
/// with a code computed here by core's TOTP, create a key with MFA on and
/// verify it for a sensitive scope without and with a code; then turn MFA
/// off and the key fails closed.
#[test]
fn an_owner_enrolls_in_mfa_and_creates_an_mfa_key_in_the_browser() {
    let _one = one_at_a_time();
    run(|svc| async move {
        let link = sign_in_link(&svc, "1").await;
        svc.sql(
            "SELECT api_keys.api_key_scope_define('read', 'Read your data');
             SELECT api_keys.api_key_scope_define('billing', 'Pay invoices', mfa => true);",
        )
        .await;
        let b = Browser::start(1280, 900).await;
        open_dashboard(&b, &link).await;
        // not enrolled: no toggle on the new-key page
        b.goto(&svc.url("/dashboard/keys/new")).await;
        assert!(
            b.try_find("#mfa").await.is_none(),
            "no MFA toggle before enrollment"
        );

        b.click_css("a.nav-mfa").await;
        b.wait_for_url(|u| u.ends_with("/dashboard/mfa")).await;
        let status = b.find(".mfa-status").await;
        assert_eq!(
            b.attribute(&status, "data-status").await.as_deref(),
            Some("none")
        );
        b.click_css("form[action='/dashboard/mfa'] button.primary")
            .await;
        // the answer has the same URL: wait for its content
        wait_for_css(&b, "#mfa-secret").await;
        assert_eq!(b.text_of("h1").await, "Set up two-factor authentication");
        assert_eq!(mfa_status(&svc, "1").await, "pending");
        let secret = b.text_of("#mfa-secret").await;
        assert_eq!(secret.len(), 32, "{secret}");
        let qr = b
            .run_script(
                "const s = document.querySelector('svg.qr'); const r = s.getBoundingClientRect();\
                 return [s.querySelectorAll('path').length, Math.round(r.width), Math.round(r.height)];",
            )
            .await;
        assert_eq!(qr[0], 1, "the QR code's modules: {qr}");
        assert!(
            qr[1].as_u64().unwrap() >= 200,
            "a QR code big enough to scan: {qr}"
        );
        b.screenshot(1280, &screenshots().join("mfa-1280.png"))
            .await;
        b.screenshot(390, &screenshots().join("mfa-390.png")).await;

        // a wrong code: the reason beside the field, the same secret kept
        let code = common::dashboard::totp_now(&secret, 0);
        let wrong = format!(
            "{:06}",
            (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
        );
        b.type_into("#otp", &wrong).await;
        b.click_css("form[action='/dashboard/mfa/confirm'] button.primary")
            .await;
        b.wait_for_url(|u| u.ends_with("/dashboard/mfa/confirm"))
            .await;
        wait_for_css(&b, "#otp-error").await;
        assert!(
            b.text_of("#otp-error").await.contains("not right"),
            "{}",
            b.text_of("#otp-error").await
        );
        assert_eq!(b.text_of("#mfa-secret").await, secret, "the page is kept");
        assert!(b.try_find("svg.qr").await.is_some());
        assert_eq!(mfa_status(&svc, "1").await, "pending");
        // the right one
        b.type_into("#otp", &code).await;
        b.click_css("form[action='/dashboard/mfa/confirm'] button.primary")
            .await;
        b.wait_for_url(|u| u.contains("notice=mfa_enabled")).await;
        let status = b.find(".mfa-status").await;
        assert_eq!(
            b.attribute(&status, "data-status").await.as_deref(),
            Some("enabled")
        );
        assert_eq!(mfa_status(&svc, "1").await, "enabled");
        assert!(
            !b.source().await.contains(&secret),
            "the secret is not shown again"
        );

        // a key with MFA on
        b.goto(&svc.url("/dashboard/keys/new")).await;
        b.type_into("#name", "Billing bot").await;
        b.click_css("input[name='scopes'][value='read']").await;
        b.click_css("input[name='scopes'][value='billing']").await;
        b.click_css("#mfa").await;
        b.click_css("form.key-form button.primary").await;
        b.wait_for_url(|u| u.ends_with("/created")).await;
        let token = b.text_of("#new-token").await;
        let id = key_id_by_name(&svc, "1", "Billing bot").await;
        assert_eq!(
            verify_code_sql(&svc, &token, &["billing"], None).await,
            "otp_required"
        );
        assert_eq!(
            verify_code_sql(&svc, &token, &["read"], None).await,
            "valid",
            "no code for a non-sensitive scope"
        );
        // the confirm used this step's code: the next step's is fresh
        let next = common::dashboard::totp_now(&secret, 1);
        assert_eq!(
            verify_code_sql(&svc, &token, &["billing"], Some(&next)).await,
            "valid"
        );
        assert_eq!(
            verify_code_sql(&svc, &token, &["billing"], Some(&next)).await,
            "otp_invalid",
            "a code works once"
        );
        b.goto(&svc.url("/dashboard/")).await;
        assert_eq!(
            b.text_of(&format!("tr[data-key-id='{id}'] .badge.mfa"))
                .await,
            "MFA"
        );
        b.click_css(&format!("tr[data-key-id='{id}'] a[href$='/edit']"))
            .await;
        b.wait_for_url(|u| u.ends_with("/edit")).await;
        let toggle = b.find("#mfa").await;
        assert!(b.selected(&toggle).await, "the edit page shows the flag");

        // turn MFA off (with confirmation): the key keeps its flag and fails closed
        b.goto(&svc.url("/dashboard/mfa")).await;
        b.click_css("a[href='/dashboard/mfa/disable']").await;
        b.wait_for_url(|u| u.ends_with("/dashboard/mfa/disable"))
            .await;
        b.click_css("form button.danger").await;
        b.wait_for_url(|u| u.contains("notice=mfa_disabled")).await;
        assert_eq!(mfa_status(&svc, "1").await, "none");
        let later = common::dashboard::totp_now(&secret, -1);
        assert_eq!(
            verify_code_sql(&svc, &token, &["billing"], Some(&later)).await,
            "otp_invalid"
        );
        b.goto(&svc.url("/dashboard/keys/new")).await;
        assert!(
            b.try_find("#mfa").await.is_none(),
            "no toggle once MFA is off"
        );
        b.goto(&svc.url(&format!("/dashboard/keys/{id}/edit")))
            .await;
        assert!(b.text_of("p.warning").await.contains("refused until you"));
        // it can still lose its flag
        let toggle = b.find("#mfa").await;
        b.click(&toggle).await;
        b.click_css("form.key-form button.primary").await;
        b.wait_for_url(|u| u.contains("notice=updated")).await;
        assert_eq!(
            verify_code_sql(&svc, &token, &["billing"], None).await,
            "valid"
        );
    });
}
