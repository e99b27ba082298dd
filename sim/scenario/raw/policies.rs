//! The serde mirror of `[policy.*]`: retries, back-offs, budgets, breakers, hedges, balancers, outlier detection, bulkheads, limits.

use super::*;

/// Named policies, referenced by calls (or by a service as the default for its calls).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// Retry policies by name.
    #[serde(default)]
    pub retry: std::collections::BTreeMap<String, RawRetry>,
    /// Circuit breakers by name.
    #[serde(default)]
    pub breaker: std::collections::BTreeMap<String, RawBreaker>,
    /// Hedging policies by name.
    #[serde(default)]
    pub hedge: std::collections::BTreeMap<String, RawHedge>,
    /// Load balancers by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub balancer: std::collections::BTreeMap<String, RawBalancer>,
    /// Outlier detectors by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outlier: std::collections::BTreeMap<String, RawOutlier>,
    /// Bulkheads by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bulkhead: std::collections::BTreeMap<String, RawBulkhead>,
    /// Rate limiters by name (used by services).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rate_limit: std::collections::BTreeMap<String, RawRateLimit>,
    /// Adaptive concurrency limits by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub concurrency: std::collections::BTreeMap<String, RawConcurrency>,
    /// Client-side adaptive throttles by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub throttle: std::collections::BTreeMap<String, RawThrottle>,
    /// Connection pools by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pool: std::collections::BTreeMap<String, RawPool>,
    /// Caches by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cache: std::collections::BTreeMap<String, RawCache>,
}

/// `[policy.cache.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// How long a filled entry is fresh.
    pub ttl: SimDuration,
    /// Most entries (LRU eviction beyond); absent: unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Serve an expired entry this much longer while one refresh runs (RFC 5861).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate: Option<SimDuration>,
    /// Concurrent misses of a key wait for one fetch (single flight; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<bool>,
    /// Time to answer a hit (default 0.5 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_latency: Option<SimDuration>,
    /// "shared" (one for all callers, the default) or "instance" (one per caller instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// An update of a key removes it (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidate_on_update: Option<bool>,
}

/// `[policy.balancer.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalancer {
    /// round_robin, smooth_weighted, random, weighted_random, least_connections,
    /// least_request, hash, ring_hash, maglev.
    pub kind: String,
    /// least_request: samples per pick (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<u32>,
    /// least_request: active_request_bias for unequal weights (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<f64>,
    /// Envoy healthy_panic_threshold, percent (default 50; 0 disables panic).
    #[serde(default = "fifty")]
    pub panic_threshold: f64,
    /// ring_hash: minimum ring entries (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_size: Option<u32>,
    /// maglev: table size, a prime (default 65537).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_size: Option<u32>,
    /// Instance weights of the callee, by instance index (default all 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<u32>>,
    /// Prefer instances in the caller's zone; spill over when fewer than `min_local` are usable.
    #[serde(default)]
    pub zone_aware: bool,
    /// zone_aware: usable local instances needed to stay local (default 1).
    #[serde(default = "one")]
    pub min_local: u32,
    /// Envoy slow start (round_robin, least_request): a newly started instance's weight ramps
    /// up over a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<RawSlowStart>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `slow_start = { window = "60s", aggression = 1.0, min_weight_percent = 10 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlowStart {
    /// slow_start_window.
    pub window: SimDuration,
    /// aggression (1.0: linear).
    #[serde(default = "one_f")]
    pub aggression: f64,
    /// min_weight_percent (10).
    #[serde(default = "ten_f")]
    pub min_weight_percent: f64,
}

pub(super) fn ten_f() -> f64 {
    10.0
}

/// `cold_start = { for = "60s", multiply = 5.0 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawColdStart {
    /// How long after a boot the work is slower.
    #[serde(rename = "for")]
    pub duration: SimDuration,
    /// Work multiplier right after boot, falling linearly to 1.
    pub multiply: f64,
}

pub(super) fn fifty() -> f64 {
    50.0
}

