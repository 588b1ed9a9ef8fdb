//! The operator CLI (SPEC §8): `bootstrap` and `keys …`, straight to the
//! database as the role in the URL. Exit codes: 0 ok, 1 refused (the reason
//! on stderr), 2 usage (clap's own).

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::auth::{Scope, ADMIN_OWNER_TYPE};
use crate::error::reason_of;

mod render;

pub mod dashboard_link;

use render::{print, print_issued, KEY_COLUMNS};

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Owner id of the admin key (its owner type is `api_keys_admin`).
    #[arg(long, default_value = "admin")]
    pub owner_id: String,
    #[arg(long, default_value = "bootstrap")]
    pub name: String,
    /// Required once environments are defined (every new key needs one).
    #[arg(long, env = "API_KEYS_ENVIRONMENT")]
    pub environment: Option<String>,
    /// `no_expiration`, `30_days`, … (see `api_key_expiration_presets`).
    #[arg(long)]
    pub expires_in: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key; its token is printed once.
    Issue {
        #[arg(long)]
        owner_type: String,
        #[arg(long)]
        owner_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Repeatable: `--scope a --scope b`.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        key_type: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        expires_in: Option<String>,
        /// A JSON object.
        #[arg(long)]
        metadata: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List an owner's keys, newest first.
    List {
        #[arg(long)]
        owner_type: String,
        #[arg(long)]
        owner_id: String,
        /// `active`, `inactive`, `expired` or `revoked`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        key_type: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Get {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Change a key's name, scopes or metadata.
    Update {
        id: Uuid,
        /// `--name ''` clears the name.
        #[arg(long)]
        name: Option<String>,
        /// Repeatable; replaces the scopes when given.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A JSON object; replaces the metadata.
        #[arg(long)]
        metadata: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key.
    Revoke {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Rotate a key: a replacement (its token printed once); the old key
    /// stays valid for the grace period (0 = revoked now).
    Rotate {
        id: Uuid,
        #[arg(long, default_value_t = 0)]
        grace_seconds: u32,
        /// The replacement's expiry; default: the old key's lifetime length.
        #[arg(long)]
        expires_in: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Verify a token read from stdin (so it stays out of the process list).
    Verify {
        /// Repeatable: scopes the key must hold.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Why a command did not succeed: exit code 1 either way.
enum Failure {
    /// A refusal of the extension (reason and message) or a non-valid verify.
    Refused(String),
    /// Cannot connect, or an unexpected error.
    Error(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if reason_of(db.message()).is_some() => {
                Failure::Refused(db.message().to_owned())
            }
            Some(db) => Failure::Error(format!("{}: {}", db.code().code(), db.message())),
            None => Failure::Error(e.to_string()),
        }
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Failure> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| Failure::Error(format!("cannot connect to the database: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    });
    Ok(client)
}

async fn one(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Value, Failure> {
    let row = client.query_one(sql, params).await?;
    Ok(row.try_get::<_, Option<Value>>(0)?.unwrap_or(Value::Null))
}

fn parse_metadata(text: Option<&str>) -> Result<Option<Value>, Failure> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| {
            Failure::Refused(format!(
                "api_keys: invalid_argument: --metadata is not JSON: {e}"
            ))
        })
    })
    .transpose()
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(reason)) | Err(Failure::Error(reason)) => {
            let _ = writeln!(io::stderr(), "{reason}");
            ExitCode::from(1)
        }
    }
}

pub async fn bootstrap(database_url: &str, args: BootstrapArgs) -> ExitCode {
    finish(run_bootstrap(database_url, args).await)
}

async fn run_bootstrap(database_url: &str, args: BootstrapArgs) -> Result<(), Failure> {
    let client = connect(database_url).await?;
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let issued = one(
        &client,
        "SELECT to_jsonb(api_keys.api_key_issue(owner_type => $1::text, owner_id => $2::text, \
             name => $3::text, scopes => $4::text[], environment => $5::text, expires_in => $6::text))",
        &[&ADMIN_OWNER_TYPE, &args.owner_id, &args.name, &scopes, &args.environment, &args.expires_in],
    )
    .await
    .map_err(bootstrap_hint)?;
    print_issued(&issued, args.json);
    Ok(())
}

/// What an operator does about the refusals a fresh admin key meets once
/// the database is configured.
fn bootstrap_hint(failure: Failure) -> Failure {
    let Failure::Refused(message) = failure else {
        return failure;
    };
    let hint = match reason_of(&message) {
        Some("unknown_scope") => {
            "hint: a scope registry exists; register the admin scopes first: \
             SELECT api_keys.api_key_scope_define('keys:read'); \
             SELECT api_keys.api_key_scope_define('keys:write'); \
             SELECT api_keys.api_key_scope_define('keys:verify');"
        }
        Some("unknown_environment") => {
            "hint: environments are defined; every new key needs one: --environment <name>"
        }
        _ => return Failure::Refused(message),
    };
    Failure::Refused(format!("{message}\n{hint}"))
}

pub async fn keys(database_url: &str, command: KeysCommand) -> ExitCode {
    finish(run_keys(database_url, command).await)
}

fn scopes_arg(scopes: Vec<String>) -> Option<Vec<String>> {
    (!scopes.is_empty()).then_some(scopes)
}

async fn run_keys(database_url: &str, command: KeysCommand) -> Result<(), Failure> {
    // Read the token before connecting: a closed stdin is a usage problem
    // the operator should see before anything else happens.
    let token = match &command {
        KeysCommand::Verify { .. } => {
            let mut line = String::new();
            io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::Error(format!("cannot read the token from stdin: {e}")))?;
            Some(line.trim().to_owned())
        }
        _ => None,
    };
    let client = connect(database_url).await?;
    match command {
        KeysCommand::Issue {
            owner_type,
            owner_id,
            name,
            scopes,
            key_type,
            environment,
            expires_in,
            metadata,
            json,
        } => {
            let metadata = parse_metadata(metadata.as_deref())?.unwrap_or_else(|| json!({}));
            let issued = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_issue(owner_type => $1::text, owner_id => $2::text, \
                     name => $3::text, scopes => $4::text[], key_type => $5::text, \
                     environment => $6::text, expires_in => $7::text, metadata => $8::jsonb))",
                &[&owner_type, &owner_id, &name, &scopes_arg(scopes), &key_type, &environment, &expires_in, &metadata],
            )
            .await?;
            print_issued(&issued, json);
        }
        KeysCommand::List {
            owner_type,
            owner_id,
            status,
            key_type,
            json,
        } => {
            let keys = one(
                &client,
                "SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.created_at DESC, k.id DESC), '[]'::jsonb) \
                   FROM api_keys.api_key_list($1::text, $2::text, $3::text, $4::text) k",
                &[&owner_type, &owner_id, &status, &key_type],
            )
            .await?;
            print(&keys, json, &KEY_COLUMNS);
        }
        KeysCommand::Get { id, json } => {
            let key = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_get($1::uuid))",
                &[&id],
            )
            .await?;
            print(&key, json, &KEY_COLUMNS);
        }
        KeysCommand::Update {
            id,
            name,
            scopes,
            metadata,
            json,
        } => {
            let metadata = parse_metadata(metadata.as_deref())?;
            let key = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_update($1::uuid, $2::text, $3::text[], $4::jsonb))",
                &[&id, &name, &scopes_arg(scopes), &metadata],
            )
            .await?;
            print(&key, json, &KEY_COLUMNS);
        }
        KeysCommand::Revoke { id, json } => {
            let revoked = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_revoke($1::uuid))",
                &[&id],
            )
            .await?;
            let key = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_get($1::uuid))",
                &[&id],
            )
            .await?;
            if json {
                print(&json!({"revoked": revoked, "key": key}), true, &[]);
            } else {
                let mut columns = vec!["revoked"];
                columns.extend(KEY_COLUMNS);
                let mut row = key.clone();
                if let Value::Object(m) = &mut row {
                    m.insert("revoked".to_owned(), revoked);
                }
                print(&row, false, &columns);
            }
        }
        KeysCommand::Rotate {
            id,
            grace_seconds,
            expires_in,
            json,
        } => {
            let grace = f64::from(grace_seconds);
            let issued = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_rotate($1::uuid, \
                     pg_catalog.make_interval(secs => $2::pg_catalog.float8), $3::text))",
                &[&id, &grace, &expires_in],
            )
            .await?;
            print_issued(&issued, json);
        }
        KeysCommand::Verify {
            scopes,
            environment,
            json,
        } => {
            let verification = one(
                &client,
                "SELECT to_jsonb(api_keys.api_key_verify($1::text, $2::text[], $3::text))",
                &[&token, &scopes, &environment],
            )
            .await?;
            print(
                &verification,
                json,
                &[
                    "valid",
                    "code",
                    "key_id",
                    "owner_type",
                    "owner_id",
                    "name",
                    "environment",
                    "scopes",
                    "expires_at",
                ],
            );
            let code = verification
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("malformed");
            if code != "valid" {
                return Err(Failure::Refused(format!(
                    "api_keys: {code}: the key was not accepted"
                )));
            }
        }
    }
    Ok(())
}
