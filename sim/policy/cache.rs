//! A response cache: LRU eviction at a capacity, a TTL, a stale-while-revalidate window
//! (RFC 5861), and the single-flight table that coalesces concurrent misses of one key
//! (Go's `singleflight.Group`, Caffeine's `AsyncLoadingCache`).
//!
//! Sans-IO: `now` is an argument and the caller carries out fetches. An entry is fresh for
//! `ttl` after it is filled, then stale for `stale_for` (served while one refresh runs),
//! then gone. A hit moves its entry to the front; a fill beyond the capacity evicts the
//! least recently used. Hits do not extend the TTL (`expireAfterWrite`), so a key asked at
//! rate λ has hit ratio λT/(1 + λT) when the cache is large enough.

use crate::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// A cache's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Most entries held (LRU eviction beyond); 0: unbounded.
    pub capacity: u64,
    /// How long a filled entry is fresh.
    pub ttl: SimDuration,
    /// How long after that it may still be served while it is refreshed (0: never).
    pub stale_for: SimDuration,
    /// Concurrent misses of one key wait for one fetch instead of each fetching.
    pub coalesce: bool,
}

/// A named cache (`[policy.cache.NAME]`), put in front of calls with `cache = "NAME"`.
#[derive(Clone, Debug, PartialEq)]
pub struct CachePolicy {
    /// Its name: also the name of the data it holds (`updates = "NAME"` changes it).
    pub name: String,
    /// Capacity, TTL, stale window, single flight.
    pub config: Config,
    /// How long a hit takes to answer.
    pub hit_latency: SimDuration,
    /// One cache for every caller (a shared cache such as Redis), or one per caller
    /// instance (in-process, such as Caffeine).
    pub shared: bool,
    /// An update of a key removes it from the cache (a shared cache everywhere; an
    /// in-process one only on the instance that made the update).
    pub invalidate_on_update: bool,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh entry.
    Fresh {
        /// The version of the data it was filled from.
        version: u64,
    },
    /// An expired entry inside its stale window: serve it, refresh it.
    Stale {
        /// The version of the data it was filled from.
        version: u64,
    },
    /// Nothing usable.
    Miss,
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Entry {
    key: u64,
    fresh_until: SimTime,
    stale_until: SimTime,
    version: u64,
    prev: u32,
    next: u32,
}

/// Counters, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries removed by an update of their key.
    pub invalidations: u64,
    /// Entries filled (new or replaced).
    pub fills: u64,
}

/// One cache: its entries in LRU order, and the fetches in flight with their waiters `W`.
#[derive(Clone, Debug)]
pub struct Cache<W> {
    cfg: Config,
    index: BTreeMap<u64, u32>,
    slots: Vec<Entry>,
    free: Vec<u32>,
    /// Most recently used first.
    head: u32,
    tail: u32,
    flights: BTreeMap<u64, Vec<W>>,
    /// Counters.
    pub stats: Stats,
}

