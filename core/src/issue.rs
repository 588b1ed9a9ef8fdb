//! Facts in, decision out for issuing and updating keys (SPEC §5): SQL
//! gathers the facts (the owner policy, the key type and environment rows it
//! found or not, the scope registry, now), makes one call, and keeps only
//! locking, counting, inserting and auditing.

use crate::bounds;
use crate::error::{Reason, RuleError};
use crate::expiry::{truncate, ExpiresIn};
use crate::scopes::{self, RegisteredScope};

/// Microseconds in a day, for Postgres timestamps (µs since 2000-01-01).
pub(crate) const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// A key type as stored.
#[derive(Debug, Clone, Copy)]
pub struct KeyTypeFacts<'a> {
    pub name: &'a str,
    /// The scope ceiling; `None` = every scope.
    pub permissions: Option<&'a [String]>,
    pub revocable: bool,
    pub public: bool,
}

/// An untyped key is revocable; a typed one as its type says.
pub fn revocable(type_revocable: Option<bool>) -> bool {
    type_revocable.unwrap_or(true)
}

/// What the caller found for the environment of a new key.
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentFacts<'a> {
    /// The argument, else `api_keys.environment`; `None` when both are empty.
    pub wanted: Option<&'a str>,
    /// Whether `wanted` names a defined environment.
    pub found: bool,
    /// Whether any environment is defined at all.
    pub any_defined: bool,
}

impl EnvironmentFacts<'_> {
    /// Once any environment is defined, every new key must get a defined
    /// one; before that, keys get none.
    pub fn check(&self) -> Result<(), RuleError> {
        match self.wanted {
            None if self.any_defined => Err(RuleError::new(
                Reason::UnknownEnvironment,
                "no environment given (argument or api_keys.environment) and environments are defined",
            )),
            None => Ok(()),
            Some(_) if self.found => Ok(()),
            Some(w) => Err(RuleError::new(
                Reason::UnknownEnvironment,
                format!("environment {} is not defined", truncate(w, 100)),
            )),
        }
    }
}

/// `Some(Ok(type))` for a named type that exists, `Some(Err(name))` for one
/// that does not, `None` for an untyped key.
pub type KeyTypeLookup<'a> = Option<Result<KeyTypeFacts<'a>, &'a str>>;

/// Resolves the key type lookup: `unknown_key_type` when a named type does
/// not exist.
pub fn resolve_type<'a>(lookup: KeyTypeLookup<'a>) -> Result<Option<KeyTypeFacts<'a>>, RuleError> {
    match lookup {
        None => Ok(None),
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(name)) => Err(RuleError::new(
            Reason::UnknownKeyType,
            format!("key type {} is not defined", truncate(name, 100)),
        )),
    }
}

/// The arguments of `api_key_issue` that the rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct IssueRequest<'a> {
    pub owner_type: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    pub name: Option<&'a str>,
    /// `None` = the owner policy's default scopes.
    pub scopes: Option<&'a [Option<String>]>,
    pub expires_at: Option<i64>,
    pub expires_in: Option<&'a str>,
    /// `jsonb_typeof(metadata)` and its size as text, in bytes.
    pub metadata_type: &'a str,
    pub metadata_bytes: usize,
}

/// Everything else the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct IssueFacts<'a> {
    pub require_name: bool,
    pub default_scopes: Option<&'a [String]>,
    pub key_type: KeyTypeLookup<'a>,
    pub environment: EnvironmentFacts<'a>,
    pub registry: &'a [RegisteredScope],
    /// The transaction's timestamp.
    pub now: i64,
}

/// What to store for a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePlan {
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    /// Keep the plaintext for viewing: only keys of a public type.
    pub keep_plaintext: bool,
}

/// A key's name as stored: trimmed, `None` when blank; at most 255
/// characters, no control or bidi-override characters.
pub fn key_name(name: Option<&str>) -> Result<Option<String>, RuleError> {
    bounds::check_name(name)?;
    Ok(name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned))
}

