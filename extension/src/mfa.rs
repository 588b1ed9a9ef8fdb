//! Per-key MFA (SPEC §5 "Lifecycle (0.2.0)"): TOTP enrollment helpers, the
//! replay memory, and verify's OTP gate. The rules are core's (core mfa).
//!
//! Replay memory: per owner (database, owner, secret), the last accepted TOTP step,
//! in shared memory behind one LWLock (taken exclusively for a check-and-
//! set, only when an MFA key is asked for a sensitive scope with a code),
//! so that a code used once is refused the second time also when the first
//! use was in a READ ONLY transaction or on a standby, where nothing can be
//! written. Without `shared_preload_libraries = 'api_keys'` there is no
//! such memory and every code is refused (closed): MFA needs the preload.
//!
//! The TOTP secret lives in `api_keys.mfa_enrollments`, on which no role
//! has any privilege; verify reads it (and the sensitive scopes) as the
//! table's owner, switched to around these reads alone, with SQL that
//! resolves nothing through search_path.

use api_keys_core::mfa::{self, ReplayRefusal, ReplaySlot};
use api_keys_core::token::TokenHash;
use api_keys_core::VerifyCode;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys, PGRXSharedMemory, PgLwLock};

use crate::lookup::{Col, KeyRow};
use crate::raise::OrRaise;
use crate::usage::AsOwner;

const SLOTS: usize = 4096;

pub struct Replay {
    slots: [ReplaySlot; SLOTS],
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            slots: [ReplaySlot::EMPTY; SLOTS],
        }
    }
}

// SAFETY: plain old data with no pointers into process-local memory
unsafe impl PGRXSharedMemory for Replay {}

static REPLAY: PgLwLock<Replay> = unsafe { PgLwLock::new(c"api_keys_mfa_replay") };

/// Called from _PG_init while preloading.
pub fn init() {
    // SAFETY: read-only flag set by the postmaster
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(REPLAY = Replay::default());
    }
}

/// Unix seconds now (the wall clock, not the transaction's start: a code
/// is checked against the time it is presented).
fn unix_now() -> u64 {
    // SAFETY: reads the clock
    let pg = unsafe { pg_sys::GetCurrentTimestamp() };
    let unix = pg / 1_000_000 + 946_684_800;
    unix.max(0) as u64
}

/// The replay memory's key: database, owner and secret (a new enrollment
/// starts afresh: no code of the old secret is valid for the new one).
fn owner_digest(owner_type: &str, owner_id: &str, secret: &[u8]) -> [u8; 16] {
    // SAFETY: MyDatabaseId is set once at connection and never changes
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let h = TokenHash::of(&format!("{db}\0{owner_type}\0{owner_id}\0{secret_hex}"));
    let mut d = [0u8; 16];
    d.copy_from_slice(&h.as_bytes()[..16]);
    d
}

/// Checks `otp` against `secret` (current step ±1) and records its step as
/// the owner's last accepted one; false for a wrong or stale code (counted:
/// ten in a window refuse every code until it has passed), a replay, a full
/// replay memory, or no preload (closed).
pub fn accept(owner_type: &str, owner_id: &str, secret: &[u8], otp: &str) -> bool {
    if !crate::usage::preloaded() {
        return false;
    }
    let now = unix_now();
    let now_step = mfa::step_of(now);
    let owner = owner_digest(owner_type, owner_id, secret);
    let mut replay = REPLAY.exclusive();
    if mfa::locked_out(&replay.slots, owner, now_step) {
        return false;
    }
    let Some(step) = mfa::matching_step(secret, otp, now) else {
        mfa::record_failure(&mut replay.slots, owner, now_step);
        return false;
    };
    match mfa::record_step(&mut replay.slots, owner, step, now_step) {
        Ok(()) => true,
        Err(ReplayRefusal::Replay) => false,
        Err(ReplayRefusal::Full) => {
            warning!("api_keys: the MFA replay memory is full; refusing the code");
            false
        }
    }
}

