//! Static analysis of a valid scenario: call graph, call chains, latency bounds from timeouts, latency budget hops.

use crate::model::spec::*;
use crate::time::SimDuration;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Paths listed per workload at most (a fan-out graph can have very many).
const MAX_PATHS: usize = 64;

fn calls_of(e: &EndpointSpec) -> impl Iterator<Item = &CallSpec> {
    e.steps.iter().flat_map(|st| st.calls().iter())
}

/// Every (caller, callee) pair of the call graph, once each, in service order.
pub fn call_edges(spec: &SystemSpec) -> Vec<(ServiceId, ServiceId)> {
    let mut out = Vec::new();
    for (i, s) in spec.services.iter().enumerate() {
        for e in &s.endpoints {
            for c in calls_of(e) {
                let pair = (ServiceId(i as u32), c.to);
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
        }
    }
    out
}

fn endpoints_called(
    spec: &SystemSpec,
    service: ServiceId,
    endpoint: Option<u32>,
) -> Vec<&EndpointSpec> {
    let s = &spec.services[service.0 as usize];
    match endpoint {
        Some(e) => vec![&s.endpoints[e as usize]],
        None => s.endpoints.iter().filter(|e| e.weight > 0.0).collect(),
    }
}

/// A duration estimated from means, to four significant digits in the largest unit that
/// keeps it at 1 or more ("67.37ms", "1.5s", "2s"): the nanoseconds of an estimate mean
/// nothing.
fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "unbounded".into();
    }
    if ns <= 0.0 {
        return "0s".into();
    }
    let (v, unit) = [
        (3.6e12, "h"),
        (6e10, "m"),
        (1e9, "s"),
        (1e6, "ms"),
        (1e3, "us"),
    ]
    .into_iter()
    .find(|&(size, _)| ns >= size)
    .map_or((ns, "ns"), |(size, unit)| (ns / size, unit));
    // (Below 1 ns only rounding is left: at most 3 decimals.)
    let decimals = (3 - v.log10().floor() as i32).clamp(0, 3) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

/// Network one-way latency statistic (mean or max) between two services.
fn net(spec: &SystemSpec, a: ServiceId, b: ServiceId, worst: bool) -> f64 {
    let d = spec
        .network
        .links
        .iter()
        .rev()
        .find(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a))
        .map_or(&spec.network.latency, |l| &l.latency);
    if worst {
        d.max_ns().unwrap_or(f64::INFINITY)
    } else {
        d.mean_ns().unwrap_or(f64::INFINITY)
    }
}

/// What the sidecars on a call from `a` to `b` add without queueing: the caller's outbound
/// proxy, the callee's inbound proxy and its authorization check (mean or worst case).
fn proxies(spec: &SystemSpec, a: ServiceId, b: ServiceId, worst: bool) -> f64 {
    let Some(m) = &spec.mesh else { return 0.0 };
    let stat = |d: &crate::dist::Dist| {
        if worst {
            d.max_ns().unwrap_or(f64::INFINITY)
        } else {
            d.mean_ns().unwrap_or(f64::INFINITY)
        }
    };
    let out = m.proxies[a.0 as usize]
        .as_ref()
        .map_or(0.0, |p| stat(&p.latency));
    let inb = m.proxies[b.0 as usize].as_ref().map_or(0.0, |p| {
        stat(&p.latency) + m.authz.as_ref().map_or(0.0, |z| stat(&z.latency))
    });
    out + inb
}

/// Latency of handling a request at `service`, without queueing: the mean
/// (parallel groups counted as their slowest member's mean, a lower bound) or the
/// worst case (each call capped by its timeout; unbounded distributions without a
/// timeout make it unbounded).
fn latency_ns(spec: &SystemSpec, service: ServiceId, endpoint: Option<u32>, worst: bool) -> f64 {
    latency_memo(spec, service, endpoint, worst, 0, &mut BTreeMap::new())
}

