//! Security hardening (issue 8): each test replays an attack found in review
//! by a role that SPEC §2 does not trust (a database owner, a schema owner,
//! a verifier, PUBLIC) and checks that it gets nowhere.
//!
//! The traps below are functions that, when they run, write who ran them
//! and whether that role is a superuser into a table: a row there means the
//! attacker's code ran, as whom.

use std::thread;
use std::time::Duration;

use api_keys_tests::cluster::{serial, wait_for, Cluster, Options, APP_DB};
use api_keys_tests::usage::{flush_and_wait, request_flush, stats, usage_flush};
use api_keys_tests::*;
use postgres::Client;

/// Creates `trap_log` and `trap()` in `schema` (created by the caller).
fn create_trap_log(c: &mut Client, schema: &str) {
    c.batch_execute(&format!(
        "CREATE TABLE {schema}.trap_log (who text, superuser boolean, what text);
         GRANT ALL ON {schema}.trap_log TO PUBLIC;
         CREATE FUNCTION {schema}.trap(what text) RETURNS void LANGUAGE sql AS $$
             INSERT INTO {schema}.trap_log
             SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
         $$;"
    ))
    .unwrap_or_else(|e| panic!("creating the trap log in {schema}: {}", describe(&e)));
}

/// Operators and functions that shadow what the extension's SQL uses, for
/// every argument-type pair without an exact pg_catalog match that it uses
/// or used, plus exact-match look-alikes (they must lose to pg_catalog).
/// Each one records that it ran, then does what the real one would.
fn plant_shadows(c: &mut Client, schema: &str, log_schema: &str) {
    let trap = format!("{log_schema}.trap");
    c.batch_execute(&format!(
        "CREATE FUNCTION {schema}.bi_mul(a bigint, b interval) RETURNS interval LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('*(bigint, interval)'); RETURN a::float8 * b; END $$;
         CREATE OPERATOR {schema}.* (LEFTARG = bigint, RIGHTARG = interval, FUNCTION = {schema}.bi_mul);
         CREATE FUNCTION {schema}.ii_mul(a integer, b interval) RETURNS interval LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('*(integer, interval)'); RETURN a::float8 * b; END $$;
         CREATE OPERATOR {schema}.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = {schema}.ii_mul);
         CREATE FUNCTION {schema}.bb_add(a bigint, b bigint) RETURNS bigint LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('+(bigint, bigint)'); RETURN a OPERATOR(pg_catalog.+) b; END $$;
         CREATE OPERATOR {schema}.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = {schema}.bb_add);
         CREATE FUNCTION {schema}.bi_add(a bigint, b integer) RETURNS bigint LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('+(bigint, integer)'); RETURN a OPERATOR(pg_catalog.+) b; END $$;
         CREATE OPERATOR {schema}.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = {schema}.bi_add);
         CREATE FUNCTION {schema}.uu_eq(a uuid, b uuid) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('=(uuid, uuid)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
         CREATE OPERATOR {schema}.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = {schema}.uu_eq);
         CREATE FUNCTION {schema}.tt_lt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('<(timestamptz, timestamptz)'); RETURN a OPERATOR(pg_catalog.<) b; END $$;
         CREATE OPERATOR {schema}.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = {schema}.tt_lt);
         CREATE FUNCTION {schema}.ti_sub(a timestamptz, b interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('-(timestamptz, interval)'); RETURN a OPERATOR(pg_catalog.-) b; END $$;
         CREATE OPERATOR {schema}.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = {schema}.ti_sub);
         CREATE FUNCTION {schema}.ti_add(a timestamptz, b interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('+(timestamptz, interval)'); RETURN a OPERATOR(pg_catalog.+) b; END $$;
         CREATE OPERATOR {schema}.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = {schema}.ti_add);
         CREATE FUNCTION {schema}.ta_app(a text[], b text) RETURNS text[] LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('||(text[], text)'); RETURN pg_catalog.array_append(a, b); END $$;
         CREATE OPERATOR {schema}.|| (LEFTARG = text[], RIGHTARG = text, FUNCTION = {schema}.ta_app);
         CREATE FUNCTION {schema}.ne_eq(a name, b text) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('=(name, text)'); RETURN a::text OPERATOR(pg_catalog.=) b; END $$;
         CREATE OPERATOR {schema}.= (LEFTARG = name, RIGHTARG = text, FUNCTION = {schema}.ne_eq);
         CREATE FUNCTION {schema}.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('now()'); RETURN pg_catalog.now(); END $$;
         CREATE FUNCTION {schema}.unnest(a uuid[], b bigint[], c bigint[], OUT id uuid, OUT n bigint, OUT t bigint)
             RETURNS SETOF record LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('unnest(uuid[], bigint[], bigint[])');
                   RETURN QUERY SELECT * FROM ROWS FROM (pg_catalog.unnest(a), pg_catalog.unnest(b), pg_catalog.unnest(c)); END $$;
         CREATE FUNCTION {schema}.unnest(a uuid[], b bigint[], c timestamptz[], OUT id uuid, OUT n bigint, OUT t timestamptz)
             RETURNS SETOF record LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('unnest(uuid[], bigint[], timestamptz[])');
                   RETURN QUERY SELECT * FROM ROWS FROM (pg_catalog.unnest(a), pg_catalog.unnest(b), pg_catalog.unnest(c)); END $$;
         CREATE FUNCTION {schema}.make_interval(days integer) RETURNS interval LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('make_interval(integer)'); RETURN pg_catalog.make_interval(days => days); END $$;
         CREATE FUNCTION {schema}.array_append(a text[], b text) RETURNS text[] LANGUAGE plpgsql AS $$
             BEGIN PERFORM {trap}('array_append(text[], text)'); RETURN a OPERATOR(pg_catalog.||) b; END $$;"
    ))
    .unwrap_or_else(|e| panic!("planting shadows in {schema}: {}", describe(&e)));
}

