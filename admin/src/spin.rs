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

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The default `linger`.
pub const DEFAULT_LINGER: Duration = Duration::from_micros(200);

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
