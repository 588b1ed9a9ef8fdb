//! The CLI (SPEC §8) through the built binary: exit codes 0 ok, 1 refused
//! (reason on stderr), 2 usage.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::Env;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_api-keys-admin");

fn cli(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", env.role_dsn())
        .env_remove("API_KEYS_ENVIRONMENT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn code(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

fn verify_sql(env: &Env, token: &str, scopes: &[&str]) -> (String, Option<String>) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let row = env
        .db
        .connect()
        .query_one(
            "SELECT code, owner_type FROM api_keys.api_key_verify($1, $2)",
            &[&token, &scopes],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn bootstrap_prints_one_admin_key_with_all_three_scopes() {
    let env = Env::new();
    let o = cli(&env, &["bootstrap"], None);
    code(&o, 0);
    let out = stdout(&o);
    let token = out.trim();
    assert_eq!(out.lines().count(), 1, "only the token on stdout: {out}");
    assert_eq!(
        verify_sql(&env, token, &["keys:read", "keys:write", "keys:verify"]),
        ("valid".to_owned(), Some("api_keys_admin".to_owned()))
    );
    assert!(!stderr(&o).contains(token), "the token is printed once");
}

#[test]
fn bootstrap_needs_an_environment_once_environments_are_defined() {
    let env = Env::new();
    env.db
        .connect()
        .batch_execute("SELECT api_keys.api_key_environment_define('live', 'live')")
        .unwrap();
    let o = cli(&env, &["bootstrap"], None);
    code(&o, 1);
    assert!(stderr(&o).contains("unknown_environment"), "{}", stderr(&o));
    let o = cli(
        &env,
        &["bootstrap", "--environment", "live", "--json"],
        None,
    );
    code(&o, 0);
    let issued: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(issued["environment"], "live");
    assert!(issued["token"].as_str().unwrap().starts_with("ak_live_"));
}

#[test]
fn bootstrap_needs_the_admin_scopes_registered_once_a_scope_registry_exists() {
    let env = Env::new();
    env.db
        .connect()
        .batch_execute("SELECT api_keys.api_key_scope_define('read')")
        .unwrap();
    let o = cli(&env, &["bootstrap"], None);
    code(&o, 1);
    assert!(stderr(&o).contains("unknown_scope"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("api_key_scope_define('keys:verify')"),
        "{}",
        stderr(&o)
    );
    env.db
        .connect()
        .batch_execute(
            "SELECT api_keys.api_key_scope_define('keys:read'); \
             SELECT api_keys.api_key_scope_define('keys:write'); \
             SELECT api_keys.api_key_scope_define('keys:verify');",
        )
        .unwrap();
    let o = cli(&env, &["bootstrap"], None);
    code(&o, 0);
    let token = stdout(&o).trim().to_owned();
    assert_eq!(verify_sql(&env, &token, &["keys:write"]).0, "valid");
}

#[test]
fn keys_issue_list_get_update_revoke_verify() {
    let env = Env::new();
    let o = cli(
        &env,
        &[
            "keys",
            "issue",
            "--owner-type",
            "user",
            "--owner-id",
            "5",
            "--name",
            "ci",
            "--scope",
            "read",
            "--scope",
            "write",
            "--expires-in",
            "30_days",
        ],
        None,
    );
    code(&o, 0);
    let token = stdout(&o).trim().to_owned();
    assert_eq!(verify_sql(&env, &token, &["write"]).0, "valid");

    let o = cli(
        &env,
        &[
            "keys",
            "list",
            "--owner-type",
            "user",
            "--owner-id",
            "5",
            "--json",
        ],
        None,
    );
    code(&o, 0);
    let keys: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(keys[0]["scopes"], serde_json::json!(["read", "write"]));

    let o = cli(
        &env,
        &["keys", "list", "--owner-type", "user", "--owner-id", "5"],
        None,
    );
    code(&o, 0);
    let table = stdout(&o);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("read,write"),
        "{table}"
    );
    assert!(!table.contains(&token), "a token is printed only by issue");

    let o = cli(
        &env,
        &[
            "keys", "update", &id, "--name", "renamed", "--scope", "read",
        ],
        None,
    );
    code(&o, 0);
    assert!(stdout(&o).contains("renamed"));

    let o = cli(&env, &["keys", "get", &id, "--json"], None);
    code(&o, 0);
    let key: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(key["name"], "renamed");
    assert_eq!(key["scopes"], serde_json::json!(["read"]));

    let o = cli(&env, &["keys", "verify", "--scope", "read"], Some(&token));
    code(&o, 0);
    assert!(stdout(&o).contains("valid"));

    let o = cli(&env, &["keys", "revoke", &id, "--json"], None);
    code(&o, 0);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["revoked"], true);
    assert_eq!(r["key"]["status"], "revoked");

    let o = cli(&env, &["keys", "verify"], Some(&token));
    code(&o, 1);
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));
}

