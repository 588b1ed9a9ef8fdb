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
use pgrx::spi::{OwnedPreparedStatement, SpiTupleTable};
use pgrx::{pg_sys, Array, FromDatum, IntoDatum, PgMemoryContexts};

use crate::guc;

const VERIFICATION_COLUMNS: usize = 11;
/// Identity columns of the lookup, in `verification` order after valid/code.
const IDENTITY_COLUMNS: usize = 9;

const LOOKUP: &str = "SELECT k.id, k.owner_type, k.owner_id, k.name, k.key_type, k.environment, \
     k.scopes, k.metadata, k.expires_at, \
     k.revoked_at IS NOT NULL, k.expires_at IS NOT NULL AND k.expires_at <= now(), \
     t.permissions, k.last_used_at \
     FROM api_keys.keys k LEFT JOIN api_keys.key_types t ON t.name = k.key_type \
     WHERE k.token_hash = $1";

thread_local! {
    // A saved plan survives across calls; Postgres re-plans it by its text
    // when the tables change, so a dropped and re-created extension is fine.
    static LOOKUP_PLAN: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
}

/// Columns of [`LOOKUP`], 1-based.
pub mod col {
    pub const ID: usize = 1;
    pub const OWNER_TYPE: usize = 2;
    pub const OWNER_ID: usize = 3;
    pub const ENVIRONMENT: usize = 6;
    pub const SCOPES: usize = 7;
    pub const REVOKED: usize = 10;
    pub const EXPIRED: usize = 11;
    pub const CEILING: usize = 12;
    pub const LAST_USED_AT: usize = 13;
}

/// A found key, as the lookup row holds it.
pub struct Found<'t, 'conn> {
    pub row: &'t SpiTupleTable<'conn>,
}

impl Found<'_, '_> {
    pub fn datum(&self, n: usize) -> Option<pg_sys::Datum> {
        self.row.get_datum_by_ordinal(n).ok().flatten()
    }

    pub fn text(&self, n: usize) -> Option<&str> {
        // SAFETY: the lookup's column n is text; the datum lives as long as the SPI row
        unsafe {
            self.datum(n)
                .and_then(|d| <&str as FromDatum>::from_datum(d, false))
        }
    }

    fn flag(&self, n: usize) -> bool {
        // SAFETY: the lookup's column n is boolean
        unsafe {
            self.datum(n)
                .and_then(|d| bool::from_datum(d, false))
                .unwrap_or(false)
        }
    }

    pub fn text_array(&self, n: usize) -> Option<Array<'_, &str>> {
        // SAFETY: the lookup's column n is text[]
        unsafe {
            self.datum(n)
                .and_then(|d| Array::<&str>::from_datum(d, false))
        }
    }
}

/// Verifies `text` and hands the code, and the key's row when one was found,
/// to `then`, which runs inside the SPI connection (for datums that must
/// outlive it, switch to the caller's memory context).
pub fn verify_with<R>(
    text: Option<&str>,
    required: &[Option<&str>],
    current_environment: Option<&str>,
    then: impl FnOnce(VerifyCode, Option<&Found>) -> R,
) -> R {
    let parsed = match text.and_then(token::parse) {
        Some(p) => p,
        None => return then(VerifyCode::Malformed, None),
    };
    let isolation = Isolation {
        strict: guc::strict_isolation(),
        current: current_environment.or_else(guc::current_environment),
    };
    let hash = parsed.hash();
    Spi::connect_mut(|client| {
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
                return then(VerifyCode::NotFound, None);
            }
            let table = table.first();
            let found = Found { row: &table };
            let scopes_arr = found.text_array(col::SCOPES);
            let scopes: Vec<&str> = scopes_arr
                .as_ref()
                .map(|a| a.iter().flatten().collect())
                .unwrap_or_default();
            let ceiling_arr = found.text_array(col::CEILING);
            let ceiling: Option<Vec<&str>> =
                ceiling_arr.as_ref().map(|a| a.iter().flatten().collect());
            let key = StoredKey {
                revoked: found.flag(col::REVOKED),
                expired: found.flag(col::EXPIRED),
                environment: found.text(col::ENVIRONMENT),
                scopes: &scopes,
                ceiling: ceiling.as_deref(),
            };
            let code = decide(&key, isolation, required);
            if code.is_valid() {
                if let Some(id) = found.datum(col::ID) {
                    // SAFETY: LAST_USED_AT is a timestamptz (int8 by value), ID a uuid
                    unsafe {
                        let last_used = found.datum(col::LAST_USED_AT).map(|d| d.value() as i64);
                        crate::usage::track(client, id, last_used);
                    }
                }
            }
            then(code, Some(&found))
        })
    })
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
    let text = pgrx::fcinfo::pg_getarg_datum(fcinfo, 0).and_then(|d| token_text(d));
    let required_arr =
        pgrx::fcinfo::pg_getarg_datum(fcinfo, 1).and_then(|d| Array::<&str>::from_datum(d, false));
    let required: Vec<Option<&str>> = required_arr
        .as_ref()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let env_arg: Option<&str> = pgrx::fcinfo::pg_getarg_datum(fcinfo, 2)
        .and_then(|d| <&str as FromDatum>::from_datum(d, false));
    let outer = PgMemoryContexts::CurrentMemoryContext.value();
    verify_with(text, &required, env_arg, |code, found| {
        let identity: Option<[Option<pg_sys::Datum>; IDENTITY_COLUMNS]> = match found {
            Some(f) if code.reveals_identity() => Some(std::array::from_fn(|i| f.datum(i + 1))),
            _ => None,
        };
        PgMemoryContexts::For(outer).switch_to(|_| row(tupdesc, code, identity))
    })
}

/// The token argument as text, or `None` when it cannot be a token: longer
/// than any token (checked before detoasting, so 1 MB costs nothing) or not
/// valid UTF-8.
pub unsafe fn token_text<'a>(datum: pg_sys::Datum) -> Option<&'a str> {
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