impl<W> Cache<W> {
    /// An empty cache.
    pub fn new(cfg: Config) -> Self {
        Cache {
            cfg,
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            flights: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn unlink(&mut self, s: u32) {
        let (prev, next) = (self.slots[s as usize].prev, self.slots[s as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, s: u32) {
        self.slots[s as usize].prev = NIL;
        self.slots[s as usize].next = self.head;
        if self.head != NIL {
            self.slots[self.head as usize].prev = s;
        }
        self.head = s;
        if self.tail == NIL {
            self.tail = s;
        }
    }

    fn remove_slot(&mut self, s: u32) {
        self.unlink(s);
        self.index.remove(&self.slots[s as usize].key);
        self.free.push(s);
    }

    /// Looks `key` up at `now`. A fresh or stale entry becomes the most recently used; an
    /// entry past its stale window is dropped.
    pub fn lookup(&mut self, now: SimTime, key: u64) -> Lookup {
        let Some(&s) = self.index.get(&key) else {
            return Lookup::Miss;
        };
        let e = &self.slots[s as usize];
        let found = if now < e.fresh_until {
            Lookup::Fresh { version: e.version }
        } else if now < e.stale_until {
            Lookup::Stale { version: e.version }
        } else {
            self.remove_slot(s);
            return Lookup::Miss;
        };
        self.unlink(s);
        self.push_front(s);
        found
    }

    /// Stores `key` at `now`, from data of `version`; evicts the least recently used when
    /// the cache is full. A fill older than the entry it would replace (a slow fetch that
    /// started before a faster one) is dropped.
    pub fn fill(&mut self, now: SimTime, key: u64, version: u64) {
        let fresh_until = now.after(self.cfg.ttl);
        let stale_until = fresh_until.after(self.cfg.stale_for);
        if let Some(&s) = self.index.get(&key) {
            let e = &mut self.slots[s as usize];
            if version < e.version {
                return;
            }
            (e.fresh_until, e.stale_until, e.version) = (fresh_until, stale_until, version);
            self.unlink(s);
            self.push_front(s);
            self.stats.fills += 1;
            return;
        }
        if self.cfg.capacity > 0 && self.index.len() as u64 >= self.cfg.capacity {
            let victim = self.tail;
            self.remove_slot(victim);
            self.stats.evictions += 1;
        }
        let entry = Entry {
            key,
            fresh_until,
            stale_until,
            version,
            prev: NIL,
            next: NIL,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = entry;
                s
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, s);
        self.push_front(s);
        self.stats.fills += 1;
    }

    /// Drops `key` (its data changed); whether it was there.
    pub fn invalidate(&mut self, key: u64) -> bool {
        match self.index.get(&key) {
            Some(&s) => {
                self.remove_slot(s);
                self.stats.invalidations += 1;
                true
            }
            None => false,
        }
    }

    /// Whether a fetch of `key` is under way.
    pub fn in_flight(&self, key: u64) -> bool {
        self.flights.contains_key(&key)
    }

    /// A fetch of `key` starts.
    pub fn begin_fetch(&mut self, key: u64) {
        self.flights.entry(key).or_default();
    }

    /// `waiter` waits for the fetch of `key` under way (single flight).
    pub fn join(&mut self, key: u64, waiter: W) {
        self.flights.entry(key).or_default().push(waiter);
    }

    /// The fetch of `key` ended: its waiters, in the order they came.
    pub fn end_fetch(&mut self, key: u64) -> Vec<W> {
        self.flights.remove(&key).unwrap_or_default()
    }

    /// The keys held, most recently used first (for tests).
    pub fn keys_by_recency(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut s = self.head;
        while s != NIL {
            out.push(self.slots[s as usize].key);
            s = self.slots[s as usize].next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(capacity: u64, ttl_s: u64, stale_s: u64) -> Config {
        Config {
            capacity,
            ttl: SimDuration::from_secs(ttl_s),
            stale_for: SimDuration::from_secs(stale_s),
            coalesce: true,
        }
    }

    fn t(s: u64) -> SimTime {
        SimTime(s * 1_000_000_000)
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut c: Cache<()> = Cache::new(cfg(3, 100, 0));
        for k in [1, 2, 3] {
            c.fill(t(0), k, 0);
        }
        assert_eq!(c.lookup(t(1), 1), Lookup::Fresh { version: 0 });
        c.fill(t(2), 4, 0); // evicts 2: 1 was used after it
        assert_eq!(c.keys_by_recency(), [4, 1, 3]);
        assert_eq!(c.lookup(t(3), 2), Lookup::Miss);
        assert_eq!(c.stats.evictions, 1);
        c.fill(t(4), 3, 1); // a refill moves it to the front, no eviction
        assert_eq!(c.keys_by_recency(), [3, 4, 1]);
        assert_eq!(c.stats.evictions, 1);
        // The list and the index agree after many mixed operations (a reference model).
        let mut model: Vec<u64> = c.keys_by_recency();
        for i in 0..2_000u64 {
            let k = (i * 7919) % 11;
            if i % 3 == 0 {
                c.fill(t(5), k, 0);
                model.retain(|&x| x != k);
                model.insert(0, k);
                model.truncate(3);
            } else if c.lookup(t(5), k) != Lookup::Miss {
                model.retain(|&x| x != k);
                model.insert(0, k);
            }
            assert_eq!(c.keys_by_recency(), model, "step {i}");
            assert_eq!(c.len(), model.len());
        }
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let mut c: Cache<()> = Cache::new(cfg(0, 10, 5));
        c.fill(t(0), 7, 3);
        assert_eq!(c.lookup(t(9), 7), Lookup::Fresh { version: 3 });
        // Hits do not extend the TTL.
        assert_eq!(c.lookup(t(10), 7), Lookup::Stale { version: 3 });
        assert_eq!(c.lookup(t(14), 7), Lookup::Stale { version: 3 });
        assert_eq!(c.lookup(t(15), 7), Lookup::Miss);
        assert!(c.is_empty());
        // An older fill does not replace a newer one.
        c.fill(t(20), 7, 5);
        c.fill(t(21), 7, 4);
        assert_eq!(c.lookup(t(22), 7), Lookup::Fresh { version: 5 });
        assert!(c.invalidate(7) && !c.invalidate(7));
        assert_eq!(c.stats.invalidations, 1);
    }

    #[test]
    fn single_flight_hands_waiters_back_in_order() {
        let mut c: Cache<u32> = Cache::new(cfg(0, 10, 0));
        assert!(!c.in_flight(1));
        c.begin_fetch(1);
        assert!(c.in_flight(1));
        c.join(1, 10);
        c.join(1, 11);
        assert_eq!(c.end_fetch(1), [10, 11]);
        assert!(!c.in_flight(1));
        assert!(c.end_fetch(1).is_empty());
    }
}
