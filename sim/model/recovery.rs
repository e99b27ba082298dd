//! The disturbances a run's recovery times are measured from: each fault's window and each
//! workload's load spike or step, followed by `results::recovery::Tracker`.

use super::spec::{Arrivals, RateProfile, SystemSpec};
use crate::results::recovery::{Tracker, Window};

/// A tracker for the scenario's faults and load shapes, or None when there are none. Every
/// one is listed, even one the run ends before (its figures are then null), so that the
/// summary's shape does not depend on the duration.
pub(super) fn tracker(spec: &SystemSpec) -> Option<Tracker> {
    let mut windows = Vec::new();
    for (i, f) in spec.faults.iter().enumerate() {
        windows.push(Window {
            key: format!("fault{i}"),
            kind: "fault",
            // Named in words when it starts (`faults.rs`), as its event says.
            what: String::new(),
            from_s: f.at.as_secs_f64(),
            to_s: f.until.as_secs_f64(),
        });
    }
    for w in &spec.workloads {
        let Arrivals::Open { profile, .. } = &w.arrivals else {
            continue;
        };
        match profile {
            RateProfile::Spike {
                peak, at, length, ..
            } => windows.push(Window {
                key: format!("{}-spike", w.name),
                kind: "load",
                what: format!("{} spike to {peak}/s", w.name),
                from_s: at.as_secs_f64(),
                to_s: at.as_secs_f64() + length.as_secs_f64(),
            }),
            RateProfile::Steps(steps) => {
                for (k, (start, rate)) in steps.iter().enumerate() {
                    let t = start.as_secs_f64();
                    if t > 0.0 {
                        windows.push(Window {
                            key: format!("{}-step{k}", w.name),
                            kind: "load",
                            what: format!("{} step to {rate}/s", w.name),
                            from_s: t,
                            to_s: t,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    let names = spec.workloads.iter().map(|w| w.name.clone()).collect();
    let t = Tracker::new(spec.recovery, windows, names);
    (!t.is_empty()).then_some(t)
}
