//! The harness: a fresh database from the template, a LOGIN role granted
//! `api_keys_admin` for the service, and `app()` served on 127.0.0.1:0.
#![allow(dead_code)]

pub mod dashboard;

use std::future::Future;
use std::net::SocketAddr;

use api_keys_admin::AppState;
use api_keys_tests::{random_ident, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

pub const ALL_SCOPES: [&str; 3] = ["keys:read", "keys:write", "keys:verify"];

/// The database and the service's role; the role is dropped before the database.
pub struct Env {
    pub role: String,
    pub db: TestDb,
}

impl Env {
    pub fn new() -> Env {
        let db = TestDb::new();
        let role = random_ident("admin_svc_");
        let mut c = db.connect();
        c.batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT api_keys_admin TO {role}; \
             GRANT CONNECT ON DATABASE {db} TO {role};",
            db = db.name()
        ))
        .expect("create the service role");
        Env { role, db }
    }

    /// libpq keyword/value string for the service role.
    pub fn role_dsn(&self) -> String {
        format!("{} user={}", self.db.libpq_dsn(), self.role)
    }

    pub fn superuser_dsn(&self) -> String {
        self.db.libpq_dsn()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(mut c) = self.db.try_connect() {
            let _ = c.batch_execute(&format!(
                "DROP OWNED BY {r}; DROP ROLE IF EXISTS {r}",
                r = self.role
            ));
        }
    }
}

/// A running service and a superuser connection to its database.
pub struct Service {
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub su: tokio_postgres::Client,
    pub state: AppState,
    /// The service role's connection settings.
    pub role_config: tokio_postgres::Config,
    su_dsn: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn superuser(dsn: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .expect("superuser connection");
    tokio::spawn(conn);
    client
}

/// Serves `app()` for `state` on 127.0.0.1:0.
pub async fn start_with(
    su_dsn: &str,
    role_config: tokio_postgres::Config,
    state: AppState,
) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = state.clone();
    tokio::spawn(async move {
        let _ = api_keys_admin::serve_on(listener, serving, async {
            let _ = stopped.await;
        })
        .await;
    });
    Service {
        base: format!("http://{addr}"),
        addr,
        http: reqwest::Client::new(),
        su: superuser(su_dsn).await,
        state,
        role_config,
        su_dsn: su_dsn.to_owned(),
        stop: Some(stop),
    }
}

pub async fn start(env: &Env) -> Service {
    let config: tokio_postgres::Config = env.role_dsn().parse().unwrap();
    let state = AppState::from_config(config.clone(), 8, None).unwrap();
    start_with(&env.superuser_dsn(), config, state).await
}

/// Runs an async test body against a fresh database and service.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = ()>,
{
    let env = Env::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = start(&env).await;
        body(svc).await;
    });
    drop(rt);
    drop(env);
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Asserts the SPEC error body with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.body["error"]["code"], code,
            "error code in {}",
            self.text
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "message in {}",
            self.text
        );
        let obj = self.body.as_object().expect("an object");
        assert_eq!(obj.len(), 1, "only `error` in {}", self.text);
    }

    #[track_caller]
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }
}

impl Service {
    /// Another service on the same database, with its own pool and settings.
    pub async fn sibling(
        &self,
        role_config: tokio_postgres::Config,
        caller_environment: Option<&str>,
    ) -> Service {
        let state = AppState::from_config(
            role_config.clone(),
            8,
            caller_environment.map(str::to_owned),
        )
        .unwrap();
        start_with(&self.su_dsn, role_config, state).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        answer(resp).await
    }

    /// A raw body with a JSON content type.
    pub async fn call_raw(&self, method: Method, path: &str, token: &str, body: &str) -> Answer {
        let resp = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        answer(resp).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Issues a key straight in SQL; returns (id, token).
    pub async fn issue_sql(
        &self,
        owner_type: &str,
        owner_id: &str,
        scopes: &[&str],
    ) -> (uuid::Uuid, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let row = self
            .su
            .query_one(
                "SELECT (k).id, (k).token FROM (SELECT api_keys.api_key_issue($1, $2, scopes => $3) k) s",
                &[&owner_type, &owner_id, &scopes],
            )
            .await
            .expect("issue");
        (row.get(0), row.get(1))
    }

    /// An admin key with these scopes.
    pub async fn admin(&self, scopes: &[&str]) -> String {
        self.issue_sql("api_keys_admin", "ops", scopes).await.1
    }

    pub async fn sql(&self, sql: &str) {
        self.su.batch_execute(sql).await.expect(sql);
    }
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}
