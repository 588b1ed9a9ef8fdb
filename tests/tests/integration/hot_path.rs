//! SPEC §2's hot-path exception (issue 13): `api_key_verify`, `has_scope`
//! and `current_key_id/owner_type/owner_id/scopes()` are neither SECURITY
//! DEFINER nor SET search_path. That is safe only if they resolve no name
//! through the caller's search_path and every SQL text they may run (the
//! non-preloaded `last_used_at` write, run as the table's owner) is immune
//! to it. These tests call them with `search_path = evil, public,
//! pg_catalog` — pg_catalog last, so an unqualified name would pick up
//! evil's object even where pg_catalog has an exact match — after planting
//! look-alikes of every table, operator, function and type verify could
//! touch in `evil`, in `public` and in the caller's `pg_temp`. Each
//! look-alike records that it ran in a trap table. As a role that has only
//! EXECUTE granted to PUBLIC, a verifier (also by SET ROLE), an admin, a
//! superuser, and from inside a SECURITY DEFINER function owned by a
//! non-superuser; preloaded (shared memory) and not (the fallback write).
//! Each must get the answers a clean superuser session gets, leave the trap
//! table empty, and come back with its own privileges and nothing more.

use api_keys_tests::cluster::{serial, Cluster, Options, APP_DB};
use api_keys_tests::usage::stats;
use api_keys_tests::*;
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

const HOSTILE_PATH: &str = "SET search_path = evil, public, pg_catalog";

/// Every argument type verify's and the fallback's SQL deal in, and then
/// some: look-alike operators for each (exact matches too, which win over
/// pg_catalog's when pg_catalog comes last in search_path).
const OPERATORS: &[(&str, &str, &str, &str)] = &[
    ("=", "uuid", "uuid", "boolean"),
    ("<>", "uuid", "uuid", "boolean"),
    ("=", "bytea", "bytea", "boolean"),
    ("=", "text", "text", "boolean"),
    ("<>", "text", "text", "boolean"),
    ("=", "name", "text", "boolean"),
    ("=", "text[]", "text[]", "boolean"),
    ("@>", "text[]", "text[]", "boolean"),
    ("<@", "text[]", "text[]", "boolean"),
    ("&&", "text[]", "text[]", "boolean"),
    ("||", "text[]", "text", "text[]"),
    ("||", "text", "text", "text"),
    ("=", "timestamptz", "timestamptz", "boolean"),
    ("<", "timestamptz", "timestamptz", "boolean"),
    ("<=", "timestamptz", "timestamptz", "boolean"),
    (">", "timestamptz", "timestamptz", "boolean"),
    (">=", "timestamptz", "timestamptz", "boolean"),
    ("-", "timestamptz", "interval", "timestamptz"),
    ("+", "timestamptz", "interval", "timestamptz"),
    ("*", "bigint", "interval", "interval"),
    ("*", "integer", "interval", "interval"),
    ("+", "bigint", "bigint", "bigint"),
    ("+", "bigint", "integer", "bigint"),
    ("=", "jsonb", "jsonb", "boolean"),
];

/// Look-alike functions: what SQL around a verify would call, the support
/// functions of the operators verify's scans use (by OID), and the
/// extension's own names.
const FUNCTIONS: &[(&str, &str, &str)] = &[
    ("now", "", "timestamptz"),
    ("clock_timestamp", "", "timestamptz"),
    ("statement_timestamp", "", "timestamptz"),
    ("transaction_timestamp", "", "timestamptz"),
    ("sha256", "bytea", "bytea"),
    ("sha256", "text", "bytea"),
    ("digest", "bytea, text", "bytea"),
    ("length", "bytea", "integer"),
    ("length", "text", "integer"),
    ("convert_to", "text, text", "bytea"),
    ("array_append", "text[], text", "text[]"),
    ("array_length", "text[], integer", "integer"),
    ("cardinality", "text[]", "integer"),
    ("current_setting", "text", "text"),
    ("current_setting", "text, boolean", "text"),
    ("gen_random_uuid", "", "uuid"),
    ("lower", "text", "text"),
    ("byteaeq", "bytea, bytea", "boolean"),
    ("texteq", "text, text", "boolean"),
    ("uuid_eq", "uuid, uuid", "boolean"),
    ("timestamptz_lt", "timestamptz, timestamptz", "boolean"),
    ("_current_environment", "", "text"),
    ("_scopes_effective", "text[], text[]", "text[]"),
    ("_authenticate", "text, text[]", "text"),
    ("api_key_verify", "text, text[], text", "boolean"),
    ("api_key_verify", "text, text[], text, text", "boolean"),
    ("has_scope", "text", "boolean"),
    ("current_key_id", "", "uuid"),
    ("current_owner_type", "", "text"),
    ("current_owner_id", "", "text"),
    ("current_scopes", "", "text[]"),
];

