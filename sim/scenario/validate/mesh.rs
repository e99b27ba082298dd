//! `[mesh]` (sidecars, mTLS, authorization, the proxies' policies), a service's `sidecar`, and `[policy.pool.NAME]`.

use super::*;
use crate::policy::pool::{Config as PoolConfig, Protocol};

/// Every `[policy.pool.NAME]`, by name.
pub(super) fn build_pools(cx: &mut Ctx, raw: &RawScenario) -> Vec<PoolPolicy> {
    let mut out = Vec::new();
    for (name, p) in &raw.policy.pool {
        let path = root().key("policy").key("pool").key(name);
        let d = PoolConfig::default();
        let protocol = match p.protocol.as_deref().unwrap_or("http1") {
            "http1" => Protocol::Http1,
            "http2" => Protocol::Http2,
            other => {
                cx.err(
                    path.key("protocol"),
                    unknown("protocol", other, &["http1", "http2"], "valid", ""),
                );
                Protocol::Http1
            }
        };
        if p.max_concurrent_streams == Some(0) {
            cx.err(
                path.key("max_concurrent_streams"),
                "max_concurrent_streams must be at least 1",
            );
        }
        if p.max_concurrent_streams.is_some() && protocol == Protocol::Http1 {
            cx.err(
                path.key("max_concurrent_streams"),
                "max_concurrent_streams is an HTTP/2 setting: add protocol = \"http2\" (HTTP/1.1 carries one request at a time per connection)",
            );
        }
        for (key, v) in [
            ("connect_timeout", p.connect_timeout),
            ("idle_timeout", p.idle_timeout),
        ] {
            if v == Some(SimDuration::ZERO) {
                cx.err(path.key(key), format!("{key} must be longer than 0s"));
            }
        }
        out.push(PoolPolicy {
            name: name.clone(),
            config: PoolConfig {
                protocol,
                max_requests_per_connection: p
                    .max_requests_per_connection
                    .unwrap_or(d.max_requests_per_connection),
                max_concurrent_streams: p
                    .max_concurrent_streams
                    .unwrap_or(d.max_concurrent_streams),
                connect_timeout: p.connect_timeout.unwrap_or(d.connect_timeout),
                idle_timeout: p.idle_timeout.unwrap_or(d.idle_timeout),
            },
        });
    }
    out
}

/// Default proxy CPU per request: Istio's published sidecar overhead is of this order
/// (a fraction of a millisecond per request through both proxies at moderate load).
const PROXY_LATENCY_NS: u64 = 250_000;
const PROXY_WORKERS: u32 = 2;
const PROXY_QUEUE: u32 = 1024;
/// Default handshake work (ECDHE key exchange and certificate checks, both ends).
const HANDSHAKE_NS: u64 = 1_000_000;
const AUTHZ_NS: u64 = 100_000;

fn proxy(cx: &mut Ctx, raw: &RawProxy, base: Option<&ProxySpec>, path: TomlPath) -> ProxySpec {
    let latency = match &raw.latency {
        Some(d) => build_dist(cx, d, path.key("latency")),
        None => None,
    }
    .or_else(|| base.map(|b| b.latency.clone()))
    .unwrap_or_else(|| Dist::exp(SimDuration(PROXY_LATENCY_NS)).expect("valid mean"));
    let workers = raw
        .workers
        .or(base.map(|b| b.workers))
        .unwrap_or(PROXY_WORKERS);
    if workers == 0 {
        cx.err(path.key("workers"), "a proxy needs at least 1 worker");
    }
    ProxySpec {
        latency,
        workers,
        queue: raw.queue.or(base.map(|b| b.queue)).unwrap_or(PROXY_QUEUE),
    }
}

fn constant(ns: u64) -> Dist {
    Dist::Constant(SimDuration(ns))
}

/// Whether service `i` has a sidecar under `[mesh]` (enabled or not): the mesh's
/// `services` (default all) unless its own `sidecar` says otherwise.
pub(super) fn has_sidecar(raw: &RawScenario, i: usize) -> bool {
    let Some(m) = raw.mesh.as_ref() else {
        return false;
    };
    match &raw.service[i].sidecar {
        Some(RawSidecar::On(on)) => *on,
        Some(RawSidecar::Proxy(_)) => true,
        None => m
            .services
            .as_ref()
            .map_or(true, |s| s.contains(&raw.service[i].name)),
    }
}

