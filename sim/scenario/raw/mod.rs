//! The serde mirror of the scenario TOML: every table denies unknown keys; defaults are explicit.
//!
//! These structs are parsed first and validated afterwards (see `validate`), so
//! that every semantic error can be collected and reported with its TOML path. They
//! serialise back to JSON with defaults filled in: that is the "effective
//! parameters" section of `manifest.json`.

mod events;
mod explore;
mod hosts;
mod mesh;
mod policies;
mod steps;
mod twopc;

pub use events::*;
pub use explore::*;
pub use hosts::*;
pub use mesh::*;
pub use policies::*;
pub use steps::*;
pub use twopc::*;

use crate::time::SimDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// `[policy.retry.NAME]`, `[policy.breaker.NAME]`.
    #[serde(default)]
    pub policy: RawPolicies,
    /// `[[fault]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault: Vec<RawFault>,
    /// `[[queue]]`: broker queues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<RawBrokerQueue>,
    /// `[[topic]]`: broker topics (each subscriber queue gets a copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topic: Vec<RawTopic>,
    /// `[[saga]]`: orchestrated sagas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saga: Vec<RawSaga>,
    /// `[[transaction]]`: two-phase commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transaction: Vec<RawTransaction>,
    /// `[[event_store]]`: append-only event logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_store: Vec<RawEventStore>,
    /// `[[projection]]`: read models fed from an event store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projection: Vec<RawProjection>,
    /// `[[migration]]`: strangler-fig migrations from one service to another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration: Vec<RawMigration>,
    /// `[[host]]`: machines whose cores co-located instances share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<RawHost>,
    /// `[recovery]`: what counts as recovered after a fault or a load spike or step.
    #[serde(default, skip_serializing_if = "RawRecovery::is_default")]
    pub recovery: RawRecovery,
    /// `[registry]`: service discovery through a registry; without it callers know every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RawRegistry>,
    /// `[mesh]`: sidecar proxies beside the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<RawMesh>,
    /// `[trace]`: which requests are recorded as traces.
    #[serde(default)]
    pub trace: RawTrace,
    /// `[report]`: what the charts show.
    #[serde(default)]
    pub report: RawReport,
    /// `[[expect]]`: what `faultline check` verifies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<RawExpect>,
    /// `[sweep]`: the axes `faultline sweep` uses when the command line gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<RawSweep>,
    /// `[explore]`: the faults `faultline explore` may draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<RawExplore>,
}

/// `[sweep]`: `grid = { "path" = [values] or "lo..hi step s" }`, `zip = { ... }`
/// (parameters that move together), `replications = n`. Axes are taken in name order.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    /// Replications per point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replications: Option<u32>,
    /// Every combination of these.
    #[serde(default)]
    pub grid: toml::Table,
    /// These move together.
    #[serde(default)]
    pub zip: toml::Table,
}

/// `[[expect]]`: a metric of `summary.json` that must stay in bounds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// A path in summary.json (`workloads.shoppers.latency_ms.p99`), or arithmetic over
    /// paths and numbers with spaces around the operators (`workloads.w.rejected / workloads.w.sent`).
    pub metric: String,
    /// The value must be below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// The value must be above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// The value must lie in [lo, hi].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<[f64; 2]>,
    /// The mean over the seeds must be this, within `within_se`, `within_rel` or `within_abs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// With `mean`: within this many standard errors of the mean (needs 2 seeds or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_se: Option<f64>,
    /// With `mean`: within this share of it (0.05: 5 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_rel: Option<f64>,
    /// With `mean`: within this distance of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_abs: Option<f64>,
    /// Seeds to run: the scenario's, then derived ones (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<u32>,
    /// Over several seeds: this quantile of the values must hold (default: every seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Why it matters, shown when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// `[trace]`: which root requests are kept as traces (a span per attempt). The defaults