/// The trap table, and what the look-alikes call to fill it.
fn create_traps(su: &mut Client) {
    su.batch_execute(
        "CREATE SCHEMA evil; GRANT USAGE ON SCHEMA evil TO PUBLIC;
         CREATE TABLE evil.trap_log (who text, superuser boolean, what text);
         GRANT ALL ON evil.trap_log TO PUBLIC;
         CREATE FUNCTION evil.trap(what text) RETURNS void LANGUAGE sql AS $$
             INSERT INTO evil.trap_log
             SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r
              WHERE r.rolname OPERATOR(pg_catalog.=) current_user
         $$;
         CREATE FUNCTION evil.trap_true(what text) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN PERFORM evil.trap(what); RETURN true; END $$;
         CREATE FUNCTION evil.trap_rows(what text)
             RETURNS TABLE (id uuid, name text, last_used_at timestamptz, token_hash bytea,
                            permissions text[], revoked_at timestamptz)
             LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.trap(what); END $$;
         CREATE FUNCTION evil.trap_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM evil.trap(TG_ARGV[0]); RETURN NULL; END $$;",
    )
    .unwrap_or_else(|e| panic!("creating the traps: {}", describe(&e)));
}

/// Look-alike tables (views that record reads, with triggers that record
/// writes), operators and functions in `schema`.
fn plant_shadows(su: &mut Client, schema: &str) {
    let mut sql = String::new();
    for table in [
        "keys",
        "key_types",
        "environments",
        "scopes",
        "owner_policies",
        "mfa_enrollments",
    ] {
        sql.push_str(&format!(
            "CREATE VIEW {schema}.{table} AS SELECT * FROM evil.trap_rows('read {schema}.{table}');
             CREATE TRIGGER trap INSTEAD OF INSERT OR UPDATE OR DELETE ON {schema}.{table}
                 FOR EACH ROW EXECUTE FUNCTION evil.trap_write('write {schema}.{table}');
             GRANT ALL ON {schema}.{table} TO PUBLIC;\n"
        ));
    }
    for (i, (op, left, right, result)) in OPERATORS.iter().enumerate() {
        sql.push_str(&format!(
            "CREATE FUNCTION {schema}.op_{i}(a {left}, b {right}) RETURNS {result} LANGUAGE plpgsql AS $$
                 BEGIN PERFORM evil.trap('{schema}: {op}({left}, {right})'); RETURN NULL; END $$;
             CREATE OPERATOR {schema}.{op} (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = {schema}.op_{i});\n"
        ));
    }
    for (name, args, result) in FUNCTIONS {
        let params: Vec<String> = args
            .split(", ")
            .filter(|a| !a.is_empty())
            .enumerate()
            .map(|(i, t)| format!("a{i} {t}"))
            .collect();
        sql.push_str(&format!(
            "CREATE FUNCTION {schema}.{name}({}) RETURNS {result} LANGUAGE plpgsql AS $$
                 BEGIN PERFORM evil.trap('{schema}: {name}({args})'); RETURN NULL; END $$;\n",
            params.join(", ")
        ));
    }
    sql.push_str(&format!(
        "CREATE FUNCTION {schema}.unnest(a text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
             BEGIN PERFORM evil.trap('{schema}: unnest(text[])'); RETURN; END $$;
         CREATE FUNCTION {schema}.unnest(a uuid[]) RETURNS SETOF uuid LANGUAGE plpgsql AS $$
             BEGIN PERFORM evil.trap('{schema}: unnest(uuid[])'); RETURN; END $$;"
    ));
    su.batch_execute(&sql)
        .unwrap_or_else(|e| panic!("planting shadows in {schema}: {}", describe(&e)));
}

