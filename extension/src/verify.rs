//! `api_key_verify`: the hot path.
//!
//! Written as a raw V1 function (its CREATE FUNCTION is in sql/functions.sql)
//! so that it can return the `api_keys.verification` row built straight from
//! the stored datums, without converting each column to Rust and back.
//! Never raises for any token text: bad input earns a code.

use std::ptr;

use api_keys_core::token;
use api_keys_core::verify::{decide, is_expired, Isolation, StoredKey};
use api_keys_core::VerifyCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, IntoDatum};

use crate::guc;
use crate::lookup::{find_key, Col, Found};
use crate::text::{text_arg, text_array_arg};

const VERIFICATION_COLUMNS: usize = 11;
const IDENTITY_COLUMNS: usize = 9;

/// The `verification` identity columns, in order after valid and code.
const IDENTITY: [Col; IDENTITY_COLUMNS] = [
    Col::Id,
    Col::OwnerType,
    Col::OwnerId,
    Col::Name,
    Col::KeyType,
    Col::Environment,
    Col::Scopes,
    Col::Metadata,
    Col::ExpiresAt,
];

/// Verifies `text` and hands the code, and the key when one was found, to
/// `then` (the key's datums are valid only inside it). Records usage of a
/// valid key.
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
    find_key(parsed.hash().as_bytes(), |found| {
        let Some(f) = found else {
            return then(VerifyCode::NotFound, None);
        };
        // SAFETY: reads the transaction's start time, which is now()
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
        let code = f.with_scopes(|scopes, ceiling| {
            let key = StoredKey {
                revoked: f.datum(Col::RevokedAt).is_some(),
                expired: is_expired(f.timestamp(Col::ExpiresAt), now),
                environment: f.text(Col::Environment),
                scopes,
                ceiling,
            };
            decide(&key, isolation, required)
        });
        if code.is_valid() {
            if let Some(id) = f.datum(Col::Id) {
                // SAFETY: Id is a uuid datum
                unsafe { crate::usage::track(id, f.timestamp(Col::LastUsedAt)) };
            }
        }
        then(code, Some(f))
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
    // SAFETY: the SQL declaration is (text, text[], text)
    let required = text_array_arg(fcinfo, 1).unwrap_or_default();
    // Unreadable text names no environment: NUL can never be in a stored name.
    let env_arg: Option<&str> = text_arg(fcinfo, 2).map(|r| r.unwrap_or(UNREADABLE));
    verify_with(text, &required, env_arg, |code, found| {
        let identity: Option<[Option<pg_sys::Datum>; IDENTITY_COLUMNS]> = match found {
            Some(f) if code.reveals_identity() => {
                Some(std::array::from_fn(|i| match IDENTITY[i] {
                    Col::Scopes => f.effective_scopes_datum(),
                    c => f.datum(c),
                }))
            }
            _ => None,
        };
        row(tupdesc, code, identity)
    })
}

/// Stands for text that is not readable in this database: no stored value
/// can equal it, since PostgreSQL text never holds NUL.
const UNREADABLE: &str = "\0";

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

/// Forms a `verification` row in the current memory context; the identity
/// datums are copied into it.
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