/// `[policy.outlier.NAME]`: Envoy outlier detection; every field defaults to Envoy's.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlier {
    /// consecutive_5xx (default 5; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx: Option<u32>,
    /// enforcing_consecutive_5xx, percent (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_5xx: Option<f64>,
    /// consecutive_gateway_failure (default 5; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway: Option<u32>,
    /// enforcing_consecutive_gateway_failure, percent (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_gateway: Option<f64>,
    /// Sweep period (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<SimDuration>,
    /// base_ejection_time (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection: Option<SimDuration>,
    /// max_ejection_time (default 300s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection: Option<SimDuration>,
    /// max_ejection_percent (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<f64>,
    /// always_eject_one_host (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_eject_one_host: Option<bool>,
    /// success_rate_minimum_hosts (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_minimum_hosts: Option<u32>,
    /// success_rate_request_volume (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_request_volume: Option<u64>,
    /// success_rate_stdev_factor as a factor (default 1.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_stdev_factor: Option<f64>,
    /// enforcing_success_rate, percent (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_success_rate: Option<f64>,
    /// failure_percentage_threshold (default 85).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_percentage_threshold: Option<f64>,
    /// failure_percentage_minimum_hosts (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_percentage_minimum_hosts: Option<u32>,
    /// failure_percentage_request_volume (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_percentage_request_volume: Option<u64>,
    /// enforcing_failure_percentage, percent (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_failure_percentage: Option<f64>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `[policy.bulkhead.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBulkhead {
    /// semaphore (Resilience4j) or envoy (cluster limits).
    pub kind: String,
    /// semaphore: permits (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// semaphore: longest wait for a permit (default 0: reject at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<SimDuration>,
    /// envoy: max_connections (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// envoy: max_pending_requests (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u32>,
    /// envoy: max_requests (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// envoy: max_retries, concurrent retries (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// "attempt" (default: each attempt takes a permit) or "call" (the call holds one permit
    /// across its retries and back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl RawBulkhead {
    /// Envoy's cluster limits (`kind = "envoy"`); those not given take Envoy's defaults.
    pub fn envoy(
        max_connections: Option<u32>,
        max_pending: Option<u32>,
        max_requests: Option<u32>,
        max_retries: Option<u32>,
    ) -> RawBulkhead {
        RawBulkhead {
            kind: "envoy".into(),
            max_concurrent: None,
            max_wait: None,
            max_connections,
            max_pending,
            max_requests,
            max_retries,
            scope: None,
            state: None,
        }
    }

    /// Whether any of Envoy's limits is given.
    pub fn has_envoy_limits(&self) -> bool {
        self.max_connections.is_some()
            || self.max_pending.is_some()
            || self.max_requests.is_some()
            || self.max_retries.is_some()
    }
}

/// `[policy.rate_limit.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// token_bucket (Envoy local rate limit), gcra or resilience4j (waits for a later cycle).
    pub kind: String,
    /// token_bucket: capacity, also the initial content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// token_bucket: tokens added per fill (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_fill: Option<u64>,
    /// token_bucket: fill period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_interval: Option<SimDuration>,
    /// gcra: requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// gcra: burst beyond the steady rate (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// resilience4j: permissions per period (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_for_period: Option<u32>,
    /// resilience4j: the period (default 500ns, Resilience4j's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_period: Option<SimDuration>,
    /// resilience4j: longest wait for a permission (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// One limiter for all ("global", default), per caller ("client") or per endpoint ("route").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `[policy.concurrency.NAME]`: Netflix adaptive concurrency limit.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    /// aimd, vegas or gradient2.
    pub kind: String,
    /// Starting limit (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<f64>,
    /// Lower bound (aimd, gradient2 default 20; vegas 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (aimd, gradient2 default 200; vegas 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// aimd: backoff ratio in [0.5, 1) (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<f64>,
    /// aimd: slower samples count as drops (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// vegas (default 1.0), gradient2 (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<f64>,
    /// gradient2: queue size (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_size: Option<f64>,
    /// gradient2: RTT tolerance (default 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `[policy.throttle.NAME]`: client-side adaptive throttling (SRE book / Envoy admission control).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// SRE's K: reject when requests exceed K × accepts (default 2).
    #[serde(default = "two_f")]
    pub k: f64,
    /// Sliding window (default 2m, as in the SRE book).
    #[serde(default = "two_minutes")]
    pub window: SimDuration,
    /// Envoy aggression (default 1: linear).
    #[serde(default = "one_f")]
    pub aggression: f64,
    /// Cap of the rejection probability (default 1; Envoy's default is 0.8).
    #[serde(default = "one_f")]
    pub max_reject: f64,
    /// No rejection below this many requests per second (default 0).
    #[serde(default)]
    pub min_rps: f64,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

pub(super) fn two_f() -> f64 {
    2.0
}
pub(super) fn two_minutes() -> SimDuration {
    SimDuration::from_secs(120)
}

/// `fallback = { latency = "2ms", on = "open" }` in a breaker.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// How long the fallback answer takes.
    #[serde(default)]
    pub latency: SimDuration,
    /// "open" (only calls the breaker refuses, default) or "failure" (any failed call).
    #[serde(default = "default_fallback_on")]
    pub on: String,
}