/// Look-alike types in `evil` whose every use records itself (a domain's
/// CHECK runs whenever a value is cast to it). Planted last: the look-alikes
/// above are declared with pg_catalog's types.
fn plant_types(su: &mut Client) {
    let mut sql = String::new();
    for t in [
        "uuid",
        "text",
        "bytea",
        "timestamptz",
        "jsonb",
        "int4",
        "int8",
        "bool",
    ] {
        sql.push_str(&format!(
            "CREATE DOMAIN evil.{t} AS pg_catalog.{t} CHECK (evil.trap_true('type evil.{t}'));\n"
        ));
    }
    sql.push_str("CREATE TYPE evil.verification AS (valid pg_catalog.int4);");
    su.batch_execute(&sql)
        .unwrap_or_else(|e| panic!("planting types: {}", describe(&e)));
}

/// Temporary look-alikes in the caller's own session: pg_temp is searched
/// first for relations, before anything in search_path.
fn plant_temp(app: &mut Client) {
    let mut sql = String::new();
    for table in ["keys", "key_types"] {
        sql.push_str(&format!(
            "CREATE TEMP VIEW {table} AS SELECT * FROM evil.trap_rows('read pg_temp.{table}');
             CREATE TRIGGER trap INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.{table}
                 FOR EACH ROW EXECUTE FUNCTION evil.trap_write('write pg_temp.{table}');\n"
        ));
    }
    app.batch_execute(&sql)
        .unwrap_or_else(|e| panic!("planting temporary shadows: {}", describe(&e)));
}

#[track_caller]
fn assert_no_trap_ran(su: &mut Client) {
    let ran: Vec<(String, bool, String)> = su
        .query("SELECT who, superuser, what FROM evil.trap_log", &[])
        .expect("reading the trap log")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        ran.is_empty(),
        "attacker code ran (who, superuser, what): {ran:?}"
    );
}

/// One verify call: token, required scopes, environment argument.
struct Case {
    token: Option<String>,
    required: Option<Vec<&'static str>>,
    environment: Option<&'static str>,
    otp: Option<&'static str>,
}

/// Verify with every argument given, each type written in full.
const VERIFY: &str = "SELECT * FROM api_keys.api_key_verify($1::pg_catalog.text, \
                      $2::pg_catalog.text[], $3::pg_catalog.text, $4::pg_catalog.text)";

fn answer(c: &mut Client, case: &Case) -> String {
    let row = c
        .query_one(
            VERIFY,
            &[&case.token, &case.required, &case.environment, &case.otp],
        )
        .unwrap_or_else(|e| panic!("api_key_verify raised: {}", describe(&e)));
    format!("{:?}", Verification::from_row(&row))
}

/// The keys and cases of one run, and what a clean session answers.
struct Fixture {
    cases: Vec<Case>,
    expected: Vec<String>,
    /// The valid keys the cases verify (their usage is recorded).
    valid_ids: Vec<Uuid>,
    /// A key to authenticate with, its owner id and effective scopes.
    auth: IssuedKey,
    /// The key that the fallback write is tested with.
    plain: IssuedKey,
}