/// `name_required` when the owner policy requires a name and there is none.
pub fn require_name(require: bool, name: Option<&str>, owner_type: &str) -> Result<(), RuleError> {
    if require && name.is_none() {
        return Err(RuleError::new(
            Reason::NameRequired,
            format!(
                "owner type {} requires a key name",
                truncate(owner_type, 100)
            ),
        ));
    }
    Ok(())
}

/// The expiry of a new key: `expires_in` wins over `expires_at`, which must
/// be in the future; a key of a non-revocable type cannot expire.
pub fn expiry(
    expires_in: Option<&str>,
    expires_at: Option<i64>,
    now: i64,
    key_type: Option<&KeyTypeFacts<'_>>,
) -> Result<Option<i64>, RuleError> {
    let at = match (expires_in, expires_at) {
        (Some(preset), _) => match ExpiresIn::parse(preset)? {
            ExpiresIn::Never => None,
            ExpiresIn::Days(n) => Some(now + i64::from(n) * DAY_MICROS),
        },
        (None, Some(at)) if at <= now => {
            return Err(RuleError::new(
                Reason::InvalidExpiry,
                "expires_at must be in the future",
            ))
        }
        (None, at) => at,
    };
    if let (Some(_), Some(t)) = (at, key_type) {
        if !t.revocable {
            return Err(RuleError::new(
                Reason::InvalidExpiry,
                format!("keys of the non-revocable type {} cannot expire", t.name),
            ));
        }
    }
    Ok(at)
}

/// The scopes of a new key (issued or imported): the requested ones, else
/// the owner policy's defaults, else none; processed against the registry
/// and the type's ceiling.
pub fn new_key_scopes(
    requested: Option<&[Option<String>]>,
    facts: &IssueFacts<'_>,
    key_type: Option<&KeyTypeFacts<'_>>,
) -> Result<Vec<String>, RuleError> {
    let defaults: Vec<Option<String>>;
    let requested: &[Option<String>] = match (requested, facts.default_scopes) {
        (Some(s), _) => s,
        (None, Some(d)) => {
            defaults = d.iter().cloned().map(Some).collect();
            &defaults
        }
        (None, None) => &[],
    };
    let ceiling = key_type.and_then(|t| t.permissions);
    scopes::process(requested, facts.registry, ceiling)
}

/// The decision for `api_key_issue`, in SPEC order: bounds, required name,
/// key type, environment, expiry, scopes. Limits are checked by the caller
/// under the owner lock ([`crate::limits`]).
pub fn plan(req: &IssueRequest<'_>, facts: &IssueFacts<'_>) -> Result<IssuePlan, RuleError> {
    bounds::check_owner(req.owner_type, req.owner_id)?;
    let name = key_name(req.name)?;
    bounds::check_metadata(req.metadata_type, req.metadata_bytes)?;
    require_name(
        facts.require_name,
        name.as_deref(),
        req.owner_type.unwrap_or(""),
    )?;
    let key_type = resolve_type(facts.key_type)?;
    facts.environment.check()?;
    let expires_at = expiry(req.expires_in, req.expires_at, facts.now, key_type.as_ref())?;
    let scopes = new_key_scopes(req.scopes, facts, key_type.as_ref())?;
    Ok(IssuePlan {
        name,
        scopes,
        expires_at,
        keep_plaintext: key_type.is_some_and(|t| t.public),
    })
}

/// The arguments of `api_key_update` (NULL = unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateRequest<'a> {
    pub name: Option<&'a str>,
    pub scopes: Option<&'a [Option<String>]>,
    /// `jsonb_typeof(metadata)` and its size, when metadata is given.
    pub metadata: Option<(&'a str, usize)>,
}

/// The key being updated and what else the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct UpdateFacts<'a> {
    pub owner_type: &'a str,
    pub current_name: Option<&'a str>,
    pub current_scopes: &'a [String],
    pub require_name: bool,
    pub ceiling: Option<&'a [String]>,
    pub registry: &'a [RegisteredScope],
}

