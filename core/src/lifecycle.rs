//! Key lifecycle rules (SPEC §5 "Lifecycle (0.2.0)"): rotation.

use crate::error::{Reason, RuleError};
use crate::expiry::ExpiresIn;
use crate::issue::DAY_MICROS;
use crate::status::KeyStatus;
use crate::token::is_segment;

/// The longest grace period a rotation may leave the old key: long enough
/// for a slow deploy, short enough that a forgotten old key still dies.
pub const MAX_GRACE_DAYS: i64 = 90;

/// A Postgres interval as its three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// The grace period in microseconds: a month counts 30 days and a day 24
/// hours (Postgres' own `extract(epoch …)` convention); NULL, negative or
/// longer than [`MAX_GRACE_DAYS`] is `invalid_argument`.
pub fn grace_micros(grace: Option<Interval>) -> Result<i64, RuleError> {
    let g = grace.ok_or_else(|| RuleError::invalid("grace must not be NULL"))?;
    let total = i128::from(g.months) * 30 * i128::from(DAY_MICROS)
        + i128::from(g.days) * i128::from(DAY_MICROS)
        + i128::from(g.micros);
    if total < 0 {
        return Err(RuleError::invalid("grace must not be negative"));
    }
    if total > i128::from(MAX_GRACE_DAYS * DAY_MICROS) {
        return Err(RuleError::invalid(format!(
            "grace must be at most {MAX_GRACE_DAYS} days"
        )));
    }
    Ok(total as i64)
}

/// The key being rotated. Timestamps are Postgres' (µs since 2000-01-01).
#[derive(Debug, Clone, Copy)]
pub struct RotateFacts<'a> {
    pub key_id: &'a str,
    pub revocable: bool,
    pub revoked: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The key a previous rotation issued for it, if any.
    pub replaced_by: Option<&'a str>,
    pub now: i64,
}

/// What a rotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatePlan {
    /// The replacement's expiry.
    pub new_expires_at: Option<i64>,
    /// The old key is revoked now (grace 0) …
    pub revoke_old: bool,
    /// … else its expiry becomes this: `least(expires_at, now + grace)`.
    pub old_expires_at: Option<i64>,
}

/// The decision for `api_key_rotate`: a non-revocable key cannot be
/// rotated (it could never be retired); an inactive or already rotated key
/// is `invalid_argument`. The replacement expires as `expires_in` says,
/// else after the old key's lifetime length from now, else never.
pub fn plan_rotate(
    facts: &RotateFacts<'_>,
    grace: Option<Interval>,
    expires_in: Option<&str>,
) -> Result<RotatePlan, RuleError> {
    if !facts.revocable {
        return Err(RuleError::new(
            Reason::KeyNotRevocable,
            format!(
                "key {} is of a non-revocable type and cannot be rotated",
                facts.key_id
            ),
        ));
    }
    let status = KeyStatus::of(facts.revoked, facts.expires_at, facts.now);
    if status != KeyStatus::Active {
        return Err(RuleError::invalid(format!(
            "key {} is {} and cannot be rotated",
            facts.key_id,
            status.as_str()
        )));
    }
    if let Some(next) = facts.replaced_by {
        return Err(RuleError::invalid(format!(
            "key {} was already rotated (replaced by {next})",
            facts.key_id
        )));
    }
    let grace = grace_micros(grace)?;
    let overflow = || RuleError::new(Reason::InvalidExpiry, "the new expiry is out of range");
    let new_expires_at = match (expires_in, facts.expires_at) {
        (Some(preset), _) => match ExpiresIn::parse(preset)? {
            ExpiresIn::Never => None,
            ExpiresIn::Days(n) => Some(
                facts
                    .now
                    .checked_add(i64::from(n) * DAY_MICROS)
                    .ok_or_else(overflow)?,
            ),
        },
        (None, Some(old)) => {
            let lifetime = old.checked_sub(facts.created_at).ok_or_else(overflow)?;
            if lifetime <= 0 {
                return Err(RuleError::new(
                    Reason::InvalidExpiry,
                    format!(
                        "key {} expires before it was created; pass expires_in",
                        facts.key_id
                    ),
                ));
            }
            Some(facts.now.checked_add(lifetime).ok_or_else(overflow)?)
        }
        (None, None) => None,
    };
    let until = facts.now.saturating_add(grace);
    Ok(RotatePlan {
        new_expires_at,
        revoke_old: grace == 0,
        old_expires_at: if grace == 0 {
            facts.expires_at
        } else {
            Some(facts.expires_at.map_or(until, |e| e.min(until)))
        },
    })
}

