//! Load balancers over a callee's instances (POLICIES.md §10): round robin (Envoy EDF for unequal
//! weights), nginx smooth weighted round robin, random, least connections, least request with
//! power of two choices, hash by key, ring hash, Maglev, and Envoy's panic threshold.
//!
//! The caller passes a view of every host (weight, active requests, whether it is healthy and
//! not ejected) on each pick; the balancer keeps only its own scheduling state. Hash-based
//! balancers rebuild their ring or table when the set of usable hosts changes, as Envoy does.

use crate::rng::{stable_hash, SimRng};
use crate::time::SimDuration;

/// What the balancer sees of one host at pick time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostView {
    /// Static weight (≥ 1).
    pub weight: u32,
    /// Slow start: the share of its weight a host that started recently gets, in (0, 1]
    /// ([`slow_start_factor`]); 1 for every other host.
    pub ramp: f64,
    /// Requests this caller has outstanding on it.
    pub active: u32,
    /// Healthy and not ejected by outlier detection.
    pub healthy: bool,
    /// In the caller's view of the host set (its discovery cache); unlisted hosts are never
    /// picked, not even in panic, and do not count toward the panic threshold.
    pub listed: bool,
}

/// The algorithm and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Rotate over usable hosts; unequal weights use Envoy's earliest-deadline-first scheduler.
    RoundRobin,
    /// nginx smooth weighted round robin.
    SmoothWeighted,
    /// Uniform over usable hosts, or proportional to weight when `weighted`.
    Random {
        /// Honour weights.
        weighted: bool,
    },
    /// Fewest active requests (ties rotate), scaled by weight.
    LeastConnections,
    /// Envoy least request: best of `choices` samples with replacement (equal weights), or EDF
    /// with weight / (active + 1)^bias (unequal weights).
    LeastRequest {
        /// Samples per pick (default 2).
        choices: u32,
        /// active_request_bias (default 1.0).
        bias: f64,
    },
    /// Hash of the request key modulo the usable hosts.
    Hash,
    /// Ketama-style ring: each host placed `ring_size · weight / total` times.
    RingHash {
        /// Minimum ring entries (Envoy minimum_ring_size, default 1024).
        min_ring_size: u32,
    },
    /// Maglev lookup table of prime size (Envoy default 65537).
    Maglev {
        /// Table size (prime).
        table_size: u32,
    },
}

/// A balancer for one caller over one callee's hosts.
#[derive(Clone, Debug)]
pub struct Balancer {
    kind: Kind,
    /// Envoy healthy_panic_threshold in percent (default 50; 0 disables panic).
    panic_threshold: f64,
    rr: u32,
    /// EDF: virtual time and each host's deadline.
    edf_now: f64,
    edf_deadline: Vec<f64>,
    /// SWRR: current and effective weights.
    current: Vec<i64>,
    effective: Vec<i64>,
    /// Which hosts the ring/table/EDF state was built for.
    built_for: Vec<bool>,
    /// Ring hash: sorted points and their hosts.
    ring: Ring,
    /// Maglev: host per slot.
    table: Vec<u32>,
    scratch: Vec<bool>,
    /// Picks made while in panic (usable hosts below the threshold).
    pub panic_picks: u64,
}

/// Why no host could be picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoHealthyUpstream;

impl Balancer {
    /// A balancer of `kind` with Envoy's panic threshold in percent.
    pub fn new(kind: Kind, panic_threshold: f64) -> Self {
        Balancer {
            kind,
            panic_threshold,
            rr: 0,
            edf_now: 0.0,
            edf_deadline: Vec::new(),
            current: Vec::new(),
            effective: Vec::new(),
            built_for: Vec::new(),
            ring: Ring::default(),
            table: Vec::new(),
            scratch: Vec::new(),
            panic_picks: 0,
        }
    }

