//! `examples/postgrest/client.py`: the same flow from a backend client
//! outside Rust (Python, psycopg 3), run against a fresh database.

use std::path::PathBuf;
use std::process::Command;

use api_keys_tests::*;

use super::harness::Roles;

/// A test database whose example roles (created by client.py with a random
/// suffix) are dropped before the database.
struct PyExample {
    roles: Roles,
    db: TestDb,
}

impl Drop for PyExample {
    fn drop(&mut self) {
        self.roles.drop_in(&self.db);
    }
}

fn client_py() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/postgrest/client.py")
}

#[test]
fn python_psycopg_client_example_passes_against_a_fresh_database() {
    let ex = PyExample {
        roles: Roles::random(),
        db: TestDb::new(),
    };
    let script = client_py();
    let out = Command::new("python3")
        .arg(&script)
        .env("API_KEYS_EXAMPLE_DSN", ex.db.libpq_dsn())
        .env("API_KEYS_EXAMPLE_ROLE_SUFFIX", &ex.roles.suffix)
        .env_remove("API_KEYS_EXAMPLE_AUTHENTICATOR_DSN")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.success(),
        "client.py exited with {}\n{report}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    let summary = regex::Regex::new(r"^(\d+) passed, 0 failed$").unwrap();
    let passed: u32 = summary
        .captures(last)
        .unwrap_or_else(|| panic!("last line should be `N passed, 0 failed`\n{report}"))[1]
        .parse()
        .unwrap();
    assert!(passed >= 8, "only {passed} checks ran\n{report}");

    // The script really worked in this database, as the suffixed roles.
    let mut c = ex.db.connect();
    let todos: i64 = c
        .query_one("SELECT count(*) FROM app.todos", &[])
        .unwrap()
        .get(0);
    assert!(todos > 0, "client.py left no todos behind");
    let authenticator_exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&ex.roles.authenticator],
        )
        .unwrap()
        .get(0);
    assert!(
        authenticator_exists,
        "client.py did not use the role suffix"
    );
}
