//! Usage counters kept between flushes (SPEC §7): a fixed-size open-addressing
//! table of (database, key id) → (count, last use), plain old data so that it
//! can live in Postgres shared memory. When full it drops and counts what it
//! dropped: tracking never makes verification fail.

/// One key's pending usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub database: u32,
    pub key: [u8; 16],
    pub count: u64,
    /// Postgres timestamp (microseconds since 2000-01-01 UTC).
    pub last_used: i64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    used: bool,
    usage: Usage,
}

const EMPTY: Slot = Slot {
    used: false,
    usage: Usage {
        database: 0,
        key: [0; 16],
        count: 0,
        last_used: 0,
    },
};

/// Longest probe before a record is dropped, so a nearly full table stays cheap.
const MAX_PROBE: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct UsageTable<const N: usize> {
    slots: [Slot; N],
    len: usize,
    /// Verifications recorded, dropped (table full) and flushed, since start.
    pub recorded: u64,
    pub dropped: u64,
    pub flushed: u64,
}

impl<const N: usize> Default for UsageTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> UsageTable<N> {
    pub const CAPACITY: usize = N;

    pub const fn new() -> Self {
        assert!(N.is_power_of_two());
        UsageTable {
            slots: [EMPTY; N],
            len: 0,
            recorded: 0,
            dropped: 0,
            flushed: 0,
        }
    }

    fn home(database: u32, key: &[u8; 16]) -> usize {
        // UUIDv7's leading bytes are a timestamp: hash the random tail.
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&key[8..]);
        let mut h =
            u64::from_le_bytes(tail) ^ u64::from(database).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
        (h as usize) & (N - 1)
    }

    /// Adds one use of `key` at `at`; false (and counted as dropped) when
    /// there is no room.
    pub fn record(&mut self, database: u32, key: [u8; 16], at: i64) -> bool {
        self.add(Usage {
            database,
            key,
            count: 1,
            last_used: at,
        })
    }

    fn add(&mut self, u: Usage) -> bool {
        let mut i = Self::home(u.database, &u.key);
        for _ in 0..MAX_PROBE.min(N) {
            let slot = &mut self.slots[i];
            if !slot.used {
                *slot = Slot {
                    used: true,
                    usage: u,
                };
                self.len += 1;
                self.recorded += u.count;
                return true;
            }
            if slot.usage.database == u.database && slot.usage.key == u.key {
                slot.usage.count += u.count;
                slot.usage.last_used = slot.usage.last_used.max(u.last_used);
                self.recorded += u.count;
                return true;
            }
            i = (i + 1) & (N - 1);
        }
        self.dropped += u.count;
        false
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Past three quarters full: time to flush early.
    pub fn needs_flush(&self) -> bool {
        self.len * 4 >= N * 3
    }

    /// Databases with pending usage, each once.
    pub fn databases(&self) -> Vec<u32> {
        let mut dbs: Vec<u32> = Vec::new();
        for s in self.slots.iter().filter(|s| s.used) {
            if !dbs.contains(&s.usage.database) {
                dbs.push(s.usage.database);
            }
        }
        dbs
    }

    /// Removes and returns the pending usage of one database; the rest is
    /// re-inserted so that probe chains stay intact.
    pub fn drain(&mut self, database: u32) -> Vec<Usage> {
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for s in self.slots.iter_mut().filter(|s| s.used) {
            if s.usage.database == database {
                taken.push(s.usage);
            } else {
                kept.push(s.usage);
            }
            *s = EMPTY;
        }
        self.len = 0;
        let (recorded, dropped) = (self.recorded, self.dropped);
        for u in kept {
            self.add(u);
        }
        // re-inserting is not a new use
        self.recorded = recorded;
        self.dropped = dropped;
        self.flushed += taken.iter().map(|u| u.count).sum::<u64>();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[8..].copy_from_slice(&n.to_le_bytes());
        k
    }

    #[test]
    fn repeated_uses_of_a_key_add_up_and_keep_the_latest_time() {
        let mut t = UsageTable::<64>::new();
        assert!(t.record(1, key(7), 100));
        assert!(t.record(1, key(7), 50));
        assert!(t.record(1, key(7), 300));
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
        assert_eq!((t.recorded, t.flushed, t.dropped), (3, 3, 0));
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
        // the survivors are still found (and merged into), not duplicated
        for n in (1..40).step_by(2) {
            t.record(1, key(n), 1_000);
        }
        assert_eq!(t.len(), 20);
        let odd = t.drain(1);
        assert!(odd.iter().all(|u| u.count == 2 && u.last_used == 1_000));
    }

    #[test]
    fn a_full_table_drops_and_counts_instead_of_failing() {
        let mut t = UsageTable::<16>::new();
        let mut ok = 0;
        for n in 0..100 {
            if t.record(1, key(n), 0) {
                ok += 1;
            }
        }
        assert_eq!(ok, 16);
        assert_eq!(t.dropped, 84);
        assert!(t.needs_flush());
        assert_eq!(t.drain(1).len(), 16);
        assert!(t.record(1, key(1000), 0), "room again after a flush");
    }
}
