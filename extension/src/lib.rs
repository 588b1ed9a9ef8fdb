//! `api_keys`: the SQL binding of `api-keys-core`. Rules live in core; this
//! crate declares GUCs, the verify hot path and thin helpers that the
//! hand-written SQL in `sql/` calls.

use pgrx::prelude::*;

mod auth;
mod dashboard;
mod grouped;
mod guc;
mod legacy;
mod lifecycle;
mod lookup;
mod mfa;
mod raise;
mod rules;
mod scan;
mod text;
mod tokens;
mod unguarded;
mod usage;
mod verify;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../../sql/functions.sql", name = "functions", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::define();
    usage::init();
    mfa::init();
    scan::init();
}
