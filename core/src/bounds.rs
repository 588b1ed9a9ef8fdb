//! Argument bounds (SPEC §5 "Bounds"): all `invalid_argument`.

use crate::error::RuleError;

pub const MAX_OWNER_LEN: usize = 255;
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_DESCRIPTION_LEN: usize = 1000;

/// Characters that make a name read differently from what it is: C0 and C1
/// controls (NUL-like, ESC, DEL, …) and the bidirectional embeddings,
/// overrides and isolates that reorder text on screen (the "Trojan Source"
/// characters). Other characters, zero-width joiners in emoji included, are
/// accepted.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses control and bidi-override characters in a user-given name.
pub fn check_visible(what: &str, v: &str) -> Result<(), RuleError> {
    refuse_forbidden(what, v, |_| false)
}

fn refuse_forbidden(what: &str, v: &str, allowed: impl Fn(char) -> bool) -> Result<(), RuleError> {
    match v.chars().find(|&c| is_forbidden_char(c) && !allowed(c)) {
        Some(c) => Err(RuleError::invalid(format!(
            "{what} must not contain control or bidirectional-override characters (found U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// A free-text description (of a scope): at most 1000 characters; line
/// breaks and tabs are allowed, other control and bidi-override characters
/// are not.
pub fn check_description(v: Option<&str>) -> Result<(), RuleError> {
    let Some(v) = v else { return Ok(()) };
    let n = v.chars().count();
    if n > MAX_DESCRIPTION_LEN {
        return Err(RuleError::invalid(format!(
            "description is at most {MAX_DESCRIPTION_LEN} characters, got {n}"
        )));
    }
    refuse_forbidden("description", v, |c| matches!(c, '\n' | '\r' | '\t'))
}

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
    check_visible(what, v)
}

/// name: at most 255 chars, no control or bidi-override characters.
pub fn check_name(name: Option<&str>) -> Result<(), RuleError> {
    let Some(name) = name else { return Ok(()) };
    let n = name.chars().count();
    if n > MAX_NAME_LEN {
        return Err(RuleError::invalid(format!(
            "name is at most {MAX_NAME_LEN} characters, got {n}"
        )));
    }
    check_visible("name", name)
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
    fn control_and_bidi_override_characters_are_refused_everywhere_a_name_goes() {
        for bad in [
            "a\u{0}b",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
            "tab\there",
            "nl\n",
            "rlo\u{202E}gpj.exe",
            "lre\u{202A}",
            "fsi\u{2068}",
            "pdi\u{2069}",
        ] {
            assert!(
                check_owner(Some(bad), Some("1")).is_err(),
                "{bad:?} as owner_type"
            );
            assert!(
                check_owner(Some("user"), Some(bad)).is_err(),
                "{bad:?} as owner_id"
            );
            assert!(
                check_label("key type name", Some(bad)).is_err(),
                "{bad:?} as label"
            );
            assert!(check_name(Some(bad)).is_err(), "{bad:?} as name");
        }
        for good in ["Zoë's key", "日本語", "emoji 👩\u{200D}💻", "a-b_c.d/e"] {
            assert!(check_owner(Some(good), Some(good)).is_ok(), "{good:?}");
            assert!(check_name(Some(good)).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn descriptions_allow_line_breaks_but_not_other_controls() {
        assert!(check_description(None).is_ok());
        assert!(check_description(Some("line one\nline two\ttabbed")).is_ok());
        assert!(check_description(Some("bell\u{7}")).is_err());
        assert!(check_description(Some("\u{202E}reversed")).is_err());
        assert!(check_description(Some(&"x".repeat(1001))).is_err());
        assert!(check_description(Some(&"é".repeat(1000))).is_ok());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(check_metadata("object", 2).is_ok());
        assert!(check_metadata("array", 2).is_err());
        assert!(check_metadata("null", 4).is_err());
        assert!(check_metadata("object", MAX_METADATA_BYTES + 1).is_err());
    }
}
