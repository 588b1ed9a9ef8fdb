//! `api-keys-admin dashboard-link`: a single-use sign-in link to the
//! dashboard for one owner, straight from the database (what
//! `POST /v1/dashboard_sessions` answers, for operators and the demo).

use std::process::ExitCode;

use api_keys_core::dashboard::Secret;
use clap::Args;

use super::{connect, finish, one, Failure};

#[derive(Debug, Args)]
pub struct DashboardLinkArgs {
    #[arg(long)]
    pub owner_type: String,
    #[arg(long)]
    pub owner_id: String,
    /// Seconds the link stays usable (1-3600, default 300).
    #[arg(long)]
    pub ttl_seconds: Option<i32>,
    /// Where the dashboard's return link leads (http or https).
    #[arg(long)]
    pub return_url: Option<String>,
    #[arg(long)]
    pub return_text: Option<String>,
    /// Where browsers reach the admin service.
    #[arg(
        long,
        env = "API_KEYS_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
}

pub async fn dashboard_link(database_url: &str, args: DashboardLinkArgs) -> ExitCode {
    finish(run(database_url, args).await)
}

async fn run(database_url: &str, args: DashboardLinkArgs) -> Result<(), Failure> {
    let client = connect(database_url).await?;
    let link = Secret::generate().map_err(|e| Failure::Error(format!("no randomness: {e}")))?;
    let digest = link.hash().0.to_vec();
    one(
        &client,
        "SELECT to_jsonb(api_keys.dashboard_session_create($1::text, $2::text, $3::bytea, \
             $4::integer, $5::text, $6::text))",
        &[
            &args.owner_type,
            &args.owner_id,
            &digest,
            &args.ttl_seconds,
            &args.return_url,
            &args.return_text,
        ],
    )
    .await?;
    println!(
        "{}/dashboard/enter/{}",
        args.public_url.trim_end_matches('/'),
        link.expose()
    );
    Ok(())
}