/// What `api_key_update` stores, and which fields it changed (for the audit
/// trail), in the order name, scopes, metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePlan {
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub changed: Vec<&'static str>,
}

/// The decision for `api_key_update`: `name => ''` clears the name (refused
/// under `require_name`), scopes go through issue's processing, metadata is
/// replaced.
pub fn plan_update(
    req: &UpdateRequest<'_>,
    facts: &UpdateFacts<'_>,
) -> Result<UpdatePlan, RuleError> {
    let mut changed = Vec::new();
    let mut name = facts.current_name.map(str::to_owned);
    if req.name.is_some() {
        name = key_name(req.name)?;
        require_name(facts.require_name, name.as_deref(), facts.owner_type)?;
        changed.push("name");
    }
    if let Some((json_type, bytes)) = req.metadata {
        bounds::check_metadata(json_type, bytes)?;
    }
    let mut scopes = facts.current_scopes.to_vec();
    if let Some(requested) = req.scopes {
        scopes = scopes::process(requested, facts.registry, facts.ceiling)?;
        changed.push("scopes");
    }
    if req.metadata.is_some() {
        changed.push("metadata");
    }
    Ok(UpdatePlan {
        name,
        scopes,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY_MICROS;

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    fn no_env() -> EnvironmentFacts<'static> {
        EnvironmentFacts {
            wanted: None,
            found: false,
            any_defined: false,
        }
    }

    fn facts<'a>() -> IssueFacts<'a> {
        IssueFacts {
            require_name: false,
            default_scopes: None,
            key_type: None,
            environment: no_env(),
            registry: &[],
            now: NOW,
        }
    }

    fn request<'a>() -> IssueRequest<'a> {
        IssueRequest {
            owner_type: Some("user"),
            owner_id: Some("42"),
            metadata_type: "object",
            metadata_bytes: 2,
            ..IssueRequest::default()
        }
    }

    #[test]
    fn a_plain_issue_keeps_the_trimmed_name_and_no_expiry() {
        let mut r = request();
        r.name = Some("  CI deploy ");
        let p = plan(&r, &facts()).unwrap();
        assert_eq!(p.name.as_deref(), Some("CI deploy"));
        assert_eq!((p.expires_at, p.keep_plaintext), (None, false));
        assert!(p.scopes.is_empty());
        r.name = Some("   ");
        assert_eq!(plan(&r, &facts()).unwrap().name, None);
    }

    #[test]
    fn reasons_come_in_spec_order() {
        let mut r = request();
        r.owner_id = None;
        r.expires_in = Some("bogus");
        let mut f = facts();
        f.require_name = true;
        f.key_type = Some(Err("nope"));
        assert_eq!(plan(&r, &f).unwrap_err().reason, Reason::InvalidArgument);
        r.owner_id = Some("1");
        assert_eq!(plan(&r, &f).unwrap_err().reason, Reason::NameRequired);
        r.name = Some("n");
        assert_eq!(plan(&r, &f).unwrap_err().reason, Reason::UnknownKeyType);
        f.key_type = None;
        f.environment.any_defined = true;
        assert_eq!(plan(&r, &f).unwrap_err().reason, Reason::UnknownEnvironment);
        f.environment = no_env();
        assert_eq!(plan(&r, &f).unwrap_err().reason, Reason::InvalidExpiry);
    }

    #[test]
    fn environments_are_required_once_any_is_defined() {
        let none = no_env();
        assert!(none.check().is_ok());
        let required = EnvironmentFacts {
            any_defined: true,
            ..none
        };
        assert_eq!(
            required.check().unwrap_err().reason,
            Reason::UnknownEnvironment
        );
        let unknown = EnvironmentFacts {
            wanted: Some("staging"),
            found: false,
            any_defined: true,
        };
        assert!(unknown.check().unwrap_err().detail.contains("staging"));
        let known = EnvironmentFacts {
            found: true,
            ..unknown
        };
        assert!(known.check().is_ok());
    }

    #[test]
    fn expires_in_wins_and_expires_at_must_be_in_the_future() {
        assert_eq!(
            expiry(Some("7_days"), Some(1), NOW, None).unwrap(),
            Some(NOW + 7 * DAY_MICROS)
        );
        assert_eq!(
            expiry(Some("no_expiration"), Some(NOW + 5), NOW, None).unwrap(),
            None
        );
        assert_eq!(
            expiry(None, Some(NOW + 5), NOW, None).unwrap(),
            Some(NOW + 5)
        );
        for past in [NOW, NOW - 1] {
            assert_eq!(
                expiry(None, Some(past), NOW, None).unwrap_err().reason,
                Reason::InvalidExpiry
            );
        }
        assert_eq!(
            expiry(Some(""), None, NOW, None).unwrap_err().reason,
            Reason::InvalidExpiry
        );
    }

    #[test]
    fn a_non_revocable_type_cannot_expire() {
        let t = KeyTypeFacts {
            name: "pk",
            permissions: None,
            revocable: false,
            public: false,
        };
        assert_eq!(
            expiry(Some("30_days"), None, NOW, Some(&t))
                .unwrap_err()
                .reason,
            Reason::InvalidExpiry
        );
        assert_eq!(
            expiry(Some("no_expiration"), None, NOW, Some(&t)).unwrap(),
            None
        );
        assert!(revocable(None));
        assert!(!revocable(Some(false)));
    }

    #[test]
    fn scopes_default_to_the_policy_and_stay_inside_the_ceiling() {
        let ceiling = vec!["read".to_owned()];
        let defaults = vec!["read".to_owned(), "write".to_owned()];
        let t = KeyTypeFacts {
            name: "pk",
            permissions: Some(&ceiling),
            revocable: false,
            public: true,
        };
        let mut f = facts();
        f.default_scopes = Some(&defaults);
        f.key_type = Some(Ok(t));
        let p = plan(&request(), &f).unwrap();
        assert_eq!(p.scopes, vec!["read"]);
        assert!(p.keep_plaintext);
        let explicit = some(&["write", "read"]);
        let mut r = request();
        r.scopes = Some(&explicit);
        assert_eq!(plan(&r, &f).unwrap().scopes, vec!["read"]);
        let empty: Vec<Option<String>> = Vec::new();
        r.scopes = Some(&empty);
        assert!(
            plan(&r, &f).unwrap().scopes.is_empty(),
            "{{}} is kept as given"
        );
    }

    #[test]
    fn update_changes_only_what_is_given() {
        let current = vec!["read".to_owned()];
        let f = UpdateFacts {
            owner_type: "user",
            current_name: Some("old"),
            current_scopes: &current,
            require_name: false,
            ceiling: None,
            registry: &[],
        };
        let p = plan_update(&UpdateRequest::default(), &f).unwrap();
        assert_eq!((p.name.as_deref(), p.changed.len()), (Some("old"), 0));
        let scopes = some(&["write"]);
        let r = UpdateRequest {
            name: Some(""),
            scopes: Some(&scopes),
            metadata: Some(("object", 2)),
        };
        let p = plan_update(&r, &f).unwrap();
        assert_eq!(p.name, None);
        assert_eq!(p.scopes, vec!["write"]);
        assert_eq!(p.changed, vec!["name", "scopes", "metadata"]);
        let strict = UpdateFacts {
            require_name: true,
            ..f
        };
        assert_eq!(
            plan_update(&r, &strict).unwrap_err().reason,
            Reason::NameRequired
        );
        let bad = UpdateRequest {
            metadata: Some(("array", 2)),
            ..UpdateRequest::default()
        };
        assert_eq!(
            plan_update(&bad, &f).unwrap_err().reason,
            Reason::InvalidArgument
        );
    }
}
