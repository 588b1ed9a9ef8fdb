//! Token format (SPEC §3): `<prefix>_<32 random base62><6 base62 CRC32>`.
//!
//! The plaintext of a token lives only in a [`Token`] value, whose `Debug`
//! shows the masked form, so a stray `{:?}` in a log line cannot leak it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::base62;
use crate::error::RuleError;

pub const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
pub const SEGMENT_MAX: usize = 16;
/// The longest well-formed token: two 16-char segments, two underscores, body.
pub const MAX_TOKEN_LEN: usize = SEGMENT_MAX * 2 + 2 + BODY_LEN;
const MIN_TOKEN_LEN: usize = 1 + 1 + BODY_LEN;
pub const MASK_DOTS: &str = "••••";

/// A prefix segment: 1–16 chars of `[a-z0-9]` starting with a letter.
pub fn is_segment(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= SEGMENT_MAX
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Checks a segment given by a user (type prefix, environment segment, GUC).
pub fn check_segment(what: &str, s: &str) -> Result<(), RuleError> {
    if is_segment(s) {
        Ok(())
    } else {
        Err(RuleError::invalid(format!(
            "{what} must be 1-16 characters of [a-z0-9] starting with a letter"
        )))
    }
}

/// The prefix of a token: a head segment (type prefix or `api_keys.token_prefix`)
/// and, when the key has an environment, that environment's segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn new(head: &str, environment_segment: Option<&str>) -> Result<Prefix, RuleError> {
        check_segment("token prefix", head)?;
        match environment_segment {
            None => Ok(Prefix(head.to_owned())),
            Some(env) => {
                check_segment("environment prefix segment", env)?;
                Ok(Prefix(format!("{head}_{env}")))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// CRC32 (IEEE) of `data` as 6 base62 digits, most significant first.
pub fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    base62::encode_fixed::<CHECKSUM_LEN>(u64::from(crc32fast::hash(data)))
}

/// The plaintext of a freshly generated token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new token with 32 random base62 chars (~190 bits) from the OS CSPRNG.
    pub fn generate(prefix: &Prefix) -> Result<Token, getrandom::Error> {
        let mut random = [0u8; RANDOM_LEN];
        base62::fill_random(&mut random)?;
        Ok(Token::assemble(prefix, &random))
    }

    fn assemble(prefix: &Prefix, random: &[u8; RANDOM_LEN]) -> Token {
        let mut s = String::with_capacity(prefix.as_str().len() + 1 + BODY_LEN);
        s.push_str(prefix.as_str());
        s.push('_');
        // random is base62, hence ASCII
        s.push_str(std::str::from_utf8(random).expect("base62 is ASCII"));
        let sum = checksum(s.as_bytes());
        s.push_str(std::str::from_utf8(&sum).expect("base62 is ASCII"));
        Token(s)
    }

    /// The plaintext. Call only to hand the token to its owner, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    pub fn parsed(&self) -> ParsedToken<'_> {
        parse(&self.0).expect("a generated token is well-formed")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.parsed().masked())
    }
}

/// SHA-256 of the whole token: what is stored and looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A token that passed the shape and checksum checks, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    text: &'a str,
    prefix_len: usize,
    head_len: usize,
}

impl<'a> ParsedToken<'a> {
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Everything before the body's underscore, e.g. `sk_live`.
    pub fn prefix(&self) -> &'a str {
        &self.text[..self.prefix_len]
    }

    /// The first segment: type prefix or `api_keys.token_prefix`.
    pub fn head(&self) -> &'a str {
        &self.text[..self.head_len]
    }

    /// The environment segment, if the prefix has two segments.
    pub fn environment_segment(&self) -> Option<&'a str> {
        if self.head_len == self.prefix_len {
            None
        } else {
            Some(&self.text[self.head_len + 1..self.prefix_len])
        }
    }

    pub fn last4(&self) -> &'a str {
        &self.text[self.text.len() - 4..]
    }

    /// `<prefix>_••••<last 4 chars>`.
    pub fn masked(&self) -> String {
        mask_parts(self.prefix(), self.last4())
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.text)
    }
}

/// The masked form from stored parts (display prefix and last four chars).
pub fn mask_parts(prefix: &str, last4: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + MASK_DOTS.len() + last4.len());
    s.push_str(prefix);
    s.push('_');
    s.push_str(MASK_DOTS);
    s.push_str(last4);
    s
}

/// Whether `text` has the shape of a token (what secret scanners match),
/// regardless of its checksum.
pub fn has_shape(text: &str) -> bool {
    parse_shape(text).is_some()
}

