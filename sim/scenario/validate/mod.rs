//! Validation: turns a parsed [`RawScenario`] into a [`SystemSpec`], collecting every error with its TOML path.

mod arrivals;
mod caches;
mod dist;
mod events;
mod explore;
mod faults;
mod hosts;
mod kinds;
mod layers;
mod mesh;
mod policies;
mod priority;
mod registry;
mod sagas;
mod shift;
mod steps;
mod twopc;

use super::diag::{did_you_mean, unknown, TomlPath};

/// What `unknown` says when no queue is defined.
const NO_QUEUE: &str = "queues: none (add a [[queue]])";
use super::raw::*;
use crate::dist::Dist;
use crate::model::spec::*;
use crate::time::{SimDuration, SimTime};
use arrivals::*;
pub use dist::{build_dist, DistSink};
use kinds::KindTable;
use layers::*;
use petgraph::graph::{DiGraph, NodeIndex};
use policies::*;
use registry::*;
use std::collections::BTreeMap;
use steps::*;

/// Calls in one parallel group at most (a fan-out to thousands of leaves is realistic;
/// every call is a record in flight, so there is a limit).
const MAX_PARALLEL: usize = 10_000;

/// A semantic problem before it is placed in the file.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Where.
    pub path: TomlPath,
    /// What.
    pub message: String,
}

struct Ctx {
    problems: Vec<Problem>,
    /// Per (caller, callee) pair and per kind of pair-level policy, the first call naming
    /// one: (its name, where). The model keeps one of each per pair, so every call on the
    /// pair must name the same one.
    pair_policies: BTreeMap<(usize, u32, &'static str), (String, TomlPath)>,
}

impl Ctx {
    fn err(&mut self, path: TomlPath, message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            message: message.into(),
        });
    }
}

fn root() -> TomlPath {
    TomlPath::default()
}

/// Longest name, in bytes: names become directory and file names
/// (`reports/NAME/`, `latency-workload-NAME.png`), which file systems cap at 255 bytes.
const MAX_NAME_BYTES: usize = 100;

/// Checks a name that ends up in file names and report text: no control characters (a
/// newline would make a directory `a\nb`), at most `MAX_NAME_BYTES`.
fn check_name(cx: &mut Ctx, path: TomlPath, what: &str, name: &str) {
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        cx.err(
            path,
            format!("the {what} name {name:?} holds the control character {c:?}: names become file names and report text"),
        );
    } else if name.len() > MAX_NAME_BYTES {
        cx.err(
            path,
            format!(
                "the {what} name is {} bytes long; at most {MAX_NAME_BYTES} (names become file names)",
                name.len()
            ),
        );
    }
}

