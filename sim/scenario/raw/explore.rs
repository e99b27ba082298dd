//! The serde mirror of `[explore]`: the bounds within which `faultline explore` draws fault schedules.

use super::*;

/// `[explore]`: which faults `faultline explore` may draw, on what, when. Every field has a
/// default taken from the scenario (every service, the whole run after warmup).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExplore {
    /// Fault kinds to draw from: "crash", "latency", "error", "slow", "partition",
    /// "zone_outage", "registry_outage" (default: those the scenario can have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Services a fault may hit (default: every service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// Faults per schedule at most (default 3; 1 to 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_faults: Option<u32>,
    /// Earliest start of a fault (default: the warmup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SimDuration>,
    /// Latest end of a fault (default: the run's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<SimDuration>,
    /// Schedules to draw (default 200; `--budget` overrides; `faultline gallery` uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u32>,
    /// Longest fault (default: a quarter of the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest: Option<SimDuration>,
}

/// The fault kinds `faultline explore` draws.
pub const EXPLORE_KINDS: [&str; 7] = [
    "crash",
    "latency",
    "error",
    "slow",
    "partition",
    "zone_outage",
    "registry_outage",
];
