//! The custom scan for `SELECT … FROM api_keys.api_key_verify(…)`
//! (extension/src/scan.rs, issue 13): every form of query answers exactly
//! as with the plain FunctionScan (`api_keys.verify_custom_scan = off`),
//! calls the function as often, checks the same privileges, and EXPLAIN
//! shows which plan ran. The scan takes a statement that is only the call:
//! its columns, no filter, no join, no sort, arguments constants or
//! parameters. Every other form (expressions, WHERE, joins, LATERAL,
//! aggregates, sub-selects, ROWS FROM, WITH ORDINALITY, a whole-row
//! reference, UPDATE … FROM, differently declared copies of the C symbol)
//! keeps the Function Scan. Preloaded and not (the hook exists once the
//! library is loaded: in a session that has not called into it yet, the
//! first statement is planned without it).

use api_keys_tests::cluster::{serial, Cluster, Options, APP_DB};
use api_keys_tests::usage::{flush_and_wait, stats};
use api_keys_tests::*;
use postgres::{Client, Config, NoTls, SimpleQueryMessage};

const CUSTOM: &str = "Custom Scan (api_key_verify)";
const FSCAN: &str = "Function Scan on api_keys.api_key_verify";

/// Rows of a simple-protocol run of `sql` (all statements), every value as
/// text; an error as its SQLSTATE.
fn rows(c: &mut Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    match c.simple_query(sql) {
        Ok(msgs) => Ok(msgs
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) => Err(e
            .code()
            .map(|s| s.code().to_owned())
            .unwrap_or_else(|| describe(&e))),
    }
}

fn plan(c: &mut Client, sql: &str) -> String {
    rows(c, &format!("EXPLAIN (COSTS OFF, VERBOSE) {sql}"))
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session with the scan on or off; its first statement loads the
/// library, so that the hook is in place when the forms are planned.
fn session(config: &Config, on: bool) -> Client {
    let mut c = config.connect(NoTls).expect("a connection");
    c.batch_execute(&format!(
        "SET api_keys.verify_custom_scan = {}; SELECT api_keys.api_key_verify(NULL)",
        if on { "on" } else { "off" }
    ))
    .unwrap();
    c
}

/// Calls of api_key_verify (track_functions) and usage recorded (preloaded:
/// shared memory; not: last_used_at written) while `sql` runs, in one
/// transaction; and its rows.
fn counted(c: &mut Client, sql: &str) -> (i64, Vec<Vec<Option<String>>>) {
    // pending function counts survive a transaction until they are
    // flushed (PG15), which never happens inside one: count the difference
    let calls = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT COALESCE(sum(calls), 0)::int8 FROM pg_stat_xact_user_functions \
              WHERE funcid = 'api_keys.api_key_verify(text, text[], text, text)'::regprocedure",
            &[],
        )
        .unwrap()
        .get(0)
    };
    c.batch_execute("BEGIN; SET LOCAL track_functions = 'all'")
        .unwrap();
    let before = calls(c);
    let got = rows(c, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let after = calls(c);
    c.batch_execute("COMMIT").unwrap();
    (after - before, got)
}

struct Keys {
    alice: IssuedKey,
    revoked: IssuedKey,
}