#[track_caller]
fn assert_no_trap_ran(c: &mut Client, log_schema: &str) {
    let rows = c
        .query(
            &format!("SELECT who, superuser, what FROM {log_schema}.trap_log"),
            &[],
        )
        .expect("reading the trap log");
    let ran: Vec<(String, bool, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        ran.is_empty(),
        "attacker code ran (who, superuser, what): {ran:?}"
    );
}

/// A database owned by the non-superuser `owner`, with the extension
/// created in it by the superuser (CREATE EXTENSION needs one).
fn hostile_database(cluster: &Cluster<'_>, db: &str, owner: &str) -> Client {
    let mut postgres = cluster.connect("postgres");
    postgres
        .batch_execute(&format!("CREATE ROLE {owner} LOGIN"))
        .expect("creating the owner");
    postgres
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {owner}"))
        .expect("creating the hostile database");
    let mut c = cluster.connect(db);
    c.batch_execute("CREATE EXTENSION api_keys")
        .expect("CREATE EXTENSION");
    c
}

fn connect_as(cluster: &Cluster<'_>, db: &str, role: &str) -> Client {
    let mut config = cluster.config(db);
    config.user(role);
    config
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting as {role}: {}", describe(&e)))
}

// ---------------------------------------------------------------------------
// Critical: the usage flusher runs as superuser in an untrusted database.

