//! The verification decision (SPEC §5): which code a stored key earns.

use crate::scopes;

/// Outcome of a verification, in check order: the first failure wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyCode {
    Malformed,
    NotFound,
    Revoked,
    Expired,
    EnvironmentMismatch,
    InsufficientScope,
    OtpRequired,
    OtpInvalid,
    Valid,
}

impl VerifyCode {
    pub const ALL: [VerifyCode; 9] = [
        VerifyCode::Malformed,
        VerifyCode::NotFound,
        VerifyCode::Revoked,
        VerifyCode::Expired,
        VerifyCode::EnvironmentMismatch,
        VerifyCode::InsufficientScope,
        VerifyCode::OtpRequired,
        VerifyCode::OtpInvalid,
        VerifyCode::Valid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyCode::Malformed => "malformed",
            VerifyCode::NotFound => "not_found",
            VerifyCode::Revoked => "revoked",
            VerifyCode::Expired => "expired",
            VerifyCode::EnvironmentMismatch => "environment_mismatch",
            VerifyCode::InsufficientScope => "insufficient_scope",
            VerifyCode::OtpRequired => "otp_required",
            VerifyCode::OtpInvalid => "otp_invalid",
            VerifyCode::Valid => "valid",
        }
    }

    pub fn is_valid(self) -> bool {
        self == VerifyCode::Valid
    }

    pub fn parse(s: &str) -> Option<VerifyCode> {
        VerifyCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Identity columns are filled only for these codes.
    pub fn reveals_identity(self) -> bool {
        matches!(
            self,
            VerifyCode::Valid
                | VerifyCode::InsufficientScope
                | VerifyCode::OtpRequired
                | VerifyCode::OtpInvalid
        )
    }
}

/// What a request's authentication came to (PostgREST pre-request, the
/// admin service's caller check): no key at all, or a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    NoKey,
    Verified(VerifyCode),
}

impl AuthOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::NoKey => "no_key",
            AuthOutcome::Verified(code) => code.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<AuthOutcome> {
        match s {
            "no_key" => Some(AuthOutcome::NoKey),
            _ => VerifyCode::parse(s).map(AuthOutcome::Verified),
        }
    }

    /// PostgREST's SQLSTATE and the message of a refusal (SPEC §6), `None`
    /// when accepted. The message starts with the verify code.
    pub fn refusal(self) -> Option<(&'static str, String)> {
        let status = self.refusal_status()?;
        let sqlstate = if status == 403 { "PT403" } else { "PT401" };
        let message = match self {
            AuthOutcome::NoKey => "api_keys: malformed: the request carries no API key \
                                  (x-api-key or Authorization: Bearer)"
                .to_owned(),
            AuthOutcome::Verified(VerifyCode::InsufficientScope) => {
                "api_keys: insufficient_scope: the API key lacks a required scope".to_owned()
            }
            AuthOutcome::Verified(code) => {
                format!("api_keys: {}: the API key was not accepted", code.as_str())
            }
        };
        Some((sqlstate, message))
    }

    /// The HTTP status of a refusal: 403 for a key that lacks a scope, 401
    /// for no key or a key that is not accepted; `None` when accepted.
    pub fn refusal_status(self) -> Option<u16> {
        match self {
            AuthOutcome::Verified(VerifyCode::Valid) => None,
            AuthOutcome::Verified(VerifyCode::InsufficientScope) => Some(403),
            _ => Some(401),
        }
    }
}

/// The facts about a stored key that the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct StoredKey<'a, K: AsRef<str>> {
    pub revoked: bool,
    /// `expires_at <= now()`, computed by the caller with the database clock.
    pub expired: bool,
    pub environment: Option<&'a str>,
    pub scopes: &'a [K],
    /// The key type's *current* ceiling; `None` = all scopes.
    pub ceiling: Option<&'a [K]>,
}

/// Environment isolation in force for this verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct Isolation<'a> {
    pub strict: bool,
    /// The `environment` argument, else GUC `api_keys.environment`; `None`
    /// or empty means no current environment.
    pub current: Option<&'a str>,
}

impl Isolation<'_> {
    /// Under strict isolation a key with an environment passes only in that
    /// environment; with no current environment it fails (closed). Keys
    /// without an environment always pass.
    pub fn admits(&self, key_environment: Option<&str>) -> bool {
        match (self.strict, key_environment) {
            (false, _) | (_, None) => true,
            (true, Some(env)) => matches!(self.current, Some(cur) if !cur.is_empty() && cur == env),
        }
    }
}

