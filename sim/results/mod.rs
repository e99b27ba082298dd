//! What a run produces: the run result with named parts, traces, queue and saga results.
//!
//! This layer knows nothing of the world that produced it: the model fills these structs
//! in at the end of a run, and the report, `check`, `sweep` and the API read them.

pub mod events;
pub mod eventstore;
pub mod expect;
pub mod insights;
pub mod manifest;
pub mod messaging;
pub mod recovery;
pub mod saga;
pub mod summary;
pub mod trace;

use crate::metrics::{Counts, LatencyMs};
use crate::policy::breaker;
use crate::policy::status::ErrorStatus;
use crate::time::SimTime;

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It reached its duration.
    Horizon,
    /// `sim.max_events` events were processed first.
    EventBudget,
    /// `sim.max_in_flight` requests were alive at once.
    RequestLimit,
}

/// What a run produced, besides the streamed series.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Why it stopped.
    pub stop: StopReason,
    /// Virtual time at the end.
    pub end: SimTime,
    /// Events processed.
    pub events: u64,
    /// Per workload, in scenario order.
    pub workloads: Vec<WorkloadResult>,
    /// Per service, in scenario order.
    pub services: Vec<ServiceResult>,
    /// Per edge (caller → callee), in order of first appearance.
    pub edges: Vec<EdgeResult>,
    /// Messages sent over the network / lost.
    pub network_messages: u64,
    /// Messages lost.
    pub network_lost: u64,
    /// Requests still alive at the end (health checks excluded).
    pub in_flight_at_end: u64,
    /// Per broker queue, in scenario order.
    pub queues: Vec<messaging::QueueResult>,
    /// Per saga definition, in scenario order.
    pub sagas: Vec<saga::SagaResult>,
    /// Per named cache.
    pub caches: Vec<CacheResult>,
    /// Each strangler-fig migration's split at the end (name, figures of the replacement).
    pub migrations: Vec<(String, CanaryResult)>,
    /// Per host, in declaration order (empty without `[[host]]`).
    pub hosts: Vec<HostResult>,
    /// Per two-phase commit definition, in declaration order.
    pub transactions: Vec<saga::TxResult>,
    /// Per `[[event_store]]`, in scenario order.
    pub event_stores: Vec<eventstore::StoreResult>,
    /// Per `[[projection]]`, in scenario order.
    pub projections: Vec<eventstore::ProjectionResult>,
    /// With a registry service: what its clients sent and heard.
    pub registry: Option<RegistryResult>,
    /// Per disturbance (fault window, load spike or step): each workload's recovery.
    pub recovery: Vec<(recovery::Window, Vec<(String, recovery::Recovery)>)>,
    /// First arrival times of root requests (as many as asked by `RunOptions::record_arrivals`).
    pub arrivals: Vec<SimTime>,
    /// The traces kept, by id.
    pub traces: Vec<trace::Trace>,
    /// What the tracer saw.
    pub trace_stats: trace::TraceStats,
    /// The digest of the event stream (with `RunOptions::digest_events`).
    pub event_digest: Option<u64>,
}

/// Per-edge results: calls, attempts, retries, breaker (after warmup for the counters).
#[derive(Clone, Debug)]
pub struct EdgeResult {
    /// Caller service.
    pub from: String,
    /// Callee service.
    pub to: String,
    /// Counters.
    pub stats: EdgeStats,
    /// Caller instances that kept their own state (`None`: the calling service shares one).
    pub callers: Option<u32>,
    /// Each breaker's final state (one per caller instance, or the shared one); empty
    /// without a breaker.
    pub breaker_states: Vec<breaker::State>,
    /// Breaker state changes (whole run, every breaker).
    pub breaker_transitions: u64,
    /// Time the breakers spent open (whole run), seconds (instance-seconds per instance).
    pub breaker_open_s: f64,
    /// The client-side concurrency limit at the end (the mean over caller instances), if
    /// the edge has one.
    pub concurrency_limit: Option<u32>,
    /// Instances ejected at the end (summed over caller instances), if the edge has outlier
    /// detection.
    pub ejected_at_end: Option<usize>,
    /// Its connections, when the pair pools them (a `pool`, or a mesh between two sidecars).
    pub connections: Option<ConnResult>,
    /// Its call sites' own counters, in the order of the scenario (`stats` is their sum,
    /// plus what belongs to the edge alone: ejections, panic picks, cache refreshes).
    pub sites: Vec<SiteResult>,
}

