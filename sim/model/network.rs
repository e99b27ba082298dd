//! The network actor: directed links between services with their latency, loss and faults, zone hops and zone partitions.
//!
//! It owns its state and its random streams (one per directed link). Requests and
//! responses cross it through one [`Network::transmit`]: counted, perhaps lost (loss,
//! a partition, a cut between zones), otherwise delayed by the link's latency or the
//! cross-zone latency. Broker deliveries and acknowledgements cross it the same way; a
//! fire-and-forget publish uses [`Network::broker_delay`] (counted, never lost).

use super::spec::SystemSpec;
use crate::dist::Dist;
use crate::rng::SimRng;
use crate::time::SimDuration;

/// "No link" in the index, and "no zone".
const NONE: u32 = u32::MAX;

/// A fault in force on a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum LinkFault {
    None,
    Partition,
    Reset,
    Loss(f64),
}

struct Link {
    latency: Dist,
    loss: f64,
    fault: LinkFault,
    rng: SimRng,
    messages: u64,
    lost: u64,
}

impl Link {
    /// The loss probability in force, or `None` while a reset fault fails every message fast.
    fn loss_now(&self) -> Option<f64> {
        match self.fault {
            LinkFault::None => Some(self.loss),
            LinkFault::Partition => Some(1.0),
            LinkFault::Loss(p) => Some(p.max(self.loss)),
            LinkFault::Reset => None,
        }
    }
}

/// What became of one message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Hop {
    /// The connection was reset at once: nothing travels (a request's fast failure).
    Reset,
    /// Lost on the way: only a timeout will notice.
    Lost,
    /// Arrives after this delay.
    Arrives(SimDuration),
}

/// The network between services.
pub(super) struct Network {
    /// index[from * services + to]: the directed link's place in `links`, or NONE for pairs
    /// that never talk.
    index: Vec<u32>,
    services: usize,
    links: Vec<Link>,
    /// Latency between zones (None: the links' own).
    cross_zone: Option<Dist>,
    /// Whether the scenario has zones at all.
    zoned: bool,
    /// Zone pairs cut by a zone partition.
    zone_cuts: Vec<(u32, u32)>,
}

impl Network {
    /// Directed links for every pair of services that call each other (responses use the
    /// reverse link) and every broker and consumer of its queues, each with its own stream
    /// `net:<from>-><to>`.
    pub(super) fn new(spec: &SystemSpec) -> Self {
        let n = spec.services.len();
        let mut index = vec![NONE; n * n];
        let mut links = Vec::new();
        // Pairs that talk: every call's caller and callee, then every queue's broker and
        // its consumers (deliveries one way, acknowledgements the other).
        let mut pairs = Vec::new();
        for (i, s) in spec.services.iter().enumerate() {
            for step in s.endpoints.iter().flat_map(|e| &e.steps) {
                pairs.extend(step.calls().iter().map(|c| (i, c.to.0 as usize)));
            }
        }
        let brokers = spec.queues.iter().flat_map(|q| {
            q.consumers
                .iter()
                .map(move |c| (q.broker.0 as usize, c.service.0 as usize))
        });
        for (i, j) in pairs.into_iter().chain(brokers) {
            for (from, to) in [(i, j), (j, i)] {
                if index[from * n + to] != NONE {
                    continue;
                }
                let o = spec.network.links.iter().rev().find(|l| {
                    (l.a.0 as usize, l.b.0 as usize) == (from, to)
                        || (l.a.0 as usize, l.b.0 as usize) == (to, from)
                });
                let (latency, loss) = match o {
                    Some(l) => (l.latency.clone(), l.loss),
                    None => (spec.network.latency.clone(), spec.network.loss),
                };
                let name = format!(
                    "net:{}->{}",
                    spec.services[from].name, spec.services[to].name
                );
                index[from * n + to] = links.len() as u32;
                links.push(Link {
                    latency,
                    loss,
                    fault: LinkFault::None,
                    rng: SimRng::for_component(spec.seed, &name),
                    messages: 0,
                    lost: 0,
                });
            }
        }
        Network {
            index,
            services: n,
            links,
            cross_zone: spec.network.cross_zone.clone(),
            zoned: !spec.zones.is_empty(),
            zone_cuts: Vec::new(),
        }
    }

