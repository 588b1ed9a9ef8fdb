//! GUCs (SPEC §4).

use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static TOKEN_PREFIX: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"ak"));
pub static ENVIRONMENT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static STRICT_ENVIRONMENT_ISOLATION: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static TRACK_USAGE: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Seconds.
pub static LAST_USED_RESOLUTION: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Milliseconds.
pub static USAGE_FLUSH_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10_000);
/// Plan `SELECT … FROM api_key_verify(…)` as a custom scan (scan.rs).
pub static VERIFY_CUSTOM_SCAN: GucSetting<bool> = GucSetting::<bool>::new(true);

pub fn define() {
    GucRegistry::define_string_guc(
        c"api_keys.token_prefix",
        c"Prefix of new untyped keys' tokens.",
        c"One segment of [a-z0-9], 1-16 chars, starting with a letter.",
        &TOKEN_PREFIX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"api_keys.environment",
        c"The current environment (e.g. test or live).",
        c"Used by issue when no environment argument is given, and by verify under strict isolation.",
        &ENVIRONMENT,
        GucContext::Userset,
        GucFlags::default(),
    );
    // Superuser-only, so an application role cannot switch isolation off.
    GucRegistry::define_bool_guc(
        c"api_keys.strict_environment_isolation",
        c"Reject keys whose environment differs from the current one.",
        c"",
        &STRICT_ENVIRONMENT_ISOLATION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"api_keys.track_usage",
        c"Record last_used_at and requests_count on successful verification.",
        c"",
        &TRACK_USAGE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"api_keys.last_used_resolution",
        c"How precisely last_used_at is tracked.",
        c"",
        &LAST_USED_RESOLUTION,
        1,
        86_400 * 365,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"api_keys.usage_flush_interval",
        c"How often usage counters are flushed from shared memory.",
        c"",
        &USAGE_FLUSH_INTERVAL,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"api_keys.verify_custom_scan",
        c"Run SELECT ... FROM api_keys.api_key_verify(...) as a custom scan, without a Function Scan.",
        c"Off: the plain Function Scan. Takes effect for statements planned after it is set.",
        &VERIFY_CUSTOM_SCAN,
        GucContext::Userset,
        GucFlags::default(),
    );
}

fn get_str(setting: &GucSetting<Option<CString>>) -> Option<&'static CStr> {
    // SAFETY: the GUC machinery owns the string; it stays valid until the
    // setting changes, which cannot happen while this backend runs our code.
    let ptr = setting.as_ptr();
    unsafe {
        let raw = *ptr;
        if raw.is_null() {
            None
        } else {
            Some(CStr::from_ptr(raw))
        }
    }
}

/// `api_keys.environment`, `None` when empty.
pub fn current_environment<'a>() -> Option<&'a str> {
    get_str(&ENVIRONMENT)
        .and_then(|c| c.to_str().ok())
        .filter(|s| !s.is_empty())
}

pub fn token_prefix() -> &'static str {
    get_str(&TOKEN_PREFIX)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("ak")
}

pub fn strict_isolation() -> bool {
    STRICT_ENVIRONMENT_ISOLATION.get()
}
