//! Throwaway databases and login roles.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::errors::describe;

const DEFAULT_URL: &str = "postgresql://postgres@127.0.0.1:25432/postgres";
const DEFAULT_TEMPLATE: &str = "api_keys_template";
const DEFAULT_PGBIN: &str = "/usr/lib/postgresql/15/bin";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A lowercase random identifier, safe to splice into SQL unquoted.
pub fn random_ident(prefix: &str) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("{prefix}{suffix}")
}

fn cluster_config() -> Config {
    let url = env_or("API_KEYS_TEST_URL", DEFAULT_URL);
    url.parse().unwrap_or_else(|e| {
        panic!(
            "API_KEYS_TEST_URL {url:?} is not a connection URL: {}",
            describe(&e)
        )
    })
}

fn connect_config(config: &Config) -> Client {
    config.connect(NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test cluster (is scripts/test.sh running it?): {}; \
             hosts {:?} ports {:?} db {:?} user {:?}",
            describe(&e),
            config.get_hosts(),
            config.get_ports(),
            config.get_dbname(),
            config.get_user()
        )
    })
}

/// A database created from the template that has the extension, dropped on Drop.
pub struct TestDb {
    name: String,
    config: Config,
}

impl TestDb {
    pub fn new() -> Self {
        let cluster = cluster_config();
        let template = env_or("API_KEYS_TEST_TEMPLATE", DEFAULT_TEMPLATE);
        let name = random_ident("t_");
        let mut admin = connect_config(&cluster);
        let create = format!("CREATE DATABASE {name} TEMPLATE \"{template}\"");
        // CREATE DATABASE fails with 55006 while any session is connected to
        // the template; such sessions are short-lived, so wait them out.
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&create) {
                Ok(()) => break,
                Err(e)
                    if attempt < 50
                        && e.code() == Some(&postgres::error::SqlState::OBJECT_IN_USE) =>
                {
                    attempt += 1;
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("{create} failed: {}", describe(&e)),
            }
        }
        let mut config = cluster;
        config.dbname(&name);
        TestDb { name, config }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A superuser connection to this database.
    pub fn connect(&self) -> Client {
        connect_config(&self.config)
    }

    /// Like [`connect`](Self::connect), but returns a connection error
    /// instead of panicking (for Drop implementations).
    pub fn try_connect(&self) -> Result<Client, postgres::Error> {
        self.config.connect(NoTls)
    }

    /// A libpq keyword/value connection string for this database as the
    /// superuser, for clients outside Rust (psql, psycopg).
    pub fn libpq_dsn(&self) -> String {
        fn quote(v: &str) -> String {
            format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        let mut parts = vec![format!("dbname={}", quote(&self.name))];
        if let Some(host) = self.config.get_hosts().first() {
            let host = match host {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.to_string_lossy().into_owned(),
            };
            parts.push(format!("host={}", quote(&host)));
        }
        if let Some(port) = self.config.get_ports().first() {
            parts.push(format!("port={port}"));
        }
        if let Some(user) = self.config.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(password) = self.config.get_password() {
            parts.push(format!(
                "password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        parts.join(" ")
    }

    /// A connection to this database as `role` (trust authentication).
    pub fn connect_as(&self, role: &str) -> Client {
        let mut config = self.config.clone();
        config.user(role);
        connect_config(&config)
    }

    /// Like [`connect_as`](Self::connect_as), but returns a connection error
    /// instead of panicking.
    pub fn try_connect_as(&self, role: &str) -> Result<Client, postgres::Error> {
        let mut config = self.config.clone();
        config.user(role);
        config.connect(NoTls)
    }

    /// A superuser connection that records the text of every NOTICE/DEBUG/…
    /// message the server sends.
    pub fn connect_recording_notices(&self) -> (Client, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let mut config = self.config.clone();
        config.notice_callback(move |notice| {
            let mut text = notice.message().to_owned();
            for extra in [notice.detail(), notice.hint(), notice.where_()]
                .into_iter()
                .flatten()
            {
                text.push('\n');
                text.push_str(extra);
            }
            if let Ok(mut v) = sink.lock() {
                v.push(text);
            }
        });
        (connect_config(&config), seen)
    }

    /// Creates a LOGIN role with a random name that may connect to this database.
    pub fn create_login_role(&self) -> TestRole<'_> {
        let name = random_ident("r_");
        let mut c = self.connect();
        c.batch_execute(&format!(
            "CREATE ROLE {name} LOGIN; GRANT CONNECT ON DATABASE {db} TO {name};",
            db = self.name
        ))
        .unwrap_or_else(|e| panic!("creating role {name} failed: {}", describe(&e)));
        TestRole { db: self, name }
    }

    /// The plain-SQL output of `pg_dump` for this database.
    pub fn pg_dump(&self) -> String {
        let pgbin = env_or("API_KEYS_TEST_PGBIN", DEFAULT_PGBIN);
        let mut cmd = Command::new(format!("{pgbin}/pg_dump"));
        if let Some(host) = self.config.get_hosts().first() {
            match host {
                Host::Tcp(h) => cmd.arg("--host").arg(h),
                Host::Unix(p) => cmd.arg("--host").arg(p),
            };
        }
        if let Some(port) = self.config.get_ports().first() {
            cmd.arg("--port").arg(port.to_string());
        }
        if let Some(user) = self.config.get_user() {
            cmd.arg("--username").arg(user);
        }
        cmd.arg("--no-password").arg("--dbname").arg(&self.name);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {pgbin}/pg_dump: {e}"));
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Never panic here: a failed test is already unwinding.
        if let Ok(mut c) = cluster_config().connect(NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A cluster-wide LOGIN role, dropped (with its grants) before its database.
pub struct TestRole<'a> {
    db: &'a TestDb,
    pub name: String,
}

impl TestRole<'_> {
    /// `GRANT <role> TO <this role>`.
    pub fn grant_role(&self, role: &str) {
        self.db
            .connect()
            .batch_execute(&format!("GRANT {role} TO {}", self.name))
            .unwrap_or_else(|e| panic!("GRANT {role} TO {} failed: {}", self.name, describe(&e)));
    }

    /// A connection to the test database as this role.
    pub fn connect(&self) -> Client {
        self.db.connect_as(&self.name)
    }
}

impl Drop for TestRole<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.db.config.connect(NoTls) {
            // DROP OWNED also revokes the CONNECT grant on the database.
            let _ = c.batch_execute(&format!(
                "DROP OWNED BY {n}; DROP ROLE IF EXISTS {n}",
                n = self.name
            ));
        }
    }
}
