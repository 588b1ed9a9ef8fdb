//! Token arithmetic done independently of `api-keys-core`, straight from SPEC §3.

use rand::Rng;
use regex::Regex;

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The secret-scanner pattern of SPEC §3.
pub const SCANNER_PATTERN: &str = r"\b[a-z][a-z0-9]{0,15}(_[a-z][a-z0-9]{0,15})?_[0-9A-Za-z]{38}\b";

pub fn scanner_regex() -> Regex {
    Regex::new(SCANNER_PATTERN).expect("scanner pattern compiles")
}

/// CRC32 (IEEE) of `text` as 6 base62 digits, most significant first.
pub fn checksum(text: &str) -> String {
    let mut n = u64::from(crc32fast::hash(text.as_bytes()));
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

/// `count` random base62 characters.
pub fn random_base62(count: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..count)
        .map(|_| char::from(BASE62[rng.gen_range(0..62)]))
        .collect()
}

/// Appends the checksum to `prefix_and_random` (e.g. `ak_<32 chars>`).
pub fn with_checksum(prefix_and_random: &str) -> String {
    format!("{prefix_and_random}{}", checksum(prefix_and_random))
}

/// A well-formed token (valid shape and checksum) that was never issued.
pub fn forge_token(prefix: &str) -> String {
    with_checksum(&format!("{prefix}_{}", random_base62(32)))
}

/// Whether `token`'s last 6 characters are the checksum of the rest.
pub fn checksum_ok(token: &str) -> bool {
    token.len() > 6 && token.is_ascii() && {
        let (head, tail) = token.split_at(token.len() - 6);
        checksum(head) == tail
    }
}

/// The prefix of a token: everything before the 38-character body and its `_`.
pub fn prefix_of(token: &str) -> &str {
    &token[..token.len() - 39]
}

/// The 38-character body (random part + checksum).
pub fn body_of(token: &str) -> &str {
    &token[token.len() - 38..]
}

/// The masked form of SPEC §3: `<prefix>_••••<last 4>`.
pub fn expected_mask(token: &str) -> String {
    format!("{}_••••{}", prefix_of(token), &token[token.len() - 4..])
}

/// `token` with the ASCII character at `index` replaced by a different
/// character of the same kind (digit, lower, upper), or `'a'` for `_`.
pub fn mutate_at(token: &str, index: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let old = bytes[index];
    bytes[index] = match old {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => old + 1,
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        _ => b'a',
    };
    String::from_utf8(bytes).expect("tokens are ASCII")
}
