//! A key's status (SPEC §5 key_info.status) and the list filter over it.

use crate::error::RuleError;
use crate::expiry::truncate;
use crate::verify::is_expired;

/// `revoked` wins, else `expired` once `expires_at <= now`, else `active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    /// Timestamps are Postgres' (µs since 2000-01-01); `now` is the
    /// transaction's.
    pub fn of(revoked: bool, expires_at: Option<i64>, now: i64) -> KeyStatus {
        if revoked {
            KeyStatus::Revoked
        } else if is_expired(expires_at, now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// The statuses `api_key_list(…, status, limit)` keeps: `active`,
/// `inactive` (expired or revoked), `expired`, `revoked`, or all for NULL;
/// a page `limit` is NULL (all) or at least 0.
pub fn list_filter(
    status: Option<&str>,
    limit: Option<i32>,
) -> Result<&'static [KeyStatus], RuleError> {
    use KeyStatus::*;
    if limit.is_some_and(|n| n < 0) {
        return Err(RuleError::invalid("limit must be NULL or >= 0"));
    }
    match status {
        None => Ok(&[Active, Expired, Revoked]),
        Some("active") => Ok(&[Active]),
        Some("inactive") => Ok(&[Expired, Revoked]),
        Some("expired") => Ok(&[Expired]),
        Some("revoked") => Ok(&[Revoked]),
        Some(other) => Err(RuleError::invalid(format!(
            "status must be one of active, inactive, expired, revoked, got {}",
            truncate(other, 40)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_wins_then_expired_at_or_after_expiry() {
        assert_eq!(KeyStatus::of(true, Some(5), 10), KeyStatus::Revoked);
        assert_eq!(KeyStatus::of(false, Some(10), 10), KeyStatus::Expired);
        assert_eq!(KeyStatus::of(false, Some(11), 10), KeyStatus::Active);
        assert_eq!(KeyStatus::of(false, None, 10), KeyStatus::Active);
    }

    #[test]
    fn the_list_filter_knows_four_words() {
        assert_eq!(list_filter(None, None).unwrap().len(), 3);
        assert_eq!(
            list_filter(Some("inactive"), Some(10)).unwrap(),
            &[KeyStatus::Expired, KeyStatus::Revoked]
        );
        assert!(list_filter(Some("Active"), None).is_err());
        assert!(list_filter(Some(""), None).is_err());
        assert!(list_filter(None, Some(0)).is_ok());
        assert!(list_filter(None, Some(-1)).is_err());
    }
}
