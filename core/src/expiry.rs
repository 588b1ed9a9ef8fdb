//! Expiration presets (SPEC §5 `expires_in`).

use crate::error::{Reason, RuleError};

pub const MAX_DAYS: u32 = 3650;

/// What `expires_in` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    Never,
    Days(u32),
}

/// The presets a dashboard offers, in order: `(value, label)`.
pub const PRESETS: [(&str, &str); 6] = [
    ("no_expiration", "No expiration"),
    ("7_days", "7 days"),
    ("30_days", "30 days"),
    ("60_days", "60 days"),
    ("90_days", "90 days"),
    ("1_year", "1 year"),
];

impl ExpiresIn {
    /// Parses exactly one of the presets or `N_days` (N in 1..=3650, no
    /// leading zeros); anything else is `invalid_expiry`.
    pub fn parse(s: &str) -> Result<ExpiresIn, RuleError> {
        match s {
            "no_expiration" => return Ok(ExpiresIn::Never),
            "1_year" => return Ok(ExpiresIn::Days(365)),
            _ => {}
        }
        let bad = || {
            RuleError::new(
                Reason::InvalidExpiry,
                format!(
                    "expires_in must be one of no_expiration, 7_days, 30_days, 60_days, 90_days, 1_year or N_days with N in 1..{MAX_DAYS}, got {:?}",
                    truncate(s, 40)
                ),
            )
        };
        let digits = s.strip_suffix("_days").ok_or_else(bad)?;
        if digits.is_empty()
            || digits.len() > 4
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if (1..=MAX_DAYS).contains(&n) {
            Ok(ExpiresIn::Days(n))
        } else {
            Err(bad())
        }
    }
}

/// At most `max` chars of `s`, for echoing user input in a message.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_to_their_days() {
        assert_eq!(ExpiresIn::parse("no_expiration"), Ok(ExpiresIn::Never));
        assert_eq!(ExpiresIn::parse("7_days"), Ok(ExpiresIn::Days(7)));
        assert_eq!(ExpiresIn::parse("30_days"), Ok(ExpiresIn::Days(30)));
        assert_eq!(ExpiresIn::parse("60_days"), Ok(ExpiresIn::Days(60)));
        assert_eq!(ExpiresIn::parse("90_days"), Ok(ExpiresIn::Days(90)));
        assert_eq!(ExpiresIn::parse("1_year"), Ok(ExpiresIn::Days(365)));
        assert_eq!(ExpiresIn::parse("1_days"), Ok(ExpiresIn::Days(1)));
        assert_eq!(ExpiresIn::parse("3650_days"), Ok(ExpiresIn::Days(3650)));
    }

    #[test]
    fn everything_else_is_invalid_expiry() {
        for s in [
            "",
            "0_days",
            "3651_days",
            "07_days",
            "forever",
            "_days",
            "1_day",
            "+1_days",
            "1 days",
            "1_DAYS",
            "１_days",
            "99999999999999999999_days",
            "2_years",
            "-1_days",
        ] {
            let e = ExpiresIn::parse(s).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidExpiry, "{s:?}");
        }
    }

    #[test]
    fn every_preset_value_parses() {
        for (value, _) in PRESETS {
            assert!(ExpiresIn::parse(value).is_ok());
        }
    }
}
