//! Usage counters kept between flushes (SPEC §7): a fixed-size open-addressing
//! table of (database, key id) → (count, last use), with no pointers so that it
//! can live in Postgres shared memory.
//!
//! Recording is lock-free among recorders (slots are claimed with a CAS and
//! counted with atomic adds), so concurrent verifications never wait for each
//! other; callers hold a *shared* lock while recording and an *exclusive* one
//! to drain. When the table is full a record is dropped and counted:
//! tracking never makes verification fail.
//!
//! Fair share: one database holds at most half of the slots ([`UsageTable::share_limit`]),
//! so a database whose counts cannot be flushed for a while (or that floods
//! the table with distinct keys) never starves the others; past its share a
//! new key's uses are dropped and counted, keys already in the table keep
//! counting.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One key's pending usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub database: u32,
    pub key: [u8; 16],
    pub count: u64,
    /// Postgres timestamp (microseconds since 2000-01-01 UTC).
    pub last_used: i64,
}

const EMPTY: u32 = 0;
const CLAIMED: u32 = 1;
const READY: u32 = 2;

#[derive(Debug)]
struct Slot {
    state: AtomicU32,
    database: AtomicU32,
    key_hi: AtomicU64,
    key_lo: AtomicU64,
    count: AtomicU64,
    last_used: AtomicI64,
}

impl Slot {
    const fn empty() -> Slot {
        Slot {
            state: AtomicU32::new(EMPTY),
            database: AtomicU32::new(0),
            key_hi: AtomicU64::new(0),
            key_lo: AtomicU64::new(0),
            count: AtomicU64::new(0),
            last_used: AtomicI64::new(0),
        }
    }

    fn holds(&self, database: u32, hi: u64, lo: u64) -> bool {
        self.database.load(Ordering::Relaxed) == database
            && self.key_hi.load(Ordering::Relaxed) == hi
            && self.key_lo.load(Ordering::Relaxed) == lo
    }

    fn usage(&mut self) -> Usage {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.key_hi.get_mut().to_be_bytes());
        key[8..].copy_from_slice(&self.key_lo.get_mut().to_be_bytes());
        Usage {
            database: *self.database.get_mut(),
            key,
            count: *self.count.get_mut(),
            last_used: *self.last_used.get_mut(),
        }
    }
}

/// Longest probe before a record is dropped, so a nearly full table stays cheap.
const MAX_PROBE: usize = 64;

/// Slots held by one database; `database == 0` is a free entry (no database
/// has oid 0). Databases beyond the last entry share [`OVERFLOW`].
#[derive(Debug)]
struct Share {
    database: AtomicU32,
    slots: AtomicUsize,
}

impl Share {
    const fn empty() -> Share {
        Share {
            database: AtomicU32::new(0),
            slots: AtomicUsize::new(0),
        }
    }
}

const SHARES: usize = 64;
/// The entry that databases without one of their own count against.
const OVERFLOW: usize = SHARES - 1;

#[derive(Debug)]
pub struct UsageTable<const N: usize> {
    slots: [Slot; N],
    shares: [Share; SHARES],
    len: AtomicUsize,
    /// Verifications dropped because the table was full, and flushed, since start.
    dropped: AtomicU64,
    flushed: AtomicU64,
}

impl<const N: usize> Default for UsageTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

