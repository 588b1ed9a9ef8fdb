//! Self-serve dashboard sessions (SPEC §9): the single-use link secret, the
//! cookie session secret, their hashes at rest, the CSRF token bound to a
//! session, link and session expiry, and the return link a host application
//! may hand over.
//!
//! Times are microseconds on any fixed epoch (the extension passes
//! PostgreSQL's); only differences matter here.

use sha2::{Digest, Sha256};

use crate::base62;
use crate::error::RuleError;
use crate::expiry::truncate;

/// Length of a link or session secret: 43 base62 characters, > 256 bits.
pub const SECRET_LEN: usize = 43;
/// A link lives this long unless the host application asks otherwise.
pub const LINK_TTL_DEFAULT_SECS: i64 = 300;
/// The longest a link may live.
pub const LINK_TTL_MAX_SECS: i64 = 3600;
/// A session ends this long after the link was exchanged, however busy.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// A session ends after this long without a request.
pub const SESSION_IDLE_SECS: i64 = 3600;
/// Longest accepted `return_url`, in bytes.
pub const MAX_RETURN_URL_LEN: usize = 2048;
/// Longest accepted `return_text`, in characters.
pub const MAX_RETURN_TEXT_LEN: usize = 100;

const MICROS: i64 = 1_000_000;

/// A link or session secret. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// SHA-256 of a secret: the only form stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl Secret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let mut out = [0u8; SECRET_LEN];
        base62::fill_random(&mut out)?;
        // base62 digits are ASCII
        Ok(Secret(out.iter().map(|&b| b as char).collect()))
    }

    /// A secret as a client sent it back: exactly [`SECRET_LEN`] base62
    /// characters, else `None` (refused without a database round trip).
    pub fn parse(text: &str) -> Option<Secret> {
        let ok = text.len() == SECRET_LEN && text.bytes().all(base62::is_digit);
        ok.then(|| Secret(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The CSRF token of the session this secret opens: derived, so it needs
    /// no storage, and unguessable without the cookie.
    pub fn csrf_token(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"api_keys dashboard csrf\0");
        h.update(self.0.as_bytes());
        hex(&h.finalize())
    }

    /// Whether `sent` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        let expected = self.csrf_token();
        expected.len() == sent.len()
            && expected
                .bytes()
                .zip(sent.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]])
        .map(char::from)
        .collect()
}

/// How long a link lives: `ttl_seconds` if given, in 1..=3600, else 300.
pub fn link_ttl(ttl_seconds: Option<i64>) -> Result<i64, RuleError> {
    match ttl_seconds {
        None => Ok(LINK_TTL_DEFAULT_SECS),
        Some(t) if (1..=LINK_TTL_MAX_SECS).contains(&t) => Ok(t),
        Some(t) => Err(RuleError::invalid(format!(
            "ttl_seconds must be between 1 and {LINK_TTL_MAX_SECS}, got {t}"
        ))),
    }
}

/// When a link made at `now` with `ttl_seconds` stops working.
pub fn link_expires_at(now: i64, ttl_seconds: Option<i64>) -> Result<i64, RuleError> {
    Ok(now + link_ttl(ttl_seconds)? * MICROS)
}

/// When a session exchanged at `started_at` and last used at `last_seen_at`
/// ends: 12 h after it started or 1 h after its last request, whichever
/// comes first.
pub fn session_expires_at(started_at: i64, last_seen_at: i64) -> i64 {
    let absolute = started_at.saturating_add(SESSION_LIFETIME_SECS * MICROS);
    let idle = last_seen_at.saturating_add(SESSION_IDLE_SECS * MICROS);
    absolute.min(idle)
}

/// The return link a host application hands over: `return_url` must be an
/// absolute `http` or `https` URL with a host (no `javascript:`, `data:`,
/// scheme-relative `//…` or relative links), without whitespace or control
/// characters, at most 2048 bytes; `return_text` at most 100 visible
/// characters, and only with a `return_url`.
pub fn check_return(return_url: Option<&str>, return_text: Option<&str>) -> Result<(), RuleError> {
    if let Some(url) = return_url {
        check_return_url(url)?;
    }
    if let Some(text) = return_text {
        if return_url.is_none() {
            return Err(RuleError::invalid("return_text needs a return_url"));
        }
        let n = text.chars().count();
        if n > MAX_RETURN_TEXT_LEN {
            return Err(RuleError::invalid(format!(
                "return_text is at most {MAX_RETURN_TEXT_LEN} characters, got {n}"
            )));
        }
        if text.trim().is_empty() {
            return Err(RuleError::invalid("return_text must not be blank"));
        }
        crate::bounds::check_visible("return_text", text)?;
    }
    Ok(())
}