/// Splits a token-shaped text into (prefix length, head length).
fn parse_shape(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    if b.len() < MIN_TOKEN_LEN || b.len() > MAX_TOKEN_LEN || !text.is_ascii() {
        return None;
    }
    let prefix_len = b.len() - BODY_LEN - 1;
    if b[prefix_len] != b'_' || !b[prefix_len + 1..].iter().all(|&c| base62::is_digit(c)) {
        return None;
    }
    let prefix = &text[..prefix_len];
    let head_len = match prefix.find('_') {
        None if is_segment(prefix) => prefix_len,
        Some(i) if is_segment(&prefix[..i]) && is_segment(&prefix[i + 1..]) => i,
        _ => return None,
    };
    Some((prefix_len, head_len))
}

/// Parses a token: `None` when the shape or the checksum is wrong. Never
/// panics and touches no storage, so it is safe on any input.
pub fn parse(text: &str) -> Option<ParsedToken<'_>> {
    let (prefix_len, head_len) = parse_shape(text)?;
    let b = text.as_bytes();
    let split = b.len() - CHECKSUM_LEN;
    if checksum(&b[..split]) != b[split..] {
        return None;
    }
    Some(ParsedToken {
        text,
        prefix_len,
        head_len,
    })
}

/// Masked form of any text: `None` unless it is a well-formed token.
pub fn mask(text: &str) -> Option<String> {
    parse(text).map(|t| t.masked())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(head: &str, env: Option<&str>) -> Prefix {
        Prefix::new(head, env).unwrap()
    }

    #[test]
    fn generated_token_has_prefix_underscore_and_38_char_body() {
        let t = Token::generate(&prefix("sk", Some("live"))).unwrap();
        let s = t.expose();
        assert!(s.starts_with("sk_live_"));
        assert_eq!(s.len(), "sk_live_".len() + BODY_LEN);
        let p = parse(s).unwrap();
        assert_eq!(p.prefix(), "sk_live");
        assert_eq!(p.head(), "sk");
        assert_eq!(p.environment_segment(), Some("live"));
    }

    #[test]
    fn single_segment_prefix_has_no_environment() {
        let t = Token::generate(&prefix("ak", None)).unwrap();
        let p = t.parsed();
        assert_eq!(p.prefix(), "ak");
        assert_eq!(p.environment_segment(), None);
    }

    #[test]
    fn checksum_is_crc32_of_everything_before_it() {
        let random = *b"0123456789abcdefghijABCDEFGHIJxy";
        let t = Token::assemble(&prefix("ak", None), &random);
        let s = t.expose();
        let crc =
            crc32fast::hash(format!("ak_{}", std::str::from_utf8(&random).unwrap()).as_bytes());
        assert_eq!(
            &s[s.len() - 6..],
            std::str::from_utf8(&base62::encode_fixed::<6>(crc as u64)).unwrap()
        );
    }

    #[test]
    fn changed_checksum_is_malformed() {
        let t = Token::generate(&prefix("ak", None)).unwrap();
        let mut s = t.expose().to_owned();
        let last = s.pop().unwrap();
        s.push(if last == 'A' { 'B' } else { 'A' });
        assert!(parse(&s).is_none());
    }

    #[test]
    fn mask_shows_prefix_and_last_four() {
        let t = Token::generate(&prefix("sk", Some("live"))).unwrap();
        let m = t.parsed().masked();
        assert_eq!(
            m,
            format!("sk_live_••••{}", &t.expose()[t.expose().len() - 4..])
        );
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    #[test]
    fn rejects_bad_shapes() {
        for s in [
            "",
            "ak",
            "ak_",
            "AK_0123456789012345678901234567890123456",
            "_ak_01234567890123456789012345678901234567",
            "a_b_c_01234567890123456789012345678901234567",
            "1k_01234567890123456789012345678901234567",
            "ak_0123456789012345678901234567890123456!",
            "ak__01234567890123456789012345678901234567",
        ] {
            assert!(parse(s).is_none(), "{s:?} parsed");
        }
    }

    #[test]
    fn prefix_segments_are_validated() {
        assert!(Prefix::new("", None).is_err());
        assert!(Prefix::new("Sk", None).is_err());
        assert!(Prefix::new("9k", None).is_err());
        assert!(Prefix::new("abcdefghijklmnopq", None).is_err());
        assert!(Prefix::new("abcdefghijklmnop", Some("live")).is_ok());
        assert!(Prefix::new("sk", Some("li_ve")).is_err());
    }

    #[test]
    fn hash_is_sha256_of_the_whole_token() {
        let h = TokenHash::of("abc");
        assert_eq!(
            h.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "sha256('abc') starts with ba7816bf"
        );
    }
}