/// `latency_ns`, remembering each (service, endpoint)'s answer: a 1,000-way parallel
/// group nested three deep is 10^9 paths but only four services.
fn latency_memo(
    spec: &SystemSpec,
    service: ServiceId,
    endpoint: Option<u32>,
    worst: bool,
    depth: usize,
    memo: &mut BTreeMap<(ServiceId, Option<u32>), f64>,
) -> f64 {
    if depth > spec.services.len() {
        return f64::INFINITY; // unreachable for a validated (acyclic) scenario
    }
    if let Some(&known) = memo.get(&(service, endpoint)) {
        return known;
    }
    let mut out: f64 = 0.0;
    for e in endpoints_called(spec, service, endpoint) {
        let mut total = 0.0;
        for st in &e.steps {
            let mut call = |c: &CallSpec| {
                let inner = 2.0 * net(spec, service, c.to, worst)
                    + proxies(spec, service, c.to, worst)
                    + latency_memo(spec, c.to, c.endpoint, worst, depth + 1, memo);
                let per_try = match c.timeout {
                    Some(t) => inner.min(t.0 as f64),
                    None => inner,
                };
                // With retries, the worst case is every attempt taking its full time
                // (back-off waits not counted), capped by the overall timeout.
                let retry = c.retry.map(|r| &spec.retries[r as usize]);
                let attempts = if worst {
                    retry.map_or(1, |r| r.max_attempts)
                } else {
                    1
                } as f64;
                let capped = match retry.and_then(|r| r.overall_timeout) {
                    Some(o) => (per_try * attempts).min(o.0 as f64),
                    None => per_try * attempts,
                };
                if worst {
                    capped
                } else {
                    c.probability * capped
                }
            };
            total += match st {
                Step::Work(d) => {
                    if worst {
                        d.max_ns().unwrap_or(f64::INFINITY)
                    } else {
                        d.mean_ns().unwrap_or(f64::INFINITY)
                    }
                }
                Step::Call(c) => call(c),
                Step::Parallel(cs) => cs.iter().map(&mut call).fold(0.0, f64::max),
                // Either side of a migration: the slower bounds it.
                Step::Migrate(_, cs) => cs.iter().map(&mut call).fold(0.0, f64::max),
                // The handler goes on at once: the saga runs on its own.
                Step::Saga(_, false) => 0.0,
                // It waits for the saga: its actions, one after the other (no failures).
                Step::Saga(def, true) => spec.sagas[*def as usize]
                    .calls
                    .iter()
                    .filter_map(|(action, _)| action.as_ref())
                    .map(&mut call)
                    .sum(),
                // It waits for the decision: the slowest PREPARE (they go at once).
                Step::Tx(def) => tx_prepares(spec, *def).map(&mut call).fold(0.0, f64::max),
            };
        }
        out = out.max(total);
    }
    memo.insert((service, endpoint), out);
    out
}

/// The calls carrying transaction `def`'s PREPAREs (its coordinator's hidden endpoint's first
/// steps).
fn tx_prepares(spec: &SystemSpec, def: u32) -> impl Iterator<Item = &CallSpec> {
    let t = &spec.transactions[def as usize];
    let steps = &spec.services[t.coordinator.0 as usize].endpoints[t.endpoint as usize].steps;
    steps[..t.participants.len()].iter().flat_map(|s| s.calls())
}

/// Mean local work of a service (all work steps of its endpoints, weighted).
fn mean_work_ns(s: &ServiceSpec) -> f64 {
    let total_w: f64 = s.endpoints.iter().map(|e| e.weight).sum();
    s.endpoints
        .iter()
        .map(|e| {
            let w: f64 = e
                .steps
                .iter()
                .map(|st| {
                    if let Step::Work(d) = st {
                        d.mean_ns().unwrap_or(f64::INFINITY)
                    } else {
                        0.0
                    }
                })
                .sum();
            w * e.weight / total_w
        })
        .sum()
}

/// One chain of calls from a workload's entry.
#[derive(Clone, Debug)]
pub struct CallPath {
    /// Services along the chain, entry first.
    pub services: Vec<ServiceId>,
    /// Timeout of each call along it (one fewer than services).
    pub timeouts: Vec<Option<SimDuration>>,
    /// Max attempts of each call along it.
    pub attempts: Vec<u32>,
}

impl CallPath {
    /// Worst-case retry amplification: attempts reaching the last service per request (the product).
    pub fn amplification(&self) -> u64 {
        self.attempts.iter().map(|&a| a as u64).product()
    }
}

/// A caller that gives up before its callee may legitimately answer.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeoutInversion {
    /// The caller.
    pub caller: ServiceId,
    /// The callee, which itself calls `downstream`.
    pub callee: ServiceId,
    /// The callee's callee.
    pub downstream: ServiceId,
    /// The caller's timeout on the callee.
    pub timeout: SimDuration,
    /// What the callee may spend on `downstream`: attempts x per-try timeout.
    pub callee_may_take: SimDuration,
    /// The callee propagates deadlines, so its calls stop when the caller stops waiting.
    pub bounded: bool,
}

