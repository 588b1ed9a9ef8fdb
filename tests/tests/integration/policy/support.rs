//! Configuration calls shared by the policy tests.

use api_keys_tests::*;
use postgres::GenericClient;

/// `api_key_type_define(name, prefix, <extra named args>)`.
pub fn try_define_type(
    c: &mut impl GenericClient,
    name: &str,
    prefix: &str,
    extra: &str,
) -> Result<(), postgres::Error> {
    let sep = if extra.is_empty() { "" } else { ", " };
    try_configure(
        c,
        &format!("api_keys.api_key_type_define(name => $1::text, prefix => $2::text{sep}{extra})"),
        &[&name, &prefix],
    )
}

#[track_caller]
pub fn define_type(c: &mut impl GenericClient, name: &str, prefix: &str, extra: &str) {
    try_define_type(c, name, prefix, extra).unwrap_or_else(|e| {
        panic!(
            "api_key_type_define({name}, {prefix}, {extra}) failed: {}",
            describe(&e)
        )
    });
}

/// The Stripe-style publishable type: public, non-revocable, finite ceiling.
pub fn define_publishable(c: &mut impl GenericClient) {
    define_type(
        c,
        "publishable",
        "pk",
        "permissions => '{read}', revocable => false, public => true",
    );
}

pub fn try_define_environment(
    c: &mut impl GenericClient,
    name: &str,
    segment: Option<&str>,
) -> Result<(), postgres::Error> {
    try_configure(
        c,
        "api_keys.api_key_environment_define($1::text, $2::text)",
        &[&name, &segment],
    )
}

#[track_caller]
pub fn define_environment(c: &mut impl GenericClient, name: &str, segment: &str) {
    try_define_environment(c, name, Some(segment)).unwrap_or_else(|e| {
        panic!(
            "api_key_environment_define({name}, {segment}) failed: {}",
            describe(&e)
        )
    });
}

/// Environments named unlike their segments, so a test notices which is used.
pub fn define_test_and_live(c: &mut impl GenericClient) {
    define_environment(c, "sandbox", "test");
    define_environment(c, "production", "live");
}

#[track_caller]
pub fn define_scope(c: &mut impl GenericClient, name: &str, exclusive: bool) {
    try_configure(
        c,
        "api_keys.api_key_scope_define($1::text, exclusive => $2::boolean)",
        &[&name, &exclusive],
    )
    .unwrap_or_else(|e| panic!("api_key_scope_define({name}) failed: {}", describe(&e)));
}

/// `api_key_owner_policy_set(owner_type, <extra named args>)`.
#[track_caller]
pub fn set_owner_policy(c: &mut impl GenericClient, owner_type: &str, extra: &str) {
    try_configure(
        c,
        &format!("api_keys.api_key_owner_policy_set(owner_type => $1::text, {extra})"),
        &[&owner_type],
    )
    .unwrap_or_else(|e| {
        panic!(
            "api_key_owner_policy_set({owner_type}, {extra}) failed: {}",
            describe(&e)
        )
    });
}

pub fn environment_of(c: &mut impl GenericClient, token: &str) -> Option<String> {
    c.query_one(
        "SELECT api_keys.api_key_environment_of($1::text)",
        &[&token],
    )
    .unwrap_or_else(|e| panic!("api_key_environment_of raised: {}", describe(&e)))
    .get(0)
}

/// Turns strict environment isolation on for this (superuser) session.
pub fn strict_isolation_on(c: &mut postgres::Client) {
    c.batch_execute("SET api_keys.strict_environment_isolation = on")
        .expect("superuser may set strict isolation");
}