/// One call site's counters.
#[derive(Clone, Debug)]
pub struct SiteResult {
    /// Where it is: "endpoint step N" (".M" for a member of a parallel group), or
    /// "saga NAME: STEP" (and " compensation") for a saga's call.
    pub name: String,
    /// Counters of its calls.
    pub stats: EdgeStats,
}

/// Per-workload results (requests sent after warmup).
#[derive(Clone, Debug)]
pub struct WorkloadResult {
    /// Name.
    pub name: String,
    /// Outcome counts.
    pub counts: Counts,
    /// End-to-end latency of answered requests (ok or error), ms.
    pub latency: LatencyMs,
    /// Requests (warmup included) neither answered nor timed out when the run ended.
    pub pending_at_end: u64,
    /// The latency distribution for a CDF plot: `(ms, fraction at or below)`.
    pub cdf: Vec<(f64, f64)>,
}

/// Per-service results (requests arriving after warmup).
#[derive(Clone, Debug)]
pub struct ServiceResult {
    /// Name.
    pub name: String,
    /// Outcome counts; `timeouts` counts requests whose caller gave up on them.
    pub counts: Counts,
    /// Share of worker time busy after warmup.
    pub utilization: f64,
    /// Time-average number of requests admitted at the service after warmup (queued,
    /// working or waiting on calls): Little's L, to compare with throughput × latency.
    pub in_system_mean: f64,
    /// Wait for a worker, per work step, ms.
    pub queue_wait: LatencyMs,
    /// Arrival at the service to response, ms.
    pub latency: LatencyMs,
    /// Worker time spent on requests whose answer nobody waited for, ms.
    pub wasted_work_ms: f64,
    /// Retries this service made as a caller, after warmup.
    pub retries: u64,
    /// `occ` services: commits refused on a conflict, after warmup.
    pub conflicts: Option<u64>,
    /// Requests refused or dropped by server-side layers.
    pub drops: Drops,
    /// The adaptive concurrency limit of each instance at the end (empty without one).
    pub concurrency_limit: Vec<u32>,
    /// With `[registry]`: status changes of its instances in the registry (after warmup).
    pub registry_changes: Option<u64>,
    /// With an autoscaler: what it did.
    pub scaling: Option<ScalingResult>,
    /// With a canary: where its traffic split ended.
    pub canary: Option<CanaryResult>,
    /// With writes that commit events: what became of them.
    pub events: Option<messaging::EventCounts>,
    /// With a rolling update: its progress.
    pub rollout: Option<RolloutResult>,
    /// Each instance's share (after warmup), in instance order.
    pub instances: Vec<InstanceResult>,
    /// Its sidecars, when it is meshed.
    pub proxy: Option<ProxyResult>,
    /// Outcomes by criticality (low to high), when the system uses criticality.
    pub criticality: Option<[Counts; crate::policy::criticality::LEVELS]>,
}

/// One instance's figures (requests arriving after warmup).
#[derive(Clone, Debug, Default)]
pub struct InstanceResult {
    /// Outcome counts, as the service's.
    pub counts: Counts,
    /// Work done on it over workers x the measured time (its share of the service's
    /// utilisation when all its instances ran throughout).
    pub utilization: f64,
    /// Mean latency of the requests it completed, ms (arrival to answer).
    pub latency_mean_ms: f64,
}

/// What a service's autoscaler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalingResult {
    /// Instances in service at the end.
    pub instances_at_end: u32,
    /// Most instances in service at once.
    pub instances_max: u32,
    /// Scale-up decisions.
    pub scale_ups: u64,
    /// Scale-down decisions.
    pub scale_downs: u64,
}

/// Where a canary's traffic split ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanaryResult {
    /// The new version's weight at the end, percent.
    pub weight_pct: f64,
    /// When it was rolled back, seconds (None: never).
    pub rolled_back_at_s: Option<f64>,
    /// Requests the new version served (whole run).
    pub requests: u64,
    /// Of them, failed.
    pub failed: u64,
}

/// A rolling update's progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutResult {
    /// When it started, seconds (None: not yet).
    pub started_at_s: Option<f64>,
    /// When it finished, seconds (None: not yet).
    pub finished_at_s: Option<f64>,
    /// Old instances replaced.
    pub replaced: u32,
}

