//! Token helpers exposed to SQL.

use api_keys_core::token::{self, Prefix, Token};
use pgrx::prelude::*;
use pgrx::{pg_sys, IntoDatum};

use crate::text::{text_arg, v1_function};

use crate::raise::OrRaise;

v1_function!(pg_finfo_api_keys_mask);

/// `api_key_mask(token text)`: `<prefix>_••••<last 4>`; NULL for anything
/// that is not a well-formed token (unreadable text included). Never raises.
///
/// # Safety
/// Called by the executor for `api_key_mask(text)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_keys_mask(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let masked = text_arg(fcinfo, 0)
        .and_then(Result::ok)
        .and_then(token::mask);
    return_text(fcinfo, masked)
}

v1_function!(pg_finfo_api_keys_environment_of);

/// `api_key_environment_of(token text)`: the name of the environment a
/// token was issued in, read from its prefix; NULL for a malformed token or
/// one without an environment segment. Never raises.
///
/// # Safety
/// Called by the executor for `api_key_environment_of(text)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_keys_environment_of(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let segment = text_arg(fcinfo, 0)
        .and_then(Result::ok)
        .and_then(token::parse)
        .and_then(|t| t.environment_segment().map(str::to_owned));
    // A read-only SPI connection: `Spi::get_one_with_args` runs the query
    // as an update, which assigns a transaction id, and so raises on a hot
    // standby ("cannot assign TransactionIds during recovery") and burns an
    // id in every READ ONLY transaction.
    let name = segment.and_then(|segment| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT e.name FROM api_keys.environments e \
                      WHERE e.prefix_segment OPERATOR(pg_catalog.=) $1::pg_catalog.text",
                    Some(1),
                    &[segment.as_str().into()],
                )
                .and_then(|rows| rows.first().get_one::<String>())
        })
        .ok()
        .flatten()
    });
    return_text(fcinfo, name)
}

/// Returns an optional text from a raw V1 function.
///
/// # Safety
/// `fcinfo` must be the current call's.
pub unsafe fn return_text<S: AsRef<str>>(
    fcinfo: pg_sys::FunctionCallInfo,
    value: Option<S>,
) -> pg_sys::Datum {
    match value.and_then(|v| v.as_ref().into_datum()) {
        Some(d) => d,
        None => {
            (*fcinfo).isnull = true;
            pg_sys::Datum::from(0)
        }
    }
}

/// A fresh token for the prefix `<head>[_<environment segment>]`; the only
/// place a plaintext is made. Internal: called by api_key_issue.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _token_new(
    head: &str,
    environment_segment: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(token, String),
        name!(token_hash, Vec<u8>),
        name!(display_prefix, String),
        name!(last4, String),
        name!(masked_token, String),
    ),
> {
    let prefix = Prefix::new(head, environment_segment).or_raise();
    let token = Token::generate(&prefix)
        .unwrap_or_else(|e| error!("api_keys: the OS random source failed: {e}"));
    let parsed = token.parsed();
    let row = (
        token.expose().to_owned(),
        token.hash().as_bytes().to_vec(),
        parsed.prefix().to_owned(),
        parsed.last4().to_owned(),
        parsed.masked(),
    );
    TableIterator::once(row)
}

/// `api_keys.token_prefix`, checked to be one segment.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _token_prefix() -> String {
    let p = crate::guc::token_prefix();
    token::check_segment("api_keys.token_prefix", p).or_raise();
    p.to_owned()
}

/// `api_keys.environment`, NULL when empty.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _current_environment() -> Option<String> {
    crate::guc::current_environment().map(str::to_owned)
}

/// The masked form from stored parts. Internal: used by the key_infos view.
#[pg_extern(immutable, parallel_safe, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _mask_parts(display_prefix: &str, last4: &str) -> String {
    token::mask_parts(display_prefix, last4)
}
