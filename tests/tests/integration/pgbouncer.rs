//! Through a real pgbouncer in transaction-pooling mode (issue 9 §5).
//!
//! Every test starts its own pgbouncer (Debian's package, see
//! `api_keys_tests::bouncer`) in front of its own test database with
//! `pool_mode = transaction` and `default_pool_size = 2`: however many
//! clients connect, they share two server connections (backends), and
//! consecutive transactions of one client may run on different backends.
//!
//! Shown here:
//! - `api_key_verify` and PostgREST-style `api_key_authenticate()` plus the
//!   identity helpers work through pgbouncer, inside one transaction;
//! - the identity set by `api_key_authenticate` never reaches another
//!   client's transaction on the same backend (24 clients, 2 backends,
//!   thousands of transactions, every backend hand-over recorded);
//! - what does and does not work with prepared statements on this pgbouncer
//!   version (1.18, which has no `max_prepared_statements`), with the
//!   failure modes as they happen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use api_keys_tests::bouncer::{pgbouncer_version, Bouncer, BouncerOptions};
use api_keys_tests::*;
use postgres::types::Type;
use postgres::{Client, SimpleQueryMessage};
use serde_json::json;

// ---------------------------------------------------------------------------
// Fixture: a test database with an RLS-protected table, a login role for the
// application (api_keys_verifier, subject to RLS), keys for many owners.
// ---------------------------------------------------------------------------

/// The application's tables: `notes` readable only by the authenticated
/// owner (RLS on `api_keys.current_owner_id()`), and a sequence that orders
/// the identity checks of all transactions on all backends.
fn create_schema(db: &TestDb, app_role: &str) {
    db.connect()
        .batch_execute(&format!(
            "CREATE TABLE notes (id bigserial PRIMARY KEY, owner_id text NOT NULL, body text NOT NULL);
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own_notes ON notes
                 USING (owner_id = (SELECT api_keys.current_owner_id()));
             GRANT SELECT ON notes TO {app_role};
             CREATE SEQUENCE check_seq;
             GRANT USAGE ON SEQUENCE check_seq TO {app_role};"
        ))
        .unwrap_or_else(|e| panic!("creating the schema: {}", describe(&e)));
}

/// One owner with a key, its notes, and a scope of its own (`tag:<n>`).
#[derive(Debug, Clone)]
struct Owner {
    n: usize,
    owner_id: String,
    key: IssuedKey,
}

impl Owner {
    fn tag(&self) -> String {
        format!("tag:{}", self.n)
    }
}

fn owners(db: &TestDb, count: usize) -> Vec<Owner> {
    let mut c = db.connect();
    (0..count)
        .map(|n| {
            let owner_id = format!("owner-{n:02}");
            let scopes = vec!["notes:read".to_owned(), format!("tag:{n}")];
            let key = issue(
                &mut c,
                "owner_type => 'user', owner_id => $1::text, scopes => $2::text[]",
                &[&owner_id, &scopes],
            );
            c.execute(
                "INSERT INTO notes (owner_id, body) VALUES ($1, 'first'), ($1, 'second')",
                &[&owner_id],
            )
            .unwrap_or_else(|e| panic!("seeding notes: {}", describe(&e)));
            Owner { n, owner_id, key }
        })
        .collect()
}

/// A revoked key (authenticate answers PT401 `revoked`).
fn revoked_key(db: &TestDb) -> IssuedKey {
    let mut c = db.connect();
    let key = issue_for(&mut c, "user", "revoked-owner");
    assert!(revoke(&mut c, key.id));
    key
}

/// `request.headers` as PostgREST builds it (lower-cased names).
fn headers_with_key(token: &str) -> String {
    json!({"host": "localhost:3000", "user-agent": "curl/8.5.0", "x-api-key": token}).to_string()
}

