//! Per-key MFA (SPEC §5 "Lifecycle (0.2.0)"): TOTP per RFC 6238 (HMAC-SHA-1,
//! 6 digits, 30-second steps, the current step ±1), its secret and
//! `otpauth://` URI, and the replay rule.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::error::{Reason, RuleError};
use crate::verify::VerifyCode;

pub const DIGITS: u32 = 6;
pub const STEP_SECONDS: u64 = 30;
/// 160 bits, RFC 4226's recommended secret length for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// RFC 4226 HOTP with `digits` digits: HMAC-SHA-1 of the counter, dynamic
/// truncation, modulo 10^digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The TOTP time step of a Unix time.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The code for a Unix time, zero-padded.
pub fn totp(secret: &[u8], unix_seconds: u64, digits: u32) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_of(unix_seconds), digits),
        width = digits as usize
    )
}

/// The step whose code `code` is, among the current step ±1; `None` for
/// anything else (wrong, too old or too new, not exactly 6 ASCII digits).
/// Steps are compared in full, without early exit on the first digit.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = step_of(unix_seconds);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        if hotp(secret, step, DIGITS) == given && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Replay refusal: a code is accepted once per owner, and never one of a
/// step at or before the last accepted one (RFC 6238 §5.2).
pub fn is_replay(step: u64, last_accepted: Option<u64>) -> bool {
    last_accepted.is_some_and(|last| step <= last)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            let idx = (v >> (35 - 5 * i)) & 0x1f;
            out.push(char::from(BASE32[idx as usize]));
        }
    }
    out
}

/// A fresh secret from the OS CSPRNG.
pub fn new_secret() -> Result<[u8; SECRET_BYTES], getrandom::Error> {
    let mut s = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut s)?;
    Ok(s)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `otpauth://totp/…` URI an authenticator app scans (Key URI Format):
/// label `issuer:account`, the secret, issuer, SHA1, 6 digits, 30 s.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent_encode(issuer),
        percent_encode(account),
        base32(secret),
        percent_encode(issuer)
    )
}

/// Issuer and account of an enrollment: 1–255 characters, no control or
/// bidi-override characters; the account defaults to `owner_type/owner_id`.
pub fn check_label(what: &str, v: &str) -> Result<(), RuleError> {
    crate::bounds::check_label(what, Some(v))?;
    crate::bounds::check_visible(what, v)
}

/// A key may get the MFA flag only while its owner's MFA is enabled.
pub fn check_key_flag(wanted: bool, owner_enabled: bool, owner: &str) -> Result<(), RuleError> {
    if wanted && !owner_enabled {
        return Err(RuleError::new(
            Reason::MfaNotEnabled,
            format!(
                "owner {} has not enabled MFA (api_key_mfa_enroll, then api_key_mfa_confirm)",
                crate::expiry::truncate(owner, 100)
            ),
        ));
    }
    Ok(())
}

/// Whether any required scope is a sensitive one (`mfa => true` at scope
/// definition). NULL required scopes never match.
pub fn requires_otp<R: AsRef<str>, S: AsRef<str>>(required: &[Option<R>], sensitive: &[S]) -> bool {
    required
        .iter()
        .flatten()
        .any(|r| sensitive.iter().any(|s| s.as_ref() == r.as_ref()))
}

/// The verify code after the scope check passed (SPEC §5 order: after
/// `insufficient_scope`): an MFA key asked for a sensitive scope needs a
/// code (`otp_required`), and a wrong, stale or replayed one is
/// `otp_invalid`. `accept` checks the code (and records its use); it runs
/// only when a code is needed and given.
pub fn gate(
    code: VerifyCode,
    key_mfa: bool,
    sensitive_required: impl FnOnce() -> bool,
    otp: Option<&str>,
    accept: impl FnOnce(&str) -> bool,
) -> VerifyCode {
    if code != VerifyCode::Valid || !key_mfa || !sensitive_required() {
        return code;
    }
    match otp {
        None => VerifyCode::OtpRequired,
        Some(otp) if accept(otp) => VerifyCode::Valid,
        Some(_) => VerifyCode::OtpInvalid,
    }
}

/// Wrong codes an owner may present within two steps before every code,
/// right ones included, is refused until the window has passed: guessing
/// one of the 3 accepted codes in 10^6 at verify's speed would otherwise
/// take seconds.
pub const MAX_FAILURES: u32 = 10;

/// One owner's last accepted step and recent failures, keyed by a digest
/// of (database, owner, secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySlot {
    pub owner: [u8; 16],
    pub step: u64,
    pub used: bool,
    pub failures: u32,
    /// The step in which the current count of failures began.
    pub failed_since: u64,
}