pub(super) fn default_fallback_on() -> String {
    "open".into()
}

/// `[policy.hedge.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHedge {
    /// Attempts in all, the first included (2 to 5; gRPC caps at 5).
    pub max_attempts: u32,
    /// Wait before each further attempt.
    pub delay: SimDuration,
    /// Use this percentile (0-100) of the observed attempt latency as the delay, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// Failures that send the next attempt at once: any of "error", "rejected" (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_fatal: Option<Vec<String>>,
}

pub(super) fn three() -> u32 {
    3
}

/// `[policy.retry.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included.
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Wait before each retry; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<RawBackoff>,
    /// What to retry: outcomes ("error", "timeout", "rejected", "connect_failure", ...) and
    /// Envoy/Istio/gRPC conditions ("5xx", "gateway-error", "reset", "connect-failure",
    /// "retriable-4xx", "retriable-status-codes", "unavailable", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<String>>,
    /// HTTP codes retried under "retriable-status-codes" (Envoy `retriable_status_codes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriable_status_codes: Option<Vec<i64>>,
    /// Retry limiter, per edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RawBudget>,
    /// Deadline for all attempts together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_timeout: Option<SimDuration>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `backoff = { kind = "exponential", base = "25ms", cap = "1s", jitter = "full" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    /// none, fixed, exponential, decorrelated, envoy, grpc, resilience4j, randomized, google.
    pub kind: String,
    /// fixed: the wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SimDuration>,
    /// exponential, decorrelated, envoy, grpc: the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<SimDuration>,
    /// exponential, decorrelated, envoy, grpc: the largest wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<SimDuration>,
    /// exponential: "none", "full" or "equal".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// grpc, randomized: growth per retry (default 2); resilience4j, google (default 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// randomized, google: the wait falls within this fraction either side of the
    /// interval (default 0.5: interval × (0.5 + U)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomization: Option<f64>,
}

/// `budget = { kind = "envoy", percent = 20, min_concurrency = 3 }` and the others.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// envoy, finagle, grpc, aws, token_bucket.
    pub kind: String,
    /// envoy: percent of active calls that may be retries (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// envoy: retries always allowed concurrently (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_concurrency: Option<u32>,
    /// finagle: window (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<SimDuration>,
    /// finagle: reserve in retries per second (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retries_per_s: Option<f64>,
    /// finagle: share of calls that may be retried (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_can_retry: Option<f64>,
    /// grpc, token_bucket: bucket size (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// grpc, token_bucket: tokens per success (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ratio: Option<f64>,
}

/// `window = { kind = "count", size = 20 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// count or time.
    pub kind: String,
    /// Calls (count) or seconds (time).
    pub size: u32,
}

/// `[policy.breaker.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// "rate" (Resilience4j, default) or "consecutive" (the articles').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// rate: open when this share of the window failed (0-1, default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// rate: open when this share of the window was slow (0-1, default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_call_rate: Option<f64>,
    /// rate: a call longer than this is slow (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_call_duration: Option<SimDuration>,
    /// rate: the sliding window (default count 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<RawWindow>,
    /// rate: calls needed before rates count (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_calls: Option<u32>,
    /// rate: trial calls in half-open (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_open_calls: Option<u32>,
    /// Time open (rate default 60s, consecutive default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_for: Option<SimDuration>,
    /// rate: each re-opening multiplies the open time by this (exponential open back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_multiplier: Option<f64>,
    /// rate: cap of the open time with `open_multiplier` (default 10 × open_for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_max: Option<SimDuration>,
    /// rate: move to half-open by timer, not on the next call (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<bool>,
    /// rate: leave half-open after this long without a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_half_open: Option<SimDuration>,
    /// consecutive: failures in a row that open it (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// consecutive: half-open successes that close it (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successes: Option<u32>,
    /// Which outcomes count as failures: any of "error", "timeout", "rejected",
    /// "connect_failure", "rate_limited", "refused" (default: all of them, as
    /// Resilience4j records every exception).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Vec<String>>,
    /// Which outcomes count neither as failures nor as successes (Resilience4j's
    /// ignoreExceptions; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    /// A fixed answer instead of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<RawFallback>,
    /// "attempt" (default: every retry asks the breaker, Resilience4j's order) or "call"
    /// (the breaker wraps the whole retry loop and sees one result per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whose state this is: "instance" (each caller instance keeps its own, as sidecars
    /// and client libraries do; the default) or "service" (one shared by all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
