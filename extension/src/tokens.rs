//! Token helpers exposed to SQL.

use api_keys_core::token::{self, Prefix, Token};
use pgrx::prelude::*;

use crate::raise::OrRaise;

/// `<prefix>_••••<last 4>`; NULL for anything that is not a well-formed token.
#[pg_extern(immutable, parallel_safe)]
fn api_key_mask(token: Option<&str>) -> Option<String> {
    token.and_then(token::mask)
}

/// The name of the environment a token was issued in, read from its prefix;
/// NULL for a malformed token or one without an environment segment.
#[pg_extern(stable, parallel_safe)]
fn api_key_environment_of(token: Option<&str>) -> Option<String> {
    let segment = token.and_then(token::parse)?.environment_segment()?;
    Spi::get_one_with_args::<String>(
        "SELECT name FROM api_keys.environments WHERE prefix_segment = $1",
        &[segment.into()],
    )
    .ok()
    .flatten()
}

/// A fresh token for the prefix `<head>[_<environment segment>]`; the only
/// place a plaintext is made. Internal: called by api_key_issue.
#[pg_extern(volatile)]
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
#[pg_extern(stable)]
fn _token_prefix() -> String {
    let p = crate::guc::token_prefix();
    token::check_segment("api_keys.token_prefix", p).or_raise();
    p.to_owned()
}

/// `api_keys.environment`, NULL when empty.
#[pg_extern(stable)]
fn _current_environment() -> Option<String> {
    crate::guc::current_environment().map(str::to_owned)
}

/// The masked form from stored parts. Internal: used by the key_infos view.
#[pg_extern(immutable, parallel_safe)]
fn _mask_parts(display_prefix: &str, last4: &str) -> String {
    token::mask_parts(display_prefix, last4)
}