fn split(key: &[u8; 16]) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&key[..8]);
    lo.copy_from_slice(&key[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

impl<const N: usize> UsageTable<N> {
    pub const CAPACITY: usize = N;

    pub const fn new() -> Self {
        assert!(N.is_power_of_two());
        // an array of a non-Copy type is built by repeating a const
        #[allow(clippy::declare_interior_mutable_const)]
        const E: Slot = Slot::empty();
        #[allow(clippy::declare_interior_mutable_const)]
        const S: Share = Share::empty();
        UsageTable {
            slots: [E; N],
            shares: [S; SHARES],
            len: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
        }
    }

    fn home(database: u32, lo: u64) -> usize {
        // UUIDv7's leading bytes are a timestamp: hash the random tail.
        let mut h = lo ^ u64::from(database).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
        (h as usize) & (N - 1)
    }

    /// Adds one use of `key` at `at`; false (and counted as dropped) when
    /// there is no room. Safe to call from many processes at once.
    pub fn record(&self, database: u32, key: [u8; 16], at: i64) -> bool {
        self.add(database, key, 1, at)
    }

    /// Puts back usage that was drained but could not be written (its key
    /// row was locked); false (counted as dropped) when there is no room.
    pub fn restore(&self, u: Usage) -> bool {
        let back = self.add(u.database, u.key, u.count, u.last_used);
        if back {
            self.flushed.fetch_sub(u.count, Ordering::Relaxed);
        }
        back
    }

    /// The most slots one database may hold: half the table.
    pub const fn share_limit() -> usize {
        if N >= 2 {
            N / 2
        } else {
            N
        }
    }

    /// The share entry `database` counts against, claimed on first use.
    fn share(&self, database: u32) -> &Share {
        for e in &self.shares[..OVERFLOW] {
            let owner = e.database.load(Ordering::Acquire);
            if owner == database {
                return e;
            }
            if owner == 0 {
                match e
                    .database
                    .compare_exchange(0, database, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return e,
                    Err(now) if now == database => return e,
                    Err(_) => continue,
                }
            }
        }
        &self.shares[OVERFLOW]
    }

    /// Takes one slot of `database`'s share; false when its share is used up.
    fn take_share(&self, database: u32) -> bool {
        let share = self.share(database);
        if share.slots.fetch_add(1, Ordering::AcqRel) >= Self::share_limit() {
            share.slots.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn add(&self, database: u32, key: [u8; 16], count: u64, at: i64) -> bool {
        let (hi, lo) = split(&key);
        let mut i = Self::home(database, lo);
        let mut share_taken = false;
        for _ in 0..MAX_PROBE.min(N) {
            let slot = &self.slots[i];
            let mut state = slot.state.load(Ordering::Acquire);
            if state == EMPTY && !share_taken {
                if !self.take_share(database) {
                    break;
                }
                share_taken = true;
            }
            if state == EMPTY {
                match slot.state.compare_exchange(
                    EMPTY,
                    CLAIMED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        slot.database.store(database, Ordering::Relaxed);
                        slot.key_hi.store(hi, Ordering::Relaxed);
                        slot.key_lo.store(lo, Ordering::Relaxed);
                        slot.count.store(count, Ordering::Relaxed);
                        slot.last_used.store(at, Ordering::Relaxed);
                        slot.state.store(READY, Ordering::Release);
                        self.len.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                    Err(now) => state = now,
                }
            }
            // another recorder is writing this slot's key: it takes a few
            // stores, so wait for it rather than skip a slot that may be ours
            while state == CLAIMED {
                std::hint::spin_loop();
                state = slot.state.load(Ordering::Acquire);
            }
            if slot.holds(database, hi, lo) {
                if share_taken {
                    self.share(database).slots.fetch_sub(1, Ordering::AcqRel);
                }
                slot.count.fetch_add(count, Ordering::Relaxed);
                slot.last_used.fetch_max(at, Ordering::Relaxed);
                return true;
            }
            i = (i + 1) & (N - 1);
        }
        if share_taken {
            self.share(database).slots.fetch_sub(1, Ordering::AcqRel);
        }
        self.dropped.fetch_add(count, Ordering::Relaxed);
        false
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Relaxed)
    }

    /// Uses recorded but not yet flushed.
    pub fn pending_uses(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Acquire) == READY)
            .map(|s| s.count.load(Ordering::Relaxed))
            .sum()
    }

    /// Past three quarters full: time to flush early.
    pub fn needs_flush(&self) -> bool {
        self.len() * 4 >= N * 3
    }

    /// Databases with pending usage, each once.
    pub fn databases(&self) -> Vec<u32> {
        let mut dbs: Vec<u32> = Vec::new();
        for s in self
            .slots
            .iter()
            .filter(|s| s.state.load(Ordering::Acquire) == READY)
        {
            let db = s.database.load(Ordering::Relaxed);
            if !dbs.contains(&db) {
                dbs.push(db);
            }
        }
        dbs
    }

    /// Removes and returns the pending usage of one database; the rest is
    /// re-inserted so that probe chains stay intact. Needs exclusive access.
    pub fn drain(&mut self, database: u32) -> Vec<Usage> {
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for s in self.slots.iter_mut() {
            if *s.state.get_mut() == READY {
                let u = s.usage();
                if u.database == database {
                    taken.push(u);
                } else {
                    kept.push(u);
                }
            }
            *s = Slot::empty();
        }
        *self.len.get_mut() = 0;
        for e in self.shares.iter_mut() {
            *e = Share::empty();
        }
        for u in kept {
            self.take_share(u.database);
            let (hi, lo) = split(&u.key);
            let mut i = Self::home(u.database, lo);
            while *self.slots[i].state.get_mut() != EMPTY {
                i = (i + 1) & (N - 1);
            }
            let s = &mut self.slots[i];
            *s = Slot::empty();
            *s.state.get_mut() = READY;
            *s.database.get_mut() = u.database;
            *s.key_hi.get_mut() = hi;
            *s.key_lo.get_mut() = lo;
            *s.count.get_mut() = u.count;
            *s.last_used.get_mut() = u.last_used;
            *self.len.get_mut() += 1;
        }
        *self.flushed.get_mut() += taken.iter().map(|u| u.count).sum::<u64>();
        taken
    }

    /// Removes the pending usage of a database that can no longer take it
    /// (dropped): counted as dropped, not flushed. Returns the uses dropped.
    pub fn discard(&mut self, database: u32) -> u64 {
        let taken = self.drain(database);
        let uses: u64 = taken.iter().map(|u| u.count).sum();
        *self.flushed.get_mut() -= uses;
        *self.dropped.get_mut() += uses;
        uses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(n * 7).to_be_bytes());
        k[8..].copy_from_slice(&n.to_be_bytes());
        k
    }

    #[test]
    fn repeated_uses_of_a_key_add_up_and_keep_the_latest_time() {
        let mut t = UsageTable::<64>::new();
        assert!(t.record(1, key(7), 100));
        assert!(t.record(1, key(7), 50));
        assert!(t.record(1, key(7), 300));
        assert_eq!(t.pending_uses(), 3);
        let drained = t.drain(1);
        assert_eq!(
            drained,
            vec![Usage {
                database: 1,
                key: key(7),
                count: 3,
                last_used: 300
            }]
        );
        assert!(t.is_empty());
        assert_eq!((t.flushed(), t.dropped(), t.pending_uses()), (3, 0, 0));
    }

    #[test]
    fn drain_takes_one_database_and_keeps_the_others_findable() {
        let mut t = UsageTable::<64>::new();
        for n in 0..40 {
            t.record(n as u32 % 2, key(n), n as i64);
        }
        let even = t.drain(0);
        assert_eq!(even.len(), 20);
        assert_eq!(t.len(), 20);
        assert_eq!(t.databases(), vec![1]);
        for n in (1..40).step_by(2) {
            t.record(1, key(n), 1_000);
        }
        assert_eq!(
            t.len(),
            20,
            "survivors are found and merged into, not duplicated"
        );
        let odd = t.drain(1);
        assert!(odd.iter().all(|u| u.count == 2 && u.last_used == 1_000));
    }

    #[test]
    fn a_full_table_drops_and_counts_instead_of_failing() {
        let mut t = UsageTable::<16>::new();
        let ok = (0..100)
            .filter(|&n| t.record(n as u32 % 2 + 1, key(n), 0))
            .count();
        assert_eq!(ok, 16);
        assert_eq!(t.dropped(), 84);
        assert!(t.needs_flush());
        assert_eq!(t.drain(1).len() + t.drain(2).len(), 16);
        assert!(t.record(1, key(1000), 0), "room again after a flush");
    }

    #[test]
    fn restored_usage_merges_with_new_use_and_is_not_counted_as_flushed() {
        let mut t = UsageTable::<64>::new();
        t.record(1, key(3), 10);
        t.record(1, key(3), 20);
        let drained = t.drain(1);
        assert_eq!(t.flushed(), 2);
        t.record(1, key(3), 30);
        assert!(t.restore(drained[0]));
        assert_eq!(t.flushed(), 0);
        assert_eq!(
            t.drain(1),
            vec![Usage {
                database: 1,
                key: key(3),
                count: 3,
                last_used: 30
            }]
        );
    }

    #[test]
    fn one_database_holds_at_most_half_the_table() {
        let mut t = UsageTable::<64>::new();
        let ok = (0..64).filter(|&n| t.record(1, key(n), 0)).count();
        assert_eq!(ok, UsageTable::<64>::share_limit());
        assert_eq!(t.dropped(), 32);
        assert!(t.record(1, key(0), 5), "a key already held keeps counting");
        let other = (100..116).filter(|&n| t.record(2, key(n), 0)).count();
        assert_eq!(other, 16, "another database still finds room");
        assert_eq!(t.drain(1).len(), 32);
        assert_eq!(
            (0..32).filter(|&n| t.record(1, key(200 + n), 0)).count(),
            32,
            "a drain gives the share back"
        );
    }

    #[test]
    fn many_databases_share_the_overflow_entry_fairly() {
        let t = UsageTable::<256>::new();
        for db in 1..=100u32 {
            t.record(db, key(u64::from(db)), 0);
        }
        assert_eq!(t.dropped(), 0);
        // databases past the share entries count together, still capped
        let mut flood = 0;
        for n in 0..256 {
            if t.record(500, key(10_000 + n), 0) {
                flood += 1;
            }
        }
        assert!(flood <= UsageTable::<256>::share_limit());
    }

    #[test]
    fn discarding_a_database_counts_its_uses_as_dropped() {
        let mut t = UsageTable::<64>::new();
        t.record(1, key(1), 0);
        t.record(1, key(1), 0);
        t.record(2, key(2), 0);
        assert_eq!(t.discard(1), 2);
        assert_eq!((t.dropped(), t.flushed(), t.len()), (2, 0, 1));
        assert_eq!(t.databases(), vec![2]);
    }

    #[test]
    fn concurrent_recorders_lose_no_count() {
        let t = std::sync::Arc::new(UsageTable::<256>::new());
        let threads: Vec<_> = (0..4)
            .map(|th| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        assert!(t.record(1, key(i % 50), (th * 100_000 + i) as i64));
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let mut t = std::sync::Arc::try_unwrap(t).unwrap();
        let drained = t.drain(1);
        assert_eq!(drained.len(), 50, "each key claimed exactly one slot");
        assert_eq!(drained.iter().map(|u| u.count).sum::<u64>(), 80_000);
    }
}