/// Counters of one edge (caller service → callee), after warmup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Logical calls.
    pub calls: u64,
    /// Attempts sent to the callee (breaker-rejected ones excluded).
    pub attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Calls that ended ok.
    pub ok: u64,
    /// Calls that ended failed.
    pub failed: u64,
    /// Extra attempts sent by hedging.
    pub hedges: u64,
    /// Attempts refused by the breaker.
    pub breaker_rejected: u64,
    /// Retries refused by the retry budget (or Envoy's max_retries).
    pub budget_denied: u64,
    /// Attempts refused by the bulkhead (full, or the wait expired).
    pub bulkhead_rejected: u64,
    /// Attempts refused by client-side adaptive throttling.
    pub throttled: u64,
    /// Attempts refused by the client-side adaptive concurrency limit.
    pub limited: u64,
    /// Attempts that found no usable instance (all ejected, panic disabled).
    pub no_healthy_upstream: u64,
    /// Calls answered by the breaker's fallback.
    pub fallbacks: u64,
    /// Outlier ejections enforced.
    pub ejections: u64,
    /// Ejections refused by max_ejection_percent.
    pub ejection_overflows: u64,
    /// Balancer picks made in panic mode (ignoring health).
    pub panic_picks: u64,
    /// Attempts sent to an instance that was down (a stale discovery cache, or no registry).
    pub calls_to_dead: u64,
    /// Discovery cache refreshes that failed (the registry down or cut off): the caller kept
    /// its stale list.
    pub failed_refreshes: u64,
    /// Attempts by the answer they got, as a proxy's cluster statistics count them.
    pub responses: Responses,
}

/// Attempts by answer: the status a callee answered with (200, 500, 503, 429, 403, or the
/// HTTP code or gRPC status a fault chose), or none: the per-try timeout fired, the
/// connection failed, or the call ended first (`cancelled`: a hedge's losers). Attempts
/// the caller refused itself (breaker, bulkhead...) are counted by their layer instead.
/// With those still in flight at the end, they add up to the attempts sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Responses {
    /// By [`Responses::KEYS`].
    pub counts: [u64; 8],
    /// Statuses a fault chose, in the order first seen (few: one per fault and code).
    pub chosen: Vec<(ErrorStatus, u64)>,
}

impl Responses {
    /// The names of `counts`, as `summary.json` writes them.
    pub const KEYS: [&'static str; 8] = [
        "200",
        "403",
        "429",
        "500",
        "503",
        "connect_failure",
        "timeout",
        "cancelled",
    ];

    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &Responses) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        for &(status, n) in &o.chosen {
            self.add_chosen(status, n);
        }
    }

    /// Counts `n` answers with a status a fault chose.
    pub fn add_chosen(&mut self, status: ErrorStatus, n: u64) {
        match self.chosen.iter_mut().find(|(s, _)| *s == status) {
            Some((_, c)) => *c += n,
            None => self.chosen.push((status, n)),
        }
    }

    /// Every non-zero count by name (fault statuses by their name: "502", "UNAVAILABLE"),
    /// sorted by name.
    pub fn named(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (k, &n) in Self::KEYS.iter().zip(&self.counts) {
            if n > 0 {
                out.insert(k.to_string(), n);
            }
        }
        for &(status, n) in &self.chosen {
            *out.entry(status.status().name()).or_insert(0) += n;
        }
        out
    }
}

impl EdgeStats {
    /// Adds `o`'s counters to these.
    pub fn add(&mut self, o: &EdgeStats) {
        let EdgeStats {
            calls,
            attempts,
            retries,
            ok,
            failed,
            hedges,
            breaker_rejected,
            budget_denied,
            bulkhead_rejected,
            throttled,
            limited,
            no_healthy_upstream,
            fallbacks,
            ejections,
            ejection_overflows,
            panic_picks,
            calls_to_dead,
            failed_refreshes,
            responses,
        } = o;
        self.calls += calls;
        self.attempts += attempts;
        self.retries += retries;
        self.ok += ok;
        self.failed += failed;
        self.hedges += hedges;
        self.breaker_rejected += breaker_rejected;
        self.budget_denied += budget_denied;
        self.bulkhead_rejected += bulkhead_rejected;
        self.throttled += throttled;
        self.limited += limited;
        self.no_healthy_upstream += no_healthy_upstream;
        self.fallbacks += fallbacks;
        self.ejections += ejections;
        self.ejection_overflows += ejection_overflows;
        self.panic_picks += panic_picks;
        self.calls_to_dead += calls_to_dead;
        self.failed_refreshes += failed_refreshes;
        self.responses.add(responses);
    }
}

