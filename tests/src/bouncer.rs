//! A real pgbouncer (Debian's `pgbouncer` package, `/usr/sbin/pgbouncer`) in
//! front of the test cluster, owned by one test.
//!
//! [`Bouncer::start`] writes a `pgbouncer.ini` with one `[databases]` entry
//! for a [`TestDb`], starts pgbouncer in the foreground as a child process on
//! a free port of 127.0.0.1 (as the `postgres` OS user: pgbouncer refuses to
//! run as root), waits until its admin console answers, and on Drop shuts it
//! down (admin `SHUTDOWN`, then SIGKILL) and removes its directory. Its log
//! (stderr) is kept in that directory and printed when a test panics.
//!
//! Authentication is `trust` on both sides: pgbouncer lets in the users
//! listed in its `auth_file` without a password and logs in to the cluster
//! (trust on 127.0.0.1) as the same user.

use std::fs::{self, File};
use std::marker::PhantomData;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use postgres::config::Host;
use postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::cluster::{as_postgres, free_port};
use crate::db::{random_ident, TestDb};
use crate::errors::describe;

/// Where Debian's package puts the binary.
pub const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

const DEFAULT_URL: &str = "postgresql://postgres@127.0.0.1:25432/postgres";

/// How pgbouncer is configured (the `[pgbouncer]` section).
#[derive(Debug, Clone)]
pub struct BouncerOptions {
    /// `pool_mode`: `transaction` (the default here), `session` or `statement`.
    pub pool_mode: String,
    /// `default_pool_size`: server connections per (database, user) pair.
    pub default_pool_size: u32,
    /// Users allowed in (besides `postgres`, always listed and admin).
    pub users: Vec<String>,
    /// Further `name = value` lines, verbatim.
    pub extra: Vec<(String, String)>,
}

impl Default for BouncerOptions {
    fn default() -> Self {
        BouncerOptions {
            pool_mode: "transaction".to_owned(),
            default_pool_size: 2,
            users: Vec::new(),
            extra: Vec::new(),
        }
    }
}

impl BouncerOptions {
    pub fn pool_size(mut self, n: u32) -> Self {
        self.default_pool_size = n;
        self
    }

