//! `faultline import istio`: Istio `VirtualService` and `DestinationRule` YAML read into the
//! faultline policy tables they imply (retries and timeouts, outlier detection, connection
//! pools and limits, load balancers, traffic splits and header routes, fault injection).
//! Envoy clusters in the same files are read too (`envoy.rs`). What cannot be mapped is
//! listed with the reason, never dropped in silence.

use crate::scenario::raw::{
    RawBackoff, RawBalancer, RawBulkhead, RawFault, RawOutlier, RawPool, RawRetry, RawRoute,
    RawScenario, RawStatus, RawStep, RawWeightStep,
};
use crate::time::{parse_duration, SimDuration};
use serde::Serialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a set of Istio documents comes to.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    /// `[policy.*]` tables, named after the host they apply to.
    pub policy: Policies,
    /// `[[fault]]` blocks from fault injection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fault: Vec<RawFault>,
    /// Per host: what a call to it takes (`to`, `timeout`, `retry`, `balancer`, `bulkhead`,
    /// `pool`), what its callers take (`outlier`), its split and routes.
    #[serde(skip)]
    pub hosts: BTreeMap<String, Host>,
    /// What was not mapped: (document, field, why).
    #[serde(skip)]
    pub unmapped: Vec<(String, String, String)>,
}

/// The policy tables imported.
#[derive(Debug, Default, Serialize)]
pub struct Policies {
    /// Retries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub retry: BTreeMap<String, RawRetry>,
    /// Load balancers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub balancer: BTreeMap<String, RawBalancer>,
    /// Outlier detection.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outlier: BTreeMap<String, RawOutlier>,
    /// Envoy circuit-breaking thresholds.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bulkhead: BTreeMap<String, RawBulkhead>,
    /// Connection pools.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pool: BTreeMap<String, RawPool>,
}

/// What calls to one host take.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Host {
    /// The call's timeout (per try when retries set one).
    pub timeout: Option<SimDuration>,
    /// Attributes of the call, in order: (key, value as TOML).
    pub call: Vec<(String, String)>,
    /// The callers' outlier detector.
    pub outlier: Option<String>,
    /// The percent of its traffic sent to a canary subset, and the subset's name.
    pub canary: Option<(String, f64)>,
    /// Header routes: (header, subset).
    pub routes: Vec<(String, String)>,
}

/// Reads every document of `yaml` (`---`-separated) named `source` into `into`.
pub fn read(source: &str, yaml: &str, into: &mut Imported) -> Result<(), String> {
    use serde::Deserialize;
    for (k, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let v =
            Value::deserialize(doc).map_err(|e| format!("{source}: document {}: {e}", k + 1))?;
        if v.is_null() {
            continue;
        }
        let kind = str_at(&v, &["kind"]).unwrap_or_default();
        let name = str_at(&v, &["metadata", "name"]).unwrap_or_else(|| format!("#{}", k + 1));
        let here = format!("{source}: {kind} {name}");
        match kind.as_str() {
            "DestinationRule" => destination_rule(&here, &v, into),
            "VirtualService" => virtual_service(&here, &v, into),
            "" => match super::envoy::clusters(&v) {
                Some(cs) => {
                    for c in cs {
                        super::envoy::cluster(source, c, into);
                    }
                }
                None => into.unmapped.push((
                    here,
                    "kind".into(),
                    "neither a Kubernetes object nor Envoy clusters".into(),
                )),
            },
            other => into.unmapped.push((
                here,
                "kind".into(),
                format!("{other} is not a traffic policy faultline models (only VirtualService and DestinationRule are read)"),
            )),
        }
    }
    Ok(())
}

