//! Criticality: the level a workload or a call gives its requests, and a queue's per-level shedding.

use super::*;
use crate::policy::criticality::{Criticality, ThresholdError, Thresholds};

const LEVELS_HINT: &str =
    "use \"critical_plus\", \"critical\", \"sheddable_plus\" or \"sheddable\"";

/// A criticality by name (`None` when absent or unknown; an unknown one is reported).
pub(super) fn criticality(cx: &mut Ctx, at: TomlPath, name: Option<&str>) -> Option<Criticality> {
    let name = name?;
    let c = Criticality::parse(name);
    if c.is_none() {
        cx.err(at, format!("unknown criticality {name:?}: {LEVELS_HINT}"));
    }
    c
}

/// A queue's `shed` table as thresholds on its capacity (`None` when empty or wrong).
pub(super) fn shed_thresholds(
    cx: &mut Ctx,
    at: TomlPath,
    shares: &BTreeMap<String, f64>,
    capacity: u32,
) -> Option<Thresholds> {
    if shares.is_empty() {
        return None;
    }
    let mut levels = Vec::new();
    for (name, &share) in shares {
        match Criticality::parse(name) {
            Some(c) => levels.push((c, share)),
            None => cx.err(
                at.key(name),
                format!("unknown criticality {name:?}: {LEVELS_HINT}"),
            ),
        }
    }
    match Thresholds::from_shares(capacity, &levels) {
        Ok(t) => Some(t),
        Err(ThresholdError::OutOfRange(c, share)) => {
            cx.err(
                at.key(c.name()),
                format!("share {share} of the queue's capacity must be above 0 and at most 1"),
            );
            None
        }
        Err(ThresholdError::Inverted { lower, higher }) => {
            cx.err(
                at.key(lower.name()),
                format!(
                    "{} would be refused before {} (its share is smaller): a level is shed only once every less critical level is (the SRE book's rule), so give {} a share no larger than {}'s",
                    higher.name(),
                    lower.name(),
                    lower.name(),
                    higher.name()
                ),
            );
            None
        }
    }
}