impl ReplaySlot {
    pub const EMPTY: ReplaySlot = ReplaySlot {
        owner: [0; 16],
        step: 0,
        used: false,
        failures: 0,
        failed_since: 0,
    };

    /// Nothing in it matters any more: its accepted step and failures are
    /// older than the acceptance window.
    fn stale(&self, now_step: u64) -> bool {
        !self.used
            || (self.step.saturating_add(1) < now_step
                && self.failed_since.saturating_add(1) < now_step)
    }
}

/// Why a code was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRefusal {
    /// A step at or before the owner's last accepted one.
    Replay,
    /// Every slot holds an owner whose last step is still within the
    /// window: refusing (closed) is safer than forgetting one.
    Full,
}

/// The replay memory (in shared memory, so that read-only transactions and
/// standbys share it): per owner, the last accepted step. A slot whose step
/// is older than the acceptance window (now − 1) can be reused: no code of
/// that step or earlier is accepted anyway.
pub fn record_step(
    slots: &mut [ReplaySlot],
    owner: [u8; 16],
    step: u64,
    now_step: u64,
) -> Result<(), ReplayRefusal> {
    if let Some(slot) = slots.iter_mut().find(|s| s.used && s.owner == owner) {
        if is_replay(step, Some(slot.step)) {
            return Err(ReplayRefusal::Replay);
        }
        slot.step = step;
        return Ok(());
    }
    let free = slots
        .iter_mut()
        .find(|s| s.stale(now_step))
        .ok_or(ReplayRefusal::Full)?;
    *free = ReplaySlot {
        owner,
        step,
        used: true,
        ..ReplaySlot::EMPTY
    };
    Ok(())
}

/// Counts a wrong code of `owner` (a full table drops the count: the
/// caller refuses codes then anyway, see [`record_step`]).
pub fn record_failure(slots: &mut [ReplaySlot], owner: [u8; 16], now_step: u64) {
    let slot = match slots.iter().position(|s| s.used && s.owner == owner) {
        Some(i) => &mut slots[i],
        None => match slots.iter_mut().find(|s| s.stale(now_step)) {
            Some(free) => {
                *free = ReplaySlot {
                    owner,
                    used: true,
                    failed_since: now_step,
                    ..ReplaySlot::EMPTY
                };
                free
            }
            None => return,
        },
    };
    if slot.failed_since.saturating_add(1) < now_step {
        slot.failures = 0;
        slot.failed_since = now_step;
    }
    slot.failures = slot.failures.saturating_add(1);
}

/// Whether `owner` presented [`MAX_FAILURES`] wrong codes in the current
/// window (this step or the one before): then every code is refused.
pub fn locked_out(slots: &[ReplaySlot], owner: [u8; 16], now_step: u64) -> bool {
    slots.iter().any(|s| {
        s.used
            && s.owner == owner
            && s.failures >= MAX_FAILURES
            && s.failed_since.saturating_add(1) >= now_step
    })
}