fn fixture(su_config: &Config) -> Fixture {
    let mut su = su_config.connect(NoTls).expect("superuser connection");
    let db = su_config.get_dbname().expect("a database name").to_owned();
    // untyped keys first: once an environment exists every new key needs one
    let plain = issue(
        &mut su,
        "owner_type => 'user', owner_id => 'plain', name => 'p', scopes => '{read}', \
         metadata => '{\"tier\": 1}'",
        &[],
    );
    let revoked = issue_for(&mut su, "user", "revoked");
    revoke(&mut su, revoked.id);
    let expired = issue_for(&mut su, "user", "expired");
    let gone = issue_for(&mut su, "user", "gone");
    su.execute(
        "UPDATE api_keys.keys SET expires_at = now() - interval '1 day', \
                created_at = now() - interval '2 days' WHERE id = $1",
        &[&expired.id],
    )
    .unwrap();
    su.execute("DELETE FROM api_keys.keys WHERE id = $1", &[&gone.id])
        .unwrap();
    configure(
        &mut su,
        "api_keys.api_key_type_define('secret', 'sk', '{read,write,admin}')",
    );
    configure(
        &mut su,
        "api_keys.api_key_environment_define('live', 'live')",
    );
    let typed = issue(
        &mut su,
        "owner_type => 'org', owner_id => 'typed', name => 't', key_type => 'secret', \
         environment => 'live', scopes => '{read,write,admin}', expires_in => '30_days'",
        &[],
    );
    // a lowered ceiling: verify forms the effective scopes array itself
    configure(
        &mut su,
        "api_keys.api_key_type_define('secret', 'sk', '{read,write}')",
    );
    su.batch_execute(&format!(
        "ALTER DATABASE {db} SET api_keys.strict_environment_isolation = on"
    ))
    .unwrap();
    // an MFA key (its owner enrolled, a sensitive scope): verify reads the
    // sensitive scopes and the owner's secret, as the table's owner
    let enrolled: String = su
        .query_one(
            "SELECT secret FROM api_keys.api_key_mfa_enroll('user', 'mfa')",
            &[],
        )
        .unwrap()
        .get(0);
    let code = api_keys_tests::totp::code_at_step(
        &api_keys_tests::totp::base32_decode(&enrolled),
        api_keys_tests::totp::current_step(),
    );
    let confirmed: bool = su
        .query_one(
            "SELECT api_keys.api_key_mfa_confirm('user', 'mfa', $1)",
            &[&code],
        )
        .unwrap()
        .get(0);
    if !confirmed {
        // not preloaded: every code is refused, confirm too (README); enable
        // the enrollment by hand so that verify's reads are exercised
        assert!(!stats(&mut su).preloaded, "confirm with the current code");
        su.batch_execute("UPDATE api_keys.mfa_enrollments SET enabled = true")
            .unwrap();
    }
    let mfa_key = issue(
        &mut su,
        "owner_type => 'user', owner_id => 'mfa', environment => 'live', \
         scopes => '{read,admin}', mfa => true",
        &[],
    );
    configure(&mut su, "api_keys.api_key_scope_define('read')");
    configure(&mut su, "api_keys.api_key_scope_define('write')");
    configure(
        &mut su,
        "api_keys.api_key_scope_define('admin', mfa => true)",
    );
    let case = |token: Option<&str>, required: Option<Vec<&'static str>>, environment| Case {
        token: token.map(str::to_owned),
        required,
        environment,
        otp: None,
    };
    let with_otp = |token: &str, otp| Case {
        token: Some(token.to_owned()),
        required: Some(vec!["admin"]),
        environment: Some("live"),
        otp,
    };
    let cases = vec![
        case(Some(&typed.token), Some(vec!["read"]), Some("live")),
        case(Some(&typed.token), Some(vec!["write"]), Some("live")),
        case(Some(&typed.token), Some(vec!["admin"]), Some("live")),
        case(Some(&typed.token), Some(vec![]), Some("test")),
        case(Some(&typed.token), None, None),
        case(Some(&plain.token), Some(vec!["read"]), None),
        case(Some(&plain.token), None, Some("live")),
        case(Some(&plain.token), Some(vec!["write"]), None),
        case(Some(&revoked.token), None, None),
        case(Some(&expired.token), None, None),
        case(Some(&gone.token), None, None),
        case(Some("ak_not_a_token"), None, None),
        case(Some(""), None, None),
        case(None, None, None),
        with_otp(&mfa_key.token, None),
        with_otp(&mfa_key.token, Some("000000")),
    ];
    // what a clean session answers (a new one: the database setting above)
    let mut clean = su_config.connect(NoTls).unwrap();
    clean
        .batch_execute("SET api_keys.track_usage = off")
        .unwrap();
    let expected: Vec<String> = cases.iter().map(|c| answer(&mut clean, c)).collect();
    let codes: Vec<&str> = expected
        .iter()
        .map(|e| {
            e.split("code: \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        codes,
        [
            "valid",
            "valid",
            "insufficient_scope",
            "environment_mismatch",
            "environment_mismatch",
            "valid",
            "valid",
            "insufficient_scope",
            "revoked",
            "expired",
            "not_found",
            "malformed",
            "malformed",
            "malformed",
            "otp_required",
            "otp_invalid"
        ],
        "the cases cover every code"
    );
    Fixture {
        cases,
        expected,
        valid_ids: vec![typed.id, plain.id],
        auth: plain.clone(),
        plain,
    }
}

/// Roles made for one run, dropped with what they own at the end.
struct Roles {
    su: Config,
    names: Vec<String>,
}

impl Roles {
    fn login(&mut self, grant: Option<&str>) -> String {
        let name = random_ident("hp_");
        let db = self.su.get_dbname().unwrap().to_owned();
        let mut su = self.su.connect(NoTls).unwrap();
        su.batch_execute(&format!(
            "CREATE ROLE {name} LOGIN; GRANT CONNECT, TEMP ON DATABASE {db} TO {name};"
        ))
        .unwrap();
        if let Some(role) = grant {
            su.batch_execute(&format!("GRANT {role} TO {name}"))
                .unwrap();
        }
        self.names.push(name.clone());
        name
    }

    fn connect(&self, name: &str) -> Client {
        let mut config = self.su.clone();
        config.user(name);
        config
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connecting as {name}: {}", describe(&e)))
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        if let Ok(mut su) = self.su.connect(NoTls) {
            for n in &self.names {
                let _ = su.batch_execute(&format!("DROP OWNED BY {n}; DROP ROLE IF EXISTS {n}"));
            }
        }
    }
}

fn current_user(c: &mut impl postgres::GenericClient) -> String {
    c.query_one("SELECT current_user::pg_catalog.text", &[])
        .unwrap()
        .get(0)
}

/// After a verify in this transaction, the caller is still itself and no
/// more: same user, no access to the tables or the internal helpers, and
/// no security-restricted state left (SET ROLE and temporary tables work).
fn assert_still_itself(tx: &mut postgres::Transaction<'_>, who: &str, privileged: bool) {
    assert_eq!(current_user(tx), who, "current_user after a verify");
    if !privileged {
        for sql in [
            "SELECT 1 FROM api_keys.keys LIMIT 1",
            "SELECT 1 FROM api_keys.key_types LIMIT 1",
            "UPDATE api_keys.keys SET last_used_at = NULL",
            "SELECT api_keys._key_id_new()",
            "SELECT api_keys._current_environment()",
        ] {
            let mut sp = tx.transaction().unwrap();
            assert_permission_denied(sp.batch_execute(sql));
        }
    }
    let mut sp = tx.transaction().unwrap();
    sp.batch_execute("CREATE TEMP TABLE hp_after (x pg_catalog.int4) ON COMMIT DROP")
        .unwrap_or_else(|e| panic!("a temporary table after a verify: {}", describe(&e)));
    sp.batch_execute("SET LOCAL ROLE NONE; RESET ROLE")
        .unwrap_or_else(|e| panic!("SET ROLE after a verify: {}", describe(&e)));
    drop(sp);
    assert_eq!(current_user(tx), who, "current_user at the end");
}

/// Everything one caller must see under the hostile search_path.
fn check_caller(
    su_config: &Config,
    f: &Fixture,
    app: &mut Client,
    who: &str,
    privileged: bool,
    preloaded: bool,
) {
    let mut su = su_config.connect(NoTls).unwrap();
    su.batch_execute("UPDATE api_keys.keys SET last_used_at = NULL")
        .unwrap();
    let recorded_before = preloaded.then(|| stats(&mut su).recorded);
    plant_temp(app);
    app.batch_execute(HOSTILE_PATH).unwrap();

    for (case, expected) in f.cases.iter().zip(&f.expected) {
        assert_eq!(&answer(app, case), expected, "{who}: the same answer");
    }
    // the defaults (stored expressions) resolve nothing either
    let row = app
        .query_one(
            "SELECT * FROM api_keys.api_key_verify($1::pg_catalog.text)",
            &[&f.plain.token],
        )
        .unwrap_or_else(|e| panic!("{who}: verify with defaults raised: {}", describe(&e)));
    Verification::from_row(&row).assert_code("valid");
    // the select-list form
    let valid: bool = app
        .query_one(
            "SELECT (api_keys.api_key_verify($1::pg_catalog.text)).valid",
            &[&f.plain.token],
        )
        .unwrap()
        .get(0);
    assert!(valid, "{who}: select-list form");

    // usage is recorded though the caller has no privilege on the table
    if let Some(before) = recorded_before {
        let after = stats(&mut su).recorded;
        assert!(
            after - before >= 4,
            "{who}: the valid verifications were recorded ({before} -> {after})"
        );
    } else {
        let written: Vec<(Uuid, bool)> = su
            .query(
                "SELECT id, last_used_at IS NOT NULL FROM api_keys.keys ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (id, w) in written {
            assert_eq!(
                w,
                f.valid_ids.contains(&id),
                "{who}: last_used_at written by the fallback for valid keys only ({id})"
            );
        }
    }

    // in one transaction: verify, then the caller is no one else
    let mut tx = app.transaction().unwrap();
    let row = tx
        .query_one(
            "SELECT * FROM api_keys.api_key_verify($1::pg_catalog.text)",
            &[&f.plain.token],
        )
        .unwrap();
    Verification::from_row(&row).assert_code("valid");
    assert_still_itself(&mut tx, who, privileged);
    drop(tx);

    // the identity helpers after authenticate
    let mut tx = app.transaction().unwrap();
    let headers = format!("{{\"x-api-key\": \"{}\"}}", f.auth.token);
    tx.execute(
        "SELECT pg_catalog.set_config('request.headers', $1::pg_catalog.text, true)",
        &[&headers],
    )
    .unwrap();
    tx.batch_execute("SELECT api_keys.api_key_authenticate()")
        .unwrap_or_else(|e| panic!("{who}: authenticate: {}", describe(&e)));
    let row = tx
        .query_one(
            "SELECT api_keys.current_key_id(), api_keys.current_owner_type(), \
                    api_keys.current_owner_id(), api_keys.current_scopes(), \
                    api_keys.has_scope('read'::pg_catalog.text), \
                    api_keys.has_scope('write'::pg_catalog.text), \
                    api_keys.has_scope(NULL::pg_catalog.text)",
            &[],
        )
        .unwrap_or_else(|e| panic!("{who}: identity helpers: {}", describe(&e)));
    let identity: (
        Option<Uuid>,
        Option<String>,
        Option<String>,
        Option<Vec<String>>,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        identity,
        (
            Some(f.auth.id),
            Some(f.auth.owner_type.clone()),
            Some(f.auth.owner_id.clone()),
            Some(f.auth.scopes.clone())
        ),
        "{who}: identity"
    );
    let held: (bool, bool, bool) = (row.get(4), row.get(5), row.get(6));
    assert_eq!(held, (true, false, false), "{who}: has_scope");
    assert_still_itself(&mut tx, who, privileged);
    drop(tx);

    assert_no_trap_ran(&mut su);
}

/// The whole check against one database (`su_config`: a superuser there).
fn hostile_search_path_changes_nothing(su_config: Config) {
    let mut su = su_config.connect(NoTls).expect("superuser connection");
    let preloaded = stats(&mut su).preloaded;
    let f = fixture(&su_config);
    create_traps(&mut su);
    plant_shadows(&mut su, "evil");
    plant_shadows(&mut su, "public");
    plant_types(&mut su);
    let mut roles = Roles {
        su: su_config.clone(),
        names: Vec::new(),
    };

    let verifier = roles.login(Some("api_keys_verifier"));
    check_caller(
        &su_config,
        &f,
        &mut roles.connect(&verifier),
        &verifier,
        false,
        preloaded,
    );
    let mut app = roles.connect(&verifier);
    app.batch_execute("SET ROLE api_keys_verifier").unwrap();
    check_caller(
        &su_config,
        &f,
        &mut app,
        "api_keys_verifier",
        false,
        preloaded,
    );
    let admin = roles.login(Some("api_keys_admin"));
    check_caller(
        &su_config,
        &f,
        &mut roles.connect(&admin),
        &admin,
        false,
        preloaded,
    );
    check_caller(
        &su_config,
        &f,
        &mut su_config.connect(NoTls).unwrap(),
        su_config.get_user().unwrap(),
        true,
        preloaded,
    );

    // verify inside a SECURITY DEFINER function owned by a non-superuser,
    // called by a role with no grant but EXECUTE on that function
    let owner = roles.login(Some("api_keys_verifier"));
    let caller = roles.login(None);
    su.batch_execute(&format!(
        "CREATE FUNCTION evil.definer_verify(t text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
             BEGIN
                 RETURN pg_catalog.concat_ws(' ', (SELECT v.code FROM api_keys.api_key_verify(t) v),
                                             current_user::pg_catalog.text);
             END $$;
         ALTER FUNCTION evil.definer_verify(text) OWNER TO {owner};
         REVOKE ALL ON FUNCTION evil.definer_verify(text) FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION evil.definer_verify(text) TO {caller};
         UPDATE api_keys.keys SET last_used_at = NULL;"
    ))
    .unwrap();
    let mut app = roles.connect(&caller);
    plant_temp(&mut app);
    app.batch_execute(HOSTILE_PATH).unwrap();
    let mut tx = app.transaction().unwrap();
    let got: String = tx
        .query_one(
            "SELECT evil.definer_verify($1::pg_catalog.text)",
            &[&f.plain.token],
        )
        .unwrap_or_else(|e| panic!("verify inside a definer function: {}", describe(&e)))
        .get(0);
    assert_eq!(got, format!("valid {owner}"));
    assert_still_itself(&mut tx, &caller, false);
    tx.commit().unwrap();
    if !preloaded {
        let written: bool = su
            .query_one(
                "SELECT last_used_at IS NOT NULL FROM api_keys.keys WHERE id = $1",
                &[&f.plain.id],
            )
            .unwrap()
            .get(0);
        assert!(
            written,
            "the fallback wrote last_used_at under a definer function"
        );
    }

    // "PUBLIC with a verifier grant": a database whose owner granted verify
    // and the identity helpers to PUBLIC; a role in no extension role
    su.batch_execute(
        "GRANT USAGE ON SCHEMA api_keys TO PUBLIC;
         GRANT EXECUTE ON FUNCTION api_keys.api_key_verify(text, text[], text, text),
             api_keys.api_key_authenticate(text[]), api_keys.current_key_id(),
             api_keys.current_owner_type(), api_keys.current_owner_id(),
             api_keys.current_scopes(), api_keys.has_scope(text) TO PUBLIC;",
    )
    .unwrap();
    let nobody = roles.login(None);
    check_caller(
        &su_config,
        &f,
        &mut roles.connect(&nobody),
        &nobody,
        false,
        preloaded,
    );
    drop(roles);
    assert_no_trap_ran(&mut su);
}

#[test]
fn preloaded_verify_and_identity_helpers_ignore_a_hostile_search_path() {
    let db = TestDb::new();
    let config: Config = db.libpq_dsn().parse().expect("the test database's DSN");
    hostile_search_path_changes_nothing(config);
}

#[test]
fn fallback_verify_and_identity_helpers_ignore_a_hostile_search_path() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut su = cluster.connect(APP_DB);
    assert!(
        !stats(&mut su).preloaded,
        "a cluster without the library preloaded"
    );
    hostile_search_path_changes_nothing(cluster.config(APP_DB));
}

