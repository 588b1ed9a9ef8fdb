//! Throwaway PostgreSQL clusters owned by one test, for what must not happen
//! to the shared test cluster: restarts, crashes, replicas, config changes.
//!
//! A [`Cluster`] is started with `scripts/cluster.sh start DIR PORT` in a
//! fresh directory (owned by the `postgres` OS user; under `/dev/shm` when it
//! has room, else the temp dir) on a free port, from a copy of a data
//! directory initialised once per test process, and is stopped and removed on
//! Drop, also when the test panics (then the tail of its server log is
//! printed to help the diagnosis).
//!
//! The machine has few cores, so cluster-owning tests run one at a time:
//! every cluster borrows a [`Serial`] guard from [`serial()`], which holds a
//! process-wide lock for as long as the test's clusters live.

use std::marker::PhantomData;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};

use crate::db::random_ident;
use crate::errors::describe;

const DEFAULT_PGBIN: &str = "/usr/lib/postgresql/15/bin";

static SERIAL: Mutex<()> = Mutex::new(());

/// Proof that this test holds the process-wide cluster lock.
pub struct Serial {
    _guard: MutexGuard<'static, ()>,
}

/// Takes the process-wide lock that serialises cluster-owning tests. A test
/// that panicked while holding it does not poison it for the others.
pub fn serial() -> Serial {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Serial { _guard: guard }
}

/// How a cluster is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `shared_preload_libraries = 'api_keys'` (else `API_KEYS_NO_PRELOAD=1`).
    pub preload: bool,
    /// `ALTER SYSTEM SET name = value` applied right after the first start
    /// (then `pg_reload_conf()`); persists across restarts and base backups.
    pub settings: Vec<(String, String)>,
}

impl Options {
    pub fn preloaded() -> Self {
        Options {
            preload: true,
            settings: Vec::new(),
        }
    }

    pub fn not_preloaded() -> Self {
        Options {
            preload: false,
            settings: Vec::new(),
        }
    }

    /// Adds an `ALTER SYSTEM SET name = 'value'`.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn pgbin() -> String {
    std::env::var("API_KEYS_TEST_PGBIN")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_PGBIN.to_owned())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn whoami() -> &'static (u32, String) {
    static WHO: OnceLock<(u32, String)> = OnceLock::new();
    WHO.get_or_init(|| {
        let run = |arg: &str| {
            let out = Command::new("id")
                .arg(arg)
                .output()
                .expect("cannot run `id`");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        (run("-u").parse().unwrap_or(u32::MAX), run("-un"))
    })
}

/// `program args…` run as the `postgres` OS user (PostgreSQL refuses to run
/// as root), from `/` so an unreadable working directory does not matter.
pub fn as_postgres(program: &str) -> Command {
    let (uid, name) = whoami();
    let mut cmd = if name == "postgres" {
        Command::new(program)
    } else if *uid == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "-u", "postgres", "--", program]);
        c
    };
    cmd.current_dir("/");
    cmd
}

fn as_root(program: &str) -> Command {
    let (uid, _) = whoami();
    if *uid == 0 {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    }
}

