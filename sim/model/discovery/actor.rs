//! The discovery actor's own state: each service's registry and its stream, and the faults
//! that keep services from the registry (an outage of it, a partition from one service).
//!
//! The model's handlers in `discovery/mod.rs` tell it what instances do (heartbeat, boot,
//! answer a check) and log the changes it returns.

use super::super::*;
use crate::policy::registry::{Change, Registry, Status};

/// What a registrar sees of an instance when it looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Looked {
    /// Its process runs (present, not crashed, booted).
    pub(super) running: bool,
    /// It is shutting down.
    pub(super) draining: bool,
}

/// The discovery actor.
pub(in crate::model) struct Directory {
    /// Per service, with `[registry]`: its registry and stream (empty without one).
    registries: Vec<(Registry, SimRng)>,
    /// Registry outages in force.
    down: u32,
    /// Per service: registry partitions in force that cut it off from the registry.
    cut: Vec<u32>,
}

impl Directory {
    /// No registry yet (`start_discovery` adds one per service with `[registry]`).
    pub(in crate::model) fn new(services: usize) -> Self {
        Directory {
            registries: Vec::new(),
            down: 0,
            cut: vec![0; services],
        }
    }

    /// Adds the next service's registry.
    pub(super) fn add(&mut self, registry: Registry, rng: SimRng) {
        self.registries.push((registry, rng));
    }

    /// Whether the scenario has a registry.
    pub(in crate::model) fn on(&self) -> bool {
        !self.registries.is_empty()
    }

    /// Service `s`'s registry, when there is one.
    pub(in crate::model) fn get(&self, s: usize) -> Option<&Registry> {
        self.registries.get(s).map(|(r, _)| r)
    }

    /// Service `s`'s registry (discovery on).
    pub(in crate::model) fn registry(&mut self, s: usize) -> &mut Registry {
        &mut self.registries[s].0
    }

    /// Whether the registry lists service `s`'s instance `k` as one to call (discovery on).
    pub(in crate::model) fn routable(&self, s: usize, k: usize) -> bool {
        self.registries[s].0.routable(k)
    }

    /// Whether the registry is down.
    pub(super) fn is_down(&self) -> bool {
        self.down > 0
    }

    /// Whether service `s` is cut off from the registry.
    pub(super) fn is_cut(&self, s: usize) -> bool {
        self.cut[s] > 0
    }

    /// Whether service `s` can talk to the registry now.
    pub(super) fn reaches(&self, s: usize) -> bool {
        self.down == 0 && self.cut[s] == 0
    }

    /// A registry outage starts (`on`) or ends: when the last one ends, every registration
    /// counts as renewed.
    pub(in crate::model) fn outage(&mut self, now: SimTime, on: bool) {
        if on {
            self.down += 1;
        } else {
            self.down -= 1;
            if self.down == 0 {
                for (r, _) in &mut self.registries {
                    r.resync(now);
                }
            }
        }
    }

    /// A partition between service `s` and the registry starts (`on`) or ends.
    pub(in crate::model) fn partition(&mut self, s: usize, on: bool) {
        if on {
            self.cut[s] += 1;
        } else {
            self.cut[s] -= 1;
        }
    }

    /// Service `s`'s instance `k` renews its lease (a registry that no longer knows a
    /// running, non-draining instance gets it back: Eureka re-registers on a 404 renewal;
    /// Consul's anti-entropy re-syncs).
    pub(super) fn heartbeat(
        &mut self,
        now: SimTime,
        s: usize,
        k: usize,
        draining: bool,
    ) -> Option<Change> {
        let reg = &mut self.registries[s].0;
        if reg.status(k) == Status::Gone && !draining {
            reg.register(now, k)
        } else {
            reg.heartbeat(now, k)
        }
    }

    /// Service `s`'s health loop (the registry not down): the changes it made.
    pub(super) fn tick(&mut self, now: SimTime, s: usize) -> Vec<Change> {
        let (reg, rng) = &mut self.registries[s];
        let mut out = Vec::new();
        reg.tick(now, rng, &mut out);
        out
    }

