//! The serde mirror of the scenario TOML: every table denies unknown keys; defaults are explicit.
//!
//! These structs are parsed first and validated afterwards (see `validate.rs`), so
//! that every semantic error can be collected and reported with its TOML path. They
//! serialise back to JSON with defaults filled in: that is the "effective
//! parameters" section of `manifest.json`.

use crate::time::SimDuration;
use serde::{Deserialize, Serialize};

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// `[sim]`.
    pub sim: RawSim,
    /// `[network]`.
    #[serde(default)]
    pub network: RawNetwork,
    /// `[[service]]`.
    #[serde(default)]
    pub service: Vec<RawService>,
    /// `[[workload]]`.
    #[serde(default)]
    pub workload: Vec<RawWorkload>,
}

fn default_seed() -> u64 {
    1
}
fn default_bucket() -> SimDuration {
    SimDuration::from_secs(1)
}
fn default_max_events() -> u64 {
    2_000_000_000
}
fn default_max_in_flight() -> usize {
    1_000_000
}

/// `[sim]`: run length, seed and limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSim {
    /// Scenario name (also the default report directory).
    pub name: String,
    /// Simulated length, e.g. "10m".
    pub duration: SimDuration,
    /// Excluded from statistics; must be shorter than `duration`.
    #[serde(default)]
    pub warmup: SimDuration,
    /// Root seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Time-series bucket width.
    #[serde(default = "default_bucket")]
    pub bucket: SimDuration,
    /// End-to-end latency target used by `validate`'s hop arithmetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_budget: Option<SimDuration>,
    /// Event budget: the run stops (and says so) after this many events.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Request limit: the run stops (and says so) when this many requests are alive at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

/// A distribution: `{ dist = "exp", mean = "2ms" }` and friends.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDist {
    /// constant, uniform, exp, normal, lognormal, pareto, mixture, empirical.
    pub dist: String,
    /// constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SimDuration>,
    /// uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<SimDuration>,
    /// uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<SimDuration>,
    /// exp, normal, lognormal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<SimDuration>,
    /// normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<SimDuration>,
    /// lognormal (with mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// lognormal (with p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<SimDuration>,
    /// lognormal (with median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<SimDuration>,
    /// pareto: the minimum value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<SimDuration>,
    /// pareto: the tail index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<f64>,
    /// mixture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<RawPart>>,
    /// empirical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<SimDuration>>,
}

/// One part of a mixture: `{ weight = 0.95, of = { dist = "constant", value = "5ms" } }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPart {
    /// Relative weight.
    pub weight: f64,
    /// The part's distribution.
    pub of: RawDist,
}

fn default_latency() -> RawDist {
    RawDist {
        dist: "constant".into(),
        value: Some(SimDuration::ZERO),
        ..RawDist::default()
    }
}

/// `[network]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// One-way latency per hop.
    #[serde(default = "default_latency")]
    pub latency: RawDist,
    /// Loss probability per message.
    #[serde(default)]
    pub loss: f64,
    /// `[[network.link]]` overrides.
    #[serde(default)]
    pub link: Vec<RawLink>,
}

impl Default for RawNetwork {
    fn default() -> Self {
        RawNetwork {
            latency: default_latency(),
            loss: 0.0,
            link: Vec::new(),
        }
    }
}

/// `[[network.link]]`: latency and loss between two services (both directions).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// One end.
    pub from: String,
    /// The other end.
    pub to: String,
    /// One-way latency; the default network latency when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<RawDist>,
    /// Loss; the default network loss when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
}

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}

/// `queue = { capacity = 1000, discipline = "fifo" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Waiting work per instance.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// fifo or lifo.
    #[serde(default = "default_discipline")]
    pub discipline: String,
}

fn default_capacity() -> u32 {
    1000
}
fn default_discipline() -> String {
    "fifo".into()
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue {
            capacity: default_capacity(),
            discipline: default_discipline(),
        }
    }
}

/// `[[service]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Unique name.
    pub name: String,
    /// Instances.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Concurrent local-work slots per instance.
    #[serde(default = "one")]
    pub workers: u32,
    /// Bounded queue per instance.
    #[serde(default)]
    pub queue: RawQueue,
    /// Probability that a request fails on its own.
    #[serde(default)]
    pub error_rate: f64,
    /// Local work done first (shorthand for a leading `{ work = ... }` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// Steps after `work`: calls, parallel groups, work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<RawStep>,
    /// `[[service.endpoint]]`: named operations; when present, `work` and `calls` must be absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint: Vec<RawEndpoint>,
}

/// `[[service.endpoint]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique within the service.
    pub name: String,
    /// Share of traffic when the caller names no endpoint.
    #[serde(default = "one_f")]
    pub weight: f64,
    /// Leading local work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// Further steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<RawStep>,
}

/// A step: exactly one of `to` (a call), `parallel` (a group of calls) or `work`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Callee service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Callee endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Caller-side timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// Probability the call is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Whether a failed call fails the request (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Calls made together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<RawStep>>,
    /// Local work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
}

/// `[[workload]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Unique name.
    pub name: String,
    /// Entry service.
    pub target: String,
    /// Entry endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Client timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// The arrival process.
    pub arrivals: RawArrivals,
}

/// `arrivals = { kind = "poisson", rate = 100 }` and the other kinds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawArrivals {
    /// poisson, constant, ramp, step, spike, diurnal, closed.
    pub kind: String,
    /// poisson, constant: requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// ramp: start rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// ramp: end rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
    /// ramp: length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<SimDuration>,
    /// step: `[{ at = "0s", rate = 10 }, ...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<RawRateStep>>,
    /// spike: normal rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<f64>,
    /// spike: peak rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    /// spike: start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<SimDuration>,
    /// spike: length.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub length: Option<SimDuration>,
    /// diurnal: mean rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// diurnal: swing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<f64>,
    /// diurnal: period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<SimDuration>,
    /// closed: number of users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// closed: think time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<RawDist>,
    /// ramp, step, spike, diurnal: "poisson" (default) or "uniform" gaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// One step of a step schedule.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateStep {
    /// When this rate starts.
    pub at: SimDuration,
    /// Requests per second from then on.
    pub rate: f64,
}
