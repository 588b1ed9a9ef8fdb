//! Counters behind `GET /metrics`, written as Prometheus text.
//!
//! Labels are route templates (`/v1/keys/{id}`), methods, statuses and
//! verify codes only: nothing a client controls verbatim, so no token can
//! end up in a label.
//!
//! Every request updates them, so they are atomics: a request finds its
//! route's counters under a shared read lock (a write lock only the first
//! time a route is seen) and allocates nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use api_keys_core::verify::VerifyCode;
use axum::http::Method;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The statuses the service answers with; any other is counted under its
/// own number in `rare_statuses`.
const STATUSES: [u16; 14] = [
    200, 201, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 500, 503,
];

const METHODS: [&str; 8] = [
    "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "other",
];

const CALLER_CHECKS: [&str; 3] = ["accepted", "forbidden", "unauthorized"];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PATCH => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

#[derive(Default)]
struct Histogram {
    /// Not cumulative: `counts[i]` = answers in (BUCKETS[i-1], BUCKETS[i]].
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// One route template's counters.
struct RouteStats {
    route: String,
    /// `[method][status index]`.
    requests: [[AtomicU64; STATUSES.len()]; METHODS.len()],
    latency: Histogram,
}

impl RouteStats {
    fn new(route: &str) -> RouteStats {
        RouteStats {
            route: route.to_owned(),
            requests: Default::default(),
            latency: Histogram::default(),
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    routes: RwLock<Vec<Arc<RouteStats>>>,
    /// `(route, method, status)` of statuses outside [`STATUSES`].
    rare_statuses: RwLock<Vec<(String, &'static str, u16, u64)>>,
    /// One per [`VerifyCode::ALL`], then `other`.
    verifications: [AtomicU64; VerifyCode::ALL.len() + 1],
    caller_checks: [AtomicU64; CALLER_CHECKS.len()],
}

/// Pool figures sampled when the metrics are rendered.
pub struct PoolUse {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
    /// Connections shared by concurrent verify requests.
    pub shared: usize,
}

impl Metrics {
    fn route(&self, route: &str) -> Arc<RouteStats> {
        {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = routes.iter().find(|r| r.route == route) {
                return Arc::clone(r);
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = routes.iter().find(|r| r.route == route) {
            return Arc::clone(r);
        }
        let r = Arc::new(RouteStats::new(route));
        routes.push(Arc::clone(&r));
        routes.sort_by(|a, b| a.route.cmp(&b.route));
        r
    }

    pub fn record_request(&self, route: &str, method: &Method, status: u16, took: Duration) {
        let stats = self.route(route);
        let m = method_index(method);
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => {
                stats.requests[m][i].fetch_add(1, Relaxed);
            }
            None => {
                let mut rare = self
                    .rare_statuses
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                match rare
                    .iter_mut()
                    .find(|(r, me, s, _)| r == route && *me == METHODS[m] && *s == status)
                {
                    Some(entry) => entry.3 += 1,
                    None => rare.push((route.to_owned(), METHODS[m], status, 1)),
                }
            }
        }
        let h = &stats.latency;
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            h.counts[i].fetch_add(1, Relaxed);
        }
        h.count.fetch_add(1, Relaxed);
        h.sum_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// A `POST /v1/verify` answer; a code `core` does not know counts as `other`.
    pub fn record_verification(&self, code: &str) {
        let i = VerifyCode::ALL
            .iter()
            .position(|c| c.as_str() == code)
            .unwrap_or(VerifyCode::ALL.len());
        self.verifications[i].fetch_add(1, Relaxed);
    }

    /// A caller check: `accepted`, `unauthorized` or `forbidden`.
    pub fn record_caller_check(&self, outcome: &'static str) {
        if let Some(i) = CALLER_CHECKS.iter().position(|c| *c == outcome) {
            self.caller_checks[i].fetch_add(1, Relaxed);
        }
    }

    pub fn render(&self, pool: &PoolUse) -> String {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str("# HELP api_keys_admin_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE api_keys_admin_requests_total counter\n");
        let mut lines = Vec::new();
        for r in &routes {
            for (m, by_status) in r.requests.iter().enumerate() {
                for (i, n) in by_status.iter().enumerate() {
                    let n = n.load(Relaxed);
                    if n > 0 {
                        lines.push((r.route.clone(), METHODS[m], STATUSES[i], n));
                    }
                }
            }
        }
        lines.extend(
            self.rare_statuses
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        lines.sort();
        for (route, method, status, n) in lines {
            let _ = writeln!(
                out,
                "api_keys_admin_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP api_keys_admin_request_duration_seconds HTTP request latency by route template.\n",
        );
        out.push_str("# TYPE api_keys_admin_request_duration_seconds histogram\n");
        for r in &routes {
            let route = &r.route;
            let h = &r.latency;
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "api_keys_admin_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Relaxed);
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_nanos.load(Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP api_keys_admin_verifications_total POST /v1/verify answers by verify code.\n",
        );
        out.push_str("# TYPE api_keys_admin_verifications_total counter\n");
        let codes = VerifyCode::ALL.iter().map(|c| c.as_str()).chain(["other"]);
        let mut by_code: Vec<(&str, u64)> = codes
            .zip(self.verifications.iter().map(|n| n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        by_code.sort();
        for (code, n) in by_code {
            let _ = writeln!(
                out,
                "api_keys_admin_verifications_total{{code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP api_keys_admin_caller_checks_total Admin caller checks by outcome.\n");
        out.push_str("# TYPE api_keys_admin_caller_checks_total counter\n");
        for (outcome, n) in CALLER_CHECKS.iter().zip(&self.caller_checks) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "api_keys_admin_caller_checks_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP api_keys_admin_pool_connections Database pool connections.\n");
        out.push_str("# TYPE api_keys_admin_pool_connections gauge\n");
        for (state, n) in [
            ("max", pool.max_size),
            ("open", pool.size),
            ("idle", pool.available),
            ("shared", pool.shared),
        ] {
            let _ = writeln!(
                out,
                "api_keys_admin_pool_connections{{state=\"{state}\"}} {n}"
            );
        }
        let _ = writeln!(out, "api_keys_admin_pool_waiting_requests {}", pool.waiting);
        out
    }
}