/// keep the 5 slowest, up to 10 failed and up to 10 of a 0.05 % random sample.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrace {
    /// Share of root requests kept at random, 0 to 1.
    pub sample: f64,
    /// At most this many sampled traces.
    pub max_sampled: usize,
    /// Always keep the N slowest.
    pub slowest: usize,
    /// Keep failed requests, at most this many.
    pub failed: usize,
    /// Spans per trace; beyond it spans are counted, not kept.
    pub max_spans: usize,
}

impl Default for RawTrace {
    fn default() -> Self {
        let d = crate::model::spec::TraceSpec::default();
        RawTrace {
            sample: d.sample,
            max_sampled: d.max_sampled,
            slowest: d.slowest,
            failed: d.failed,
            max_spans: d.max_spans,
        }
    }
}

/// `[report]`: what the charts show beyond the defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReport {
    /// Services that get their own latency-percentile chart (workloads always do).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

/// `[[queue]]`: a queue held by a broker service (at-least-once delivery).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrokerQueue {
    /// Unique among queues and topics.
    pub name: String,
    /// The service that is the broker: publishing is a call to it, deliveries come from it.
    pub broker: String,
    /// Received and not acknowledged for this long: visible again (30s).
    #[serde(default = "thirty_s")]
    pub visibility_timeout: SimDuration,
    /// Deliveries before dead-lettering (SQS maxReceiveCount); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Over the limit: to the dead-letter queue (true) or dropped.
    #[serde(default = "yes")]
    pub dead_letter: bool,
    /// Messages older than this are deleted (4 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<SimDuration>,
    /// Partitions with per-key order (one message of a partition in flight at a time).
    #[serde(default)]
    pub partitions: u32,
    /// A failed consumer: "visibility" (SQS: wait for the timeout) or "requeue" (RabbitMQ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// requeue: delay before redelivery, doubled per delivery (0s).
    #[serde(default)]
    pub redelivery_delay: SimDuration,
    /// Longest redelivery delay (15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivery_cap: Option<SimDuration>,
    /// Most messages held; a publish beyond is refused (1 000 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u32>,
    /// Eventual-consistency probes: for each delay t, the share of messages whose effect was
    /// applied (and acknowledged) within t of being stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visible_within: Vec<SimDuration>,
}

/// `[[saga]]`: an orchestrated saga (Eventuate / Temporal semantics).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaga {
    /// Unique.
    pub name: String,
    /// The service whose handlers start it (`{ saga = "NAME" }`) and that runs it.
    pub orchestrator: String,
    /// "orchestration" (default: the orchestrator calls each participant) or "choreography"
    /// (each step is an event on `broker`; each participant publishes the next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// choreography: the broker service holding one queue per step (`SAGA.STEP`, and
    /// `SAGA.STEP.undo` for compensations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// choreography: messages each participant instance handles at once (8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// choreography: the step queues' visibility timeout (30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<SimDuration>,
    /// choreography: participants keep an idempotency store for this long (none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_ttl: Option<SimDuration>,
    /// The pivot step's name: later steps are retried, never compensated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivot: Option<String>,
    /// Attempts of a step up to the pivot before it counts as failed (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_attempts: Option<u32>,
    /// Attempts of a step after the pivot before the saga is stuck (10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriable_attempts: Option<u32>,
    /// Attempts of a compensation (5); 1: no retry, a failure ends the saga failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation_attempts: Option<u32>,
    /// Go on compensating past a compensation that gave up (Temporal continueWithError).
    #[serde(default)]
    pub continue_with_error: bool,
    /// Compensate the failed step too (it may have taken effect): Temporal's samples.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compensate_failed: bool,
    /// Participants deduplicate actions and compensations by saga and step (orchestration).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
    /// Back-off before a second attempt (1s), doubled each time up to 100s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<SimDuration>,
    /// The steps, in order.
    pub steps: Vec<RawSagaStep>,
}

/// One saga step: `{ name = "reserve", action = { to = "inventory" }, compensation = { ... } }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSagaStep {
    /// Unique within the saga.
    pub name: String,
    /// The forward call (absent: a step with nothing to do forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RawStep>,
    /// The compensating call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<RawStep>,
}