/// Every timeout inversion: a call with timeout T to a service that may spend longer
/// than T on one of its own calls with retries (attempts x per-try timeout, or the
/// overall retry timeout when shorter).
pub fn timeout_inversions(spec: &SystemSpec) -> Vec<TimeoutInversion> {
    let mut out = Vec::new();
    for (i, s) in spec.services.iter().enumerate() {
        for e in &s.endpoints {
            for c in calls_of(e) {
                let Some(t) = c.timeout else { continue };
                for ce in endpoints_called(spec, c.to, c.endpoint) {
                    for d in calls_of(ce) {
                        let Some(per_try) = d.timeout else { continue };
                        let retry = d.retry.map(|r| &spec.retries[r as usize]);
                        let attempts = retry.map_or(1, |r| r.max_attempts) as u64;
                        let mut may = SimDuration(per_try.0.saturating_mul(attempts));
                        if let Some(o) = retry.and_then(|r| r.overall_timeout) {
                            may = may.min(o);
                        }
                        let inv = TimeoutInversion {
                            caller: ServiceId(i as u32),
                            callee: c.to,
                            downstream: d.to,
                            timeout: t,
                            callee_may_take: may,
                            bounded: spec.services[c.to.0 as usize].propagate_deadline,
                        };
                        if may > t && !out.contains(&inv) {
                            out.push(inv);
                        }
                    }
                }
            }
        }
    }
    out
}

fn paths_from(
    spec: &SystemSpec,
    service: ServiceId,
    endpoint: Option<u32>,
    prefix: &mut CallPath,
    out: &mut Vec<CallPath>,
) {
    let mut leaf = true;
    for e in endpoints_called(spec, service, endpoint) {
        for c in calls_of(e) {
            if prefix.services.contains(&c.to) || out.len() >= MAX_PATHS {
                continue;
            }
            leaf = false;
            prefix.services.push(c.to);
            prefix.timeouts.push(c.timeout);
            prefix
                .attempts
                .push(c.retry.map_or(1, |r| spec.retries[r as usize].max_attempts));
            paths_from(spec, c.to, c.endpoint, prefix, out);
            prefix.services.pop();
            prefix.timeouts.pop();
            prefix.attempts.pop();
        }
    }
    if leaf && out.len() < MAX_PATHS && !out.iter().any(|p| p.services == prefix.services) {
        out.push(prefix.clone());
    }
}

/// Every call chain from the workload's entry (up to 64).
pub fn call_paths(spec: &SystemSpec, w: &WorkloadSpec) -> Vec<CallPath> {
    let mut out = Vec::new();
    let mut prefix = CallPath {
        services: vec![w.target],
        timeouts: vec![],
        attempts: vec![],
    };
    paths_from(spec, w.target, w.endpoint, &mut prefix, &mut out);
    out
}

/// How many hops fit in a latency budget: (budget − entry service time) / (network both
/// ways + service time per hop), which is what a run of the same chain pays without
/// queueing. The articles' arithmetic counts the network once per hop; it is kept beside
/// the verdict (`article_ratio`), and says more hops fit than do.
#[derive(Clone, Debug)]
pub struct HopBudget {
    /// The budget.
    pub budget_ns: f64,
    /// Mean work at the entry service.
    pub entry_ns: f64,
    /// Mean one-way network latency per hop.
    pub network_ns: f64,
    /// Mean work per downstream hop (averaged over the deepest chain).
    pub service_ns: f64,
    /// (budget − entry) / (2 × network + service), before rounding down.
    pub ratio: f64,
    /// Whole hops that fit.
    pub hops_fit: u64,
    /// The articles' (budget − entry) / (network + service): the network counted one way.
    pub article_ratio: f64,
    /// Hops in the deepest chain.
    pub deepest_hops: usize,
}

/// The hop arithmetic for one workload against `budget`.
pub fn hop_budget(spec: &SystemSpec, w: &WorkloadSpec, budget: SimDuration) -> HopBudget {
    let deepest = call_paths(spec, w)
        .into_iter()
        .max_by_key(|p| p.services.len())
        .expect("at least the entry");
    let entry_ns = mean_work_ns(&spec.services[w.target.0 as usize]);
    let hops = deepest.services.len() - 1;
    let (mut net_sum, mut work_sum) = (0.0, 0.0);
    for pair in deepest.services.windows(2) {
        net_sum += net(spec, pair[0], pair[1], false);
        work_sum += mean_work_ns(&spec.services[pair[1].0 as usize]);
    }
    let (network_ns, service_ns) = if hops > 0 {
        (net_sum / hops as f64, work_sum / hops as f64)
    } else {
        (
            spec.network.latency.mean_ns().unwrap_or(f64::INFINITY),
            entry_ns,
        )
    };
    let ratio = (budget.0 as f64 - entry_ns) / (2.0 * network_ns + service_ns);
    let article_ratio = (budget.0 as f64 - entry_ns) / (network_ns + service_ns);
    let hops_fit = if ratio.is_finite() && ratio > 0.0 {
        ratio.floor() as u64
    } else {
        0
    };
    HopBudget {
        budget_ns: budget.0 as f64,
        entry_ns,
        network_ns,
        service_ns,
        ratio,
        hops_fit,
        article_ratio,
        deepest_hops: hops,
    }
}