#[test]
fn usage_flusher_runs_no_operator_or_function_planted_by_a_database_owner() {
    let serial = serial();
    let cluster = Cluster::start(
        &serial,
        Options::preloaded().set("api_keys.usage_flush_interval", "1h"),
    );
    let mut su = hostile_database(&cluster, "owned", "mallory");
    // The owner plants shadows in public (which it owns, as every database
    // owner does on PostgreSQL 15) and in a schema named after the worker's
    // user, which "$user" in the default search_path would pick up.
    let mut evil = connect_as(&cluster, "owned", "mallory");
    evil.batch_execute("CREATE SCHEMA postgres")
        .expect("schema postgres");
    create_trap_log(&mut evil, "public");
    plant_shadows(&mut evil, "public", "public");
    plant_shadows(&mut evil, "postgres", "public");

    let key = issue_for(&mut su, "user", "1");
    for _ in 0..3 {
        verify(&mut su, &key.token).assert_code("valid");
    }
    flush_and_wait(&mut su, key.id, 3);
    let last_used: Option<chrono::DateTime<chrono::Utc>> = su
        .query_one(
            "SELECT last_used_at FROM api_keys.keys WHERE id = $1",
            &[&key.id],
        )
        .unwrap()
        .get(0);
    assert!(last_used.is_some(), "last_used_at is flushed too");
    assert_no_trap_ran(&mut su, "public");
}

#[test]
fn verify_fallback_write_ignores_a_hostile_search_path() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut su = cluster.connect(APP_DB);
    su.batch_execute("CREATE SCHEMA evil; GRANT USAGE ON SCHEMA evil TO PUBLIC")
        .unwrap();
    create_trap_log(&mut su, "evil");
    plant_shadows(&mut su, "evil", "evil");
    plant_shadows(&mut su, "public", "evil");
    su.batch_execute(
        "CREATE TABLE evil.keys (id uuid, last_used_at timestamptz);
         CREATE ROLE fallback_app LOGIN; GRANT api_keys_verifier TO fallback_app;",
    )
    .unwrap();
    let key = issue_for(&mut su, "user", "1");
    let mut app = connect_as(&cluster, APP_DB, "fallback_app");
    app.batch_execute("SET search_path = evil, public, pg_catalog")
        .unwrap();
    verify(&mut app, &key.token).assert_code("valid");
    let last_used: Option<chrono::DateTime<chrono::Utc>> = su
        .query_one(
            "SELECT last_used_at FROM api_keys.keys WHERE id = $1",
            &[&key.id],
        )
        .unwrap()
        .get(0);
    assert!(last_used.is_some(), "the fallback wrote last_used_at");
    assert_no_trap_ran(&mut su, "evil");
}

// ---------------------------------------------------------------------------
// High: a pre-existing api_keys schema must not be adopted.

#[test]
fn create_extension_refuses_a_schema_squatted_by_a_database_owner() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute("DROP EXTENSION api_keys; DROP SCHEMA api_keys")
        .unwrap();
    let squatter = db.create_login_role();
    su.batch_execute(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name(),
        squatter.name
    ))
    .unwrap();
    let mut evil = squatter.connect();
    evil.batch_execute("CREATE SCHEMA api_keys").unwrap();
    create_trap_log(&mut evil, "api_keys");
    plant_shadows(&mut evil, "api_keys", "api_keys");
    let err = su.batch_execute("CREATE EXTENSION api_keys").unwrap_err();
    let db_err = err.as_db_error().expect("a database error");
    assert_eq!(db_err.code().code(), "42501", "{}", db_err.message());
    assert!(
        db_err.message().contains("owned by") && db_err.message().contains(&squatter.name),
        "names the owner: {}",
        db_err.message()
    );
    assert_no_trap_ran(&mut su, "api_keys");
    su.batch_execute(&format!(
        "DROP SCHEMA api_keys CASCADE; REVOKE ALL ON DATABASE {} FROM {}",
        db.name(),
        squatter.name
    ))
    .unwrap();
}

#[test]
fn create_extension_refuses_a_schema_that_already_holds_objects() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute(
        "DROP EXTENSION api_keys;
         CREATE TABLE api_keys.planted (x int);",
    )
    .unwrap();
    let err = su.batch_execute("CREATE EXTENSION api_keys").unwrap_err();
    let db_err = err.as_db_error().expect("a database error");
    assert_eq!(db_err.code().code(), "42501", "{}", db_err.message());
    assert!(
        db_err.message().contains("relation planted"),
        "{}",
        db_err.message()
    );
    // the empty schema a DROP EXTENSION leaves behind is fine
    su.batch_execute("DROP TABLE api_keys.planted; CREATE EXTENSION api_keys")
        .unwrap();
    let key = issue_for(&mut su, "user", "1");
    verify(&mut su, &key.token).assert_code("valid");
}

