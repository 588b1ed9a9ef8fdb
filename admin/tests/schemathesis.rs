//! schemathesis (PyPI) against `/openapi.json` with a valid admin key: no
//! 5xx and no answer outside the documented schema. Bounded examples and a
//! fixed seed. Runs when `API_KEYS_SCHEMATHESIS` names the `schemathesis`
//! executable; says so and passes when it is unset.
//!
//! `positive_data_acceptance` is excluded: the extension refuses values the
//! schema cannot express (control characters, NUL, length bounds) with 400,
//! by design.

mod common;

use std::process::Command;

use common::{run, ALL_SCOPES};

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let Some(exe) = std::env::var_os("API_KEYS_SCHEMATHESIS").filter(|v| !v.is_empty()) else {
        eprintln!("API_KEYS_SCHEMATHESIS is not set: schemathesis not run");
        return;
    };
    run(|svc| async move {
        let admin = svc.admin(&ALL_SCOPES).await;
        let url = svc.url("/openapi.json");
        // schemathesis keeps caches in its working directory: not the checkout.
        let workdir = std::env::temp_dir().join("api-keys-admin-schemathesis");
        std::fs::create_dir_all(&workdir).unwrap();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(exe)
                .current_dir(workdir)
                .args(["run", &url, "--max-examples", "25", "--seed", "20261201"])
                .args(["--exclude-checks", "positive_data_acceptance"])
                .arg("--header")
                .arg(format!("Authorization: Bearer {admin}"))
                .env("NO_COLOR", "1")
                .output()
                .expect("run schemathesis")
        })
        .await
        .unwrap();
        let report = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "schemathesis failed:\n{report}");
        assert!(
            report.contains("Tested: 17"),
            "every operation tested:\n{report}"
        );
    });
}
