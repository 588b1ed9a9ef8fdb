//! Every function granted to the extension's roles, called with hostile
//! arguments: all NULL, then 100 KB strings in every text argument. Each call
//! must either answer or fail with a stable `api_keys:` reason and one of the
//! contract's SQLSTATEs — never an internal error, never a lost connection.
//! The list comes from pg_proc, so functions added later are covered too.

use api_keys_tests::*;
use postgres::Client;

/// (signature for display, argument types) of every function some role of
/// the extension may execute.
fn granted_functions(c: &mut Client) -> Vec<(String, Vec<String>)> {
    c.query(
        "SELECT p.oid::regprocedure::text,
                coalesce(array_agg(format_type(t.typ, NULL) ORDER BY t.ord)
                         FILTER (WHERE t.typ IS NOT NULL), '{}')
           FROM pg_proc p
           LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(typ, ord) ON true
          WHERE p.pronamespace = 'api_keys'::regnamespace
            AND (has_function_privilege('api_keys_admin', p.oid, 'EXECUTE')
                 OR has_function_privilege('api_keys_verifier', p.oid, 'EXECUTE'))
          GROUP BY p.oid
          ORDER BY 1",
        &[],
    )
    .expect("list functions")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn name_of(signature: &str) -> &str {
    signature.split('(').next().unwrap_or(signature)
}

/// Calls `signature` with `args` (SQL literals); Ok, or the error if it is
/// one of the contract's. Panics on anything else.
fn call_survives(c: &mut Client, signature: &str, args: &[String]) {
    let sql = format!("SELECT {}({})", name_of(signature), args.join(", "));
    let shown = if sql.len() > 200 {
        format!("{}…", &sql[..200])
    } else {
        sql.clone()
    };
    match c.batch_execute(&format!("BEGIN; {sql}; ROLLBACK;")) {
        Ok(()) => {}
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("{shown}: not a server error (connection lost?): {e}"));
            let code = db.code().code();
            assert!(
                ["22023", "23514", "42501", "P0002", "PT401", "PT403"].contains(&code),
                "{shown}: unexpected SQLSTATE {code}: {}",
                db.message()
            );
            assert!(
                db.message().starts_with("api_keys: "),
                "{shown}: message without a stable reason: {}",
                db.message()
            );
            c.batch_execute("ROLLBACK").expect("rollback");
        }
    }
}

#[test]
fn every_granted_function_survives_all_null_arguments() {
    let db = TestDb::new();
    let mut c = db.connect();
    let functions = granted_functions(&mut c);
    assert!(
        functions.len() >= 25,
        "found only {} functions",
        functions.len()
    );
    for (signature, types) in &functions {
        let args: Vec<String> = types.iter().map(|t| format!("NULL::{t}")).collect();
        call_survives(&mut c, signature, &args);
    }
    // the session is still usable afterwards
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
}

#[test]
fn every_granted_function_survives_oversized_text_arguments() {
    let db = TestDb::new();
    let mut c = db.connect();
    let big = format!("'{}'", "x".repeat(100_000));
    let big_array = format!("ARRAY[{big}]");
    for (signature, types) in &granted_functions(&mut c) {
        if !types.iter().any(|t| t == "text" || t == "text[]") {
            continue;
        }
        let args: Vec<String> = types
            .iter()
            .map(|t| match t.as_str() {
                "text" => big.clone(),
                "text[]" => big_array.clone(),
                other => format!("NULL::{other}"),
            })
            .collect();
        call_survives(&mut c, signature, &args);
    }
}

#[test]
fn every_granted_function_survives_injection_shaped_text() {
    let db = TestDb::new();
    let mut c = db.connect();
    let hostile = "'x''); DROP TABLE api_keys.keys; --'";
    for (signature, types) in &granted_functions(&mut c) {
        let args: Vec<String> = types
            .iter()
            .map(|t| match t.as_str() {
                "text" => hostile.to_owned(),
                "text[]" => format!("ARRAY[{hostile}]"),
                other => format!("NULL::{other}"),
            })
            .collect();
        call_survives(&mut c, signature, &args);
    }
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'api_keys' AND tablename = 'keys'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "the keys table is still there");
}
