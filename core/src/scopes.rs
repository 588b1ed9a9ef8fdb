//! Scope processing (SPEC §5): normalise, registry, ceiling, exclusivity.

use crate::error::{Reason, RuleError};
use crate::expiry::truncate;

pub const MAX_SCOPES: usize = 100;
pub const MAX_SCOPE_LEN: usize = 200;

/// A scope known to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredScope {
    pub name: String,
    pub exclusive: bool,
}

/// Checks bounds, then trims, drops blanks and duplicates (order kept).
pub fn normalize<S: AsRef<str>>(raw: &[Option<S>]) -> Result<Vec<String>, RuleError> {
    if raw.len() > MAX_SCOPES {
        return Err(RuleError::invalid(format!(
            "at most {MAX_SCOPES} scopes, got {}",
            raw.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for scope in raw {
        let scope = scope
            .as_ref()
            .ok_or_else(|| RuleError::invalid("scopes must not contain NULL"))?
            .as_ref();
        if scope.chars().count() > MAX_SCOPE_LEN {
            return Err(RuleError::invalid(format!(
                "a scope is at most {MAX_SCOPE_LEN} characters, got {:?}",
                truncate(scope, 40)
            )));
        }
        let scope = scope.trim();
        crate::bounds::check_visible("a scope", scope)?;
        if !scope.is_empty() && !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    Ok(out)
}

/// A scope definition (api_key_scope_define): the name trimmed, 1–200
/// characters, no control or bidi-override characters; the description as
/// [`crate::bounds::check_description`]. Returns the name to store.
pub fn check_definition(
    name: Option<&str>,
    description: Option<&str>,
) -> Result<String, RuleError> {
    let name = name.map(str::trim).unwrap_or("");
    let n = name.chars().count();
    if n == 0 || n > MAX_SCOPE_LEN {
        return Err(RuleError::invalid(format!(
            "scope name must be 1-{MAX_SCOPE_LEN} characters, not blank"
        )));
    }
    crate::bounds::check_visible("scope name", name)?;
    crate::bounds::check_description(description)?;
    Ok(name.to_owned())
}

/// Normalises and, once a registry exists, rejects unknown scopes. Used for
/// lists of scopes that are not a key's own (ceilings, default scopes).
pub fn known<S: AsRef<str>>(
    raw: &[Option<S>],
    registry: &[RegisteredScope],
) -> Result<Vec<String>, RuleError> {
    let scopes = normalize(raw)?;
    check_registered(&scopes, registry)?;
    Ok(scopes)
}

fn check_registered(scopes: &[String], registry: &[RegisteredScope]) -> Result<(), RuleError> {
    if !registry.is_empty() {
        if let Some(unknown) = scopes
            .iter()
            .find(|s| !registry.iter().any(|r| &r.name == *s))
        {
            return Err(RuleError::new(
                Reason::UnknownScope,
                format!("scope {:?} is not defined", truncate(unknown, 60)),
            ));
        }
    }
    Ok(())
}

/// What issue and update do with requested scopes: normalise, reject unknown
/// scopes once a registry exists, silently drop what the type's ceiling does
/// not allow, then reject an exclusive scope beside any other.
pub fn process<S: AsRef<str>>(
    raw: &[Option<S>],
    registry: &[RegisteredScope],
    ceiling: Option<&[String]>,
) -> Result<Vec<String>, RuleError> {
    let mut scopes = known(raw, registry)?;
    if let Some(ceiling) = ceiling {
        scopes.retain(|s| ceiling.contains(s));
    }
    if scopes.len() > 1 {
        if let Some(ex) = scopes
            .iter()
            .find(|s| registry.iter().any(|r| r.exclusive && &r.name == *s))
        {
            return Err(RuleError::new(
                Reason::ExclusiveScope,
                format!("scope {ex:?} is exclusive and cannot be combined with other scopes"),
            ));
        }
    }
    Ok(scopes)
}

/// What a new key may hold: the owner policy's defaults if set, else every
/// registered scope, else the type's ceiling, else nothing; then intersected
/// with the ceiling, order kept.
pub fn available(
    default_scopes: Option<&[String]>,
    registry: &[RegisteredScope],
    ceiling: Option<&[String]>,
) -> Vec<String> {
    let base: Vec<String> = match (default_scopes, registry.is_empty(), ceiling) {
        (Some(d), _, _) => d.to_vec(),
        (None, false, _) => registry.iter().map(|r| r.name.clone()).collect(),
        (None, true, Some(c)) => c.to_vec(),
        (None, true, None) => Vec::new(),
    };
    match ceiling {
        Some(c) => base.into_iter().filter(|s| c.contains(s)).collect(),
        None => base,
    }
}

/// Whether a key grants every required scope: each must be among the key's
/// scopes and inside its type's current ceiling. A NULL requirement can
/// never be met.
pub fn grants<S: AsRef<str>, K: AsRef<str>>(
    required: &[Option<S>],
    key_scopes: &[K],
    ceiling: Option<&[K]>,
) -> bool {
    required.iter().all(|r| match r {
        None => false,
        Some(r) => {
            let r = r.as_ref();
            key_scopes.iter().any(|k| k.as_ref() == r)
                && ceiling.is_none_or(|c| c.iter().any(|k| k.as_ref() == r))
        }
    })
}

/// The scopes a key effectively holds now: its own, within its type's
/// current ceiling.
pub fn effective<K: AsRef<str>>(key_scopes: &[K], ceiling: Option<&[K]>) -> Vec<String> {
    key_scopes
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| ceiling.is_none_or(|c| c.iter().any(|k| k.as_ref() == *s)))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    fn reg(names: &[(&str, bool)]) -> Vec<RegisteredScope> {
        names
            .iter()
            .map(|(n, e)| RegisteredScope {
                name: n.to_string(),
                exclusive: *e,
            })
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalize_trims_drops_blanks_and_duplicates_keeping_order() {
        let got = normalize(&some(&[" b ", "a", "", "  ", "b", "c", "a"])).unwrap();
        assert_eq!(got, strings(&["b", "a", "c"]));
    }

    #[test]
    fn normalize_enforces_bounds() {
        let many: Vec<Option<String>> = (0..101).map(|i| Some(format!("s{i}"))).collect();
        assert_eq!(
            normalize(&many).unwrap_err().reason,
            Reason::InvalidArgument
        );
        assert_eq!(
            normalize(&some(&[&"x".repeat(201)])).unwrap_err().reason,
            Reason::InvalidArgument
        );
        assert!(normalize(&some(&[&"x".repeat(200)])).is_ok());
        assert!(normalize(&some(&["re\u{1b}ad"])).is_err());
        assert!(normalize(&some(&["\u{202E}daer"])).is_err());
        assert_eq!(normalize(&some(&[" read\n"])).unwrap(), vec!["read"]);
        assert_eq!(
            normalize::<String>(&[None]).unwrap_err().reason,
            Reason::InvalidArgument
        );
    }

    #[test]
    fn scope_definitions_are_trimmed_bounded_and_visible() {
        assert_eq!(
            check_definition(Some("  repo:read "), None).unwrap(),
            "repo:read"
        );
        assert!(check_definition(None, None).is_err());
        assert!(check_definition(Some("   "), None).is_err());
        assert!(check_definition(Some(&"x".repeat(201)), None).is_err());
        assert!(check_definition(Some(&"é".repeat(200)), None).is_ok());
        assert!(check_definition(Some("a\u{0}b"), None).is_err());
        assert!(check_definition(Some("ok"), Some(&"d".repeat(1001))).is_err());
    }

    #[test]
    fn unknown_scope_rejected_only_once_a_registry_exists() {
        assert!(process(&some(&["anything"]), &[], None).is_ok());
        let e = process(&some(&["nope"]), &reg(&[("read", false)]), None).unwrap_err();
        assert_eq!(e.reason, Reason::UnknownScope);
    }

    #[test]
    fn ceiling_drops_silently_before_exclusivity_is_checked() {
        let r = reg(&[("read", false), ("write", false), ("dash", true)]);
        let ceiling = strings(&["read", "dash"]);
        assert_eq!(
            process(&some(&["read", "write"]), &r, Some(&ceiling)).unwrap(),
            strings(&["read"])
        );
        // write is dropped by the ceiling, so dash stands alone: allowed
        assert_eq!(
            process(&some(&["dash", "write"]), &r, Some(&ceiling)).unwrap(),
            strings(&["dash"])
        );
        let e = process(&some(&["dash", "read"]), &r, Some(&ceiling)).unwrap_err();
        assert_eq!(e.reason, Reason::ExclusiveScope);
    }

    #[test]
    fn available_prefers_defaults_then_registry_then_ceiling() {
        let r = reg(&[("a", false), ("b", false), ("c", false)]);
        let d = strings(&["c", "a"]);
        let ceil = strings(&["a", "b"]);
        assert_eq!(available(Some(&d), &r, Some(&ceil)), strings(&["a"]));
        assert_eq!(available(None, &r, Some(&ceil)), strings(&["a", "b"]));
        assert_eq!(available(None, &r, None), strings(&["a", "b", "c"]));
        assert_eq!(available(None, &[], Some(&ceil)), strings(&["a", "b"]));
        assert!(available(None, &[], None).is_empty());
    }

    #[test]
    fn effective_scopes_respect_the_current_ceiling() {
        let key = strings(&["read", "write"]);
        assert_eq!(effective(&key, None), key);
        let ceil = strings(&["write", "admin"]);
        assert_eq!(effective(&key, Some(&ceil)), strings(&["write"]));
    }

    #[test]
    fn grants_needs_key_scope_and_current_ceiling() {
        let key = strings(&["read", "write"]);
        assert!(grants::<String, String>(&[], &key, None));
        assert!(grants(&some(&["read"]), &key, None));
        assert!(!grants(&some(&["admin"]), &key, None));
        let ceil = strings(&["read"]);
        assert!(!grants(&some(&["write"]), &key, Some(&ceil)));
        assert!(!grants::<String, String>(&[None], &key, None));
    }
}
