//! Envoy `Cluster` settings that map cleanly (load balancing, circuit-breaking thresholds,
//! outlier detection, connection settings), from a bootstrap's `static_resources`, a CDS
//! response's `resources`, a `clusters:` list or a single cluster.

use super::istio::{short_host, Imported};
use crate::scenario::raw::{RawBulkhead, RawOutlier, RawPool};
use crate::time::parse_duration;
use serde_yaml_ng::Value;

/// The clusters of an Envoy document, or None when it holds none.
pub fn clusters(v: &Value) -> Option<Vec<&Value>> {
    fn list(x: Option<&Value>) -> Option<Vec<&Value>> {
        x.and_then(Value::as_sequence).map(|s| s.iter().collect())
    }
    if let Some(c) = list(v.get("static_resources").and_then(|s| s.get("clusters"))) {
        return Some(c);
    }
    if let Some(c) = list(v.get("clusters")) {
        return Some(c);
    }
    if let Some(rs) = list(v.get("resources")) {
        let c: Vec<&Value> = rs
            .into_iter()
            .filter(|r| {
                r.get("@type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with(".Cluster"))
            })
            .collect();
        return (!c.is_empty()).then_some(c);
    }
    let looks = [
        "lb_policy",
        "connect_timeout",
        "outlier_detection",
        "circuit_breakers",
    ];
    (v.get("name").is_some() && looks.iter().any(|k| v.get(*k).is_some())).then(|| vec![v])
}

/// `outbound|9080||reviews.default.svc.cluster.local` (as Istio names them) and
/// `reviews` are the service `reviews`.
pub fn cluster_host(name: &str) -> String {
    short_host(name.rsplit('|').next().unwrap_or(name))
}

/// A number that proto3 YAML writes plain or wrapped (`{ value: 5 }`).
fn num(v: Option<&Value>) -> Option<f64> {
    let v = v?;
    v.as_f64()
        .or_else(|| v.get("value").and_then(Value::as_f64))
}

/// Reads one cluster into `into`.
pub fn cluster(source: &str, c: &Value, into: &mut Imported) {
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let here = format!("{source}: Envoy cluster {name}");
    let host = cluster_host(&name);
    let mut h = into.hosts.get(&host).cloned().unwrap_or_default();
    let mut notes: Vec<(String, String, String)> = Vec::new();
    let dur = |x: Option<&Value>, field: &str, notes: &mut Vec<(String, String, String)>| {
        let s = x?.as_str()?;
        match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                notes.push((here.clone(), field.into(), format!("{s:?}: {e}")));
                None
            }
        }
    };
    let n = |x: &Value, k: &str| num(x.get(k));
    let u = |x: &Value, k: &str| n(x, k).map(|f| f as u32);
    // Load balancing.
    if let Some(p) = c.get("lb_policy").and_then(Value::as_str) {
        let kind = match p {
            "ROUND_ROBIN" => Some("round_robin"),
            "LEAST_REQUEST" => Some("least_request"),
            "RANDOM" => Some("random"),
            "RING_HASH" => Some("ring_hash"),
            "MAGLEV" => Some("maglev"),
            _ => None,
        };
        match kind {
            Some(k) => {
                let mut b = super::istio::balancer(k);
                if let Some(lr) = c.get("least_request_lb_config") {
                    b.choices = u(lr, "choice_count");
                }
                if let Some(rh) = c.get("ring_hash_lb_config") {
                    b.ring_size = u(rh, "minimum_ring_size");
                }
                if let Some(m) = c.get("maglev_lb_config") {
                    b.table_size = u(m, "table_size");
                }
                if let Some(t) = c
                    .get("common_lb_config")
                    .and_then(|x| x.get("healthy_panic_threshold"))
                {
                    if let Some(p) = num(Some(t)) {
                        b.panic_threshold = p;
                    }
                }
                into.policy.balancer.insert(host.clone(), b);
                h.call.retain(|x| x.0 != "balancer");
                h.call
                    .push(("balancer".into(), super::istio::toml_str(&host)));
            }
            None => notes.push((
                here.clone(),
                "lb_policy".into(),
                format!("{p}: no counterpart"),
            )),
        }
    }
    // Circuit-breaking thresholds (the default priority's).
    if let Some(Value::Sequence(ts)) = c.get("circuit_breakers").and_then(|x| x.get("thresholds")) {
        for (k, t) in ts.iter().enumerate() {
            let priority = t
                .get("priority")
                .and_then(Value::as_str)
                .unwrap_or("DEFAULT");
            if priority != "DEFAULT" {
                notes.push((
                    here.clone(),
                    format!("circuit_breakers.thresholds[{k}]"),
                    "priority HIGH: faultline has one priority of routing".into(),
                ));
                continue;
            }
            let limits = RawBulkhead::envoy(
                u(t, "max_connections"),
                u(t, "max_pending_requests"),
                u(t, "max_requests"),
                u(t, "max_retries"),
            );
            into.policy.bulkhead.insert(host.clone(), limits);
            if !h.call.iter().any(|x| x.0 == "bulkhead") {
                h.call
                    .push(("bulkhead".into(), super::istio::toml_str(&host)));
            }
            if t.get("retry_budget").is_some() {
                notes.push((
                    here.clone(),
                    format!("circuit_breakers.thresholds[{k}].retry_budget"),
                    "a retry budget belongs to the call's retry policy in faultline (`budget = { kind = \"envoy\", ... }`), which a cluster does not name".into(),
                ));
            }
        }
    }
    // Outlier detection: Envoy's own field names, ours.
    if let Some(od) = c.get("outlier_detection") {
        let o = RawOutlier {
            consecutive_5xx: u(od, "consecutive_5xx"),
            enforcing_consecutive_5xx: n(od, "enforcing_consecutive_5xx"),
            consecutive_gateway: u(od, "consecutive_gateway_failure"),
            enforcing_consecutive_gateway: n(od, "enforcing_consecutive_gateway_failure"),
            interval: dur(od.get("interval"), "outlier_detection.interval", &mut notes),
            base_ejection: dur(
                od.get("base_ejection_time"),
                "outlier_detection.base_ejection_time",
                &mut notes,
            ),
            max_ejection: dur(
                od.get("max_ejection_time"),
                "outlier_detection.max_ejection_time",
                &mut notes,
            ),
            max_ejection_percent: n(od, "max_ejection_percent"),
            always_eject_one_host: od.get("always_eject_one_host").and_then(Value::as_bool),
            success_rate_minimum_hosts: u(od, "success_rate_minimum_hosts"),
            success_rate_request_volume: n(od, "success_rate_request_volume").map(|x| x as u64),
            // Envoy writes the factor times 1000.
            success_rate_stdev_factor: n(od, "success_rate_stdev_factor").map(|x| x / 1000.0),
            enforcing_success_rate: n(od, "enforcing_success_rate"),
            failure_percentage_threshold: n(od, "failure_percentage_threshold"),
            failure_percentage_minimum_hosts: u(od, "failure_percentage_minimum_hosts"),
            failure_percentage_request_volume: n(od, "failure_percentage_request_volume")
                .map(|x| x as u64),
            enforcing_failure_percentage: n(od, "enforcing_failure_percentage"),
            state: None,
        };
        into.policy.outlier.insert(host.clone(), o);
        h.outlier = Some(host.clone());
    }
    // Connections.
    let http2 = c.get("http2_protocol_options").is_some()
        || c.get("typed_extension_protocol_options").is_some_and(|t| {
            serde_yaml_ng::to_string(t).is_ok_and(|s| s.contains("http2_protocol_options"))
        });
    let common = c.get("common_http_protocol_options");
    let pool = RawPool {
        protocol: http2.then(|| "http2".to_string()),
        max_requests_per_connection: u(c, "max_requests_per_connection")
            .or(common.and_then(|x| u(x, "max_requests_per_connection"))),
        max_concurrent_streams: None,
        connect_timeout: dur(c.get("connect_timeout"), "connect_timeout", &mut notes),
        idle_timeout: dur(
            common.and_then(|x| x.get("idle_timeout")),
            "common_http_protocol_options.idle_timeout",
            &mut notes,
        ),
        state: None,
    };
    if !pool.is_empty() {
        into.policy.pool.insert(host.clone(), pool);
        if !h.call.iter().any(|x| x.0 == "pool") {
            h.call.push(("pool".into(), super::istio::toml_str(&host)));
        }
    }
    let known = [
        "name",
        "@type",
        "lb_policy",
        "least_request_lb_config",
        "ring_hash_lb_config",
        "maglev_lb_config",
        "common_lb_config",
        "circuit_breakers",
        "outlier_detection",
        "connect_timeout",
        "http2_protocol_options",
        "typed_extension_protocol_options",
        "common_http_protocol_options",
        "max_requests_per_connection",
    ];
    for k in c
        .as_mapping()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(Value::as_str)
    {
        if known.contains(&k) {
            continue;
        }
        let why = match k {
            "type" | "load_assignment" | "eds_cluster_config" | "dns_lookup_family" => {
                "endpoints and their discovery come from the scenario's replicas and [registry]"
            }
            "health_checks" => "active health checks are the scenario's [registry] checks",
            "transport_socket" => "TLS is the [mesh]'s mtls setting",
            _ => "not modelled",
        };
        notes.push((here.clone(), k.to_string(), why.to_string()));
    }
    into.unmapped.extend(notes);
    into.hosts.insert(host, h);
}
