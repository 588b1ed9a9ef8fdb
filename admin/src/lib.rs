//! `api-keys-admin`: the admin HTTP service over the `api_keys` extension
//! (SPEC §8). Each handler calls one SQL function of the extension and
//! checks only the JSON shape; every rule lives in the extension.

pub mod auth;
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;
pub mod rows;
pub mod spin;
pub mod state;
pub mod timeout;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

pub use error::ApiError;
pub use state::AppState;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take, body and database work included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The route template a request matched (`/v1/keys/{id}`), never its path:
/// a path may carry anything a client typed, tokens included.
fn route_of(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched")
}

/// The edge of every request, in one middleware (each `from_fn` layer
/// boxes and clones the rest of the stack per request): refuses a declared
/// oversized body before reading any of it (bodies without a length are
/// cut off at the same limit while being read), times the body's reads
/// (a timer only when it is late, see [`timeout`]) and records the answer
/// in the metrics.
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // MatchedPath is an Arc<str>: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let started = Instant::now();
    state.spin.event(started);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        ApiError::PayloadTooLarge { limit: BODY_LIMIT }.into_response()
    } else {
        let body_timeout = state.body_timeout;
        next.run(req.map(|body| timeout::lazy(body, body_timeout)))
            .await
    };
    let status = response.status().as_u16();
    let ended = Instant::now();
    state.spin.event(ended);
    state
        .metrics
        .record_request(route, &method, status, ended - started);
    if status >= 500 {
        // The request span is at debug level: say where it happened here.
        tracing::warn!(%method, route, status, "answered with a server error");
    }
    response
}

/// tower-http's request timeout answers with an empty body: give it the
/// SPEC one. (A late body is refused by the extractor, as 408.)
async fn json_timeouts(response: Response) -> Response {
    let bare = response.headers().get(CONTENT_TYPE).is_none();
    match response.status() {
        StatusCode::SERVICE_UNAVAILABLE if bare => {
            ApiError::Unavailable("request timed out".to_owned()).into_response()
        }
        _ => response,
    }
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The whole HTTP API, ready to serve or to drive from tests.
pub fn app(state: AppState) -> Router {
    // A span per request at debug level: disabled at the default level, so
    // it costs nothing there (at info its fields were formatted, with
    // their allocations, on every request).
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            tracing::debug_span!("request", method = %req.method(), route = route_of(req))
        })
        .on_request(())
        .on_failure(());
    let (routes, _document) = routes::api().split_for_parts();
    // The dashboard's HTML pages are not part of the JSON API document.
    routes
        .merge(dashboard::router())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(trace)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::map_response(json_timeouts))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers: do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
    });
    let spinner = tokio::spawn({
        let state = state.clone();
        async move { state.spin.run().await }
    });
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    spinner.abort();
    served
}

/// `api-keys-admin serve`: listens on `addr` until SIGTERM or ctrl-c.
pub async fn serve(addr: SocketAddr, state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(
        spin_micros = state.spin.linger().as_micros() as u64,
        listen = %listener.local_addr()?,
        "api-keys-admin listening"
    );
    serve_on(listener, state, shutdown_signal()).await
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The log filter for `directives` (e.g. `RUST_LOG`), except that the
/// database driver never logs below `info`: at `debug` it prints statement
/// parameters, and those carry tokens.
pub fn log_filter(directives: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    filter
        .add_directive("tokio_postgres=info".parse().expect("static directive"))
        .add_directive(
            "tokio_postgres::query=info"
                .parse()
                .expect("static directive"),
        )
}
