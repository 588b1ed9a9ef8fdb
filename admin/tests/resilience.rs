//! Environments and strict isolation for callers, database outages, slow
//! and idle clients.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{run, ALL_SCOPES};
use reqwest::Method;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[test]
fn under_strict_isolation_callers_are_checked_in_the_configured_environment() {
    run(|svc| async move {
        // Issued before environments existed: no environment, passes anywhere.
        let legacy = svc.admin(&ALL_SCOPES).await;
        let db: String = svc
            .su
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        svc.sql(&format!(
            "SELECT api_keys.api_key_environment_define('live', 'live'); \
             SELECT api_keys.api_key_environment_define('test', 'test'); \
             ALTER DATABASE {db} SET api_keys.strict_environment_isolation = on;"
        ))
        .await;
        let issue = |env: &'static str| {
            let su = &svc.su;
            async move {
                let row = su
                    .query_one(
                        "SELECT (api_keys.api_key_issue('api_keys_admin', 'ops', \
                             scopes => '{keys:read,keys:write,keys:verify}', environment => $1)).token",
                        &[&env],
                    )
                    .await
                    .unwrap();
                row.get::<_, String>(0)
            }
        };
        let live = issue("live").await;
        let test = issue("test").await;
        let path = "/v1/expiration_presets";

        // No current environment: every key with an environment fails, closed.
        let unset = svc.sibling(svc.role_config.clone(), None).await;
        unset
            .get(path, &live)
            .await
            .assert_error(401, "unauthorized");
        unset.get(path, &legacy).await.assert_ok(200);

        let in_live = svc.sibling(svc.role_config.clone(), Some("live")).await;
        in_live.get(path, &live).await.assert_ok(200);
        in_live
            .get(path, &test)
            .await
            .assert_error(401, "unauthorized");
        in_live.get(path, &legacy).await.assert_ok(200);

        // The caller's environment does not leak into the work: a new key
        // still needs its own environment.
        in_live
            .post(
                "/v1/keys",
                &live,
                &serde_json::json!({"owner_type": "user", "owner_id": "1"}),
            )
            .await
            .assert_error(400, "unknown_environment");
        let k = in_live
            .post(
                "/v1/keys",
                &live,
                &serde_json::json!({"owner_type": "user", "owner_id": "1", "environment": "test"}),
            )
            .await;
        assert_eq!(k.assert_ok(201)["environment"], "test");
    });
}

/// A TCP relay to PostgreSQL that can be cut (every relayed connection
/// closed, new ones refused) and restored.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: (String, u16)) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().unwrap().push(link);
            }
        });
        Relay { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_database_outage_is_503_everywhere_and_the_service_recovers_without_restart() {
    run(|svc| async move {
        use tokio_postgres::config::Host;
        let host = match &svc.role_config.get_hosts()[0] {
            Host::Tcp(h) => h.clone(),
            #[allow(unreachable_patterns)]
            other => panic!("the test cluster must listen on TCP, not {other:?}"),
        };
        let port = svc.role_config.get_ports()[0];
        let relay = Relay::start((host, port)).await;
        // Config::host/port append to the lists: build a fresh one.
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(relay.port)
            .user(svc.role_config.get_user().unwrap())
            .dbname(svc.role_config.get_dbname().unwrap());
        let svc2 = svc.sibling(config, None).await;
        let admin = svc.admin(&ALL_SCOPES).await;
        svc2.call(Method::GET, "/healthz", None, None)
            .await
            .assert_ok(200);
        svc2.get("/v1/expiration_presets", &admin)
            .await
            .assert_ok(200);

        relay.cut();
        // Let the aborted relays close their sockets.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..3 {
            svc2.call(Method::GET, "/healthz", None, None)
                .await
                .assert_error(503, "unavailable");
            svc2.get("/v1/expiration_presets", &admin)
                .await
                .assert_error(503, "unavailable");
            svc2.post("/v1/verify", &admin, &serde_json::json!({"token": "x"}))
                .await
                .assert_error(503, "unavailable");
        }

        relay.restore();
        svc2.call(Method::GET, "/healthz", None, None)
            .await
            .assert_ok(200);
        svc2.get("/v1/expiration_presets", &admin)
            .await
            .assert_ok(200);
        // The connection verifies share is replaced too.
        let a = svc2
            .post("/v1/verify", &admin, &serde_json::json!({"token": "x"}))
            .await;
        assert_eq!(a.assert_ok(200)["code"], "malformed");
    });
}

#[test]
fn a_thousand_idle_connections_do_not_stop_a_fresh_request() {
    run(|svc| async move {
        use tokio::io::AsyncWriteExt;
        let mut idle = Vec::new();
        for i in 0..1000 {
            let mut tcp = TcpStream::connect(svc.addr).await.unwrap();
            // Half send nothing, half stall in the middle of their headers.
            if i % 2 == 1 {
                tcp.write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\n")
                    .await
                    .unwrap();
            }
            idle.push(tcp);
        }
        let admin = svc.admin(&ALL_SCOPES).await;
        let fresh = tokio::time::timeout(
            Duration::from_secs(5),
            svc.get("/v1/expiration_presets", &admin),
        )
        .await
        .expect("a fresh request is served while 1,000 connections idle");
        fresh.assert_ok(200);
        drop(idle);
    });
}