#[test]
fn function_bodies_resolve_no_operator_through_search_path() {
    // What a squatter would have planted, had the schema been adopted: the
    // bodies must not pick any of it up (integer * interval in issue, the
    // array || text of update, ...).
    let db = TestDb::new();
    let mut su = db.connect();
    create_trap_log(&mut su, "public");
    plant_shadows(&mut su, "api_keys", "public");
    su.batch_execute(
        "SELECT api_keys.api_key_type_define('secret', 'sk', '{read,write}');
         SELECT api_keys.api_key_environment_define('live', 'live');
         SELECT api_keys.api_key_scope_define('read');
         SELECT api_keys.api_key_scope_define('write');
         SELECT api_keys.api_key_owner_policy_set('user', 5, false, '{read}');",
    )
    .unwrap();
    for preset in ["7_days", "30_days", "1_year", "12_days", "no_expiration"] {
        let key = issue(
            &mut su,
            "owner_type => 'user', owner_id => '1', key_type => 'secret', environment => 'live', \
             scopes => '{read,write}', expires_in => $1::text",
            &[&preset],
        );
        verify_scopes(&mut su, &key.token, &["write"]).assert_code("valid");
        su.execute(
            "SELECT api_keys.api_key_update($1, name => 'renamed', scopes => '{read}', metadata => '{\"a\":1}')",
            &[&key.id],
        )
        .unwrap();
        su.query(
            "SELECT * FROM api_keys.api_key_list('user', '1', 'active')",
            &[],
        )
        .unwrap();
        su.query_one(
            "SELECT api_keys.api_key_can_issue('user', '1', 'secret', 'live')",
            &[],
        )
        .unwrap();
        su.query_one(
            "SELECT api_keys.api_key_available_scopes('user', 'secret')",
            &[],
        )
        .unwrap();
        assert!(revoke(&mut su, key.id));
    }
    su.query_one("SELECT api_keys.api_key_revoke_all('user', '1')", &[])
        .unwrap();
    su.query_one("SELECT api_keys.api_key_purge_owner('user', '1')", &[])
        .unwrap();
    assert_no_trap_ran(&mut su, "public");
}

