//! Argument bounds (SPEC §5 "Bounds"): all `invalid_argument`.

use crate::error::RuleError;

pub const MAX_OWNER_LEN: usize = 255;
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// owner_type and owner_id: 1–255 chars, not blank.
pub fn check_owner(owner_type: Option<&str>, owner_id: Option<&str>) -> Result<(), RuleError> {
    check_owner_part("owner_type", owner_type)?;
    check_owner_part("owner_id", owner_id)
}

/// A name given by a user (owner part, key type, environment): 1–255
/// characters, not blank.
pub fn check_label(what: &str, v: Option<&str>) -> Result<(), RuleError> {
    check_owner_part(what, v)
}

fn check_owner_part(what: &str, v: Option<&str>) -> Result<(), RuleError> {
    let v = v.ok_or_else(|| RuleError::invalid(format!("{what} must not be NULL")))?;
    if v.trim().is_empty() {
        return Err(RuleError::invalid(format!("{what} must not be blank")));
    }
    let n = v.chars().count();
    if n > MAX_OWNER_LEN {
        return Err(RuleError::invalid(format!(
            "{what} is at most {MAX_OWNER_LEN} characters, got {n}"
        )));
    }
    Ok(())
}

/// name: at most 255 chars.
pub fn check_name(name: Option<&str>) -> Result<(), RuleError> {
    match name.map(|n| n.chars().count()) {
        Some(n) if n > MAX_NAME_LEN => Err(RuleError::invalid(format!(
            "name is at most {MAX_NAME_LEN} characters, got {n}"
        ))),
        _ => Ok(()),
    }
}

/// metadata: a JSON object of at most 16 KB (as text).
pub fn check_metadata(json_type: &str, text_bytes: usize) -> Result<(), RuleError> {
    if json_type != "object" {
        return Err(RuleError::invalid(format!(
            "metadata must be a JSON object, got {json_type}"
        )));
    }
    if text_bytes > MAX_METADATA_BYTES {
        return Err(RuleError::invalid(format!(
            "metadata is at most {MAX_METADATA_BYTES} bytes, got {text_bytes}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reason;

    #[test]
    fn owner_must_be_present_non_blank_and_bounded() {
        assert!(check_owner(Some("user"), Some("42")).is_ok());
        for (t, i) in [
            (None, Some("42")),
            (Some("user"), None),
            (Some(""), Some("42")),
            (Some("user"), Some("   ")),
            (Some("user"), Some(&"x".repeat(256)[..])),
        ] {
            assert_eq!(
                check_owner(t, i).unwrap_err().reason,
                Reason::InvalidArgument
            );
        }
        assert!(check_owner(Some("user"), Some(&"é".repeat(255))).is_ok());
    }

    #[test]
    fn labels_are_one_to_255_characters_not_blank() {
        assert!(check_label("key type name", Some("secret")).is_ok());
        assert!(check_label("key type name", None).is_err());
        assert!(check_label("key type name", Some(" ")).is_err());
        assert!(check_label("key type name", Some(&"x".repeat(256))).is_err());
    }

    #[test]
    fn name_is_bounded_in_characters() {
        assert!(check_name(None).is_ok());
        assert!(check_name(Some(&"é".repeat(255))).is_ok());
        assert!(check_name(Some(&"x".repeat(256))).is_err());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(check_metadata("object", 2).is_ok());
        assert!(check_metadata("array", 2).is_err());
        assert!(check_metadata("null", 4).is_err());
        assert!(check_metadata("object", MAX_METADATA_BYTES + 1).is_err());
    }
}
