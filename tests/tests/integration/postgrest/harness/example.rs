//! The example database: `examples/postgrest/schema.sql` loaded into a fresh
//! test database, with per-test roles, seed data and keys.

use api_keys_tests::*;
use postgres::Client;
use regex::Regex;
use serde_json::Value;

use super::request::Conn;

/// The example schema, as shipped.
pub const SCHEMA_SQL: &str = include_str!("../../../../../examples/postgrest/schema.sql");

/// `schema.sql` with its three role names (`authenticator`, `anon`, `api`)
/// replaced as whole words by `<name>_<suffix>`, as client.py does with
/// `API_KEYS_EXAMPLE_ROLE_SUFFIX`.
pub fn schema_sql_with_suffix(suffix: &str) -> String {
    Regex::new(r"\b(authenticator|anon|api)\b")
        .expect("role regex")
        .replace_all(SCHEMA_SQL, format!("${{1}}_{suffix}").as_str())
        .into_owned()
}

/// The PostgREST roles of one test, cluster-wide, with a random suffix.
#[derive(Debug, Clone)]
pub struct Roles {
    pub suffix: String,
    pub authenticator: String,
    pub anon: String,
    pub api: String,
}

impl Roles {
    pub fn with_suffix(suffix: &str) -> Self {
        Roles {
            suffix: suffix.to_owned(),
            authenticator: format!("authenticator_{suffix}"),
            anon: format!("anon_{suffix}"),
            api: format!("api_{suffix}"),
        }
    }

    pub fn random() -> Self {
        Self::with_suffix(&random_ident(""))
    }

    /// anon and api: the roles a request runs as.
    pub fn request_roles(&self) -> [&str; 2] {
        [&self.anon, &self.api]
    }

    /// Drops the three roles (their grants in `db` first). Never panics.
    pub fn drop_in(&self, db: &TestDb) {
        if let Ok(mut c) = db.try_connect() {
            let names = format!("{}, {}, {}", self.authenticator, self.anon, self.api);
            let _ = c.batch_execute(&format!("DROP OWNED BY {names}"));
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {names}"));
        }
    }
}

/// A todo as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub id: i64,
    pub org_id: String,
    pub title: String,
    pub done: bool,
}

impl Todo {
    fn from_json(v: &Value) -> Self {
        Todo {
            id: v["id"].as_i64().expect("todo id"),
            org_id: v["org_id"].as_str().expect("todo org_id").to_owned(),
            title: v["title"].as_str().expect("todo title").to_owned(),
            done: v["done"].as_bool().expect("todo done"),
        }
    }

    pub(crate) fn list_from_body(body: &str) -> Vec<Todo> {
        let v: Value = serde_json::from_str(body).expect("response body is JSON");
        v.as_array()
            .expect("response body is a JSON array")
            .iter()
            .map(Todo::from_json)
            .collect()
    }
}

/// A test database with the example schema loaded and per-test roles; the
/// roles are dropped before the database.
pub struct Example {
    pub roles: Roles,
    db: TestDb,
}

impl Example {
    pub fn new() -> Self {
        let db = TestDb::new();
        let roles = Roles::random();
        let example = Example { roles, db };
        let sql = schema_sql_with_suffix(&example.roles.suffix);
        example
            .admin()
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("loading examples/postgrest/schema.sql: {}", describe(&e)));
        example
    }

    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// A superuser connection (the operator issuing keys with psql).
    pub fn admin(&self) -> Client {
        self.db.connect()
    }

    /// A new pooled connection, logged in as the authenticator role.
    pub fn pool_conn(&self) -> Conn {
        Conn::new(
            self.db.connect_as(&self.roles.authenticator),
            &self.roles.api,
        )
    }

    /// Issues a key for organisation `org` with `scopes`.
    pub fn org_key(&self, org: &str, scopes: &[&str]) -> IssuedKey {
        issue(
            &mut self.admin(),
            "owner_type => 'org', owner_id => $1::text, scopes => $2::text[]",
            &[&org, &scopes],
        )
    }

    /// A key for `org` that can read and write todos.
    pub fn rw_key(&self, org: &str) -> IssuedKey {
        self.org_key(org, &["todos:read", "todos:write"])
    }

    /// Inserts todos for `org` as the superuser; returns their ids.
    pub fn seed(&self, org: &str, titles: &[&str]) -> Vec<i64> {
        let mut c = self.admin();
        titles
            .iter()
            .map(|t| {
                c.query_one(
                    "INSERT INTO app.todos (org_id, title) VALUES ($1, $2) RETURNING id",
                    &[&org, t],
                )
                .unwrap_or_else(|e| panic!("seeding todos: {}", describe(&e)))
                .get(0)
            })
            .collect()
    }

    /// Every todo, read as the superuser (who bypasses RLS), ordered by id.
    pub fn all_todos(&self) -> Vec<Todo> {
        self.admin()
            .query(
                "SELECT id, org_id, title, done FROM app.todos ORDER BY id",
                &[],
            )
            .expect("reading todos as superuser")
            .iter()
            .map(|r| Todo {
                id: r.get(0),
                org_id: r.get(1),
                title: r.get(2),
                done: r.get(3),
            })
            .collect()
    }

    /// The todos of `org`, read as the superuser.
    pub fn todos_of(&self, org: &str) -> Vec<Todo> {
        self.all_todos()
            .into_iter()
            .filter(|t| t.org_id == org)
            .collect()
    }

    /// `ALTER DATABASE <this db> SET <setting> = <value>` (new connections see it).
    pub fn alter_database_set(&self, setting: &str, value: &str) {
        let sql = format!(
            "ALTER DATABASE {} SET {setting} = '{value}'",
            self.db.name()
        );
        self.admin()
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    }
}

impl Default for Example {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        self.roles.drop_in(&self.db);
    }
}
