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

/// The elements of a text[] datum in storage order, every dimension
/// flattened (the order `deconstruct_array` gives): `None` for a NULL
/// element, else its text or [`NotUtf8`]. The array is walked in place, by
/// the layout rules of PostgreSQL's array.h: no element is copied, nothing
/// is allocated. Verify reads two arrays a call (the required scopes and the
/// key's), and `deconstruct_array` or pgrx's `Array` (each allocating, and
/// one guarded call more) cost ~2,500 instructions of a ~35,000 verify.
///
/// Fails closed: should the array's header or an element not be what
/// PostgreSQL writes (a length running past the end, an element stored
/// compressed), every element from there on is [`NotUtf8`] — unreadable:
/// a required scope nobody meets, a stored scope that grants nothing.
pub struct TextElements<'a> {
    next: *const u8,
    end: *const u8,
    /// The null bitmap (bit set = not NULL), or null when there is none.
    nulls: *const u8,
    at: usize,
    count: usize,
    broken: bool,
    _array: std::marker::PhantomData<&'a str>,
}

impl TextElements<'_> {
    fn empty() -> Self {
        TextElements {
            next: std::ptr::null(),
            end: std::ptr::null(),
            nulls: std::ptr::null(),
            at: 0,
            count: 0,
            broken: false,
            _array: std::marker::PhantomData,
        }
    }
}

/// `TYPEALIGN(align, p)` of a pointer, as array.h's element walk aligns.
fn align_up(p: usize, align: usize) -> usize {
    (p + align - 1) & !(align - 1)
}

/// The elements of `datum`, a text[]; see [`TextElements`].
///
/// # Safety
/// `datum` is a non-NULL text[] datum valid for `'a`. Its detoasted copy,
/// when it needs one, is made in the current memory context, which must
/// outlive `'a`.
pub unsafe fn text_elements<'a>(datum: pg_sys::Datum) -> TextElements<'a> {
    const HEADER: usize = std::mem::size_of::<pg_sys::ArrayType>();
    // A flat array with a 4-byte header: detoast expands short
    // headers, compression, TOAST pointers and expanded arrays.
    let array = detoast(datum.cast_mut_ptr()) as *const pg_sys::ArrayType;
    let base = array as *const u8;
    let size = pgrx::varlena::varsize_4b(array as *const pg_sys::varlena);
    let ndim = (*array).ndim;
    if size < HEADER || ndim <= 0 || ndim > pg_sys::MAXDIM as i32 {
        // ndim 0 is the empty array; anything else here is not an array
        // PostgreSQL wrote, and has no elements anyone can read.
        return TextElements::empty();
    }
    let ndim = ndim as usize;
    let dims_end = HEADER + 2 * std::mem::size_of::<i32>() * ndim;
    let mut broken = (*array).elemtype != pg_sys::TEXTOID || dims_end > size;
    let mut count: usize = 1;
    if !broken {
        let dims = base.add(HEADER) as *const i32;
        for d in 0..ndim {
            let dim = dims.add(d).read_unaligned();
            match usize::try_from(dim)
                .ok()
                .and_then(|dim| count.checked_mul(dim))
            {
                Some(c) => count = c,
                None => broken = true,
            }
        }
    }
    if broken {
        // Unreadable from the start: one unreadable element stands for all.
        let mut e = TextElements::empty();
        e.count = 1;
        e.broken = true;
        return e;
    }
    let dataoffset = (*array).dataoffset;
    let (nulls, data) = if dataoffset != 0 {
        (base.add(dims_end), dataoffset.max(0) as usize)
    } else {
        (
            std::ptr::null(),
            align_up(dims_end, pg_sys::MAXIMUM_ALIGNOF as usize),
        )
    };
    let bitmap_fits = nulls.is_null() || dims_end + count.div_ceil(8) <= data;
    TextElements {
        next: base.add(data.min(size)),
        end: base.add(size),
        nulls,
        at: 0,
        count,
        broken: data > size || !bitmap_fits,
        _array: std::marker::PhantomData,
    }
}

impl<'a> Iterator for TextElements<'a> {
    type Item = Option<Result<&'a str, NotUtf8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.count {
            return None;
        }
        let i = self.at;
        self.at += 1;
        if self.broken {
            return Some(Some(Err(NotUtf8)));
        }
        // SAFETY: text_elements checked that the bitmap (when present)
        // covers `count` bits and lies before the data; every read below is
        // bounded by `end`, the array's last byte + 1.
        unsafe {
            if !self.nulls.is_null() && *self.nulls.add(i / 8) & (1 << (i % 8)) == 0 {
                return Some(None);
            }
            let p = self.next;
            let left = self.end as usize - p as usize;
            let v = p as *const pg_sys::varlena;
            let readable = left >= 1
                && if pgrx::varlena::varatt_is_1b(v) {
                    // 0x01 alone is a TOAST pointer, never inside an array
                    !pgrx::varlena::varatt_is_1b_e(v)
                } else {
                    left >= pg_sys::VARHDRSZ && pgrx::varlena::varatt_is_4b_u(v)
                };
            let len = if readable {
                pgrx::varlena::varsize_any(v)
            } else {
                0
            };
            if !readable || len > left || len < pg_sys::VARHDRSZ_SHORT {
                self.broken = true;
                return Some(Some(Err(NotUtf8)));
            }
            // att_addlength_pointer, then att_align_nominal for 'i'
            self.next = align_up(p as usize + len, 4).min(self.end as usize) as *const u8;
            let bytes = std::slice::from_raw_parts(
                pgrx::varlena::vardata_any(v) as *const u8,
                pgrx::varlena::varsize_any_exhdr(v),
            );
            Some(Some(bytes_str(bytes)))
        }
    }
}

/// Argument `i` as a text[]: `None` when NULL; see [`TextElements`].
///
/// # Safety
/// `fcinfo` must be a valid call whose argument `i` is of type text[].
unsafe fn text_array_elements<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<TextElements<'a>> {
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
    text_array_elements(fcinfo, i).map(|v| v.map(|e| e.and_then(Result::ok)).collect())
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