fn setup(su: &mut Client) -> Keys {
    let alice = issue(
        su,
        "owner_type => 'user', owner_id => 'alice', name => 'a', scopes => '{read}', \
         metadata => '{\"tier\": 1}'",
        &[],
    );
    let revoked = issue_for(su, "user", "bob");
    revoke(su, revoked.id);
    su.batch_execute(&format!(
        "CREATE TABLE public.cs_tokens (n int PRIMARY KEY, token text, note text);
         INSERT INTO public.cs_tokens VALUES (1, '{a}', NULL), (2, 'ak_not_a_token', NULL),
             (3, NULL, NULL), (4, '{r}', NULL), (5, '{a}', NULL), (6, repeat('x', 100000), NULL);
         GRANT SELECT ON public.cs_tokens TO PUBLIC;
         CREATE FUNCTION public.cs_loop(t text) RETURNS SETOF text LANGUAGE plpgsql AS $$
             DECLARE r record;
             BEGIN
                 FOR r IN SELECT * FROM api_keys.api_key_verify(t, '{{read}}') LOOP
                     RETURN NEXT r.code || ' ' || COALESCE(r.owner_id, '-') || ' ' || r.valid;
                 END LOOP;
             END $$;
         CREATE FUNCTION public.cs_definer_set(token text, required_scopes text[] DEFAULT '{{}}',
                                               environment text DEFAULT NULL)
             RETURNS api_keys.verification LANGUAGE c VOLATILE SECURITY DEFINER
             SET search_path = pg_catalog, pg_temp AS '$libdir/api_keys', 'api_key_verify_c';
         CREATE FUNCTION public.cs_definer(token text, required_scopes text[] DEFAULT '{{}}',
                                           environment text DEFAULT NULL)
             RETURNS api_keys.verification LANGUAGE c VOLATILE SECURITY DEFINER
             AS '$libdir/api_keys', 'api_key_verify_c';",
        a = alice.token,
        r = revoked.token
    ))
    .unwrap();
    Keys { alice, revoked }
}