/// The text `faultline validate` prints.
pub fn report(spec: &SystemSpec, latency_budget: Option<SimDuration>) -> String {
    let mut o = String::new();
    let name = |id: ServiceId| spec.services[id.0 as usize].name.as_str();
    let _ = writeln!(
        o,
        "scenario {:?}: {} services, {} workloads, duration {}, warmup {}, seed {}",
        spec.name,
        spec.services.len(),
        spec.workloads.len(),
        spec.duration,
        spec.warmup,
        spec.seed
    );
    let _ = writeln!(o, "\ncall graph:");
    for s in &spec.services {
        let _ = writeln!(
            o,
            "  {} ({} x {} workers, queue {})",
            s.name, s.replicas, s.workers, s.queue_capacity
        );
        for e in &s.endpoints {
            for c in calls_of(e) {
                let mut attrs = Vec::new();
                if s.endpoints.len() > 1 {
                    attrs.push(format!("from endpoint {}", e.name));
                }
                attrs.push(match c.timeout {
                    Some(t) => format!("timeout {t}"),
                    None => "no timeout".into(),
                });
                if c.probability < 1.0 {
                    attrs.push(format!("p {}", c.probability));
                }
                if !c.required {
                    attrs.push("optional".into());
                }
                if let Some(r) = c.retry {
                    let r = &spec.retries[r as usize];
                    attrs.push(format!("retry {} ({} attempts)", r.name, r.max_attempts));
                }
                if let Some(b) = c.breaker {
                    attrs.push(format!("breaker {}", spec.breakers[b as usize].name));
                }
                let _ = writeln!(o, "    -> {} ({})", name(c.to), attrs.join(", "));
            }
        }
    }
    let _ = writeln!(o, "\nsynchronous cycles: none");
    let inversions = timeout_inversions(spec);
    if inversions.is_empty() {
        let _ = writeln!(o, "timeout inversions: none");
    } else {
        let _ = writeln!(
            o,
            "timeout inversions (the caller gives up while its callee may still succeed):"
        );
        for v in &inversions {
            let _ = writeln!(
                o,
                "  {} -> {} times out after {}, but {} may spend up to {} on {}",
                name(v.caller),
                name(v.callee),
                v.timeout,
                name(v.callee),
                v.callee_may_take,
                name(v.downstream)
            );
            if v.bounded {
                let _ = writeln!(
                    o,
                    "    (bounded: {} propagates deadlines, so its calls stop when {} stops waiting)",
                    name(v.callee),
                    name(v.caller)
                );
            }
        }
    }
    let work = work(spec);
    for (wi, w) in spec.workloads.iter().enumerate() {
        let paths = call_paths(spec, w);
        let deepest = paths
            .iter()
            .map(|p| p.services.len() - 1)
            .max()
            .unwrap_or(0);
        let _ = writeln!(o, "\nworkload {:?} -> {}:", w.name, name(w.target));
        let _ = writeln!(o, "  deepest call chain: {deepest} hops");
        let est = &work[wi];
        let _ = match (est.requests, est.events) {
            (Some(r), Some(e)) => writeln!(
                o,
                "  work: about {r:.3e} requests, each a call tree of {:.3} requests on average (at most {:.0} in flight at once): at least {e:.3e} events of sim.max_events = {}",
                est.tree, est.peak, spec.max_events
            ),
            _ => writeln!(
                o,
                "  work: a call tree of {:.3} requests on average (at most {:.0} in flight at once); the request count depends on the run",
                est.tree, est.peak
            ),
        };
        let mean = latency_ns(spec, w.target, w.endpoint, false);
        let worst = latency_ns(spec, w.target, w.endpoint, true);
        let worst = match w.timeout {
            Some(t) => worst.min(t.0 as f64),
            None => worst,
        };
        let _ = writeln!(
            o,
            "  latency without queueing: mean >= {}, worst case {}",
            fmt_ns(mean),
            fmt_ns(worst)
        );
        let _ = writeln!(
            o,
            "  paths (worst case is capped by the first timeout met on the way down):"
        );
        for p in &paths {
            let chain: Vec<&str> = p.services.iter().map(|&s| name(s)).collect();
            let cap = p
                .timeouts
                .iter()
                .enumerate()
                .find_map(|(i, t)| t.map(|t| (i, t)));
            let bound = match (w.timeout, cap) {
                (Some(t), _) => format!("bounded by the client timeout {t}"),
                (None, Some((i, t))) => format!(
                    "bounded by the {} -> {} timeout {t}",
                    chain[i],
                    chain[i + 1]
                ),
                (None, None) if p.services.len() == 1 => "no calls".into(),
                (None, None) => "unbounded: no timeout on any call".into(),
            };
            let _ = writeln!(
                o,
                "    {}: {}; worst-case amplification {}x",
                chain.join(" -> "),
                bound,
                p.amplification()
            );
        }
        if paths.len() >= MAX_PATHS {
            let _ = writeln!(o, "    (first {MAX_PATHS} paths only)");
        }
        if let Some(b) = latency_budget {
            let h = hop_budget(spec, w, b);
            let verdict = if h.deepest_hops as u64 <= h.hops_fit {
                "fits"
            } else {
                "does NOT fit"
            };
            let _ = writeln!(
                o,
                "  latency budget {b}: ({b} - {} at {}) / (2 x {} network + {} service per hop) = {:.2}, so {} hops fit; the deepest chain has {} hops: {verdict}",
                fmt_ns(h.entry_ns),
                name(w.target),
                fmt_ns(h.network_ns),
                fmt_ns(h.service_ns),
                h.ratio,
                h.hops_fit,
                h.deepest_hops
            );
            let _ = writeln!(
                o,
                "    (the articles count the network one way: / ({} + {}) = {:.2}; a request pays it there and back)",
                fmt_ns(h.network_ns),
                fmt_ns(h.service_ns),
                h.article_ratio
            );
        }
    }
    o
}

