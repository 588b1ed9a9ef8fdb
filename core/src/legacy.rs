//! Migration of keys whose plaintext is unknown (SPEC §5 "Lifecycle
//! (0.2.0)"): foreign token prefixes, the legacy verify path and the
//! decision for `api_key_import`.

use crate::bounds;
use crate::error::{Reason, RuleError};
use crate::expiry::truncate;
use crate::issue::{self, IssueFacts};

/// The longest legacy prefix; the longest legacy token verify looks up.
pub const MAX_PREFIX_LEN: usize = 64;
pub const MAX_LEGACY_TOKEN_LEN: usize = 512;
/// Display parts of an imported key.
pub const MAX_DISPLAY_PREFIX_LEN: usize = 64;
pub const MAX_LAST4_LEN: usize = 8;

fn printable(what: &str, v: &str, max: usize) -> Result<(), RuleError> {
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(RuleError::invalid(format!(
            "{what} must be 1-{max} characters, got {n}"
        )));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RuleError::invalid(format!(
            "{what} must be printable ASCII without spaces, got {:?}",
            truncate(v, 40)
        )));
    }
    Ok(())
}

/// A legacy prefix to register: 1–64 printable ASCII characters without
/// spaces (tokens are matched on their first bytes, exactly).
pub fn check_prefix(prefix: Option<&str>) -> Result<&str, RuleError> {
    let p = prefix.ok_or_else(|| RuleError::invalid("prefix must not be NULL"))?;
    printable("legacy prefix", p, MAX_PREFIX_LEN)?;
    Ok(p)
}

/// Whether verify looks `token` (which does not parse as ours) up by its
/// SHA-256: it starts with a registered prefix, has something after it and
/// is not longer than [`MAX_LEGACY_TOKEN_LEN`].
pub fn is_legacy_token<P: AsRef<str>>(token: &str, prefixes: &[P]) -> bool {
    token.len() <= MAX_LEGACY_TOKEN_LEN
        && prefixes.iter().any(|p| {
            let p = p.as_ref();
            !p.is_empty() && token.len() > p.len() && token.starts_with(p)
        })
}

/// The bytes of a hex digest as the HTTP API takes `token_sha256` (either
/// case); `None` unless it is an even number of hex digits. Its length is
/// [`plan_import`]'s to judge.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// The arguments of `api_key_import` that the rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportRequest<'a> {
    pub owner_type: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    /// Length of `token_sha256` in bytes (`None` = NULL).
    pub digest_bytes: Option<usize>,
    pub display_prefix: Option<&'a str>,
    pub last4: Option<&'a str>,
    pub name: Option<&'a str>,
    /// `None` = the owner policy's default scopes.
    pub scopes: Option<&'a [Option<String>]>,
    pub expires_at: Option<i64>,
    pub created_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub requests_count: Option<i64>,
    pub metadata_type: &'a str,
    pub metadata_bytes: usize,
}

/// What to store for an imported key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    pub name: Option<String>,
    pub scopes: Vec<String>,
    /// Without trailing `_` (the masked form adds one).
    pub display_prefix: String,
    pub created_at: i64,
}