/// (name, statement to EXPLAIN or None, SQL run, plan with the scan on:
/// custom or Function Scan).
fn forms(k: &Keys) -> Vec<(&'static str, Option<String>, String, bool)> {
    let a = &k.alice.token;
    let r = &k.revoked.token;
    let v = "api_keys.api_key_verify";
    let one = |sql: String| (Some(sql.clone()), sql);
    let mut out = Vec::new();
    let mut add = |name, (explain, sql): (Option<String>, String), custom| {
        out.push((name, explain, sql, custom))
    };
    add(
        "plain",
        one(format!("SELECT * FROM {v}('{a}', '{{read}}')")),
        true,
    );
    add(
        "all arguments",
        one(format!("SELECT * FROM {v}('{a}', '{{read}}', NULL, NULL)")),
        true,
    );
    add(
        "named arguments",
        one(format!(
            "SELECT * FROM {v}(token => '{a}', required_scopes => '{{write}}')"
        )),
        true,
    );
    add("revoked", one(format!("SELECT * FROM {v}('{r}')")), true);
    add(
        "column aliases",
        one(format!(
            "SELECT a, b, c, d FROM {v}('{a}') AS w(a, b, c, d)"
        )),
        true,
    );
    add(
        "some columns",
        one(format!("SELECT owner_id, code FROM {v}('{a}') w")),
        true,
    );
    add(
        "expressions",
        one(format!(
            "SELECT code || '/' || owner_id, NOT valid, scopes[1] FROM {v}('{a}') w"
        )),
        false,
    );
    add(
        "where true",
        one(format!(
            "SELECT code FROM {v}('{a}') w WHERE w.valid AND w.owner_id = 'alice'"
        )),
        false,
    );
    add(
        "where false",
        one(format!("SELECT code FROM {v}('{a}') w WHERE NOT w.valid")),
        false,
    );
    add(
        "where null",
        one(format!(
            "SELECT code FROM {v}(NULL) w WHERE w.owner_id IS NULL"
        )),
        false,
    );
    add(
        "order by unselected",
        one(format!(
            "SELECT code FROM {v}('{a}') w ORDER BY owner_id, key_id"
        )),
        false,
    );
    add(
        "group by",
        one(format!(
            "SELECT owner_id, count(*) FROM {v}('{a}') w GROUP BY owner_id"
        )),
        false,
    );
    add(
        "distinct",
        one(format!(
            "SELECT DISTINCT valid FROM public.cs_tokens t, LATERAL {v}(t.token) w"
        )),
        false,
    );
    add(
        "placeholder",
        one(format!(
            "SELECT t.n, s.code, s.one FROM public.cs_tokens t LEFT JOIN LATERAL \
             (SELECT w.code, 1 AS one FROM {v}(t.token) w WHERE w.valid) s ON true ORDER BY t.n"
        )),
        false,
    );
    add(
        "join qual only",
        one(format!(
            "SELECT t.n FROM public.cs_tokens t JOIN {v}('{a}') w ON w.owner_id = 'alice' AND t.n = 1"
        )),
        false,
    );
    add(
        "lateral over tokens",
        one(format!(
            "SELECT t.n, w.* FROM public.cs_tokens t, LATERAL {v}(t.token) w ORDER BY t.n"
        )),
        false,
    );
    add(
        "lateral with a join qual",
        one(format!(
            "SELECT t.n, w.code FROM public.cs_tokens t, LATERAL {v}(t.token) w \
              WHERE w.owner_id = t.note OR w.valid ORDER BY t.n"
        )),
        false,
    );
    add(
        "left join lateral",
        one(format!(
            "SELECT t.n, w.code FROM public.cs_tokens t LEFT JOIN LATERAL {v}(t.token) w ON w.valid ORDER BY t.n"
        )),
        false,
    );
    add(
        "cross join",
        one(format!(
            "SELECT g, w.code FROM generate_series(1, 5) g, {v}('{a}') w ORDER BY g"
        )),
        false,
    );
    add(
        "join with a table",
        one(format!(
            "SELECT t.n FROM public.cs_tokens t JOIN {v}('{a}') w ON t.token IS NOT DISTINCT FROM '{a}' AND w.valid ORDER BY t.n"
        )),
        false,
    );
    add(
        "scalar subquery argument",
        one(format!(
            "SELECT code FROM {v}((SELECT token FROM public.cs_tokens WHERE n = 1)) w"
        )),
        false,
    );
    add(
        "subquery",
        one(format!(
            "SELECT * FROM (SELECT code, valid FROM {v}('{a}') OFFSET 0) s"
        )),
        true,
    );
    add(
        "in a sub-select",
        one(format!("SELECT (SELECT w.code FROM {v}('{a}') w) AS c")),
        false,
    );
    add(
        "correlated sub-select",
        one(format!(
            "SELECT t.n, (SELECT w.code FROM {v}(t.token) w) FROM public.cs_tokens t ORDER BY t.n"
        )),
        false,
    );
    // a volatile call is not inlined from a CTE: a CTE Scan above it
    add(
        "cte",
        one(format!(
            "WITH w AS (SELECT * FROM {v}('{a}')) SELECT code, owner_id FROM w"
        )),
        false,
    );
    add(
        "materialized cte",
        one(format!(
            "WITH w AS MATERIALIZED (SELECT * FROM {v}('{a}')) SELECT a.code, b.code FROM w a, w b"
        )),
        false,
    );
    add(
        "union all",
        one(format!(
            "SELECT code FROM {v}('{a}') UNION ALL SELECT code FROM {v}('{r}')"
        )),
        false,
    );
    add(
        "exists",
        one(format!(
            "SELECT EXISTS (SELECT 1 FROM {v}('{a}') w WHERE w.valid)"
        )),
        false,
    );
    add(
        "count",
        one(format!("SELECT count(*) FROM {v}('{a}')")),
        false,
    );
    add("null token", one(format!("SELECT * FROM {v}(NULL)")), true);
    add(
        "all null",
        one(format!("SELECT * FROM {v}(NULL, NULL, NULL, NULL)")),
        true,
    );
    add(
        "malformed",
        one(format!("SELECT * FROM {v}('ak_not_a_token')")),
        true,
    );
    add("empty", one(format!("SELECT * FROM {v}('')")), true);
    add(
        "oversized",
        one(format!("SELECT * FROM {v}(repeat('x', 1000000))")),
        true,
    );
    add(
        "hostile text",
        one(format!(
            "SELECT * FROM {v}(E'ak_\\u00e9''; DROP TABLE x; --')"
        )),
        true,
    );
    add(
        "null scopes",
        one(format!("SELECT * FROM {v}('{a}', ARRAY[NULL]::text[])")),
        true,
    );
    // not taken: FunctionScan semantics only it has (or not ours)
    add(
        "rows from two functions",
        one(format!(
            "SELECT * FROM ROWS FROM ({v}('{a}'), generate_series(1, 2))"
        )),
        false,
    );
    add(
        "with ordinality",
        one(format!("SELECT * FROM {v}('{a}') WITH ORDINALITY")),
        false,
    );
    add(
        "whole row",
        one(format!("SELECT w FROM {v}('{a}') w")),
        false,
    );
    add(
        "whole row in a qual",
        one(format!(
            "SELECT w.code FROM {v}('{a}') w WHERE w IS NOT NULL"
        )),
        false,
    );
    add(
        "row_to_json",
        one(format!("SELECT row_to_json(w)::text FROM {v}('{a}') w")),
        false,
    );
    add(
        "definer copy with set",
        one(format!("SELECT * FROM public.cs_definer_set('{a}')")),
        false,
    );
    add(
        "definer copy",
        one(format!("SELECT * FROM public.cs_definer('{a}')")),
        false,
    );
    // the rest: no EXPLAIN (utility statements, PL/pgSQL)
    add(
        "prepared",
        (
            None,
            format!(
                "PREPARE cs_p(text) AS SELECT * FROM {v}($1, '{{read}}'); \
                 EXECUTE cs_p('{a}'); EXECUTE cs_p('{r}'); EXECUTE cs_p(NULL); EXECUTE cs_p('{a}'); \
                 EXECUTE cs_p('{a}'); EXECUTE cs_p('{a}'); EXECUTE cs_p('{a}'); EXECUTE cs_p('x'); \
                 DEALLOCATE cs_p"
            ),
        ),
        true,
    );
    add(
        "plpgsql for loop",
        (
            None,
            format!(
                "SELECT public.cs_loop('{a}'); SELECT public.cs_loop('{r}'); SELECT public.cs_loop(NULL); \
                 SELECT public.cs_loop('{a}')"
            ),
        ),
        true,
    );
    add(
        "scroll cursor",
        (
            None,
            format!(
                "BEGIN; DECLARE cs_c SCROLL CURSOR FOR SELECT code, owner_id FROM {v}('{a}'); \
                 FETCH ALL cs_c; FETCH BACKWARD ALL cs_c; FETCH FIRST cs_c; FETCH ABSOLUTE 2 cs_c; \
                 FETCH PRIOR cs_c; FETCH NEXT cs_c; COMMIT"
            ),
        ),
        true,
    );
    // a cursor without SCROLL may fetch backward over a Function Scan
    add(
        "cursor backward",
        (
            None,
            format!(
                "BEGIN; DECLARE cs_c CURSOR FOR SELECT code, owner_id FROM {v}('{a}') w WHERE w.valid; \
                 FETCH 1 cs_c; FETCH BACKWARD 1 cs_c; FETCH NEXT cs_c; FETCH NEXT cs_c; FETCH PRIOR cs_c; \
                 FETCH PRIOR cs_c; FETCH ALL cs_c; FETCH BACKWARD ALL cs_c; COMMIT"
            ),
        ),
        true,
    );
    add(
        "cursor backward, filtered",
        (
            None,
            format!(
                "BEGIN; DECLARE cs_c CURSOR FOR SELECT code FROM {v}('{a}') w WHERE NOT w.valid; \
                 FETCH 1 cs_c; FETCH BACKWARD 1 cs_c; FETCH ALL cs_c; FETCH BACKWARD ALL cs_c; COMMIT"
            ),
        ),
        true,
    );
    add(
        "scroll cursor lateral",
        (
            None,
            format!(
                "BEGIN; DECLARE cs_c SCROLL CURSOR FOR SELECT t.n, w.code FROM public.cs_tokens t, \
                 LATERAL {v}(t.token) w ORDER BY t.n; FETCH 3 cs_c; FETCH BACKWARD 2 cs_c; \
                 FETCH LAST cs_c; FETCH BACKWARD ALL cs_c; COMMIT"
            ),
        ),
        true,
    );
    // errors: the same SQLSTATE either way
    add("wrong type", one(format!("SELECT * FROM {v}(42)")), true);
    add(
        "wrong array",
        one(format!("SELECT * FROM {v}('{a}', 'notarray')")),
        true,
    );
    add(
        "too many arguments",
        one(format!(
            "SELECT * FROM {v}('{a}', '{{}}', NULL, NULL, NULL)"
        )),
        true,
    );
    out
}