/// The call graph in Graphviz DOT.
pub fn dot(spec: &SystemSpec) -> String {
    let mut o = String::from(
        "digraph faultline {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for w in &spec.workloads {
        let _ = writeln!(
            o,
            "  \"workload:{}\" [shape=ellipse, label=\"{}\"];",
            w.name, w.name
        );
        let _ = writeln!(
            o,
            "  \"workload:{}\" -> \"{}\";",
            w.name, spec.services[w.target.0 as usize].name
        );
    }
    for s in &spec.services {
        let _ = writeln!(
            o,
            "  \"{}\" [label=\"{}\\n{} x {} workers\"];",
            s.name, s.name, s.replicas, s.workers
        );
    }
    for s in &spec.services {
        let mut seen: Vec<(ServiceId, String)> = Vec::new();
        for e in &s.endpoints {
            for c in calls_of(e) {
                let label = match c.timeout {
                    Some(t) => format!("timeout {t}"),
                    None => String::new(),
                };
                if !seen.contains(&(c.to, label.clone())) {
                    let _ = writeln!(
                        o,
                        "  \"{}\" -> \"{}\" [label=\"{}\"];",
                        s.name, spec.services[c.to.0 as usize].name, label
                    );
                    seen.push((c.to, label));
                }
            }
        }
    }
    o.push_str("}\n");
    o
}