/// Requests a service refused or dropped, by the layer that did it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// 429: over a rate limit.
    pub rate_limited: u64,
    /// Over the adaptive concurrency limit.
    pub concurrency_limited: u64,
    /// Dropped from the queue (CoDel, adaptive LIFO, max wait).
    pub shed: u64,
    /// Failed without work because their deadline had passed.
    pub expired: u64,
}

/// A pair's connections over the whole run (summed over its caller-side states).
#[derive(Clone, Debug, Default)]
pub struct ConnResult {
    /// Opened, reused, and why they closed.
    pub stats: crate::policy::pool::Stats,
    /// Open when the run ended.
    pub open_at_end: u64,
    /// New connections paid an mTLS handshake.
    pub mtls: bool,
}

/// One direction of a service's sidecars (whole run, every instance).
#[derive(Clone, Debug, Default)]
pub struct ProxyPass {
    /// Requests through.
    pub requests: u64,
    /// Refused with a local 503 (the proxy's queue was full).
    pub overloaded: u64,
    /// Share of the proxies' worker time busy.
    pub utilization: f64,
}

/// What a service's sidecars did, over the whole run (warmup included, as their CPU).
#[derive(Clone, Debug, Default)]
pub struct ProxyResult {
    /// Outbound proxies (its calls).
    pub outbound: ProxyPass,
    /// Inbound proxies (calls to it).
    pub inbound: ProxyPass,
    /// Calls to it denied by the authorization policy (403).
    pub denied: u64,
    /// Attempts refused because one of its sidecars was down (its own calls, and calls to it).
    pub unreachable: u64,
    /// mTLS handshakes its outbound proxies made.
    pub handshakes: u64,
}

/// One host's CPU over the measured part of the run.
#[derive(Clone, Debug, Default)]
pub struct HostResult {
    /// Its name.
    pub name: String,
    /// Cores its runnable threads share.
    pub cores: u32,
    /// Its zone, if it has one.
    pub zone: Option<String>,
    /// The instance slots placed on it (`service/k`).
    pub instances: Vec<String>,
    /// Cores its instances request (placement's bookkeeping).
    pub requested_cpu: f64,
    /// Share of its core time used (by the model's work and outside hogs alike).
    pub utilization: f64,
    /// Mean runnable threads (the load average over the run).
    pub load: f64,
    /// Work steps that ran on it and ended after warm-up.
    pub bursts: u64,
    /// Their wall time over their CPU time: 1 when nothing waited for a core.
    pub stretch: Option<f64>,
}

/// One named cache's counters over the measured part of the run (hits, misses and the rest
/// are lookups; fills, evictions and invalidations are its entries' changes).
#[derive(Clone, Debug, Default)]
pub struct CacheResult {
    /// Its name.
    pub name: String,
    /// Lookups answered from the cache (stale ones included).
    pub hits: u64,
    /// Of those, answered from an expired entry inside its stale window.
    pub stale_hits: u64,
    /// Lookups that made the call.
    pub misses: u64,
    /// Lookups that waited for another's fetch of the key (single flight).
    pub coalesced: u64,
    /// Refreshes of stale entries started.
    pub refreshes: u64,
    /// Hits on an entry older than its data (updated since it was filled).
    pub stale_reads: u64,
    /// Fetches that failed (nothing filled; their waiters failed too).
    pub fetch_failures: u64,
    /// Entries filled.
    pub fills: u64,
    /// Entries evicted for room.
    pub evictions: u64,
    /// Entries removed by updates.
    pub invalidations: u64,
    /// Entries held at the end.
    pub entries_at_end: u64,
}

/// The clients of a registry service (`[registry] service = ...`), after warm-up.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryResult {
    /// The service the registry runs as.
    pub service: String,
    /// Per operation (register, heartbeat, report, lookup): its name and counts.
    pub ops: Vec<(&'static str, RegistryOpResult)>,
}

/// One operation's requests to the registry service.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RegistryOpResult {
    /// Requests sent (or tried: with no registry instance running, an error at once).
    pub sent: u64,
    /// Answered with a success in time.
    pub ok: u64,
    /// Refused, rejected or failed.
    pub errors: u64,
    /// Not answered within the timeout.
    pub timeouts: u64,
}