/// The fallback write runs as the table's owner, and an ERROR inside it
/// (here: a trigger a superuser added) leaves the caller as it was, whether
/// the caller catches it in a savepoint, in an EXCEPTION block, or not.
#[test]
fn fallback_write_runs_as_the_owner_and_an_error_in_it_restores_the_caller() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let config = cluster.config(APP_DB);
    let mut su = cluster.connect(APP_DB);
    let key = issue_for(&mut su, "user", "1");
    let owner: String = su
        .query_one(
            "SELECT c.relowner::regrole::text FROM pg_class c WHERE c.oid = 'api_keys.keys'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    su.batch_execute(
        "CREATE SCHEMA evil; GRANT USAGE ON SCHEMA evil TO PUBLIC;
         CREATE TABLE evil.write_log (who text, search_path text);
         GRANT ALL ON evil.write_log TO PUBLIC;
         CREATE FUNCTION evil.who_writes() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO evil.write_log
                 VALUES (current_user::pg_catalog.text, pg_catalog.current_setting('search_path'));
                 RETURN NEW;
             END $$;
         CREATE TRIGGER who_writes BEFORE UPDATE ON api_keys.keys
             FOR EACH ROW EXECUTE FUNCTION evil.who_writes();
         CREATE FUNCTION evil.verify_catching(t text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM api_keys.api_key_verify(t);
                 RETURN 'no error';
             EXCEPTION WHEN OTHERS THEN
                 RETURN current_user::pg_catalog.text;
             END $$;",
    )
    .unwrap();
    let mut roles = Roles {
        su: config.clone(),
        names: Vec::new(),
    };
    let verifier = roles.login(Some("api_keys_verifier"));
    let mut app = roles.connect(&verifier);
    app.batch_execute(HOSTILE_PATH).unwrap();

    verify(&mut app, &key.token).assert_code("valid");
    let log: Vec<(String, String)> = su
        .query("SELECT who, search_path FROM evil.write_log", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        log,
        [(owner.clone(), "evil, public, pg_catalog".to_owned())],
        "the write ran once, as the owner of api_keys.keys, under the caller's search_path"
    );
    assert_eq!(current_user(&mut app), verifier);

    // now the write fails
    su.batch_execute(
        "CREATE OR REPLACE FUNCTION evil.who_writes() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'boom'; END $$;",
    )
    .unwrap();
    let reset = |su: &mut Client| {
        su.batch_execute(
            "ALTER TABLE api_keys.keys DISABLE TRIGGER who_writes;
                          UPDATE api_keys.keys SET last_used_at = NULL;
                          ALTER TABLE api_keys.keys ENABLE TRIGGER who_writes;",
        )
        .unwrap()
    };

    // caught by a savepoint
    reset(&mut su);
    let mut tx = app.transaction().unwrap();
    {
        let mut sp = tx.transaction().unwrap();
        let err = sp
            .query(
                "SELECT * FROM api_keys.api_key_verify($1::pg_catalog.text)",
                &[&key.token],
            )
            .unwrap_err();
        assert!(describe(&err).contains("boom"), "{}", describe(&err));
    }
    assert_still_itself(&mut tx, &verifier, false);
    drop(tx);

    // caught by an EXCEPTION block
    reset(&mut su);
    let mut tx = app.transaction().unwrap();
    let caught: String = tx
        .query_one(
            "SELECT evil.verify_catching($1::pg_catalog.text)",
            &[&key.token],
        )
        .unwrap()
        .get(0);
    assert_eq!(caught, verifier, "current_user in the EXCEPTION handler");
    assert_still_itself(&mut tx, &verifier, false);
    drop(tx);

    // not caught: the transaction aborts
    reset(&mut su);
    let err = app
        .query(
            "SELECT * FROM api_keys.api_key_verify($1::pg_catalog.text)",
            &[&key.token],
        )
        .unwrap_err();
    assert!(describe(&err).contains("boom"), "{}", describe(&err));
    let mut tx = app.transaction().unwrap();
    assert_still_itself(&mut tx, &verifier, false);
    drop(tx);

    su.batch_execute("DROP TRIGGER who_writes ON api_keys.keys")
        .unwrap();
    verify(&mut app, &key.token).assert_code("valid");
}
