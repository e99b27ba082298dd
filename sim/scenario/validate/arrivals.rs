//! Workload arrivals: rates, profiles, closed loops and bursts.

use super::*;

pub(super) fn check_probability(cx: &mut Ctx, p: f64, path: TomlPath, below_one: bool) {
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

pub(super) fn check_rate(
    cx: &mut Ctx,
    rate: Option<f64>,
    path: TomlPath,
    allow_zero: bool,
) -> Option<f64> {
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
        Some(r) if r > MAX_RATE => {
            cx.err(
                path,
                format!("a rate of {r:e} requests per second is more than one a nanosecond, the clock's resolution: at most {MAX_RATE:e}"),
            );
            None
        }
        Some(r) => Some(r),
    }
}

/// The highest rate a workload may ask for: one request a nanosecond.
const MAX_RATE: f64 = 1e9;

/// Every field of `RawArrivals` by name, with whether it is set, for "not used by" errors.
pub(super) fn arrival_fields(a: &RawArrivals) -> [(&'static str, bool); 19] {
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

/// The arrival kinds and the fields each takes.
const ARRIVALS: KindTable = KindTable {
    key: "kind",
    kinds: &[
        ("poisson", &["rate"]),
        ("constant", &["rate"]),
        ("ramp", &["from", "to", "over", "process"]),
        ("step", &["steps", "process"]),
        ("spike", &["base", "peak", "at", "for", "process"]),
        ("diurnal", &["mean", "amplitude", "period", "process"]),
        ("closed", &["users", "think"]),
        ("burst", &["size", "at", "every", "count", "same_key"]),
    ],
};

pub(super) fn build_arrivals(cx: &mut Ctx, a: &RawArrivals, path: TomlPath) -> Option<Arrivals> {
    let Some(allowed) = ARRIVALS.takes(&a.kind) else {
        unknown_kind(cx, path.key("kind"), "arrival", &a.kind, &ARRIVALS.names());
        return None;
    };
    let before = cx.problems.len();
    for (field, message) in ARRIVALS.unused(&a.kind, allowed, &arrival_fields(a)) {
        cx.err(path.key(field), message);
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
