//! The service mesh as an actor: each meshed instance's sidecar (outbound and inbound proxy CPU, up or crashed), the mesh's random streams, and what the proxies did.
//!
//! The model asks it on the request's path: `outbound` when an attempt leaves the caller,
//! `inbound` when it reaches the callee's instance, `handshake` when a new connection
//! between two sidecars pays mTLS. Answers are times (the proxies are FIFO stations
//! solved at arrival, `policy::proxy`), so a pass costs no event of its own.

use super::*;
use crate::policy::proxy::{Pass, Station};
use crate::results::{ProxyPass, ProxyResult};

/// What a proxy did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hop {
    /// The instance has no sidecar: nothing in the way.
    Direct,
    /// The proxy is down: connection refused.
    Down,
    /// The proxy's queue is full: a local 503.
    Overloaded,
    /// Through at this time.
    Through(SimTime),
    /// Checked and denied (403) at this time.
    Denied(SimTime),
}

/// One instance's sidecar.
struct Sidecar {
    out: Station,
    inb: Station,
    down: bool,
}

/// What one service's proxies did (after warmup for the counters; whole run for the CPU).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProxyTally {
    pub(super) denied: u64,
    /// Attempts refused because a sidecar was down (either end).
    pub(super) unreachable: u64,
    pub(super) handshakes: u64,
}

/// The sidecars of every instance of the meshed services.
pub(super) struct Mesh {
    sidecars: Vec<Option<Sidecar>>,
    /// Proxy CPU draws, per service.
    rng: Vec<SimRng>,
    /// Handshake draws, per service (the caller's side).
    tls_rng: Vec<SimRng>,
    pub(super) tally: Vec<ProxyTally>,
}

impl Mesh {
    /// Sidecars for the meshed services' instance slots (`slot_service[i]`: the service of slot i).
    pub(super) fn new(spec: &SystemSpec, m: &MeshSpec, slot_service: &[u32]) -> Mesh {
        let sidecars = slot_service
            .iter()
            .map(|&s| {
                m.proxies[s as usize].as_ref().map(|p| Sidecar {
                    out: Station::new(p.workers, p.queue),
                    inb: Station::new(p.workers, p.queue),
                    down: false,
                })
            })
            .collect();
        let stream = |what: &str| -> Vec<SimRng> {
            spec.services
                .iter()
                .map(|s| SimRng::for_component(spec.seed, &format!("{what}:{}", s.name)))
                .collect()
        };
        Mesh {
            sidecars,
            rng: stream("proxy"),
            tls_rng: stream("mtls"),
            tally: vec![ProxyTally::default(); spec.services.len()],
        }
    }

    /// Whether instance `inst` has a sidecar.
    pub(super) fn has(&self, inst: u32) -> bool {
        self.sidecars[inst as usize].is_some()
    }

    /// Whether instance `inst`'s sidecar is down.
    pub(super) fn down(&self, inst: u32) -> bool {
        self.sidecars[inst as usize]
            .as_ref()
            .is_some_and(|s| s.down)
    }

    /// A proxy crash starts (`on`) or ends on instance `inst`.
    pub(super) fn set_down(&mut self, inst: u32, on: bool) {
        if let Some(s) = self.sidecars[inst as usize].as_mut() {
            s.down = on;
        }
    }

    /// An attempt from instance `inst` of service `svc` leaves through its outbound proxy.
    pub(super) fn outbound(&mut self, spec: &MeshSpec, now: SimTime, inst: u32, svc: u32) -> Hop {
        let Some(sc) = self.sidecars[inst as usize].as_mut() else {
            return Hop::Direct;
        };
        if sc.down {
            return Hop::Down;
        }
        let p = spec.proxies[svc as usize].as_ref().expect("meshed");
        let cost = p.latency.sample(&mut self.rng[svc as usize]);
        match sc.out.arrive(now, cost) {
            Pass::Through(t) => Hop::Through(t),
            Pass::Overloaded => Hop::Overloaded,
        }
    }

    /// A request from service `from` reaches instance `inst` of service `svc` through its
    /// inbound proxy (and its authorization check).
    pub(super) fn inbound(
        &mut self,
        spec: &MeshSpec,
        now: SimTime,
        inst: u32,
        svc: u32,
        from: u32,
    ) -> Hop {
        let Some(sc) = self.sidecars[inst as usize].as_mut() else {
            return Hop::Direct;
        };
        if sc.down {
            return Hop::Down;
        }
        let p = spec.proxies[svc as usize].as_ref().expect("meshed");
        let rng = &mut self.rng[svc as usize];
        let mut cost = p.latency.sample(rng);
        let mut denied = false;
        if let Some(a) = &spec.authz {
            cost = SimDuration(cost.0.saturating_add(a.latency.sample(rng).0));
            denied = a.deny.iter().any(|&(f, t)| f.0 == from && t.0 == svc);
        }
        match sc.inb.arrive(now, cost) {
            Pass::Through(t) if denied => Hop::Denied(t),
            Pass::Through(t) => Hop::Through(t),
            Pass::Overloaded => Hop::Overloaded,
        }
    }

    /// The handshake work of a new mTLS connection made by service `svc`.
    pub(super) fn handshake(&mut self, spec: &MeshSpec, svc: u32) -> SimDuration {
        let d = spec.mtls.as_ref().expect("mtls on");
        d.sample(&mut self.tls_rng[svc as usize])
    }

    /// What service `svc`'s sidecars (on its instance slots `range`) did by `end`; `None`
    /// when it has none.
    pub(super) fn result(
        &self,
        spec: &SystemSpec,
        svc: usize,
        range: std::ops::Range<usize>,
        end: SimTime,
    ) -> Option<ProxyResult> {
        let p = spec.mesh.as_ref()?.proxies[svc].as_ref()?;
        let sidecars: Vec<&Sidecar> = self.sidecars[range].iter().flatten().collect();
        let capacity_ns = p.workers as f64 * sidecars.len() as f64 * end.0 as f64;
        let pass = |st: &dyn Fn(&Sidecar) -> &Station| {
            let busy: u64 = sidecars.iter().map(|s| st(s).busy_ns).sum();
            ProxyPass {
                requests: sidecars.iter().map(|s| st(s).passes).sum(),
                overloaded: sidecars.iter().map(|s| st(s).overloaded).sum(),
                utilization: if capacity_ns > 0.0 {
                    busy as f64 / capacity_ns
                } else {
                    0.0
                },
            }
        };
        let t = &self.tally[svc];
        Some(ProxyResult {
            outbound: pass(&|s| &s.out),
            inbound: pass(&|s| &s.inb),
            denied: t.denied,
            unreachable: t.unreachable,
            handshakes: t.handshakes,
        })
    }
}
