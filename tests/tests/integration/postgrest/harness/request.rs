//! One HTTP request and the transaction PostgREST runs for it.

use api_keys_tests::*;
use postgres::types::ToSql;
use postgres::{Client, Row, ToStatement};
use serde_json::{json, Map, Value};

use super::example::Todo;

/// What PostgREST calls before the query.
#[derive(Debug, Clone)]
pub enum PreRequest {
    /// `db-pre-request = "api_keys.api_key_authenticate"`: called with no arguments.
    Authenticate,
    /// `api_keys.api_key_authenticate(<scopes>)`, as a wrapper would call it.
    AuthenticateWith(Vec<String>),
    /// Another pre-request function, e.g. `app_private.authenticate_request`.
    Function(String),
    /// No pre-request configured.
    None,
}

/// How the request's role is switched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSwitch {
    /// `set_config('role', <role>, true)` in the settings query (PostgREST).
    SetConfig,
    /// `SET LOCAL ROLE <role>`.
    SetLocalRole,
}

/// The HTTP side of a request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Headers as the client sent them; PostgREST lower-cases the names.
    pub headers: Vec<(String, String)>,
    /// Exact `request.headers` text, bypassing `headers` (for proxies that
    /// do not lower-case, or broken JSON).
    pub raw_headers: Option<String>,
    /// The role to switch to; `None` = the example's api role.
    pub role: Option<String>,
    pub role_switch: RoleSwitch,
    pub pre_request: PreRequest,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: vec![
                ("Host".to_owned(), "localhost:3000".to_owned()),
                ("User-Agent".to_owned(), "curl/8.5.0".to_owned()),
                ("Accept".to_owned(), "*/*".to_owned()),
            ],
            raw_headers: None,
            role: None,
            role_switch: RoleSwitch::SetConfig,
            pre_request: PreRequest::Authenticate,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path).header("Content-Type", "application/json")
    }

    pub fn patch(path: &str) -> Self {
        Self::new("PATCH", path).header("Content-Type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `x-api-key: <token>`.
    pub fn api_key(self, token: &str) -> Self {
        self.header("x-api-key", token)
    }

    /// `Authorization: Bearer <credential>`.
    pub fn bearer(self, credential: &str) -> Self {
        self.header("Authorization", &format!("Bearer {credential}"))
    }

    pub fn raw_headers(mut self, json: &str) -> Self {
        self.raw_headers = Some(json.to_owned());
        self
    }

    pub fn run_as(mut self, role: &str) -> Self {
        self.role = Some(role.to_owned());
        self
    }

    pub fn role_switch(mut self, how: RoleSwitch) -> Self {
        self.role_switch = how;
        self
    }

    pub fn pre_request(mut self, pre: PreRequest) -> Self {
        self.pre_request = pre;
        self
    }

    /// Requires `scopes` in the pre-request call.
    pub fn require(self, scopes: &[&str]) -> Self {
        self.pre_request(PreRequest::AuthenticateWith(
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        ))
    }

    /// No pre-request at all (a request on a server without db-pre-request,
    /// or another application sharing the pooled connection).
    pub fn without_pre_request(self) -> Self {
        self.pre_request(PreRequest::None)
    }

    fn is_read_only(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// `request.headers` as PostgREST builds it: a JSON object whose names
    /// are lower-cased (the last of repeated names wins).
    pub fn headers_json(&self) -> String {
        if let Some(raw) = &self.raw_headers {
            return raw.clone();
        }
        let mut map = Map::new();
        for (name, value) in &self.headers {
            map.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
        }
        Value::Object(map).to_string()
    }
}

/// A pooled PostgREST connection (logged in as the authenticator).
pub struct Conn {
    pub client: Client,
    api_role: String,
}

impl Conn {
    /// Wraps a connection logged in as the authenticator; requests switch
    /// to `api_role` unless they name another role.
    pub fn new(client: Client, api_role: &str) -> Self {
        Conn {
            client,
            api_role: api_role.to_owned(),
        }
    }

    /// Runs `query` (SQL text or a statement prepared on this connection,
    /// as PostgREST prepares its queries) as PostgREST would for `req`: one transaction, role
    /// switch, request settings, pre-request, query, COMMIT. After any error
    /// the transaction is rolled back and the error returned (PostgREST turns
    /// SQLSTATE `PTxyz` into HTTP status xyz).
    pub fn send<Q: ?Sized + ToStatement>(
        &mut self,
        req: &Request,
        query: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let begin = if req.is_read_only() {
            "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
        } else {
            "BEGIN"
        };
        self.client
            .batch_execute(begin)
            .unwrap_or_else(|e| panic!("{begin}: {}", describe(&e)));
        let result = self.run(req, query, params);
        match result {
            Ok(rows) => {
                self.client.batch_execute("COMMIT")?;
                Ok(rows)
            }
            Err(e) => {
                self.client.batch_execute("ROLLBACK").unwrap_or_else(|r| {
                    panic!("ROLLBACK after {}: {}", describe(&e), describe(&r))
                });
                Err(e)
            }
        }
    }

    fn run<Q: ?Sized + ToStatement>(
        &mut self,
        req: &Request,
        query: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let role = req.role.clone().unwrap_or_else(|| self.api_role.clone());
        let claims = json!({ "role": role }).to_string();
        let headers = req.headers_json();
        let settings = "SELECT set_config('search_path', '\"app\", \"public\"', true), \
             set_config('request.jwt.claims', $1, true), \
             set_config('request.method', $2, true), \
             set_config('request.path', $3, true), \
             set_config('request.headers', $4, true), \
             set_config('request.cookies', '{}', true)";
        match req.role_switch {
            RoleSwitch::SetConfig => {
                self.client
                    .query("SELECT set_config('role', $1, true)", &[&role])?;
            }
            RoleSwitch::SetLocalRole => {
                self.client
                    .batch_execute(&format!("SET LOCAL ROLE \"{role}\""))?;
            }
        }
        self.client
            .query(settings, &[&claims, &req.method, &req.path, &headers])?;
        match &req.pre_request {
            PreRequest::Authenticate => {
                self.client
                    .query("SELECT \"api_keys\".\"api_key_authenticate\"()", &[])?;
            }
            PreRequest::AuthenticateWith(scopes) => {
                self.client.query(
                    "SELECT \"api_keys\".\"api_key_authenticate\"($1::text[])",
                    &[scopes],
                )?;
            }
            PreRequest::Function(name) => {
                self.client
                    .query(format!("SELECT {name}()").as_str(), &[])?;
            }
            PreRequest::None => {}
        }
        self.client.query(query, params)
    }

    /// `GET /todos` (optionally `?id=eq.<id>`): the rows RLS lets through.
    pub fn get_todos(&mut self, req: &Request) -> Result<Vec<Todo>, postgres::Error> {
        let rows = self.send(
            req,
            "WITH pgrst_source AS (SELECT \"app\".\"todos\".* FROM \"app\".\"todos\") \
             SELECT coalesce(json_agg(_postgrest_t ORDER BY _postgrest_t.id), '[]')::text AS body \
             FROM (SELECT * FROM pgrst_source) _postgrest_t",
            &[],
        )?;
        Ok(Todo::list_from_body(&rows[0].get::<_, String>(0)))
    }

    /// `GET /todos?id=eq.<id>`.
    pub fn get_todo(&mut self, req: &Request, id: i64) -> Result<Vec<Todo>, postgres::Error> {
        let rows = self.send(
            req,
            "WITH pgrst_source AS (SELECT \"app\".\"todos\".* FROM \"app\".\"todos\" \
               WHERE \"app\".\"todos\".\"id\" = $1) \
             SELECT coalesce(json_agg(_postgrest_t), '[]')::text AS body \
             FROM (SELECT * FROM pgrst_source) _postgrest_t",
            &[&id],
        )?;
        Ok(Todo::list_from_body(&rows[0].get::<_, String>(0)))
    }

    /// `POST /todos` with `Prefer: return=representation`: inserts the
    /// object (or array of objects) `body`, returns the inserted rows.
    pub fn post_todos(
        &mut self,
        req: &Request,
        body: &Value,
    ) -> Result<Vec<Todo>, postgres::Error> {
        let items = match body {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let first = items[0].as_object().expect("POST body objects");
        let cols: Vec<String> = first.keys().map(|k| format!("\"{k}\"")).collect();
        let cols = cols.join(", ");
        let payload = Value::Array(items).to_string();
        let sql = format!(
            "WITH pgrst_source AS (INSERT INTO \"app\".\"todos\" ({cols}) \
               SELECT {cols} FROM json_populate_recordset(null::\"app\".\"todos\", ($1::text)::json) \
               RETURNING \"app\".\"todos\".*) \
             SELECT coalesce(json_agg(_postgrest_t), '[]')::text AS body \
             FROM (SELECT * FROM pgrst_source) _postgrest_t"
        );
        let rows = self.send(req, &sql, &[&payload])?;
        Ok(Todo::list_from_body(&rows[0].get::<_, String>(0)))
    }

    /// `PATCH /todos?id=eq.<id>` with `Prefer: return=representation`.
    pub fn patch_todo(
        &mut self,
        req: &Request,
        id: i64,
        body: &Value,
    ) -> Result<Vec<Todo>, postgres::Error> {
        let obj = body.as_object().expect("PATCH body object");
        let sets: Vec<String> = obj
            .keys()
            .map(|k| format!("\"{k}\" = pgrst_body.\"{k}\""))
            .collect();
        let sql = format!(
            "WITH pgrst_source AS (UPDATE \"app\".\"todos\" SET {} \
               FROM (SELECT * FROM json_populate_record(null::\"app\".\"todos\", ($1::text)::json)) pgrst_body \
               WHERE \"app\".\"todos\".\"id\" = $2 RETURNING \"app\".\"todos\".*) \
             SELECT coalesce(json_agg(_postgrest_t), '[]')::text AS body \
             FROM (SELECT * FROM pgrst_source) _postgrest_t",
            sets.join(", ")
        );
        let rows = self.send(req, &sql, &[&body.to_string(), &id])?;
        Ok(Todo::list_from_body(&rows[0].get::<_, String>(0)))
    }

    /// The identity the request's transaction sees after its pre-request:
    /// (current_owner_type, current_owner_id, current_key_id, current_scopes).
    pub fn identity(&mut self, req: &Request) -> Result<Identity, postgres::Error> {
        let rows = self.send(
            req,
            "SELECT api_keys.current_owner_type(), api_keys.current_owner_id(), \
                    api_keys.current_key_id(), api_keys.current_scopes(), \
                    api_keys.has_scope('todos:read'), api_keys.has_scope('todos:write'), \
                    current_user::text",
            &[],
        )?;
        let r = &rows[0];
        Ok(Identity {
            owner_type: r.get(0),
            owner_id: r.get(1),
            key_id: r.get(2),
            scopes: r.get(3),
            can_read: r.get(4),
            can_write: r.get(5),
            current_user: r.get(6),
        })
    }
}

/// What the identity functions return inside a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub owner_type: Option<String>,
    pub owner_id: Option<String>,
    pub key_id: Option<uuid::Uuid>,
    pub scopes: Option<Vec<String>>,
    pub can_read: bool,
    pub can_write: bool,
    pub current_user: String,
}

impl Identity {
    #[track_caller]
    pub fn assert_anonymous(&self) {
        assert_eq!(
            (
                &self.owner_type,
                &self.owner_id,
                &self.key_id,
                &self.scopes,
                self.can_read,
                self.can_write
            ),
            (&None, &None, &None, &None, false, false),
            "no identity expected: {self:?}"
        );
    }
}
