//! `api_key_verify`: the hot path.
//!
//! Written as a raw V1 function (its CREATE FUNCTION is in sql/functions.sql)
//! so that it can return the `api_keys.verification` row built straight from
//! the looked-up datums, without converting each column to Rust and back.
//! Never raises for any token text: bad input earns a code.

use std::cell::RefCell;
use std::ptr;

use api_keys_core::token;
use api_keys_core::verify::{decide, Isolation, StoredKey};
use api_keys_core::VerifyCode;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, Array, FromDatum, IntoDatum, PgMemoryContexts};

use crate::guc;

const VERIFICATION_COLUMNS: usize = 11;
/// Identity columns of the lookup, in `verification` order after valid/code.
const IDENTITY_COLUMNS: usize = 9;

const LOOKUP: &str = "SELECT k.id, k.owner_type, k.owner_id, k.name, k.key_type, k.environment, \
     k.scopes, k.metadata, k.expires_at, \
     k.revoked_at IS NOT NULL, k.expires_at IS NOT NULL AND k.expires_at <= now(), \
     t.permissions \
     FROM api_keys.keys k LEFT JOIN api_keys.key_types t ON t.name = k.key_type \
     WHERE k.token_hash = $1";

thread_local! {
    // A saved plan survives across calls; Postgres re-plans it by its text
    // when the tables change, so a dropped and re-created extension is fine.
    static LOOKUP_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
}

#[no_mangle]
pub extern "C" fn pg_finfo_api_key_verify_c() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// # Safety
/// Called by the Postgres executor with a valid `fcinfo` for
/// `api_key_verify(text, text[], text)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_key_verify_c(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let tupdesc = result_tupdesc(fcinfo);
    let token_arg = pgrx::fcinfo::pg_getarg_datum(fcinfo, 0);
    let text = match token_arg.and_then(|d| token_text(d)) {
        Some(t) => t,
        None => return row(tupdesc, VerifyCode::Malformed, None),
    };
    let parsed = match token::parse(text) {
        Some(p) => p,
        None => return row(tupdesc, VerifyCode::Malformed, None),
    };
    let required_arr =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 1).and_then(|d| Array::<&str>::from_datum(d, false));
    let required: Vec<Option<&str>> = required_arr
        .as_ref()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let env_arg: Option<&str> = pgrx::fcinfo::pg_getarg_datum(fcinfo, 2)
        .and_then(|d| <&str as FromDatum>::from_datum(d, false));
    let isolation = Isolation {
        strict: guc::strict_isolation(),
        current: env_arg.or_else(guc::current_environment),
    };
    let hash = parsed.hash();
    let outer = PgMemoryContexts::CurrentMemoryContext.value();

    Spi::connect(|client| {
        LOOKUP_PLAN.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let stmt = client
                    .prepare(LOOKUP, &[pg_sys::BYTEAOID.into()])
                    .unwrap_or_else(|e| error!("api_keys: preparing verify lookup: {e}"));
                *slot = Some(stmt.keep());
            }
            let plan = slot.as_ref().expect("prepared above");
            let args = [DatumWithOid::from(&hash.as_bytes()[..])];
            let table = client
                .select(plan, Some(1), &args)
                .unwrap_or_else(|e| error!("api_keys: verify lookup: {e}"));
            if table.is_empty() {
                return PgMemoryContexts::For(outer)
                    .switch_to(|_| row(tupdesc, VerifyCode::NotFound, None));
            }
            let table = table.first();
            let get = |n: usize| table.get_datum_by_ordinal(n).ok().flatten();
            let revoked = get(10)
                .and_then(|d| bool::from_datum(d, false))
                .unwrap_or(false);
            let expired = get(11)
                .and_then(|d| bool::from_datum(d, false))
                .unwrap_or(false);
            let environment = get(6).and_then(|d| <&str as FromDatum>::from_datum(d, false));
            let scopes_arr = get(7).and_then(|d| Array::<&str>::from_datum(d, false));
            let scopes: Vec<&str> = scopes_arr
                .as_ref()
                .map(|a| a.iter().flatten().collect())
                .unwrap_or_default();
            let ceiling_arr = get(12).and_then(|d| Array::<&str>::from_datum(d, false));
            let ceiling: Option<Vec<&str>> =
                ceiling_arr.as_ref().map(|a| a.iter().flatten().collect());
            let key = StoredKey {
                revoked,
                expired,
                environment,
                scopes: &scopes,
                ceiling: ceiling.as_deref(),
            };
            let code = decide(&key, isolation, &required);
            let identity: Option<[Option<pg_sys::Datum>; IDENTITY_COLUMNS]> =
                if code.reveals_identity() {
                    Some(std::array::from_fn(|i| get(i + 1)))
                } else {
                    None
                };
            PgMemoryContexts::For(outer).switch_to(|_| row(tupdesc, code, identity))
        })
    })
}

/// The token argument as text, or `None` when it cannot be a token: longer
/// than any token (checked before detoasting, so 1 MB costs nothing) or not
/// valid UTF-8.
unsafe fn token_text<'a>(datum: pg_sys::Datum) -> Option<&'a str> {
    let raw_size = pg_sys::toast_raw_datum_size(datum);
    if raw_size > pg_sys::VARHDRSZ + token::MAX_TOKEN_LEN {
        return None;
    }
    let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    let len = pgrx::varlena::varsize_any_exhdr(v);
    let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len);
    std::str::from_utf8(bytes).ok()
}

/// The `verification` row type, blessed once per call site (fn_extra).
unsafe fn result_tupdesc(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::TupleDesc {
    let flinfo = (*fcinfo).flinfo;
    if (*flinfo).fn_extra.is_null() {
        let old = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
        let mut td: pg_sys::TupleDesc = ptr::null_mut();
        let class = pg_sys::get_call_result_type(fcinfo, ptr::null_mut(), &mut td);
        if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || td.is_null() {
            pg_sys::MemoryContextSwitchTo(old);
            error!("api_keys: api_key_verify must return api_keys.verification");
        }
        let td = pg_sys::BlessTupleDesc(pg_sys::CreateTupleDescCopy(td));
        (*flinfo).fn_extra = td.cast();
        pg_sys::MemoryContextSwitchTo(old);
    }
    (*flinfo).fn_extra.cast()
}

/// Forms a `verification` row in the current memory context.
unsafe fn row(
    tupdesc: pg_sys::TupleDesc,
    code: VerifyCode,
    identity: Option<[Option<pg_sys::Datum>; IDENTITY_COLUMNS]>,
) -> pg_sys::Datum {
    let mut values = [pg_sys::Datum::null(); VERIFICATION_COLUMNS];
    let mut nulls = [true; VERIFICATION_COLUMNS];
    values[0] = code.is_valid().into_datum().expect("bool datum");
    nulls[0] = false;
    values[1] = code.as_str().into_datum().expect("text datum");
    nulls[1] = false;
    if let Some(identity) = identity {
        for (i, d) in identity.into_iter().enumerate() {
            if let Some(d) = d {
                values[2 + i] = d;
                nulls[2 + i] = false;
            }
        }
    }
    let tuple = pg_sys::heap_form_tuple(tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
    pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
}