/// RFC 4648 base32 decoding (no padding, either case); `None` for other
/// characters.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        let v = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())? as u64;
        acc = acc << 5 | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8] = b"12345678901234567890";

    // RFC 6238 Appendix B, the SHA-1 rows (8 digits).
    #[test]
    fn rfc_6238_sha1_test_vectors() {
        for (t, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp(SEED, t, 8), code, "T = {t}");
            // the 6-digit code is the same value's last 6 digits
            assert_eq!(totp(SEED, t, 6), code[2..], "T = {t}");
        }
    }

    // RFC 4226 Appendix D (HOTP, 6 digits).
    #[test]
    fn rfc_4226_hotp_test_vectors() {
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(hotp(SEED, counter as u64, 6), *code, "counter {counter}");
        }
    }

    #[test]
    fn a_step_ago_and_the_next_step_are_accepted_two_away_refused() {
        let t = 1_234_567_890u64;
        let now = step_of(t);
        let at = |step: u64| totp(SEED, step * STEP_SECONDS, 6);
        assert_eq!(matching_step(SEED, &at(now), t), Some(now));
        assert_eq!(matching_step(SEED, &at(now - 1), t), Some(now - 1));
        assert_eq!(matching_step(SEED, &at(now + 1), t), Some(now + 1));
        assert_eq!(matching_step(SEED, &at(now - 2), t), None);
        assert_eq!(matching_step(SEED, &at(now + 2), t), None);
    }

    #[test]
    fn only_six_ascii_digits_are_codes() {
        let t = 1_234_567_890u64;
        let good = totp(SEED, t, 6);
        for bad in [
            "".to_owned(),
            format!("{good}0"),
            good[1..].to_owned(),
            format!(" {}", &good[1..]),
            "12345a".to_owned(),
            "１２３４５６".to_owned(),
        ] {
            assert_eq!(matching_step(SEED, &bad, t), None, "{bad:?}");
        }
    }

    #[test]
    fn a_step_is_accepted_once() {
        assert!(!is_replay(10, None));
        assert!(!is_replay(11, Some(10)));
        assert!(is_replay(10, Some(10)));
        assert!(is_replay(9, Some(10)));
    }

    #[test]
    fn the_gate_asks_for_a_code_only_for_mfa_keys_and_sensitive_scopes() {
        let v = VerifyCode::Valid;
        let never = |_: &str| -> bool { panic!("no code is checked") };
        assert_eq!(gate(v, false, || true, None, never), v);
        assert_eq!(gate(v, true, || false, None, never), v);
        assert_eq!(
            gate(VerifyCode::InsufficientScope, true, || true, None, never),
            VerifyCode::InsufficientScope
        );
        assert_eq!(gate(v, true, || true, None, never), VerifyCode::OtpRequired);
        assert_eq!(
            gate(v, true, || true, Some("1"), |_| false),
            VerifyCode::OtpInvalid
        );
        assert_eq!(gate(v, true, || true, Some("1"), |_| true), v);
        assert!(requires_otp(&[Some("a"), Some("admin")], &["admin"]));
        assert!(!requires_otp(&[Some("a"), None], &["admin"]));
        assert!(!requires_otp::<&str, &str>(&[], &["admin"]));
    }

    #[test]
    fn the_key_flag_needs_the_owners_mfa() {
        assert!(check_key_flag(false, false, "user/1").is_ok());
        assert!(check_key_flag(true, true, "user/1").is_ok());
        assert_eq!(
            check_key_flag(true, false, "user/1").unwrap_err().reason,
            Reason::MfaNotEnabled
        );
    }

    #[test]
    fn the_replay_memory_accepts_a_step_once_per_owner_and_fails_closed_when_full() {
        let mut slots = [ReplaySlot::EMPTY; 2];
        let (a, b, c) = ([1; 16], [2; 16], [3; 16]);
        assert_eq!(record_step(&mut slots, a, 100, 100), Ok(()));
        assert_eq!(
            record_step(&mut slots, a, 100, 100),
            Err(ReplayRefusal::Replay)
        );
        assert_eq!(
            record_step(&mut slots, a, 99, 100),
            Err(ReplayRefusal::Replay)
        );
        assert_eq!(
            record_step(&mut slots, b, 100, 100),
            Ok(()),
            "owners are apart"
        );
        assert_eq!(record_step(&mut slots, a, 101, 100), Ok(()));
        assert_eq!(
            record_step(&mut slots, c, 100, 100),
            Err(ReplayRefusal::Full)
        );
        // once b's step is out of the window its slot is reused
        assert_eq!(record_step(&mut slots, c, 102, 102), Ok(()));
    }

    #[test]
    fn ten_wrong_codes_lock_an_owner_out_for_the_window() {
        let mut slots = [ReplaySlot::EMPTY; 4];
        let (a, b) = ([1; 16], [2; 16]);
        for _ in 0..MAX_FAILURES - 1 {
            record_failure(&mut slots, a, 100);
        }
        assert!(!locked_out(&slots, a, 100));
        record_failure(&mut slots, a, 101);
        assert!(locked_out(&slots, a, 101));
        assert!(!locked_out(&slots, b, 101), "other owners are not affected");
        assert!(!locked_out(&slots, a, 102), "the window passes");
        record_failure(&mut slots, a, 102);
        assert!(!locked_out(&slots, a, 102), "and the count starts again");
        // failures do not make an accepted step a replay, nor the reverse
        assert_eq!(record_step(&mut slots, a, 102, 102), Ok(()));
        assert_eq!(
            record_step(&mut slots, a, 102, 102),
            Err(ReplayRefusal::Replay)
        );
    }

    #[test]
    fn base32_round_trips() {
        for bytes in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            SEED,
        ] {
            assert_eq!(base32_decode(&base32(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(base32_decode("mzxw6ytboi").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base32_decode("MZ1"), None);
    }

    #[test]
    fn base32_and_the_otpauth_uri() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            otpauth_uri("api keys", "user/1", SEED),
            "otpauth://totp/api%20keys:user%2F1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=api%20keys&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(new_secret().unwrap().len(), 20);
    }
}