/// `[[topic]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    /// Unique among queues and topics.
    pub name: String,
    /// Queues that each get a copy of every message (on the same broker).
    pub subscribers: Vec<String>,
}

/// `consumes = [{ queue = "payments", concurrency = 4 }]` on a service.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsume {
    /// The queue.
    pub queue: String,
    /// Messages each instance handles at once (prefetch) (1).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// The endpoint that handles them (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Remember handled message ids this long and skip duplicates (no store: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_ttl: Option<SimDuration>,
}

/// `[registry]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// "ttl" (the articles' and Consul's heartbeat TTL, default), "eureka" (leases) or
    /// "registrar" (third-party registration: a registrar watches the instances).
    #[serde(default = "default_registry_kind")]
    pub kind: String,
    /// registrar: how often it looks at the instances (10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<SimDuration>,
    /// Instances renew this often (ttl 10s, eureka 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<SimDuration>,
    /// ttl: the health loop's period (10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval: Option<SimDuration>,
    /// ttl: heartbeat age that makes an instance unhealthy (30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<SimDuration>,
    /// ttl: time unhealthy before removal (60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_after: Option<SimDuration>,
    /// ttl: the reaper's period (30s, Consul's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reap_interval: Option<SimDuration>,
    /// eureka: lease duration (90s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<SimDuration>,
    /// eureka: eviction task period (60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_interval: Option<SimDuration>,
    /// eureka: self-preservation (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_preservation: Option<bool>,
    /// eureka: renewal percent threshold (0.85).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_threshold: Option<f64>,
    /// eureka: a renewal extends the lease by two durations, as Eureka's code does (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_duration_quirk: Option<bool>,
    /// Callers refresh their cached instance lists this often (30s).
    #[serde(default = "thirty_s")]
    pub cache_ttl: SimDuration,
    /// A restarted instance boots this long before it listens and registers (0s).
    #[serde(default)]
    pub startup: SimDuration,
    /// Active health checks: real requests to each instance, competing for its workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<RawHealthCheck>,
    /// The registry runs as this service: registrations, heartbeats, check reports and cache
    /// refreshes are requests to it, with its queue, workers and failures (none: the registry
    /// has no capacity and never fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// With `service`: a request to the registry times out after this (5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// With `service`: a failed heartbeat or refresh is tried again after this, instead of at
    /// the next period (none: the next period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<SimDuration>,
    /// With `service`: each consecutive timed-out heartbeat or refresh doubles the wait before
    /// the next, up to this many times the base wait (Eureka's `expBackOffBound`; eureka 10,
    /// otherwise 1: no backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_bound: Option<u32>,
}

fn default_registry_kind() -> String {
    "ttl".into()
}
fn thirty_s() -> SimDuration {
    SimDuration::from_secs(30)
}

/// `health_check = { interval = "10s", timeout = "1s", failures = 3, successes = 1 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// Period (10s).
    #[serde(default = "ten_s")]
    pub interval: SimDuration,
    /// A check slower than this fails (1s, Kubernetes').
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
    /// Consecutive failures that make an instance unhealthy (3).
    #[serde(default = "three")]
    pub failures: u32,
    /// Consecutive successes that make it healthy again (1).
    #[serde(default = "one")]
    pub successes: u32,
    /// The work a check does at the instance (constant 1ms).
    #[serde(default = "one_ms_work")]
    pub work: RawDist,
}

fn ten_s() -> SimDuration {
    SimDuration::from_secs(10)
}
fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}
fn one_ms_work() -> RawDist {
    RawDist {
        dist: "constant".into(),
        value: Some(SimDuration::from_millis(1)),
        ..RawDist::default()
    }
}

