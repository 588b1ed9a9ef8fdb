//! Stable error reasons and their SQLSTATEs (SPEC §5 "Errors").

use std::fmt;

/// A stable reason: the first word of every error message, e.g.
/// `api_keys: key_limit_reached: owner user/42 already has 10 active keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidArgument,
    UnknownKeyType,
    UnknownEnvironment,
    UnknownScope,
    ExclusiveScope,
    NameRequired,
    InvalidExpiry,
    MfaNotEnabled,
    KeyLimitReached,
    TypeLimitReached,
    KeyNotRevocable,
    KeyNotFound,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::InvalidArgument,
        Reason::UnknownKeyType,
        Reason::UnknownEnvironment,
        Reason::UnknownScope,
        Reason::ExclusiveScope,
        Reason::NameRequired,
        Reason::InvalidExpiry,
        Reason::MfaNotEnabled,
        Reason::KeyLimitReached,
        Reason::TypeLimitReached,
        Reason::KeyNotRevocable,
        Reason::KeyNotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidArgument => "invalid_argument",
            Reason::UnknownKeyType => "unknown_key_type",
            Reason::UnknownEnvironment => "unknown_environment",
            Reason::UnknownScope => "unknown_scope",
            Reason::ExclusiveScope => "exclusive_scope",
            Reason::NameRequired => "name_required",
            Reason::InvalidExpiry => "invalid_expiry",
            Reason::MfaNotEnabled => "mfa_not_enabled",
            Reason::KeyLimitReached => "key_limit_reached",
            Reason::TypeLimitReached => "type_limit_reached",
            Reason::KeyNotRevocable => "key_not_revocable",
            Reason::KeyNotFound => "key_not_found",
        }
    }

    /// The five-character SQLSTATE that carries this reason.
    pub fn sqlstate(self) -> &'static str {
        match self {
            Reason::InvalidArgument
            | Reason::UnknownKeyType
            | Reason::UnknownEnvironment
            | Reason::UnknownScope
            | Reason::ExclusiveScope
            | Reason::NameRequired
            | Reason::InvalidExpiry
            | Reason::MfaNotEnabled => "22023",
            Reason::KeyLimitReached | Reason::TypeLimitReached => "23514",
            Reason::KeyNotRevocable => "42501",
            Reason::KeyNotFound => "P0002",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken rule: a reason plus a human explanation (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub reason: Reason,
    pub detail: String,
}

impl RuleError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        RuleError {
            reason,
            detail: detail.into(),
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        RuleError::new(Reason::InvalidArgument, detail)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api_keys: {}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for RuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_starts_with_the_stable_reason() {
        let e = RuleError::new(
            Reason::KeyLimitReached,
            "owner user/42 already has 10 active keys",
        );
        assert_eq!(
            e.to_string(),
            "api_keys: key_limit_reached: owner user/42 already has 10 active keys"
        );
    }

    #[test]
    fn every_reason_round_trips_and_has_a_sqlstate() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(r.sqlstate().len(), 5);
        }
        assert_eq!(Reason::parse("nope"), None);
    }
}