/// `reviews.prod.svc.cluster.local` and `reviews` are the service `reviews`.
pub fn short_host(host: &str) -> String {
    host.split('.').next().unwrap_or(host).to_string()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn u32_at(v: &Value, path: &[&str]) -> Option<u32> {
    at(v, path)
        .and_then(Value::as_u64)
        .map(|n| n.min(u32::MAX as u64) as u32)
}

fn f64_at(v: &Value, path: &[&str]) -> Option<f64> {
    at(v, path).and_then(Value::as_f64)
}

/// An Istio duration ("1s", "250ms", "1h"), as faultline reads it.
fn dur_at(v: &Value, path: &[&str], here: &str, into: &mut Imported) -> Option<SimDuration> {
    let s = str_at(v, path)?;
    match parse_duration(&s) {
        Ok(d) => Some(d),
        Err(e) => {
            into.unmapped
                .push((here.into(), path.join("."), format!("{s:?}: {e}")));
            None
        }
    }
}

/// Every key of the map at `path` not in `known`, listed as unmapped with `why`.
fn rest(v: &Value, path: &[&str], known: &[&str], here: &str, into: &mut Imported, why: &str) {
    if let Some(Value::Mapping(m)) = at(v, path) {
        for k in m.keys().filter_map(Value::as_str) {
            if !known.contains(&k) {
                let mut p = path.to_vec();
                p.push(k);
                into.unmapped.push((here.into(), p.join("."), why.into()));
            }
        }
    }
}

fn destination_rule(here: &str, v: &Value, into: &mut Imported) {
    let Some(host) = str_at(v, &["spec", "host"]).map(|h| short_host(&h)) else {
        into.unmapped
            .push((here.into(), "spec.host".into(), "missing".into()));
        return;
    };
    let tp = ["spec", "trafficPolicy"];
    rest(
        v,
        &["spec"],
        &["host", "trafficPolicy", "subsets"],
        here,
        into,
        "not modelled",
    );
    rest(
        v,
        &tp,
        &["loadBalancer", "outlierDetection", "connectionPool"],
        here,
        into,
        "not modelled (tls, port-level and proxy-protocol settings have no counterpart)",
    );
    if let Some(Value::Sequence(subsets)) = at(v, &["spec", "subsets"]) {
        for (k, s) in subsets.iter().enumerate() {
            if s.get("trafficPolicy").is_some() {
                into.unmapped.push((
                    here.into(),
                    format!("spec.subsets[{k}].trafficPolicy"),
                    "a subset's own policy: faultline's policies are per call, not per subset"
                        .into(),
                ));
            }
        }
    }
    let mut h = into.hosts.get(&host).cloned().unwrap_or_default();
    // Load balancer.
    let lb = [tp[0], tp[1], "loadBalancer"];
    if let Some(simple) = str_at(v, &[tp[0], tp[1], "loadBalancer", "simple"]) {
        let kind = match simple.as_str() {
            "ROUND_ROBIN" | "UNSPECIFIED" => Some("round_robin"),
            // Istio: LEAST_CONN is deprecated and means LEAST_REQUEST.
            "LEAST_REQUEST" | "LEAST_CONN" => Some("least_request"),
            "RANDOM" => Some("random"),
            _ => None,
        };
        match kind {
            Some(k) => {
                into.policy.balancer.insert(host.clone(), balancer(k));
                h.call.push(("balancer".into(), toml_str(&host)));
            }
            None => into.unmapped.push((
                here.into(),
                lb.join(".") + ".simple",
                format!("{simple}: no counterpart (PASSTHROUGH hands the choice to the original destination)"),
            )),
        }
    } else if let Some(ch) = at(v, &[tp[0], tp[1], "loadBalancer", "consistentHash"]) {
        let kind = if ch.get("maglev").is_some() {
            "maglev"
        } else {
            "ring_hash"
        };
        let mut b = balancer(kind);
        if let Some(n) =
            u32_at(ch, &["ringHash", "minimumRingSize"]).or(u32_at(ch, &["minimumRingSize"]))
        {
            b.ring_size = Some(n);
        }
        if let Some(n) = u32_at(ch, &["maglev", "tableSize"]) {
            b.table_size = Some(n);
        }
        into.policy.balancer.insert(host.clone(), b);
        h.call.push(("balancer".into(), toml_str(&host)));
        for key in [
            "httpHeaderName",
            "httpCookie",
            "useSourceIp",
            "httpQueryParameterName",
        ] {
            if ch.get(key).is_some() {
                into.unmapped.push((
                    here.into(),
                    format!("{}.consistentHash.{key}", lb.join(".")),
                    "faultline hashes each request's key (the workload's `keys`), whatever carries it".into(),
                ));
            }
        }
    }
    if let Some(p) = f64_at(
        v,
        &[tp[0], tp[1], "loadBalancer", "localityLbSetting", "enabled"],
    ) {
        let _ = p;
    }
    rest(
        v,
        &lb,
        &["simple", "consistentHash"],
        here,
        into,
        "not modelled (locality weights and warm-up have other faultline settings: zone_aware, slow_start)",
    );
    // Outlier detection.
    let od = [tp[0], tp[1], "outlierDetection"];
    if at(v, &od).is_some() {
        let mut o = RawOutlier {
            consecutive_5xx: u32_at(v, &[od[0], od[1], od[2], "consecutive5xxErrors"]),
            enforcing_consecutive_5xx: None,
            consecutive_gateway: u32_at(v, &[od[0], od[1], od[2], "consecutiveGatewayErrors"]),
            enforcing_consecutive_gateway: None,
            interval: dur_at(v, &[od[0], od[1], od[2], "interval"], here, into),
            base_ejection: dur_at(v, &[od[0], od[1], od[2], "baseEjectionTime"], here, into),
            max_ejection: None,
            max_ejection_percent: f64_at(v, &[od[0], od[1], od[2], "maxEjectionPercent"]),
            always_eject_one_host: None,
            success_rate_minimum_hosts: None,
            success_rate_request_volume: None,
            success_rate_stdev_factor: None,
            enforcing_success_rate: None,
            failure_percentage_threshold: None,
            failure_percentage_minimum_hosts: None,
            failure_percentage_request_volume: None,
            enforcing_failure_percentage: None,
            state: None,
        };
        // Istio enforces gateway errors fully when it sets them (Envoy's default is 0 %).
        if o.consecutive_gateway.is_some() {
            o.enforcing_consecutive_gateway = Some(100.0);
        }
        // Istio's deprecated consecutiveErrors counts 5xx.
        if o.consecutive_5xx.is_none() {
            o.consecutive_5xx = u32_at(v, &[od[0], od[1], od[2], "consecutiveErrors"]);
        }
        into.policy.outlier.insert(host.clone(), o);
        h.outlier = Some(host.clone());
        rest(
            v,
            &od,
            &[
                "consecutive5xxErrors",
                "consecutiveGatewayErrors",
                "consecutiveErrors",
                "interval",
                "baseEjectionTime",
                "maxEjectionPercent",
            ],
            here,
            into,
            "not modelled (minHealthPercent is the balancer's panic threshold; local-origin splitting has no counterpart)",
        );
    }
    // Connection pool: Envoy's circuit-breaking thresholds and the pool itself.
    let cp = [tp[0], tp[1], "connectionPool"];
    if at(v, &cp).is_some() {
        fn tcp(k: &'static str) -> [&'static str; 5] {
            ["spec", "trafficPolicy", "connectionPool", "tcp", k]
        }
        fn http(k: &'static str) -> [&'static str; 5] {
            ["spec", "trafficPolicy", "connectionPool", "http", k]
        }
        let limits = RawBulkhead::envoy(
            u32_at(v, &tcp("maxConnections")),
            u32_at(v, &http("http1MaxPendingRequests")),
            u32_at(v, &http("http2MaxRequests")),
            u32_at(v, &http("maxRetries")),
        );
        if limits.has_envoy_limits() {
            into.policy.bulkhead.insert(host.clone(), limits);
            h.call.push(("bulkhead".into(), toml_str(&host)));
        }
        let protocol = match str_at(v, &http("h2UpgradePolicy")).as_deref() {
            Some("UPGRADE") => Some("http2".to_string()),
            Some("DO_NOT_UPGRADE") => Some("http1".to_string()),
            _ => None,
        };
        let pool = RawPool {
            protocol,
            max_requests_per_connection: u32_at(v, &http("maxRequestsPerConnection")),
            max_concurrent_streams: u32_at(v, &http("maxConcurrentStreams")),
            connect_timeout: dur_at(v, &tcp("connectTimeout"), here, into),
            idle_timeout: dur_at(v, &http("idleTimeout"), here, into),
            state: None,
        };
        if !pool.is_empty() {
            into.policy.pool.insert(host.clone(), pool);
            h.call.push(("pool".into(), toml_str(&host)));
        }
        rest(
            v,
            &[cp[0], cp[1], cp[2], "tcp"],
            &["maxConnections", "connectTimeout"],
            here,
            into,
            "not modelled (TCP keep-alive and connection lifetimes have no counterpart)",
        );
        rest(
            v,
            &[cp[0], cp[1], cp[2], "http"],
            &[
                "http1MaxPendingRequests",
                "http2MaxRequests",
                "maxRetries",
                "h2UpgradePolicy",
                "maxRequestsPerConnection",
                "maxConcurrentStreams",
                "idleTimeout",
            ],
            here,
            into,
            "not modelled",
        );
    }
    into.hosts.insert(host, h);
}

/// A host's header routes as canary routes: to its canary subset ("canary"), or to another
/// ("stable"); with no weighted split, the routed subset is the canary.
fn canary_routes(h: &Host) -> Vec<RawRoute> {
    h.routes
        .iter()
        .map(|(header, subset)| RawRoute {
            header: Some(header.clone()),
            keys: None,
            to: match &h.canary {
                Some((c, _)) if c != subset => "stable".into(),
                _ => "canary".into(),
            },
        })
        .collect()
}

pub(crate) fn balancer(kind: &str) -> RawBalancer {
    RawBalancer {
        kind: kind.into(),
        choices: None,
        bias: None,
        panic_threshold: 50.0,
        ring_size: None,
        table_size: None,
        weights: None,
        zone_aware: false,
        min_local: 1,
        slow_start: None,
        state: None,
    }
}

pub(crate) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn virtual_service(here: &str, v: &Value, into: &mut Imported) {
    let Some(Value::Sequence(http)) = at(v, &["spec", "http"]) else {
        into.unmapped.push((
            here.into(),
            "spec.http".into(),
            "no HTTP routes: tcp and tls routes are not modelled".into(),
        ));
        return;
    };
    rest(
        v,
        &["spec"],
        &["hosts", "http", "gateways", "exportTo"],
        here,
        into,
        "not modelled",
    );
    // The subset the unmatched route sends everything to: a header route to it splits nothing.
    let default_subset = http
        .iter()
        .filter(|r| r.get("match").is_none())
        .find_map(|r| match r.get("route") {
            Some(Value::Sequence(d)) if d.len() == 1 => str_at(&d[0], &["destination", "subset"]),
            _ => None,
        });
    // Weighted subsets and header routes: (host, subset, weight) over the routes.
    for (r, route) in http.iter().enumerate() {
        let rp = format!("spec.http[{r}]");
        let dests: Vec<(String, Option<String>, f64)> = match route.get("route") {
            Some(Value::Sequence(d)) => d
                .iter()
                .filter_map(|d| {
                    Some((
                        short_host(&str_at(d, &["destination", "host"])?),
                        str_at(d, &["destination", "subset"]),
                        f64_at(d, &["weight"]).unwrap_or(if d.get("weight").is_none() {
                            -1.0
                        } else {
                            0.0
                        }),
                    ))
                })
                .collect(),
            _ => Vec::new(),
        };
        let Some(host) = dests.first().map(|d| d.0.clone()) else {
            into.unmapped.push((
                here.into(),
                rp,
                "no route destination (redirects and direct responses are not modelled)".into(),
            ));
            continue;
        };
        let mut h = into.hosts.get(&host).cloned().unwrap_or_default();
        let matched = route.get("match").is_some();
        let has_default = http.iter().any(|r| r.get("match").is_none());
        for key in route
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(Value::as_str)
        {
            if key == "weight" {
                into.unmapped.push((
                    here.into(),
                    format!("{rp}.weight"),
                    "`weight` belongs on a destination inside `route`; beside it, Istio rejects the route".into(),
                ));
            } else if !["match", "route", "timeout", "retries", "fault", "name"].contains(&key) {
                into.unmapped.push((
                    here.into(),
                    format!("{rp}.{key}"),
                    "not modelled (mirroring, rewrites, redirects, header edits and CORS have no counterpart)".into(),
                ));
            }
        }
        // A matched route's timeout, retries and faults apply to the requests it matches
        // only; a faultline call has one of each, so they come from the unmatched route.
        if matched && has_default {
            for key in ["timeout", "retries", "fault"] {
                if route.get(key).is_some() {
                    into.unmapped.push((
                        here.into(),
                        format!("{rp}.{key}"),
                        "applies only to the requests the route matches; a faultline call has one, taken from the route without a match".into(),
                    ));
                }
            }
        }
        let general = !(matched && has_default);
        // Timeouts and retries: the route's timeout bounds all attempts; a per-try timeout
        // is the call's.
        let timeout = dur_at(route, &["timeout"], here, into).filter(|_| general);
        let per_try = dur_at(route, &["retries", "perTryTimeout"], here, into).filter(|_| general);
        if let Some(retries) = route.get("retries").filter(|_| general) {
            // Istio's `attempts` counts retries; faultline's max_attempts counts the first too.
            let attempts = u32_at(retries, &["attempts"]).unwrap_or(2);
            let retry_on = str_at(retries, &["retryOn"])
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                // Istio's default.
                .or(Some(
                    [
                        "connect-failure",
                        "refused-stream",
                        "unavailable",
                        "cancelled",
                        "retriable-status-codes",
                    ]
                    .map(String::from)
                    .to_vec(),
                ));
            into.policy.retry.insert(
                host.clone(),
                RawRetry {
                    max_attempts: attempts + 1,
                    // Envoy's default back-off, which Istio keeps: 25 ms base, 250 ms cap.
                    backoff: Some(RawBackoff {
                        kind: "envoy".into(),
                        value: None,
                        base: Some(SimDuration::from_millis(25)),
                        cap: Some(SimDuration::from_millis(250)),
                        jitter: None,
                        multiplier: None,
                        randomization: None,
                    }),
                    retry_on,
                    retriable_status_codes: None,
                    budget: None,
                    overall_timeout: timeout.filter(|_| per_try.is_some()),
                    state: None,
                },
            );
            if !h.call.iter().any(|c| c.0 == "retry") {
                h.call.push(("retry".into(), toml_str(&host)));
            }
            rest(
                route,
                &["retries"],
                &["attempts", "perTryTimeout", "retryOn"],
                here,
                into,
                "not modelled (retryRemoteLocalities has no counterpart)",
            );
        }
        if let Some(t) = per_try.or(timeout) {
            h.timeout = Some(t);
        }
        // Fault injection.
        let share =
            |f: &Value| -> f64 { f64_at(f, &["percentage", "value"]).map_or(1.0, |p| p / 100.0) };
        if let Some(d) = at(route, &["fault", "delay"]).filter(|_| general) {
            if let Some(add) = dur_at(d, &["fixedDelay"], here, into) {
                let mut f = RawFault {
                    kind: "latency".into(),
                    ..RawFault::default()
                };
                f.target = Some(host.clone());
                f.add = Some(add);
                f.p = Some(share(d));
                into.fault.push(f);
            }
        }
        if let Some(a) = at(route, &["fault", "abort"]).filter(|_| general) {
            let code = u32_at(a, &["httpStatus"])
                .map(|c| RawStatus::Http(c as i64))
                .or_else(|| str_at(a, &["grpcStatus"]).map(RawStatus::Name));
            match code {
                Some(code) => {
                    let mut f = RawFault {
                        kind: "error".into(),
                        ..RawFault::default()
                    };
                    f.target = Some(host.clone());
                    f.code = Some(code);
                    f.p = Some(share(a));
                    into.fault.push(f);
                }
                None => into.unmapped.push((
                    here.into(),
                    format!("{rp}.fault.abort"),
                    "neither httpStatus nor grpcStatus".into(),
                )),
            }
        }
        if dests.len() == 1 && (0.0..100.0).contains(&dests[0].2) {
            into.unmapped.push((
                here.into(),
                format!("{rp}.route[0].weight"),
                "a weight on a route's only destination: Istio sends a route all of its traffic unless its destinations' weights split it (they must sum to 100)".into(),
            ));
        }
        // A split between two subsets of the host: the smaller share is the canary.
        let subsets: Vec<&(String, Option<String>, f64)> =
            dests.iter().filter(|d| d.1.is_some()).collect();
        if subsets.len() == 2 && dests.iter().all(|d| d.0 == host) && !matched {
            let (a, b) = (subsets[0], subsets[1]);
            let canary = if a.2 < b.2 { a } else { b };
            h.canary = Some((canary.1.clone().unwrap_or_default(), canary.2.max(0.0)));
        } else if dests.len() > 2 || (dests.len() == 2 && dests.iter().any(|d| d.0 != host)) {
            into.unmapped.push((here.into(), format!("{rp}.route"), "a split over more than two subsets, or across hosts: faultline splits a service's traffic between its stable and canary versions (a migration splits between two services)".into()));
        }
        // Header matches that send everything to one subset: canary routes.
        if let Some(Value::Sequence(ms)) = route.get("match") {
            let to = dests.first().and_then(|d| d.1.clone());
            for (k, m) in ms.iter().enumerate() {
                match (m.get("headers"), &to) {
                    (Some(Value::Mapping(_)), Some(subset))
                        if dests.len() == 1 && default_subset.as_ref() == Some(subset) => {}
                    (Some(Value::Mapping(hs)), Some(subset)) if dests.len() == 1 => {
                        for name in hs.keys().filter_map(Value::as_str) {
                            h.routes.push((name.to_string(), subset.clone()));
                            into.unmapped.push((
                                here.into(),
                                format!("{rp}.match[{k}].headers.{name}"),
                                "the header's value match is dropped: a faultline workload sets the header on a share of its requests (`headers = { name = share }`)".into(),
                            ));
                        }
                    }
                    (Some(Value::Mapping(_)), None) if dests.len() == 1 => into.unmapped.push((
                        here.into(),
                        format!("{rp}.match[{k}]"),
                        format!("a header match routed to its own host ({host}): faultline routes between two services with a [[migration]] (`routes = [{{ header = \"...\", to = \"new\" }}]`)"),
                    )),
                    _ => into.unmapped.push((
                        here.into(),
                        format!("{rp}.match[{k}]"),
                        "only header matches routed wholly to one subset are modelled (as canary routes)".into(),
                    )),
                }
            }
        }
        into.hosts.insert(host, h);
    }
}

/// The imported tables as a scenario fragment: policies, then per host what its calls and
/// callers take, its canary, the faults, and what was not mapped.
pub fn fragment(im: &Imported, sources: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Imported by `faultline import istio` from {}.",
        sources.join(", ")
    );
    let _ = writeln!(o, "# Merge into a scenario: the [policy.*] tables and [[fault]] blocks as they are; each call");
    let _ = writeln!(
        o,
        "# to a host takes the attributes shown for it, and its callers the outlier detector."
    );
    o.push('\n');
    o.push_str(&toml::to_string(&im).expect("plain tables"));
    for (host, h) in im.hosts.iter().filter(|(_, h)| **h != Host::default()) {
        let _ = writeln!(o, "\n# Calls to {host}:");
        let mut call = vec![format!("to = {}", toml_str(host))];
        if let Some(t) = h.timeout {
            call.push(format!("timeout = \"{t}\""));
        }
        call.extend(h.call.iter().map(|(k, v)| format!("{k} = {v}")));
        let _ = writeln!(o, "#   calls = [{{ {} }}]", call.join(", "));
        if let Some(d) = &h.outlier {
            let _ = writeln!(
                o,
                "#   and on each service that calls it: outlier = {}",
                toml_str(d)
            );
        }
        if let Some((subset, weight)) = &h.canary {
            let _ = writeln!(
                o,
                "#   [service.canary] of {host} (subset {subset}): weights = [{{ at = \"0s\", weight = {weight} }}]"
            );
        }
        if !h.routes.is_empty() {
            let routes: Vec<String> = canary_routes(h)
                .iter()
                .map(|r| {
                    format!(
                        "{{ header = {}, to = {} }}",
                        toml_str(r.header.as_deref().unwrap_or("")),
                        toml_str(&r.to)
                    )
                })
                .collect();
            let _ = writeln!(o, "#   [service.canary] routes = [{}]", routes.join(", "));
        }
    }
    if !im.unmapped.is_empty() {
        let _ = writeln!(o, "\n# Not mapped ({}):", im.unmapped.len());
        for (doc, field, why) in &im.unmapped {
            let _ = writeln!(o, "#   {doc}: {field}: {why}");
        }
    }
    o
}

