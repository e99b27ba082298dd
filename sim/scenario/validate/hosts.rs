//! Hosts (`[[host]]`) and placement: which machine each instance slot runs on, decided once, in declaration order.

use super::*;

/// Hosts at most (each is a CPU the model keeps).
const MAX_HOSTS: u32 = 100_000;
/// Cores per host at most.
const MAX_CORES: u32 = 4_096;

/// The names one `[[host]]` table declares: its name, or with `count` `NAME-1` … `NAME-count`.
fn names_of(h: &RawHost) -> Vec<String> {
    match h.count {
        None => vec![h.name.clone()],
        Some(n) => (1..=n.min(MAX_HOSTS))
            .map(|k| format!("{}-{k}", h.name))
            .collect(),
    }
}

/// Every host's name, in declaration order.
pub(super) fn host_names(raw: &RawScenario) -> Vec<String> {
    raw.host.iter().flat_map(names_of).collect()
}

/// The index of host `name`, reporting an unknown one at `at`.
pub(super) fn host_index(cx: &mut Ctx, names: &[String], name: &str, at: TomlPath) -> Option<u32> {
    let found = names.iter().position(|n| n == name);
    if found.is_none() {
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        cx.err(
            at,
            unknown(
                "host",
                name,
                &known,
                "hosts",
                "hosts: none (add a [[host]])",
            ),
        );
    }
    found.map(|k| k as u32)
}

/// The `[[host]]` list, and each service's slots placed on them (`ServiceSpec::hosts`).
/// Services' zones must be set already: a slot goes only to a host of its zone.
pub(super) fn build_hosts(
    cx: &mut Ctx,
    raw: &RawScenario,
    zone_names: &[String],
    services: &mut [ServiceSpec],
) -> Vec<HostSpec> {
    let mut hosts = Vec::new();
    for (k, h) in raw.host.iter().enumerate() {
        let p = root().key("host").index(k);
        check_name(cx, p.key("name"), "host", &h.name);
        if h.cores == 0 || h.cores > MAX_CORES {
            cx.err(
                p.key("cores"),
                format!("cores is from 1 to {MAX_CORES}, got {}", h.cores),
            );
        }
        if let Some(n) = h.count {
            if n == 0 || n > MAX_HOSTS {
                cx.err(
                    p.key("count"),
                    format!("count is from 1 to {MAX_HOSTS}, got {n}"),
                );
            }
        }
        let zone = match &h.zone {
            None => u32::MAX,
            Some(z) => match zone_names.iter().position(|n| n == z) {
                Some(i) => i as u32,
                None => {
                    let known: Vec<&str> = zone_names.iter().map(String::as_str).collect();
                    cx.err(
                        p.key("zone"),
                        unknown(
                            "zone",
                            z,
                            &known,
                            "zones used by services",
                            "zones: none (set `zones` on services)",
                        ),
                    );
                    u32::MAX
                }
            },
        };
        for name in names_of(h) {
            if hosts.iter().any(|o: &HostSpec| o.name == name) {
                cx.err(p.key("name"), format!("a second host named {name:?}"));
            }
            hosts.push(HostSpec {
                name,
                cores: h.cores.clamp(1, MAX_CORES),
                zone,
            });
        }
    }
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    // Cores requested on each host so far.
    let mut requested = vec![0.0f64; hosts.len()];
    for (i, s) in raw.service.iter().enumerate() {
        let p = root().key("service").index(i).key("placement");
        let place = s.placement.clone().unwrap_or_default();
        if hosts.is_empty() {
            if s.placement.is_some() {
                cx.err(
                    p,
                    "placement needs machines to place on: add [[host]] tables",
                );
            }
            continue;
        }
        let pack = match place.strategy.as_deref() {
            None | Some("spread") => false,
            Some("pack") => true,
            Some(other) => {
                cx.err(
                    p.key("strategy"),
                    unknown(
                        "placement strategy",
                        other,
                        &["spread", "pack"],
                        "strategies",
                        "",
                    ),
                );
                false
            }
        };
        let cpu = place.cpu.unwrap_or(1.0);
        if !(cpu.is_finite() && cpu > 0.0) {
            cx.err(
                p.key("cpu"),
                format!("cpu is the cores each instance requests, above 0, got {cpu}"),
            );
        }
        let allowed: Option<Vec<u32>> = place.hosts.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(k, n)| host_index(cx, &names, n, p.key("hosts").index(k)))
                .collect()
        });
        let Some(spec) = services.get_mut(i) else {
            continue;
        };
        let mut mine = vec![0u32; hosts.len()];
        let mut placed = Vec::with_capacity(spec.slots() as usize);
        for slot in 0..spec.slots() as usize {
            let zone = spec.zones.get(slot).copied();
            let eligible: Vec<usize> = (0..hosts.len())
                .filter(|&h| allowed.as_ref().map_or(true, |a| a.contains(&(h as u32))))
                .filter(|&h| hosts[h].zone == u32::MAX || Some(hosts[h].zone) == zone)
                .collect();
            let Some(h) = choose(&eligible, &hosts, &requested, &mine, cpu, pack) else {
                if allowed.as_ref().is_some_and(Vec::is_empty) {
                    // Every name in `placement.hosts` is unknown: reported above.
                    break;
                }
                let why = match zone {
                    Some(z) => format!(
                        " in zone {:?}: give a [[host]] that zone{}",
                        zone_names[z as usize],
                        if allowed.is_some() {
                            ", or widen `placement.hosts`"
                        } else {
                            ""
                        }
                    ),
                    None => ": `placement.hosts` names no host it may use".into(),
                };
                cx.err(
                    p.clone(),
                    format!("no host can take {:?}'s instance {slot}{why}", s.name),
                );
                break;
            };
            requested[h] += cpu;
            mine[h] += 1;
            placed.push(h as u32);
        }
        spec.hosts = placed;
        spec.cpu = cpu;
    }
    hosts
}