#[test]
fn no_sql_text_in_the_sources_multiplies_into_an_interval() {
    // The operator that let the flusher run attacker code: integer/bigint
    // times interval has no exact pg_catalog match. Interval arithmetic is
    // written with make_interval or done in Rust instead.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pattern = regex::Regex::new(r"(?i)\*\s*interval\b").unwrap();
    let mut offending = Vec::new();
    for dir in ["sql", "extension/src"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("read source dir") {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "sql" | "rs") {
                continue;
            }
            // the 0.1.0 install script is history, replaced by the update
            if path.file_name().is_some_and(|n| n == "api_keys--0.1.0.sql") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                if pattern.is_match(line) && !line.trim_start().starts_with("--") {
                    offending.push(format!("{}:{}: {line}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offending.is_empty(),
        "interval multiplication: {offending:#?}"
    );
}

// ---------------------------------------------------------------------------
// Medium: default privileges must not leak onto the extension's objects.

#[test]
fn default_privileges_in_force_at_install_grant_nothing() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute(
        "DROP EXTENSION api_keys; DROP SCHEMA api_keys;
         ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO PUBLIC;
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO PUBLIC;
         ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO api_keys_verifier;
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO PUBLIC;
         CREATE EXTENSION api_keys;",
    )
    .unwrap();
    let key = issue_for(&mut su, "user", "1");

    let verifier = db.create_login_role();
    verifier.grant_role("api_keys_verifier");
    let nobody = db.create_login_role();
    for role in [&verifier, &nobody] {
        let mut c = role.connect();
        for sql in [
            "SELECT * FROM api_keys.keys",
            "SELECT * FROM api_keys.key_infos",
            "INSERT INTO api_keys.audit_log (action, current_user_name) VALUES ('x', 'y')",
            "SELECT nextval('api_keys.audit_log_id_seq')",
            "SELECT * FROM api_keys.api_key_issue('user', '2')",
            "SELECT * FROM api_keys._token_new('ak', NULL)",
            "SELECT api_keys._raise('invalid_argument', 'x')",
            "CREATE TABLE api_keys.planted (x int)",
        ] {
            assert_sqlstate(c.batch_execute(sql), "42501");
        }
    }
    verify(&mut verifier.connect(), &key.token).assert_code("valid");

    // The same ACLs as a database installed without default privileges.
    let fresh = TestDb::new();
    assert_eq!(acls(&mut su), acls(&mut fresh.connect()));
}

/// Every ACL entry on the schema and its objects, by name.
fn acls(c: &mut Client) -> Vec<String> {
    c.query(
        "WITH o AS (
             SELECT 'schema api_keys' AS obj, n.nspacl AS acl, n.nspowner AS owner, 'n' AS kind
               FROM pg_namespace n WHERE n.nspname = 'api_keys'
             UNION ALL
             SELECT 'relation ' || c.relname, c.relacl, c.relowner, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END
               FROM pg_class c WHERE c.relnamespace = 'api_keys'::regnamespace AND c.relkind IN ('r','v','S')
             UNION ALL
             SELECT 'function ' || p.oid::regprocedure, p.proacl, p.proowner, 'f'
               FROM pg_proc p WHERE p.pronamespace = 'api_keys'::regnamespace
             UNION ALL
             SELECT 'type ' || t.typname, t.typacl, t.typowner, 'T'
               FROM pg_type t WHERE t.typnamespace = 'api_keys'::regnamespace AND t.typtype = 'c')
         SELECT o.obj || ' ' || coalesce(nullif(a.grantee::regrole::text, '-'), 'PUBLIC') || ' ' || a.privilege_type
           FROM o, aclexplode(coalesce(o.acl, acldefault(o.kind::\"char\", o.owner))) a
          WHERE a.grantee <> o.owner
          ORDER BY 1",
        &[],
    )
    .expect("listing ACLs")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

// ---------------------------------------------------------------------------
// Medium: verify answers with effective scopes.

#[test]
fn a_lowered_ceiling_shows_in_every_answer_that_lists_scopes() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT api_keys.api_key_type_define('secret', 'sk', '{read,write}')")
        .unwrap();
    let key = issue(
        &mut c,
        "owner_type => 'user', owner_id => '1', key_type => 'secret', scopes => '{read,write}'",
        &[],
    );
    assert_eq!(
        verify(&mut c, &key.token).scopes,
        Some(vec!["read".to_owned(), "write".to_owned()])
    );
    c.batch_execute("SELECT api_keys.api_key_type_define('secret', 'sk', '{read}')")
        .unwrap();
    let v = verify(&mut c, &key.token);
    v.assert_code("valid");
    assert_eq!(
        v.scopes,
        Some(vec!["read".to_owned()]),
        "verification.scopes"
    );
    let v = verify_scopes(&mut c, &key.token, &["write"]);
    v.assert_code("insufficient_scope");
    assert_eq!(v.scopes, Some(vec!["read".to_owned()]));
    assert_eq!(
        get_key(&mut c, key.id).scopes,
        vec!["read".to_owned()],
        "key_info.scopes"
    );
    assert_eq!(list(&mut c, "user", "1")[0].scopes, vec!["read".to_owned()]);
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT set_config('request.headers', json_build_object('x-api-key', $1::text)::text, true)",
        &[&key.token],
    )
    .unwrap();
    tx.execute("SELECT api_keys.api_key_authenticate()", &[])
        .unwrap();
    let current: Vec<String> = tx
        .query_one("SELECT api_keys.current_scopes()", &[])
        .unwrap()
        .get(0);
    assert_eq!(current, vec!["read".to_owned()], "current_scopes()");
}

// ---------------------------------------------------------------------------
// Medium: never-raise functions in databases that are not UTF-8.

fn non_utf8_database(encoding: &str) -> (TestDb, Client) {
    let db = TestDb::new();
    let mut su = db.connect();
    let name = format!("{}_{}", db.name(), encoding.to_lowercase().replace('_', ""));
    su.batch_execute(&format!(
        "CREATE DATABASE {name} ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
    ))
    .unwrap();
    let mut config: postgres::Config = std::env::var("API_KEYS_TEST_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:25432/postgres".into())
        .parse()
        .unwrap();
    config.dbname(&name);
    let mut c = config.connect(postgres::NoTls).expect("connect");
    c.batch_execute("CREATE EXTENSION api_keys")
        .expect("CREATE EXTENSION");
    (db, c)
}

fn drop_database(db: &TestDb, c: Client, encoding: &str) {
    drop(c);
    let name = format!("{}_{}", db.name(), encoding.to_lowercase().replace('_', ""));
    db.connect()
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
}

#[track_caller]
fn assert_no_rust_internals(err: &postgres::Error) {
    let db = err.as_db_error().expect("a database error");
    let text = format!("{} {:?} {:?}", db.message(), db.detail(), db.hint());
    for leak in ["panicked", "backtrace", "datums converted", ".rs:", "src/"] {
        assert!(
            !text.contains(leak),
            "Rust internals reach the client: {text}"
        );
    }
}

#[test]
fn never_raise_functions_answer_for_text_that_is_not_utf8() {
    for encoding in ["SQL_ASCII", "LATIN1"] {
        let (db, mut c) = non_utf8_database(encoding);
        let key = issue_for(&mut c, "user", "1");
        let t = &key.token;
        let code = |c: &mut Client, sql: &str| -> String {
            c.query_one(sql, &[])
                .unwrap_or_else(|e| {
                    assert_no_rust_internals(&e);
                    panic!("{encoding}: {sql} raised: {}", describe(&e))
                })
                .get(0)
        };
        assert_eq!(
            code(&mut c, "SELECT code FROM api_keys.api_key_verify(E'\\xff')"),
            "malformed"
        );
        assert_eq!(
            code(
                &mut c,
                &format!("SELECT code FROM api_keys.api_key_verify('{t}', ARRAY[E'\\xff'])")
            ),
            "insufficient_scope",
            "{encoding}: a scope that cannot be read is not held"
        );
        assert_eq!(
            code(
                &mut c,
                &format!("SELECT code FROM api_keys.api_key_verify('{t}', '{{}}', E'\\xff')")
            ),
            "valid",
            "{encoding}: an unreadable environment argument is just another environment"
        );
        let nulls: bool = c
            .query_one(
                "SELECT api_keys.api_key_mask(E'\\xff') IS NULL AND api_keys.api_key_environment_of(E'\\xff') IS NULL \
                   AND NOT api_keys.has_scope(E'\\xff')",
                &[],
            )
            .unwrap_or_else(|e| panic!("{encoding}: {}", describe(&e)))
            .get(0);
        assert!(nulls, "{encoding}");
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(
            "SELECT set_config('request.headers', E'{\"x-api-key\": \"\\xff\"}', true) IS NOT NULL",
        )
        .unwrap();
        let err = tx
            .batch_execute("SELECT api_keys.api_key_authenticate()")
            .unwrap_err();
        assert_no_rust_internals(&err);
        assert_eq!(
            err.code().map(|s| s.code()),
            Some("PT401"),
            "{encoding}: {}",
            describe(&err)
        );
        drop(tx);
        drop_database(&db, c, encoding);
    }
}

#[test]
fn management_functions_refuse_text_that_is_not_utf8_with_invalid_argument() {
    for encoding in ["SQL_ASCII", "LATIN1"] {
        let (db, mut c) = non_utf8_database(encoding);
        let key = issue_for(&mut c, "user", "1");
        for sql in [
            "SELECT api_keys.api_key_issue(E'\\xff', '1')",
            "SELECT api_keys.api_key_issue('user', E'\\xff')",
            "SELECT api_keys.api_key_issue('user', '1', name => E'\\xff')",
            "SELECT api_keys.api_key_issue('user', '1', scopes => ARRAY['ok', E'\\xff'])",
            "SELECT api_keys.api_key_issue('user', '1', key_type => E'\\xff')",
            "SELECT api_keys.api_key_issue('user', '1', expires_in => E'\\xff')",
            "SELECT api_keys.api_key_list(E'\\xff', '1')",
            "SELECT api_keys.api_key_list('user', '1', status => E'\\xff')",
            "SELECT api_keys.api_key_revoke_all('user', E'\\xff')",
            "SELECT api_keys.api_key_purge_owner(E'\\xff', '1')",
            "SELECT api_keys.api_key_can_issue('user', E'\\xff')",
            "SELECT api_keys.api_key_available_scopes(E'\\xff')",
            "SELECT api_keys.api_key_type_define(E'\\xff', 'sk')",
            "SELECT api_keys.api_key_environment_define(E'\\xff', 'live')",
            "SELECT api_keys.api_key_scope_define(E'\\xff')",
            "SELECT api_keys.api_key_scope_define('ok', E'\\xff')",
            "SELECT api_keys.api_key_owner_policy_set(E'\\xff')",
        ] {
            let err = c.batch_execute(sql).unwrap_err();
            assert_no_rust_internals(&err);
            assert_api_error::<()>(Err(err), "22023", "invalid_argument");
        }
        let err = c
            .execute(
                "SELECT api_keys.api_key_update($1, name => E'\\xff')",
                &[&key.id],
            )
            .unwrap_err();
        assert_api_error::<()>(Err(err), "22023", "invalid_argument");
        // nothing was lost or changed
        assert_eq!(list(&mut c, "user", "1").len(), 1);
        verify(&mut c, &key.token).assert_code("valid");
        drop_database(&db, c, encoding);
    }
}

// ---------------------------------------------------------------------------
// Medium: usage of dropped or unreachable databases.

#[test]
fn counts_of_a_dropped_database_are_dropped_once_and_counted() {
    let serial = serial();
    let cluster = Cluster::start(
        &serial,
        Options::preloaded().set("api_keys.usage_flush_interval", "1h"),
    );
    let mut gone = cluster.create_database("gone");
    let key = issue_for(&mut gone, "user", "1");
    for _ in 0..5 {
        verify(&mut gone, &key.token).assert_code("valid");
    }
    drop(gone);
    let mut c = cluster.connect(APP_DB);
    let pending = |c: &mut Client| {
        let s = stats(c);
        (s.pending_keys, s.dropped)
    };
    assert_eq!(pending(&mut c), (1, 0));
    cluster
        .connect("postgres")
        .batch_execute("DROP DATABASE gone WITH (FORCE)")
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the dropped database's counts to go",
        || {
            usage_flush(&mut c);
            thread::sleep(Duration::from_millis(200));
            (pending(&mut c) == (0, 5)).then_some(())
        },
    );
    // later flushes say nothing more about it
    for _ in 0..3 {
        request_flush(&mut c);
        thread::sleep(Duration::from_millis(200));
    }
    let log = cluster.log();
    assert_eq!(log.matches("which no longer exists").count(), 1, "{log}");
    // a flush racing the DROP may see one worker fail to connect, never more
    let fatal = log
        .lines()
        .filter(|l| l.contains("FATAL") && l.contains("does not exist"))
        .count();
    assert!(fatal <= 1, "no FATAL per interval: {log}");
}

#[test]
fn a_database_that_refuses_connections_still_gets_its_counts() {
    let serial = serial();
    let cluster = Cluster::start(
        &serial,
        Options::preloaded().set("api_keys.usage_flush_interval", "1h"),
    );
    let mut shut = cluster.create_database("shut");
    let key = issue_for(&mut shut, "user", "1");
    for _ in 0..4 {
        verify(&mut shut, &key.token).assert_code("valid");
    }
    drop(shut);
    let mut postgres = cluster.connect("postgres");
    postgres
        .batch_execute("ALTER DATABASE shut ALLOW_CONNECTIONS false")
        .unwrap();
    let mut c = cluster.connect(APP_DB);
    wait_for(Duration::from_secs(20), "the counts to be flushed", || {
        usage_flush(&mut c);
        thread::sleep(Duration::from_millis(200));
        (stats(&mut c).pending_keys == 0).then_some(())
    });
    postgres
        .batch_execute("ALTER DATABASE shut ALLOW_CONNECTIONS true")
        .unwrap();
    let n: i64 = cluster
        .connect("shut")
        .query_one(
            "SELECT requests_count FROM api_keys.keys WHERE id = $1",
            &[&key.id],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

// ---------------------------------------------------------------------------
// Low: concurrent defines and invisible characters.

#[test]
fn concurrent_defines_of_one_prefix_end_in_invalid_argument_not_a_unique_violation() {
    for (first, second) in [
        (
            "SELECT api_keys.api_key_type_define('a', 'xx')",
            "SELECT api_keys.api_key_type_define('b', 'xx')",
        ),
        (
            "SELECT api_keys.api_key_environment_define('a', 'xx')",
            "SELECT api_keys.api_key_environment_define('b', 'xx')",
        ),
    ] {
        let db = TestDb::new();
        let mut a = db.connect();
        let mut tx = a.transaction().unwrap();
        tx.batch_execute(first).unwrap();
        let mut b = db.connect();
        let second = second.to_owned();
        let racer = thread::spawn(move || b.batch_execute(&second));
        // let the second define reach the unique index and wait on our row
        thread::sleep(Duration::from_millis(500));
        tx.commit().unwrap();
        let result = racer.join().unwrap();
        let msg = assert_api_error(result, "22023", "invalid_argument");
        assert!(msg.contains("xx"), "{msg}");
    }
}

#[test]
fn control_and_bidi_override_characters_are_refused_in_names() {
    let db = TestDb::new();
    let mut c = db.connect();
    for bad in [
        "e\u{1b}[31mvil",
        "nul\u{1}",
        "c1\u{85}x",
        "gpj\u{202E}exe",
        "iso\u{2067}late",
    ] {
        let calls: [(&str, &[&(dyn postgres::types::ToSql + Sync)]); 7] = [
            ("SELECT api_keys.api_key_issue($1::text, '1')", &[&bad]),
            ("SELECT api_keys.api_key_issue('user', $1::text)", &[&bad]),
            (
                "SELECT api_keys.api_key_issue('user', '1', name => $1::text)",
                &[&bad],
            ),
            (
                "SELECT api_keys.api_key_issue('user', '1', scopes => ARRAY[$1::text])",
                &[&bad],
            ),
            (
                "SELECT api_keys.api_key_type_define($1::text, 'sk')",
                &[&bad],
            ),
            (
                "SELECT api_keys.api_key_environment_define($1::text, 'live')",
                &[&bad],
            ),
            ("SELECT api_keys.api_key_scope_define($1::text)", &[&bad]),
        ];
        for (sql, params) in calls {
            let result = c.execute(sql, params);
            assert!(result.is_err(), "{sql} accepted {bad:?}");
            let msg = assert_api_error(result, "22023", "invalid_argument");
            assert!(
                msg.contains("control or bidirectional"),
                "{sql} {bad:?}: {msg}"
            );
        }
    }
    assert!(list(&mut c, "user", "1").is_empty());
    // ordinary international text is fine
    let k = issue(
        &mut c,
        "owner_type => 'user', owner_id => 'zoë', name => '日本語 👩‍💻'",
        &[],
    );
    assert_eq!(k.name.as_deref(), Some("日本語 👩‍💻"));
}