    /// The algorithm.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Whether the host set is in panic (§10.6): healthy share strictly below the threshold.
    pub fn in_panic(&self, hosts: &[HostView]) -> bool {
        let listed = hosts.iter().filter(|h| h.listed).count();
        if listed == 0 || self.panic_threshold <= 0.0 {
            return false;
        }
        let healthy = hosts.iter().filter(|h| h.listed && h.healthy).count();
        100.0 * (healthy as f64) / (listed as f64) < self.panic_threshold
    }

    /// Picks a host for a request with hash key `key`; `rng` is the caller's balancer stream.
    pub fn pick(
        &mut self,
        hosts: &[HostView],
        key: u64,
        rng: &mut SimRng,
    ) -> Result<usize, NoHealthyUpstream> {
        let panic = self.in_panic(hosts);
        if panic {
            self.panic_picks += 1;
        }
        let mut usable = std::mem::take(&mut self.scratch);
        usable.clear();
        usable.extend(hosts.iter().map(|h| h.listed && (panic || h.healthy)));
        let n_usable = usable.iter().filter(|&&u| u).count();
        if n_usable == 0 {
            self.scratch = usable;
            return Err(NoHealthyUpstream);
        }
        if usable != self.built_for {
            self.rebuild(hosts, &usable);
        }
        let equal = hosts
            .iter()
            .all(|h| h.weight == hosts[0].weight && h.ramp == 1.0);
        let pick = match self.kind.clone() {
            Kind::RoundRobin if equal => self.next_rr(&usable),
            Kind::RoundRobin => self.edf(hosts, &usable, |h| h.weight as f64 * h.ramp),
            Kind::SmoothWeighted => self.swrr(hosts, &usable),
            Kind::Random { weighted } => {
                if weighted && !equal {
                    let total: u64 = (0..hosts.len())
                        .filter(|&i| usable[i])
                        .map(|i| hosts[i].weight as u64)
                        .sum();
                    let mut x = (rng.unit() * total as f64) as u64;
                    let mut chosen = 0;
                    for (i, h) in hosts.iter().enumerate().filter(|(i, _)| usable[*i]) {
                        chosen = i;
                        if x < h.weight as u64 {
                            break;
                        }
                        x -= h.weight as u64;
                    }
                    chosen
                } else {
                    nth_usable(&usable, rng.index(n_usable))
                }
            }
            Kind::LeastConnections => {
                // Smallest active/weight; ties go to the first after the rotating position.
                let n = hosts.len();
                let start = self.rr as usize % n;
                self.rr = self.rr.wrapping_add(1);
                let mut best: Option<usize> = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    if !usable[i] {
                        continue;
                    }
                    let better = match best {
                        None => true,
                        Some(b) => {
                            (hosts[i].active as u64) * (hosts[b].weight as u64)
                                < (hosts[b].active as u64) * (hosts[i].weight as u64)
                        }
                    };
                    if better {
                        best = Some(i);
                    }
                }
                best.expect("a usable host")
            }
            Kind::LeastRequest { choices, bias } => {
                if equal {
                    let mut best = nth_usable(&usable, rng.index(n_usable));
                    for _ in 1..choices.max(1) {
                        let c = nth_usable(&usable, rng.index(n_usable));
                        if hosts[c].active < hosts[best].active {
                            best = c;
                        }
                    }
                    best
                } else {
                    self.edf(hosts, &usable, |h| {
                        least_request_weight(h.weight, h.active, bias) * h.ramp
                    })
                }
            }
            Kind::Hash => nth_usable(&usable, (mix(key) % n_usable as u64) as usize),
            Kind::RingHash { .. } => self.ring.host(mix(key)) as usize,
            Kind::Maglev { .. } => {
                self.table[(mix(key) % self.table.len() as u64) as usize] as usize
            }
        };
        self.scratch = usable;
        Ok(pick)
    }

    /// Reports a failed attempt on `host` (nginx SWRR lowers its effective weight).
    pub fn on_failure(&mut self, host: usize, weight: u32) {
        if let Kind::SmoothWeighted = self.kind {
            if let Some(e) = self.effective.get_mut(host) {
                // max_fails = 1: effective_weight -= weight / max_fails, floored at 0.
                *e = (*e - weight as i64).max(0);
            }
        }
    }

    /// Starts round robin at `index`: Envoy seeds every load balancer's index at random
    /// (`seed_` in `EdfLoadBalancerBase`), so that independent pickers do not move in
    /// lockstep through the same hosts.
    pub fn start_round_robin_at(&mut self, index: u32) {
        self.rr = index;
    }

    fn next_rr(&mut self, usable: &[bool]) -> usize {
        let n = usable.len();
        loop {
            let i = self.rr as usize % n;
            self.rr = self.rr.wrapping_add(1);
            if usable[i] {
                return i;
            }
        }
    }

    /// Envoy EDF: the smallest deadline wins (ties by index); the winner is re-inserted at
    /// now + 1/weight, with its weight evaluated at re-insertion time.
    fn edf(
        &mut self,
        hosts: &[HostView],
        usable: &[bool],
        weight: impl Fn(&HostView) -> f64,
    ) -> usize {
        let mut best = usize::MAX;
        for (i, _) in usable.iter().enumerate().filter(|(_, &u)| u) {
            if best == usize::MAX || self.edf_deadline[i] < self.edf_deadline[best] {
                best = i;
            }
        }
        self.edf_now = self.edf_deadline[best];
        let w = weight(&hosts[best]).max(1e-9);
        self.edf_deadline[best] = self.edf_now + 1.0 / w;
        best
    }

    fn swrr(&mut self, hosts: &[HostView], usable: &[bool]) -> usize {
        let mut total = 0i64;
        let mut best = usize::MAX;
        for i in 0..hosts.len() {
            if !usable[i] {
                continue;
            }
            let w = hosts[i].weight as i64;
            self.current[i] += self.effective[i];
            total += self.effective[i];
            if self.effective[i] < w {
                self.effective[i] += 1;
            }
            if best == usize::MAX || self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        best
    }

    fn rebuild(&mut self, hosts: &[HostView], usable: &[bool]) {
        let n = hosts.len();
        self.built_for = usable.to_vec();
        if self.current.len() != n {
            self.current = vec![0; n];
            self.effective = hosts.iter().map(|h| h.weight as i64).collect();
        }
        self.edf_deadline = hosts
            .iter()
            .map(|h| self.edf_now + 1.0 / (h.weight.max(1) as f64))
            .collect();
        match self.kind {
            Kind::RingHash { min_ring_size } => {
                self.ring = build_ring(hosts, usable, min_ring_size);
            }
            Kind::Maglev { table_size } => {
                self.table = build_maglev(hosts, usable, table_size);
            }
            _ => {}
        }
    }
}