fn forms_answer_the_same(config: &Config) {
    let mut su = config.connect(NoTls).unwrap();
    let keys = setup(&mut su);
    let forms = forms(&keys);
    let mut on = session(config, true);
    let mut off = session(config, false);
    // no usage left pending when the database is dropped: its discarded
    // counts would move the cluster-wide counters other tests compare
    for c in [&mut on, &mut off] {
        c.batch_execute("SET api_keys.track_usage = off").unwrap();
    }
    for (name, explain, sql, custom) in &forms {
        let got_on = rows(&mut on, sql);
        let got_off = rows(&mut off, sql);
        assert_eq!(
            got_on, got_off,
            "{name}: the same rows with the scan on and off"
        );
        if let Some(stmt) = explain {
            if got_off.is_err() {
                continue; // fails at parse time: there is no plan
            }
            let (p_on, p_off) = (plan(&mut on, stmt), plan(&mut off, stmt));
            assert!(
                !p_off.contains(CUSTOM),
                "{name}: off plans no custom scan:\n{p_off}"
            );
            if *custom {
                assert!(
                    p_on.contains(CUSTOM),
                    "{name}: on plans the custom scan:\n{p_on}"
                );
                assert!(
                    !p_on.contains(FSCAN),
                    "{name}: no Function Scan of verify left:\n{p_on}"
                );
                assert!(
                    p_off.contains(FSCAN),
                    "{name}: off plans a Function Scan:\n{p_off}"
                );
            } else {
                assert!(
                    !p_on.contains(CUSTOM),
                    "{name}: falls back to the Function Scan:\n{p_on}"
                );
            }
        }
    }
    // the answers are what verify answers, not only the same twice
    let plain = rows(&mut on, &forms[0].2).unwrap();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0][0].as_deref(), Some("t"));
    assert_eq!(plain[0][1].as_deref(), Some("valid"));
    assert_eq!(plain[0][4].as_deref(), Some("alice"));
    let lateral: Vec<Option<String>> = rows(
        &mut on,
        "SELECT w.code FROM public.cs_tokens t, LATERAL api_keys.api_key_verify(t.token) w ORDER BY t.n",
    )
    .unwrap()
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    let codes = [
        "valid",
        "malformed",
        "malformed",
        "revoked",
        "valid",
        "malformed",
    ];
    assert_eq!(lateral, codes.map(|c| Some(c.to_owned())).to_vec());
    let backward = rows(
        &mut on,
        &forms.iter().find(|f| f.0 == "cursor backward").unwrap().2,
    )
    .unwrap();
    assert_eq!(backward.len(), 5, "1, 0, 1, 0, 1, 0, 1, 1: {backward:?}");
    let cursor = rows(
        &mut on,
        &forms.iter().find(|f| f.0 == "scroll cursor").unwrap().2,
    )
    .unwrap();
    assert_eq!(
        cursor.len(),
        4,
        "FETCH ALL 1, BACKWARD ALL 1, FIRST 1, ABSOLUTE 2 0, PRIOR 1, NEXT 0: {cursor:?}"
    );

    // UPDATE … FROM: a row mark keeps the Function Scan, same effect
    for c in [&mut on, &mut off] {
        let stmt = format!(
            "UPDATE public.cs_tokens t SET note = w.code FROM api_keys.api_key_verify('{}') w WHERE t.n <= 2",
            keys.alice.token
        );
        assert!(plan(c, &stmt).contains(FSCAN), "UPDATE … FROM");
        c.batch_execute(&stmt).unwrap();
        let notes = rows(
            c,
            "SELECT note FROM public.cs_tokens WHERE n <= 2 ORDER BY n",
        )
        .unwrap();
        assert_eq!(notes, vec![vec![Some("valid".to_owned())]; 2]);
        c.batch_execute("UPDATE public.cs_tokens SET note = NULL")
            .unwrap();
    }
}