/// The decision for `api_key_import`: issue's rules for owner, name,
/// metadata, type, environment and scopes (limits do not apply), plus the
/// digest (SHA-256: 32 bytes; a bcrypt hash is 60 characters and cannot be
/// imported), the display parts, and times: expiry and revocation may be
/// past, created_at (default now) not in the future; a non-revocable type
/// takes no expiry and no revocation; a public type cannot be imported (its
/// plaintext is meant to be shown and is unknown).
pub fn plan_import(
    req: &ImportRequest<'_>,
    facts: &IssueFacts<'_>,
) -> Result<ImportPlan, RuleError> {
    bounds::check_owner(req.owner_type, req.owner_id)?;
    match req.digest_bytes {
        Some(32) => {}
        None => return Err(RuleError::invalid("token_sha256 must not be NULL")),
        Some(n) => {
            return Err(RuleError::invalid(format!(
                "token_sha256 must be the 32-byte SHA-256 of the token, got {n} bytes \
                 (bcrypt and other slow hashes cannot be imported)"
            )))
        }
    }
    let display = req
        .display_prefix
        .ok_or_else(|| RuleError::invalid("display_prefix must not be NULL"))?;
    let display = display.trim_end_matches('_');
    printable("display_prefix", display, MAX_DISPLAY_PREFIX_LEN)?;
    let last4 = req
        .last4
        .ok_or_else(|| RuleError::invalid("last4 must not be NULL"))?;
    printable("last4", last4, MAX_LAST4_LEN)?;
    let name = issue::key_name(req.name)?;
    bounds::check_metadata(req.metadata_type, req.metadata_bytes)?;
    issue::require_name(
        facts.require_name,
        name.as_deref(),
        req.owner_type.unwrap_or(""),
    )?;
    let key_type = issue::resolve_type(facts.key_type)?;
    facts.environment.check()?;
    if let Some(t) = key_type {
        if t.public {
            return Err(RuleError::invalid(format!(
                "keys of the public type {} keep their plaintext and cannot be imported",
                t.name
            )));
        }
        if !t.revocable && req.expires_at.is_some() {
            return Err(RuleError::new(
                Reason::InvalidExpiry,
                format!("keys of the non-revocable type {} cannot expire", t.name),
            ));
        }
        if !t.revocable && req.revoked_at.is_some() {
            return Err(RuleError::invalid(format!(
                "keys of the non-revocable type {} cannot be revoked",
                t.name
            )));
        }
    }
    let created_at = req.created_at.unwrap_or(facts.now);
    if created_at > facts.now {
        return Err(RuleError::invalid("created_at must not be in the future"));
    }
    if req.requests_count.is_some_and(|n| n < 0) {
        return Err(RuleError::invalid("requests_count must be >= 0"));
    }
    let scopes = issue::new_key_scopes(req.scopes, facts, key_type.as_ref())?;
    Ok(ImportPlan {
        name,
        scopes,
        display_prefix: display.to_owned(),
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{EnvironmentFacts, KeyTypeFacts};
    use crate::scopes::RegisteredScope;

    const NOW: i64 = 1_000_000_000;

    fn facts<'a>() -> IssueFacts<'a> {
        IssueFacts {
            require_name: false,
            default_scopes: None,
            key_type: None,
            environment: EnvironmentFacts {
                wanted: None,
                found: false,
                any_defined: false,
            },
            registry: &[],
            now: NOW,
        }
    }

    fn request<'a>() -> ImportRequest<'a> {
        ImportRequest {
            owner_type: Some("user"),
            owner_id: Some("1"),
            digest_bytes: Some(32),
            display_prefix: Some("rubygems_"),
            last4: Some("a1b2"),
            metadata_type: "object",
            metadata_bytes: 2,
            ..ImportRequest::default()
        }
    }

    #[test]
    fn hex_digests_decode_in_either_case() {
        assert_eq!(decode_hex("00ffA1"), Some(vec![0, 255, 0xa1]));
        assert_eq!(decode_hex(""), Some(vec![]));
        for bad in ["0", "0g", "zz", " 00", "é0"] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_printable_ascii_of_bounded_length() {
        assert_eq!(check_prefix(Some("rubygems_")), Ok("rubygems_"));
        assert_eq!(check_prefix(Some("ak_")), Ok("ak_"));
        for bad in ["", " x", "a b", "é_", "x\n", &"p".repeat(65)] {
            assert!(check_prefix(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(check_prefix(None).is_err());
    }

    #[test]
    fn legacy_tokens_start_with_a_registered_prefix_and_have_more() {
        let p = ["rubygems_", "ak_"];
        assert!(is_legacy_token("rubygems_0123abcd", &p));
        assert!(is_legacy_token("ak_x", &p));
        assert!(!is_legacy_token("rubygems_", &p));
        assert!(!is_legacy_token("sk_live_x", &p));
        assert!(!is_legacy_token("RUBYGEMS_x", &p));
        assert!(!is_legacy_token(&format!("ak_{}", "x".repeat(600)), &p));
        assert!(!is_legacy_token::<&str>("ak_x", &[]));
        assert!(!is_legacy_token("x", &[""]));
    }

    #[test]
    fn an_import_keeps_the_display_parts_and_past_times() {
        let mut r = request();
        r.expires_at = Some(NOW - 10);
        r.revoked_at = Some(NOW - 5);
        r.created_at = Some(NOW - 100);
        let scopes = vec![Some("read".to_owned()), Some(" read ".to_owned())];
        r.scopes = Some(&scopes);
        let p = plan_import(&r, &facts()).unwrap();
        assert_eq!(p.display_prefix, "rubygems");
        assert_eq!(p.created_at, NOW - 100);
        assert_eq!(p.scopes, ["read"]);
        assert_eq!(plan_import(&request(), &facts()).unwrap().created_at, NOW);
    }

    #[test]
    fn only_sha256_digests_can_be_imported() {
        for n in [None, Some(0), Some(31), Some(60), Some(64)] {
            let mut r = request();
            r.digest_bytes = n;
            assert_eq!(
                plan_import(&r, &facts()).unwrap_err().reason,
                Reason::InvalidArgument,
                "{n:?}"
            );
        }
    }

    #[test]
    fn bad_display_parts_times_and_counts_are_refused() {
        type Change = Box<dyn Fn(&mut ImportRequest)>;
        let cases: Vec<Change> = vec![
            Box::new(|r| r.display_prefix = None),
            Box::new(|r| r.display_prefix = Some("___")),
            Box::new(|r| r.display_prefix = Some("a b")),
            Box::new(|r| r.last4 = Some("")),
            Box::new(|r| r.last4 = Some("123456789")),
            Box::new(|r| r.last4 = None),
            Box::new(|r| r.created_at = Some(NOW + 1)),
            Box::new(|r| r.requests_count = Some(-1)),
            Box::new(|r| r.owner_id = None),
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut r = request();
            change(&mut r);
            assert_eq!(
                plan_import(&r, &facts()).unwrap_err().reason,
                Reason::InvalidArgument,
                "case {i}"
            );
        }
    }

    #[test]
    fn scopes_and_types_follow_issue_rules() {
        let reg = [RegisteredScope {
            name: "read".into(),
            exclusive: false,
        }];
        let mut f = facts();
        f.registry = &reg;
        let mut r = request();
        let unknown = vec![Some("write".to_owned())];
        r.scopes = Some(&unknown);
        assert_eq!(
            plan_import(&r, &f).unwrap_err().reason,
            Reason::UnknownScope
        );
        let ceiling = vec!["read".to_owned()];
        let public = KeyTypeFacts {
            name: "pk",
            permissions: Some(&ceiling),
            revocable: false,
            public: true,
        };
        let mut f = facts();
        f.key_type = Some(Ok(public));
        assert_eq!(
            plan_import(&request(), &f).unwrap_err().reason,
            Reason::InvalidArgument
        );
        let service = KeyTypeFacts {
            name: "svc",
            permissions: None,
            revocable: false,
            public: false,
        };
        f.key_type = Some(Ok(service));
        let mut r = request();
        r.expires_at = Some(NOW + 1);
        assert_eq!(
            plan_import(&r, &f).unwrap_err().reason,
            Reason::InvalidExpiry
        );
        let mut r = request();
        r.revoked_at = Some(NOW);
        assert_eq!(
            plan_import(&r, &f).unwrap_err().reason,
            Reason::InvalidArgument
        );
        assert!(plan_import(&request(), &f).is_ok());
        f.key_type = Some(Err("nope"));
        assert_eq!(
            plan_import(&request(), &f).unwrap_err().reason,
            Reason::UnknownKeyType
        );
    }
}
