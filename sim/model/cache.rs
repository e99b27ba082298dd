//! The caches actor: the caches in front of calls (cache-aside keyed by the request's key),
//! their single-flight tables, the versions of the data they hold, and their counters.
//!
//! A call with `cache = "NAME"` looks its key up first. A fresh entry answers after the
//! hit latency and the callee sees nothing. A stale one (inside `stale_while_revalidate`)
//! answers the same way while one refresh call, owned by a carrier request nobody waits
//! for, fetches the key again. A miss makes the call, and its success fills the entry; with
//! `coalesce`, misses of a key already being fetched wait for that fetch and share its
//! outcome. A call with `updates = "NAME"` changes the key's data when it succeeds: the
//! version goes up, and the entry is invalidated (in a shared cache; in an in-process one,
//! only on the updating instance). A hit on an entry older than its data is a stale read.

use super::*;
use crate::policy::cache::{Cache, Lookup};
use std::collections::BTreeMap;

/// Not a cache fetch (the value of `Call::fetch_version` for other calls).
pub(super) const NO_FETCH: u64 = u64::MAX;
/// An update of a cache's data (`Call::fetch_version` of a call with `updates`).
pub(super) const UPDATE: u64 = u64::MAX - 1;

/// Counters of one named cache, over the measured part of the run.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    hits: u64,
    stale_hits: u64,
    misses: u64,
    coalesced: u64,
    refreshes: u64,
    stale_reads: u64,
    fetch_failures: u64,
}

/// The caches of a run.
#[derive(Default)]
pub(super) struct Caches {
    /// (policy, owner: the caller instance, or `u32::MAX` for a shared cache) → its cache;
    /// waiters are (request, call site).
    caches: BTreeMap<(u32, u32), Cache<(ReqId, u32)>>,
    /// (policy, key) → the version of its data (absent: 0, never updated).
    versions: BTreeMap<(u32, u64), u64>,
    counters: Vec<Counters>,
    /// Hits waiting to answer: (request, call site); `Ev::CacheHit` carries the slot.
    answers: Vec<(ReqId, u32)>,
    free_answers: Vec<u32>,
}

impl Caches {
    pub(super) fn new(spec: &SystemSpec) -> Self {
        Caches {
            counters: vec![Counters::default(); spec.caches.len()],
            ..Caches::default()
        }
    }

    fn cache(&mut self, spec: &SystemSpec, policy: u32, owner: u32) -> &mut Cache<(ReqId, u32)> {
        let p = &spec.caches[policy as usize];
        let owner = if p.shared { u32::MAX } else { owner };
        self.caches
            .entry((policy, owner))
            .or_insert_with(|| Cache::new(p.config))
    }

    fn version(&self, policy: u32, key: u64) -> u64 {
        self.versions.get(&(policy, key)).copied().unwrap_or(0)
    }

    /// Results per named cache, in the order of the scenario's policies.
    pub(super) fn results(&self, spec: &SystemSpec) -> Vec<crate::results::CacheResult> {
        spec.caches
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = self.counters[i];
                let mut stats = crate::policy::cache::Stats::default();
                let mut held = 0u64;
                for ((policy, _), cache) in self.caches.range((i as u32, 0)..=(i as u32, u32::MAX))
                {
                    debug_assert_eq!(*policy, i as u32);
                    stats.evictions += cache.stats.evictions;
                    stats.invalidations += cache.stats.invalidations;
                    stats.fills += cache.stats.fills;
                    held += cache.len() as u64;
                }
                crate::results::CacheResult {
                    name: p.name.clone(),
                    hits: c.hits,
                    stale_hits: c.stale_hits,
                    misses: c.misses,
                    coalesced: c.coalesced,
                    refreshes: c.refreshes,
                    stale_reads: c.stale_reads,
                    fetch_failures: c.fetch_failures,
                    fills: stats.fills,
                    evictions: stats.evictions,
                    invalidations: stats.invalidations,
                    entries_at_end: held,
                }
            })
            .collect()
    }
}

