//! Shared state of the service: the database pool and the metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::ApiError;
use crate::metrics::{Metrics, PoolUse};
use crate::spin::Spin;

/// How long a request waits for a connection, or for one to be opened,
/// before it is answered 503.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of the pool that concurrent requests share instead of
/// taking turns: tokio-postgres pipelines the statements of every task that
/// uses one client, so under load one write to PostgreSQL carries several
/// requests' statements and one read brings back their answers, instead of
/// a round trip (and two process wake-ups) each. Only for statements that
/// never wait on a lock (verify: its fallback usage write is `SKIP
/// LOCKED`), so no request queues behind another's lock wait.
pub struct SharedConnections {
    pool: Pool,
    slots: Vec<Mutex<Option<Arc<Object>>>>,
    next: AtomicUsize,
}

/// One per two CPUs, at least one.
fn half_the_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The default number of threads serving requests: one per two CPUs, at
/// least one. A request is a relay to PostgreSQL, which needs the other
/// half of the machine; with one thread, the connections' tasks and the
/// requests they answer run on it without waking each other across threads.
pub fn default_worker_threads() -> usize {
    half_the_cpus()
}

impl SharedConnections {
    /// `count` connections of `pool`, but never all of them: at least one
    /// stays for the routes that take turns. 0 = none shared.
    fn new(pool: Pool, count: usize) -> SharedConnections {
        let count = count.min(pool.status().max_size.saturating_sub(1));
        SharedConnections {
            pool,
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The default: one per two CPUs, at least one. One shared connection
    /// carries a PostgreSQL backend's worth of verifies (one core); more
    /// backends than the machine can run at once only add switches.
    pub fn default_count() -> usize {
        half_the_cpus()
    }

    /// The next shared connection, round robin; a closed one (the database
    /// restarted) is replaced by a fresh one from the pool. With none
    /// shared, a connection of the pool's own, for this request alone.
    pub async fn get(&self) -> Result<Arc<Object>, ApiError> {
        if self.slots.is_empty() {
            return Ok(Arc::new(self.pool.get().await?));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        {
            let held = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
                return Ok(Arc::clone(client));
            }
        }
        let fresh = Arc::new(self.pool.get().await?);
        let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
        // Dropping a closed one gives it back to the pool, which discards it
        // once its last user is done.
        *held = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    pub fn open(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_some())
            .count()
    }
}

/// Cloned for every request (each extractor and middleware that takes
/// it): one reference count, no allocation.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub pool: Pool,
    /// Part of `pool`, shared by `POST /v1/verify` requests.
    pub shared: SharedConnections,
    /// Spinning before parking (see [`crate::spin`]).
    pub spin: Spin,
    pub metrics: Metrics,
    /// The environment that callers' admin keys are checked in (the
    /// `environment` argument of `api_key_verify`); `None` = the
    /// connection's `api_keys.environment` setting.
    pub caller_environment: Option<String>,
    /// Settings of the self-serve dashboard.
    pub dashboard: Arc<DashboardConfig>,
    /// Longest a request body may keep the service waiting for its next
    /// bytes (default [`crate::BODY_TIMEOUT`]).
    pub body_timeout: std::time::Duration,
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
        Ok(AppState(Arc::new(AppStateInner {
            shared: SharedConnections::new(pool.clone(), SharedConnections::default_count()),
            pool,
            metrics: Metrics::default(),
            caller_environment: caller_environment.filter(|e| !e.is_empty()),
            dashboard: Arc::new(DashboardConfig::default()),
            body_timeout: crate::BODY_TIMEOUT,
            // `serve` picks the spin for its runtime (see main.rs)
            spin: Spin::new(std::time::Duration::ZERO),
        })))
    }

    /// How many of the pool's connections `POST /v1/verify` requests share
    /// (at most all but one; 0 = each takes its own). Before any request.
    pub fn with_shared_connections(mut self, count: usize) -> AppState {
        let inner = Arc::get_mut(&mut self.0).expect("configured before it is shared");
        inner.shared = SharedConnections::new(inner.pool.clone(), count);
        self
    }

    /// How long the request thread spins after a request starts or ends
    /// (zero = never). Before any request.
    pub fn with_spin(mut self, linger: Duration) -> AppState {
        let inner = Arc::get_mut(&mut self.0).expect("configured before it is shared");
        inner.spin = Spin::new(linger);
        self
    }

    /// This state with another body timeout. Before any request.
    pub fn with_body_timeout(mut self, timeout: std::time::Duration) -> AppState {
        let inner = Arc::get_mut(&mut self.0).expect("configured before it is shared");
        inner.body_timeout = timeout;
        self
    }

    /// This state with these dashboard settings.
    pub fn with_dashboard(mut self, dashboard: DashboardConfig) -> AppState {
        let inner = Arc::get_mut(&mut self.0).expect("configured before it is shared");
        inner.dashboard = Arc::new(dashboard);
        self
    }

    pub fn pool_use(&self) -> PoolUse {
        let s = self.pool.status();
        PoolUse {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            waiting: s.waiting,
            shared: self.shared.open(),
        }
    }
}
