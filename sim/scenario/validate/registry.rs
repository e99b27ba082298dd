//! The service registry, health checks and discovery caches (`[registry]`).

use super::*;

/// `[registry]`.
pub(super) fn build_registry(
    cx: &mut Ctx,
    r: &RawRegistry,
    raw: &RawScenario,
    services: &[ServiceSpec],
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
) -> Option<RegistrySpec> {
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
    let server = build_server(cx, r, raw, services, resolve);
    Some(RegistrySpec {
        server,
        leases,
        heartbeat,
        tick,
        cache_ttl: r.cache_ttl,
        startup: r.startup,
        checks,
    })
}

/// `[registry] service = ...` and its clients' request policy.
fn build_server(
    cx: &mut Ctx,
    r: &RawRegistry,
    raw: &RawScenario,
    services: &[ServiceSpec],
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
) -> Option<RegistryServerSpec> {
    let p = root().key("registry");
    let Some(name) = &r.service else {
        for (key, set) in [
            ("timeout", r.timeout.is_some()),
            ("retry", r.retry.is_some()),
            ("backoff_bound", r.backoff_bound.is_some()),
        ] {
            if set {
                cx.err(
                    p.key(key),
                    format!("`{key}` applies to requests to a registry service: set `service = \"...\"` too (without one the registry answers at once and never fails)"),
                );
            }
        }
        return None;
    };
    let service = resolve(cx, name, p.key("service"))?;
    let timeout = r.timeout.unwrap_or(SimDuration::from_secs(5));
    if timeout.0 == 0 {
        cx.err(p.key("timeout"), "timeout must be longer than 0s");
    }
    if r.retry == Some(SimDuration::ZERO) {
        cx.err(p.key("retry"), "retry must be longer than 0s");
    }
    let default_bound = if r.kind == "eureka" { 10 } else { 1 };
    let backoff_bound = r.backoff_bound.unwrap_or(default_bound);
    if !(1..=1000).contains(&backoff_bound) {
        cx.err(
            p.key("backoff_bound"),
            format!("backoff_bound is between 1 (no backoff) and 1000, not {backoff_bound}"),
        );
    }
    // The registry's own instances are found by configuration, not through themselves.
    for (from, svc) in services.iter().enumerate() {
        let calls_it = svc.endpoints.iter().find(|e| {
            e.steps
                .iter()
                .any(|st| st.calls().iter().any(|c| c.to == service))
        });
        if let Some(e) = calls_it {
            cx.err(
                p.key("service"),
                format!(
                    "service {:?} (endpoint {:?}) calls {name:?}, the registry's service: the registry is reached by discovery requests only; call another service",
                    raw.service[from].name, e.name
                ),
            );
        }
    }
    let s = &raw.service[service.0 as usize];
    let endpoints = RegistryOp::ALL.map(|op| {
        s.endpoint
            .iter()
            .position(|e| e.name == op.name())
            .unwrap_or(0) as u32
    });
    Some(RegistryServerSpec {
        service,
        endpoints,
        timeout,
        retry: r.retry,
        backoff_bound: backoff_bound.clamp(1, 1000),
    })
}