/// The call graph drawn as SVG: workloads and services as boxes in layers (callers left
/// of callees, by longest path with petgraph), calls as arrows labelled with their
/// timeout, retries, hedging and breaker. Cycles (which `validate` refuses) are not drawn.
pub fn graph_svg(spec: &SystemSpec) -> String {
    use petgraph::graph::{DiGraph, NodeIndex};
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    // Nodes: workloads first, then services; labels on edges, merged per pair.
    let mut g: DiGraph<(String, String, bool), Vec<String>> = DiGraph::new();
    let wl: Vec<NodeIndex> = spec
        .workloads
        .iter()
        .map(|w| g.add_node((w.name.clone(), "workload".to_string(), true)))
        .collect();
    let sv: Vec<NodeIndex> = spec
        .services
        .iter()
        .map(|s| {
            let mut sub = format!("{} × {} workers", s.replicas, s.workers);
            if s.zones.len() > 1 {
                let _ = write!(sub, ", {} zones", s.zones.len());
            }
            g.add_node((s.name.clone(), sub, false))
        })
        .collect();
    for (w, n) in spec.workloads.iter().zip(&wl) {
        let mut l = Vec::new();
        if let Some(t) = w.timeout {
            l.push(format!("timeout {t}"));
        }
        g.add_edge(*n, sv[w.target.0 as usize], l);
    }
    for (i, s) in spec.services.iter().enumerate() {
        for e in &s.endpoints {
            for c in calls_of(e) {
                let mut l = Vec::new();
                if let Some(t) = c.timeout {
                    l.push(format!("timeout {t}"));
                }
                if let Some(r) = c.retry {
                    let r = &spec.retries[r as usize];
                    if r.max_attempts > 1 {
                        l.push(format!("retry ×{}", r.max_attempts - 1));
                    }
                }
                if let Some(h) = c.hedge {
                    l.push(format!(
                        "hedge ×{}",
                        spec.hedges[h as usize].max_attempts - 1
                    ));
                }
                if let Some(b) = c.breaker {
                    l.push(format!("breaker {}", spec.breakers[b as usize].name));
                }
                if c.publish.is_some() {
                    l.push("publish".into());
                }
                let (a, b) = (sv[i], sv[c.to.0 as usize]);
                match g.find_edge(a, b) {
                    Some(ed) => {
                        for x in l {
                            if !g[ed].contains(&x) {
                                g[ed].push(x);
                            }
                        }
                    }
                    None => {
                        g.add_edge(a, b, l);
                    }
                }
            }
        }
    }
    // Layers: longest path from a source, over a topological order (a cycle: all in layer 0).
    let mut layer = vec![0usize; g.node_count()];
    if let Ok(order) = petgraph::algo::toposort(&g, None) {
        for n in order {
            for m in g.neighbors(n) {
                layer[m.index()] = layer[m.index()].max(layer[n.index()] + 1);
            }
        }
    }
    let layers = layer.iter().max().map_or(1, |m| m + 1);
    let mut slot = vec![0usize; g.node_count()];
    let mut count = vec![0usize; layers];
    for n in g.node_indices() {
        slot[n.index()] = count[layer[n.index()]];
        count[layer[n.index()]] += 1;
    }
    let (bw, bh, gx, gy) = (170.0, 46.0, 110.0, 34.0);
    let tallest = count.iter().copied().max().unwrap_or(1) as f64;
    let width = 40.0 + layers as f64 * (bw + gx) - gx + 40.0;
    let height = 70.0 + tallest * (bh + gy) + 20.0;
    let pos = |n: NodeIndex| -> (f64, f64) {
        let l = layer[n.index()];
        let off = (tallest - count[l] as f64) * (bh + gy) / 2.0;
        (
            40.0 + l as f64 * (bw + gx),
            60.0 + off + slot[n.index()] as f64 * (bh + gy),
        )
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        o,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs><rect width="100%" height="100%" fill="white"/>"##
    );
    let _ = writeln!(
        o,
        r##"<text x="20" y="28" font-size="16" font-weight="bold">Call graph: {}</text>"##,
        esc(&spec.name)
    );
    for ed in g.edge_indices() {
        let (a, b) = g.edge_endpoints(ed).expect("an edge");
        let ((ax, ay), (bx, by)) = (pos(a), pos(b));
        let (x1, y1, x2, y2) = (ax + bw, ay + bh / 2.0, bx, by + bh / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            o,
            r##"<path d="M {x1:.1} {y1:.1} C {mid:.1} {y1:.1}, {mid:.1} {y2:.1}, {x2:.1} {y2:.1}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>"##
        );
        // Labels near the arrow's head, where fanned-out arrows are apart; on a white
        // backing so crossing lines do not hide them.
        let t: f64 = 0.78;
        let u = 1.0 - t;
        let lx = x1 * u * u * u + 3.0 * mid * u * u * t + 3.0 * mid * u * t * t + x2 * t * t * t;
        let ly = y1 * u * u * u + 3.0 * y1 * u * u * t + 3.0 * y2 * u * t * t + y2 * t * t * t;
        let n = g[ed].len() as f64;
        for (k, text) in g[ed].iter().enumerate() {
            let y = ly - 6.0 + 11.0 * k as f64 - 5.5 * (n - 1.0);
            let w = 5.6 * text.chars().count() as f64 + 4.0;
            // Not over the callee's box: a label ends 4 px before the arrow's head.
            let lx = lx.min(x2 - 4.0 - w / 2.0);
            let _ = writeln!(
                o,
                r##"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="11" fill="white" opacity="0.85"/><text x="{lx:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#333">{}</text>"##,
                lx - w / 2.0,
                y - 9.0,
                y,
                esc(text)
            );
        }
    }
    for n in g.node_indices() {
        let (x, y) = pos(n);
        let (name, sub, workload) = &g[n];
        let (fill, rx) = if *workload {
            ("#fdf2d0", 23.0)
        } else {
            ("#e8f0fa", 4.0)
        };
        let _ = writeln!(
            o,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bw}" height="{bh}" rx="{rx}" fill="{fill}" stroke="#345"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#444">{}</text>"##,
            x + bw / 2.0,
            y + 19.0,
            esc(name),
            x + bw / 2.0,
            y + 35.0,
            esc(sub)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// The work a workload implies, estimated before running (see [`work`]).
#[derive(Clone, Debug)]
pub struct WorkEstimate {
    /// The workload (index into `SystemSpec::workloads`).
    pub workload: usize,
    /// Requests it sends over the run (None: cannot tell, e.g. a closed loop of zero think
    /// time and zero latency).
    pub requests: Option<f64>,
    /// Requests in one request's call tree on average (itself included): each call's
    /// probability, fan-out and depth compounded, one attempt each.
    pub tree: f64,
    /// The most requests one request's call tree can hold in flight at once: every call
    /// taken, parallel groups summed, hedged attempts all out, sequential steps one at a
    /// time.
    pub peak: f64,
    /// A lower bound on the events: `EVENTS_PER_REQUEST` per request of every tree.
    pub events: Option<f64>,
}

/// Events each request costs at least (its arrival and its answer; the gallery's runs
/// spend 2 to 3.3 per request). The estimate is a floor, so a scenario it refuses could
/// not finish.
pub const EVENTS_PER_REQUEST: f64 = 2.0;

/// Estimates, per workload, the requests and events a run of `spec` implies.
pub fn work(spec: &SystemSpec) -> Vec<WorkEstimate> {
    let mut mean_memo = BTreeMap::new();
    let mut max_memo = BTreeMap::new();
    let duration_s = spec.duration.as_secs_f64();
    spec.workloads
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let tree = tree_size(spec, w.target, w.endpoint, 0, &mut mean_memo);
            let peak = peak(spec, w.target, w.endpoint, 0, &mut max_memo);
            let requests = match &w.arrivals {
                Arrivals::Open { profile, .. } => Some(integrate(profile, spec.duration)),
                Arrivals::Closed { users, think } => {
                    let cycle_ns = think.mean_ns().unwrap_or(0.0)
                        + latency_ns(spec, w.target, w.endpoint, false);
                    (cycle_ns > 0.0 && cycle_ns.is_finite())
                        .then(|| *users as f64 * duration_s * 1e9 / cycle_ns)
                }
                Arrivals::Burst {
                    size, every, count, ..
                } => {
                    let bursts = match every {
                        Some(e) if e.0 > 0 => (spec.duration.0 as f64 / e.0 as f64).floor() + 1.0,
                        _ => 1.0,
                    };
                    Some(*size as f64 * bursts.min(*count as f64))
                }
            };
            WorkEstimate {
                workload: i,
                requests,
                tree,
                peak,
                events: requests.map(|r| r * tree * EVENTS_PER_REQUEST),
            }
        })
        .collect()
}