impl World<'_> {
    /// A call of `parent` at `site` goes through its cache `policy` first. Returns the data
    /// version the call fetches when it is to be made, or `None` when the cache answers
    /// (a hit) or the call waits for another's fetch (single flight).
    pub(super) fn cache_lookup(
        &mut self,
        now: SimTime,
        parent: ReqId,
        site: u32,
        policy: u32,
    ) -> Option<u64> {
        let spec = self.spec;
        let (key, instance) = (self.reqs[parent].key, self.reqs[parent].instance);
        let measured = now >= self.warmup;
        let version = self.caches.version(policy, key);
        let cache = self.caches.cache(spec, policy, instance);
        let found = cache.lookup(now, key);
        let fetching = cache.in_flight(key);
        let (stale_version, stale) = match found {
            Lookup::Fresh { version: v } => (v, false),
            Lookup::Stale { version: v } => (v, true),
            Lookup::Miss => {
                let coalesce = cache.config().coalesce;
                if coalesce && fetching {
                    cache.join(key, (parent, site));
                    self.caches.counters[policy as usize].coalesced += measured as u64;
                    return None;
                }
                if coalesce {
                    cache.begin_fetch(key);
                }
                self.caches.counters[policy as usize].misses += measured as u64;
                return Some(version);
            }
        };
        if measured {
            let c = &mut self.caches.counters[policy as usize];
            c.hits += 1;
            c.stale_hits += stale as u64;
            c.stale_reads += (stale_version < version) as u64;
        }
        let slot = match self.caches.free_answers.pop() {
            Some(s) => {
                self.caches.answers[s as usize] = (parent, site);
                s
            }
            None => {
                self.caches.answers.push((parent, site));
                (self.caches.answers.len() - 1) as u32
            }
        };
        let at = now.after(spec.caches[policy as usize].hit_latency);
        self.engine.schedule_at(at, Ev::CacheHit { slot });
        if stale && !fetching {
            self.cache_refresh(now, parent, site, policy, version);
        }
        None
    }

    /// Starts the one refresh of a stale entry: a carrier request on the caller's instance
    /// makes the call, and nobody waits for it.
    fn cache_refresh(&mut self, now: SimTime, parent: ReqId, site: u32, policy: u32, version: u64) {
        let p = &self.reqs[parent];
        let mut carrier = Req::new(
            now,
            p.service,
            p.instance,
            p.endpoint,
            Origin::CacheFill,
            State::Running,
            false,
        );
        carrier.key = p.key;
        carrier.headers = p.headers;
        carrier.crit = p.crit;
        carrier.deadline = SimTime::MAX;
        carrier.pending = 1;
        let Some(id) = self.alloc(carrier) else {
            return;
        };
        let (key, instance) = (self.reqs[id].key, self.reqs[id].instance);
        self.caches
            .cache(self.spec, policy, instance)
            .begin_fetch(key);
        if now >= self.warmup {
            self.caches.counters[policy as usize].refreshes += 1;
        }
        self.start_call_fetching(now, id, site, version);
    }

    /// A hit answers its call.
    pub(super) fn on_cache_hit(&mut self, now: SimTime, slot: u32) {
        let (parent, site) = self.caches.answers[slot as usize];
        self.caches.free_answers.push(slot);
        let required = self.sites[site as usize].spec.required;
        self.cache_answer(now, parent, Outcome::Ok, required);
    }

    /// A call the cache answered (a hit, or a fetch it waited for) ends. Out of line, so
    /// that the calls' own path keeps `call_result` inlined.
    #[inline(never)]
    fn cache_answer(&mut self, now: SimTime, parent: ReqId, outcome: Outcome, required: bool) {
        self.call_result(now, parent, outcome, required, 0);
    }

    /// Call `id` ends with `outcome` (the first time: a fallback's answer later is not the
    /// callee's): a fetch fills its cache on success and hands its outcome to the calls
    /// that waited for it; an update changes its key's data.
    pub(super) fn cache_call_ended(&mut self, now: SimTime, id: CallId, outcome: Outcome) {
        let spec = self.spec;
        let c = &mut self.calls[id];
        let (parent, site) = (c.parent, c.site as usize);
        let fetched = std::mem::replace(&mut c.fetch_version, NO_FETCH);
        let (key, instance) = (self.reqs[parent].key, self.reqs[parent].instance);
        let measured = now >= self.warmup;
        if let (Some(policy), true) = (self.sites[site].spec.cache, fetched != UPDATE) {
            let cache = self.caches.cache(spec, policy, instance);
            if outcome == Outcome::Ok {
                cache.fill(now, key, fetched);
            }
            let waiters = cache.end_fetch(key);
            if outcome != Outcome::Ok && measured {
                self.caches.counters[policy as usize].fetch_failures += 1;
            }
            for (w, wsite) in waiters {
                let required = self.sites[wsite as usize].spec.required;
                self.cache_answer(now, w, outcome, required);
            }
        }
        if let (Some(policy), Outcome::Ok) = (self.sites[site].spec.updates, outcome) {
            *self.caches.versions.entry((policy, key)).or_insert(0) += 1;
            if spec.caches[policy as usize].invalidate_on_update {
                self.caches.cache(spec, policy, instance).invalidate(key);
            }
        }
    }
}