/// `[[fault]]`: a fault during [at, at + for). `Default` is a fault of no kind, for
/// builders that set the fields they mean (`explore`, `import`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// latency, error, slow, crash, pause, random_crash, gc, partition, reset, loss,
    /// host_outage, cpu_hog.
    pub kind: String,
    /// The service hit (one end, for link faults); zone faults name `zone` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// zone_outage, zone_partition: the zone hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// zone_partition: the other zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_zone: Option<String>,
    /// Start.
    pub at: SimDuration,
    /// Length; until the end of the run when absent.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub length: Option<SimDuration>,
    /// One instance (0-based); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// partition, reset, loss: the other service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// latency: the delay added on arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<SimDuration>,
    /// slow: the work multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiply: Option<f64>,
    /// slow: workers per instance during the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// error: the status returned: an HTTP code (500, the default; 502, 503, 504, 429, any
    /// 4xx or 5xx) or a gRPC status name ("UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RawStatus>,
    /// latency, error, slow: share of requests hit (default 1); loss: the loss probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// random_crash: mean time to failure per instance (exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttf: Option<SimDuration>,
    /// random_crash: mean time to repair (exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttr: Option<SimDuration>,
    /// gc: the period of its pauses (periodic) or the mean gap between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<SimDuration>,
    /// gc: each pause's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<SimDuration>,
    /// gc: a fixed period (true) or exponential gaps (false, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<bool>,
    /// host_outage, cpu_hog: the host hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// cpu_hog: runnable threads it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

/// A status as written: an HTTP code or a gRPC status name.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(
    untagged,
    expecting = "code is an HTTP status (500, 503, 429, ...) or a gRPC status name (\"UNAVAILABLE\", \"DEADLINE_EXCEEDED\", ...)"
)]
pub enum RawStatus {
    /// An HTTP code.
    Http(i64),
    /// A gRPC status name.
    Name(String),
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
    /// One-way latency between instances in different zones (replaces the hop's latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_zone: Option<RawDist>,
}

