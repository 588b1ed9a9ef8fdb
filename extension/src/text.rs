//! Text arguments read without pgrx's `&str` conversion, which panics on
//! bytes that are not UTF-8 (possible in SQL_ASCII and other non-UTF-8
//! databases) and would show a Rust backtrace to the client. Functions that
//! must never raise read their arguments here and treat unreadable text as
//! input that matches nothing; management functions refuse it with
//! `invalid_argument` (`_text_check`) before any other helper sees it.

use api_keys_core::RuleError;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::raise::raise;

/// Text that is not valid UTF-8 in this database (or, in an encoding other
/// than UTF8 and SQL_ASCII, not ASCII: only ASCII means the same there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// Declares the V1 calling convention of a raw C function.
macro_rules! v1_function {
    ($finfo:ident) => {
        #[no_mangle]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record =
                pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
pub(crate) use v1_function;

/// The bytes of a text datum as `&str`, checked against the database
/// encoding.
///
/// # Safety
/// `datum` must be a non-NULL, detoasted text datum that outlives `'a`.
pub unsafe fn varlena_str<'a>(v: *const pg_sys::varlena) -> Result<&'a str, NotUtf8> {
    let len = pgrx::varlena::varsize_any_exhdr(v);
    // SAFETY: the caller guarantees a detoasted varlena of `len` payload bytes
    let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len);
    bytes_str(bytes)
}

fn bytes_str(bytes: &[u8]) -> Result<&str, NotUtf8> {
    let encoding = crate::unguarded::database_encoding() as u32;
    let comparable = encoding == pg_sys::pg_enc::PG_UTF8
        || encoding == pg_sys::pg_enc::PG_SQL_ASCII
        || bytes.is_ascii();
    if comparable {
        std::str::from_utf8(bytes).map_err(|_| NotUtf8)
    } else {
        Err(NotUtf8)
    }
}

/// Argument `i` as text: `None` when NULL.
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text.
pub unsafe fn text_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<Result<&'a str, NotUtf8>> {
    let datum = pgrx::fcinfo::pg_getarg_datum(fcinfo, i)?;
    let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    Some(varlena_str(v))
}

/// Argument `i` as a text[]: `None` when NULL; each element `None` when
/// NULL, else its text or [`NotUtf8`].
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text[].
unsafe fn text_array_elements<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<Vec<Option<Result<&'a str, NotUtf8>>>> {
    let datum = pgrx::fcinfo::pg_getarg_datum(fcinfo, i)?;
    let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n: i32 = 0;
    // text: varlena (-1), not by value, int alignment
    pg_sys::deconstruct_array(
        array,
        pg_sys::TEXTOID,
        -1,
        false,
        b'i' as std::ffi::c_char,
        &mut elems,
        &mut nulls,
        &mut n,
    );
    let n = n.max(0) as usize;
    if n == 0 {
        return Some(Vec::new());
    }
    // SAFETY: deconstruct_array filled n datums and n null flags
    let elems = std::slice::from_raw_parts(elems, n);
    let nulls = std::slice::from_raw_parts(nulls, n);
    Some(
        elems
            .iter()
            .zip(nulls)
            .map(|(d, &null)| {
                (!null).then(|| varlena_str(pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr())))
            })
            .collect(),
    )
}

/// Argument `i` as a text[] of requirements: `None` when NULL; an element
/// that is NULL or unreadable is `None` (a requirement never met).
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text[].
pub unsafe fn text_array_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<Vec<Option<&'a str>>> {
    text_array_elements(fcinfo, i).map(|v| v.into_iter().map(|e| e.and_then(Result::ok)).collect())
}

v1_function!(pg_finfo_api_keys_text_check);

/// `api_keys._text_check(what text, VARIADIC value text[])`: raises
/// `invalid_argument` when a value cannot be read as UTF-8 in this
/// database; true otherwise. Management functions call it first, with every
/// text argument (arrays joined with a space, which keeps a broken sequence
/// broken).
///
/// # Safety
/// Called by the executor for `_text_check(text, text[])`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_keys_text_check(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the SQL declaration is (text, text[])
    let what = text_arg(fcinfo, 0)
        .and_then(Result::ok)
        .unwrap_or("an argument");
    let values = text_array_elements(fcinfo, 1).unwrap_or_default();
    if values.iter().flatten().any(Result::is_err) {
        raise(RuleError::invalid(format!(
            "{what} is not valid UTF-8 text (in a database whose encoding is not \
             UTF8 or SQL_ASCII, only ASCII text is accepted)"
        )));
    }
    pg_sys::Datum::from(true)
}