/// The mesh, or `None` without one (or with `enabled = false`).
pub(super) fn build_mesh(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    pools: &[PoolPolicy],
) -> Option<MeshSpec> {
    let mp = root().key("mesh");
    let Some(m) = raw.mesh.as_ref() else {
        for (i, s) in raw.service.iter().enumerate() {
            if s.sidecar.is_some() {
                cx.err(
                    root().key("service").index(i).key("sidecar"),
                    "a sidecar needs a [mesh] table (the mesh's proxies, mTLS and policies)",
                );
            }
        }
        return None;
    };
    let base = proxy(cx, &m.proxy, None, mp.key("proxy"));
    for (k, name) in m.services.iter().flatten().enumerate() {
        resolve(cx, name, mp.key("services").index(k));
    }
    let mut proxies = Vec::new();
    for (i, s) in raw.service.iter().enumerate() {
        let sp = root().key("service").index(i).key("sidecar");
        proxies.push(match &s.sidecar {
            _ if !has_sidecar(raw, i) => None,
            Some(RawSidecar::Proxy(p)) => Some(proxy(cx, p, Some(&base), sp)),
            _ => Some(base.clone()),
        });
    }
    let mtls = m.mtls.as_ref().map(|t| {
        t.handshake
            .as_ref()
            .and_then(|d| build_dist(cx, d, mp.key("mtls").key("handshake")))
            .unwrap_or_else(|| constant(HANDSHAKE_NS))
    });
    let authz = m.authz.as_ref().map(|a| {
        let ap = mp.key("authz");
        let mut deny = Vec::new();
        for (k, d) in a.deny.iter().enumerate() {
            let dp = ap.key("deny").index(k);
            let from = resolve(cx, &d.from, dp.key("from"));
            let to = resolve(cx, &d.to, dp.key("to"));
            if let (Some(f), Some(t)) = (from, to) {
                if proxies[t.0 as usize].is_none() {
                    cx.err(
                        dp.key("to"),
                        format!("{:?} has no sidecar, so nothing checks who calls it: mesh it, or drop this rule", d.to),
                    );
                }
                deny.push((f, t));
            }
        }
        AuthzSpec {
            latency: a
                .latency
                .as_ref()
                .and_then(|d| build_dist(cx, d, ap.key("latency")))
                .unwrap_or_else(|| constant(AUTHZ_NS)),
            deny,
        }
    });
    let pool = match m.pool.as_deref() {
        None => PoolConfig::default(),
        Some(name) => match pools.iter().find(|p| p.name == name) {
            Some(p) => p.config,
            None => {
                let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                let none = format!("none is defined: add [policy.pool.{name}]");
                cx.err(
                    mp.key("pool"),
                    unknown("pool policy", name, &names, "defined", &none),
                );
                PoolConfig::default()
            }
        },
    };
    m.enabled.then_some(MeshSpec {
        proxies,
        mtls,
        authz,
        pool,
    })
}

/// The proxies' own policies (`[mesh] retry, outlier, timeout`) on every call between two
/// meshed services that names none: the proxy applies them, with the proxy's state (one per
/// caller instance by default).
pub(super) fn apply_mesh_policies(
    cx: &mut Ctx,
    raw: &RawScenario,
    pols: &Policies,
    mesh: Option<&MeshSpec>,
    services: &mut [ServiceSpec],
) {
    let (Some(m), Some(rm)) = (mesh, raw.mesh.as_ref()) else {
        return;
    };
    let mp = root().key("mesh");
    let retry = pols.pick(cx, "retry", rm.retry.as_deref(), mp.key("retry"), None, &mp);
    let outlier = pols.pick(
        cx,
        "outlier",
        rm.outlier.as_deref(),
        mp.key("outlier"),
        None,
        &mp,
    );
    if rm.timeout == Some(SimDuration::ZERO) {
        cx.err(mp.key("timeout"), "timeout must be longer than 0s");
    }
    for (from, s) in services.iter_mut().enumerate() {
        for e in &mut s.endpoints {
            for step in &mut e.steps {
                for c in step.calls_mut() {
                    if !m.meshed(from, c.to.0 as usize) || c.publish.is_some() {
                        continue;
                    }
                    if c.retry.is_none() && c.hedge.is_none() {
                        c.retry = retry;
                    }
                    if c.outlier.is_none() {
                        c.outlier = outlier;
                    }
                    if c.timeout.is_none() {
                        c.timeout = rm.timeout;
                    }
                }
            }
        }
    }
}