/// Envoy's slow start (`slow_start_config`, round robin and least request): a host `age` into
/// a `window` weighs `weight · max(time_factor^(1/aggression), min_weight_percent / 100)`,
/// time_factor = max(age, 1 ms) / window; 1 once the window is over.
pub fn slow_start_factor(
    age: SimDuration,
    window: SimDuration,
    aggression: f64,
    min_weight_percent: f64,
) -> f64 {
    if age >= window {
        return 1.0;
    }
    let t = age.0.max(1_000_000) as f64 / window.0 as f64;
    let f = if aggression == 1.0 {
        t
    } else {
        t.powf(1.0 / aggression)
    };
    f.max(min_weight_percent / 100.0)
}

/// Envoy's dynamic weight for weighted least request: weight / (active + 1)^bias.
pub fn least_request_weight(weight: u32, active: u32, bias: f64) -> f64 {
    if bias == 0.0 {
        weight as f64
    } else if bias == 1.0 {
        weight as f64 / (active as f64 + 1.0)
    } else {
        weight as f64 / (active as f64 + 1.0).powf(bias)
    }
}

fn nth_usable(usable: &[bool], k: usize) -> usize {
    usable
        .iter()
        .enumerate()
        .filter(|(_, &u)| u)
        .nth(k)
        .map(|(i, _)| i)
        .expect("k < usable hosts")
}

