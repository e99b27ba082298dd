//! `[explore]`: the bounds of `faultline explore`'s search, checked against the scenario.

use super::*;

/// Checks `[explore]`: known kinds that the scenario can have, services that exist, a window
/// inside the run.
pub(super) fn check_explore(cx: &mut Ctx, raw: &RawScenario, zones: &[String]) {
    let Some(e) = &raw.explore else { return };
    let p = root().key("explore");
    for (k, kind) in e.kinds.iter().flatten().enumerate() {
        if !EXPLORE_KINDS.contains(&kind.as_str()) {
            cx.err(
                p.key("kinds").index(k),
                format!(
                    "unknown kind {kind:?}: explore draws {}",
                    EXPLORE_KINDS.join(", ")
                ),
            );
        } else if kind == "zone_outage" && zones.is_empty() {
            cx.err(
                p.key("kinds").index(k),
                "zone_outage needs zones: no service sets `zones`",
            );
        } else if kind == "registry_outage" && raw.registry.is_none() {
            cx.err(
                p.key("kinds").index(k),
                "registry_outage needs a [registry]",
            );
        }
    }
    if e.kinds.as_ref().is_some_and(|k| k.is_empty()) {
        cx.err(
            p.key("kinds"),
            "give at least one kind, or leave kinds out for all",
        );
    }
    let names: Vec<&str> = raw.service.iter().map(|s| s.name.as_str()).collect();
    for (k, t) in e.targets.iter().flatten().enumerate() {
        if !names.contains(&t.as_str()) {
            cx.err(
                p.key("targets").index(k),
                format!("no service is named {t:?}; services: {}", names.join(", ")),
            );
        }
    }
    if e.targets.as_ref().is_some_and(|t| t.is_empty()) {
        cx.err(
            p.key("targets"),
            "give at least one service, or leave targets out for all",
        );
    }
    if let Some(m) = e.max_faults {
        if !(1..=10).contains(&m) {
            cx.err(
                p.key("max_faults"),
                format!("max_faults must be 1 to 10, not {m}"),
            );
        }
    }
    let from = e.from.unwrap_or(raw.sim.warmup);
    let until = e.until.unwrap_or(raw.sim.duration);
    if until > raw.sim.duration {
        cx.err(
            p.key("until"),
            format!(
                "until ({until}) is past the run's end ({})",
                raw.sim.duration
            ),
        );
    }
    if from >= until {
        cx.err(
            p.key(if e.from.is_some() { "from" } else { "until" }),
            format!("the window from {from} to {until} is empty"),
        );
    }
    if e.longest.is_some_and(|l| l < SimDuration::from_secs(1)) {
        cx.err(p.key("longest"), "longest must be 1s or more");
    }
}