/// "Expired" means `expires_at <= now`; both are Postgres timestamps
/// (microseconds since 2000-01-01), `now` being the transaction's start.
pub fn is_expired(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|e| e <= now)
}

/// Decides the code for a key that was found by its hash.
pub fn decide<K: AsRef<str>, S: AsRef<str>>(
    key: &StoredKey<'_, K>,
    isolation: Isolation<'_>,
    required: &[Option<S>],
) -> VerifyCode {
    if key.revoked {
        VerifyCode::Revoked
    } else if key.expired {
        VerifyCode::Expired
    } else if !isolation.admits(key.environment) {
        VerifyCode::EnvironmentMismatch
    } else if !scopes::grants(required, key.scopes, key.ceiling) {
        VerifyCode::InsufficientScope
    } else {
        VerifyCode::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(scopes: &'a [&'a str]) -> StoredKey<'a, &'a str> {
        StoredKey {
            revoked: false,
            expired: false,
            environment: Some("live"),
            scopes,
            ceiling: None,
        }
    }

    const STRICT_TEST: Isolation = Isolation {
        strict: true,
        current: Some("test"),
    };

    #[test]
    fn first_failure_wins_in_spec_order() {
        let scopes = ["read"];
        let need = [Some("write")];
        let mut k = key(&scopes);
        k.revoked = true;
        k.expired = true;
        assert_eq!(decide(&k, STRICT_TEST, &need), VerifyCode::Revoked);
        k.revoked = false;
        assert_eq!(decide(&k, STRICT_TEST, &need), VerifyCode::Expired);
        k.expired = false;
        assert_eq!(
            decide(&k, STRICT_TEST, &need),
            VerifyCode::EnvironmentMismatch
        );
        assert_eq!(
            decide(&k, Isolation::default(), &need),
            VerifyCode::InsufficientScope
        );
        assert_eq!(
            decide(&k, Isolation::default(), &[Some("read")]),
            VerifyCode::Valid
        );
    }

    #[test]
    fn strict_isolation_without_current_environment_fails_closed() {
        let none = Isolation {
            strict: true,
            current: None,
        };
        let empty = Isolation {
            strict: true,
            current: Some(""),
        };
        assert!(!none.admits(Some("live")));
        assert!(!empty.admits(Some("live")));
        assert!(none.admits(None));
        assert!(Isolation {
            strict: true,
            current: Some("live")
        }
        .admits(Some("live")));
        assert!(Isolation {
            strict: false,
            current: Some("test")
        }
        .admits(Some("live")));
    }

    #[test]
    fn expiry_is_inclusive_of_now() {
        assert!(is_expired(Some(10), 10));
        assert!(is_expired(Some(9), 10));
        assert!(!is_expired(Some(11), 10));
        assert!(!is_expired(None, 10));
    }

    #[test]
    fn a_missing_scope_is_forbidden_everything_else_unauthenticated() {
        assert_eq!(AuthOutcome::NoKey.as_str(), "no_key");
        assert_eq!(AuthOutcome::NoKey.refusal_status(), Some(401));
        for c in VerifyCode::ALL {
            let want = match c {
                VerifyCode::Valid => None,
                VerifyCode::InsufficientScope => Some(403),
                _ => Some(401),
            };
            assert_eq!(AuthOutcome::Verified(c).refusal_status(), want, "{c:?}");
            assert_eq!(AuthOutcome::Verified(c).as_str(), c.as_str());
            assert_eq!(
                AuthOutcome::parse(c.as_str()),
                Some(AuthOutcome::Verified(c))
            );
            let refusal = AuthOutcome::Verified(c).refusal();
            assert_eq!(refusal.is_none(), c.is_valid());
            if let Some((state, message)) = refusal {
                assert_eq!(state == "PT403", c == VerifyCode::InsufficientScope);
                assert!(message.starts_with(&format!("api_keys: {}:", c.as_str())));
            }
        }
        let (state, message) = AuthOutcome::NoKey.refusal().unwrap();
        assert_eq!(state, "PT401");
        assert!(message.starts_with("api_keys: malformed:"));
    }

    #[test]
    fn valid_insufficient_scope_and_the_otp_codes_reveal_identity() {
        for c in VerifyCode::ALL {
            assert_eq!(
                c.reveals_identity(),
                matches!(
                    c,
                    VerifyCode::Valid
                        | VerifyCode::InsufficientScope
                        | VerifyCode::OtpRequired
                        | VerifyCode::OtpInvalid
                )
            );
        }
    }
}
