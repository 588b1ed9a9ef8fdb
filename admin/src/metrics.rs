//! Counters behind `GET /metrics`, written as Prometheus text.
//!
//! Labels are route templates (`/v1/keys/{id}`), methods, statuses and
//! verify codes only: nothing a client controls verbatim, so no token can
//! end up in a label.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    verifications: BTreeMap<String, u64>,
    caller_checks: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

/// Pool figures sampled when the metrics are rendered.
pub struct PoolUse {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A verify code as a label: one of the known words, else `other`.
fn code_label(code: &str) -> String {
    let known = code.len() <= 32 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if known {
        code.to_owned()
    } else {
        "other".to_owned()
    }
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding the lock leaves plain counters: keep counting.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_request(
        &self,
        route: &str,
        method: &axum::http::Method,
        status: u16,
        took: Duration,
    ) {
        let mut c = self.counters();
        *c.requests
            .entry((route.to_owned(), method_label(method), status))
            .or_default() += 1;
        let h = c.latency.entry(route.to_owned()).or_default();
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// A `POST /v1/verify` answer.
    pub fn record_verification(&self, code: &str) {
        *self
            .counters()
            .verifications
            .entry(code_label(code))
            .or_default() += 1;
    }

    /// A caller check: `accepted`, `unauthorized` or `forbidden`.
    pub fn record_caller_check(&self, outcome: &'static str) {
        *self.counters().caller_checks.entry(outcome).or_default() += 1;
    }

    pub fn render(&self, pool: &PoolUse) -> String {
        let c = self.counters();
        let mut out = String::new();
        out.push_str("# HELP api_keys_admin_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE api_keys_admin_requests_total counter\n");
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "api_keys_admin_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP api_keys_admin_request_duration_seconds HTTP request latency by route template.\n",
        );
        out.push_str("# TYPE api_keys_admin_request_duration_seconds histogram\n");
        for (route, h) in &c.latency {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "api_keys_admin_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "api_keys_admin_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP api_keys_admin_verifications_total POST /v1/verify answers by verify code.\n",
        );
        out.push_str("# TYPE api_keys_admin_verifications_total counter\n");
        for (code, n) in &c.verifications {
            let _ = writeln!(
                out,
                "api_keys_admin_verifications_total{{code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP api_keys_admin_caller_checks_total Admin caller checks by outcome.\n");
        out.push_str("# TYPE api_keys_admin_caller_checks_total counter\n");
        for (outcome, n) in &c.caller_checks {
            let _ = writeln!(
                out,
                "api_keys_admin_caller_checks_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP api_keys_admin_pool_connections Database pool connections.\n");
        out.push_str("# TYPE api_keys_admin_pool_connections gauge\n");
        let _ = writeln!(
            out,
            "api_keys_admin_pool_connections{{state=\"max\"}} {}",
            pool.max_size
        );
        let _ = writeln!(
            out,
            "api_keys_admin_pool_connections{{state=\"open\"}} {}",
            pool.size
        );
        let _ = writeln!(
            out,
            "api_keys_admin_pool_connections{{state=\"idle\"}} {}",
            pool.available
        );
        let _ = writeln!(out, "api_keys_admin_pool_waiting_requests {}", pool.waiting);
        out
    }
}
