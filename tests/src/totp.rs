//! TOTP codes for the tests, written from RFC 6238 / RFC 4226 here rather
//! than taken from the extension's core, so the two check each other.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// RFC 4648 base32 (no padding) as `api_key_mfa_enroll` shows the secret.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("not base32: {s}")) as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The 6-digit code of `secret` for TOTP step `step` (30-second steps).
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let n = (u32::from(h[o]) & 0x7f) << 24
        | u32::from(h[o + 1]) << 16
        | u32::from(h[o + 2]) << 8
        | u32::from(h[o + 3]);
    format!("{:06}", n % 1_000_000)
}

/// The current TOTP step, after waiting out the last 3 seconds of a step
/// so that a test's codes stay in the step it computed them for.
pub fn current_step() -> u64 {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now % 30 < 27 {
            return now / 30;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
