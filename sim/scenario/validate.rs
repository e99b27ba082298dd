//! Validation: turns a parsed [`RawScenario`] into a [`SystemSpec`], collecting every error with its TOML path.

use super::diag::{did_you_mean, TomlPath};
use super::raw::*;
use crate::dist::Dist;
use crate::model::spec::*;
use crate::time::{SimDuration, SimTime};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::BTreeMap;

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

/// Validates `raw`; on success every name is resolved to an id.
pub fn validate(raw: &RawScenario) -> Result<SystemSpec, Vec<Problem>> {
    let mut cx = Ctx {
        problems: Vec::new(),
    };
    let sim = &raw.sim;
    let sp = root().key("sim");
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
                let hint = match did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!(" (did you mean {s:?}?)"),
                    None => format!(" (services: {})", names.join(", ")),
                };
                cx.err(path, format!("unknown service {name:?}{hint}"));
                None
            }
        }
    };

    // Queues and topics (consumers are attached once services are built).
    let mut queues: Vec<QueueSpec> = Vec::new();
    let mut dests: BTreeMap<String, (Dest, Option<ServiceId>)> = BTreeMap::new();
    for (i, q) in raw.queue.iter().enumerate() {
        let p = root().key("queue").index(i);
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
                        format!(
                            "unknown queue {name:?}; queues: {}",
                            if known.is_empty() {
                                "none (add a [[queue]])".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
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
            other => {
                cx.err(
                    p.key("queue").key("discipline"),
                    format!(
                        "unknown discipline {other:?}: use \"fifo\", \"lifo\" or \"adaptive_lifo\""
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
            let defaults = Defaults {
                retry: s.retry.as_deref(),
                breaker: s.breaker.as_deref(),
                balancer: s.balancer.as_deref(),
                outlier: s.outlier.as_deref(),
                bulkhead: s.bulkhead.as_deref(),
                path: p.clone(),
                dests: &dests,
                service: i,
            };
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
            rate_limit,
            concurrency,
            propagate_deadline: s.propagate_deadline,
            drop_expired: s.drop_expired,
            error_rate: s.error_rate,
            occ: s.occ,
            zones: Vec::new(),
            canary: s.canary.as_ref().map(|c| {
                let cp = p.key("canary");
                if c.replicas == 0 {
                    cx.err(cp.key("replicas"), "a canary needs at least 1 replica");
                }
                let work = c.work.as_ref().and_then(|d| build_dist(&mut cx, d, cp.key("work")));
                let error_rate = c.error_rate.unwrap_or(s.error_rate);
                check_probability(&mut cx, error_rate, cp.key("error_rate"), false);
                let mut weights = Vec::new();
                if let Some(at) = c.switch_at {
                    if !c.weights.is_empty() {
                        cx.err(cp.key("switch_at"), "give either switch_at (blue-green) or weights, not both");
                    }
                    weights.push((SimTime::ZERO, 0.0));
                    weights.push((SimTime::ZERO.after(at), 100.0));
                }
                for (k, w) in c.weights.iter().enumerate() {
                    if !(0.0..=100.0).contains(&w.weight) {
                        cx.err(cp.key("weights").index(k).key("weight"), format!("a weight is a percent in [0, 100], got {}", w.weight));
                    }
                    if k > 0 && w.at <= c.weights[k - 1].at {
                        cx.err(cp.key("weights").index(k).key("at"), "weight steps must be in increasing time");
                    }
                    weights.push((SimTime::ZERO.after(w.at), w.weight));
                }
                if weights.is_empty() {
                    cx.err(cp.key("weights"), "a canary needs at least one weight step, e.g. [{ at = \"0s\", weight = 5 }], or switch_at");
                } else if weights[0].0 != SimTime::ZERO {
                    // Before the first step the new version takes no traffic.
                    weights.insert(0, (SimTime::ZERO, 0.0));
                }
                let mut routes = Vec::new();
                for (k, r) in c.routes.iter().enumerate() {
                    let rp = cp.key("routes").index(k);
                    let canary = match r.to.as_str() {
                        "canary" => true,
                        "stable" => false,
                        other => {
                            cx.err(rp.key("to"), format!("a route goes to \"canary\" or \"stable\", got {other:?}"));
                            continue;
                        }
                    };
                    let matches = match (&r.header, r.keys) {
                        (Some(h), None) => match header_names.iter().position(|n| n == h) {
                            Some(bit) => RouteMatch::Header(bit as u8),
                            None => {
                                let known = if header_names.is_empty() { "none: set headers = { NAME = share } on a workload".to_string() } else { header_names.join(", ") };
                                cx.err(rp.key("header"), format!("no workload sends header {h:?}; headers sent: {known}"));
                                continue;
                            }
                        },
                        (None, Some([lo, hi])) if lo <= hi => RouteMatch::Keys(lo, hi),
                        (None, Some([lo, hi])) => {
                            cx.err(rp.key("keys"), format!("keys = [lo, hi] needs lo <= hi, got [{lo}, {hi}]"));
                            continue;
                        }
                        _ => {
                            cx.err(rp.clone(), "a route matches exactly one of header = \"NAME\" or keys = [lo, hi]");
                            continue;
                        }
                    };
                    routes.push(RouteSpec { matches, canary });
                }
                let rollback = c.rollback.as_ref().map(|r| {
                    if r.error_rate.is_none() && r.p99.is_none() {
                        cx.err(cp.key("rollback"), "a rollback needs error_rate and/or p99");
                    }
                    if r.window.0 == 0 {
                        cx.err(cp.key("rollback").key("window"), "window must be longer than 0s");
                    }
                    RollbackSpec {
                        error_rate: r.error_rate,
                        p99: r.p99,
                        window: r.window,
                        min_requests: r.min_requests,
                    }
                });
                CanarySpec {
                    replicas: c.replicas.max(1),
                    work,
                    error_rate,
                    weights,
                    rollback,
                    routes,
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
        let arrivals = build_arrivals(&mut cx, &w.arrivals, p.key("arrivals"));
        if let (Some(target), Some(arrivals)) = (target, arrivals) {
            workloads.push(WorkloadSpec {
                name: w.name.clone(),
                target,
                endpoint: endpoint.flatten(),
                timeout: w.timeout,
                keys: w.keys.unwrap_or(0),
                headers: w
                    .headers
                    .iter()
                    .filter_map(|(n, &share)| {
                        let bit = header_names.iter().position(|h| h == n)?;
                        Some((bit as u8, share))
                    })
                    .collect(),
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
    let cross_zone = raw
        .network
        .cross_zone
        .as_ref()
        .and_then(|d| build_dist(&mut cx, d, root().key("network").key("cross_zone")));

    // Faults.
    let mut faults = Vec::new();
    for (i, f) in raw.fault.iter().enumerate() {
        let p = root().key("fault").index(i);
        let zonal = matches!(
            f.kind.as_str(),
            "zone_outage" | "zone_partition" | "registry_outage"
        );
        if f.kind.starts_with("registry_") && raw.registry.is_none() {
            cx.err(
                p.key("kind"),
                format!("a {} fault needs a [registry]", f.kind),
            );
        }
        let target = match (&f.target, zonal) {
            (Some(t), false) => resolve(&mut cx, t, p.key("target")),
            (None, false) => {
                cx.err(
                    p.clone(),
                    format!("a {:?} fault needs target = \"<service>\"", f.kind),
                );
                None
            }
            (Some(_), true) if f.kind == "registry_outage" => {
                cx.err(
                    p.key("target"),
                    "a registry outage has no target (use registry_partition with target = \"<service>\" to cut one service off from the registry)",
                );
                None
            }
            (Some(_), true) => {
                cx.err(
                    p.key("target"),
                    "a zone fault names `zone` (and `peer_zone`), not a target service",
                );
                None
            }
            (None, true) => Some(ServiceId(0)),
        };
        let zone_of = |cx: &mut Ctx, z: Option<&str>, key: &str| -> Option<u32> {
            let Some(z) = z else {
                cx.err(
                    p.clone(),
                    format!("a {:?} fault needs {key} = \"<zone>\"", f.kind),
                );
                return None;
            };
            match zone_names.iter().position(|n| n == z) {
                Some(k) => Some(k as u32),
                None => {
                    cx.err(
                        p.key(key),
                        format!(
                            "unknown zone {z:?}; zones used by services: {}",
                            if zone_names.is_empty() {
                                "none (set `zones` on services)".to_string()
                            } else {
                                zone_names.join(", ")
                            }
                        ),
                    );
                    None
                }
            }
        };
        if !zonal && (f.zone.is_some() || f.peer_zone.is_some()) {
            cx.err(
                p.key("zone"),
                "`zone` and `peer_zone` are for zone_outage and zone_partition faults",
            );
        }
        let peer = f
            .peer
            .as_deref()
            .and_then(|n| resolve(&mut cx, n, p.key("peer")));
        let link = matches!(f.kind.as_str(), "partition" | "reset" | "loss");
        if link && f.peer.is_none() {
            cx.err(
                p.key("peer"),
                format!(
                    "a {} fault is between two services: add peer = \"<service>\"",
                    f.kind
                ),
            );
        }
        if !link && f.peer.is_some() {
            cx.err(
                p.key("peer"),
                format!(
                    "`peer` is only for partition, reset and loss faults, not {:?}",
                    f.kind
                ),
            );
        }
        if let (Some(t), Some(k)) = (target, f.instance) {
            if k >= raw.service[t.0 as usize].replicas {
                cx.err(
                    p.key("instance"),
                    format!(
                        "service {:?} has {} instances (0-based), there is no instance {k}",
                        f.target, raw.service[t.0 as usize].replicas
                    ),
                );
            }
        }
        let share = f.p.unwrap_or(1.0);
        check_probability(&mut cx, share, p.key("p"), false);
        let kind = match f.kind.as_str() {
            "latency" => match f.add {
                Some(d) => Some(FaultKind::Delay(d)),
                None => {
                    cx.err(p.key("add"), "a latency fault needs add = \"<duration>\" (use kind = \"slow\" with multiply = 3.0 to slow the work)");
                    None
                }
            },
            "error" => match f.code.unwrap_or(500) {
                c @ (500 | 502 | 503 | 504 | 429) => Some(FaultKind::Abort(c)),
                c => {
                    cx.err(p.key("code"), format!("code {c} is not modelled: use 500 (an error), 502, 503 or 504 (overloaded/unavailable) or 429 (rate limited)"));
                    None
                }
            },
            "slow" => match (f.multiply, f.workers) {
                (None, None) => {
                    cx.err(p.clone(), "a slow fault needs multiply = <factor above 0> (slower work, e.g. 3.0) and/or workers = <n> (fewer workers)");
                    None
                }
                (Some(m), _) if !(m.is_finite() && m > 0.0) => {
                    cx.err(
                        p.key("multiply"),
                        format!("multiply is a factor above 0, got {m}"),
                    );
                    None
                }
                (_, Some(0)) => {
                    cx.err(p.key("workers"), "workers must be at least 1 (use kind = \"pause\" or \"crash\" to stop an instance)");
                    None
                }
                (m, w) => Some(FaultKind::Slow {
                    multiply: m.unwrap_or(1.0),
                    workers: w,
                }),
            },
            "crash" => Some(FaultKind::Crash),
            "registry_outage" => Some(FaultKind::RegistryOutage),
            "registry_partition" => Some(FaultKind::RegistryPartition),
            "zone_outage" => zone_of(&mut cx, f.zone.as_deref(), "zone").map(FaultKind::ZoneOutage),
            "zone_partition" => {
                let a = zone_of(&mut cx, f.zone.as_deref(), "zone");
                let b = zone_of(&mut cx, f.peer_zone.as_deref(), "peer_zone");
                match (a, b) {
                    (Some(a), Some(b)) if a != b => Some(FaultKind::ZonePartition(a, b)),
                    (Some(_), Some(_)) => {
                        cx.err(
                            p.key("peer_zone"),
                            "a zone partition is between two different zones",
                        );
                        None
                    }
                    _ => None,
                }
            }
            "pause" => Some(FaultKind::Pause),
            "random_crash" => match (f.mttf, f.mttr) {
                (Some(mttf), Some(mttr)) if mttf.0 > 0 && mttr.0 > 0 => {
                    Some(FaultKind::RandomCrash { mttf, mttr })
                }
                _ => {
                    cx.err(p.clone(), "a random_crash fault needs mttf and mttr, both longer than 0s (mean times to failure and to repair, exponential)");
                    None
                }
            },
            "partition" => Some(FaultKind::Partition),
            "reset" => Some(FaultKind::Reset),
            "loss" => Some(FaultKind::Loss(share)),
            other => {
                let kinds = [
                    "latency",
                    "error",
                    "slow",
                    "crash",
                    "pause",
                    "random_crash",
                    "zone_outage",
                    "zone_partition",
                    "registry_outage",
                    "registry_partition",
                    "partition",
                    "reset",
                    "loss",
                ];
                unknown_kind(&mut cx, p.key("kind"), "fault", other, &kinds);
                None
            }
        };
        for (key, used) in [
            ("add", f.add.is_some() && f.kind != "latency"),
            ("multiply", f.multiply.is_some() && f.kind != "slow"),
            ("workers", f.workers.is_some() && f.kind != "slow"),
            ("code", f.code.is_some() && f.kind != "error"),
            ("mttf", f.mttf.is_some() && f.kind != "random_crash"),
            ("mttr", f.mttr.is_some() && f.kind != "random_crash"),
        ] {
            if used {
                cx.err(
                    p.key(key),
                    format!("`{key}` is not used by a {:?} fault", f.kind),
                );
            }
        }
        if let (Some(kind), Some(target)) = (kind, target) {
            let at = SimTime::ZERO.after(f.at);
            let until = f
                .length
                .map_or(SimTime::ZERO.after(sim.duration), |l| at.after(l));
            faults.push(FaultSpec {
                kind,
                at,
                until,
                target,
                instance: f.instance,
                peer,
                p: if matches!(kind, FaultKind::Loss(_)) {
                    1.0
                } else {
                    share
                },
            });
        }
    }

    // Lost messages are only noticed by a timeout: without one the caller would wait forever.
    let lossy = raw.network.loss > 0.0
        || links.iter().any(|l| l.loss > 0.0)
        || faults.iter().any(|f| {
            matches!(
                f.kind,
                FaultKind::Partition | FaultKind::Loss(_) | FaultKind::ZonePartition(..)
            )
        });
    if lossy {
        for (i, w) in raw.workload.iter().enumerate() {
            if w.timeout.is_none() {
                cx.err(
                    root().key("workload").index(i).key("timeout"),
                    "the network loses messages (loss or a partition/loss fault), so this workload needs a timeout (a lost reply would be waited for forever)",
                );
            }
        }
        for (i, s) in services.iter().enumerate() {
            for (j, e) in s.endpoints.iter().enumerate() {
                let calls = e.steps.iter().flat_map(|st| match st {
                    Step::Call(c) => std::slice::from_ref(c).iter(),
                    Step::Parallel(cs) => cs.iter(),
                    Step::Work(_) | Step::Saga(_) => [].iter(),
                });
                if calls.clone().any(|c| c.timeout.is_none()) {
                    let p = if raw.service[i].endpoint.is_empty() {
                        root().key("service").index(i).key("calls")
                    } else {
                        root()
                            .key("service")
                            .index(i)
                            .key("endpoint")
                            .index(j)
                            .key("calls")
                    };
                    cx.err(p, "the network loses messages (loss or a partition/loss fault), so every call needs a timeout (a lost reply would be waited for forever)");
                }
            }
        }
    }

    // Sagas.
    let mut sagas = Vec::new();
    for (k, sg) in raw.saga.iter().enumerate() {
        let p = root().key("saga").index(k);
        if raw.saga[..k].iter().any(|o| o.name == sg.name) {
            cx.err(
                p.key("name"),
                format!("saga name {:?} is used twice", sg.name),
            );
        }
        let Some(orch) = resolve(&mut cx, &sg.orchestrator, p.key("orchestrator")) else {
            continue;
        };
        let os = &raw.service[orch.0 as usize];
        let defaults = Defaults {
            retry: os.retry.as_deref(),
            breaker: os.breaker.as_deref(),
            balancer: os.balancer.as_deref(),
            outlier: os.outlier.as_deref(),
            bulkhead: os.bulkhead.as_deref(),
            path: root().key("service").index(orch.0 as usize),
            dests: &dests,
            service: orch.0 as usize,
        };
        if sg.steps.is_empty() {
            cx.err(p.key("steps"), "a saga needs at least one step");
        }
        let mut defs = Vec::new();
        let mut calls = Vec::new();
        let mut names = Vec::new();
        for (j, st) in sg.steps.iter().enumerate() {
            let sp = p.key("steps").index(j);
            if names.contains(&st.name) {
                cx.err(
                    sp.key("name"),
                    format!("step name {:?} is used twice in this saga", st.name),
                );
            }
            names.push(st.name.clone());
            let call = |cx: &mut Ctx, c: &Option<RawStep>, key: &str| -> Option<CallSpec> {
                let c = c.as_ref()?;
                if c.to.is_none() && c.publish.is_none() {
                    cx.err(sp.key(key), "a saga action or compensation is a call `{ to = \"service\", endpoint = ... }` or a publish");
                    return None;
                }
                if c.parallel.is_some() || c.work.is_some() || c.saga.is_some() {
                    cx.err(sp.key(key), "a saga action or compensation is one call");
                    return None;
                }
                build_call(cx, c, sp.key(key), &resolve, raw, &pols, &defaults)
            };
            let action = call(&mut cx, &st.action, "action");
            let compensation = call(&mut cx, &st.compensation, "compensation");
            if st.action.is_none() && st.compensation.is_some() {
                cx.err(
                    sp.clone(),
                    "a step with a compensation needs an action to compensate",
                );
            }
            defs.push(crate::policy::saga::StepDef {
                action: st.action.is_some(),
                compensation: st.compensation.is_some(),
            });
            calls.push((action, compensation));
        }
        let pivot = sg
            .pivot
            .as_ref()
            .and_then(|name| match names.iter().position(|n| n == name) {
                Some(i) => Some(i),
                None => {
                    cx.err(
                        p.key("pivot"),
                        format!("no step named {name:?}; steps: {}", names.join(", ")),
                    );
                    None
                }
            });
        if let Some(pv) = pivot {
            for (j, d) in defs.iter().enumerate().skip(pv + 1) {
                if d.compensation {
                    cx.err(p.key("steps").index(j).key("compensation"), "steps after the pivot are never compensated (only retried): drop this compensation or move the pivot");
                }
            }
        }
        let mut config = crate::policy::saga::Config::new(defs, pivot);
        for (v, key, field) in [
            (
                sg.action_attempts,
                "action_attempts",
                &mut config.action_attempts,
            ),
            (
                sg.retriable_attempts,
                "retriable_attempts",
                &mut config.retriable_attempts,
            ),
            (
                sg.compensation_attempts,
                "compensation_attempts",
                &mut config.compensation_attempts,
            ),
        ] {
            if let Some(v) = v {
                if v == 0 || v > 1000 {
                    cx.err(p.key(key), format!("{key} is between 1 and 1000"));
                }
                *field = v.clamp(1, 1000);
            }
        }
        config.continue_with_error = sg.continue_with_error;
        if let Some(b) = sg.backoff {
            config.backoff = b;
        }
        let choreography = match sg.mode.as_deref().unwrap_or("orchestration") {
            "orchestration" => {
                for (key, set) in [
                    ("broker", sg.broker.is_some()),
                    ("concurrency", sg.concurrency.is_some()),
                    ("visibility_timeout", sg.visibility_timeout.is_some()),
                    ("idempotency_ttl", sg.idempotency_ttl.is_some()),
                ] {
                    if set {
                        cx.err(
                            p.key(key),
                            format!("`{key}` belongs to mode = \"choreography\""),
                        );
                    }
                }
                None
            }
            "choreography" => {
                let broker = match &sg.broker {
                    Some(b) => resolve(&mut cx, b, p.key("broker")),
                    None => {
                        cx.err(p.key("broker"), "a choreographed saga needs broker = \"<service>\": its steps are events on that broker");
                        None
                    }
                };
                let concurrency = sg.concurrency.unwrap_or(8);
                if concurrency == 0 || concurrency > 10_000 {
                    cx.err(p.key("concurrency"), "concurrency is between 1 and 10000");
                }
                let mut per_step = Vec::new();
                for (j, (a, c)) in calls.iter().enumerate() {
                    let mut at = [None, None];
                    for (k, call) in [a, c].into_iter().enumerate() {
                        let Some(call) = call else { continue };
                        if call.publish.is_some() {
                            cx.err(p.key("steps").index(j), "a choreographed step is handled by a service (`to`): its event is the message");
                            continue;
                        }
                        at[k] = Some(queues.len() as u32);
                        queues.push(QueueSpec {
                            name: format!(
                                "{}.{}{}",
                                sg.name,
                                names[j],
                                if k == 1 { ".undo" } else { "" }
                            ),
                            broker: broker.unwrap_or(ServiceId(0)),
                            config: crate::policy::broker::Config {
                                visibility: sg
                                    .visibility_timeout
                                    .unwrap_or(SimDuration::from_secs(30)),
                                ..crate::policy::broker::Config::default()
                            },
                            max_messages: 1_000_000,
                            visible_within: Vec::new(),
                            consumers: vec![ConsumerSpec {
                                service: call.to,
                                concurrency: concurrency.clamp(1, 10_000),
                                endpoint: call.endpoint.unwrap_or(0),
                                idempotency_ttl: sg.idempotency_ttl,
                            }],
                            saga: Some((sagas.len() as u32, (j as u32) << 1 | k as u32)),
                        });
                    }
                    per_step.push(at);
                }
                Some(per_step)
            }
            other => {
                unknown_kind(
                    &mut cx,
                    p.key("mode"),
                    "saga mode",
                    other,
                    &["orchestration", "choreography"],
                );
                None
            }
        };
        // The orchestrator holds the saga's calls as a hidden endpoint, so that they get call
        // sites, edges and links like any other call.
        let mut steps = Vec::new();
        let mut call_steps = Vec::new();
        for (a, c) in calls.iter().filter(|_| choreography.is_none()) {
            let mut at = [None, None];
            for (k, call) in [a, c].into_iter().enumerate() {
                if let Some(call) = call {
                    at[k] = Some(steps.len() as u32);
                    steps.push(Step::Call(call.clone()));
                }
            }
            call_steps.push(at);
        }
        let eps = &mut services[orch.0 as usize].endpoints;
        let endpoint = eps.len() as u32;
        if choreography.is_none() {
            eps.push(EndpointSpec {
                name: format!("saga:{}", sg.name),
                weight: 0.0,
                steps,
            });
        }
        sagas.push(SagaSpec {
            name: sg.name.clone(),
            orchestrator: orch,
            config,
            step_names: names,
            calls,
            endpoint,
            call_steps,
            choreography,
        });
    }

    // Consumers.
    for (i, s) in raw.service.iter().enumerate() {
        for (k, c) in s.consumes.iter().enumerate() {
            let p = root().key("service").index(i).key("consumes").index(k);
            let Some(qi) = raw.queue.iter().position(|q| q.name == c.queue) else {
                let known: Vec<&str> = raw.queue.iter().map(|q| q.name.as_str()).collect();
                cx.err(
                    p.key("queue"),
                    format!(
                        "unknown queue {:?}; queues: {}",
                        c.queue,
                        if known.is_empty() {
                            "none (add a [[queue]])".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
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
        .and_then(|r| build_registry(&mut cx, r));
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
        let bounds = e.below.is_some() as u8 + e.above.is_some() as u8 + e.between.is_some() as u8;
        if bounds != 1 {
            cx.err(
                p.clone(),
                "an expectation needs exactly one of below = x, above = x or between = [lo, hi]",
            );
        }
        if let Some([lo, hi]) = e.between {
            if lo > hi {
                cx.err(
                    p.key("between"),
                    format!("between = [{lo}, {hi}]: lo must not exceed hi"),
                );
            }
        }
        if e.metric.trim().is_empty() {
            cx.err(p.key("metric"), "metric must name a path in summary.json, e.g. \"workloads.shoppers.latency_ms.p99\"");
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
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    Ok(SystemSpec {
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
        headers: header_names,
        services,
        workloads,
        retries: pols.retries,
        breakers: pols.breakers,
        hedges: pols.hedges,
        registry,
        balancers: pols.balancers,
        outliers: pols.outliers,
        bulkheads: pols.bulkheads,
        rate_limits: pols.rate_limits,
        concurrency: pols.concurrency,
        throttles: pols.throttles,
        faults,
    })
}

/// A closed walk through the members of a strongly connected component, starting at its smallest node.
fn cycle_through(graph: &DiGraph<u32, ()>, members: &[u32]) -> Vec<u32> {
    let start = members[0];
    let node = |n: u32| NodeIndex::new(n as usize);
    if graph.contains_edge(node(start), node(start)) {
        return vec![start, start];
    }
    // Breadth-first search inside the component for the shortest way back to `start`.
    let mut prev: BTreeMap<u32, u32> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for &n in &frontier {
            let mut outs: Vec<u32> = graph
                .neighbors(node(n))
                .map(|m| m.index() as u32)
                .filter(|m| members.binary_search(m).is_ok())
                .collect();
            outs.sort_unstable();
            for m in outs {
                if m == start {
                    let mut path = vec![start];
                    let mut cur = n;
                    while cur != start {
                        path.push(cur);
                        cur = prev[&cur];
                    }
                    path[1..].reverse();
                    path.push(start);
                    return path;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    next.push(m);
                }
            }
        }
        frontier = next;
    }
    vec![start, start]
}

fn resolve_endpoint(
    cx: &mut Ctx,
    raw: &RawScenario,
    service: ServiceId,
    name: Option<&str>,
    path: TomlPath,
) -> Option<Option<u32>> {
    let Some(name) = name else { return Some(None) };
    let s = &raw.service[service.0 as usize];
    let names: Vec<&str> = if s.endpoint.is_empty() {
        vec!["default"]
    } else {
        s.endpoint.iter().map(|e| e.name.as_str()).collect()
    };
    match names.iter().position(|n| *n == name) {
        Some(i) => Some(Some(i as u32)),
        None => {
            let hint = did_you_mean(name, names.iter().copied())
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            cx.err(
                path,
                format!(
                    "service {:?} has no endpoint {name:?}{hint}; its endpoints: {}",
                    s.name,
                    names.join(", ")
                ),
            );
            None
        }
    }
}

fn build_step(
    cx: &mut Ctx,
    st: &RawStep,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    raw: &RawScenario,
    pols: &Policies,
    defaults: &Defaults,
) -> Option<Step> {
    if let Some(name) = &st.saga {
        if st.to.is_some() || st.parallel.is_some() || st.work.is_some() || st.publish.is_some() {
            cx.err(
                path,
                "a step is exactly one of: a call, a publish, a saga, a group or work",
            );
            return None;
        }
        let Some(k) = raw.saga.iter().position(|s| &s.name == name) else {
            let known: Vec<&str> = raw.saga.iter().map(|s| s.name.as_str()).collect();
            cx.err(
                path.key("saga"),
                format!(
                    "unknown saga {name:?}; sagas: {}",
                    if known.is_empty() {
                        "none (add a [[saga]])".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        let here = &raw.service[defaults.service].name;
        if &raw.saga[k].orchestrator != here {
            cx.err(path.key("saga"), format!("saga {name:?} runs on its orchestrator {:?}: start it from a handler of that service, not {here:?}", raw.saga[k].orchestrator));
            return None;
        }
        return Some(Step::Saga(k as u32));
    }
    let kinds = [
        st.to.is_some(),
        st.parallel.is_some(),
        st.work.is_some(),
        st.publish.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if kinds != 1 {
        cx.err(path, "a step is exactly one of: a call `{ to = \"service\" }`, a publish `{ publish = \"queue or topic\" }`, a group `{ parallel = [...] }` or local work `{ work = { dist = ... } }`");
        return None;
    }
    if let Some(w) = &st.work {
        if st.endpoint.is_some() || st.timeout.is_some() || st.p.is_some() || st.required.is_some()
        {
            cx.err(
                path.clone(),
                "a work step takes only `work`; endpoint, timeout, p and required belong to calls",
            );
        }
        return build_dist(cx, w, path.key("work")).map(Step::Work);
    }
    if let Some(members) = &st.parallel {
        if st.endpoint.is_some() || st.timeout.is_some() || st.p.is_some() || st.required.is_some()
        {
            cx.err(path.clone(), "a parallel group takes only `parallel`; put timeout, p and required on each call inside it");
        }
        if members.is_empty() {
            cx.err(
                path.key("parallel"),
                "a parallel group needs at least one call",
            );
            return None;
        }
        if members.len() > MAX_PARALLEL {
            cx.err(
                path.key("parallel"),
                format!(
                    "a parallel group holds at most {MAX_PARALLEL} calls, this one has {}",
                    members.len()
                ),
            );
            return None;
        }
        let mut calls = Vec::new();
        for (m, c) in members.iter().enumerate() {
            let mp = path.key("parallel").index(m);
            if c.to.is_none() && c.publish.is_none() {
                cx.err(
                    mp,
                    "each member of a parallel group is a call `{ to = \"service\" }` or a publish",
                );
                continue;
            }
            if c.parallel.is_some() || c.work.is_some() {
                cx.err(
                    mp,
                    "a call inside a parallel group cannot itself hold `parallel` or `work`",
                );
                continue;
            }
            if let Some(call) = build_call(cx, c, mp, resolve, raw, pols, defaults) {
                calls.push(call);
            }
        }
        return Some(Step::Parallel(calls));
    }
    build_call(cx, st, path, resolve, raw, pols, defaults).map(Step::Call)
}

fn build_call(
    cx: &mut Ctx,
    st: &RawStep,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    raw: &RawScenario,
    pols: &Policies,
    defaults: &Defaults,
) -> Option<CallSpec> {
    let (to, publish) = match &st.publish {
        Some(name) => {
            let Some(&(dest, broker)) = defaults.dests.get(name) else {
                let known: Vec<&str> = defaults.dests.keys().map(|k| k.as_str()).collect();
                let hint = did_you_mean(name, known.iter().copied())
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                cx.err(
                    path.key("publish"),
                    format!(
                        "unknown queue or topic {name:?}{hint}; defined: {}",
                        if known.is_empty() {
                            "none (add a [[queue]] or [[topic]])".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                return None;
            };
            if st.endpoint.is_some() {
                cx.err(
                    path.key("endpoint"),
                    "a publish goes to its broker's first endpoint: drop `endpoint`",
                );
            }
            let poison = st.poison.unwrap_or(0.0);
            check_probability(cx, poison, path.key("poison"), false);
            if st.wait == Some(false)
                && (st.retry.is_some() || st.timeout.is_some() || st.hedge.is_some())
            {
                cx.err(path.key("wait"), "a fire-and-forget publish (wait = false) has no timeout, retry or hedge: nobody waits for its answer");
            }
            (broker?, Some(PublishSpec { dest, poison }))
        }
        None => {
            if st.poison.is_some() {
                cx.err(path.key("poison"), "`poison` belongs to a publish step");
            }
            if st.wait.is_some() {
                cx.err(path.key("wait"), "`wait` belongs to a publish step");
            }
            (
                resolve(cx, st.to.as_deref().expect("checked"), path.key("to"))?,
                None,
            )
        }
    };
    let endpoint = if publish.is_some() {
        Some(0)
    } else {
        resolve_endpoint(cx, raw, to, st.endpoint.as_deref(), path.key("endpoint"))?
    };
    let probability = st.p.unwrap_or(1.0);
    check_probability(cx, probability, path.key("p"), false);
    if st.timeout == Some(SimDuration::ZERO) {
        cx.err(path.key("timeout"), "timeout must be longer than 0s");
    }
    let named = |cx: &mut Ctx, kind: &str, name: Option<&str>, default: Option<&str>| {
        pols.pick(cx, kind, name, path.key(kind), default, &defaults.path)
    };
    let retry = named(cx, "retry", st.retry.as_deref(), defaults.retry);
    let breaker = named(cx, "breaker", st.breaker.as_deref(), defaults.breaker);
    let hedge = named(cx, "hedge", st.hedge.as_deref(), None);
    let retry = if hedge.is_some() && retry.is_some() {
        if st.retry.is_some() {
            cx.err(
                path.key("hedge"),
                "a call hedges or retries, not both (as in gRPC): drop `retry` or `hedge`",
            );
        }
        None // the service's default retry gives way to an explicit hedge
    } else {
        retry
    };
    let balancer = named(cx, "balancer", st.balancer.as_deref(), defaults.balancer);
    let outlier = named(cx, "outlier", st.outlier.as_deref(), defaults.outlier);
    let bulkhead = named(cx, "bulkhead", st.bulkhead.as_deref(), defaults.bulkhead);
    let concurrency = named(cx, "concurrency", st.concurrency.as_deref(), None);
    let throttle = named(cx, "throttle", st.throttle.as_deref(), None);
    Some(CallSpec {
        to,
        endpoint,
        timeout: st.timeout,
        probability,
        required: st.required.unwrap_or(true),
        retry,
        breaker,
        hedge,
        balancer,
        outlier,
        bulkhead,
        concurrency,
        throttle,
        publish,
        write: None,
        after_write: false,
        wait: st.wait.unwrap_or(true),
    })
}

/// A service's default policies for its calls, and where it can publish.
struct Defaults<'a> {
    dests: &'a BTreeMap<String, (Dest, Option<ServiceId>)>,
    /// The service whose handler this is.
    service: usize,
    retry: Option<&'a str>,
    breaker: Option<&'a str>,
    balancer: Option<&'a str>,
    outlier: Option<&'a str>,
    bulkhead: Option<&'a str>,
    path: TomlPath,
}

/// The named policies, built.
struct Policies {
    retries: Vec<RetryPolicy>,
    breakers: Vec<BreakerPolicy>,
    hedges: Vec<HedgePolicy>,
    balancers: Vec<BalancerPolicy>,
    outliers: Vec<OutlierPolicy>,
    bulkheads: Vec<BulkheadPolicy>,
    rate_limits: Vec<RateLimitPolicy>,
    concurrency: Vec<ConcurrencyPolicy>,
    throttles: Vec<ThrottlePolicy>,
}

impl Policies {
    /// Resolves a call's policy name (or its service's default); "none" means no policy.
    fn pick(
        &self,
        cx: &mut Ctx,
        kind: &str,
        name: Option<&str>,
        path: TomlPath,
        default: Option<&str>,
        default_path: &TomlPath,
    ) -> Option<u32> {
        let (name, path) = match (name, default) {
            (Some(n), _) => (n, path),
            (None, Some(d)) => (d, default_path.key(kind)),
            (None, None) => return None,
        };
        if name == "none" {
            return None;
        }
        let names: Vec<&str> = match kind {
            "retry" => self.retries.iter().map(|r| r.name.as_str()).collect(),
            "hedge" => self.hedges.iter().map(|h| h.name.as_str()).collect(),
            "balancer" => self.balancers.iter().map(|h| h.name.as_str()).collect(),
            "outlier" => self.outliers.iter().map(|h| h.name.as_str()).collect(),
            "bulkhead" => self.bulkheads.iter().map(|h| h.name.as_str()).collect(),
            "rate_limit" => self.rate_limits.iter().map(|h| h.name.as_str()).collect(),
            "concurrency" => self.concurrency.iter().map(|h| h.name.as_str()).collect(),
            "throttle" => self.throttles.iter().map(|h| h.name.as_str()).collect(),
            _ => self.breakers.iter().map(|b| b.name.as_str()).collect(),
        };
        match names.iter().position(|n| *n == name) {
            Some(i) => Some(i as u32),
            None => {
                let hint = did_you_mean(name, names.iter().copied())
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                let known = if names.is_empty() {
                    format!("none is defined: add [policy.{kind}.{name}]")
                } else {
                    format!("defined: {}", names.join(", "))
                };
                cx.err(
                    path,
                    format!("unknown {kind} policy {name:?}{hint}; {known}"),
                );
                None
            }
        }
    }
}

fn outcome_set(
    cx: &mut Ctx,
    list: Option<&[String]>,
    default: OutcomeSet,
    allowed: &[&str],
    path: TomlPath,
) -> OutcomeSet {
    let Some(list) = list else { return default };
    let mut set = OutcomeSet::EMPTY;
    for (i, item) in list.iter().enumerate() {
        match AttemptOutcome::from_name(item).filter(|o| allowed.contains(&o.name())) {
            Some(o) => set = set.with(o),
            None => {
                let other = item.as_str();
                let hint = did_you_mean(other, allowed.iter().copied())
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                cx.err(
                    path.index(i),
                    format!(
                        "unknown outcome {other:?}{hint}; valid: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    set
}

fn build_policies(cx: &mut Ctx, raw: &RawScenario) -> Policies {
    use crate::policy::backoff::{Backoff, Jitter};
    use crate::policy::breaker::{Config, ConsecutiveConfig, RateConfig, WaitInterval, Window};
    use crate::policy::budget::EnvoyBudget;
    let pp = root().key("policy");
    let rp = &raw.policy;
    let names: [(&str, Vec<&String>); 9] = [
        ("retry", rp.retry.keys().collect()),
        ("breaker", rp.breaker.keys().collect()),
        ("hedge", rp.hedge.keys().collect()),
        ("balancer", rp.balancer.keys().collect()),
        ("outlier", rp.outlier.keys().collect()),
        ("bulkhead", rp.bulkhead.keys().collect()),
        ("rate_limit", rp.rate_limit.keys().collect()),
        ("concurrency", rp.concurrency.keys().collect()),
        ("throttle", rp.throttle.keys().collect()),
    ];
    for (kind, keys) in names {
        if keys.iter().any(|k| k.as_str() == "none") {
            cx.err(
                pp.key(kind).key("none"),
                "\"none\" is reserved (it turns a service's default policy off): pick another name",
            );
        }
    }
    let mut retries = Vec::new();
    for (name, r) in &raw.policy.retry {
        let p = pp.key("retry").key(name);
        if r.max_attempts == 0 {
            cx.err(
                p.key("max_attempts"),
                "max_attempts counts the first attempt too: it must be at least 1",
            );
        }
        let backoff = match &r.backoff {
            None => Backoff::None,
            Some(b) => {
                let bp = p.key("backoff");
                let need = |cx: &mut Ctx, v: Option<SimDuration>, key: &str| -> SimDuration {
                    v.unwrap_or_else(|| {
                        cx.err(
                            bp.key(key),
                            format!("missing `{key}` for backoff kind {:?}", b.kind),
                        );
                        SimDuration::ZERO
                    })
                };
                match b.kind.as_str() {
                    "none" => Backoff::None,
                    "fixed" => Backoff::Fixed(need(cx, b.value, "value")),
                    "exponential" => {
                        let jitter = match b.jitter.as_deref().unwrap_or("full") {
                            "none" => Jitter::None,
                            "full" => Jitter::Full,
                            "equal" => Jitter::Equal,
                            other => {
                                cx.err(bp.key("jitter"), format!("unknown jitter {other:?}: use \"none\", \"full\" or \"equal\" (\"decorrelated\" is its own backoff kind)"));
                                Jitter::Full
                            }
                        };
                        Backoff::Exponential {
                            base: need(cx, b.base, "base"),
                            cap: need(cx, b.cap, "cap"),
                            jitter,
                        }
                    }
                    "decorrelated" => Backoff::Decorrelated {
                        base: need(cx, b.base, "base"),
                        cap: need(cx, b.cap, "cap"),
                    },
                    "envoy" => {
                        let base = b.base.unwrap_or(SimDuration::from_millis(25));
                        Backoff::Envoy {
                            base,
                            max: b.cap.unwrap_or(SimDuration(base.0 * 10)),
                        }
                    }
                    "grpc" => Backoff::Grpc {
                        initial: need(cx, b.base, "base"),
                        multiplier: b.multiplier.unwrap_or(2.0),
                        max: need(cx, b.cap, "cap"),
                    },
                    "resilience4j" => Backoff::R4jExponential {
                        initial: need(cx, b.base, "base"),
                        multiplier: b.multiplier.unwrap_or(1.5),
                        max: b.cap.unwrap_or(SimDuration(u64::MAX / 4)),
                    },
                    other => {
                        let kinds = [
                            "none",
                            "fixed",
                            "exponential",
                            "decorrelated",
                            "envoy",
                            "grpc",
                            "resilience4j",
                        ];
                        unknown_kind(cx, bp.key("kind"), "backoff", other, &kinds);
                        Backoff::None
                    }
                }
            }
        };
        let retry_on = outcome_set(
            cx,
            r.retry_on.as_deref(),
            OutcomeSet::RETRY_DEFAULT,
            &[
                "error",
                "timeout",
                "rejected",
                "circuit_open",
                "connect_failure",
                "rate_limited",
                "refused",
            ],
            p.key("retry_on"),
        );
        let budget = r.budget.as_ref().and_then(|b| {
            let bp = p.key("budget");
            match b.kind.as_str() {
                "envoy" => Some(BudgetSpec::Envoy(EnvoyBudget {
                    percent: b.percent.unwrap_or(20.0),
                    min_concurrency: b.min_concurrency.unwrap_or(3),
                })),
                "finagle" => {
                    let pc = b.percent_can_retry.unwrap_or(0.2);
                    if !(pc > 0.0 && pc <= 1.0) {
                        cx.err(
                            bp.key("percent_can_retry"),
                            format!("must be in (0, 1], got {pc}"),
                        );
                    }
                    Some(BudgetSpec::Finagle {
                        ttl: b.ttl.unwrap_or(SimDuration::from_secs(10)),
                        min_retries_per_s: b.min_retries_per_s.unwrap_or(10.0),
                        percent_can_retry: pc,
                    })
                }
                "grpc" => Some(BudgetSpec::Grpc {
                    max_tokens: b.max_tokens.unwrap_or(10).clamp(1, 1000),
                    token_ratio: b.token_ratio.unwrap_or(0.1),
                }),
                "aws" => Some(BudgetSpec::Aws),
                "token_bucket" => {
                    let deposit = b.token_ratio.unwrap_or(0.1);
                    if !(deposit > 0.0 && deposit <= 1.0) {
                        cx.err(
                            bp.key("token_ratio"),
                            format!("tokens deposited per success are in (0, 1], got {deposit}"),
                        );
                    }
                    Some(BudgetSpec::TokenBucket {
                        max_tokens: b.max_tokens.unwrap_or(10).clamp(1, 1_000_000),
                        deposit,
                    })
                }
                other => {
                    let kinds = ["envoy", "finagle", "grpc", "aws", "token_bucket"];
                    unknown_kind(cx, bp.key("kind"), "budget", other, &kinds);
                    None
                }
            }
        });
        retries.push(RetryPolicy {
            name: name.clone(),
            max_attempts: r.max_attempts.max(1),
            backoff,
            retry_on,
            budget,
            overall_timeout: r.overall_timeout,
        });
    }
    let mut breakers = Vec::new();
    for (name, b) in &raw.policy.breaker {
        let p = pp.key("breaker").key(name);
        let fraction = |cx: &mut Ctx, v: Option<f64>, key: &str, default: f64| -> f64 {
            let v = v.unwrap_or(default);
            if !(v > 0.0 && v <= 1.0) {
                cx.err(
                    p.key(key),
                    format!("{key} is a share of the window in (0, 1], got {v}"),
                );
            }
            v * 100.0
        };
        let record = outcome_set(
            cx,
            b.record.as_deref(),
            OutcomeSet::BREAKER_DEFAULT,
            &[
                "error",
                "timeout",
                "rejected",
                "connect_failure",
                "rate_limited",
                "refused",
            ],
            p.key("record"),
        );
        let config = match b.kind.as_deref().unwrap_or("rate") {
            "rate" => {
                let window = match &b.window {
                    None => Window::Count(100),
                    Some(w) if w.size == 0 => {
                        cx.err(
                            p.key("window").key("size"),
                            "window size must be at least 1",
                        );
                        Window::Count(1)
                    }
                    Some(w) => match w.kind.as_str() {
                        "count" => Window::Count(w.size),
                        "time" => Window::Time(w.size),
                        other => {
                            cx.err(
                                p.key("window").key("kind"),
                                format!("unknown window kind {other:?}: use \"count\" or \"time\""),
                            );
                            Window::Count(w.size)
                        }
                    },
                };
                let open_for = b.open_for.unwrap_or(SimDuration::from_secs(60));
                let wait = match b.open_multiplier {
                    Some(m) => WaitInterval::Exponential {
                        initial: open_for,
                        multiplier: m,
                        max: b
                            .open_max
                            .unwrap_or(SimDuration(open_for.0.saturating_mul(10))),
                    },
                    None => WaitInterval::Fixed(open_for),
                };
                Config::Rate(RateConfig {
                    failure_rate_threshold: fraction(cx, b.failure_rate, "failure_rate", 0.5),
                    slow_call_rate_threshold: fraction(cx, b.slow_call_rate, "slow_call_rate", 1.0),
                    slow_call_duration: b.slow_call_duration.unwrap_or(SimDuration::from_secs(60)),
                    window,
                    minimum_calls: b.minimum_calls.unwrap_or(100).max(1),
                    half_open_calls: b.half_open_calls.unwrap_or(10).max(1),
                    wait,
                    automatic_transition: b.automatic.unwrap_or(false),
                    max_wait_half_open: b.max_wait_half_open.unwrap_or(SimDuration::ZERO),
                    after_max_wait: crate::policy::breaker::State::Open,
                })
            }
            "consecutive" => {
                for (key, set) in [
                    ("failure_rate", b.failure_rate.is_some()),
                    ("window", b.window.is_some()),
                    ("minimum_calls", b.minimum_calls.is_some()),
                    ("half_open_calls", b.half_open_calls.is_some()),
                    ("slow_call_rate", b.slow_call_rate.is_some()),
                ] {
                    if set {
                        cx.err(p.key(key), format!("`{key}` belongs to kind = \"rate\"; the consecutive breaker takes failures, open_for and successes"));
                    }
                }
                Config::Consecutive(ConsecutiveConfig {
                    failures: b.failures.unwrap_or(5).max(1),
                    open_for: b.open_for.unwrap_or(SimDuration::from_secs(30)),
                    half_open_successes: b.successes.unwrap_or(3).max(1),
                })
            }
            other => {
                cx.err(p.key("kind"), format!("unknown breaker kind {other:?}: use \"rate\" (Resilience4j) or \"consecutive\" (the articles')"));
                Config::Consecutive(ConsecutiveConfig::default())
            }
        };
        let fallback = b.fallback.as_ref().map(|f| Fallback {
            latency: f.latency,
            on_failure: match f.on.as_str() {
                "open" => false,
                "failure" => true,
                other => {
                    cx.err(p.key("fallback").key("on"), format!("unknown fallback trigger {other:?}: use \"open\" (calls the breaker refuses) or \"failure\" (any failed call)"));
                    false
                }
            },
        });
        breakers.push(BreakerPolicy {
            name: name.clone(),
            config,
            record,
            fallback,
            scope: scope(cx, b.scope.as_deref(), p.key("scope")),
        });
    }
    let mut hedges = Vec::new();
    for (name, h) in &raw.policy.hedge {
        let p = pp.key("hedge").key(name);
        if !(2..=5).contains(&h.max_attempts) {
            cx.err(p.key("max_attempts"), format!("max_attempts is 2 to 5 (the first attempt included; gRPC caps hedging at 5), got {}", h.max_attempts));
        }
        if let Some(q) = h.percentile {
            if !(q > 0.0 && q < 100.0) {
                cx.err(
                    p.key("percentile"),
                    format!("percentile is in (0, 100), got {q}"),
                );
            }
        }
        let none = OutcomeSet::of(&[AttemptOutcome::Timeout]);
        let non_fatal = outcome_set(
            cx,
            h.non_fatal.as_deref(),
            none,
            &[
                "error",
                "rejected",
                "connect_failure",
                "rate_limited",
                "refused",
            ],
            p.key("non_fatal"),
        );
        // A per-try timeout always lets the next hedge go at once (gRPC A6).
        let non_fatal = non_fatal.with(AttemptOutcome::Timeout);
        hedges.push(HedgePolicy {
            name: name.clone(),
            max_attempts: h.max_attempts.clamp(2, 5),
            delay: h.delay,
            percentile: h.percentile,
            non_fatal,
        });
    }
    let more = build_layer_policies(cx, raw);
    Policies {
        retries,
        breakers,
        hedges,
        balancers: more.0,
        outliers: more.1,
        bulkheads: more.2,
        rate_limits: more.3,
        concurrency: more.4,
        throttles: more.5,
    }
}

/// `[registry]`.
fn build_registry(cx: &mut Ctx, r: &RawRegistry) -> Option<RegistrySpec> {
    use crate::policy::registry::{Leases, Thresholds};
    let p = root().key("registry");
    let positive = |cx: &mut Ctx, v: SimDuration, key: &str| {
        if v.0 == 0 {
            cx.err(p.key(key), format!("{key} must be longer than 0s"));
        }
        v
    };
    let eureka_only = [
        ("lease_duration", r.lease_duration.is_some()),
        ("eviction_interval", r.eviction_interval.is_some()),
        ("self_preservation", r.self_preservation.is_some()),
        ("renewal_threshold", r.renewal_threshold.is_some()),
        ("double_duration_quirk", r.double_duration_quirk.is_some()),
    ];
    let ttl_only = [
        ("check_interval", r.check_interval.is_some()),
        ("unhealthy_after", r.unhealthy_after.is_some()),
        ("remove_after", r.remove_after.is_some()),
        ("reap_interval", r.reap_interval.is_some()),
    ];
    let (leases, heartbeat, tick) = match r.kind.as_str() {
        "ttl" => {
            for (key, set) in eureka_only {
                if set {
                    cx.err(p.key(key), format!("`{key}` belongs to kind = \"eureka\""));
                }
            }
            let check = positive(
                cx,
                r.check_interval.unwrap_or(SimDuration::from_secs(10)),
                "check_interval",
            );
            let leases = Leases::Ttl {
                unhealthy_after: positive(
                    cx,
                    r.unhealthy_after.unwrap_or(SimDuration::from_secs(30)),
                    "unhealthy_after",
                ),
                remove_after: r.remove_after.unwrap_or(SimDuration::from_secs(60)),
                reap_interval: positive(cx, r.reap_interval.unwrap_or(check), "reap_interval"),
            };
            (
                leases,
                r.heartbeat.unwrap_or(SimDuration::from_secs(10)),
                check,
            )
        }
        "eureka" => {
            for (key, set) in ttl_only {
                if set {
                    cx.err(p.key(key), format!("`{key}` belongs to kind = \"ttl\""));
                }
            }
            let threshold = r.renewal_threshold.unwrap_or(0.85);
            if !(threshold > 0.0 && threshold <= 1.0) {
                cx.err(
                    p.key("renewal_threshold"),
                    format!("renewal_threshold is in (0, 1], got {threshold}"),
                );
            }
            let heartbeat = r.heartbeat.unwrap_or(SimDuration::from_secs(30));
            let eviction = positive(
                cx,
                r.eviction_interval.unwrap_or(SimDuration::from_secs(60)),
                "eviction_interval",
            );
            let leases = Leases::Eureka {
                duration: positive(
                    cx,
                    r.lease_duration.unwrap_or(SimDuration::from_secs(90)),
                    "lease_duration",
                ),
                eviction_interval: eviction,
                self_preservation: r.self_preservation.unwrap_or(true),
                renewal_threshold: threshold,
                double_duration_quirk: r.double_duration_quirk.unwrap_or(true),
                renewal_interval: heartbeat,
            };
            (leases, heartbeat, eviction)
        }
        "registrar" => {
            for (key, set) in eureka_only.into_iter().chain(ttl_only) {
                if set {
                    cx.err(p.key(key), format!("`{key}` does not apply to kind = \"registrar\" (nothing expires: the registrar registers and deregisters)"));
                }
            }
            if r.heartbeat.is_some() {
                cx.err(p.key("heartbeat"), "instances do not heartbeat with kind = \"registrar\": the registrar watches them (poll_interval)");
            }
            let poll = positive(
                cx,
                r.poll_interval.unwrap_or(SimDuration::from_secs(10)),
                "poll_interval",
            );
            (Leases::Registrar, poll, poll)
        }
        other => {
            unknown_kind(
                cx,
                p.key("kind"),
                "registry",
                other,
                &["ttl", "eureka", "registrar"],
            );
            return None;
        }
    };
    if r.poll_interval.is_some() && r.kind != "registrar" {
        cx.err(
            p.key("poll_interval"),
            "`poll_interval` belongs to kind = \"registrar\"",
        );
    }
    positive(cx, heartbeat, "heartbeat");
    positive(cx, r.cache_ttl, "cache_ttl");
    let checks = r.health_check.as_ref().and_then(|h| {
        let hp = p.key("health_check");
        if h.interval.0 == 0 || h.timeout.0 == 0 {
            cx.err(hp.clone(), "interval and timeout must be longer than 0s");
        }
        if h.failures == 0 || h.successes == 0 {
            cx.err(hp.clone(), "failures and successes must be at least 1");
        }
        let work = build_dist(cx, &h.work, hp.key("work"))?;
        Some(HealthCheckSpec {
            interval: h.interval,
            timeout: h.timeout,
            thresholds: Thresholds {
                failures: h.failures.max(1),
                successes: h.successes.max(1),
            },
            steps: vec![Step::Work(work)],
        })
    });
    Some(RegistrySpec {
        leases,
        heartbeat,
        tick,
        cache_ttl: r.cache_ttl,
        startup: r.startup,
        checks,
    })
}

/// Reads a breaker's or bulkhead's `scope`.
fn scope(cx: &mut Ctx, v: Option<&str>, path: TomlPath) -> Scope {
    match v.unwrap_or("attempt") {
        "attempt" => Scope::Attempt,
        "call" => Scope::Call,
        other => {
            cx.err(path, format!("unknown scope {other:?}: use \"attempt\" (inside the retries: every attempt asks) or \"call\" (outside: once per call)"));
            Scope::Attempt
        }
    }
}

/// An error for an unknown `kind`, with a did-you-mean.
fn unknown_kind(cx: &mut Ctx, path: TomlPath, what: &str, other: &str, kinds: &[&str]) {
    let hint = did_you_mean(other, kinds.iter().copied())
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    cx.err(
        path,
        format!(
            "unknown {what} kind {other:?}{hint}; valid: {}",
            kinds.join(", ")
        ),
    );
}

/// Checks that a percentage lies in [0, 100].
fn check_percent(cx: &mut Ctx, v: f64, path: TomlPath) -> f64 {
    if !(0.0..=100.0).contains(&v) {
        cx.err(path, format!("a percentage in [0, 100], got {v}"));
    }
    v
}

#[allow(clippy::type_complexity)]
fn build_layer_policies(
    cx: &mut Ctx,
    raw: &RawScenario,
) -> (
    Vec<BalancerPolicy>,
    Vec<OutlierPolicy>,
    Vec<BulkheadPolicy>,
    Vec<RateLimitPolicy>,
    Vec<ConcurrencyPolicy>,
    Vec<ThrottlePolicy>,
) {
    use crate::policy::{balancer, bulkhead, concurrency, outlier};
    let pp = root().key("policy");
    let mut balancers = Vec::new();
    for (name, b) in &raw.policy.balancer {
        let p = pp.key("balancer").key(name);
        let kinds = [
            "round_robin",
            "smooth_weighted",
            "random",
            "weighted_random",
            "least_connections",
            "least_request",
            "hash",
            "ring_hash",
            "maglev",
        ];
        let kind = match b.kind.as_str() {
            "round_robin" => balancer::Kind::RoundRobin,
            "smooth_weighted" => balancer::Kind::SmoothWeighted,
            "random" => balancer::Kind::Random { weighted: false },
            "weighted_random" => balancer::Kind::Random { weighted: true },
            "least_connections" => balancer::Kind::LeastConnections,
            "least_request" => balancer::Kind::LeastRequest {
                choices: b.choices.unwrap_or(2).max(1),
                bias: b.bias.unwrap_or(1.0),
            },
            "hash" => balancer::Kind::Hash,
            "ring_hash" => balancer::Kind::RingHash {
                min_ring_size: b.ring_size.unwrap_or(1024).clamp(1, 8 << 20),
            },
            "maglev" => {
                let m = b.table_size.unwrap_or(65537);
                if m < 2 || !(2..m).take_while(|d| d * d <= m).all(|d| m % d != 0) {
                    cx.err(
                        p.key("table_size"),
                        format!(
                            "the Maglev table size must be a prime (Envoy uses 65537), got {m}"
                        ),
                    );
                }
                balancer::Kind::Maglev {
                    table_size: m.max(2),
                }
            }
            other => {
                unknown_kind(cx, p.key("kind"), "balancer", other, &kinds);
                balancer::Kind::RoundRobin
            }
        };
        let weights = b.weights.clone().unwrap_or_default();
        if weights.contains(&0) {
            cx.err(p.key("weights"), "instance weights must be at least 1");
        }
        balancers.push(BalancerPolicy {
            name: name.clone(),
            kind,
            panic_threshold: check_percent(cx, b.panic_threshold, p.key("panic_threshold")),
            weights: weights.into_iter().map(|w| w.max(1)).collect(),
            zone_aware: b.zone_aware.then_some(b.min_local.max(1)),
            slow_start: b.slow_start.as_ref().map(|s| {
                let sp = p.key("slow_start");
                if !matches!(b.kind.as_str(), "round_robin" | "least_request") {
                    cx.err(sp.clone(), format!("slow start applies to round_robin and least_request balancers (as in Envoy), not {:?}", b.kind));
                }
                if s.window.0 == 0 {
                    cx.err(sp.key("window"), "window must be longer than 0s");
                }
                if !(s.aggression.is_finite() && s.aggression > 0.0) {
                    cx.err(sp.key("aggression"), format!("aggression is above 0 (1.0: linear), got {}", s.aggression));
                }
                (s.window, s.aggression, check_percent(cx, s.min_weight_percent, sp.key("min_weight_percent")))
            }),
        });
    }
    let mut outliers = Vec::new();
    for (name, o) in &raw.policy.outlier {
        let p = pp.key("outlier").key(name);
        let d = outlier::Config::default();
        let pct = |cx: &mut Ctx, v: Option<f64>, key: &str, default: f64| {
            check_percent(cx, v.unwrap_or(default), p.key(key))
        };
        let config = outlier::Config {
            consecutive_5xx: o.consecutive_5xx.unwrap_or(d.consecutive_5xx),
            enforcing_consecutive_5xx: pct(
                cx,
                o.enforcing_consecutive_5xx,
                "enforcing_consecutive_5xx",
                d.enforcing_consecutive_5xx,
            ),
            consecutive_gateway: o.consecutive_gateway.unwrap_or(d.consecutive_gateway),
            enforcing_consecutive_gateway: pct(
                cx,
                o.enforcing_consecutive_gateway,
                "enforcing_consecutive_gateway",
                d.enforcing_consecutive_gateway,
            ),
            interval: o.interval.unwrap_or(d.interval),
            base_ejection: o.base_ejection.unwrap_or(d.base_ejection),
            max_ejection: o.max_ejection.unwrap_or(d.max_ejection),
            max_ejection_percent: pct(
                cx,
                o.max_ejection_percent,
                "max_ejection_percent",
                d.max_ejection_percent,
            ),
            always_eject_one_host: o.always_eject_one_host.unwrap_or(d.always_eject_one_host),
            success_rate_minimum_hosts: o
                .success_rate_minimum_hosts
                .unwrap_or(d.success_rate_minimum_hosts),
            success_rate_request_volume: o
                .success_rate_request_volume
                .unwrap_or(d.success_rate_request_volume),
            success_rate_stdev_factor: o
                .success_rate_stdev_factor
                .unwrap_or(d.success_rate_stdev_factor),
            enforcing_success_rate: pct(
                cx,
                o.enforcing_success_rate,
                "enforcing_success_rate",
                d.enforcing_success_rate,
            ),
            failure_percentage_threshold: pct(
                cx,
                o.failure_percentage_threshold,
                "failure_percentage_threshold",
                d.failure_percentage_threshold,
            ),
            failure_percentage_minimum_hosts: o
                .failure_percentage_minimum_hosts
                .unwrap_or(d.failure_percentage_minimum_hosts),
            failure_percentage_request_volume: o
                .failure_percentage_request_volume
                .unwrap_or(d.failure_percentage_request_volume),
            enforcing_failure_percentage: pct(
                cx,
                o.enforcing_failure_percentage,
                "enforcing_failure_percentage",
                d.enforcing_failure_percentage,
            ),
        };
        if config.interval.0 == 0 {
            cx.err(p.key("interval"), "interval must be longer than 0s");
        }
        if config.max_ejection < config.base_ejection {
            cx.err(
                p.key("max_ejection"),
                format!(
                    "max_ejection ({}) must be at least base_ejection ({}), as Envoy requires",
                    config.max_ejection, config.base_ejection
                ),
            );
        }
        outliers.push(OutlierPolicy {
            name: name.clone(),
            config,
        });
    }
    let mut bulkheads = Vec::new();
    for (name, b) in &raw.policy.bulkhead {
        let p = pp.key("bulkhead").key(name);
        let config = match b.kind.as_str() {
            "semaphore" => {
                for key in [
                    ("max_connections", b.max_connections.is_some()),
                    ("max_pending", b.max_pending.is_some()),
                    ("max_requests", b.max_requests.is_some()),
                    ("max_retries", b.max_retries.is_some()),
                ] {
                    if key.1 {
                        cx.err(p.key(key.0), format!("`{}` belongs to kind = \"envoy\"; a semaphore bulkhead takes max_concurrent and max_wait", key.0));
                    }
                }
                let max = b.max_concurrent.unwrap_or(25);
                if max == 0 {
                    cx.err(p.key("max_concurrent"), "max_concurrent must be at least 1");
                }
                bulkhead::Config::Semaphore {
                    max_concurrent: max.max(1),
                    max_wait: b.max_wait.unwrap_or(SimDuration::ZERO),
                }
            }
            "envoy" => {
                for key in [
                    ("max_concurrent", b.max_concurrent.is_some()),
                    ("max_wait", b.max_wait.is_some()),
                ] {
                    if key.1 {
                        cx.err(p.key(key.0), format!("`{}` belongs to kind = \"semaphore\"; Envoy limits are max_connections, max_pending, max_requests, max_retries", key.0));
                    }
                }
                let c = b.max_connections.unwrap_or(1024);
                let r = b.max_requests.unwrap_or(1024);
                if c == 0 || r == 0 {
                    cx.err(
                        p.clone(),
                        "max_connections and max_requests must be at least 1",
                    );
                }
                bulkhead::Config::Envoy {
                    max_connections: c.max(1),
                    max_pending: b.max_pending.unwrap_or(1024),
                    max_requests: r.max(1),
                    max_retries: b.max_retries.unwrap_or(3),
                }
            }
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "bulkhead",
                    other,
                    &["semaphore", "envoy"],
                );
                continue;
            }
        };
        bulkheads.push(BulkheadPolicy {
            name: name.clone(),
            config,
            scope: scope(cx, b.scope.as_deref(), p.key("scope")),
        });
    }
    let mut rate_limits = Vec::new();
    for (name, r) in &raw.policy.rate_limit {
        let p = pp.key("rate_limit").key(name);
        let kind = match r.kind.as_str() {
            "token_bucket" => {
                let (Some(max_tokens), Some(fill)) = (r.max_tokens, r.fill_interval) else {
                    cx.err(p.clone(), "a token bucket needs max_tokens and fill_interval (and optionally tokens_per_fill, default 1)");
                    continue;
                };
                if fill.0 == 0 {
                    cx.err(
                        p.key("fill_interval"),
                        "fill_interval must be longer than 0s",
                    );
                }
                RateLimitKind::TokenBucket {
                    max_tokens,
                    tokens_per_fill: r.tokens_per_fill.unwrap_or(1),
                    fill_interval: fill,
                }
            }
            "gcra" => {
                let Some(rate) = r.rate.filter(|x| x.is_finite() && *x > 0.0) else {
                    cx.err(
                        p.key("rate"),
                        "gcra needs rate, requests per second above 0",
                    );
                    continue;
                };
                RateLimitKind::Gcra {
                    period: SimDuration(((1e9 / rate).round() as u64).max(1)),
                    burst: r.burst.unwrap_or(0),
                }
            }
            "resilience4j" => {
                let period = r.refresh_period.unwrap_or(SimDuration(500));
                if period.0 == 0 {
                    cx.err(
                        p.key("refresh_period"),
                        "refresh_period must be longer than 0s",
                    );
                }
                RateLimitKind::Resilience4j {
                    limit: r.limit_for_period.unwrap_or(50),
                    period,
                    timeout: r.timeout.unwrap_or(SimDuration::from_secs(5)),
                }
            }
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "rate limit",
                    other,
                    &["token_bucket", "gcra", "resilience4j"],
                );
                continue;
            }
        };
        let key = match r.key.as_deref().unwrap_or("global") {
            "global" => LimitKey::Global,
            "client" => LimitKey::Client,
            "route" => LimitKey::Route,
            other => {
                cx.err(p.key("key"), format!("unknown key {other:?}: use \"global\", \"client\" (per caller) or \"route\" (per endpoint)"));
                LimitKey::Global
            }
        };
        rate_limits.push(RateLimitPolicy {
            name: name.clone(),
            kind,
            key,
        });
    }
    let mut conc = Vec::new();
    for (name, c) in &raw.policy.concurrency {
        let p = pp.key("concurrency").key(name);
        let (algorithm, defaults) = match c.kind.as_str() {
            "aimd" => {
                let backoff = c.backoff.unwrap_or(0.9);
                if !(0.5..1.0).contains(&backoff) {
                    cx.err(
                        p.key("backoff"),
                        format!("backoff is in [0.5, 1), got {backoff}"),
                    );
                }
                (
                    concurrency::Algorithm::Aimd {
                        backoff,
                        timeout: c.timeout.unwrap_or(SimDuration::from_secs(5)),
                    },
                    concurrency::AIMD_DEFAULTS,
                )
            }
            "vegas" => (
                concurrency::Algorithm::Vegas {
                    smoothing: c.smoothing.unwrap_or(1.0),
                    rtt_noload: 0,
                    probe_count: 0,
                    probe_jitter: 0.0,
                },
                concurrency::VEGAS_DEFAULTS,
            ),
            "gradient2" => (
                concurrency::Algorithm::Gradient2 {
                    smoothing: c.smoothing.unwrap_or(0.2),
                    queue_size: c.queue_size.unwrap_or(4.0),
                    tolerance: c.tolerance.unwrap_or(1.5),
                    long_window: 600,
                    long_rtt: 0.0,
                    samples: 0,
                },
                concurrency::GRADIENT2_DEFAULTS,
            ),
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "concurrency limit",
                    other,
                    &["aimd", "vegas", "gradient2"],
                );
                continue;
            }
        };
        let (initial, min, max) = (
            c.initial.unwrap_or(defaults.0),
            c.min.unwrap_or(defaults.1),
            c.max.unwrap_or(defaults.2),
        );
        if !(min >= 1.0 && min <= initial && initial <= max) {
            cx.err(p.clone(), format!("limits must satisfy 1 <= min <= initial <= max, got min {min}, initial {initial}, max {max}"));
        }
        if let Some(sm) = c.smoothing {
            if !(sm > 0.0 && sm <= 1.0) {
                cx.err(
                    p.key("smoothing"),
                    format!("smoothing is in (0, 1], got {sm}"),
                );
            }
        }
        conc.push(ConcurrencyPolicy {
            name: name.clone(),
            algorithm,
            initial,
            min,
            max,
        });
    }
    let mut throttles = Vec::new();
    for (name, t) in &raw.policy.throttle {
        let p = pp.key("throttle").key(name);
        if t.k.is_nan() || t.k < 1.0 {
            cx.err(
                p.key("k"),
                format!("k is at least 1 (the SRE book uses 2), got {}", t.k),
            );
        }
        if t.aggression.is_nan() || t.aggression < 1.0 {
            cx.err(
                p.key("aggression"),
                format!("aggression is at least 1, got {}", t.aggression),
            );
        }
        if !(t.max_reject > 0.0 && t.max_reject <= 1.0) {
            cx.err(
                p.key("max_reject"),
                format!("max_reject is in (0, 1], got {}", t.max_reject),
            );
        }
        if t.window.0 < 10 {
            cx.err(p.key("window"), "window must be longer than 10ns");
        }
        throttles.push(ThrottlePolicy {
            name: name.clone(),
            threshold: 1.0 / t.k.max(1.0),
            aggression: t.aggression.max(1.0),
            max_reject: t.max_reject,
            min_rps: t.min_rps.max(0.0),
            window: t.window,
        });
    }
    (balancers, outliers, bulkheads, rate_limits, conc, throttles)
}

fn check_probability(cx: &mut Ctx, p: f64, path: TomlPath, below_one: bool) {
    let ok = p.is_finite() && p >= 0.0 && if below_one { p < 1.0 } else { p <= 1.0 };
    if !ok {
        let range = if below_one {
            "0 <= x < 1"
        } else {
            "0 <= x <= 1"
        };
        cx.err(path, format!("a probability must be {range}, got {p}"));
    }
}

fn check_rate(cx: &mut Ctx, rate: Option<f64>, path: TomlPath, allow_zero: bool) -> Option<f64> {
    match rate {
        None => {
            cx.err(path, "missing: a rate in requests per second, e.g. 100");
            None
        }
        Some(r) if !r.is_finite() || r < 0.0 || (r == 0.0 && !allow_zero) => {
            let need = if allow_zero { ">= 0" } else { "> 0" };
            cx.err(
                path,
                format!("a rate must be {need} requests per second, got {r}"),
            );
            None
        }
        Some(r) => Some(r),
    }
}

/// Every field of `RawArrivals` by name, with whether it is set, for "not used by" errors.
fn arrival_fields(a: &RawArrivals) -> [(&'static str, bool); 19] {
    [
        ("rate", a.rate.is_some()),
        ("from", a.from.is_some()),
        ("to", a.to.is_some()),
        ("over", a.over.is_some()),
        ("steps", a.steps.is_some()),
        ("base", a.base.is_some()),
        ("peak", a.peak.is_some()),
        ("at", a.at.is_some()),
        ("for", a.length.is_some()),
        ("mean", a.mean.is_some()),
        ("amplitude", a.amplitude.is_some()),
        ("period", a.period.is_some()),
        ("users", a.users.is_some()),
        ("think", a.think.is_some()),
        ("process", a.process.is_some()),
        ("size", a.size.is_some()),
        ("every", a.every.is_some()),
        ("count", a.count.is_some()),
        ("same_key", a.same_key.is_some()),
    ]
}

fn build_arrivals(cx: &mut Ctx, a: &RawArrivals, path: TomlPath) -> Option<Arrivals> {
    let allowed: &[&str] = match a.kind.as_str() {
        "poisson" | "constant" => &["rate"],
        "ramp" => &["from", "to", "over", "process"],
        "step" => &["steps", "process"],
        "spike" => &["base", "peak", "at", "for", "process"],
        "diurnal" => &["mean", "amplitude", "period", "process"],
        "closed" => &["users", "think"],
        "burst" => &["size", "at", "every", "count", "same_key"],
        other => {
            let kinds = [
                "poisson", "constant", "ramp", "step", "spike", "diurnal", "closed", "burst",
            ];
            unknown_kind(cx, path.key("kind"), "arrival", other, &kinds);
            return None;
        }
    };
    let before = cx.problems.len();
    for (field, set) in arrival_fields(a) {
        if set && !allowed.contains(&field) {
            cx.err(
                path.key(field),
                format!(
                    "`{field}` is not used by kind = {:?}; it takes: {}",
                    a.kind,
                    allowed.join(", ")
                ),
            );
        }
    }
    let poisson = match a.process.as_deref() {
        None | Some("poisson") => true,
        Some("uniform") => false,
        Some(other) => {
            cx.err(
                path.key("process"),
                format!("unknown process {other:?}: use \"poisson\" or \"uniform\""),
            );
            true
        }
    };
    let need_d =
        |cx: &mut Ctx, d: Option<SimDuration>, name: &str, positive: bool| -> Option<SimDuration> {
            match d {
                None => {
                    cx.err(
                        path.key(name),
                        format!(
                            "missing `{name}` (a duration such as \"30s\") for kind = {:?}",
                            a.kind
                        ),
                    );
                    None
                }
                Some(d) if positive && d.0 == 0 => {
                    cx.err(path.key(name), format!("`{name}` must be longer than 0s"));
                    None
                }
                Some(d) => Some(d),
            }
        };
    let out = match a.kind.as_str() {
        "poisson" => check_rate(cx, a.rate, path.key("rate"), false).map(|r| Arrivals::Open {
            profile: RateProfile::Flat(r),
            poisson: true,
        }),
        "constant" => check_rate(cx, a.rate, path.key("rate"), false).map(|r| Arrivals::Open {
            profile: RateProfile::Flat(r),
            poisson: false,
        }),
        "ramp" => {
            let from = check_rate(cx, a.from, path.key("from"), true);
            let to = check_rate(cx, a.to, path.key("to"), true);
            let over = need_d(cx, a.over, "over", false);
            match (from, to, over) {
                (Some(from), Some(to), Some(over)) if from.max(to) > 0.0 => {
                    Some(RateProfile::Ramp { from, to, over })
                }
                (Some(_), Some(_), Some(_)) => {
                    cx.err(
                        path,
                        "a ramp from 0 to 0 sends nothing: one end must be above 0",
                    );
                    None
                }
                _ => None,
            }
            .map(|profile| Arrivals::Open { profile, poisson })
        }
        "step" => {
            let steps = a.steps.as_deref().unwrap_or_default();
            if steps.is_empty() {
                cx.err(
                    path.key("steps"),
                    "a step schedule needs steps = [{ at = \"0s\", rate = 10 }, ...]",
                );
            }
            let mut out = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                let sp = path.key("steps").index(i);
                if i > 0 && s.at <= steps[i - 1].at {
                    cx.err(sp.key("at"), "steps must be in increasing order of `at`");
                }
                if let Some(r) = check_rate(cx, Some(s.rate), sp.key("rate"), true) {
                    out.push((SimTime::ZERO.after(s.at), r));
                }
            }
            if !steps.is_empty() && steps.iter().all(|s| s.rate <= 0.0) {
                cx.err(
                    path.key("steps"),
                    "every step has rate 0: nothing would be sent",
                );
            }
            Some(Arrivals::Open {
                profile: RateProfile::Steps(out),
                poisson,
            })
        }
        "spike" => {
            let base = check_rate(cx, a.base, path.key("base"), true);
            let peak = check_rate(cx, a.peak, path.key("peak"), false);
            let at = need_d(cx, a.at, "at", false);
            let length = need_d(cx, a.length, "for", true);
            match (base, peak, at, length) {
                (Some(base), Some(peak), Some(at), Some(length)) => Some(Arrivals::Open {
                    profile: RateProfile::Spike {
                        base,
                        peak,
                        at: SimTime::ZERO.after(at),
                        length,
                    },
                    poisson,
                }),
                _ => None,
            }
        }
        "diurnal" => {
            let mean = check_rate(cx, a.mean, path.key("mean"), false);
            let amplitude = check_rate(cx, a.amplitude, path.key("amplitude"), true);
            let period = need_d(cx, a.period, "period", true);
            match (mean, amplitude, period) {
                (Some(mean), Some(amplitude), Some(period)) => Some(Arrivals::Open {
                    profile: RateProfile::Diurnal {
                        mean,
                        amplitude,
                        period,
                    },
                    poisson,
                }),
                _ => None,
            }
        }
        "closed" => {
            let users = match a.users {
                Some(u) if u > 0 => Some(u),
                _ => {
                    cx.err(
                        path.key("users"),
                        "a closed workload needs users = N with N >= 1",
                    );
                    None
                }
            };
            let think = match &a.think {
                Some(t) => build_dist(cx, t, path.key("think")),
                None => Some(Dist::Constant(SimDuration::ZERO)),
            };
            match (users, think) {
                (Some(users), Some(think)) => Some(Arrivals::Closed { users, think }),
                _ => None,
            }
        }
        "burst" => {
            let size = match a.size {
                Some(n) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    cx.err(
                        path.key("size"),
                        "a burst needs size = N requests, 1 <= N <= 1 000 000",
                    );
                    1
                }
            };
            if a.every.is_some_and(|d| d.0 == 0) {
                cx.err(path.key("every"), "`every` must be longer than 0s");
            }
            if a.count == Some(0) {
                cx.err(path.key("count"), "`count` must be at least 1");
            }
            if a.count.is_some() && a.every.is_none() {
                cx.err(
                    path.key("count"),
                    "`count` needs `every` (without it there is one burst)",
                );
            }
            Some(Arrivals::Burst {
                size,
                at: SimTime::ZERO.after(a.at.unwrap_or(SimDuration::ZERO)),
                every: a.every,
                count: a.count.unwrap_or(u32::MAX),
                same_key: a.same_key.unwrap_or(false),
            })
        }
        _ => unreachable!("kind checked above"),
    };
    (cx.problems.len() == before).then_some(out).flatten()
}

/// Fields of `RawDist` by name, with whether each is set.
fn dist_fields(d: &RawDist) -> [(&'static str, bool); 12] {
    [
        ("value", d.value.is_some()),
        ("min", d.min.is_some()),
        ("max", d.max.is_some()),
        ("mean", d.mean.is_some()),
        ("std", d.std.is_some()),
        ("sigma", d.sigma.is_some()),
        ("median", d.median.is_some()),
        ("p99", d.p99.is_some()),
        ("scale", d.scale.is_some()),
        ("shape", d.shape.is_some()),
        ("parts", d.parts.is_some()),
        ("values", d.values.is_some()),
    ]
}

/// Builds a distribution, reporting missing, unused and invalid parameters.
pub fn build_dist(cx_problems: &mut impl DistSink, d: &RawDist, path: TomlPath) -> Option<Dist> {
    let kinds = [
        "constant",
        "uniform",
        "exp",
        "normal",
        "lognormal",
        "pareto",
        "mixture",
        "empirical",
    ];
    let allowed: &[&str] = match d.dist.as_str() {
        "constant" => &["value"],
        "uniform" => &["min", "max"],
        "exp" | "exponential" => &["mean"],
        "normal" => &["mean", "std"],
        "lognormal" => {
            if d.median.is_some() || d.p99.is_some() {
                &["median", "p99"]
            } else {
                &["mean", "sigma"]
            }
        }
        "pareto" => &["scale", "shape"],
        "mixture" => &["parts"],
        "empirical" => &["values"],
        other => {
            let hint = did_you_mean(other, kinds)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            cx_problems.push(
                path.key("dist"),
                format!(
                    "unknown distribution {other:?}{hint}; valid: {}",
                    kinds.join(", ")
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    for (field, set) in dist_fields(d) {
        if set && !allowed.contains(&field) {
            cx_problems.push(
                path.key(field),
                format!(
                    "`{field}` is not used by dist = {:?}; it takes: {}",
                    d.dist,
                    allowed.join(", ")
                ),
            );
            ok = false;
        }
    }
    for field in allowed {
        let set = dist_fields(d).iter().any(|(f, s)| f == field && *s);
        if !set {
            cx_problems.push(
                path.key(field),
                format!(
                    "missing `{field}` for dist = {:?} (it takes: {})",
                    d.dist,
                    allowed.join(", ")
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let built = match d.dist.as_str() {
        "constant" => Ok(Dist::Constant(d.value.expect("checked"))),
        "uniform" => Dist::uniform(d.min.expect("checked"), d.max.expect("checked")),
        "exp" | "exponential" => Dist::exp(d.mean.expect("checked")),
        "normal" => Dist::normal(d.mean.expect("checked"), d.std.expect("checked")),
        "lognormal" if d.median.is_some() => {
            Dist::lognormal_median_p99(d.median.expect("checked"), d.p99.expect("checked"))
        }
        "lognormal" => {
            Dist::lognormal_mean_sigma(d.mean.expect("checked"), d.sigma.expect("checked"))
        }
        "pareto" => Dist::pareto(d.scale.expect("checked"), d.shape.expect("checked")),
        "mixture" => {
            let mut parts = Vec::new();
            for (i, p) in d.parts.as_deref().expect("checked").iter().enumerate() {
                parts.push((
                    p.weight,
                    build_dist(cx_problems, &p.of, path.key("parts").index(i).key("of"))?,
                ));
            }
            Dist::mixture(parts)
        }
        "empirical" => Dist::empirical(d.values.clone().expect("checked")),
        _ => unreachable!("kind checked above"),
    };
    match built {
        Ok(dist) => Some(dist),
        Err(e) => {
            cx_problems.push(path, e.0);
            None
        }
    }
}

/// Where `build_dist` reports problems (lets it serve both validation and tests).
pub trait DistSink {
    /// Records one problem.
    fn push(&mut self, path: TomlPath, message: String);
}

impl DistSink for Ctx {
    fn push(&mut self, path: TomlPath, message: String) {
        self.err(path, message);
    }
}

impl DistSink for Vec<Problem> {
    fn push(&mut self, path: TomlPath, message: String) {
        Vec::push(self, Problem { path, message });
    }
}
