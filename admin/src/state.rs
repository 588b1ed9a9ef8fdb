//! Shared state of the service: the database pool and the metrics.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::metrics::{Metrics, PoolUse};

/// How long a request waits for a connection, or for one to be opened,
/// before it is answered 503.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    /// The environment that callers' admin keys are checked in (the
    /// `environment` argument of `api_key_verify`); `None` = the
    /// connection's `api_keys.environment` setting.
    pub caller_environment: Option<String>,
    /// Settings of the self-serve dashboard.
    pub dashboard: Arc<DashboardConfig>,
}

/// Settings of the self-serve dashboard (SPEC §9).
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// Where browsers reach this service (`https://keys.example.com`): the
    /// base of sign-in links. `None` = `http://` + the request's Host.
    pub public_url: Option<String>,
    /// CSS served after the stylesheet, to theme it by its variables.
    pub theme_css: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the database URL is not a valid connection string: {0}")]
    Url(tokio_postgres::Error),
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
}

impl AppState {
    /// A pool of at most `max_connections` connections to `database_url`.
    /// No connection is opened until a request needs one.
    pub fn new(
        database_url: &str,
        max_connections: usize,
        caller_environment: Option<String>,
    ) -> Result<AppState, StateError> {
        let config: tokio_postgres::Config = database_url.parse().map_err(StateError::Url)?;
        AppState::from_config(config, max_connections, caller_environment)
    }

    /// [`new`](Self::new) from a parsed configuration.
    pub fn from_config(
        mut config: tokio_postgres::Config,
        max_connections: usize,
        caller_environment: Option<String>,
    ) -> Result<AppState, StateError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("api-keys-admin");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()?;
        Ok(AppState {
            pool,
            metrics: Arc::new(Metrics::default()),
            caller_environment: caller_environment.filter(|e| !e.is_empty()),
            dashboard: Arc::new(DashboardConfig::default()),
        })
    }

    /// This state with these dashboard settings.
    pub fn with_dashboard(mut self, dashboard: DashboardConfig) -> AppState {
        self.dashboard = Arc::new(dashboard);
        self
    }

    pub fn pool_use(&self) -> PoolUse {
        let s = self.pool.status();
        PoolUse {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            waiting: s.waiting,
        }
    }
}