/// Runs `cmd`, panicking with its output when it fails.
#[track_caller]
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what`
/// after `timeout`.
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A running throwaway cluster; stopped and removed on Drop.
pub struct Cluster<'s> {
    dir: PathBuf,
    port: u16,
    preload: bool,
    _serial: PhantomData<&'s Serial>,
}

impl<'s> Cluster<'s> {
    /// Starts a new cluster in a new directory on a free port, then applies
    /// `options.settings` with ALTER SYSTEM and reloads.
    ///
    /// The cluster comes from a copy of a data directory made once per test
    /// process (initdb is the slow part), and already has a database
    /// [`APP_DB`] with `CREATE EXTENSION api_keys`.
    pub fn start(_serial: &'s Serial, options: Options) -> Self {
        let golden = golden_data();
        // Built first, so that Drop cleans up whatever step below fails.
        let mut cluster = Cluster {
            dir: Self::new_dir("primary"),
            port: 0,
            preload: options.preload,
            _serial: PhantomData,
        };
        run_ok(
            as_root("install")
                .args(["-d", "-o", "postgres", "-g", "postgres", "-m", "0700"])
                .arg(&cluster.dir),
            "creating the cluster directory",
        );
        run_ok(
            as_root("cp").arg("-a").arg(golden).arg(cluster.data_dir()),
            "copying the initial data directory",
        );
        cluster.start_on_free_port();
        if !options.settings.is_empty() {
            let mut c = cluster.connect("postgres");
            for (name, value) in &options.settings {
                c.batch_execute(&format!(
                    "ALTER SYSTEM SET {name} = '{}'",
                    value.replace('\'', "''")
                ))
                .unwrap_or_else(|e| panic!("ALTER SYSTEM SET {name} failed: {}", describe(&e)));
            }
            c.batch_execute("SELECT pg_reload_conf()")
                .expect("pg_reload_conf");
            // The reload is asynchronous: wait until this backend sees it.
            for (name, value) in &options.settings {
                let show = format!("SHOW {name}");
                wait_for(Duration::from_secs(10), &show, || {
                    let mut c = cluster.connect("postgres");
                    let shown: String = c.query_one(show.as_str(), &[]).ok()?.get(0);
                    (normalise(&shown) == normalise(value)).then_some(())
                });
            }
        }
        cluster
    }

    /// A streaming hot standby of this cluster: `pg_basebackup -R -X stream`
    /// into a new directory, started on its own port and socket directory.
    /// Returns once it accepts connections and is in recovery.
    pub fn start_standby(&self) -> Cluster<'s> {
        // Built first, so that Drop cleans up whatever step below fails.
        let mut standby = Cluster {
            dir: Self::new_dir("standby"),
            port: 0,
            preload: self.preload,
            _serial: PhantomData,
        };
        let data = standby.data_dir();
        run_ok(
            as_root("install")
                .args(["-d", "-o", "postgres", "-g", "postgres", "-m", "0700"])
                .arg(&standby.dir),
            "creating the standby directory",
        );
        run_ok(
            as_postgres(&format!("{}/pg_basebackup", pgbin()))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-D"])
                .arg(&data)
                .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]),
            "pg_basebackup of the primary",
        );
        // cluster.sh rewrites api_keys_cluster.conf (copied from the primary
        // with the primary's port and socket dir) on start.
        standby.start_on_free_port();
        let mut c = standby.connect("postgres");
        let in_recovery: bool = c
            .query_one("SELECT pg_is_in_recovery()", &[])
            .expect("pg_is_in_recovery")
            .get(0);
        assert!(in_recovery, "the standby is not in recovery");
        standby
    }

    fn new_dir(role: &str) -> PathBuf {
        scratch_root().join(random_ident(&format!("api-keys-{role}-")))
    }

    fn start_on_free_port(&mut self) {
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let out = Command::new("bash")
                .arg(repo_root().join("scripts/cluster.sh"))
                .arg("start")
                .arg(&self.dir)
                .arg(port.to_string())
                .env("API_KEYS_NO_PRELOAD", if self.preload { "0" } else { "1" })
                .stdin(Stdio::null())
                .output()
                .expect("cannot run scripts/cluster.sh");
            if out.status.success() {
                self.port = port;
                return;
            }
            // Most likely someone took the port in between: try another.
            last_error = format!(
                "{}\n{}\nlog tail:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(20)
            );
        }
        panic!(
            "scripts/cluster.sh start {} failed 5 times; last:\n{last_error}",
            self.dir.display()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn config(&self, dbname: &str) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(dbname)
            .connect_timeout(Duration::from_secs(10));
        config
    }

    pub fn try_connect(&self, dbname: &str) -> Result<Client, postgres::Error> {
        self.config(dbname).connect(NoTls)
    }

    /// A superuser connection to `dbname`.
    #[track_caller]
    pub fn connect(&self, dbname: &str) -> Client {
        self.try_connect(dbname).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {dbname} on port {}: {}\nlog tail:\n{}",
                self.port,
                describe(&e),
                self.log_tail(20)
            )
        })
    }

    /// `CREATE DATABASE name` + `CREATE EXTENSION api_keys` in it; returns a
    /// superuser connection to it.
    #[track_caller]
    pub fn create_database(&self, name: &str) -> Client {
        self.connect("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {}", describe(&e)));
        let mut c = self.connect(name);
        c.batch_execute("CREATE EXTENSION api_keys")
            .unwrap_or_else(|e| panic!("CREATE EXTENSION api_keys failed: {}", describe(&e)));
        c
    }

    /// `pg_ctl restart -m <mode>` (`fast`, or `immediate` for a crash), then
    /// waits until the server accepts connections again.
    pub fn restart(&self, mode: &str) {
        run_ok(
            as_postgres(&format!("{}/pg_ctl", pgbin()))
                .arg("restart")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-m", mode, "-w", "-t", "60"])
                .stdout(Stdio::null()),
            "pg_ctl restart",
        );
        wait_for(Duration::from_secs(30), "the restarted server", || {
            self.try_connect("postgres").ok()
        });
    }

    /// The last `lines` lines of the server log (empty if unreadable).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Waits until `standby` has replayed everything this primary has written
    /// so far.
    #[track_caller]
    pub fn wait_for_replay(&self, standby: &Cluster<'_>) {
        let lsn: String = self
            .connect("postgres")
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .expect("pg_current_wal_lsn")
            .get(0);
        let mut c = standby.connect("postgres");
        wait_for(
            Duration::from_secs(20),
            &format!("the standby to replay up to {lsn}"),
            || {
                let done: Option<bool> = c
                    .query_one(
                        "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                        &[&lsn],
                    )
                    .ok()?
                    .get(0);
                done.unwrap_or(false).then_some(())
            },
        );
    }
}

/// Where cluster directories go: `API_KEYS_TEST_CLUSTER_ROOT` if set, else
/// `/dev/shm` when it is a tmpfs with at least 2 GiB free (file creation and
/// fsync on the disk dominate a throwaway cluster's cost), else the temp dir.
fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("API_KEYS_TEST_CLUSTER_ROOT").filter(|v| !v.is_empty())
        {
            return PathBuf::from(dir);
        }
        let shm = Path::new("/dev/shm");
        let free_kib = Command::new("df")
            .args(["-Pk", "/dev/shm"])
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines()
                    .nth(1)?
                    .split_whitespace()
                    .nth(3)?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        if shm.is_dir() && free_kib >= 2 * 1024 * 1024 {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// The database every [`Cluster::start`]ed cluster has, with the extension.
pub const APP_DB: &str = "app";

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

static GOLDEN: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_golden() {
    if let Some(dir) = GOLDEN.get() {
        let _ = as_root("rm")
            .arg("-rf")
            .arg(dir)
            .stdin(Stdio::null())
            .status();
    }
}

/// A stopped cluster's data directory, made once per process with
/// `scripts/cluster.sh` (initdb, settings, pg_hba) plus database [`APP_DB`]
/// with the extension; removed when the process exits.
fn golden_data() -> PathBuf {
    GOLDEN
        .get_or_init(|| {
            let dir = Cluster::new_dir("initial");
            let mut cluster = Cluster {
                dir: dir.clone(),
                port: 0,
                preload: false,
                _serial: PhantomData,
            };
            // SAFETY: registers a plain function; it only reads GOLDEN.
            unsafe { atexit(remove_golden) };
            cluster.start_on_free_port();
            cluster.create_database(APP_DB);
            let stopped = Command::new("bash")
                .arg(repo_root().join("scripts/cluster.sh"))
                .arg("stop")
                .arg(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("cannot run scripts/cluster.sh stop");
            assert!(
                stopped.status.success(),
                "stopping the initial cluster failed"
            );
            // Nothing left to do on Drop: the directory stays until exit.
            std::mem::forget(cluster);
            dir
        })
        .join("data")
}

/// A setting as SHOW prints it, compared with the value given to ALTER
/// SYSTEM: case and spaces ignored (`'200ms'` shows as `200ms`, `'1h'` as
/// `1h`; give values in the unit SHOW uses).
fn normalise(v: &str) -> String {
    v.trim().to_ascii_lowercase().replace(' ', "")
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        // Never panic here: a failed test may already be unwinding.
        if thread::panicking() {
            eprintln!(
                "--- server log of {} (port {}), last lines ---\n{}\n---",
                self.dir.display(),
                self.port,
                self.log_tail(40)
            );
        }
        let stopped = Command::new("bash")
            .arg(repo_root().join("scripts/cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !stopped {
            let _ = as_postgres(&format!("{}/pg_ctl", pgbin()))
                .arg("stop")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = as_root("rm")
            .arg("-rf")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status();
    }
}
