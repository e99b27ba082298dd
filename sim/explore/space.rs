//! The space `faultline explore` draws fault schedules from: kinds, targets, a window and
//! intensities, from the scenario's `[explore]` table or its own services, zones and registry.

use crate::rng::SimRng;
use crate::scenario::analysis::call_edges;
use crate::scenario::raw::{RawFault, EXPLORE_KINDS};
use crate::scenario::Scenario;
use crate::time::SimDuration;

/// Where and when faults may fall.
#[derive(Clone, Debug)]
pub struct Space {
    /// Kinds drawn from.
    pub kinds: Vec<&'static str>,
    /// Services hit.
    pub targets: Vec<String>,
    /// Each target's instances: a fault on a service hits one of them or all.
    pub replicas: Vec<u32>,
    /// (caller, callee) pairs among the targets, for partitions.
    pub pairs: Vec<(String, String)>,
    /// Zones, for zone outages.
    pub zones: Vec<String>,
    /// The window, ms.
    pub from_ms: u64,
    /// Its end, ms.
    pub until_ms: u64,
    /// Longest fault, ms.
    pub longest_ms: u64,
    /// Faults per schedule at most.
    pub max_faults: u32,
}

impl Space {
    /// The space of `scn`: its `[explore]` table, with defaults from the scenario.
    pub fn of(scn: &Scenario) -> Space {
        let e = scn.raw.explore.clone().unwrap_or_default();
        let spec = &scn.spec;
        let targets: Vec<String> = e
            .targets
            .clone()
            .unwrap_or_else(|| spec.services.iter().map(|s| s.name.clone()).collect());
        let replicas = targets
            .iter()
            .map(|t| {
                spec.services
                    .iter()
                    .find(|s| &s.name == t)
                    .map_or(1, |s| s.replicas)
            })
            .collect();
        let name = |id: crate::ids::ServiceId| spec.services[id.0 as usize].name.clone();
        let pairs: Vec<(String, String)> = call_edges(spec)
            .into_iter()
            .map(|(a, b)| (name(a), name(b)))
            .filter(|(a, b)| targets.contains(a) && targets.contains(b))
            .collect();
        let possible = |k: &str| match k {
            "partition" => !pairs.is_empty(),
            "zone_outage" => !spec.zones.is_empty(),
            "registry_outage" => scn.raw.registry.is_some(),
            _ => true,
        };
        // Kinds the scenario cannot have (a partition without a call between two targets)
        // are left out, named or not; `search` refuses a space with none left.
        let kinds: Vec<&'static str> = EXPLORE_KINDS
            .into_iter()
            .filter(|k| {
                e.kinds
                    .as_ref()
                    .map_or(true, |ks| ks.iter().any(|x| x == k))
            })
            .filter(|k| possible(k))
            .collect();
        let from_ms = e.from.unwrap_or(scn.raw.sim.warmup).0 / 1_000_000;
        let until_ms = e.until.unwrap_or(scn.raw.sim.duration).0 / 1_000_000;
        let longest_ms = e
            .longest
            .map_or(((until_ms - from_ms) / 4).max(1_000), |l| l.0 / 1_000_000);
        Space {
            kinds,
            targets,
            replicas,
            pairs,
            zones: spec.zones.clone(),
            from_ms,
            until_ms,
            longest_ms,
            max_faults: e.max_faults.unwrap_or(3),
        }
    }

    /// A schedule: 1 to `max_faults` faults, each of a kind, target, start, length and
    /// intensity drawn from `rng`; whole seconds and round intensities, so that a schedule
    /// reads as a person would write it.
    pub fn draw(&self, rng: &mut SimRng) -> Vec<RawFault> {
        let n = 1 + rng.index(self.max_faults as usize);
        (0..n).map(|_| self.draw_one(rng)).collect()
    }

    fn draw_one(&self, rng: &mut SimRng) -> RawFault {
        let kind = self.kinds[rng.index(self.kinds.len())];
        let span_s = ((self.until_ms - self.from_ms) / 1000).max(1);
        let longest_s = (self.longest_ms / 1000).clamp(1, span_s);
        let for_s = 1 + rng.index(longest_s as usize) as u64;
        let latest_start_s = span_s.saturating_sub(for_s);
        let at_s = self.from_ms.div_ceil(1000) + rng.index(latest_start_s as usize + 1) as u64;
        let mut f = fault(kind, at_s, for_s);
        match kind {
            "zone_outage" => f.zone = Some(self.zones[rng.index(self.zones.len())].clone()),
            "registry_outage" => {}
            "partition" => {
                let (a, b) = &self.pairs[rng.index(self.pairs.len())];
                f.target = Some(a.clone());
                f.peer = Some(b.clone());
            }
            _ => {
                let t = rng.index(self.targets.len());
                f.target = Some(self.targets[t].clone());
                // Half the time one instance of several: one pod's bad day, which
                // per-instance breakers and outlier detection should ride out.
                let n = self.replicas[t];
                if n > 1 && rng.chance(0.5) {
                    f.instance = Some(rng.index(n as usize) as u32);
                }
            }
        }
        match kind {
            // 10 ms to 2 s, log-uniform, in whole ms.
            "latency" => {
                let ms = (10f64.ln() + rng.unit() * (2000f64 / 10.0).ln())
                    .exp()
                    .round();
                f.add = Some(SimDuration::from_millis(ms as u64));
            }
            // A share of 5 % to 100 %, in whole per cent.
            "error" => f.p = Some((5.0 + rng.unit() * 95.0).round() / 100.0),
            // Work 1.5 to 10 times longer, to a tenth.
            "slow" => f.multiply = Some(((1.5 + rng.unit() * 8.5) * 10.0).round() / 10.0),
            _ => {}
        }
        f
    }
}

/// A fault of `kind` from `at_s` for `for_s` seconds, nothing else set.
pub fn fault(kind: &str, at_s: u64, for_s: u64) -> RawFault {
    RawFault {
        kind: kind.to_string(),
        at: SimDuration::from_secs(at_s),
        length: Some(SimDuration::from_secs(for_s)),
        ..RawFault::default()
    }
}

/// `faults` as `[[fault]]` blocks, to append to a scenario's text.
pub fn to_toml(faults: &[RawFault]) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        fault: &'a [RawFault],
    }
    toml::to_string(&Doc { fault: faults }).expect("faults serialise")
}

/// One fault as a `[[fault]]` block (a sort key for schedules).
pub fn to_toml_one(fault: &RawFault) -> String {
    to_toml(std::slice::from_ref(fault))
}