/// Validates `raw`; on success every name is resolved to an id.
pub fn validate(raw: &RawScenario) -> Result<SystemSpec, Vec<Problem>> {
    let mut cx = Ctx {
        problems: Vec::new(),
        pair_policies: BTreeMap::new(),
    };
    let sim = &raw.sim;
    let sp = root().key("sim");
    check_name(&mut cx, sp.key("name"), "scenario", &sim.name);
    if sim.name.trim().is_empty() {
        cx.err(sp.key("name"), "the scenario needs a non-empty name");
    } else if sim.name.contains(['/', '\\']) || sim.name.starts_with('.') {
        cx.err(
            sp.key("name"),
            "the name is used as a directory name: no '/', '\\' or leading '.'",
        );
    }
    if sim.duration.0 == 0 {
        cx.err(sp.key("duration"), "duration must be longer than 0s");
    }
    if sim.warmup >= sim.duration && sim.duration.0 > 0 {
        cx.err(
            sp.key("warmup"),
            format!(
                "warmup ({}) must be shorter than duration ({}), or nothing would be measured",
                sim.warmup, sim.duration
            ),
        );
    }
    if sim.bucket.0 == 0 {
        cx.err(sp.key("bucket"), "bucket must be longer than 0s");
    }
    if sim.max_events == 0 {
        cx.err(sp.key("max_events"), "max_events must be at least 1");
    }
    if sim.max_in_flight == 0 {
        cx.err(sp.key("max_in_flight"), "max_in_flight must be at least 1");
    }

    // Names first, so calls can be resolved whatever their order.
    let mut ids: BTreeMap<&str, ServiceId> = BTreeMap::new();
    for (i, s) in raw.service.iter().enumerate() {
        let p = root().key("service").index(i).key("name");
        check_name(&mut cx, p.clone(), "service", &s.name);
        if s.name.trim().is_empty() {
            cx.err(p, "a service needs a non-empty name");
        } else if ids.insert(s.name.as_str(), ServiceId(i as u32)).is_some() {
            cx.err(
                p,
                format!(
                    "service name {:?} is used twice; names must be unique",
                    s.name
                ),
            );
        }
    }
    if raw.service.is_empty() {
        cx.err(root(), "the scenario has no [[service]]: add at least one");
    }
    let names: Vec<&str> = raw.service.iter().map(|s| s.name.as_str()).collect();
    let resolve = |cx: &mut Ctx, name: &str, path: TomlPath| -> Option<ServiceId> {
        match ids.get(name) {
            Some(id) => Some(*id),
            None => {
                cx.err(path, unknown("service", name, &names, "services", ""));
                None
            }
        }
    };

    // Queues and topics (consumers are attached once services are built).
    let mut queues: Vec<QueueSpec> = Vec::new();
    let mut dests: BTreeMap<String, (Dest, Option<ServiceId>)> = BTreeMap::new();
    for (i, q) in raw.queue.iter().enumerate() {
        let p = root().key("queue").index(i);
        check_name(&mut cx, p.key("name"), "queue", &q.name);
        let broker = resolve(&mut cx, &q.broker, p.key("broker"));
        if dests
            .insert(q.name.clone(), (Dest::Queue(i as u32), broker))
            .is_some()
        {
            cx.err(
                p.key("name"),
                format!(
                    "queue name {:?} is used twice; queue and topic names must be unique",
                    q.name
                ),
            );
        }
        let on_failure = match q.on_failure.as_deref().unwrap_or("visibility") {
            "visibility" => crate::policy::broker::OnFailure::Visibility,
            "requeue" => crate::policy::broker::OnFailure::Requeue,
            other => {
                unknown_kind(
                    &mut cx,
                    p.key("on_failure"),
                    "on_failure",
                    other,
                    &["visibility", "requeue"],
                );
                crate::policy::broker::OnFailure::Visibility
            }
        };
        if q.visibility_timeout.0 == 0 {
            cx.err(
                p.key("visibility_timeout"),
                "visibility_timeout must be longer than 0s",
            );
        }
        if q.max_deliveries == Some(0) {
            cx.err(
                p.key("max_deliveries"),
                "max_deliveries must be at least 1 (or absent: unlimited)",
            );
        }
        if q.partitions > 4096 {
            cx.err(p.key("partitions"), "partitions is at most 4096");
        }
        let max_messages = q.max_messages.unwrap_or(1_000_000);
        if max_messages == 0 || max_messages > 10_000_000 {
            cx.err(
                p.key("max_messages"),
                "max_messages is between 1 and 10 000 000",
            );
        }
        let mut visible_within = q.visible_within.clone();
        if visible_within.iter().any(|t| t.0 == 0) || visible_within.len() > 32 {
            cx.err(
                p.key("visible_within"),
                "visible_within lists up to 32 delays longer than 0s, e.g. [\"1s\", \"5s\"]",
            );
        }
        visible_within.sort();
        visible_within.dedup();
        let d = crate::policy::broker::Config::default();
        queues.push(QueueSpec {
            name: q.name.clone(),
            broker: broker.unwrap_or(ServiceId(0)),
            config: crate::policy::broker::Config {
                visibility: q.visibility_timeout,
                max_deliveries: q.max_deliveries.unwrap_or(0),
                dead_letter: q.dead_letter,
                retention: q.retention.unwrap_or(d.retention),
                partitions: q.partitions.min(4096),
                on_failure,
                redelivery_delay: q.redelivery_delay,
                redelivery_cap: q.redelivery_cap.unwrap_or(d.redelivery_cap),
            },
            max_messages: max_messages.clamp(1, 10_000_000),
            consumers: Vec::new(),
            saga: None,
            visible_within,
        });
    }
    let mut topics: Vec<TopicSpec> = Vec::new();
    for (i, t) in raw.topic.iter().enumerate() {
        let p = root().key("topic").index(i);
        check_name(&mut cx, p.key("name"), "topic", &t.name);
        let mut subs = Vec::new();
        let mut broker = None;
        for (k, name) in t.subscribers.iter().enumerate() {
            match raw.queue.iter().position(|q| &q.name == name) {
                Some(qi) => {
                    let b = queues[qi].broker;
                    if broker.is_some_and(|x| x != b) {
                        cx.err(
                            p.key("subscribers").index(k),
                            "every subscriber queue of a topic must be on the same broker",
                        );
                    }
                    broker = Some(b);
                    subs.push(qi as u32);
                }
                None => {
                    let known: Vec<&str> = raw.queue.iter().map(|q| q.name.as_str()).collect();
                    cx.err(
                        p.key("subscribers").index(k),
                        unknown("queue", name, &known, "queues", NO_QUEUE),
                    );
                }
            }
        }
        if t.subscribers.is_empty() {
            cx.err(
                p.key("subscribers"),
                "a topic needs at least one subscriber queue",
            );
        }
        if dests
            .insert(t.name.clone(), (Dest::Topic(i as u32), broker))
            .is_some()
        {
            cx.err(
                p.key("name"),
                format!(
                    "topic name {:?} is used twice; queue and topic names must be unique",
                    t.name
                ),
            );
        }
        topics.push(TopicSpec {
            name: t.name.clone(),
            broker: broker.unwrap_or(ServiceId(0)),
            queues: subs,
        });
    }

    // Network.
    let np = root().key("network");
    let latency = build_dist(&mut cx, &raw.network.latency, np.key("latency"));
    check_probability(&mut cx, raw.network.loss, np.key("loss"), true);
    let mut links = Vec::new();
    for (i, l) in raw.network.link.iter().enumerate() {
        let lp = np.key("link").index(i);
        let a = resolve(&mut cx, &l.from, lp.key("from"));
        let b = resolve(&mut cx, &l.to, lp.key("to"));
        let lat = match &l.latency {
            Some(d) => build_dist(&mut cx, d, lp.key("latency")),
            None => latency.clone(),
        };
        let loss = l.loss.unwrap_or(raw.network.loss);
        check_probability(&mut cx, loss, lp.key("loss"), true);
        if let (Some(a), Some(b), Some(latency)) = (a, b, lat) {
            links.push(LinkSpec {
                a,
                b,
                latency,
                loss,
            });
        }
    }

    // Named policies.
    let pols = build_policies(&mut cx, raw);

    // Header names, in order of first use by workloads.
    let mut header_names: Vec<String> = Vec::new();
    for (i, w) in raw.workload.iter().enumerate() {
        for (name, &share) in &w.headers {
            let hp = root().key("workload").index(i).key("headers").key(name);
            check_probability(&mut cx, share, hp.clone(), false);
            if !header_names.contains(name) {
                if header_names.len() == 8 {
                    cx.err(hp, "at most 8 distinct header names across workloads");
                    continue;
                }
                header_names.push(name.clone());
            }
        }
    }

    // Services. Endpoint names are resolved in a second pass, once all services are known.
    let mut services = Vec::new();
    for (i, s) in raw.service.iter().enumerate() {
        let p = root().key("service").index(i);
        if s.replicas == 0 {
            cx.err(p.key("replicas"), "replicas must be at least 1");
        }
        if s.workers == 0 {
            cx.err(p.key("workers"), "workers must be at least 1");
        }
        if s.threads == Some(0) {
            cx.err(
                p.key("threads"),
                "threads must be at least 1 (or absent: no thread-per-request limit)",
            );
        }
        let q = &s.queue;
        let discipline = match q.discipline.as_str() {
            "fifo" => Discipline::Fifo,
            "lifo" => Discipline::Lifo,
            "adaptive_lifo" => Discipline::AdaptiveLifo {
                short_timeout: q.short_timeout.unwrap_or(SimDuration::from_millis(5)),
                long_timeout: q.long_timeout.unwrap_or(SimDuration::from_millis(100)),
            },
            "priority" => Discipline::Priority,
            other => {
                cx.err(
                    p.key("queue").key("discipline"),
                    format!(
                        "unknown discipline {other:?}: use \"fifo\", \"lifo\", \"adaptive_lifo\" or \"priority\" (the most critical first)"
                    ),
                );
                Discipline::Fifo
            }
        };
        if !matches!(discipline, Discipline::AdaptiveLifo { .. }) {
            for (key, set) in [
                ("short_timeout", q.short_timeout.is_some()),
                ("long_timeout", q.long_timeout.is_some()),
            ] {
                if set {
                    cx.err(
                        p.key("queue").key(key),
                        format!("`{key}` belongs to discipline = \"adaptive_lifo\""),
                    );
                }
            }
        }
        if q.max_wait == Some(SimDuration::ZERO) {
            cx.err(
                p.key("queue").key("max_wait"),
                "max_wait must be longer than 0s (or absent)",
            );
        }
        if let Some(c) = &q.codel {
            if c.target.0 == 0 || c.interval.0 == 0 {
                cx.err(
                    p.key("queue").key("codel"),
                    "codel target and interval must be longer than 0s",
                );
            }
        }
        let shedding = Shedding {
            max_wait: q.max_wait,
            codel: q.codel.as_ref().map(|c| (c.target, c.interval)),
        };
        let rate_limit = pols.pick(
            &mut cx,
            "rate_limit",
            s.rate_limit.as_deref(),
            p.key("rate_limit"),
            None,
            &p,
        );
        let concurrency = pols.pick(
            &mut cx,
            "concurrency",
            s.concurrency.as_deref(),
            p.key("concurrency"),
            None,
            &p,
        );
        check_probability(&mut cx, s.error_rate, p.key("error_rate"), false);
        let mut endpoints = Vec::new();
        if s.endpoint.is_empty() {
            endpoints.push((
                "default".to_string(),
                1.0,
                s.work.as_ref(),
                &s.calls,
                p.clone(),
            ));
        } else {
            if s.work.is_some() || !s.calls.is_empty() {
                cx.err(
                    p.key(if s.work.is_some() { "work" } else { "calls" }),
                    "a service with [[service.endpoint]] tables keeps its work and calls inside the endpoints",
                );
            }
            let mut seen = BTreeMap::new();
            for (j, e) in s.endpoint.iter().enumerate() {
                let ep = p.key("endpoint").index(j);
                if seen.insert(e.name.as_str(), j).is_some() {
                    cx.err(
                        ep.key("name"),
                        format!(
                            "endpoint {:?} is defined twice in service {:?}",
                            e.name, s.name
                        ),
                    );
                }
                if !(e.weight.is_finite() && e.weight >= 0.0) {
                    cx.err(
                        ep.key("weight"),
                        format!("weight must be >= 0, got {}", e.weight),
                    );
                }
                endpoints.push((e.name.clone(), e.weight, e.work.as_ref(), &e.calls, ep));
            }
            if s.endpoint.iter().all(|e| e.weight <= 0.0) {
                cx.err(
                    p.key("endpoint"),
                    "at least one endpoint needs a weight above 0",
                );
            }
        }
        let mut built = Vec::new();
        for (name, weight, work, calls, ep) in endpoints {
            let mut steps = Vec::new();
            if let Some(w) = work {
                if let Some(d) = build_dist(&mut cx, w, ep.key("work")) {
                    steps.push(Step::Work(d));
                }
            }
            let defaults = Defaults::of(raw, i, &dests);
            for (k, st) in calls.iter().enumerate() {
                let stp = ep.key("calls").index(k);
                if let Some(db) = &st.write {
                    // A write then a publish (or a write with its outbox): two calls.
                    let Some(dest) = st.publish.as_ref().and_then(|n| dests.get(n)) else {
                        cx.err(stp.key("write"), "`write` goes with `publish = \"queue or topic\"`: the event the write commits");
                        continue;
                    };
                    let outbox = st.outbox.unwrap_or(false);
                    let write = RawStep {
                        to: Some(db.clone()),
                        publish: None,
                        write: None,
                        outbox: None,
                        poison: None,
                        ..st.clone()
                    };
                    if let Some(Step::Call(mut c)) = build_step(
                        &mut cx,
                        &write,
                        stp.clone(),
                        &resolve,
                        raw,
                        &pols,
                        &defaults,
                    ) {
                        c.write = Some((dest.0, outbox));
                        steps.push(Step::Call(c));
                    }
                    if !outbox {
                        let publish = RawStep {
                            write: None,
                            outbox: None,
                            endpoint: None,
                            ..st.clone()
                        };
                        if let Some(Step::Call(mut c)) =
                            build_step(&mut cx, &publish, stp, &resolve, raw, &pols, &defaults)
                        {
                            c.after_write = true;
                            steps.push(Step::Call(c));
                        }
                    }
                    continue;
                }
                if st.outbox.is_some() {
                    cx.err(
                        stp.key("outbox"),
                        "`outbox` goes with `write = \"database service\"` and `publish`",
                    );
                }
                if let Some(step) = build_step(&mut cx, st, stp, &resolve, raw, &pols, &defaults) {
                    steps.push(step);
                }
            }
            built.push(EndpointSpec {
                name,
                weight,
                steps,
            });
        }
        services.push(ServiceSpec {
            name: s.name.clone(),
            replicas: s.replicas.max(1),
            workers: s.workers.max(1),
            queue_capacity: s.queue.capacity,
            threads: s.threads,
            discipline,
            shedding,
            criticality_shed: priority::shed_thresholds(
                &mut cx,
                p.key("queue").key("shed"),
                &s.queue.shed,
                s.queue.capacity,
            ),
            rate_limit,
            concurrency,
            policy_state: state_scope(&mut cx, s.policy_state.as_deref(), p.key("policy_state")),
            propagate_deadline: s.propagate_deadline,
            drop_expired: s.drop_expired,
            error_rate: s.error_rate,
            occ: s.occ,
            zones: Vec::new(),
            hosts: Vec::new(),
            cpu: 1.0,
            canary: s.canary.as_ref().map(|c| {
                let cp = p.key("canary");
                if c.replicas == 0 {
                    cx.err(cp.key("replicas"), "a canary needs at least 1 replica");
                }
                let work = c.work.as_ref().and_then(|d| build_dist(&mut cx, d, cp.key("work")));
                let error_rate = c.error_rate.unwrap_or(s.error_rate);
                check_probability(&mut cx, error_rate, cp.key("error_rate"), false);
                let shift = shift::build_shift(
                    &mut cx,
                    &cp,
                    shift::RawShift {
                        weights: &c.weights,
                        switch_at: c.switch_at,
                        routes: &c.routes,
                        rollback: c.rollback.as_ref(),
                    },
                    &header_names,
                    shift::Sides::CANARY,
                );
                CanarySpec {
                    replicas: c.replicas.max(1),
                    work,
                    error_rate,
                    shift,
                }
            }),
            cache_ttl: s.cache_ttl.inspect(|t| {
                if raw.registry.is_none() {
                    cx.err(p.key("cache_ttl"), "cache_ttl needs a [registry] (without one, callers know every instance)");
                } else if t.0 == 0 {
                    cx.err(p.key("cache_ttl"), "cache_ttl must be longer than 0s");
                }
            }),
            cold_start: s.cold_start.as_ref().map(|c| {
                if !(c.multiply.is_finite() && c.multiply >= 1.0) {
                    cx.err(p.key("cold_start").key("multiply"), format!("multiply is a factor of at least 1, got {}", c.multiply));
                }
                ColdStart { duration: c.duration, multiply: c.multiply }
            }),
            rollout: s.rollout.as_ref().map(|r| {
                let rp = p.key("rollout");
                if r.max_surge == 0 && r.max_unavailable == 0 {
                    cx.err(rp.clone(), "max_surge and max_unavailable cannot both be 0: the rollout could never move");
                }
                if r.max_surge > 1000 {
                    cx.err(rp.key("max_surge"), "max_surge is at most 1000");
                }
                if s.canary.is_some() || s.autoscale.is_some() {
                    cx.err(rp.clone(), "a service with a rollout cannot also have a canary or an autoscaler (one new version at a time, and the rollout owns the instance count)");
                }
                let work = r.work.as_ref().and_then(|d| build_dist(&mut cx, d, rp.key("work")));
                let error_rate = r.error_rate.unwrap_or(s.error_rate);
                check_probability(&mut cx, error_rate, rp.key("error_rate"), false);
                RolloutSpec {
                    at: SimTime::ZERO.after(r.at),
                    max_surge: r.max_surge.min(1000),
                    max_unavailable: r.max_unavailable,
                    startup: r.startup,
                    drain: r.drain,
                    grace: r.grace,
                    work,
                    error_rate,
                }
            }),
            autoscale: s.autoscale.as_ref().and_then(|a| {
                let ap = p.key("autoscale");
                let target = match (a.target_utilization, a.target_in_flight) {
                    (Some(u), None) if u > 0.0 && u <= 1.0 => ScaleTarget::Utilization(u),
                    (None, Some(f)) if f > 0.0 && f.is_finite() => ScaleTarget::InFlight(f),
                    _ => {
                        cx.err(ap.clone(), "an autoscaler needs exactly one target: target_utilization in (0, 1] or target_in_flight above 0");
                        return None;
                    }
                };
                if !(1 <= a.min && a.min <= s.replicas && s.replicas <= a.max) {
                    cx.err(ap.clone(), format!("needs 1 <= min <= replicas <= max, got min {}, replicas {}, max {}", a.min, s.replicas, a.max));
                }
                if a.max > 10_000 {
                    cx.err(ap.key("max"), "max is at most 10000 instances");
                }
                if a.interval.0 == 0 {
                    cx.err(ap.key("interval"), "interval must be longer than 0s");
                }
                Some(AutoscaleSpec {
                    target,
                    interval: a.interval,
                    min: a.min.max(1),
                    max: a.max.clamp(1, 10_000),
                    provision: a.provision,
                    scale_down_window: a.scale_down_window,
                    tolerance: a.tolerance.max(0.0),
                })
            }),
            endpoints: built,
        });
    }

    // Synchronous cycles: a service that (transitively) calls itself and waits would deadlock
    // or recurse forever.
    let mut graph = DiGraph::<u32, ()>::with_capacity(raw.service.len(), 0);
    for i in 0..raw.service.len() {
        graph.add_node(i as u32);
    }
    let mut first_call: BTreeMap<(u32, u32), TomlPath> = BTreeMap::new();
    for (i, s) in raw.service.iter().enumerate() {
        let eps: Vec<(&Vec<RawStep>, TomlPath)> = if s.endpoint.is_empty() {
            vec![(&s.calls, root().key("service").index(i))]
        } else {
            s.endpoint
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    (
                        &e.calls,
                        root().key("service").index(i).key("endpoint").index(j),
                    )
                })
                .collect()
        };
        for (calls, ep) in eps {
            for (k, st) in calls.iter().enumerate() {
                let members: Vec<(&RawStep, TomlPath)> = match &st.parallel {
                    Some(ps) => ps
                        .iter()
                        .enumerate()
                        .map(|(m, x)| (x, ep.key("calls").index(k).key("parallel").index(m)))
                        .collect(),
                    None => vec![(st, ep.key("calls").index(k))],
                };
                for (m, mp) in members {
                    if let Some(to) = m.to.as_deref().and_then(|t| ids.get(t)) {
                        if graph
                            .find_edge(NodeIndex::new(i), NodeIndex::new(to.0 as usize))
                            .is_none()
                        {
                            graph.add_edge(NodeIndex::new(i), NodeIndex::new(to.0 as usize), ());
                        }
                        first_call.entry((i as u32, to.0)).or_insert(mp.key("to"));
                    }
                }
            }
        }
    }
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() > 1 || self_loop {
            let mut members: Vec<u32> = scc.iter().map(|n| n.index() as u32).collect();
            members.sort_unstable();
            let cycle = cycle_through(&graph, &members);
            let text: Vec<&str> = cycle
                .iter()
                .map(|&n| raw.service[n as usize].name.as_str())
                .collect();
            let path = first_call
                .get(&(cycle[0], cycle[1]))
                .cloned()
                .unwrap_or_default();
            cx.err(
                path,
                format!(
                    "synchronous call cycle {}: each call waits for the next, so a request would never finish; break the cycle or make one call asynchronous",
                    text.join(" -> ")
                ),
            );
        }
    }

    // Workloads.
    let mut workloads = Vec::new();
    let mut wl_names = BTreeMap::new();
    for (i, w) in raw.workload.iter().enumerate() {
        let p = root().key("workload").index(i);
        check_name(&mut cx, p.key("name"), "workload", &w.name);
        if wl_names.insert(w.name.as_str(), i).is_some() {
            cx.err(
                p.key("name"),
                format!(
                    "workload name {:?} is used twice; names must be unique",
                    w.name
                ),
            );
        }
        let target = resolve(&mut cx, &w.target, p.key("target"));
        let endpoint = target.and_then(|t| {
            resolve_endpoint(&mut cx, raw, t, w.endpoint.as_deref(), p.key("endpoint"))
        });
        if w.timeout == Some(SimDuration::ZERO) {
            cx.err(p.key("timeout"), "timeout must be longer than 0s");
        }
        if w.keys == Some(0) {
            cx.err(
                p.key("keys"),
                "keys must be at least 1 (or absent: every request has key 0)",
            );
        }
        match (w.zipf, w.keys) {
            (Some(s), _) if !(s > 0.0 && s.is_finite()) => {
                cx.err(p.key("zipf"), format!("zipf is the exponent s > 0 of the key popularity (0.8 is typical of web caches), got {s}"));
            }
            (Some(_), None) => cx.err(
                p.key("zipf"),
                "zipf draws keys from `keys` of them: set keys too",
            ),
            _ => {}
        }
        let arrivals = build_arrivals(&mut cx, &w.arrivals, p.key("arrivals"));
        let criticality =
            priority::criticality(&mut cx, p.key("criticality"), w.criticality.as_deref())
                .unwrap_or_default();
        if let (Some(target), Some(arrivals)) = (target, arrivals) {
            workloads.push(WorkloadSpec {
                name: w.name.clone(),
                target,
                endpoint: endpoint.flatten(),
                timeout: w.timeout,
                keys: w.keys.unwrap_or(0),
                zipf: w.zipf,
                headers: w
                    .headers
                    .iter()
                    .filter_map(|(n, &share)| {
                        let bit = header_names.iter().position(|h| h == n)?;
                        Some((bit as u8, share))
                    })
                    .collect(),
                criticality,
                arrivals,
            });
        }
    }
    if raw.workload.is_empty() {
        cx.err(
            root(),
            "the scenario has no [[workload]]: nothing would send requests",
        );
    }

    // Zones: names in order of first use.
    let mut zone_names: Vec<String> = Vec::new();
    for s in &raw.service {
        for z in &s.zones {
            if !zone_names.contains(z) {
                zone_names.push(z.clone());
            }
        }
    }
    for (i, s) in raw.service.iter().enumerate() {
        let zones: Vec<u32> = s
            .zones
            .iter()
            .map(|z| zone_names.iter().position(|n| n == z).expect("collected") as u32)
            .collect();
        if let Some(spec) = services.get_mut(i) {
            spec.zones = (0..spec.slots() as usize)
                .filter_map(|k| zones.get(k % zones.len().max(1)).copied())
                .collect();
        }
    }
    let hosts = hosts::build_hosts(&mut cx, raw, &zone_names, &mut services);
    let cross_zone = raw
        .network
        .cross_zone
        .as_ref()
        .and_then(|d| build_dist(&mut cx, d, root().key("network").key("cross_zone")));

    let mesh = mesh::build_mesh(&mut cx, raw, &resolve, &pols.pools);
    mesh::apply_mesh_policies(&mut cx, raw, &pols, mesh.as_ref(), &mut services);
    let faults = faults::build_faults(&mut cx, raw, &resolve, &zone_names);
    faults::check_timeouts_when_lossy(&mut cx, raw, &links, &faults, &services);
    let sagas = sagas::build_sagas(
        &mut cx,
        raw,
        &resolve,
        &mut services,
        &mut queues,
        &dests,
        &pols,
    );
    let transactions =
        twopc::build_transactions(&mut cx, raw, &resolve, &mut services, &dests, &pols);
    let (event_stores, projections) = events::build(&mut cx, raw, &resolve);

    // Consumers.
    for (i, s) in raw.service.iter().enumerate() {
        for (k, c) in s.consumes.iter().enumerate() {
            let p = root().key("service").index(i).key("consumes").index(k);
            let Some(qi) = raw.queue.iter().position(|q| q.name == c.queue) else {
                let known: Vec<&str> = raw.queue.iter().map(|q| q.name.as_str()).collect();
                cx.err(
                    p.key("queue"),
                    unknown("queue", &c.queue, &known, "queues", NO_QUEUE),
                );
                continue;
            };
            if c.concurrency == 0 || c.concurrency > 10_000 {
                cx.err(
                    p.key("concurrency"),
                    "concurrency is between 1 and 10000 messages per instance",
                );
            }
            if c.idempotency_ttl == Some(SimDuration::ZERO) {
                cx.err(
                    p.key("idempotency_ttl"),
                    "idempotency_ttl must be longer than 0s",
                );
            }
            let Some(endpoint) = resolve_endpoint(
                &mut cx,
                raw,
                ServiceId(i as u32),
                c.endpoint.as_deref(),
                p.key("endpoint"),
            ) else {
                continue;
            };
            queues[qi].consumers.push(ConsumerSpec {
                service: ServiceId(i as u32),
                concurrency: c.concurrency.clamp(1, 10_000),
                endpoint: endpoint.unwrap_or(0),
                idempotency_ttl: c.idempotency_ttl,
            });
        }
    }

    let registry = raw
        .registry
        .as_ref()
        .and_then(|r| build_registry(&mut cx, r, raw, &services, &resolve));
    explore::check_explore(&mut cx, raw, &zone_names);
    let t = &raw.trace;
    if !(0.0..=1.0).contains(&t.sample) {
        cx.err(
            root().key("trace").key("sample"),
            format!("sample must be a share between 0 and 1, not {}", t.sample),
        );
    }
    if t.max_spans == 0 || t.max_spans > 100_000 {
        cx.err(
            root().key("trace").key("max_spans"),
            "max_spans must be between 1 and 100000 (spans kept per trace)",
        );
    }
    for (k, e) in raw.expect.iter().enumerate() {
        let p = root().key("expect").index(k);
        let bounds = e.below.is_some() as u8
            + e.above.is_some() as u8
            + e.between.is_some() as u8
            + e.mean.is_some() as u8;
        if bounds != 1 {
            cx.err(
                p.clone(),
                "an expectation needs exactly one of below = x, above = x, between = [lo, hi] or mean = x (with within_se, within_rel or within_abs)",
            );
        }
        let tolerances = [
            ("within_se", e.within_se),
            ("within_rel", e.within_rel),
            ("within_abs", e.within_abs),
        ];
        let set: Vec<&str> = tolerances
            .iter()
            .filter(|t| t.1.is_some())
            .map(|t| t.0)
            .collect();
        match (e.mean.is_some(), set.len()) {
            (true, 1) | (false, 0) => {}
            (true, _) => cx.err(
                p.clone(),
                "mean = x needs exactly one tolerance: within_se = k (standard errors), within_rel = r (a share of x) or within_abs = d",
            ),
            (false, _) => cx.err(
                p.key(set[0]),
                format!("{} applies to mean = x", set[0]),
            ),
        }
        for (key, t) in tolerances {
            if t.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                cx.err(p.key(key), format!("{key} must be a number of 0 or more"));
            }
        }
        if e.mean.is_some() && e.quantile.is_some() {
            cx.err(
                p.key("quantile"),
                "quantile judges seeds one by one; mean judges their mean: use one",
            );
        }
        if e.within_se.is_some() && e.seeds.unwrap_or(1) < 2 {
            cx.err(
                p.key("seeds"),
                "within_se needs seeds = 2 or more: one seed has no standard error",
            );
        }
        if let Err(why) = crate::results::expect::Expr::parse(&e.metric) {
            cx.err(p.key("metric"), why);
        }
        if let Some([lo, hi]) = e.between {
            if lo > hi {
                cx.err(
                    p.key("between"),
                    format!("between = [{lo}, {hi}]: lo must not exceed hi"),
                );
            }
        }
        if e.seeds == Some(0) {
            cx.err(p.key("seeds"), "seeds must be at least 1");
        }
        if let Some(q) = e.quantile {
            if !(q > 0.0 && q <= 1.0) {
                cx.err(
                    p.key("quantile"),
                    format!("quantile must be in (0, 1], not {q}"),
                );
            }
        }
    }
    for (k, name) in raw.report.services.iter().enumerate() {
        if !ids.contains_key(name.as_str()) {
            cx.err(
                root().key("report").key("services").index(k),
                format!("no service named {name:?}"),
            );
        }
    }
    let recovery = {
        let r = &raw.recovery;
        let p = root().key("recovery");
        if !(0.0..=1.0).contains(&r.goodput_band) {
            cx.err(
                p.key("goodput_band"),
                format!(
                    "goodput_band is a share between 0 and 1, not {}",
                    r.goodput_band
                ),
            );
        }
        if !(r.p99_band.is_finite() && r.p99_band >= 0.0) {
            cx.err(
                p.key("p99_band"),
                format!(
                    "p99_band is 0 or more (0.5: up to 1.5 times the p99 before), not {}",
                    r.p99_band
                ),
            );
        }
        for (key, d) in [("hold", r.hold), ("lookback", r.lookback)] {
            if d.0 == 0 {
                cx.err(p.key(key), format!("{key} must be longer than 0s"));
            }
        }
        // Whole buckets, at least one, at most 10,000 (the look-back is kept per workload).
        let buckets = |d: SimDuration| d.0.div_ceil(sim.bucket.0.max(1)).clamp(1, 10_000) as u32;
        crate::results::recovery::Bands {
            goodput: r.goodput_band,
            p99: r.p99_band,
            hold_buckets: buckets(r.hold),
            lookback_buckets: buckets(r.lookback),
        }
    };
    let migrations = shift::build_migrations(&mut cx, raw, &resolve, &header_names);
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    let spec = SystemSpec {
        migrations,
        transactions,
        event_stores,
        projections,
        trace: crate::model::spec::TraceSpec {
            sample: t.sample,
            max_sampled: t.max_sampled,
            slowest: t.slowest,
            failed: t.failed,
            max_spans: t.max_spans,
        },
        queues,
        topics,
        sagas,
        name: sim.name.clone(),
        duration: sim.duration,
        warmup: sim.warmup,
        seed: sim.seed,
        bucket: sim.bucket,
        max_events: sim.max_events,
        max_in_flight: sim.max_in_flight,
        network: NetworkSpec {
            latency: latency.expect("checked"),
            loss: raw.network.loss,
            links,
            cross_zone,
        },
        zones: zone_names,
        hosts,
        headers: header_names,
        services,
        workloads,
        retries: pols.retries,
        breakers: pols.breakers,
        hedges: pols.hedges,
        caches: pols.caches,
        registry,
        balancers: pols.balancers,
        outliers: pols.outliers,
        bulkheads: pols.bulkheads,
        rate_limits: pols.rate_limits,
        concurrency: pols.concurrency,
        throttles: pols.throttles,
        pools: pols.pools,
        mesh,
        states: pols.states,
        faults,
        recovery,
    };
    check_work(&mut cx, &spec);
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    Ok(spec)
}