    fn link(&self, from: usize, to: usize) -> Option<usize> {
        let li = self.index[from * self.services + to];
        (li != NONE).then_some(li as usize)
    }

    /// Whether a hop between zones `a` and `b` crosses zones, and whether a zone partition
    /// cuts it (NONE: no zone).
    pub(super) fn zone_hop(&self, a: u32, b: u32) -> (bool, bool) {
        if !self.zoned || a == NONE || b == NONE || a == b {
            return (false, false);
        }
        let cut = self
            .zone_cuts
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b));
        (true, cut)
    }

    /// One message from service `from` in zone `from_zone` to service `to` in zone
    /// `to_zone`. On a reset link a request fails at once (`reset_fails_fast`: `Hop::Reset`,
    /// nothing drawn); an answer still travels, with the link's own loss, and the second
    /// value says its connection was reset (the caller sees a connection failure).
    pub(super) fn transmit(
        &mut self,
        from: usize,
        to: usize,
        from_zone: u32,
        to_zone: u32,
        reset_fails_fast: bool,
    ) -> (Hop, bool) {
        let (cross, cut) = self.zone_hop(from_zone, to_zone);
        let li = self
            .link(from, to)
            .expect("a link between services that call each other");
        let link = &mut self.links[li];
        link.messages += 1;
        let (loss, reset) = match link.loss_now() {
            Some(p) => (p, false),
            None if reset_fails_fast => return (Hop::Reset, true),
            None => (link.loss, true),
        };
        if cut || link.rng.chance(loss) {
            link.lost += 1;
            return (Hop::Lost, reset);
        }
        let delay = match self.cross_zone.as_ref().filter(|_| cross) {
            Some(d) => d.sample(&mut link.rng),
            None => link.latency.sample(&mut link.rng),
        };
        (Hop::Arrives(delay), reset)
    }

    /// The delay of a broker delivery from `from` to `to` over their link (counted, never
    /// lost), or `None` when the two never call each other.
    pub(super) fn broker_delay(&mut self, from: usize, to: usize) -> Option<SimDuration> {
        let li = self.link(from, to)?;
        let link = &mut self.links[li];
        link.messages += 1;
        Some(link.latency.sample(&mut link.rng))
    }

    /// Sets (or, with `LinkFault::None`, clears) the fault on both directions between `a`
    /// and `b`.
    pub(super) fn set_link_fault(&mut self, a: usize, b: usize, fault: LinkFault) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(li) = self.link(x, y) {
                self.links[li].fault = fault;
            }
        }
    }

    /// Cuts (or heals one cut of) the zones `a` and `b`.
    pub(super) fn cut_zones(&mut self, a: u32, b: u32, on: bool) {
        if on {
            self.zone_cuts.push((a, b));
        } else if let Some(k) = self.zone_cuts.iter().position(|&c| c == (a, b)) {
            self.zone_cuts.remove(k);
        }
    }

    /// Messages sent and lost so far, all links together.
    pub(super) fn totals(&self) -> (u64, u64) {
        let messages = self.links.iter().map(|l| l.messages).sum();
        let lost = self.links.iter().map(|l| l.lost).sum();
        (messages, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    /// a calls b; a hop takes 2 ms, across zones 7 ms; a in zone x, b in zones x and y.
    fn network(loss: f64) -> Network {
        let text = format!(
            "[sim]\nname = \"n\"\nduration = \"1s\"\n\
             [network]\nlatency = {{ dist = \"constant\", value = \"2ms\" }}\nloss = {loss}\n\
             cross_zone = {{ dist = \"constant\", value = \"7ms\" }}\n\
             [[service]]\nname = \"a\"\nzones = [\"x\"]\ncalls = [{{ to = \"b\", timeout = \"1s\" }}]\n\
             [[service]]\nname = \"b\"\nreplicas = 2\nzones = [\"x\", \"y\"]\n\
             [[workload]]\nname = \"w\"\ntarget = \"a\"\ntimeout = \"1s\"\narrivals = {{ kind = \"constant\", rate = 1 }}\n"
        );
        let scn = crate::scenario::parse("n.toml", &text, &[]).expect("valid");
        Network::new(&scn.spec)
    }

    const X: u32 = 0;
    const Y: u32 = 1;
    const MS2: Hop = Hop::Arrives(SimDuration::from_millis(2));

    #[test]
    fn a_message_takes_the_links_latency_or_the_cross_zone_one() {
        let mut n = network(0.0);
        assert_eq!(n.transmit(0, 1, X, X, true), (MS2, false));
        let cross = Hop::Arrives(SimDuration::from_millis(7));
        assert_eq!(
            n.transmit(1, 0, Y, X, false),
            (cross, false),
            "answers cross too"
        );
        assert_eq!(n.totals(), (2, 0));
        // Services that never call each other have no link: a broker falls back.
        assert_eq!(n.broker_delay(0, 0), None);
        assert_eq!(n.broker_delay(0, 1), Some(SimDuration::from_millis(2)));
        assert_eq!(n.totals(), (3, 0), "a broker delivery is counted");
    }

    #[test]
    fn a_partition_loses_both_directions_until_it_heals() {
        let mut n = network(0.0);
        n.set_link_fault(1, 0, LinkFault::Partition);
        assert_eq!(n.transmit(0, 1, X, X, true).0, Hop::Lost);
        assert_eq!(n.transmit(1, 0, X, X, false).0, Hop::Lost);
        n.set_link_fault(0, 1, LinkFault::None);
        assert_eq!(n.transmit(0, 1, X, X, true).0, MS2);
        assert_eq!(n.totals(), (3, 2));
    }

    #[test]
    fn a_reset_fails_a_request_fast_and_marks_an_answer() {
        let mut n = network(0.0);
        n.set_link_fault(0, 1, LinkFault::Reset);
        // The request: nothing travels, nothing is lost, nothing drawn.
        assert_eq!(n.transmit(0, 1, X, X, true), (Hop::Reset, true));
        // The answer still travels (with the link's own loss) and says it was reset.
        assert_eq!(n.transmit(1, 0, X, X, false), (MS2, true));
        assert_eq!(n.totals(), (2, 0));
    }

    #[test]
    fn a_zone_cut_loses_what_crosses_it_only() {
        let mut n = network(0.0);
        n.cut_zones(Y, X, true);
        assert_eq!(n.transmit(0, 1, X, Y, true).0, Hop::Lost);
        assert_eq!(
            n.transmit(0, 1, X, X, true).0,
            MS2,
            "inside a zone: not cut"
        );
        n.cut_zones(Y, X, false);
        assert!(matches!(n.transmit(0, 1, X, Y, true).0, Hop::Arrives(_)));
        assert_eq!(n.zone_hop(X, NONE), (false, false), "no zone: no hop");
    }

    #[test]
    fn loss_draws_from_the_links_own_stream() {
        // With loss 0.5, about half of 10 000 messages are lost; the same network built
        // twice loses exactly the same ones (the link's stream is keyed by its name).
        let fates = |mut n: Network| -> Vec<bool> {
            (0..10_000)
                .map(|_| n.transmit(0, 1, X, X, true).0 == Hop::Lost)
                .collect()
        };
        let a = fates(network(0.5));
        assert_eq!(a, fates(network(0.5)));
        let lost = a.iter().filter(|&&l| l).count();
        // Binomial(10 000, 0.5): sd 50; 5 sd either way.
        assert!((4_750..=5_250).contains(&lost), "{lost}");
    }
}
