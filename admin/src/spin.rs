//! Spinning before parking: while requests keep coming, the request thread
//! polls its sockets without sleeping between them.
//!
//! Under load a request's answer from PostgreSQL, or the next request,
//! arrives a few microseconds after the thread ran out of work. Parking
//! (an `epoll_wait` that sleeps) lets the CPU go idle, and then the process
//! that writes to us must wake it: on a virtual machine an inter-processor
//! interrupt, which cost more than the request itself on the benchmark's
//! (BENCHMARKS.md). Go's scheduler spins before it sleeps for the same
//! reason.
//!
//! So a task keeps the runtime polling, yielding the CPU to any other
//! runnable thread on every turn (`sched_yield`), for `linger` after the
//! last request started or ended; with no request for that long it waits
//! for the next one, and an idle service does not spin at all. A request
//! that waits long (a lock, an unreachable database) makes no events, so
//! it does not keep the thread spinning either.
//!
//! It pays only on a current-thread runtime (one request thread, the
//! default on two CPUs), which is where it is on by default. Under a CPU
//! quota (a container's cgroup `cpu.max`, or `cpu.cfs_quota_us`) the
//! default is not to spin: there every spun microsecond is spent from the
//! quota, and a service over its quota is throttled, which costs far more
//! latency than a wake-up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The `linger` when there is no CPU quota.
pub const DEFAULT_LINGER: Duration = Duration::from_micros(200);

/// The default `linger` for a runtime of `worker_threads` threads:
/// [`DEFAULT_LINGER`] for one, none for more or under a CPU quota. With
/// several workers, one of them parks in `epoll_wait` holding the sockets
/// while another spins, so a socket's news still wakes a sleeping thread:
/// the spin only spends CPU (measured: BENCHMARKS.md).
pub fn default_linger(worker_threads: usize) -> Duration {
    if worker_threads != 1 || cpu_quota_set() {
        Duration::ZERO
    } else {
        DEFAULT_LINGER
    }
}

/// Whether a cgroup of this process limits its CPU time (v2 `cpu.max`, v1
/// `cpu.cfs_quota_us`, under the usual mount points).
fn cpu_quota_set() -> bool {
    let Ok(cgroups) = std::fs::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    let read = |path: String| std::fs::read_to_string(path).ok();
    cgroups.lines().any(|line| {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            read(format!("/sys/fs/cgroup/{path}/cpu.max")).is_some_and(|m| v2_limits(&m))
        } else if controllers.split(',').any(|c| c == "cpu") {
            [controllers, "cpu", "cpu,cpuacct"].iter().any(|dir| {
                read(format!("/sys/fs/cgroup/{dir}/{path}/cpu.cfs_quota_us"))
                    .is_some_and(|q| v1_limits(&q))
            })
        } else {
            false
        }
    })
}

/// `cpu.max` is `max <period>` without a quota, `<quota> <period>` with one.
fn v2_limits(cpu_max: &str) -> bool {
    cpu_max
        .split_whitespace()
        .next()
        .is_some_and(|q| q != "max")
}

/// `cpu.cfs_quota_us` is -1 without a quota.
fn v1_limits(quota: &str) -> bool {
    quota.trim().parse::<i64>().is_ok_and(|q| q > 0)
}

pub struct Spin {
    linger: Duration,
    epoch: Instant,
    /// When a request last started or ended, in nanoseconds after `epoch`.
    last_event: AtomicU64,
    wake: Notify,
}

impl Spin {
    /// Spins for `linger` after each event; zero = never.
    pub fn new(linger: Duration) -> Spin {
        Spin {
            linger,
            epoch: Instant::now(),
            last_event: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// A request started or ended at `at`.
    pub fn event(&self, at: Instant) {
        if self.linger.is_zero() {
            return;
        }
        let nanos =
            u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.last_event.fetch_max(nanos, Relaxed);
        // Wakes the spinner if it waits; else leaves a permit, which only
        // makes it check the time once more.
        self.wake.notify_one();
    }

    fn quiet_for(&self) -> Duration {
        let now = Instant::now().saturating_duration_since(self.epoch);
        now.saturating_sub(Duration::from_nanos(self.last_event.load(Relaxed)))
    }

    /// The spinner: run it as a task of the runtime that serves requests,
    /// for as long as the service runs.
    pub async fn run(&self) {
        if self.linger.is_zero() {
            return;
        }
        loop {
            self.wake.notified().await;
            while self.quiet_for() < self.linger {
                // Another thread runnable on this CPU (PostgreSQL, a client)
                // runs now; the runtime polls its sockets (without blocking,
                // as a task is ready) and runs what became ready.
                std::thread::yield_now();
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_quota_is_read_from_either_version() {
        assert!(!v2_limits("max 100000\n"));
        assert!(v2_limits("50000 100000\n"));
        assert!(!v2_limits(""));
        assert!(!v1_limits("-1\n"));
        assert!(v1_limits("50000\n"));
        assert!(!v1_limits("garbage"));
    }

    #[test]
    fn only_a_single_request_thread_spins_by_default() {
        assert_eq!(default_linger(2), Duration::ZERO);
        assert_eq!(default_linger(8), Duration::ZERO);
        let one = if cpu_quota_set() {
            Duration::ZERO
        } else {
            DEFAULT_LINGER
        };
        assert_eq!(default_linger(1), one);
    }

    #[test]
    fn a_zero_linger_never_spins() {
        let spin = Spin::new(Duration::ZERO);
        spin.event(Instant::now());
        // returns at once instead of waiting for events forever
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(spin.run());
    }
}
