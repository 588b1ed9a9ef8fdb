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
use api_keys_core::pg_array::{self, Element};
use api_keys_core::small_list::SmallList;

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

/// `pg_detoast_datum_packed`: the varlena itself when it is in line and
/// not compressed (a short header is left as is), else PostgreSQL's
/// expanded copy in the current memory context. The test is fmgr.c's own,
/// done here so that the common case makes no guarded call.
///
/// # Safety
/// `v` is a valid varlena datum.
pub unsafe fn detoast_packed(v: *mut pg_sys::varlena) -> *mut pg_sys::varlena {
    if pgrx::varlena::varatt_is_4b_c(v) || pgrx::varlena::varatt_is_1b_e(v) {
        pg_sys::pg_detoast_datum_packed(v)
    } else {
        v
    }
}

/// `pg_detoast_datum`: the varlena itself when it has a plain 4-byte
/// header, else PostgreSQL's flat copy (short header expanded, compressed,
/// TOASTed or expanded-object datums) in the current memory context. The
/// test is fmgr.c's own (`VARATT_IS_EXTENDED`).
///
/// # Safety
/// `v` is a valid varlena datum.
pub unsafe fn detoast(v: *mut pg_sys::varlena) -> *mut pg_sys::varlena {
    if pgrx::varlena::varatt_is_4b_u(v) {
        v
    } else {
        pg_sys::pg_detoast_datum(v)
    }
}

/// A text datum as `&str`, checked against the database encoding.
///
/// # Safety
/// `datum` is a non-NULL text datum valid for `'a`; its expanded copy, when
/// it needs one, is made in the current memory context, which outlives `'a`.
pub unsafe fn text_datum<'a>(datum: pg_sys::Datum) -> Result<&'a str, NotUtf8> {
    varlena_str(detoast_packed(datum.cast_mut_ptr()))
}

/// A text[] datum of requirements: an element that is NULL or unreadable
/// is `None` (a requirement never met).
///
/// # Safety
/// As [`text_elements`].
pub unsafe fn text_array_datum<'a>(datum: pg_sys::Datum) -> SmallList<Option<&'a str>> {
    text_elements(datum)
        .map(|e| e.and_then(Result::ok))
        .collect()
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
    let v = detoast_packed(datum.cast_mut_ptr());
    Some(varlena_str(v))
}

/// The elements of `datum`, a text[], in storage order, every dimension
/// flattened: `None` for a NULL element, else its text or [`NotUtf8`]. The
/// array is walked in place by `api_keys_core::pg_array` (array.h's layout
/// rules, failing closed on bytes PostgreSQL does not write: one unreadable
/// element, then the end). Verify reads two arrays a call, and
/// `deconstruct_array` or pgrx's `Array` (each allocating, and one guarded
/// call more) cost ~2,500 instructions of a ~35,000 verify.
///
/// # Safety
/// `datum` is a non-NULL text[] datum valid for `'a`. Its detoasted copy,
/// when it needs one, is made in the current memory context, which must
/// outlive `'a`. The array starts at an int-aligned address (a palloc'd
/// copy, or a 4-byte-header datum in a tuple, which is aligned for text[]),
/// so element alignment counted from its start is PostgreSQL's.
pub unsafe fn text_elements<'a>(
    datum: pg_sys::Datum,
) -> impl Iterator<Item = Option<Result<&'a str, NotUtf8>>> {
    // A flat array with a 4-byte header: detoast expands short headers,
    // compression, TOAST pointers and expanded arrays.
    let array = detoast(datum.cast_mut_ptr());
    let size = pgrx::varlena::varsize_4b(array);
    let bytes: &'a [u8] = std::slice::from_raw_parts(array as *const u8, size);
    pg_array::TextElements::new(bytes, pg_sys::TEXTOID.to_u32()).map(|e| match e {
        Element::Null => None,
        Element::Text(text) => Some(bytes_str(text)),
        Element::Unreadable => Some(Err(NotUtf8)),
    })
}

/// Argument `i` as a text[]: `None` when NULL; see [`text_elements`].
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text[].
unsafe fn text_array_elements<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<impl Iterator<Item = Option<Result<&'a str, NotUtf8>>>> {
    let datum = pgrx::fcinfo::pg_getarg_datum(fcinfo, i)?;
    Some(text_elements(datum))
}

/// Argument `i` as a text[] of requirements: `None` when NULL; an element
/// that is NULL or unreadable is `None` (a requirement never met).
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text[].
pub unsafe fn text_array_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<SmallList<Option<&'a str>>> {
    pgrx::fcinfo::pg_getarg_datum(fcinfo, i).map(|d| text_array_datum(d))
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
    let unreadable = text_array_elements(fcinfo, 1)
        .is_some_and(|mut values| values.any(|v| v.is_some_and(|v| v.is_err())));
    if unreadable {
        raise(RuleError::invalid(format!(
            "{what} is not valid UTF-8 text (in a database whose encoding is not \
             UTF8 or SQL_ASCII, only ASCII text is accepted)"
        )));
    }
    pg_sys::Datum::from(true)
}