/// The host for one more instance: `pack` takes the most requested host the instance still
/// fits on (Kubernetes' MostAllocated scoring), `spread` the one with fewest instances of this
/// service, then the least requested share (LeastAllocated with anti-affinity). Ties go to
/// the first declared. When the instance fits nowhere it goes to the least requested share
/// (overcommitted: requests are promises, the cores are what is shared).
fn choose(
    eligible: &[usize],
    hosts: &[HostSpec],
    requested: &[f64],
    mine: &[u32],
    cpu: f64,
    pack: bool,
) -> Option<usize> {
    let share = |h: usize| requested[h] / hosts[h].cores as f64;
    let fits = |h: usize| requested[h] + cpu <= hosts[h].cores as f64 + 1e-9;
    let least = || {
        eligible
            .iter()
            .copied()
            .min_by(|&a, &b| share(a).total_cmp(&share(b)))
    };
    if pack {
        let most_fitting = eligible
            .iter()
            .copied()
            .filter(|&h| fits(h))
            // `max_by` keeps the last of equals: reverse so the first declared wins.
            .rev()
            .max_by(|&a, &b| share(a).total_cmp(&share(b)));
        return most_fitting.or_else(least);
    }
    let fitting: Vec<usize> = eligible.iter().copied().filter(|&h| fits(h)).collect();
    let pool = if fitting.is_empty() {
        eligible
    } else {
        &fitting
    };
    pool.iter()
        .copied()
        .min_by(|&a, &b| mine[a].cmp(&mine[b]).then(share(a).total_cmp(&share(b))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(cores: &[u32]) -> Vec<HostSpec> {
        cores
            .iter()
            .enumerate()
            .map(|(k, &c)| HostSpec {
                name: format!("h{k}"),
                cores: c,
                zone: u32::MAX,
            })
            .collect()
    }

    /// Places `n` instances of one service, returning their hosts.
    fn place(cores: &[u32], pre: &[f64], n: usize, pack: bool) -> Vec<usize> {
        let hs = hosts(cores);
        let mut requested = pre.to_vec();
        let mut mine = vec![0; hs.len()];
        let all: Vec<usize> = (0..hs.len()).collect();
        (0..n)
            .map(|_| {
                let h = choose(&all, &hs, &requested, &mine, 1.0, pack).unwrap();
                requested[h] += 1.0;
                mine[h] += 1;
                h
            })
            .collect()
    }

    #[test]
    fn spread_puts_replicas_on_different_hosts_first() {
        assert_eq!(place(&[4, 4, 4], &[0.0; 3], 4, false), vec![0, 1, 2, 0]);
        // Among hosts without a replica, the least requested goes first.
        assert_eq!(place(&[4, 4, 4], &[2.0, 0.0, 1.0], 3, false), vec![1, 2, 0]);
    }

    #[test]
    fn pack_fills_the_fullest_host_that_fits_before_the_next() {
        assert_eq!(place(&[2, 2, 2], &[0.0; 3], 5, true), vec![0, 0, 1, 1, 2]);
        // A partly used host is fuller, so it fills first.
        assert_eq!(place(&[4, 4], &[0.0, 2.0], 3, true), vec![1, 1, 0]);
    }

    #[test]
    fn an_instance_that_fits_nowhere_goes_to_the_least_requested_share() {
        assert_eq!(place(&[1, 2], &[0.0; 2], 4, true), vec![0, 1, 1, 0]);
        assert_eq!(place(&[1, 1], &[0.0; 2], 3, false), vec![0, 1, 0]);
    }
}