/// Refuses what cannot finish within its limits, before running it: a request whose call
/// tree can hold more requests at once than `max_in_flight`, and workloads whose estimated
/// events exceed `max_events` by more than `WORK_MARGIN` (the estimate counts two events
/// a request, a floor, but its request count is a mean: a run near the limit is left to
/// run, and stops at the limit if it must).
fn check_work(cx: &mut Ctx, spec: &SystemSpec) {
    const WORK_MARGIN: f64 = 2.0;
    let work = super::analysis::work(spec);
    let limit = WORK_MARGIN * spec.max_events as f64;
    let mut total = 0.0;
    for w in &work {
        let p = root().key("workload").index(w.workload);
        let name = &spec.workloads[w.workload].name;
        if w.peak > spec.max_in_flight as f64 {
            cx.err(
                p.key("target"),
                format!(
                    "one request of workload {name:?} can hold {:.3e} requests in flight at once (its parallel groups' fan-outs multiplied down the call tree), more than sim.max_in_flight = {}: narrow the fan-out or raise sim.max_in_flight",
                    w.peak, spec.max_in_flight
                ),
            );
        }
        let (Some(requests), Some(events)) = (w.requests, w.events) else {
            continue;
        };
        total += events;
        if events > limit {
            cx.err(
                p.key("arrivals"),
                format!(
                    "workload {name:?} implies about {events:.3e} events ({requests:.3e} requests over {}, each a call tree of {:.3} requests on average, at least {} events a request), more than twice sim.max_events = {}: lower the rate or sim.duration, or raise sim.max_events",
                    spec.duration,
                    w.tree,
                    super::analysis::EVENTS_PER_REQUEST,
                    spec.max_events
                ),
            );
        }
    }
    if total > limit && work.iter().all(|w| w.events.map_or(true, |e| e <= limit)) {
        cx.err(
            root().key("sim").key("max_events"),
            format!(
                "the workloads together imply about {total:.3e} events (at least {} a request), more than twice sim.max_events = {}: lower their rates or sim.duration, or raise sim.max_events",
                super::analysis::EVENTS_PER_REQUEST,
                spec.max_events
            ),
        );
    }
}