fn headers_without_key() -> String {
    json!({"host": "localhost:3000", "user-agent": "curl/8.5.0"}).to_string()
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What one statement saw of the identity, all as text (so that the simple
/// and the extended protocol answer alike).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    pid: i32,
    seq: i64,
    owner_type: Option<String>,
    owner_id: Option<String>,
    key_id: Option<String>,
    scopes: Option<String>,
    has_notes_read: Option<String>,
    has_own_tag: Option<String>,
    has_other_tag: Option<String>,
    /// The owners of the notes RLS lets through, `{…}`.
    visible: Option<String>,
}

impl Seen {
    /// The identity part, to compare with what was expected.
    fn identity(&self) -> Identity {
        Identity {
            owner_type: self.owner_type.clone(),
            owner_id: self.owner_id.clone(),
            key_id: self.key_id.clone(),
            scopes: self.scopes.clone(),
            has_notes_read: self.has_notes_read.clone(),
            has_own_tag: self.has_own_tag.clone(),
            has_other_tag: self.has_other_tag.clone(),
            visible: self.visible.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    owner_type: Option<String>,
    owner_id: Option<String>,
    key_id: Option<String>,
    scopes: Option<String>,
    has_notes_read: Option<String>,
    has_own_tag: Option<String>,
    has_other_tag: Option<String>,
    visible: Option<String>,
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// What `owner`'s authenticated transaction must see.
fn authenticated_as(owner: &Owner) -> Identity {
    Identity {
        owner_type: s("user"),
        owner_id: Some(owner.owner_id.clone()),
        key_id: Some(owner.key.id.to_string()),
        scopes: Some(format!("{{notes:read,tag:{}}}", owner.n)),
        has_notes_read: s("true"),
        has_own_tag: s("true"),
        has_other_tag: s("false"),
        visible: Some(format!("{{{}}}", owner.owner_id)),
    }
}

/// What a statement without an authenticated key must see.
fn anonymous() -> Identity {
    Identity {
        owner_type: None,
        owner_id: None,
        key_id: None,
        scopes: None,
        has_notes_read: s("false"),
        has_own_tag: s("false"),
        has_other_tag: s("false"),
        visible: s("{}"),
    }
}

/// The identity query: backend pid, a global order, every identity helper,
/// and what RLS shows. `other` is a scope another owner holds.
fn identity_sql(own_tag: &str, other_tag: &str) -> String {
    format!(
        "SELECT pg_backend_pid()::text, nextval('check_seq')::text, \
                api_keys.current_owner_type(), api_keys.current_owner_id(), \
                api_keys.current_key_id()::text, api_keys.current_scopes()::text, \
                api_keys.has_scope('notes:read')::text, api_keys.has_scope({})::text, \
                api_keys.has_scope({})::text, \
                ARRAY(SELECT DISTINCT owner_id FROM notes ORDER BY 1)::text",
        sql_literal(own_tag),
        sql_literal(other_tag)
    )
}

fn seen_from_texts(v: Vec<Option<String>>) -> Seen {
    assert_eq!(v.len(), 10, "identity query columns");
    let mut it = v.into_iter();
    let mut next = || it.next().unwrap();
    Seen {
        pid: next().unwrap().parse().unwrap(),
        seq: next().unwrap().parse().unwrap(),
        owner_type: next(),
        owner_id: next(),
        key_id: next(),
        scopes: next(),
        has_notes_read: next(),
        has_own_tag: next(),
        has_other_tag: next(),
        visible: next(),
    }
}

/// The rows of a simple-protocol answer, as text.
fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

/// The single row of the last statement of a simple-protocol answer.
fn simple_one(messages: &[SimpleQueryMessage]) -> Vec<Option<String>> {
    let rows = simple_rows(messages);
    assert_eq!(rows.len(), 1, "expected one row: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// How a client speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// rust-postgres `query` inside `client.transaction()` (named prepared
    /// statements, pinned to the backend for the transaction), and
    /// `query_typed` (the unnamed statement) outside transactions.
    Extended,
    /// One `Query` message per statement (`simple_query`).
    Simple,
}

/// A client of the pool: one pgbouncer connection.
struct AppClient {
    client: Client,
    protocol: Protocol,
    identity_sql: String,
}

impl AppClient {
    /// The identity query as an autocommit statement: `query_typed` (the
    /// unnamed statement, one round trip) or `simple_query`.
    fn autocommit_check(&mut self) -> Seen {
        let texts = match self.protocol {
            Protocol::Extended => {
                let row = self
                    .client
                    .query_typed(self.identity_sql.as_str(), &[])
                    .unwrap_or_else(|e| panic!("identity query (query_typed): {}", describe(&e)));
                assert_eq!(row.len(), 1);
                (0..row[0].len())
                    .map(|i| row[0].get::<_, Option<String>>(i))
                    .collect()
            }
            Protocol::Simple => simple_one(
                &self
                    .client
                    .simple_query(&self.identity_sql)
                    .unwrap_or_else(|e| panic!("identity query (simple): {}", describe(&e))),
            ),
        };
        seen_from_texts(texts)
    }
}

// ---------------------------------------------------------------------------
// 1. verify and authenticate through pgbouncer
// ---------------------------------------------------------------------------

#[test]
fn verify_and_postgrest_style_authenticate_work_through_transaction_pooling() {
    let db = TestDb::new();
    let app = db.create_login_role();
    app.grant_role("api_keys_verifier");
    create_schema(&db, &app.name);
    let people = owners(&db, 2);
    let (alice, bob) = (&people[0], &people[1]);
    let revoked = revoked_key(&db);
    let bouncer = Bouncer::start(&db, BouncerOptions::default().user(&app.name));
    let mut c = bouncer.connect_as(&app.name);

    // It is pgbouncer that answers, in transaction mode.
    let pools = bouncer.show("POOLS");
    let pool = pools
        .iter()
        .find(|p| {
            p.iter()
                .any(|(k, v)| k == "database" && v.as_deref() == Some(db.name()))
        })
        .unwrap_or_else(|| panic!("no pool for {} in SHOW POOLS: {pools:?}", db.name()));
    let mode = pool
        .iter()
        .find(|(k, _)| k == "pool_mode")
        .unwrap()
        .1
        .clone();
    assert_eq!(mode.as_deref(), Some("transaction"));

    // api_key_verify outside a transaction: the unnamed statement
    // (query_typed: Parse/Bind/Execute/Sync in one go) and the simple protocol.
    let rows = c
        .query_typed(
            "SELECT valid, code, owner_id, scopes FROM api_keys.api_key_verify($1)",
            &[(&alice.key.token, Type::TEXT)],
        )
        .unwrap_or_else(|e| panic!("verify via query_typed: {}", describe(&e)));
    assert_eq!(rows.len(), 1);
    assert!(rows[0].get::<_, bool>("valid"));
    assert_eq!(rows[0].get::<_, String>("code"), "valid");
    assert_eq!(rows[0].get::<_, String>("owner_id"), alice.owner_id);
    assert_eq!(
        rows[0].get::<_, Vec<String>>("scopes"),
        ["notes:read".to_owned(), alice.tag()]
    );
    let row = simple_one(
        &c.simple_query(&format!(
            "SELECT valid, code, owner_id FROM api_keys.api_key_verify({})",
            sql_literal(&bob.key.token)
        ))
        .unwrap_or_else(|e| panic!("verify via simple_query: {}", describe(&e))),
    );
    assert_eq!(row, [s("t"), s("valid"), Some(bob.owner_id.clone())]);

    // Inside a transaction rust-postgres' ordinary `query` (a named prepared
    // statement) works: the transaction keeps its backend.
    {
        let mut tx = c.transaction().unwrap();
        verify(&mut tx, &alice.key.token).assert_code("valid");
        verify_scopes(&mut tx, &alice.key.token, &["notes:write"])
            .assert_code("insufficient_scope");
        verify(&mut tx, &revoked.token).assert_code("revoked");
        tx.commit().unwrap();
    }

    // PostgREST's transaction: settings with set_config(..., true), the
    // pre-request function, then the query reading the identity.
    let identity_sql = identity_sql(&alice.tag(), &bob.tag());
    let mut tx = c.transaction().unwrap();
    tx.query(
        "SELECT set_config('request.method', 'GET', true), \
                set_config('request.path', '/notes', true), \
                set_config('request.headers', $1, true)",
        &[&headers_with_key(&alice.key.token)],
    )
    .unwrap();
    tx.execute("SELECT api_keys.api_key_authenticate()", &[])
        .unwrap_or_else(|e| panic!("authenticate through pgbouncer: {}", describe(&e)));
    let row = tx.query_one(identity_sql.as_str(), &[]).unwrap();
    let seen = seen_from_texts((0..row.len()).map(|i| row.get(i)).collect());
    assert_eq!(seen.identity(), authenticated_as(alice));
    let notes: Vec<String> = tx
        .query("SELECT body FROM notes ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(notes, ["first", "second"], "RLS shows alice's notes only");
    tx.commit().unwrap();

    // `Authorization: Bearer <token>` and the pre-request with required scopes.
    let mut tx = c.transaction().unwrap();
    tx.query(
        "SELECT set_config('request.headers', $1, true)",
        &[&json!({"authorization": format!("Bearer {}", bob.key.token)}).to_string()],
    )
    .unwrap();
    tx.execute(
        "SELECT api_keys.api_key_authenticate($1::text[])",
        &[&vec!["notes:read".to_owned()]],
    )
    .unwrap();
    let owner: Option<String> = tx
        .query_one("SELECT api_keys.current_owner_id()", &[])
        .unwrap()
        .get(0);
    assert_eq!(owner.as_deref(), Some(bob.owner_id.as_str()));
    tx.commit().unwrap();

    // 403 and 401 through pgbouncer: the error reaches the client, the
    // client connection survives the rolled-back transaction.
    let mut tx = c.transaction().unwrap();
    tx.query(
        "SELECT set_config('request.headers', $1, true)",
        &[&headers_with_key(&alice.key.token)],
    )
    .unwrap();
    assert_api_error(
        tx.execute(
            "SELECT api_keys.api_key_authenticate(ARRAY['notes:write'])",
            &[],
        ),
        "PT403",
        "insufficient_scope",
    );
    drop(tx); // ROLLBACK
    let mut tx = c.transaction().unwrap();
    tx.query(
        "SELECT set_config('request.headers', $1, true)",
        &[&headers_with_key(&revoked.token)],
    )
    .unwrap();
    assert_api_error(
        tx.execute("SELECT api_keys.api_key_authenticate()", &[]),
        "PT401",
        "revoked",
    );
    drop(tx);

    // The next transaction of this client sees no identity.
    let mut tx = c.transaction().unwrap();
    let row = tx.query_one(identity_sql.as_str(), &[]).unwrap();
    let seen = seen_from_texts((0..row.len()).map(|i| row.get(i)).collect());
    assert_eq!(seen.identity(), anonymous());
    tx.commit().unwrap();

    // Several statements in ONE simple-protocol message are one implicit
    // transaction: the identity holds until its end, and not after.
    let messages = c
        .simple_query(&format!(
            "SELECT set_config('request.headers', {}, true); \
             SELECT api_keys.api_key_authenticate(); \
             SELECT api_keys.current_owner_id()",
            sql_literal(&headers_with_key(&bob.key.token))
        ))
        .unwrap_or_else(|e| panic!("one-message transaction: {}", describe(&e)));
    assert_eq!(
        simple_rows(&messages).last().unwrap(),
        &[Some(bob.owner_id.clone())]
    );
    let row = simple_one(
        &c.simple_query("SELECT api_keys.current_owner_id()")
            .unwrap(),
    );
    assert_eq!(row, [None]);

    // Autocommit statements are separate transactions: the transaction-local
    // headers are gone by the next statement, so authenticate finds no key;
    // and an identity does not outlive its statement.
    c.simple_query(&format!(
        "SELECT set_config('request.headers', {}, true)",
        sql_literal(&headers_with_key(&alice.key.token))
    ))
    .unwrap();
    assert_sqlstate(
        c.simple_query("SELECT api_keys.api_key_authenticate()"),
        "PT401",
    );
    let row = simple_one(
        &c.simple_query("SELECT api_keys.current_owner_id()")
            .unwrap(),
    );
    assert_eq!(row, [None]);
}

// ---------------------------------------------------------------------------
// 2. The identity never crosses clients sharing the backends
// ---------------------------------------------------------------------------

const CLIENTS: usize = 24;
const ROUNDS: usize = 24;

/// What a transaction did, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Before `api_key_authenticate` in a transaction: must be anonymous.
    BeforeAuthenticate,
    /// After it: must be the client's own identity.
    Authenticated,
    /// A transaction that never authenticates.
    NoAuthenticate,
    /// An autocommit statement.
    Autocommit,
}

/// One identity check: who ran it, in what step, what it saw.
#[derive(Debug, Clone)]
struct Check {
    client: usize,
    step: Step,
    seen: Seen,
}

/// Runs `ROUNDS` rounds of transactions for `owner` on `app`; returns every
/// check, and a description of every check that did not see what it must.
fn run_client(
    mut app: AppClient,
    owner: &Owner,
    revoked: &IssuedKey,
    barrier: &Barrier,
) -> (Vec<Check>, Vec<String>) {
    let mut checks = Vec::new();
    let mut wrong = Vec::new();
    let mine = authenticated_as(owner);
    let nobody = anonymous();
    let mut record = |step: Step, seen: Seen, must: &Identity, round: usize| {
        if seen.identity() != *must {
            wrong.push(format!(
                "client {} ({:?}) round {round} {step:?} on backend {} saw {:?}, must see {:?}",
                owner.n,
                app_protocol(owner.n),
                seen.pid,
                seen.identity(),
                must
            ));
        }
        checks.push(Check {
            client: owner.n,
            step,
            seen,
        });
    };
    let good_headers = headers_with_key(&owner.key.token);
    let bad_headers = headers_with_key(&revoked.token);
    barrier.wait();
    for round in 0..ROUNDS {
        // A: authenticate (every 4th round with a revoked key: PT401),
        // committed on even rounds, rolled back on odd ones.
        let revoked_round = round % 4 == 3;
        let headers = if revoked_round {
            &bad_headers
        } else {
            &good_headers
        };
        match app.protocol {
            Protocol::Extended => {
                let identity_sql = app.identity_sql.clone();
                let mut tx = app.client.transaction().unwrap();
                let row = tx.query_one(identity_sql.as_str(), &[]).unwrap();
                let seen = seen_from_texts((0..row.len()).map(|i| row.get(i)).collect());
                record(Step::BeforeAuthenticate, seen, &nobody, round);
                tx.query("SELECT set_config('request.headers', $1, true)", &[headers])
                    .unwrap();
                let auth = tx.execute("SELECT api_keys.api_key_authenticate()", &[]);
                if revoked_round {
                    assert_api_error(auth, "PT401", "revoked");
                    drop(tx); // ROLLBACK
                } else {
                    auth.unwrap_or_else(|e| panic!("authenticate: {}", describe(&e)));
                    for _ in 0..2 {
                        let row = tx.query_one(identity_sql.as_str(), &[]).unwrap();
                        let seen = seen_from_texts((0..row.len()).map(|i| row.get(i)).collect());
                        record(Step::Authenticated, seen, &mine, round);
                        thread::yield_now();
                    }
                    if round % 2 == 0 {
                        tx.commit().unwrap();
                    } else {
                        tx.rollback().unwrap();
                    }
                }
            }
            Protocol::Simple => {
                let c = &mut app.client;
                c.simple_query("BEGIN").unwrap();
                let sql = app.identity_sql.clone();
                let seen = seen_from_texts(simple_one(&c.simple_query(&sql).unwrap()));
                record(Step::BeforeAuthenticate, seen, &nobody, round);
                c.simple_query(&format!(
                    "SELECT set_config('request.headers', {}, true)",
                    sql_literal(headers)
                ))
                .unwrap();
                let auth = c.simple_query("SELECT api_keys.api_key_authenticate()");
                if revoked_round {
                    assert_api_error(auth, "PT401", "revoked");
                    c.simple_query("ROLLBACK").unwrap();
                } else {
                    auth.unwrap_or_else(|e| panic!("authenticate: {}", describe(&e)));
                    for _ in 0..2 {
                        let seen = seen_from_texts(simple_one(&c.simple_query(&sql).unwrap()));
                        record(Step::Authenticated, seen, &mine, round);
                        thread::yield_now();
                    }
                    let end = if round % 2 == 0 { "COMMIT" } else { "ROLLBACK" };
                    c.simple_query(end).unwrap();
                }
            }
        }
        // B: a transaction that never authenticates (it sets headers
        // without a key, as a request without one would).
        match app.protocol {
            Protocol::Extended => {
                let identity_sql = app.identity_sql.clone();
                let mut tx = app.client.transaction().unwrap();
                tx.query(
                    "SELECT set_config('request.headers', $1, true)",
                    &[&headers_without_key()],
                )
                .unwrap();
                let row = tx.query_one(identity_sql.as_str(), &[]).unwrap();
                let seen = seen_from_texts((0..row.len()).map(|i| row.get(i)).collect());
                record(Step::NoAuthenticate, seen, &nobody, round);
                tx.commit().unwrap();
            }
            Protocol::Simple => {
                let c = &mut app.client;
                c.simple_query("BEGIN").unwrap();
                let seen = seen_from_texts(simple_one(
                    &c.simple_query(&app.identity_sql.clone()).unwrap(),
                ));
                record(Step::NoAuthenticate, seen, &nobody, round);
                c.simple_query("COMMIT").unwrap();
            }
        }
        // C: an autocommit statement.
        let seen = app.autocommit_check();
        record(Step::Autocommit, seen, &nobody, round);
    }
    (checks, wrong)
}

fn app_protocol(n: usize) -> Protocol {
    if n.is_multiple_of(2) {
        Protocol::Extended
    } else {
        Protocol::Simple
    }
}

#[test]
fn identity_never_reaches_another_client_sharing_the_two_backends() {
    let started = Instant::now();
    let db = TestDb::new();
    let app = db.create_login_role();
    app.grant_role("api_keys_verifier");
    create_schema(&db, &app.name);
    let people = owners(&db, CLIENTS);
    let revoked = revoked_key(&db);
    let bouncer = Bouncer::start(&db, BouncerOptions::default().pool_size(2).user(&app.name));

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = people
        .iter()
        .map(|owner| {
            let other = &people[(owner.n + 1) % CLIENTS];
            let client = AppClient {
                client: bouncer.connect_as(&app.name),
                protocol: app_protocol(owner.n),
                identity_sql: identity_sql(&owner.tag(), &other.tag()),
            };
            let owner = owner.clone();
            let revoked = revoked.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || run_client(client, &owner, &revoked, &barrier))
        })
        .collect();
    let mut checks = Vec::new();
    let mut wrong = Vec::new();
    for h in handles {
        let (c, w) = h.join().expect("a client thread panicked");
        checks.extend(c);
        wrong.extend(w);
    }
    let elapsed = started.elapsed();

    assert!(
        wrong.is_empty(),
        "{} of {} identity checks saw the wrong identity; first ones:\n{}",
        wrong.len(),
        checks.len(),
        wrong
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Per round: before + 2 authenticated + no-authenticate + autocommit,
    // or, with the revoked key, before + no-authenticate + autocommit.
    let revoked_rounds = (0..ROUNDS).filter(|r| r % 4 == 3).count();
    let expected = CLIENTS * ((ROUNDS - revoked_rounds) * 5 + revoked_rounds * 3);
    assert_eq!(checks.len(), expected, "identity checks run");

    // The backends were shared: at most two for 24 clients.
    let mut by_pid: BTreeMap<i32, Vec<&Check>> = BTreeMap::new();
    for c in &checks {
        by_pid.entry(c.seen.pid).or_default().push(c);
    }
    assert!(
        by_pid.len() <= 2,
        "default_pool_size = 2, but {} backends served the clients: {:?}",
        by_pid.len(),
        by_pid.keys().collect::<Vec<_>>()
    );
    let clients_per_pid: BTreeMap<i32, usize> = by_pid
        .iter()
        .map(|(pid, cs)| {
            (
                *pid,
                cs.iter().map(|c| c.client).collect::<BTreeSet<_>>().len(),
            )
        })
        .collect();
    assert!(
        clients_per_pid.values().any(|&n| n >= CLIENTS / 2),
        "no backend was shared by at least {} clients: {clients_per_pid:?}",
        CLIENTS / 2
    );

    // Walk each backend's checks in the order they ran (check_seq is not
    // transactional): count hand-overs right after an authenticated
    // transaction to another client, whose checks (already verified above)
    // saw no identity or only their own.
    let mut handovers_after_auth = 0;
    let mut anonymous_after_foreign_auth = 0;
    let mut pairs = BTreeSet::new();
    for cs in by_pid.values_mut() {
        cs.sort_by_key(|c| c.seen.seq);
        for w in cs.windows(2) {
            let (prev, next) = (w[0], w[1]);
            if prev.step == Step::Authenticated && next.client != prev.client {
                handovers_after_auth += 1;
                pairs.insert((prev.client, next.client));
                if next.seen.owner_id.is_none() {
                    anonymous_after_foreign_auth += 1;
                }
            }
        }
    }
    assert!(
        handovers_after_auth > 0 && anonymous_after_foreign_auth > 0,
        "no backend went from one client's authenticated transaction to another client \
         ({handovers_after_auth} hand-overs, {anonymous_after_foreign_auth} to anonymous)"
    );
    let servers = bouncer
        .show("SERVERS")
        .into_iter()
        .filter(|r| {
            r.iter()
                .any(|(k, v)| k == "database" && v.as_deref() == Some(db.name()))
        })
        .count();
    assert!(
        servers <= 2,
        "SHOW SERVERS lists {servers} server connections"
    );
    println!(
        "{CLIENTS} clients, {} identity checks in {elapsed:.1?} on backends {clients_per_pid:?} \
         (pid: distinct clients); {handovers_after_auth} hand-overs of a backend right after \
         an authenticated transaction to another client ({} distinct client pairs, \
         {anonymous_after_foreign_auth} of them to a check without identity); \
         {servers} server connections in SHOW SERVERS",
        checks.len(),
        pairs.len()
    );
}

/// The one thing that does leak: SESSION-level settings. pgbouncer does not
/// reset a backend between transactions in transaction mode, so
/// `set_config('request.headers', …, false)` (or a plain `SET`) by one client
/// is seen by the next client on that backend, and an `api_key_authenticate()`
/// there authenticates with the other client's key. Setting it with
/// `is_local = true`, as PostgREST does, is the fix; `server_reset_query_always`
/// is a blunt one.
#[test]
fn session_level_request_headers_do_leak_between_clients_is_local_ones_do_not() {
    let db = TestDb::new();
    let app = db.create_login_role();
    app.grant_role("api_keys_verifier");
    create_schema(&db, &app.name);
    let people = owners(&db, 1);
    let alice = &people[0];

    let attempt =
        |bouncer: &Bouncer<'_>, is_local: bool| -> (i32, i32, Result<Option<String>, String>) {
            let mut a = bouncer.connect_as(&app.name);
            let mut b = bouncer.connect_as(&app.name);
            // Client A, autocommit: sets the headers (session-level or local).
            let row = simple_one(
                &a.simple_query(&format!(
                    "SELECT pg_backend_pid(), set_config('request.headers', {}, {is_local})",
                    sql_literal(&headers_with_key(&alice.key.token))
                ))
                .unwrap(),
            );
            let pid_a: i32 = row[0].as_deref().unwrap().parse().unwrap();
            // Client B: a transaction that only calls the pre-request. pgbouncer
            // reuses the most recently released backend (LIFO): A's.
            let mut tx = b.transaction().unwrap();
            let pid_b: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
            let result = tx
                .execute("SELECT api_keys.api_key_authenticate()", &[])
                .map_err(|e| describe(&e))
                .map(|_| {
                    tx.query_one("SELECT api_keys.current_owner_id()", &[])
                        .unwrap()
                        .get::<_, Option<String>>(0)
                });
            drop(tx);
            (pid_a, pid_b, result)
        };

    let bouncer = Bouncer::start(&db, BouncerOptions::default().user(&app.name));
    let (pid_a, pid_b, result) = attempt(&bouncer, false);
    assert_eq!(
        pid_a, pid_b,
        "B did not get A's backend (pgbouncer reuses LIFO)"
    );
    assert_eq!(
        result,
        Ok(Some(alice.owner_id.clone())),
        "a session-level request.headers of client A is seen by client B"
    );
    drop(bouncer);

    let bouncer = Bouncer::start(&db, BouncerOptions::default().user(&app.name));
    let (pid_a, pid_b, result) = attempt(&bouncer, true);
    assert_eq!(
        pid_a, pid_b,
        "B did not get A's backend (pgbouncer reuses LIFO)"
    );
    let err = result.expect_err("transaction-local headers must not reach client B");
    assert!(err.starts_with("PT401: "), "{err}");
    drop(bouncer);

    // server_reset_query_always = 1 runs DISCARD ALL after every
    // transaction, which also wipes session-level settings.
    let bouncer = Bouncer::start(
        &db,
        BouncerOptions::default()
            .user(&app.name)
            .set("server_reset_query_always", "1"),
    );
    let (pid_a, pid_b, result) = attempt(&bouncer, false);
    assert_eq!(
        pid_a, pid_b,
        "B did not get A's backend (pgbouncer reuses LIFO)"
    );
    let err = result.expect_err("DISCARD ALL must have reset A's session-level headers");
    assert!(err.starts_with("PT401: "), "{err}");
}

// ---------------------------------------------------------------------------
// 3. Prepared statements with Debian 12's pgbouncer (1.18)
// ---------------------------------------------------------------------------

/// The installed pgbouncer must be older than 1.21 for what follows: 1.21
/// added `max_prepared_statements` (protocol-level prepared statements in
/// transaction mode; on by default from 1.22). On a newer pgbouncer these
/// tests and the README's prepared-statements section must be revisited.
#[track_caller]
fn assert_pgbouncer_before_1_21() -> (u32, u32, u32) {
    let v = pgbouncer_version();
    assert!(
        (v.0, v.1) < (1, 21),
        "pgbouncer {}.{}.{} supports max_prepared_statements: the prepared-statement \
         tests (and the README) describe pgbouncer < 1.21 (Debian 12 ships 1.18.0)",
        v.0,
        v.1,
        v.2
    );
    v
}

#[test]
fn pgbouncer_1_18_has_no_max_prepared_statements() {
    let v = assert_pgbouncer_before_1_21();
    let db = TestDb::new();
    // The setting is unknown: pgbouncer refuses to start with it.
    let log = match Bouncer::try_start(
        &db,
        BouncerOptions::default().set("max_prepared_statements", "100"),
    ) {
        Ok(_) => panic!("pgbouncer {v:?} started with max_prepared_statements"),
        Err(log) => log,
    };
    assert!(
        log.contains("unknown parameter: pgbouncer/max_prepared_statements")
            && log.contains("cannot load config file"),
        "unexpected log:\n{log}"
    );
    // And SHOW CONFIG of a running one does not list it.
    let bouncer = Bouncer::start(&db, BouncerOptions::default());
    let version = simple_one(&bouncer.admin().simple_query("SHOW VERSION").unwrap());
    assert_eq!(
        version[0],
        Some(format!("PgBouncer {}.{}.{}", v.0, v.1, v.2))
    );
    let config = bouncer.show("CONFIG");
    let keys: BTreeSet<String> = config
        .iter()
        .filter_map(|r| {
            r.iter()
                .find(|(k, _)| k == "key")
                .and_then(|(_, v)| v.clone())
        })
        .collect();
    assert!(keys.contains("pool_mode"), "SHOW CONFIG: {keys:?}");
    assert!(
        !keys.contains("max_prepared_statements"),
        "SHOW CONFIG: {keys:?}"
    );
}

/// A named statement prepared in one transaction (here: an autocommit
/// `prepare`) and executed in a later one may find another backend, where
/// it does not exist. Made deterministic with pgbouncer's LIFO reuse: client
/// B takes the backend A prepared on, A's execute goes to the other one.
#[test]
fn named_statement_prepared_in_one_transaction_is_missing_in_the_next() {
    assert_pgbouncer_before_1_21();
    let db = TestDb::new();
    create_schema(&db, "postgres");
    let people = owners(&db, 1);
    let bouncer = Bouncer::start(&db, BouncerOptions::default());
    let mut a = bouncer.connect_as("postgres");
    let mut b = bouncer.connect_as("postgres");
    let pid_a: i32 = a.query_typed("SELECT pg_backend_pid()", &[]).unwrap()[0].get(0);
    // Parse + Describe + Sync on pid_a, which is released afterwards.
    let statement = a
        .prepare("SELECT valid, code FROM api_keys.api_key_verify($1::text)")
        .unwrap_or_else(|e| panic!("prepare: {}", describe(&e)));
    let mut tx = b.transaction().unwrap();
    let pid_b: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(
        pid_b, pid_a,
        "pgbouncer reuses the most recently released backend"
    );
    let err = a
        .query(&statement, &[&people[0].key.token])
        .expect_err("the statement was prepared on the backend B now holds");
    let message = assert_sqlstate(Err::<(), _>(err), "26000");
    assert!(
        message.starts_with("prepared statement \"s") && message.ends_with("\" does not exist"),
        "{message}"
    );
    tx.commit().unwrap();

    // Prepared and used inside one transaction, the same statement works.
    let mut tx = a.transaction().unwrap();
    let st = tx
        .prepare("SELECT valid, code FROM api_keys.api_key_verify($1::text)")
        .unwrap();
    for _ in 0..3 {
        let row = tx.query_one(&st, &[&people[0].key.token]).unwrap();
        assert!(row.get::<_, bool>(0));
    }
    tx.commit().unwrap();
}

/// Outside a transaction, rust-postgres' `query(sql, params)` is two round
/// trips (Parse/Describe/Sync of a named statement, then Bind/Execute/Sync):
/// under contention pgbouncer gives the second to another backend, and it
/// fails with 26000. `query_typed` (the unnamed statement, one round trip)
/// and `simple_query` never do.
#[test]
fn autocommit_query_with_params_breaks_under_contention_query_typed_does_not() {
    assert_pgbouncer_before_1_21();
    let db = TestDb::new();
    create_schema(&db, "postgres");
    let people = owners(&db, 1);
    let token = people[0].key.token.clone();
    let bouncer = Bouncer::start(&db, BouncerOptions::default());
    const THREADS: usize = 8;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Way {
        Query,
        QueryTyped,
        SimpleQuery,
    }

    // Every thread calls verify `calls` times (or until `stop_after_errors`
    // errors in all); returns (calls, errors as "SQLSTATE: message").
    let run = |way: Way, calls: usize, deadline: Duration| -> (usize, Vec<String>) {
        let barrier = Arc::new(Barrier::new(THREADS));
        let start = Instant::now();
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let mut c = bouncer.connect_as("postgres");
                let token = token.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let sql = "SELECT valid::text, code FROM api_keys.api_key_verify($1::text)";
                    let simple = format!(
                        "SELECT valid::text, code FROM api_keys.api_key_verify({})",
                        sql_literal(&token)
                    );
                    let mut errors = Vec::new();
                    let mut done = 0;
                    barrier.wait();
                    while done < calls && start.elapsed() < deadline {
                        done += 1;
                        let answer: Result<(String, String), postgres::Error> = match way {
                            Way::Query => {
                                c.query(sql, &[&token]).map(|r| (r[0].get(0), r[0].get(1)))
                            }
                            Way::QueryTyped => c
                                .query_typed(sql, &[(&token, Type::TEXT)])
                                .map(|r| (r[0].get(0), r[0].get(1))),
                            Way::SimpleQuery => c.simple_query(&simple).map(|m| {
                                let row = simple_one(&m);
                                (row[0].clone().unwrap(), row[1].clone().unwrap())
                            }),
                        };
                        match answer {
                            Ok(v) => assert_eq!(v, ("true".to_owned(), "valid".to_owned())),
                            Err(e) => errors.push(describe(&e)),
                        }
                    }
                    (done, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .fold((0, Vec::new()), |(n, mut all), h| {
                let (done, errors) = h.join().expect("a client thread panicked");
                all.extend(errors);
                (n + done, all)
            })
    };

    for way in [Way::QueryTyped, Way::SimpleQuery] {
        let (calls, errors) = run(way, 150, Duration::from_secs(60));
        assert!(
            errors.is_empty(),
            "{way:?}: {} of {calls} calls failed through pgbouncer: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        );
        println!("{way:?}: {calls} autocommit verify calls from {THREADS} clients, no error");
    }

    let (calls, errors) = run(Way::Query, 150, Duration::from_secs(30));
    assert!(
        !errors.is_empty(),
        "expected rust-postgres `query` outside a transaction to fail sometimes through \
         pgbouncer 1.18 in transaction mode, but {calls} calls all succeeded"
    );
    let pattern =
        regex::Regex::new(r#"^26000: prepared statement "s\d+" does not exist$"#).unwrap();
    for e in &errors {
        assert!(pattern.is_match(e), "unexpected failure mode: {e}");
    }
    println!(
        "Query: {} of {calls} autocommit verify calls failed with 26000 \
         (prepared statement \"sN\" does not exist)",
        errors.len()
    );
}

/// psycopg 3 through pgbouncer 1.18: with its default `prepare_threshold`
/// (5) the 6th execution of a query prepares `_pg3_0`, a name every psycopg
/// connection uses first, so it collides with another client's on the shared
/// backend (42P05); with `prepare_threshold=None` nothing is prepared and
/// verify, authenticate and the identity helpers work.
#[test]
fn psycopg_prepared_statements_collide_unless_prepare_threshold_is_none() {
    assert_pgbouncer_before_1_21();
    let db = TestDb::new();
    create_schema(&db, "postgres");
    let people = owners(&db, 1);
    let bouncer = Bouncer::start(&db, BouncerOptions::default());
    const SCRIPT: &str = r#"
import json, sys
import psycopg
dsn, token, owner = sys.argv[1], sys.argv[2], sys.argv[3]
query = "SELECT valid, code, owner_id FROM api_keys.api_key_verify(%s)"

# prepare_threshold=None: never prepares; autocommit and transactions work.
c = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
for i in range(20):
    assert c.execute(query, [token]).fetchone() == (True, "valid", owner)
with c.transaction():
    c.execute("SELECT set_config('request.headers', %s, true)",
              [json.dumps({"x-api-key": token})])
    c.execute("SELECT api_keys.api_key_authenticate()")
    got = c.execute("SELECT api_keys.current_owner_id(), api_keys.has_scope('notes:read')").fetchone()
    assert got == (owner, True), got
assert c.execute("SELECT api_keys.current_owner_id()").fetchone() == (None,)
print("prepare_threshold=None: ok")

# Default prepare_threshold (5): client A's 6th execution prepares _pg3_0 on
# the backend; client B's 6th, on the same backend (pgbouncer reuses the
# most recently released one), tries to prepare _pg3_0 too.
a = psycopg.connect(dsn, autocommit=True)
b = psycopg.connect(dsn, autocommit=True)
assert a.prepare_threshold == 5, a.prepare_threshold
for i in range(6):
    assert a.execute(query, [token]).fetchone()[0] is True
try:
    for i in range(6):
        b.execute(query, [token]).fetchone()
    print("default prepare_threshold: no error")
except psycopg.Error as e:
    print(f"default prepare_threshold: execution {i + 1}: {e.sqlstate}: {e}".strip())
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(bouncer.libpq_dsn("postgres"))
        .arg(&people[0].key.token)
        .arg(&people[0].owner_id)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python3 failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "prepare_threshold=None: ok",
            "default prepare_threshold: execution 6: 42P05: prepared statement \"_pg3_0\" already exists",
        ],
        "stderr:\n{stderr}"
    );
}