impl Default for RawNetwork {
    fn default() -> Self {
        RawNetwork {
            latency: default_latency(),
            loss: 0.0,
            link: Vec::new(),
            cross_zone: None,
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
    /// fifo, lifo or adaptive_lifo.
    #[serde(default = "default_discipline")]
    pub discipline: String,
    /// Work that waited longer than this is dropped when it reaches the head (load shedding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<SimDuration>,
    /// CoDel (folly) on dequeue: `{ target = "5ms", interval = "100ms" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codel: Option<RawCodel>,
    /// Shares of the capacity at which each criticality is refused on arrival
    /// (`{ sheddable = 0.5, sheddable_plus = 0.8 }`; unnamed levels take the next higher's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shed: BTreeMap<String, f64>,
    /// adaptive_lifo: queue timeout under a standing queue (default 5ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_timeout: Option<SimDuration>,
    /// adaptive_lifo: queue timeout otherwise, and how long a queue must stay to be standing
    /// (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_timeout: Option<SimDuration>,
}

/// `codel = { target = "5ms", interval = "100ms" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCodel {
    /// Target queueing delay (default 5ms).
    #[serde(default = "five_ms")]
    pub target: SimDuration,
    /// Interval (default 100ms).
    #[serde(default = "hundred_ms")]
    pub interval: SimDuration,
}

fn five_ms() -> SimDuration {
    SimDuration::from_millis(5)
}
fn hundred_ms() -> SimDuration {
    SimDuration::from_millis(100)
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
            max_wait: None,
            codel: None,
            shed: BTreeMap::new(),
            short_timeout: None,
            long_timeout: None,
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
    /// Thread-per-request pool per instance (held while waiting on calls too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Probability that a request fails on its own.
    #[serde(default)]
    pub error_rate: f64,
    /// A horizontal autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<RawAutoscale>,
    /// A canary: a new version beside the stable one, with a weight schedule and rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<RawCanary>,
    /// A rolling update to a new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawRollout>,
    /// Its own discovery cache refresh period (default: the registry's `cache_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<SimDuration>,
    /// Queues whose messages this service handles (competing consumers per queue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumes: Vec<RawConsume>,
    /// Work is slower right after an instance boots (a restart, a new instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<RawColdStart>,
    /// Zones of its instances, assigned in turn (instance k in zones[k % len]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Where its instances go when there are `[[host]]`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<RawPlacement>,
    /// Local work done first (shorthand for a leading `{ work = ... }` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// Steps after `work`: calls, parallel groups, work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<RawStep>,
    /// Retry policy for every call of this service that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    /// Breaker for every call of this service that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// Balancer for every call of this service that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<String>,
    /// Outlier detector for every call of this service that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<String>,
    /// Bulkhead for every call of this service that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<String>,
    /// Rate limiter on requests arriving at each instance (`[policy.rate_limit.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Adaptive concurrency limit on requests arriving at each instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<String>,
    /// Whose caller-side policy state its calls use unless a policy says: "instance" (each of
    /// its instances keeps its own balancer, breakers, budgets...; the default) or "service".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_state: Option<String>,
    /// Its sidecar under `[mesh]`: `false` leaves it out, a table overrides the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<RawSidecar>,
    /// Calls inherit the remaining time of this service's request (gRPC deadline propagation).
    #[serde(default)]
    pub propagate_deadline: bool,
    /// Requests whose deadline has passed are failed without work, on arrival and at dequeue.
    #[serde(default)]
    pub drop_expired: bool,
    /// Optimistic concurrency on the request's key (a conditional write, DynamoDB-style): a
    /// request reads the key's version when its work starts and commits when it completes;
    /// if another request committed the key in between it fails (an error: a conflict).
    #[serde(default)]
    pub occ: bool,
    /// `[[service.endpoint]]`: named operations; when present, `work` and `calls` must be absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint: Vec<RawEndpoint>,
}

/// `[[migration]]`: a strangler fig. The facade's calls that name it (`{ to = "monolith",
/// migrate = "orders" }`) go to `from` or to its replacement `to` by a weight schedule and
/// routes, and go back to `from` for good if the replacement fails its rollback test. The
/// shift's fields repeat `RawCanary`'s: serde cannot flatten a shared struct into a table
/// that denies unknown fields, and a misspelt key must stay an error.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMigration {
    /// Unique among migrations.
    pub name: String,
    /// The service being replaced (the calls' `to`).
    pub from: String,
    /// Its replacement.
    pub to: String,
    /// The replacement's endpoint (default: by weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Share of calls (percent) sent to the replacement from each time on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<RawWeightStep>,
    /// All calls to the replacement from this time on (instead of `weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_at: Option<SimDuration>,
    /// Automatic rollback: the replacement's error rate or p99 over a window, as the facade
    /// sees its calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RawRollback>,
    /// Header- or key-matched routes (`to = "new"` or `"old"`), tried before the weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RawRoute>,
}

/// `[service.canary]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    /// Instances of the new version (beside the stable replicas).
    #[serde(default = "one")]
    pub replicas: u32,
    /// The new version's local work: replaces the first work step of every endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// The new version's own error rate (default: the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Share of traffic (percent) sent to the canary from each time on (a single step is a
    /// fixed weighted split, e.g. 90/10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<RawWeightStep>,
    /// Blue-green: no traffic to the new version until this time, then all of it (instead of
    /// `weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_at: Option<SimDuration>,
    /// Automatic rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RawRollback>,
    /// Header- or key-matched routes, tried in order before the weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RawRoute>,
}

/// `{ header = "beta", to = "canary" }` or `{ keys = [0, 99], to = "stable" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Requests that carry this header (set by workloads' `headers`, passed down calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Requests whose key is in this inclusive range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<[u64; 2]>,
    /// "canary" or "stable".
    pub to: String,
}

/// `[service.rollout]`: a rolling update to a new version (Kubernetes Deployment semantics).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    /// When it starts.
    pub at: SimDuration,
    /// Instances above the replicas while it runs (1).
    #[serde(default = "one")]
    pub max_surge: u32,
    /// Ready instances below the replicas allowed while it runs (0).
    #[serde(default)]
    pub max_unavailable: u32,
    /// From start to serving for a new instance (10s).
    #[serde(default = "ten_s")]
    pub startup: SimDuration,
    /// Old instances deregister and finish their work before they stop (true); false stops
    /// them at once, dropping what they hold while callers' caches still list them.
    #[serde(default = "yes")]
    pub drain: bool,
    /// Longest drain (30s, Kubernetes' terminationGracePeriodSeconds).
    #[serde(default = "thirty_s")]
    pub grace: SimDuration,
    /// The new version's local work: replaces the first work step of every endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// The new version's own error rate (default: the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
}