/// As often as the FunctionScan: once per scan, again on a changed LATERAL
/// argument, never for a rescan whose other parameters changed; and the
/// usage of valid keys recorded as often.
fn calls_are_the_same(config: &Config) {
    let mut su = config.connect(NoTls).unwrap();
    let keys = setup(&mut su);
    let a = &keys.alice.token;
    let preloaded = stats(&mut su).preloaded;
    let cases: Vec<(&str, String, i64)> = vec![
        ("plain", format!("SELECT * FROM api_keys.api_key_verify('{a}')"), 1),
        (
            "cross join, verify outer",
            format!("SELECT g, w.code FROM generate_series(1, 5) g, api_keys.api_key_verify('{a}') w"),
            1,
        ),
        // verify as the inner side of a nested loop without a Material:
        // rescanned five times with nothing changed
        (
            "rescanned inner",
            format!(
                "SET LOCAL enable_material = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
                 SELECT g, w.code FROM generate_series(1, 5) g LEFT JOIN api_keys.api_key_verify('{a}') w ON g > 0"
            ),
            1,
        ),
        (
            "rescanned with a changed qual parameter",
            format!(
                "SELECT g, s.code FROM generate_series(1, 3) g, \
                 LATERAL (SELECT w.code FROM api_keys.api_key_verify('{a}') w WHERE w.owner_id <> g::text OFFSET 0) s"
            ),
            1,
        ),
        (
            "lateral argument",
            "SELECT t.n, w.code FROM public.cs_tokens t, LATERAL api_keys.api_key_verify(t.token) w".to_owned(),
            6,
        ),
        (
            "lateral argument, same value",
            format!(
                "SELECT g, w.code FROM generate_series(1, 3) g, \
                 LATERAL api_keys.api_key_verify(CASE WHEN g > 0 THEN '{a}' END) w"
            ),
            3,
        ),
        (
            "plpgsql",
            format!("SELECT public.cs_loop('{a}'); SELECT public.cs_loop('{a}')"),
            2,
        ),
        (
            "scroll cursor",
            format!(
                "DECLARE cs_c SCROLL CURSOR FOR SELECT code FROM api_keys.api_key_verify('{a}'); \
                 FETCH ALL cs_c; FETCH BACKWARD ALL cs_c; FETCH FIRST cs_c; CLOSE cs_c"
            ),
            1,
        ),
        ("where false", format!("SELECT code FROM api_keys.api_key_verify('{a}') w WHERE NOT w.valid"), 1),
    ];
    let mut alice_count = 0;
    for on in [true, false] {
        let mut c = session(config, on);
        for (name, sql, want) in &cases {
            su.batch_execute("UPDATE api_keys.keys SET last_used_at = NULL")
                .unwrap();
            let (calls, _) = counted(&mut c, sql);
            assert_eq!(
                calls, *want,
                "{name} (scan on: {on}): calls of api_key_verify"
            );
            // alice's valid verifications (the lateral table has her twice)
            let valid_calls = match *name {
                "lateral argument" => 2,
                _ => *want,
            };
            if preloaded {
                // her requests_count, flushed from shared memory: exact, and
                // untouched by other tests' verifications
                alice_count += valid_calls;
                flush_and_wait(&mut su, keys.alice.id, alice_count);
            } else {
                let written: bool = su
                    .query_one(
                        "SELECT last_used_at IS NOT NULL FROM api_keys.keys WHERE id = $1",
                        &[&keys.alice.id],
                    )
                    .unwrap()
                    .get(0);
                assert!(written, "{name} (scan on: {on}): last_used_at written");
            }
        }
        // the statements that are only the call ran the custom scan
        if on {
            let p = plan(&mut c, &cases[0].1);
            assert!(p.contains(CUSTOM), "plain:\n{p}");
        }
    }
}

