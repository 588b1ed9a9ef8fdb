//! Per-owner limits (SPEC §5): `max_keys` first, then `per_owner_limit`.
//! Both count active keys; the caller counts under a per-owner lock.

use crate::error::{Reason, RuleError};
use crate::expiry::truncate;

/// What the caller counted, and the limits in force.
#[derive(Debug, Clone, Copy)]
pub struct LimitCheck<'a> {
    pub owner_type: &'a str,
    pub owner_id: &'a str,
    pub active_keys: i64,
    pub max_keys: Option<i32>,
    pub key_type: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// Active keys of this type for the owner in this environment.
    pub active_in_bucket: i64,
    pub per_owner_limit: Option<i32>,
}

impl LimitCheck<'_> {
    fn owner(&self) -> String {
        format!(
            "{}/{}",
            truncate(self.owner_type, 60),
            truncate(self.owner_id, 60)
        )
    }

    pub fn check(&self) -> Result<(), RuleError> {
        if let Some(max) = self.max_keys {
            if self.active_keys >= i64::from(max) {
                return Err(RuleError::new(
                    Reason::KeyLimitReached,
                    format!(
                        "owner {} already has {} active keys",
                        self.owner(),
                        self.active_keys
                    ),
                ));
            }
        }
        if let (Some(limit), Some(key_type)) = (self.per_owner_limit, self.key_type) {
            if self.active_in_bucket >= i64::from(limit) {
                let env = match self.environment {
                    Some(e) => format!(" in environment {e}"),
                    None => String::new(),
                };
                return Err(RuleError::new(
                    Reason::TypeLimitReached,
                    format!(
                        "owner {} already has {} active {} keys{env}",
                        self.owner(),
                        self.active_in_bucket,
                        key_type
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> LimitCheck<'static> {
        LimitCheck {
            owner_type: "user",
            owner_id: "42",
            active_keys: 0,
            max_keys: None,
            key_type: Some("secret"),
            environment: Some("live"),
            active_in_bucket: 0,
            per_owner_limit: None,
        }
    }

    #[test]
    fn no_limits_always_pass() {
        assert!(LimitCheck {
            active_keys: 1_000,
            active_in_bucket: 1_000,
            ..base()
        }
        .check()
        .is_ok());
    }

    #[test]
    fn max_keys_is_checked_before_per_owner_limit() {
        let c = LimitCheck {
            active_keys: 10,
            max_keys: Some(10),
            active_in_bucket: 1,
            per_owner_limit: Some(1),
            ..base()
        };
        let e = c.check().unwrap_err();
        assert_eq!(e.reason, Reason::KeyLimitReached);
        assert_eq!(
            e.to_string(),
            "api_keys: key_limit_reached: owner user/42 already has 10 active keys"
        );
    }

    #[test]
    fn per_owner_limit_counts_the_bucket() {
        let c = LimitCheck {
            active_keys: 3,
            max_keys: Some(10),
            active_in_bucket: 1,
            per_owner_limit: Some(1),
            ..base()
        };
        assert_eq!(c.check().unwrap_err().reason, Reason::TypeLimitReached);
        let c = LimitCheck {
            active_in_bucket: 0,
            per_owner_limit: Some(1),
            ..base()
        };
        assert!(c.check().is_ok());
    }
}