#[test]
fn keys_rotate_prints_the_new_token_once_and_keeps_the_old_one_for_the_grace() {
    let env = Env::new();
    let o = cli(
        &env,
        &[
            "keys",
            "issue",
            "--owner-type",
            "user",
            "--owner-id",
            "9",
            "--json",
        ],
        None,
    );
    code(&o, 0);
    let old: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = old["id"].as_str().unwrap().to_owned();
    let old_token = old["token"].as_str().unwrap().to_owned();

    let o = cli(
        &env,
        &["keys", "rotate", &id, "--grace-seconds", "60"],
        None,
    );
    code(&o, 0);
    let out = stdout(&o);
    let token = out.trim().to_owned();
    assert_eq!(out.lines().count(), 1, "only the token on stdout: {out}");
    assert_ne!(token, old_token);
    assert!(!stderr(&o).contains(&token), "the token is printed once");
    assert_eq!(verify_sql(&env, &token, &[]).0, "valid");
    assert_eq!(verify_sql(&env, &old_token, &[]).0, "valid");

    let o = cli(&env, &["keys", "get", &id, "--json"], None);
    code(&o, 0);
    let info: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(info["replaced_by"].is_string(), "{info}");
    assert!(!stdout(&o).contains(&token) && !stdout(&o).contains(&old_token));

    // a second rotation is refused (exit 1, reason on stderr); so is a bad grace
    let o = cli(&env, &["keys", "rotate", &id], None);
    code(&o, 1);
    assert!(stderr(&o).contains("invalid_argument"), "{}", stderr(&o));
    let o = cli(
        &env,
        &["keys", "rotate", &id, "--grace-seconds", "-5"],
        None,
    );
    code(&o, 2);

    let new_id = info["replaced_by"].as_str().unwrap().to_owned();
    let o = cli(&env, &["keys", "rotate", &new_id, "--json"], None);
    code(&o, 0);
    let third: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(third["token"].is_string());
    assert_eq!(
        verify_sql(&env, &token, &[]).0,
        "revoked",
        "grace 0 revokes now"
    );
}

#[test]
fn refusals_exit_1_with_the_reason_on_stderr() {
    let env = Env::new();
    let o = cli(
        &env,
        &["keys", "get", "0190d7a0-0000-7000-8000-000000000000"],
        None,
    );
    code(&o, 1);
    assert!(
        stderr(&o).starts_with("api_keys: key_not_found"),
        "{}",
        stderr(&o)
    );
    let o = cli(
        &env,
        &[
            "keys",
            "issue",
            "--owner-type",
            "user",
            "--owner-id",
            "1",
            "--expires-in",
            "soon",
        ],
        None,
    );
    code(&o, 1);
    assert!(stderr(&o).contains("invalid_expiry"), "{}", stderr(&o));
    let o = cli(
        &env,
        &[
            "keys",
            "list",
            "--owner-type",
            "user",
            "--owner-id",
            "1",
            "--status",
            "gone",
        ],
        None,
    );
    code(&o, 1);
    assert!(stderr(&o).contains("invalid_argument"), "{}", stderr(&o));
}

