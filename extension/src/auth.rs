//! PostgREST pre-request authentication and the request identity (SPEC §6).
//!
//! The identity lives in backend memory, stamped with the local transaction
//! id, rather than in a settable GUC: SQL in the same session cannot forge it
//! with set_config, and it vanishes with the transaction that authenticated,
//! so a pooled connection's next transaction sees NULL.

use std::cell::RefCell;

use api_keys_core::request::{otp_from_headers_json, token_from_headers_json};
use api_keys_core::scopes;
use api_keys_core::verify::AuthOutcome;
use api_keys_core::VerifyCode;
use pgrx::prelude::*;
use pgrx::{pg_sys, IntoDatum};

use crate::lookup::{Col, KeyRow};
use crate::text::{text_arg, text_array_arg, v1_function};
use crate::verify::verify_with;

struct Identity {
    lxid: pg_sys::LocalTransactionId,
    /// The subtransaction that authenticated: rolling it (or an ancestor)
    /// back forgets the identity, as it would a set_config(…, true).
    subxact: pg_sys::SubTransactionId,
    key_id: pgrx::Uuid,
    owner_type: String,
    owner_id: String,
    scopes: Vec<String>,
}

thread_local! {
    static IDENTITY: RefCell<Option<Identity>> = const { RefCell::new(None) };
    static SUBXACT_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Forgets an identity set inside an aborted subtransaction.
///
/// # Safety
/// Called by Postgres' subtransaction machinery, as registered by
/// [`ensure_subxact_callback`]; it touches only this backend's identity.
#[pg_guard]
unsafe extern "C-unwind" fn forget_on_subxact_abort(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    _parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        // Ids grow within a transaction: one >= the aborted subtransaction's
        // was set inside it or inside one of its children.
        IDENTITY.with(|c| {
            let mut slot = c.borrow_mut();
            if slot.as_ref().is_some_and(|i| i.subxact >= my_subid) {
                *slot = None;
            }
        });
    }
}

fn ensure_subxact_callback() {
    if !SUBXACT_CALLBACK.with(|c| c.replace(true)) {
        // SAFETY: the callback is a guarded function of this library, which
        // Postgres never unloads, so it lives as long as the registration;
        // it ignores its argument. The flag registers it once per backend.
        unsafe {
            pg_sys::RegisterSubXactCallback(Some(forget_on_subxact_abort), std::ptr::null_mut())
        };
    }
}

fn current_lxid() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is set for every backend that can run SQL
    unsafe { (*pg_sys::MyProc).lxid }
}

fn with_identity<R>(f: impl FnOnce(&Identity) -> R) -> Option<R> {
    IDENTITY.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|i| i.lxid == current_lxid())
            .map(f)
    })
}

v1_function!(pg_finfo_api_keys_authenticate);

/// `_authenticate(headers text, required_scopes text[]) → text`: verifies
/// the request's key and, when valid, sets the identity for this
/// transaction. Returns the verify code, or `no_key` (also for headers that
/// are not readable text). Internal: called by api_key_authenticate, which
/// turns codes into PT401/PT403. Never raises.
///
/// # Safety
/// Called by the executor for `_authenticate(text, text[])`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_keys_authenticate(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // the SQL declaration is (text, text[]): the types read below
    let headers = text_arg(fcinfo, 0).and_then(Result::ok);
    let required = text_array_arg(fcinfo, 1).unwrap_or_default();
    let code = authenticate(headers, &required);
    code.as_str().into_datum().expect("text datum")
}

fn authenticate(headers: Option<&str>, required: &[Option<&str>]) -> AuthOutcome {
    IDENTITY.with(|c| c.borrow_mut().take());
    let Some(token) = headers.and_then(token_from_headers_json) else {
        return AuthOutcome::NoKey;
    };
    let otp = headers.and_then(otp_from_headers_json);
    let (code, identity) =
        verify_with(Some(&token), required, None, otp.as_deref(), |code, key| {
            let identity = match (code, key) {
                (VerifyCode::Valid, Some(key)) => identity_of(key),
                _ => None,
            };
            (code, identity)
        });
    if let Some(identity) = identity {
        ensure_subxact_callback();
        IDENTITY.with(|c| *c.borrow_mut() = Some(identity));
    }
    AuthOutcome::Verified(code)
}

/// The identity a valid key grants this transaction, copied out of its row.
fn identity_of(key: &KeyRow) -> Option<Identity> {
    Some(Identity {
        lxid: current_lxid(),
        // SAFETY: a plain read of the current subtransaction's id; we run
        // inside a transaction (a SQL function call).
        subxact: unsafe { pg_sys::GetCurrentSubTransactionId() },
        key_id: key.key_id()?,
        owner_type: key.text(Col::OwnerType)?.to_owned(),
        owner_id: key.text(Col::OwnerId)?.to_owned(),
        scopes: key.with_scopes(|s, c| scopes::effective(s, c)),
    })
}

// The identity helpers below and has_scope are hot-path functions that
// SPEC §2 exempts from SECURITY DEFINER and SET search_path: they read
// backend memory only (no table, no SQL, no name looked up), so they need
// no privilege and no search_path. Declared without either, they cost a
// plain C call (tests/tests/integration/hot_path.rs checks their answers
// under a hostile search_path; security.rs lists the exempt functions).

/// The authenticated key's id in this transaction, else NULL.
#[pg_extern(stable, parallel_restricted)]
fn current_key_id() -> Option<pgrx::Uuid> {
    with_identity(|i| i.key_id)
}

/// The authenticated key's owner type in this transaction, else NULL.
#[pg_extern(stable, parallel_restricted)]
fn current_owner_type() -> Option<String> {
    with_identity(|i| i.owner_type.clone())
}

/// The authenticated key's owner id in this transaction, else NULL.
#[pg_extern(stable, parallel_restricted)]
fn current_owner_id() -> Option<String> {
    with_identity(|i| i.owner_id.clone())
}

/// The authenticated key's scopes (within its type's ceiling), else NULL.
#[pg_extern(stable, parallel_restricted)]
fn current_scopes() -> Option<Vec<String>> {
    with_identity(|i| i.scopes.clone())
}

v1_function!(pg_finfo_api_keys_has_scope);

/// `has_scope(scope text) → boolean`: whether the authenticated key holds
/// `scope`; false without one, for NULL, and for unreadable text. Never
/// raises.
///
/// # Safety
/// Called by the executor for `has_scope(text)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn api_keys_has_scope(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let held = match text_arg(fcinfo, 0) {
        Some(Ok(s)) => with_identity(|i| i.scopes.iter().any(|k| k == s)).unwrap_or(false),
        _ => false,
    };
    pg_sys::Datum::from(held)
}