/// Privileges: the scan checks EXECUTE as the FunctionScan does, so a role
/// without it is refused, with the scan on and off, before verify runs; a role with EXECUTE (verifier, or PUBLIC granted) gets the answers
/// a superuser gets, under a search_path that shadows what it could touch.
fn privileges_are_the_same(config: &Config) {
    let mut su = config.connect(NoTls).unwrap();
    let keys = setup(&mut su);
    let db = config.get_dbname().unwrap().to_owned();
    let names = [
        random_ident("cs_"),
        random_ident("cs_"),
        random_ident("cs_"),
    ];
    let [nobody, verifier, public] = &names;
    su.batch_execute(&format!(
        "CREATE ROLE {nobody} LOGIN; CREATE ROLE {verifier} LOGIN IN ROLE api_keys_verifier;
         CREATE ROLE {public} LOGIN;
         GRANT CONNECT ON DATABASE {db} TO {nobody}, {verifier}, {public};
         GRANT USAGE ON SCHEMA api_keys TO {nobody};
         CREATE SCHEMA evil; GRANT USAGE ON SCHEMA evil TO PUBLIC;
         CREATE TABLE evil.trap_log (what text); GRANT ALL ON evil.trap_log TO PUBLIC;
         CREATE FUNCTION evil.trap(what text) RETURNS boolean LANGUAGE sql AS
             $$ INSERT INTO evil.trap_log VALUES (what) RETURNING true $$;
         CREATE FUNCTION public.cs_load() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
             SET search_path = pg_catalog, pg_temp AS
             $$ BEGIN PERFORM api_keys.api_key_verify(NULL); END $$;"
    ))
    .unwrap();
    // look-alikes of what the query and verify's result could touch
    for schema in ["evil", "public"] {
        su.batch_execute(&format!(
            "CREATE FUNCTION {schema}.api_key_verify(token text, required_scopes text[] DEFAULT '{{}}',
                                                     environment text DEFAULT NULL, otp text DEFAULT NULL)
                 RETURNS TABLE (valid boolean, code text) LANGUAGE sql AS
                 $$ SELECT evil.trap('{schema}.api_key_verify'), 'shadowed' $$;
             CREATE FUNCTION {schema}.texteq(text, text) RETURNS boolean LANGUAGE sql AS
                 $$ SELECT evil.trap('{schema}.texteq') $$;
             CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {schema}.texteq);
             CREATE FUNCTION {schema}.boolne(boolean, boolean) RETURNS boolean LANGUAGE sql AS
                 $$ SELECT evil.trap('{schema}.boolne') $$;
             CREATE OPERATOR {schema}.<> (LEFTARG = boolean, RIGHTARG = boolean, FUNCTION = {schema}.boolne);
             CREATE FUNCTION {schema}.sha256(bytea) RETURNS bytea LANGUAGE sql AS
                 $$ SELECT evil.trap('{schema}.sha256')::text::bytea $$;
             CREATE FUNCTION {schema}.now() RETURNS timestamptz LANGUAGE sql AS
                 $$ SELECT evil.trap('{schema}.now')::text::timestamptz $$;
             CREATE TABLE {schema}.keys (id uuid, token_hash bytea);
             CREATE VIEW {schema}.verification AS SELECT evil.trap('{schema}.verification') AS valid;
             GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO PUBLIC;"
        ))
        .unwrap();
    }
    let a = &keys.alice.token;
    let query = format!(
        "SELECT valid, code, key_id, owner_id, scopes FROM api_keys.api_key_verify('{a}'::pg_catalog.text, \
         '{{read}}'::pg_catalog.text[]) w"
    );
    let lateral = "SELECT t.n, w.code FROM public.cs_tokens t, \
                   LATERAL api_keys.api_key_verify(t.token) w ORDER BY t.n";
    let connect = |role: &str, on: bool| {
        let mut c = config.clone();
        c.user(role);
        let mut c = c.connect(NoTls).unwrap();
        c.batch_execute(&format!(
            "SET api_keys.verify_custom_scan = {}; SET search_path = evil, pg_catalog",
            if on { "on" } else { "off" }
        ))
        .unwrap();
        c
    };
    // the library is loaded in every backend that plans below: preloaded,
    // or loaded by a superuser's call first (LOAD is what a non-preloaded
    // session gets after its first verify)
    let expected = {
        let mut c = session(config, true);
        c.batch_execute("SET api_keys.track_usage = off").unwrap();
        (
            rows(&mut c, &query).unwrap(),
            rows(&mut c, lateral).unwrap(),
        )
    };
    assert_eq!(expected.0.len(), 1, "{:?}", expected.0);

    for on in [true, false] {
        // no EXECUTE: refused when the plan is initialised, before verify
        // runs; public.cs_load (a superuser's SECURITY DEFINER function)
        // loads the library in this backend, so the custom scan is planned
        let mut c = connect(nobody, on);
        rows(&mut c, "SELECT public.cs_load()").unwrap();
        // (EXPLAIN initialises the plan, and is refused as FunctionScan's is)
        let explained = rows(&mut c, &format!("EXPLAIN {query}"));
        assert_eq!(
            explained,
            Err("42501".to_owned()),
            "{nobody} EXPLAIN (scan on: {on})"
        );
        for sql in [&query, lateral] {
            assert_eq!(
                rows(&mut c, sql),
                Err("42501".to_owned()),
                "{nobody} without EXECUTE (scan on: {on}): {sql}"
            );
        }
        // a verifier, and a role in no extension role once PUBLIC may execute
        for role in [verifier, public] {
            if role == public {
                su.batch_execute(
                    "GRANT USAGE ON SCHEMA api_keys TO PUBLIC;
                     GRANT EXECUTE ON FUNCTION api_keys.api_key_verify(text, text[], text, text) TO PUBLIC",
                )
                .unwrap();
            }
            let mut c = connect(role, on);
            // the first call loads the library in this backend (not
            // preloaded): the statements after it are planned with the hook
            rows(&mut c, "SELECT api_keys.api_key_verify(NULL)").unwrap();
            assert_eq!(
                rows(&mut c, &query),
                Ok(expected.0.clone()),
                "{role} (scan on: {on})"
            );
            assert_eq!(
                rows(&mut c, lateral),
                Ok(expected.1.clone()),
                "{role} (scan on: {on}): lateral"
            );
            let p = plan(&mut c, &query);
            assert_eq!(p.contains(CUSTOM), on, "{role} (scan on: {on}):\n{p}");
            assert_eq!(p.contains(FSCAN), !on, "{role} (scan on: {on}):\n{p}");
            if role == public {
                su.batch_execute(
                    "REVOKE EXECUTE ON FUNCTION api_keys.api_key_verify(text, text[], text, text) FROM PUBLIC;
                     REVOKE USAGE ON SCHEMA api_keys FROM PUBLIC",
                )
                .unwrap();
            }
        }
    }
    let traps = rows(&mut su, "SELECT what FROM evil.trap_log").unwrap();
    assert!(traps.is_empty(), "look-alikes ran: {traps:?}");
    for n in &names {
        su.batch_execute(&format!("DROP OWNED BY {n}; DROP ROLE {n}"))
            .unwrap();
    }
}

#[test]
fn preloaded_forms_answer_the_same_with_the_scan_on_and_off() {
    let db = TestDb::new();
    forms_answer_the_same(&db.libpq_dsn().parse().unwrap());
}

#[test]
fn preloaded_the_scan_calls_verify_as_often_as_a_function_scan() {
    let db = TestDb::new();
    calls_are_the_same(&db.libpq_dsn().parse().unwrap());
}

#[test]
fn preloaded_privileges_and_a_hostile_search_path_are_the_same() {
    let db = TestDb::new();
    privileges_are_the_same(&db.libpq_dsn().parse().unwrap());
}

#[test]
fn not_preloaded_forms_calls_and_privileges_are_the_same() {
    let serial = serial();
    let cluster = Cluster::start(&serial, Options::not_preloaded());
    let mut su = cluster.connect(APP_DB);
    assert!(
        !stats(&mut su).preloaded,
        "a cluster without the library preloaded"
    );
    for (name, f) in [
        ("forms", forms_answer_the_same as fn(&Config)),
        ("calls", calls_are_the_same),
        ("privileges", privileges_are_the_same),
    ] {
        let db = format!("cs_{name}");
        cluster.create_database(&db);
        f(&cluster.config(&db));
    }
}