    /// A registrar looks at service `s`'s instance `k` and brings the registry in line:
    /// running ones registered, draining ones draining, stopped or crashed ones deregistered.
    pub(super) fn registrar_look(
        &mut self,
        now: SimTime,
        s: usize,
        k: usize,
        x: Looked,
    ) -> Option<Change> {
        let reg = &mut self.registries[s].0;
        match (x.running, x.draining, reg.status(k)) {
            (true, false, Status::Gone) => reg.register(now, k),
            (true, true, Status::Gone | Status::Draining) => None,
            (true, true, _) => reg.drain(now, k),
            (false, _, Status::Gone) => None,
            (false, _, _) => reg.deregister(now, k),
            (true, false, _) => None,
        }
    }

    /// Whether instance `k` of `s` is one the registry still checks (not gone or draining).
    pub(super) fn checked(&self, s: usize, k: usize) -> bool {
        !matches!(
            self.registries[s].0.status(k),
            Status::Gone | Status::Draining
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::registry::Leases;

    const S: u64 = 1_000_000_000;

    fn directory(leases: Leases) -> Directory {
        let mut d = Directory::new(2);
        for s in 0..2 {
            let mut r = Registry::new(leases, None, 2);
            r.register(SimTime::ZERO, 0);
            d.add(r, SimRng::for_component(1, &format!("registry:{s}")));
        }
        d
    }

    fn leases() -> Leases {
        crate::scenario::parse(
            "d.toml",
            "[sim]\nname = \"d\"\nduration = \"1s\"\n[registry]\n\
             [[service]]\nname = \"a\"\n\
             [[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = { kind = \"constant\", rate = 1 }\n",
            &[],
        )
        .expect("valid")
        .spec
        .registry
        .expect("a registry")
        .leases
    }

    #[test]
    fn outages_and_partitions_nest_and_only_the_last_ending_restores_reach() {
        let mut d = directory(leases());
        d.outage(SimTime(S), true);
        d.outage(SimTime(S), true);
        d.partition(1, true);
        assert!(!d.reaches(0) && d.is_down());
        d.outage(SimTime(2 * S), false);
        assert!(!d.reaches(0), "one outage still in force");
        d.outage(SimTime(3 * S), false);
        assert!(d.reaches(0) && !d.reaches(1) && d.is_cut(1));
        d.partition(1, false);
        assert!(d.reaches(1));
    }

    #[test]
    fn a_registrar_registers_running_instances_and_deregisters_stopped_ones() {
        let mut d = directory(Leases::Registrar);
        let run = Looked {
            running: true,
            draining: false,
        };
        let stopped = Looked {
            running: false,
            draining: false,
        };
        let draining = Looked {
            running: true,
            draining: true,
        };
        // Instance 1 runs but is not registered: registered.
        assert!(d.registrar_look(SimTime(S), 0, 1, run).is_some());
        assert!(
            d.registrar_look(SimTime(S), 0, 1, run).is_none(),
            "already in line"
        );
        // Draining: drained once, then left alone.
        assert!(d.registrar_look(SimTime(S), 0, 1, draining).is_some());
        assert!(d.registrar_look(SimTime(S), 0, 1, draining).is_none());
        assert!(!d.checked(0, 1));
        // Stopped: deregistered once.
        assert!(d.registrar_look(SimTime(S), 0, 0, stopped).is_some());
        assert!(d.registrar_look(SimTime(S), 0, 0, stopped).is_none());
        assert!(!d.routable(0, 0));
    }

    #[test]
    fn a_heartbeat_from_a_forgotten_running_instance_registers_it_again() {
        let mut d = directory(leases());
        d.registry(0).deregister(SimTime(S), 0);
        assert!(!d.routable(0, 0));
        d.heartbeat(SimTime(2 * S), 0, 0, true);
        assert_eq!(
            d.get(0).map(|r| r.status(0)),
            Some(Status::Gone),
            "draining stays gone"
        );
        assert!(d.heartbeat(SimTime(2 * S), 0, 0, false).is_some());
        assert_ne!(d.get(0).map(|r| r.status(0)), Some(Status::Gone));
    }
}