/// SplitMix64 finaliser: spreads small keys (user ids) over 64 bits.
fn mix(x: u64) -> u64 {
    crate::rng::mix64(x.wrapping_add(crate::rng::GOLDEN))
}

fn host_hash(host: usize, salt: &str) -> u64 {
    // FNV alone clusters similar strings on the ring; the finaliser spreads them.
    mix(stable_hash(format!("host-{host}{salt}").as_bytes()))
}

/// A hash ring: sorted points, each with its host, and an index of where each of the
/// ring's top-bit buckets starts.
///
/// A lookup is the first point at or after the key's hash (wrapping to the first point).
/// A binary search over 1,024+ points is ten dependent loads into a ring that, with one
/// balancer per caller instance, is rarely in cache (it was a third of the mesh's call
/// dispatch); the index finds the answer's bucket in one load, and since the points are
/// uniform hashes a bucket holds about one point, so a short scan finishes the search.
/// The answer is the binary search's, point for point (a unit test compares them).
#[derive(Clone, Debug, Default)]
struct Ring {
    points: Vec<u64>,
    hosts: Vec<u32>,
    /// `start[b]`: the first point whose top `bits` bits are at least `b`; one more entry
    /// (the ring's length) closes the last bucket.
    start: Vec<u32>,
    bits: u32,
}

impl Ring {
    fn new(mut entries: Vec<(u64, u32)>) -> Self {
        entries.sort_unstable();
        let points: Vec<u64> = entries.iter().map(|e| e.0).collect();
        let hosts = entries.iter().map(|e| e.1).collect();
        // About one point per bucket; at least two buckets, so the shift stays below 64.
        let bits = points.len().next_power_of_two().max(2).trailing_zeros();
        let start = (0..=(1u64 << bits))
            .map(|b| {
                // The closing entry is the length, even if a point sits at u64::MAX.
                if b == 1 << bits {
                    return points.len() as u32;
                }
                let first = b << (64 - bits);
                points.partition_point(|&p| p < first) as u32
            })
            .collect();
        Ring {
            points,
            hosts,
            start,
            bits,
        }
    }

    /// The host of the first point at or after `h`, wrapping around. The ring is not empty.
    #[inline]
    fn host(&self, h: u64) -> u32 {
        let b = (h >> (64 - self.bits)) as usize;
        let (mut i, end) = (self.start[b] as usize, self.start[b + 1] as usize);
        while i < end && self.points[i] < h {
            i += 1;
        }
        self.hosts[i % self.points.len()]
    }
}

/// A ring with about `min_ring_size` entries for all hosts, each usable host placed with a
/// share ∝ its weight.
fn build_ring(hosts: &[HostView], usable: &[bool], min_ring_size: u32) -> Ring {
    // Points per host come from the weights of all hosts, usable or not, so that a host
    // leaving takes only its own points away (Envoy rescales to keep min_ring_size, which
    // moves a few more keys).
    let total: u64 = hosts.iter().map(|h| h.weight as u64).sum();
    let mut ring = Vec::new();
    for (i, h) in hosts.iter().enumerate().filter(|(i, _)| usable[*i]) {
        let replicas = ((min_ring_size as u64 * h.weight as u64).div_ceil(total)).max(1);
        for r in 0..replicas {
            ring.push((host_hash(i, &format!("_{r}")), i as u32));
        }
    }
    Ring::new(ring)
}