fn check_return_url(url: &str) -> Result<(), RuleError> {
    if url.len() > MAX_RETURN_URL_LEN {
        return Err(RuleError::invalid(format!(
            "return_url is at most {MAX_RETURN_URL_LEN} bytes, got {}",
            url.len()
        )));
    }
    let bad = || {
        RuleError::invalid(format!(
            "return_url must be an absolute http:// or https:// URL, got {:?}",
            truncate(url, 40)
        ))
    };
    if url
        .chars()
        .any(|c| c.is_whitespace() || crate::bounds::is_forbidden_char(c) || c == '\\')
    {
        return Err(bad());
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(bad());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || authority.contains('@') {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert_eq!(Secret::parse(a.expose()), Some(a.clone()));
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn malformed_secrets_do_not_parse() {
        let good = Secret::generate().unwrap();
        for bad in [
            "",
            "short",
            &good.expose()[1..],
            &format!("{}x", good.expose()),
            &format!("{}-", &good.expose()[1..]),
            &format!("{}é", &good.expose()[2..]),
            &format!("{}\0", &good.expose()[1..]),
        ] {
            assert_eq!(Secret::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn csrf_token_is_bound_to_its_session() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert!(a.csrf_matches(&a.csrf_token()));
        assert!(!a.csrf_matches(&b.csrf_token()));
        assert!(!a.csrf_matches(""));
        assert!(!a.csrf_matches(&a.csrf_token()[1..]));
        assert!(!a.csrf_token().contains(a.expose()));
        assert_eq!(a.csrf_token().len(), 64);
    }

    #[test]
    fn link_ttl_defaults_to_300_and_is_bounded() {
        assert_eq!(link_ttl(None), Ok(300));
        assert_eq!(link_ttl(Some(1)), Ok(1));
        assert_eq!(link_ttl(Some(3600)), Ok(3600));
        for bad in [0, -1, 3601, i64::MAX, i64::MIN] {
            assert!(link_ttl(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(link_expires_at(10, Some(2)), Ok(10 + 2 * MICROS));
    }

    #[test]
    fn a_session_ends_at_idle_or_lifetime_whichever_first() {
        let h = 3600 * MICROS;
        assert_eq!(session_expires_at(0, 0), h);
        assert_eq!(session_expires_at(0, 5 * h), 6 * h);
        assert_eq!(session_expires_at(0, 11 * h + 1), 12 * h);
        assert_eq!(session_expires_at(0, 20 * h), 12 * h);
        assert_eq!(session_expires_at(i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn return_url_is_http_or_https_only() {
        for ok in [
            "https://example.com",
            "http://localhost:3000/account?tab=keys#x",
            "HTTPS://Example.com/",
        ] {
            assert_eq!(check_return(Some(ok), Some("Back")), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "/relative",
            "https://",
            "https:///path",
            "https://user@evil.example",
            "https://exa mple.com",
            "https://example.com/\u{0007}",
            "https:\\\\evil.example",
            "ftp://example.com",
            "",
        ] {
            assert!(check_return(Some(bad), None).is_err(), "{bad:?}");
        }
        assert!(check_return(Some(&format!("https://e.com/{}", "a".repeat(2100))), None).is_err());
    }

    #[test]
    fn return_text_is_short_visible_and_needs_a_url() {
        let url = Some("https://example.com");
        assert!(check_return(None, Some("Back")).is_err());
        assert!(check_return(url, Some("")).is_err());
        assert!(check_return(url, Some("  ")).is_err());
        assert!(check_return(url, Some("Back\u{1b}[31m")).is_err());
        assert!(check_return(url, Some("a\u{202E}b")).is_err());
        assert!(check_return(url, Some(&"x".repeat(101))).is_err());
        assert_eq!(check_return(url, Some("Back to <Acme> ✓")), Ok(()));
        assert_eq!(check_return(None, None), Ok(()));
    }

    proptest! {
        #[test]
        fn any_text_either_parses_as_a_secret_or_not_without_panic(s in ".{0,60}") {
            if let Some(secret) = Secret::parse(&s) {
                prop_assert_eq!(secret.expose(), s.as_str());
            }
        }

        #[test]
        fn check_return_never_panics(u in ".{0,80}", t in proptest::option::of(".{0,120}")) {
            let _ = check_return(Some(&u), t.as_deref());
        }
    }
}
