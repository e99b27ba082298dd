//! Faults (`[[fault]]`), and the timeouts a lossy network makes necessary.

use super::*;

/// The fault kinds and the kind-specific fields each takes (every kind takes `target` or
/// `zone`, `at`, `length`, `instance`; `p` and `peer` are checked on their own).
const FAULTS: KindTable = KindTable {
    key: "kind",
    kinds: &[
        ("latency", &["add"]),
        ("error", &["code"]),
        ("slow", &["multiply", "workers"]),
        ("crash", &[]),
        ("proxy_crash", &[]),
        ("pause", &[]),
        ("random_crash", &["mttf", "mttr"]),
        ("gc", &["every", "pause", "periodic"]),
        ("zone_outage", &[]),
        ("host_outage", &["host"]),
        ("cpu_hog", &["host", "threads"]),
        ("zone_partition", &[]),
        ("registry_outage", &[]),
        ("registry_partition", &[]),
        ("partition", &[]),
        ("reset", &[]),
        ("loss", &[]),
    ],
};

/// The `[[fault]]` list, resolved and checked.
pub(super) fn build_faults(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    zone_names: &[String],
) -> Vec<FaultSpec> {
    let mut faults = Vec::new();
    let host_names = super::hosts::host_names(raw);
    for (i, f) in raw.fault.iter().enumerate() {
        let p = root().key("fault").index(i);
        let zonal = matches!(
            f.kind.as_str(),
            "zone_outage" | "zone_partition" | "registry_outage" | "host_outage" | "cpu_hog"
        );
        let hostly = matches!(f.kind.as_str(), "host_outage" | "cpu_hog");
        if f.kind.starts_with("registry_") && raw.registry.is_none() {
            cx.err(
                p.key("kind"),
                format!("a {} fault needs a [registry]", f.kind),
            );
        }
        let target = match (&f.target, zonal) {
            (Some(t), false) => resolve(cx, t, p.key("target")),
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
            (Some(_), true) if hostly => {
                cx.err(
                    p.key("target"),
                    "a host fault names `host`, not a target service: it hits every instance on that host",
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
        let host = match (&f.host, hostly) {
            (Some(h), true) => super::hosts::host_index(cx, &host_names, h, p.key("host")),
            (None, true) => {
                cx.err(
                    p.clone(),
                    format!(
                        "a {} fault needs host = \"<host>\" (a [[host]] name)",
                        f.kind
                    ),
                );
                None
            }
            (_, false) => None,
        };
        if (!zonal || hostly) && (f.zone.is_some() || f.peer_zone.is_some()) {
            cx.err(
                p.key("zone"),
                "`zone` and `peer_zone` are for zone_outage and zone_partition faults",
            );
        }
        let peer = f
            .peer
            .as_deref()
            .and_then(|n| resolve(cx, n, p.key("peer")));
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
        check_probability(cx, share, p.key("p"), false);
        let kind = match f.kind.as_str() {
            "latency" => match f.add {
                Some(d) => Some(FaultKind::Delay(d)),
                None => {
                    cx.err(p.key("add"), "a latency fault needs add = \"<duration>\" (use kind = \"slow\" with multiply = 3.0 to slow the work)");
                    None
                }
            },
            "error" => {
                // An error status: HTTP 400–599 or a gRPC status other than OK.
                let status = match &f.code {
                    None => Some(Status::INTERNAL),
                    Some(RawStatus::Http(c)) => u16::try_from(*c).ok().and_then(Status::http),
                    Some(RawStatus::Name(n)) => Status::parse(n),
                }
                .and_then(ErrorStatus::new);
                if status.is_none() {
                    let given = match &f.code {
                        Some(RawStatus::Http(c)) => c.to_string(),
                        Some(RawStatus::Name(n)) => format!("{n:?}"),
                        None => String::new(),
                    };
                    cx.err(p.key("code"), format!("code {given} is not an error status: use an HTTP code from 400 to 599 (500 an error, 502/503/504 unavailable, 429 rate limited, 403 denied) or a gRPC status other than OK ({})", crate::policy::status::GRPC_NAMES[1..].join(", ")));
                }
                status.map(FaultKind::Abort)
            }
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
            "proxy_crash" => {
                let sidecar = target.is_some_and(|t| super::mesh::has_sidecar(raw, t.0 as usize));
                if !sidecar && target.is_some() {
                    cx.err(p.key("kind"), "a proxy_crash needs a target with a sidecar: add [mesh] (and mesh the target)");
                }
                Some(FaultKind::ProxyCrash)
            }
            "registry_outage" => Some(FaultKind::RegistryOutage),
            "registry_partition" => Some(FaultKind::RegistryPartition),
            "zone_outage" => zone_of(cx, f.zone.as_deref(), "zone").map(FaultKind::ZoneOutage),
            "zone_partition" => {
                let a = zone_of(cx, f.zone.as_deref(), "zone");
                let b = zone_of(cx, f.peer_zone.as_deref(), "peer_zone");
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
            "host_outage" => host.map(FaultKind::HostOutage),
            "cpu_hog" => match f.threads {
                Some(threads) if (1..=100_000).contains(&threads) => {
                    host.map(|host| FaultKind::CpuHog { host, threads })
                }
                _ => {
                    cx.err(p.key("threads"), "a cpu_hog fault needs threads = <n from 1 to 100000>: runnable threads outside the model competing for the host's cores");
                    None
                }
            },
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
            "gc" => match (f.every, f.pause) {
                (Some(every), Some(pause))
                    if pause.0 > 0
                        && every.0 > 0
                        && (!f.periodic.unwrap_or(false) || pause < every) =>
                {
                    Some(FaultKind::Gc {
                        every,
                        pause,
                        periodic: f.periodic.unwrap_or(false),
                    })
                }
                _ => {
                    cx.err(p.clone(), "a gc fault needs every and pause, both longer than 0s (and pause shorter than every when periodic = true): pauses of `pause` at a fixed period or after exponential gaps of mean `every`");
                    None
                }
            },
            "partition" => Some(FaultKind::Partition),
            "reset" => Some(FaultKind::Reset),
            "loss" => Some(FaultKind::Loss(share)),
            other => {
                unknown_kind(cx, p.key("kind"), "fault", other, &FAULTS.names());
                None
            }
        };
        if let Some(takes) = FAULTS.takes(&f.kind) {
            let set = [
                ("add", f.add.is_some()),
                ("multiply", f.multiply.is_some()),
                ("workers", f.workers.is_some()),
                ("code", f.code.is_some()),
                ("mttf", f.mttf.is_some()),
                ("mttr", f.mttr.is_some()),
                ("host", f.host.is_some()),
                ("threads", f.threads.is_some()),
            ];
            for (key, message) in FAULTS.unused(&f.kind, takes, &set) {
                cx.err(p.key(key), message);
            }
        }
        if let (Some(kind), Some(target)) = (kind, target) {
            let at = SimTime::ZERO.after(f.at);
            let until = f
                .length
                .map_or(SimTime::ZERO.after(raw.sim.duration), |l| at.after(l));
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

    faults
}

/// Lost messages are only noticed by a timeout: without one the caller would wait forever.
pub(super) fn check_timeouts_when_lossy(
    cx: &mut Ctx,
    raw: &RawScenario,
    links: &[LinkSpec],
    faults: &[FaultSpec],
    services: &[ServiceSpec],
) {
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
                let calls = e.steps.iter().flat_map(|st| st.calls().iter());
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
}