#[test]
fn bad_usage_exits_2() {
    let env = Env::new();
    code(
        &cli(&env, &["keys", "issue", "--owner-type", "user"], None),
        2,
    );
    code(&cli(&env, &["keys", "get", "not-a-uuid"], None), 2);
    code(&cli(&env, &["frobnicate"], None), 2);
    let o = Command::new(BIN)
        .args(["keys", "get", "0190d7a0-0000-7000-8000-000000000000"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    code(&o, 2);
}

#[test]
fn serve_answers_with_a_bootstrapped_key_and_stops_on_sigterm() {
    use std::io::Read;
    let env = Env::new();
    let token = stdout(&cli(&env, &["bootstrap"], None)).trim().to_owned();
    let (mut served, addr, _) = serve(&env, &[]);
    let mut lines = served.1.take().expect("the log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let presets = http
            .get(format!("http://{addr}/v1/expiration_presets"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(presets.status(), 200);
        let health = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    });
    let pid = served.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = served.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a graceful shutdown exits 0");
    let mut rest = String::new();
    let _ = lines.read_to_string(&mut rest);
    assert!(rest.contains("shutting down"), "{rest}");
    assert!(
        !rest.contains(&token[token.len() - 38..]),
        "no token in the log"
    );
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // the fields after the command name, which is in parentheses
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A `serve` process and the rest of its log (stderr), killed when
/// dropped (also when a test fails).
struct Served(
    std::process::Child,
    Option<std::io::BufReader<std::process::ChildStderr>>,
);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on 127.0.0.1:0 with `args`; returns it, its address and
/// the log line that gives it.
fn serve(env: &Env, args: &[&str]) -> (Served, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("DATABASE_URL", env.role_dsn())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut served = Served(child, None);
    let mut line = String::new();
    while lines.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.split("listen=").nth(1) {
            let addr = rest.trim().to_owned();
            // at info, the service logs nothing per request: the pipe
            // does not fill while the rest goes unread
            served.1 = Some(lines);
            return (served, addr, line);
        }
        line.clear();
    }
    panic!("the service did not log its address");
}

/// The service spins before parking only while requests start and end: a
/// burst of requests, then one second without any, costs (almost) no CPU
/// in that second; nor does a second in which a request waits on a lock.
#[test]
fn serve_spins_only_while_requests_come_and_go() {
    let env = Env::new();
    let token = stdout(&cli(&env, &["bootstrap"], None)).trim().to_owned();
    let (served, addr, started) = serve(&env, &["--spin-micros", "2000"]);
    assert!(started.contains("spin_micros=2000"), "{started}");
    let pid = served.0.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        http.get(format!("http://{addr}{path}"))
            .bearer_auth(&token)
            .send()
    };
    let idle_ticks = |what: &str| {
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs(1));
        let used = cpu_ticks(pid) - before;
        // spinning would use the whole second: 100 ticks at 100 Hz
        assert!(used <= 3, "{used} ticks of CPU in one second {what}");
    };
    rt.block_on(async {
        let burst = (0..16).map(|_| async {
            for _ in 0..50 {
                assert_eq!(get("/v1/expiration_presets").await.unwrap().status(), 200);
            }
        });
        futures_util::future::join_all(burst).await;
    });
    std::thread::sleep(Duration::from_millis(100));
    idle_ticks("after the burst");

    // A revoke waiting on a row lock: in flight, but no events.
    let mut su = env.db.connect();
    let id: uuid::Uuid = su
        .query_one("SELECT (api_keys.api_key_issue('user', 'spin')).id", &[])
        .unwrap()
        .get(0);
    let mut lock = su.transaction().unwrap();
    lock.execute(
        "SELECT 1 FROM api_keys.keys WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .unwrap();
    let revoke = {
        let (addr, token) = (addr.clone(), token.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                reqwest::Client::new()
                    .post(format!("http://{addr}/v1/keys/{id}/revoke"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!revoke.is_finished(), "the revoke waits on the lock");
    idle_ticks("while a request waits on a lock");
    lock.rollback().unwrap();
    assert_eq!(revoke.join().unwrap(), 200);
}

/// Several request threads: no spin unless asked for (one parked worker
/// holds the sockets, so spinning would only spend CPU).
#[test]
fn serve_with_several_request_threads_does_not_spin_by_default() {
    let env = Env::new();
    let (_served, _, started) = serve(&env, &["--worker-threads", "2"]);
    assert!(started.contains("spin_micros=0"), "{started}");
    let (_served, _, started) = serve(&env, &["--worker-threads", "2", "--spin-micros", "50"]);
    assert!(started.contains("spin_micros=50"), "{started}");
}