/// Applies the imported tables to a scenario: the policies (named after their host, or
/// `istio-<host>` where the scenario has that name already), every call to a host (in
/// `calls`, endpoints and parallel groups) takes its timeout and policies, the faults are
/// added, and a host's split and routes go to its `[service.canary]` when it has one.
/// Returns what could not be applied, one line each.
pub fn apply(raw: &mut RawScenario, im: &Imported) -> Vec<String> {
    let mut notes = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for host in im.hosts.keys() {
        let taken = raw.policy.retry.contains_key(host)
            || raw.policy.balancer.contains_key(host)
            || raw.policy.outlier.contains_key(host)
            || raw.policy.bulkhead.contains_key(host)
            || raw.policy.pool.contains_key(host);
        names.insert(
            host.clone(),
            if taken {
                format!("istio-{host}")
            } else {
                host.clone()
            },
        );
    }
    let name = |h: &String| names.get(h).cloned().unwrap_or_else(|| h.clone());
    for (h, p) in &im.policy.retry {
        raw.policy.retry.insert(name(h), p.clone());
    }
    for (h, p) in &im.policy.balancer {
        raw.policy.balancer.insert(name(h), p.clone());
    }
    for (h, p) in &im.policy.outlier {
        raw.policy.outlier.insert(name(h), p.clone());
    }
    for (h, p) in &im.policy.bulkhead {
        raw.policy.bulkhead.insert(name(h), p.clone());
    }
    for (h, p) in &im.policy.pool {
        raw.policy.pool.insert(name(h), p.clone());
    }
    raw.fault.extend(im.fault.iter().cloned());
    for (host, h) in &im.hosts {
        let n = name(host);
        let mut calls = 0;
        for s in &mut raw.service {
            let mut steps: Vec<&mut RawStep> = s.calls.iter_mut().collect();
            for e in &mut s.endpoint {
                steps.extend(e.calls.iter_mut());
            }
            for step in steps {
                calls += set_calls(step, host, &n, h);
            }
        }
        if calls == 0 {
            notes.push(format!(
                "{host}: no call to it in the scenario: its policies are defined but unused"
            ));
        }
        let canary = raw
            .service
            .iter_mut()
            .find(|s| &s.name == host)
            .and_then(|s| s.canary.as_mut());
        match (canary, &h.canary, h.routes.is_empty()) {
            (_, None, true) => {}
            (Some(c), split, _) => {
                if let Some((_, w)) = split {
                    c.weights = vec![RawWeightStep {
                        at: SimDuration::ZERO,
                        weight: *w,
                    }];
                }
                if !h.routes.is_empty() {
                    c.routes = canary_routes(h);
                }
            }
            (None, _, _) => notes.push(format!(
                "{host}: its split or header routes need a [service.canary] on it (replicas and the new version's work), which the scenario does not have"
            )),
        }
    }
    notes
}

/// Sets the imported attributes on every call to `host` in `step` (and its parallel group);
/// returns how many calls were set.
fn set_calls(step: &mut RawStep, host: &str, name: &str, h: &Host) -> usize {
    let mut n = 0;
    if step.to.as_deref() == Some(host) {
        n += 1;
        if h.timeout.is_some() {
            step.timeout = h.timeout;
        }
        for (k, _) in &h.call {
            let v = Some(name.to_string());
            match k.as_str() {
                "retry" => step.retry = v,
                "balancer" => step.balancer = v,
                "bulkhead" => step.bulkhead = v,
                "pool" => step.pool = v,
                _ => {}
            }
        }
        if h.outlier.is_some() {
            step.outlier = Some(name.to_string());
        }
    }
    for p in step.parallel.iter_mut().flatten() {
        n += set_calls(p, host, name, h);
    }
    n
}