/// The registered sensitive scopes, read as the table's owner.
fn sensitive_scopes() -> Vec<String> {
    let _owner = AsOwner::switch(crate::lookup::keys_owner());
    // A read-only SPI connection: Spi::get_one marks the transaction
    // mutable, which assigns a transaction id (an ERROR on a standby).
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.array_agg(s.name) FROM api_keys.scopes s WHERE s.mfa",
                Some(1),
                &[],
            )?
            .first()
            .get_one::<Vec<String>>()
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// The owner's enabled TOTP secret, read as the table's owner.
fn enabled_secret(owner_type: &str, owner_id: &str) -> Option<Vec<u8>> {
    let _owner = AsOwner::switch(crate::lookup::keys_owner());
    Spi::connect(|client| {
        client
            .select(
                "SELECT m.secret FROM api_keys.mfa_enrollments m \
                  WHERE m.owner_type OPERATOR(pg_catalog.=) $1 \
                    AND m.owner_id OPERATOR(pg_catalog.=) $2 AND m.enabled",
                Some(1),
                &[DatumWithOid::from(owner_type), DatumWithOid::from(owner_id)],
            )?
            .first()
            .get_one::<Vec<u8>>()
    })
    .ok()
    .flatten()
}

/// Verify's last check (core mfa::gate): an MFA key asked for a sensitive
/// scope needs a code of its owner's enabled secret, unused so far. An
/// owner without enabled MFA (disabled after the key got its flag) has no
/// right code: closed. Reads nothing for a key without the flag.
pub fn gate(
    code: VerifyCode,
    key: &KeyRow<'_>,
    required: &[Option<&str>],
    otp: Option<&str>,
) -> VerifyCode {
    if code != VerifyCode::Valid || !key.mfa() || required.is_empty() {
        return code;
    }
    let (Some(owner_type), Some(owner_id)) = (key.text(Col::OwnerType), key.text(Col::OwnerId))
    else {
        return VerifyCode::OtpInvalid;
    };
    mfa::gate(
        code,
        true,
        || mfa::requires_otp(required, &sensitive_scopes()),
        otp,
        |otp| {
            enabled_secret(owner_type, owner_id)
                .is_some_and(|secret| accept(owner_type, owner_id, &secret, otp))
        },
    )
}

/// A new TOTP secret (bytea). Internal: called by api_key_mfa_enroll.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _mfa_secret_new() -> Vec<u8> {
    mfa::new_secret()
        .unwrap_or_else(|e| error!("api_keys: the OS random source failed: {e}"))
        .to_vec()
}

/// The secret as base32 and its otpauth:// URI, for the enrollment's one
/// showing; issuer and account checked (core mfa::check_label).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _mfa_enrollment(
    raw: &[u8],
    issuer: Option<&str>,
    account: &str,
) -> TableIterator<'static, (name!(secret, String), name!(otpauth_uri, String))> {
    let issuer = issuer.unwrap_or("");
    mfa::check_label("issuer", issuer).or_raise();
    mfa::check_label("account", account).or_raise();
    TableIterator::once((mfa::base32(raw), mfa::otpauth_uri(issuer, account, raw)))
}

/// Whether `otp` is a fresh code of `secret`; records its use (replay).
/// Internal: called by api_key_mfa_confirm.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _mfa_accept(owner_type: &str, owner_id: &str, secret: &[u8], otp: Option<&str>) -> bool {
    otp.is_some_and(|otp| accept(owner_type, owner_id, secret, otp))
}

/// mfa_not_enabled when a key is to get the MFA flag while its owner's MFA
/// is not enabled (core mfa::check_key_flag).
#[pg_extern(immutable, security_definer)]
#[search_path(pg_catalog, api_keys, pg_temp)]
fn _mfa_flag_check(wanted: Option<bool>, owner_enabled: bool, owner: &str) -> bool {
    mfa::check_key_flag(wanted.unwrap_or(false), owner_enabled, owner).or_raise();
    true
}
