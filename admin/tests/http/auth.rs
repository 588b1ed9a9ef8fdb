//! Callers: 401 for anything but an accepted admin key, 403 without the scope.

use reqwest::Method;
use serde_json::json;

use crate::common::{run, Service, ALL_SCOPES};
use crate::{routes, user_key};

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