/// Requests of an open-loop profile over `[0, duration)`: its rate integrated (exact for
/// a flat rate, 10,000 midpoints otherwise: an estimate, not a count).
fn integrate(profile: &RateProfile, duration: SimDuration) -> f64 {
    let secs = duration.as_secs_f64();
    if let RateProfile::Flat(r) = profile {
        return r * secs;
    }
    const N: u64 = 10_000;
    let step = duration.0 / N;
    if step == 0 {
        return profile.rate_at(crate::time::SimTime::ZERO) * secs;
    }
    (0..N)
        .map(|k| profile.rate_at(crate::time::SimTime(k * step + step / 2)))
        .sum::<f64>()
        * secs
        / N as f64
}

/// Requests in a call tree from `service` (`endpoint`) on average: probabilities, one
/// attempt, endpoints by weight. Remembered per (service, endpoint): a 10,000-way group
/// nested three deep costs three lookups, not 10^12.
fn tree_size(
    spec: &SystemSpec,
    service: ServiceId,
    endpoint: Option<u32>,
    depth: usize,
    memo: &mut BTreeMap<(ServiceId, Option<u32>), f64>,
) -> f64 {
    if depth > spec.services.len() {
        return f64::INFINITY; // unreachable for a validated (acyclic) scenario
    }
    if let Some(&known) = memo.get(&(service, endpoint)) {
        return known;
    }
    let eps = endpoints_called(spec, service, endpoint);
    let weight_sum: f64 = eps
        .iter()
        .map(|e| e.weight)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut out = 0.0f64;
    for e in &eps {
        let mut size = 1.0;
        for c in calls_of(e) {
            size += c.probability * tree_size(spec, c.to, c.endpoint, depth + 1, memo);
        }
        if endpoint.is_some() {
            out = out.max(size);
        } else {
            out += size * e.weight / weight_sum;
        }
    }
    memo.insert((service, endpoint), out);
    out
}