/// The first prefix segment of an untyped key's replacement: the one the
/// old key was issued with (its display prefix's first segment), so that
/// rotating does not depend on the rotating session's
/// `api_keys.token_prefix`. `None` for an imported key, whose prefix is
/// foreign: the caller falls back to the GUC.
pub fn untyped_head(display_prefix: &str, imported: bool) -> Option<&str> {
    if imported {
        return None;
    }
    let head = display_prefix.split('_').next()?;
    is_segment(head).then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY_MICROS;
    const SEC: i64 = 1_000_000;

    fn secs(s: i64) -> Option<Interval> {
        Some(Interval {
            months: 0,
            days: 0,
            micros: s * SEC,
        })
    }

    fn facts() -> RotateFacts<'static> {
        RotateFacts {
            key_id: "k",
            revocable: true,
            revoked: false,
            created_at: NOW - 10 * DAY_MICROS,
            expires_at: None,
            replaced_by: None,
            now: NOW,
        }
    }

    #[test]
    fn an_untyped_replacement_keeps_the_old_prefix_unless_imported() {
        assert_eq!(untyped_head("acme_live", false), Some("acme"));
        assert_eq!(untyped_head("ak", false), Some("ak"));
        assert_eq!(untyped_head("ak", true), None);
        assert_eq!(untyped_head("Rubygems", false), None);
        assert_eq!(untyped_head("", false), None);
    }

    #[test]
    fn grace_zero_revokes_the_old_key_now() {
        let p = plan_rotate(&facts(), secs(0), None).unwrap();
        assert!(p.revoke_old);
        assert_eq!(p.old_expires_at, None);
        assert_eq!(p.new_expires_at, None);
    }

    #[test]
    fn grace_shortens_the_old_expiry_but_never_extends_it() {
        let p = plan_rotate(&facts(), secs(60), None).unwrap();
        assert!(!p.revoke_old);
        assert_eq!(p.old_expires_at, Some(NOW + 60 * SEC));
        let mut f = facts();
        f.expires_at = Some(NOW + 30 * SEC);
        let p = plan_rotate(&f, secs(60), None).unwrap();
        assert_eq!(p.old_expires_at, Some(NOW + 30 * SEC));
    }

    #[test]
    fn the_replacement_keeps_the_old_lifetime_length_unless_expires_in_is_given() {
        let mut f = facts();
        f.expires_at = Some(f.created_at + 30 * DAY_MICROS);
        let p = plan_rotate(&f, secs(0), None).unwrap();
        assert_eq!(p.new_expires_at, Some(NOW + 30 * DAY_MICROS));
        let p = plan_rotate(&f, secs(0), Some("7_days")).unwrap();
        assert_eq!(p.new_expires_at, Some(NOW + 7 * DAY_MICROS));
        let p = plan_rotate(&f, secs(0), Some("no_expiration")).unwrap();
        assert_eq!(p.new_expires_at, None);
        let e = plan_rotate(&f, secs(0), Some("")).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidExpiry);
    }

    #[test]
    fn a_lifetime_that_is_not_positive_needs_expires_in() {
        let mut f = facts();
        f.created_at = NOW + DAY_MICROS;
        f.expires_at = Some(NOW + DAY_MICROS);
        let e = plan_rotate(&f, secs(0), None).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidExpiry);
        assert!(plan_rotate(&f, secs(0), Some("1_days")).is_ok());
    }

    #[test]
    fn non_revocable_inactive_and_rotated_keys_are_refused() {
        let mut f = facts();
        f.revocable = false;
        assert_eq!(
            plan_rotate(&f, secs(0), None).unwrap_err().reason,
            Reason::KeyNotRevocable
        );
        let mut f = facts();
        f.revoked = true;
        assert_eq!(
            plan_rotate(&f, secs(0), None).unwrap_err().reason,
            Reason::InvalidArgument
        );
        let mut f = facts();
        f.expires_at = Some(NOW);
        assert_eq!(
            plan_rotate(&f, secs(0), None).unwrap_err().reason,
            Reason::InvalidArgument
        );
        let mut f = facts();
        f.replaced_by = Some("n");
        let e = plan_rotate(&f, secs(60), None).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidArgument);
        assert!(e.detail.contains("already rotated"));
    }

    #[test]
    fn grace_must_be_present_non_negative_and_bounded() {
        assert_eq!(grace_micros(secs(0)), Ok(0));
        assert_eq!(
            grace_micros(None).unwrap_err().reason,
            Reason::InvalidArgument
        );
        assert_eq!(
            grace_micros(secs(-1)).unwrap_err().reason,
            Reason::InvalidArgument
        );
        let max = Interval {
            months: 0,
            days: MAX_GRACE_DAYS as i32,
            micros: 0,
        };
        assert_eq!(grace_micros(Some(max)), Ok(MAX_GRACE_DAYS * DAY_MICROS));
        let over = Interval { micros: 1, ..max };
        assert!(grace_micros(Some(over)).is_err());
        let huge = Interval {
            months: i32::MAX,
            days: i32::MAX,
            micros: i64::MAX,
        };
        assert!(grace_micros(Some(huge)).is_err());
        let mixed = Interval {
            months: 0,
            days: 1,
            micros: -3600 * SEC,
        };
        assert_eq!(grace_micros(Some(mixed)), Ok(23 * 3600 * SEC));
        let low = Interval {
            months: i32::MIN,
            days: i32::MIN,
            micros: i64::MIN,
        };
        assert!(grace_micros(Some(low)).is_err());
    }
}
