use std::net::SocketAddr;
use std::process::ExitCode;

use api_keys_admin::cli::dashboard_link::DashboardLinkArgs;
use api_keys_admin::cli::{self, BootstrapArgs, KeysCommand};
use api_keys_admin::state::DashboardConfig;
use api_keys_admin::AppState;
use clap::{Parser, Subcommand};

/// A request allocates and frees dozens of small buffers across hyper,
/// axum, serde and tokio-postgres; glibc's malloc took ~10% of the
/// service's CPU under load (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Admin HTTP service and CLI for the api_keys PostgreSQL extension.
#[derive(Debug, Parser)]
#[command(name = "api-keys-admin", version)]
struct Cli {
    /// Connection URL of a LOGIN role granted `api_keys_admin` (never a superuser).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[arg(long, env = "API_KEYS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Size of the database connection pool (default: twice the CPUs;
        /// more connections than the database's cores lengthen the tail).
        #[arg(long, env = "API_KEYS_MAX_CONNECTIONS", default_value_t = default_pool_size())]
        max_connections: usize,
        /// Pool connections that concurrent `POST /v1/verify` requests share,
        /// their statements pipelined (default: one per two CPUs; 0 = none;
        /// at most all but one).
        #[arg(long, env = "API_KEYS_SHARED_CONNECTIONS")]
        shared_connections: Option<usize>,
        /// Environment that callers' admin keys are verified in under strict
        /// isolation (default: the connection's `api_keys.environment`).
        #[arg(long, env = "API_KEYS_ADMIN_ENVIRONMENT")]
        caller_environment: Option<String>,
        /// Where browsers reach this service (e.g. https://keys.example.com):
        /// the base of dashboard sign-in links (default: http:// + Host).
        #[arg(long, env = "API_KEYS_PUBLIC_URL")]
        public_url: Option<String>,
        /// A CSS file served after the dashboard's stylesheet, to theme it
        /// by its --api-keys-* variables.
        #[arg(long, env = "API_KEYS_DASHBOARD_THEME")]
        dashboard_theme: Option<std::path::PathBuf>,
        /// Threads serving requests (default: one per two CPUs, at least
        /// one). The service only relays to PostgreSQL, which needs the
        /// other CPUs; one thread serves everything without cross-thread
        /// wake-ups.
        #[arg(long, env = "API_KEYS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
        worker_threads: Option<u16>,
        /// Microseconds the request thread keeps polling its sockets after
        /// a request starts or ends, instead of sleeping (0 = never). Under
        /// load this saves the wake-ups that cost most on virtual machines;
        /// an idle service does not spin. Default: 200 with one request
        /// thread; 0 with more (a parked thread still holds the sockets, so
        /// spinning saves nothing there) or under a cgroup CPU quota
        /// (spinning would spend it).
        #[arg(long, env = "API_KEYS_SPIN_MICROS")]
        spin_micros: Option<u64>,
    },
    /// Issue an admin key (keys:read, keys:write, keys:verify) and print it once.
    Bootstrap(BootstrapArgs),
    /// Print a single-use sign-in link to the dashboard for one owner.
    DashboardLink(DashboardLinkArgs),
    /// Manage keys straight in the database.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

fn default_pool_size() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

/// The runtime for `threads` request threads: one thread is a
/// current-thread runtime (no work stealing, no wake-ups across threads).
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Serve { worker_threads, .. } => {
            worker_threads.map_or_else(api_keys_admin::state::default_worker_threads, usize::from)
        }
        // The CLI runs one statement at a time.
        _ => 1,
    };
    match runtime(threads) {
        Ok(rt) => rt.block_on(run(cli, threads)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli, threads: usize) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(api_keys_admin::log_filter(
            &std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let Some(database_url) = cli.database_url else {
        eprintln!("error: --database-url or DATABASE_URL is required");
        return ExitCode::from(2);
    };
    match cli.command {
        Command::Serve {
            listen,
            max_connections,
            shared_connections,
            caller_environment,
            public_url,
            dashboard_theme,
            worker_threads: _,
            spin_micros,
        } => {
            let theme_css = match dashboard_theme.map(std::fs::read_to_string).transpose() {
                Ok(css) => css,
                Err(e) => {
                    eprintln!("error: cannot read --dashboard-theme: {e}");
                    return ExitCode::from(2);
                }
            };
            let state = match AppState::new(&database_url, max_connections, caller_environment) {
                Ok(state) => match shared_connections {
                    Some(n) => state.with_shared_connections(n),
                    None => state,
                }
                .with_spin(spin_micros.map_or_else(
                    || api_keys_admin::spin::default_linger(threads),
                    std::time::Duration::from_micros,
                ))
                .with_dashboard(DashboardConfig {
                    public_url,
                    theme_css,
                }),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match api_keys_admin::serve(listen, state).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bootstrap(args) => cli::bootstrap(&database_url, args).await,
        Command::DashboardLink(args) => {
            cli::dashboard_link::dashboard_link(&database_url, args).await
        }
        Command::Keys { command } => cli::keys(&database_url, command).await,
    }
}