/// Maglev population (Envoy MaglevTable): each host walks its permutation, taking turns in
/// proportion to its weight, until every slot is filled.
pub fn build_maglev(hosts: &[HostView], usable: &[bool], m: u32) -> Vec<u32> {
    let m = m as u64;
    let live: Vec<usize> = (0..hosts.len()).filter(|&i| usable[i]).collect();
    let offset: Vec<u64> = live.iter().map(|&i| host_hash(i, "#offset") % m).collect();
    let skip: Vec<u64> = live
        .iter()
        .map(|&i| host_hash(i, "#skip") % (m - 1) + 1)
        .collect();
    let max_w = live.iter().map(|&i| hosts[i].weight).max().unwrap_or(1) as f64;
    let weight: Vec<f64> = live
        .iter()
        .map(|&i| hosts[i].weight as f64 / max_w)
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut target = vec![0f64; live.len()];
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0u64;
    let mut iteration = 1u64;
    while filled < m {
        for k in 0..live.len() {
            if filled == m {
                break;
            }
            // A host takes a turn only while its share of turns is behind iteration · weight.
            if iteration as f64 * weight[k] < target[k] {
                continue;
            }
            target[k] += 1.0;
            loop {
                let slot = ((offset[k] + next[k] * skip[k]) % m) as usize;
                next[k] += 1;
                if table[slot] == u32::MAX {
                    table[slot] = live[k] as u32;
                    filled += 1;
                    break;
                }
            }
        }
        iteration += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_weight_follows_envoy() {
        let s = SimDuration::from_secs;
        // Linear: a quarter into the window, a quarter of the weight; never below the minimum.
        assert_eq!(slow_start_factor(s(15), s(60), 1.0, 10.0), 0.25);
        assert_eq!(slow_start_factor(s(1), s(60), 1.0, 10.0), 0.1);
        assert_eq!(slow_start_factor(s(60), s(60), 1.0, 10.0), 1.0);
        // aggression 2: time_factor^(1/2) ramps faster at first.
        assert_eq!(slow_start_factor(s(15), s(60), 2.0, 10.0), 0.5);
        // Round robin over a host at 25 % and three at 100 %: it gets 1 pick in 13.
        let mut hs = hosts(&[1, 1, 1, 1]);
        hs[0].ramp = 0.25;
        let mut b = Balancer::new(Kind::RoundRobin, 50.0);
        let mut rng = SimRng::for_component(1, "lb");
        let n = 1300;
        let zero = (0..n)
            .filter(|_| b.pick(&hs, 0, &mut rng).unwrap() == 0)
            .count();
        assert_eq!(zero, 100);
    }

    fn hosts(weights: &[u32]) -> Vec<HostView> {
        weights
            .iter()
            .map(|&w| HostView {
                weight: w,
                ramp: 1.0,
                active: 0,
                healthy: true,
                listed: true,
            })
            .collect()
    }

    fn picks(b: &mut Balancer, hs: &[HostView], n: usize) -> String {
        let mut rng = SimRng::for_component(1, "lb");
        (0..n)
            .map(|_| (b'a' + b.pick(hs, 0, &mut rng).unwrap() as u8) as char)
            .collect()
    }

    #[test]
    fn s10_1_b1_nginx_swrr_5_1_1() {
        let mut b = Balancer::new(Kind::SmoothWeighted, 50.0);
        assert_eq!(picks(&mut b, &hosts(&[5, 1, 1]), 14), "aabacaaaabacaa");
    }

    #[test]
    fn s10_1_b2_nginx_swrr_5_1_2_returns_to_zero() {
        let mut b = Balancer::new(Kind::SmoothWeighted, 50.0);
        assert_eq!(picks(&mut b, &hosts(&[5, 1, 2]), 8), "acaabaca");
        assert_eq!(b.current, vec![0, 0, 0]);
    }

    #[test]
    fn s10_1_b3_envoy_edf_2_1() {
        let mut b = Balancer::new(Kind::RoundRobin, 50.0);
        let p = picks(&mut b, &hosts(&[2, 1]), 3);
        assert_eq!(p.matches('a').count(), 2);
        assert_eq!(p.matches('b').count(), 1);
        // And over many picks the ratio holds exactly per cycle.
        let p = picks(&mut b, &hosts(&[2, 1]), 300);
        assert_eq!(p.matches('a').count(), 200);
    }

    #[test]
    fn s10_2_b1_least_request_effective_weight() {
        assert!((least_request_weight(2, 4, 1.0) - 0.4).abs() < 1e-12);
        assert_eq!(least_request_weight(2, 4, 0.0), 2.0);
    }

    #[test]
    fn s10_2_b2_p2c_keeps_fewer_active() {
        // Hosts with active {0, 5}: whatever the samples, host 0 wins unless both samples are host 1.
        let mut hs = hosts(&[1, 1]);
        hs[1].active = 5;
        let mut b = Balancer::new(
            Kind::LeastRequest {
                choices: 2,
                bias: 1.0,
            },
            50.0,
        );
        let mut rng = SimRng::for_component(3, "lb");
        let n = 4000;
        let ones = (0..n)
            .filter(|_| b.pick(&hs, 0, &mut rng).unwrap() == 1)
            .count();
        // P(both samples host 1) = 1/4; 4000 draws: sd ≈ 27, so ±150 is > 5 sd.
        assert!((ones as i64 - 1000).abs() < 150, "{ones}");
    }

    #[test]
    fn s10_6_b1_panic_threshold() {
        let mut hs = hosts(&[1; 10]);
        for h in hs.iter_mut().skip(4) {
            h.healthy = false;
        }
        let mut b = Balancer::new(Kind::RoundRobin, 50.0);
        // 4 healthy of 10 = 40 % < 50: spread over all ten.
        let p = picks(&mut b, &hs, 10);
        assert_eq!(p, "abcdefghij");
        assert!(b.panic_picks == 10);
        // 5 healthy = 50 %: only the five.
        hs[4].healthy = true;
        let p = picks(&mut b, &hs, 10);
        assert!(p.chars().all(|c| c <= 'e'), "{p}");
    }

    #[test]
    fn no_healthy_upstream_without_panic() {
        let mut hs = hosts(&[1, 1]);
        hs[0].healthy = false;
        hs[1].healthy = false;
        let mut b = Balancer::new(Kind::RoundRobin, 0.0);
        let mut rng = SimRng::for_component(1, "lb");
        assert_eq!(b.pick(&hs, 0, &mut rng), Err(NoHealthyUpstream));
    }

    #[test]
    fn s10_5_maglev_slots_follow_weights() {
        // Weights 1 and 2 → 21 846 and 43 691 entries (POLICIES.md §10.5).
        let hs = hosts(&[1, 2]);
        let t = build_maglev(&hs, &[true, true], 65537);
        let a = t.iter().filter(|&&h| h == 0).count();
        assert_eq!((a, t.len() - a), (21846, 43691));
    }

    #[test]
    fn s10_4_ring_hash_removing_one_host_remaps_about_one_nth() {
        let mut hs = hosts(&[1; 10]);
        let mut b = Balancer::new(
            Kind::RingHash {
                min_ring_size: 1024,
            },
            0.0,
        );
        let mut rng = SimRng::for_component(1, "lb");
        let before: Vec<usize> = (0..10_000)
            .map(|k| b.pick(&hs, k, &mut rng).unwrap())
            .collect();
        hs[3].healthy = false;
        let after: Vec<usize> = (0..10_000)
            .map(|k| b.pick(&hs, k, &mut rng).unwrap())
            .collect();
        let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
        // Only keys of host 3 move: ≈ 1/10 of them (ring shares vary by a few percent).
        assert!(before.iter().zip(&after).all(|(x, y)| x == y || *x == 3));
        assert!((600..1400).contains(&moved), "{moved}");
    }

    #[test]
    fn maglev_and_hash_are_sticky_per_key() {
        let hs = hosts(&[1; 5]);
        for kind in [Kind::Hash, Kind::Maglev { table_size: 251 }] {
            let mut b = Balancer::new(kind, 0.0);
            let mut rng = SimRng::for_component(1, "lb");
            for k in 0..100 {
                let x = b.pick(&hs, k, &mut rng).unwrap();
                assert_eq!(b.pick(&hs, k, &mut rng).unwrap(), x);
            }
        }
    }

    #[test]
    fn indexed_ring_answers_as_a_binary_search_does() {
        let mut x = 7u64;
        for len in [1usize, 2, 3, 5, 64, 1000, 1024, 1025] {
            let mut entries: Vec<(u64, u32)> = (0..len)
                .map(|i| {
                    x = crate::rng::mix64(x.wrapping_add(crate::rng::GOLDEN));
                    (x, i as u32)
                })
                .collect();
            // Points at the ends of the hash space and a duplicate.
            entries[0].0 = if len > 2 { u64::MAX } else { 0 };
            if len > 3 {
                entries[1].0 = 0;
                entries[2].0 = entries[3].0;
            }
            let ring = Ring::new(entries.clone());
            entries.sort_unstable();
            let mut keys: Vec<u64> = entries
                .iter()
                .flat_map(|e| [e.0, e.0.wrapping_add(1), e.0.wrapping_sub(1)])
                .collect();
            keys.extend([0, 1, u64::MAX, u64::MAX - 1, 1 << 63]);
            for _ in 0..5000 {
                x = crate::rng::mix64(x.wrapping_add(crate::rng::GOLDEN));
                keys.push(x);
            }
            for h in keys {
                let i = entries.partition_point(|&(p, _)| p < h);
                assert_eq!(ring.host(h), entries[i % len].1, "len {len}, h {h:#x}");
            }
        }
    }

    proptest::proptest! {
        /// A caller never picks an instance its cache does not list, whatever the algorithm,
        /// health and load; and it picks a healthy one unless the balancer is in panic.
        #[test]
        fn picks_only_listed_hosts(
            kind in 0usize..9,
            hosts in proptest::collection::vec((1u32..4, 0u32..5, proptest::bool::ANY, proptest::bool::ANY), 1..8),
            keys in proptest::collection::vec(0u64..1000, 1..50),
        ) {
            let kinds = [
                Kind::RoundRobin, Kind::SmoothWeighted, Kind::Random { weighted: false },
                Kind::Random { weighted: true }, Kind::LeastConnections,
                Kind::LeastRequest { choices: 2, bias: 1.0 }, Kind::Hash,
                Kind::RingHash { min_ring_size: 64 }, Kind::Maglev { table_size: 251 },
            ];
            let hs: Vec<HostView> = hosts.iter().map(|&(weight, active, healthy, listed)| HostView { weight, ramp: 1.0, active, healthy, listed }).collect();
            let mut b = Balancer::new(kinds[kind].clone(), 50.0);
            let mut rng = SimRng::for_component(7, "lb");
            for k in keys {
                match b.pick(&hs, k, &mut rng) {
                    Ok(i) => {
                        proptest::prop_assert!(hs[i].listed);
                        proptest::prop_assert!(hs[i].healthy || b.in_panic(&hs));
                    }
                    Err(NoHealthyUpstream) => {
                        proptest::prop_assert!(!hs.iter().any(|h| h.listed && h.healthy));
                    }
                }
            }
        }
    }

    #[test]
    fn least_connections_prefers_idle() {
        let mut hs = hosts(&[1, 1, 1]);
        hs[0].active = 3;
        hs[1].active = 1;
        hs[2].active = 2;
        let mut b = Balancer::new(Kind::LeastConnections, 0.0);
        let mut rng = SimRng::for_component(1, "lb");
        assert_eq!(b.pick(&hs, 0, &mut rng), Ok(1));
    }
}