/// The most requests a request to `service` (`endpoint`) can hold in flight at once,
/// itself included: a step at a time, a parallel group's calls together, a hedged call's
/// attempts together (retries follow one another).
fn peak(
    spec: &SystemSpec,
    service: ServiceId,
    endpoint: Option<u32>,
    depth: usize,
    memo: &mut BTreeMap<(ServiceId, Option<u32>), f64>,
) -> f64 {
    if depth > spec.services.len() {
        return f64::INFINITY;
    }
    if let Some(&known) = memo.get(&(service, endpoint)) {
        return known;
    }
    let mut out = 0.0f64;
    for e in endpoints_called(spec, service, endpoint) {
        let mut widest = 0.0f64;
        for st in &e.steps {
            let mut call = |c: &CallSpec| {
                let copies = c.hedge.map_or(1, |h| spec.hedges[h as usize].max_attempts);
                copies as f64 * peak(spec, c.to, c.endpoint, depth + 1, memo)
            };
            let width = match st {
                Step::Call(c) => call(c),
                Step::Parallel(cs) => cs.iter().map(&mut call).sum(),
                // One side or the other: the wider.
                Step::Migrate(_, cs) => cs.iter().map(&mut call).fold(0.0, f64::max),
                Step::Work(_) | Step::Saga(..) => 0.0,
                // Its PREPAREs are in flight together.
                Step::Tx(def) => tx_prepares(spec, *def).map(&mut call).sum(),
            };
            widest = widest.max(width);
        }
        out = out.max(1.0 + widest);
    }
    memo.insert((service, endpoint), out);
    out
}

/// Policies the scenario defines that nothing uses: (kind, name), in the order of
/// `[policy.KIND]` tables. A policy nobody references is usually a typo in a call.
pub fn unused_policies(spec: &SystemSpec) -> Vec<(&'static str, String)> {
    let mut used: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let mut mark = |kind: &'static str, i: Option<u32>| {
        if let Some(i) = i {
            used.entry(kind).or_default().push(i);
        }
    };
    let mut mark_call = |c: &CallSpec| {
        mark("retry", c.retry);
        mark("breaker", c.breaker);
        mark("hedge", c.hedge);
        mark("cache", c.cache);
        mark("cache", c.updates);
        mark("balancer", c.balancer);
        mark("outlier", c.outlier);
        mark("bulkhead", c.bulkhead);
        mark("concurrency", c.concurrency);
        mark("throttle", c.throttle);
    };
    for s in &spec.services {
        for e in &s.endpoints {
            calls_of(e).for_each(&mut mark_call);
        }
    }
    for sg in &spec.sagas {
        for (action, compensation) in &sg.calls {
            action.iter().chain(compensation).for_each(&mut mark_call);
        }
    }
    for s in &spec.services {
        mark("rate_limit", s.rate_limit);
        mark("concurrency", s.concurrency);
    }
    let names: [(&'static str, Vec<&str>); 10] = [
        (
            "cache",
            spec.caches.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "retry",
            spec.retries.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "breaker",
            spec.breakers.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "hedge",
            spec.hedges.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "balancer",
            spec.balancers.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "outlier",
            spec.outliers.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "bulkhead",
            spec.bulkheads.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "rate_limit",
            spec.rate_limits.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "concurrency",
            spec.concurrency.iter().map(|p| p.name.as_str()).collect(),
        ),
        (
            "throttle",
            spec.throttles.iter().map(|p| p.name.as_str()).collect(),
        ),
    ];
    let mut out = Vec::new();
    for (kind, list) in names {
        for (i, name) in list.into_iter().enumerate() {
            if !used.get(kind).is_some_and(|u| u.contains(&(i as u32))) {
                out.push((kind, name.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimated_durations_print_four_significant_digits() {
        assert_eq!(fmt_ns(67_367_454.0), "67.37ms");
        assert_eq!(fmt_ns(2e9), "2s");
        assert_eq!(fmt_ns(1.5e9), "1.5s");
        assert_eq!(fmt_ns(999.6), "999.6ns");
        assert_eq!(fmt_ns(120e9), "2m");
        assert_eq!(fmt_ns(f64::INFINITY), "unbounded");
        assert_eq!(fmt_ns(0.0), "0s");
        assert_eq!(fmt_ns(0.25), "0.25ns");
    }
}
