//! Facts in, decision out for configuration (SPEC §4): key types,
//! environments, scopes and owner policies. The caller looks up whether a
//! prefix is taken and the scope registry; the decision is made here.

use crate::bounds;
use crate::error::RuleError;
use crate::scopes::{self, RegisteredScope};
use crate::token;

/// `api_key_type_define`'s arguments.
#[derive(Debug, Clone, Copy)]
pub struct KeyTypeDefinition<'a> {
    pub name: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub permissions: Option<&'a [Option<String>]>,
    pub revocable: Option<bool>,
    pub public: Option<bool>,
    pub per_owner_limit: Option<i32>,
}

/// Checks a key type definition; returns the ceiling to store (normalised,
/// unknown scopes refused once a registry exists). `prefix_taken_by` names
/// another type that already uses the prefix.
pub fn key_type(
    d: &KeyTypeDefinition<'_>,
    prefix_taken_by: Option<&str>,
    registry: &[RegisteredScope],
) -> Result<Option<Vec<String>>, RuleError> {
    bounds::check_label("key type name", d.name)?;
    let prefix = d.prefix.unwrap_or("");
    token::check_segment("key type prefix", prefix)?;
    let (Some(revocable), Some(public)) = (d.revocable, d.public) else {
        return Err(RuleError::invalid("revocable and public must not be NULL"));
    };
    if d.per_owner_limit.is_some_and(|n| n < 0) {
        return Err(RuleError::invalid("per_owner_limit must be >= 0"));
    }
    if public && (revocable || d.permissions.is_none()) {
        return Err(RuleError::invalid(
            "a public key type must be non-revocable and have a scope ceiling (permissions)",
        ));
    }
    let ceiling = d
        .permissions
        .map(|p| scopes::known(p, registry))
        .transpose()?;
    if let Some(other) = prefix_taken_by {
        return Err(RuleError::invalid(format!(
            "prefix {prefix} is already used by key type {other}"
        )));
    }
    Ok(ceiling)
}

/// Checks an environment definition. `segment_taken_by` names another
/// environment that already uses the segment.
pub fn environment(
    name: Option<&str>,
    prefix_segment: Option<&str>,
    segment_taken_by: Option<&str>,
) -> Result<(), RuleError> {
    bounds::check_label("environment name", name)?;
    let segment = prefix_segment.unwrap_or("");
    token::check_segment("environment prefix_segment", segment)?;
    if let Some(other) = segment_taken_by {
        return Err(RuleError::invalid(format!(
            "prefix segment {segment} is already used by environment {other}"
        )));
    }
    Ok(())
}

/// Checks a scope definition; returns the name to store (trimmed).
pub fn scope(
    name: Option<&str>,
    description: Option<&str>,
    exclusive: Option<bool>,
) -> Result<String, RuleError> {
    let name = scopes::check_definition(name, description)?;
    if exclusive.is_none() {
        return Err(RuleError::invalid("exclusive must not be NULL"));
    }
    Ok(name)
}

/// Checks an owner policy; returns the default scopes to store.
pub fn owner_policy(
    owner_type: Option<&str>,
    max_keys: Option<i32>,
    default_scopes: Option<&[Option<String>]>,
    registry: &[RegisteredScope],
) -> Result<Option<Vec<String>>, RuleError> {
    bounds::check_label("owner_type", owner_type)?;
    if max_keys.is_some_and(|n| n < 0) {
        return Err(RuleError::invalid("max_keys must be >= 0"));
    }
    default_scopes
        .map(|d| scopes::known(d, registry))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reason;

    fn def<'a>() -> KeyTypeDefinition<'a> {
        KeyTypeDefinition {
            name: Some("secret"),
            prefix: Some("sk"),
            permissions: None,
            revocable: Some(true),
            public: Some(false),
            per_owner_limit: None,
        }
    }

    #[test]
    fn a_public_type_is_non_revocable_with_a_ceiling() {
        let ceiling = vec![Some("read".to_owned())];
        let public = KeyTypeDefinition {
            public: Some(true),
            ..def()
        };
        assert!(key_type(&public, None, &[]).is_err(), "revocable");
        let public = KeyTypeDefinition {
            revocable: Some(false),
            ..public
        };
        assert!(key_type(&public, None, &[]).is_err(), "no ceiling");
        let public = KeyTypeDefinition {
            permissions: Some(&ceiling),
            ..public
        };
        assert_eq!(
            key_type(&public, None, &[]).unwrap(),
            Some(vec!["read".to_owned()])
        );
    }

    #[test]
    fn type_definitions_check_every_argument() {
        assert!(key_type(&def(), None, &[]).unwrap().is_none());
        for bad in [
            KeyTypeDefinition {
                name: None,
                ..def()
            },
            KeyTypeDefinition {
                prefix: Some("Sk"),
                ..def()
            },
            KeyTypeDefinition {
                revocable: None,
                ..def()
            },
            KeyTypeDefinition {
                per_owner_limit: Some(-1),
                ..def()
            },
        ] {
            assert_eq!(
                key_type(&bad, None, &[]).unwrap_err().reason,
                Reason::InvalidArgument
            );
        }
        let e = key_type(&def(), Some("other"), &[]).unwrap_err();
        assert!(e.detail.contains("already used by key type other"));
    }

    #[test]
    fn environments_scopes_and_policies() {
        assert!(environment(Some("live"), Some("live"), None).is_ok());
        assert!(environment(Some("live"), Some("LIVE"), None).is_err());
        assert!(environment(Some("live"), Some("live"), Some("prod")).is_err());
        assert_eq!(scope(Some(" read "), None, Some(false)).unwrap(), "read");
        assert!(scope(Some("read"), None, None).is_err());
        assert!(owner_policy(Some("user"), Some(-1), None, &[]).is_err());
        let reg = [RegisteredScope {
            name: "read".into(),
            exclusive: false,
        }];
        let unknown = vec![Some("write".to_owned())];
        assert_eq!(
            owner_policy(Some("user"), None, Some(&unknown), &reg)
                .unwrap_err()
                .reason,
            Reason::UnknownScope
        );
    }
}
