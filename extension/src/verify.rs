//! `api_key_verify`: the hot path.
//!
//! Written as a raw V1 function (its CREATE FUNCTION is in sql/functions.sql)
//! so that it can return the `api_keys.verification` row built straight from
//! the stored datums, without converting each column to Rust and back.
//! Never raises for any token text: bad input earns a code.

use std::ptr;

use api_keys_core::legacy::MAX_LEGACY_TOKEN_LEN;
use api_keys_core::token::{self, TokenHash};
use api_keys_core::verify::{decide, is_expired, Isolation, StoredKey};
use api_keys_core::VerifyCode;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::guc;
use crate::lookup::{Col, KeyRow, KeyScan};
use crate::text::{text_array_datum, text_datum};

/// Attributes of `api_keys.verification` (sql/schema.sql's `CREATE TYPE`):
/// `valid`, `code`, then the identity columns. Checked against the catalog
/// when the row type is first looked up.
pub const VERIFICATION_COLUMNS: usize = 11;
const VALID_AT: usize = 0;
const CODE_AT: usize = 1;
const IDENTITY_AT: usize = 2;

/// The `verification` identity columns, in order after valid and code.
const IDENTITY: [Col; VERIFICATION_COLUMNS - IDENTITY_AT] = [
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
/// `then`, which copies what it needs: the key's row is valid only inside
/// it. Then records usage of a valid key, once the key's scan has ended.
pub fn verify_with<R>(
    text: Option<&str>,
    required: &[Option<&str>],
    current_environment: Option<&str>,
    otp: Option<&str>,
    then: impl FnOnce(VerifyCode, Option<&KeyRow>) -> R,
) -> R {
    let Some(text) = text else {
        return then(VerifyCode::Malformed, None);
    };
    // Ours: the SHA-256 of the parsed token. Not ours: looked up only when
    // it starts with a registered legacy prefix (an imported key), else
    // malformed without touching a table (legacy.rs caches the prefixes).
    let hash = match token::parse(text) {
        Some(parsed) => parsed.hash(),
        None if crate::legacy::is_legacy_token(text) => TokenHash::of(text),
        None => return then(VerifyCode::Malformed, None),
    };
    let isolation = Isolation {
        strict: guc::strict_isolation(),
        current: current_environment.or_else(guc::current_environment),
    };
    let scan = KeyScan::by_hash(hash.as_bytes());
    let Some(key) = scan.key() else {
        return then(VerifyCode::NotFound, None);
    };
    let code = crate::mfa::gate(decide_for(&key, isolation, required), &key, required, otp);
    let answer = then(code, Some(&key));
    let usage = if code.is_valid() {
        key.key_id().map(|id| (id, key.timestamp(Col::LastUsedAt)))
    } else {
        None
    };
    // Tracking may write the key's row (the fallback's UPDATE): not while
    // its buffer is pinned and its datums are read in place.
    drop(scan);
    if let Some((id, last_used_at)) = usage {
        crate::usage::track(*id.as_bytes(), last_used_at);
    }
    answer
}

/// The verify code of a stored key (the token's shape and checksum passed).
fn decide_for(key: &KeyRow, isolation: Isolation, required: &[Option<&str>]) -> VerifyCode {
    let now = crate::unguarded::transaction_start();
    key.with_scopes(|scopes, ceiling| {
        let stored = StoredKey {
            revoked: key.datum(Col::RevokedAt).is_some(),
            expired: is_expired(key.timestamp(Col::ExpiresAt), now),
            environment: key.text(Col::Environment),
            scopes,
            ceiling,
        };
        decide(&stored, isolation, required)
    })
}

#[no_mangle]
pub extern "C" fn pg_finfo_api_key_verify_c() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The arguments of a verify call as datums (`None` = NULL): `token text`,
/// `required_scopes text[]`, `environment text`, `otp text`.
#[derive(Clone, Copy, Default)]
pub struct Args {
    pub token: Option<pg_sys::Datum>,
    pub required: Option<pg_sys::Datum>,
    pub environment: Option<pg_sys::Datum>,
    pub otp: Option<pg_sys::Datum>,
}

/// Verifies a call and hands the `verification` row's values and nulls to
/// `then`; by-reference values may point into the key's buffer, valid only
/// inside `then` (copy them: [`row`] forms a tuple, the custom scan copies
/// the datums).
///
/// # Safety
/// Each datum is a valid datum of its argument's type, valid for the call.
pub unsafe fn verify_values<R>(
    args: &Args,
    then: impl FnOnce(
        &mut [pg_sys::Datum; VERIFICATION_COLUMNS],
        &mut [bool; VERIFICATION_COLUMNS],
    ) -> R,
) -> R {
    let text = args.token.and_then(|d| token_text(d));
    let required = args
        .required
        .map(|d| text_array_datum(d))
        .unwrap_or_default();
    // Unreadable text names no environment: NUL can never be in a stored name.
    let env_arg: Option<&str> = args
        .environment
        .map(|d| text_datum(d).unwrap_or(UNREADABLE));
    // An unreadable code is no code of any secret.
    let otp: Option<&str> = args.otp.map(|d| text_datum(d).unwrap_or(UNREADABLE));
    verify_with(text, &required, env_arg, otp, |code, key| {
        let identity = match key {
            Some(key) if code.reveals_identity() => Some(IDENTITY.map(|c| match c {
                Col::Scopes => key.effective_scopes_datum(),
                c => key.datum(c),
            })),
            _ => None,
        };
        let (mut values, mut nulls) = row_values(code, identity);
        then(&mut values, &mut nulls)
    })
}

/// # Safety
/// Called by the Postgres executor with a valid `fcinfo` for
/// `api_key_verify(text, text[], text, text)` (or the three-argument form
/// of 0.1.0 and of the benchmark's copies: `otp` is read only when passed).
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_key_verify_c(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let tupdesc = result_tupdesc(fcinfo);
    // the SQL declaration is (text, text[], text, text): the types read
    let arg = |i| pgrx::fcinfo::pg_getarg_datum(fcinfo, i);
    let args = Args {
        token: arg(0),
        required: arg(1),
        environment: arg(2),
        otp: if (*fcinfo).nargs > 3 { arg(3) } else { None },
    };
    verify_values(&args, |values, nulls| {
        // SAFETY: tupdesc is verification's descriptor, whose attributes
        // row_type checked against the types row_values fills; the key's
        // datums are still valid here, and the tuple copies them.
        unsafe {
            let tuple = pg_sys::heap_form_tuple(tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
        }
    })
}

/// Stands for text that is not readable in this database: no stored value
/// can equal it, since PostgreSQL text never holds NUL.
const UNREADABLE: &str = "\0";

/// The token argument as text, or `None` when it cannot be a token: longer
/// than any token, ours or legacy (checked before detoasting, so 1 MB costs
/// nothing) or not valid UTF-8.
///
/// # Safety
/// `datum` is a non-NULL text datum valid for `'a` (an argument of the
/// current call: its detoasted copy lives in the call's memory context).
unsafe fn token_text<'a>(datum: pg_sys::Datum) -> Option<&'a str> {
    let v = datum.cast_mut_ptr::<pg_sys::varlena>();
    // In line and uncompressed (the common case): its size is its header's,
    // and there is nothing to expand, so no guarded call.
    let in_line = !(pgrx::varlena::varatt_is_4b_c(v) || pgrx::varlena::varatt_is_1b_e(v));
    let raw_size = if in_line {
        pgrx::varlena::varsize_any(v)
    } else {
        pg_sys::toast_raw_datum_size(datum)
    };
    if raw_size > pg_sys::VARHDRSZ + token::MAX_TOKEN_LEN.max(MAX_LEGACY_TOKEN_LEN) {
        return None;
    }
    let v = crate::text::detoast_packed(v);
    let len = pgrx::varlena::varsize_any_exhdr(v);
    let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len);
    std::str::from_utf8(bytes).ok()
}

/// `get_fn_expr_rettype`, read in place for the usual call expression (a
/// `FuncExpr`), else asked of PostgreSQL: `InvalidOid` without one.
///
/// # Safety
/// `fcinfo` is a valid call.
unsafe fn call_result_type(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Oid {
    let flinfo = (*fcinfo).flinfo;
    if flinfo.is_null() || (*flinfo).fn_expr.is_null() {
        return pg_sys::InvalidOid;
    }
    let expr = (*flinfo).fn_expr;
    if (*expr).type_ == pg_sys::NodeTag::T_FuncExpr {
        (*expr.cast::<pg_sys::FuncExpr>()).funcresulttype
    } else {
        pg_sys::get_fn_expr_rettype(flinfo)
    }
}

/// The result row type of a call: its type, the type cache's identifier of
/// its descriptor, and a checked copy of that descriptor.
#[derive(Clone, Copy)]
struct RowType {
    typid: pg_sys::Oid,
    /// The type cache's entry: entries live as long as the backend (the
    /// type cache never removes one), so the pointer stays valid.
    entry: *mut pg_sys::TypeCacheEntry,
    identifier: u64,
    tupdesc: pg_sys::TupleDesc,
}

thread_local! {
    /// Looked up once per backend: on every execution of a statement
    /// (each one gets a fresh FmgrInfo) the lookup, two descriptor copies
    /// and the check cost ~2,700 instructions, a twentieth of a verify.
    static ROW_TYPE: std::cell::Cell<Option<RowType>> = const { std::cell::Cell::new(None) };
}

/// The `verification` row type of this call. Kept per backend while the
/// type cache's identifier of its descriptor stays the same (it changes
/// when the type is altered, or the caches are reset). A replaced copy is
/// freed: only the call that looked it up uses it, until it forms its row,
/// and calls do not nest (verify runs no user code). Raises unless the type
/// has exactly the attributes [`row`] fills, of the types it fills them
/// with.
///
/// # Safety
/// `fcinfo` is a valid call of a function declared to return
/// `api_keys.verification`.
unsafe fn result_tupdesc(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::TupleDesc {
    // The declared result type from the call's expression: no catalog
    // lookup. Without one (a direct call from C), the catalog says.
    let mut typid = call_result_type(fcinfo);
    if typid == pg_sys::InvalidOid {
        let mut td: pg_sys::TupleDesc = ptr::null_mut();
        let class = pg_sys::get_call_result_type(fcinfo, &mut typid, &mut td);
        if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || td.is_null() {
            error!("api_keys: api_key_verify must return api_keys.verification");
        }
        typid = (*td).tdtypeid;
    }
    row_type(typid)
}

/// The checked descriptor of row type `typid` (see [`result_tupdesc`]).
///
/// # Safety
/// Inside a transaction.
pub unsafe fn row_type(typid: pg_sys::Oid) -> pg_sys::TupleDesc {
    let cached = ROW_TYPE.get();
    if let Some(cached) = cached {
        // An invalidation of the type clears the entry's descriptor (and
        // a reload gives it a new identifier): until then, no lookup.
        if cached.typid == typid
            && !(*cached.entry).tupDesc.is_null()
            && (*cached.entry).tupDesc_identifier == cached.identifier
        {
            return cached.tupdesc;
        }
    }
    let entry = pg_sys::lookup_type_cache(typid, pg_sys::TYPECACHE_TUPDESC as i32);
    let current = (*entry).tupDesc;
    if current.is_null() {
        error!("api_keys: api_key_verify must return api_keys.verification");
    }
    let identifier = (*entry).tupDesc_identifier;
    if let Some(cached) = cached {
        if cached.typid == typid && cached.identifier == identifier {
            return cached.tupdesc;
        }
    }
    check_row_type(current);
    let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
    let tupdesc = pg_sys::CreateTupleDescCopy(current);
    pg_sys::MemoryContextSwitchTo(old);
    ROW_TYPE.set(Some(RowType {
        typid,
        entry,
        identifier,
        tupdesc,
    }));
    if let Some(replaced) = cached {
        pg_sys::FreeTupleDesc(replaced.tupdesc);
    }
    tupdesc
}

/// Raises unless `td` has exactly the attributes [`row`] fills, of the
/// types it fills them with.
///
/// # Safety
/// `td` is a valid tuple descriptor.
unsafe fn check_row_type(td: pg_sys::TupleDesc) {
    let natts = (*td).natts as usize;
    if natts != VERIFICATION_COLUMNS {
        error!(
            "api_keys: type api_keys.verification has {natts} attributes, but this \
             library fills {VERIFICATION_COLUMNS} (sql/schema.sql's CREATE TYPE \
             api_keys.verification): the extension's SQL and library do not match"
        );
    }
    let expected = |at: usize| match at {
        VALID_AT => pg_sys::BOOLOID,
        CODE_AT => pg_sys::TEXTOID,
        _ => IDENTITY[at - IDENTITY_AT].type_oid(),
    };
    let attrs = (*td).attrs.as_slice(natts);
    if let Some(at) = (0..natts).find(|&at| {
        let a = &attrs[at];
        a.attisdropped || a.atttypid != expected(at)
    }) {
        error!(
            "api_keys: attribute {} of type api_keys.verification is not the one \
             this library fills (sql/schema.sql's CREATE TYPE api_keys.verification): \
             the extension's SQL and library do not match",
            at + 1
        );
    }
}

/// A verify code as a text datum. Each is made once per backend, in Rust's
/// memory, which lives as long as the process: [`row`] copies it into the
/// row, and nothing else sees it. Made per call, it was a guarded
/// allocation and a copy.
fn code_text(code: VerifyCode) -> pg_sys::Datum {
    /// A text varlena with a 4-byte header, aligned as PostgreSQL reads it.
    #[repr(C, align(8))]
    struct CodeText([u8; 4 + CODE_TEXT_MAX]);
    const CODE_TEXT_MAX: usize = 28;
    static CODES: std::sync::OnceLock<[CodeText; VerifyCode::ALL.len()]> =
        std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| {
        VerifyCode::ALL.map(|c| {
            let text = c.as_str().as_bytes();
            assert!(
                text.len() <= CODE_TEXT_MAX,
                "api_keys: verify code too long"
            );
            let mut v = CodeText([0; 4 + CODE_TEXT_MAX]);
            // SET_VARSIZE (fmgr's 4-byte header): the size with the header,
            // shifted past the two flag bits, in the machine's byte order;
            // this is the little-endian layout (x86-64, AArch64).
            const _: () = assert!(cfg!(target_endian = "little"));
            v.0[..4].copy_from_slice(&(((4 + text.len()) as u32) << 2).to_le_bytes());
            v.0[4..4 + text.len()].copy_from_slice(text);
            v
        })
    });
    let at = VerifyCode::ALL
        .iter()
        .position(|&c| c == code)
        .expect("every code is in VerifyCode::ALL");
    pg_sys::Datum::from(codes[at].0.as_ptr())
}

/// The values and nulls of a `verification` row; identity datums as given
/// (they may point into the key's buffer).
fn row_values(
    code: VerifyCode,
    identity: Option<[Option<pg_sys::Datum>; IDENTITY.len()]>,
) -> (
    [pg_sys::Datum; VERIFICATION_COLUMNS],
    [bool; VERIFICATION_COLUMNS],
) {
    let mut values = [pg_sys::Datum::null(); VERIFICATION_COLUMNS];
    let mut nulls = [true; VERIFICATION_COLUMNS];
    values[VALID_AT] = pg_sys::Datum::from(code.is_valid());
    nulls[VALID_AT] = false;
    values[CODE_AT] = code_text(code);
    nulls[CODE_AT] = false;
    if let Some(identity) = identity {
        for (i, d) in identity.into_iter().enumerate() {
            if let Some(d) = d {
                values[IDENTITY_AT + i] = d;
                nulls[IDENTITY_AT + i] = false;
            }
        }
    }
    (values, nulls)
}