fn yes() -> bool {
    true
}

/// `{ at = "60s", weight = 25 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeightStep {
    /// From when.
    pub at: SimDuration,
    /// Percent of traffic to the canary.
    pub weight: f64,
}

/// `rollback = { error_rate = 0.05, p99 = "200ms", window = "30s", min_requests = 50 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollback {
    /// Roll back when the canary's error rate over a window exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Roll back when the canary's p99 latency over a window exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<SimDuration>,
    /// The evaluation window (30s).
    #[serde(default = "thirty_s")]
    pub window: SimDuration,
    /// Requests a window needs before it can judge (50).
    #[serde(default = "fifty_u")]
    pub min_requests: u64,
}

fn fifty_u() -> u64 {
    50
}

/// `autoscale = { target_utilization = 0.6, min = 2, max = 10, ... }` (Kubernetes HPA).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoscale {
    /// Target share of worker time busy (one of the two targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_utilization: Option<f64>,
    /// Target requests in flight per instance (the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_in_flight: Option<f64>,
    /// Evaluation period (15s, the HPA's).
    #[serde(default = "fifteen_s")]
    pub interval: SimDuration,
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Time from the decision until a new instance serves (30s).
    #[serde(default = "thirty_s")]
    pub provision: SimDuration,
    /// Scale down only to the highest recommendation of this window (5m, the HPA's).
    #[serde(default = "five_m")]
    pub scale_down_window: SimDuration,
    /// No change while the metric is within this share of the target (0.1, the HPA's).
    #[serde(default = "tenth")]
    pub tolerance: f64,
}

fn fifteen_s() -> SimDuration {
    SimDuration::from_secs(15)
}
fn five_m() -> SimDuration {
    SimDuration::from_secs(300)
}
fn tenth() -> f64 {
    0.1
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
    /// Client timeout (also the request's deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// Requests carry a key (user id) drawn uniformly from this many, for hash balancers and
    /// per-client rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// Keys by popularity, Zipf with this exponent s (key k has weight 1/(k+1)^s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipf: Option<f64>,
    /// Headers its requests carry, each with the share of requests that carry it
    /// (`{ beta = 0.05 }`); calls pass them on. Routes can match them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, f64>,
    /// The criticality its requests carry downstream (default `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
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
    /// burst: requests sent at the same instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// burst: time between bursts (absent: one burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<SimDuration>,
    /// burst: how many bursts (default: until the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// burst: every request of a burst carries one key of its own (the burst's), e.g. N
    /// clients updating one row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_key: Option<bool>,
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

/// `[recovery]`: a workload has recovered from a disturbance when, for `hold`, its goodput
/// share (ok / sent) is at least (1 − goodput_band) times, and its p99 at most
/// (1 + p99_band) times, their level over the `lookback` before it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRecovery {
    /// 0.05.
    pub goodput_band: f64,
    /// 0.5.
    pub p99_band: f64,
    /// "5s" (rounded up to whole buckets).
    pub hold: SimDuration,
    /// "30s" (rounded up to whole buckets).
    pub lookback: SimDuration,
}

impl Default for RawRecovery {
    fn default() -> Self {
        RawRecovery {
            goodput_band: 0.05,
            p99_band: 0.5,
            hold: SimDuration::from_secs(5),
            lookback: SimDuration::from_secs(30),
        }
    }
}

impl RawRecovery {
    /// Whether every field has its default (then it is left out of the effective scenario).
    pub fn is_default(&self) -> bool {
        let d = RawRecovery::default();
        self.goodput_band == d.goodput_band
            && self.p99_band == d.p99_band
            && self.hold == d.hold
            && self.lookback == d.lookback
    }
}