    pub fn user(mut self, name: &str) -> Self {
        self.users.push(name.to_owned());
        self
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The version of the installed pgbouncer, e.g. `(1, 18, 0)`, from
/// `pgbouncer --version` (`PgBouncer 1.18.0`).
pub fn pgbouncer_version() -> (u32, u32, u32) {
    let out = Command::new(PGBOUNCER)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {PGBOUNCER} (is Debian's pgbouncer package installed? scripts/setup.sh installs it): {e}")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_version(&text)
        .unwrap_or_else(|| panic!("unexpected `pgbouncer --version` output: {text:?}"))
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let first = text.lines().next()?;
    let v = first.strip_prefix("PgBouncer ")?.trim();
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>());
    Some((
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next().and_then(|p| p.ok()).unwrap_or(0),
    ))
}

/// Host, port and user of the test cluster (`API_KEYS_TEST_URL`).
fn upstream() -> (String, u16) {
    let url = std::env::var("API_KEYS_TEST_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let config: Config = url
        .parse()
        .unwrap_or_else(|e| panic!("API_KEYS_TEST_URL {url:?}: {}", describe(&e)));
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.to_string_lossy().into_owned(),
        None => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    (host, port)
}

/// A running pgbouncer in front of one test database; stopped on Drop.
/// It borrows the database so that it is dropped (and its server
/// connections closed) before the database.
pub struct Bouncer<'db> {
    dir: PathBuf,
    port: u16,
    dbname: String,
    child: Option<Child>,
    _db: PhantomData<&'db TestDb>,
}

/// How one start attempt ended.
enum Started {
    Up(Child),
    /// The port was taken in between: try another.
    PortTaken,
    /// pgbouncer exited: its log of this attempt.
    Exited(String),
}

impl<'db> Bouncer<'db> {
    /// Starts pgbouncer with `options`, with one database entry: the test
    /// database under its own name. Panics (with the log) if it exits.
    #[track_caller]
    pub fn start(db: &'db TestDb, options: BouncerOptions) -> Self {
        Self::try_start(db, options)
            .unwrap_or_else(|log| panic!("pgbouncer exited at start:\n{log}"))
    }

    /// Like [`start`](Self::start), but when pgbouncer exits at start (for
    /// example on a setting it does not know) returns its log instead.
    pub fn try_start(db: &'db TestDb, options: BouncerOptions) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(random_ident("api-keys-pgbouncer-"));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        // The postgres user must be able to read the config and auth file.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
        let mut bouncer = Bouncer {
            dir,
            port: 0,
            dbname: db.name().to_owned(),
            child: None,
            _db: PhantomData,
        };
        let mut users = vec!["postgres".to_owned()];
        users.extend(options.users.iter().cloned());
        let userlist: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
        bouncer.write("userlist.txt", &userlist);
        for _attempt in 0..5 {
            let port = free_port();
            bouncer.write("pgbouncer.ini", &bouncer.ini(port, &options));
            match bouncer.spawn(port) {
                Started::Up(child) => {
                    bouncer.child = Some(child);
                    bouncer.port = port;
                    return Ok(bouncer);
                }
                Started::PortTaken => continue,
                Started::Exited(log) => return Err(log),
            }
        }
        panic!(
            "pgbouncer could not get a free port in 5 attempts:\n{}",
            bouncer.log()
        );
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    }

    fn ini(&self, port: u16, options: &BouncerOptions) -> String {
        let (host, upstream_port) = upstream();
        let mut ini = format!(
            "[databases]\n\
             {db} = host={host} port={upstream_port} dbname={db}\n\
             \n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             admin_users = postgres\n\
             pool_mode = {mode}\n\
             default_pool_size = {size}\n\
             max_client_conn = 500\n\
             log_connections = 0\n\
             log_disconnections = 0\n",
            db = self.dbname,
            auth = self.dir.join("userlist.txt").display(),
            mode = options.pool_mode,
            size = options.default_pool_size,
        );
        for (name, value) in &options.extra {
            ini.push_str(&format!("{name} = {value}\n"));
        }
        ini
    }

    /// pgbouncer in the foreground, as the postgres OS user, its stderr
    /// (the log) appended to `DIR/log`.
    fn command(&self) -> Command {
        let config = self.dir.join("pgbouncer.ini");
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let mut cmd = if is_root {
            // pgbouncer drops to the user itself: the child is pgbouncer.
            let mut c = Command::new(PGBOUNCER);
            c.args(["-u", "postgres"]);
            c.current_dir("/");
            c
        } else {
            as_postgres(PGBOUNCER)
        };
        cmd.arg(config);
        cmd
    }

    fn spawn(&self, port: u16) -> Started {
        let log_path = self.dir.join("log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log_path.display()));
        let start_of_attempt = self.log().len();
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {PGBOUNCER} (Debian's pgbouncer package; scripts/setup.sh installs it): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for pgbouncer") {
                let log = self.log();
                let attempt = log.get(start_of_attempt..).unwrap_or(&log);
                if attempt.contains("Address already in use") {
                    return Started::PortTaken;
                }
                return Started::Exited(format!("({status})\n{attempt}"));
            }
            if self.admin_config(port).connect(NoTls).is_ok() {
                return Started::Up(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pgbouncer did not answer on port {port} in 15 s:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn admin_config(&self, port: u16) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .dbname("pgbouncer")
            .connect_timeout(Duration::from_secs(5));
        config
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connection settings for the test database through pgbouncer as `user`.
    pub fn config(&self, user: &str) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .dbname(&self.dbname)
            .connect_timeout(Duration::from_secs(10));
        config
    }

    /// A libpq keyword/value string for the test database through pgbouncer.
    pub fn libpq_dsn(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={} user={user}",
            self.port, self.dbname
        )
    }

    /// A client connection through pgbouncer as `user`.
    #[track_caller]
    pub fn connect_as(&self, user: &str) -> Client {
        self.config(user).connect(NoTls).unwrap_or_else(|e| {
            panic!(
                "cannot connect through pgbouncer on port {} as {user}: {}\nlog:\n{}",
                self.port,
                describe(&e),
                self.log()
            )
        })
    }

    /// A connection to pgbouncer's admin console (database `pgbouncer`; it
    /// only speaks the simple query protocol: use `simple_query`).
    pub fn admin(&self) -> Client {
        self.admin_config(self.port)
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("pgbouncer admin console: {}", describe(&e)))
    }

    /// `SHOW <what>` on the admin console, as rows of (column, value).
    pub fn show(&self, what: &str) -> Vec<Vec<(String, Option<String>)>> {
        let messages = self
            .admin()
            .simple_query(&format!("SHOW {what}"))
            .unwrap_or_else(|e| panic!("SHOW {what}: {}", describe(&e)));
        messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    row.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.name().to_owned(), row.get(i).map(str::to_owned)))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// pgbouncer's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Bouncer<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SHUTDOWN closes the admin connection without an answer.
            if let Ok(mut admin) = self.admin_config(self.port).connect(NoTls) {
                let _ = admin.simple_query("SHUTDOWN");
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if thread::panicking() {
            eprintln!(
                "--- pgbouncer log ({}) ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_pgbouncer_version() {
        assert_eq!(
            parse_version("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n"),
            Some((1, 18, 0))
        );
        assert_eq!(parse_version("PgBouncer 1.23\n"), Some((1, 23, 0)));
        assert_eq!(parse_version("something else"), None);
    }
}
