//! The validated, id-resolved description of a system that the model runs (built by `scenario`).

use crate::dist::Dist;
use crate::time::{SimDuration, SimTime};

pub use crate::ids::{ServiceId, WorkloadId};

mod registry;
pub use registry::*;

/// Order in which a busy instance serves its waiting work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discipline {
    /// First in, first out.
    Fifo,
    /// Last in, first out (fresh requests first: bounds latency of the lucky under overload).
    Lifo,
    /// Facebook's adaptive LIFO with controlled delay (POLICIES.md §14.2).
    AdaptiveLifo {
        /// Queue timeout under a standing queue (M, 5 ms).
        short_timeout: SimDuration,
        /// Queue timeout otherwise, and the standing-queue horizon (N, 100 ms).
        long_timeout: SimDuration,
    },
    /// The most critical work first, first come first served within a level; a full queue
    /// pushes out the newest of a lower level (`sim/policy/criticality.rs`).
    Priority,
}

/// Load shedding when work leaves the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Shedding {
    /// Drop work that waited longer than this.
    pub max_wait: Option<SimDuration>,
    /// folly CoDel (target, interval).
    pub codel: Option<(SimDuration, SimDuration)>,
}

/// Who keeps a piece of caller-side policy state (a balancer, breaker, outlier detector,
/// retry budget, bulkhead, concurrency limiter or throttle, and the discovery cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateScope {
    /// Each caller instance keeps its own, as Envoy sidecars, gRPC channels and
    /// Resilience4j registries do.
    Instance,
    /// One shared by every instance of the calling service.
    Service,
}

/// The `state` each policy sets, by kind, in the order of its policy vector.
#[derive(Clone, Debug, Default)]
pub struct PolicyStates {
    /// Retry policies (their budgets).
    pub retry: Vec<Option<StateScope>>,
    /// Breakers.
    pub breaker: Vec<Option<StateScope>>,
    /// Balancers (and the discovery cache with them).
    pub balancer: Vec<Option<StateScope>>,
    /// Outlier detectors.
    pub outlier: Vec<Option<StateScope>>,
    /// Bulkheads and connection pools.
    pub bulkhead: Vec<Option<StateScope>>,
    /// Adaptive concurrency limits.
    pub concurrency: Vec<Option<StateScope>>,
    /// Client-side throttles.
    pub throttle: Vec<Option<StateScope>>,
    /// Connection pools.
    pub pool: Vec<Option<StateScope>>,
}

/// Everything a run needs: limits, network, services and workloads.
#[derive(Clone, Debug)]
pub struct SystemSpec {
    /// Scenario name.
    pub name: String,
    /// Which requests are kept as traces.
    pub trace: TraceSpec,
    /// Simulated length; arrivals stop and the run ends here.
    pub duration: SimDuration,
    /// Statistics ignore requests that start before this.
    pub warmup: SimDuration,
    /// Root seed of every random stream.
    pub seed: u64,
    /// Width of a time-series bucket.
    pub bucket: SimDuration,
    /// Hard limit on delivered events; hitting it ends the run and is reported.
    pub max_events: u64,
    /// Hard limit on requests alive at once; hitting it ends the run and is reported.
    pub max_in_flight: usize,
    /// The network between services.
    pub network: NetworkSpec,
    /// The services.
    pub services: Vec<ServiceSpec>,
    /// The load.
    pub workloads: Vec<WorkloadSpec>,
    /// Named retry policies.
    pub retries: Vec<RetryPolicy>,
    /// Named circuit breakers.
    pub breakers: Vec<BreakerPolicy>,
    /// Named hedging policies.
    pub hedges: Vec<HedgePolicy>,
    /// Named caches.
    pub caches: Vec<CachePolicy>,
    /// Named load balancers.
    pub balancers: Vec<BalancerPolicy>,
    /// Named outlier detectors.
    pub outliers: Vec<OutlierPolicy>,
    /// Named bulkheads.
    pub bulkheads: Vec<BulkheadPolicy>,
    /// Named rate limiters.
    pub rate_limits: Vec<RateLimitPolicy>,
    /// Named adaptive concurrency limits.
    pub concurrency: Vec<ConcurrencyPolicy>,
    /// Named client-side throttles.
    pub throttles: Vec<ThrottlePolicy>,
    /// Named connection pools.
    pub pools: Vec<PoolPolicy>,
    /// Sidecar proxies (`None`: no mesh, or `enabled = false`).
    pub mesh: Option<MeshSpec>,
    /// Each policy's own `state`, if it sets one.
    pub states: PolicyStates,
    /// Scheduled faults.
    pub faults: Vec<FaultSpec>,
    /// What counts as recovered after a disturbance (`[recovery]`).
    pub recovery: crate::results::recovery::Bands,
    /// Discovery through a registry (`None`: callers know every instance).
    pub registry: Option<RegistrySpec>,
    /// Zone names.
    pub zones: Vec<String>,
    /// Machines whose cores co-located instances share (empty: every instance has its own).
    pub hosts: Vec<HostSpec>,
    /// Broker queues.
    pub queues: Vec<QueueSpec>,
    /// Broker topics.
    pub topics: Vec<TopicSpec>,
    /// Orchestrated sagas.
    pub sagas: Vec<SagaSpec>,
    /// Strangler-fig migrations.
    pub migrations: Vec<MigrationSpec>,
    /// Two-phase commits.
    pub transactions: Vec<TxSpec>,
    /// Event stores (append-only logs).
    pub event_stores: Vec<EventStoreSpec>,
    /// Projections: read models fed from event stores.
    pub projections: Vec<ProjectionSpec>,
    /// Header names requests may carry (at most 8; bit k of a request's header set is
    /// `headers[k]`).
    pub headers: Vec<String>,
}

/// A queue held by a broker service.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    /// Its name.
    pub name: String,
    /// The broker service.
    pub broker: ServiceId,
    /// Delivery semantics.
    pub config: crate::policy::broker::Config,
    /// Most messages held.
    pub max_messages: u32,
    /// Consumers: (service, prefetch per instance, endpoint, idempotency TTL).
    pub consumers: Vec<ConsumerSpec>,
    /// A choreographed saga's step queue: (saga, step << 1 | compensation).
    pub saga: Option<(u32, u32)>,
    /// Eventual-consistency probes: delays t at which to report the share of messages
    /// applied within t of being stored.
    pub visible_within: Vec<SimDuration>,
}

/// A service consuming a queue.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    /// The consuming service.
    pub service: ServiceId,
    /// Messages each instance handles at once.
    pub concurrency: u32,
    /// The endpoint that handles them.
    pub endpoint: u32,
    /// An idempotency store keeping handled ids this long.
    pub idempotency_ttl: Option<SimDuration>,
}

/// A topic: every subscriber queue gets a copy.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// The broker service.
    pub broker: ServiceId,
    /// Subscriber queues (indices into [`SystemSpec::queues`]).
    pub queues: Vec<u32>,
}

/// Where a publish goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A queue (index into [`SystemSpec::queues`]).
    Queue(u32),
    /// A topic (index into [`SystemSpec::topics`]).
    Topic(u32),
}

/// A publish step's message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PublishSpec {
    /// Where to.
    pub dest: Dest,
    /// Share of messages every consumer fails on.
    pub poison: f64,
}

/// A fault active during [at, until).
#[derive(Clone, Debug)]
pub struct FaultSpec {
    /// What it does.
    pub kind: FaultKind,
    /// Start.
    pub at: SimTime,
    /// End (exclusive); the horizon when open-ended.
    pub until: SimTime,
    /// The service it hits.
    pub target: ServiceId,
    /// One instance only (crash, slow, delay, abort); all when `None`.
    pub instance: Option<u32>,
    /// The other end, for link faults (partition, reset, loss).
    pub peer: Option<ServiceId>,
    /// Share of requests affected (delay, abort).
    pub p: f64,
}

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// Requests wait this long on arrival before being handled (Istio fixed delay).
    Delay(SimDuration),
    /// Requests fail at once with this status (Istio abort): an HTTP code or a gRPC status;
    /// a 5xx other than 502–504 is an error, any other a rejection (`Status::attempt_outcome`).
    Abort(ErrorStatus),
    /// Work takes `multiply` times longer (for a share `p` of requests), and/or the instance
    /// runs with `workers` workers.
    Slow {
        /// Work multiplier.
        multiply: f64,
        /// Workers per instance during the fault.
        workers: Option<u32>,
    },
    /// Instances are down: connections are refused (a fast error to the caller).
    Crash,
    /// Messages between the two services are dropped: callers time out.
    Partition,
    /// Messages between the two services fail fast (connection reset).
    Reset,
    /// Messages between the two services are lost with this probability.
    Loss(f64),
    /// Instances freeze: nothing arrives or progresses until the pause ends.
    Pause,
    /// Every instance in the zone (an index into [`SystemSpec::zones`]) is down: crash semantics.
    /// The fault's `target` is unused.
    ZoneOutage(u32),
    /// Messages between instances in the two zones are dropped. `target` is unused.
    ZonePartition(u32, u32),
    /// The registry is down: heartbeats and checks stop, callers' cache refreshes fail (they
    /// keep their stale lists), and its health loop stands still. `target` is unused.
    RegistryOutage,
    /// The target service is cut off from the registry: its instances' heartbeats and checks
    /// do not arrive, and its own cache refreshes fail.
    RegistryPartition,
    /// Instances' sidecar proxies crash: the instance is unreachable (its inbound
    /// connections are refused) and cannot call out; the application keeps running.
    ProxyCrash,
    /// Each instance fails and recovers at random: exponential times to failure and to repair.
    RandomCrash {
        /// Mean time to failure.
        mttf: SimDuration,
        /// Mean time to repair.
        mttr: SimDuration,
    },
    /// Every instance on the host (an index into [`SystemSpec::hosts`]) is down: crash
    /// semantics. `target` is unused.
    HostOutage(u32),
    /// `threads` runnable threads outside the model compete for the host's cores (a noisy
    /// neighbour). `target` is unused.
    CpuHog {
        /// The host.
        host: u32,
        /// Runnable threads added.
        threads: u32,
    },
    /// Stop-the-world pauses on each instance, as a garbage collector makes them: `pause`
    /// long, every `every` (start to start, from a random phase) when `periodic`, else after
    /// exponential gaps of mean `every` (end to start).
    Gc {
        /// The period, or the mean gap.
        every: SimDuration,
        /// Each pause's length.
        pause: SimDuration,
        /// Fixed period (true) or exponential gaps.
        periodic: bool,
    },
}

/// A machine whose cores its instances share (processor sharing, `policy::cpu`).
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// Its name.
    pub name: String,
    /// Cores its runnable threads share.
    pub cores: u32,
    /// Its zone (an index into [`SystemSpec::zones`]; `u32::MAX`: none).
    pub zone: u32,
}

/// Where a breaker or bulkhead sits relative to the retry loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Inside: every attempt asks it (Resilience4j's default order, Envoy's per-request limits).
    #[default]
    Attempt,
    /// Outside: the logical call asks once and holds it across its retries.
    Call,
}

/// `[policy.balancer.NAME]`.
#[derive(Clone, Debug)]
pub struct BalancerPolicy {
    /// Its name.
    pub name: String,
    /// The algorithm.
    pub kind: crate::policy::balancer::Kind,
    /// Envoy healthy_panic_threshold, percent.
    pub panic_threshold: f64,
    /// Instance weights by index (missing ones weigh 1).
    pub weights: Vec<u32>,
    /// Prefer the caller's zone (with at least `min_local` usable instances there).
    pub zone_aware: Option<u32>,
    /// Envoy slow start: (window, aggression, min weight percent).
    pub slow_start: Option<(SimDuration, f64, f64)>,
}

/// A cold start: for `duration` after an instance boots, its work takes longer, by a factor
/// that falls linearly from `multiply` to 1 (cold caches, JIT, connection pools).
#[derive(Clone, Copy, Debug)]
pub struct ColdStart {
    /// How long it lasts.
    pub duration: SimDuration,
    /// Work multiplier right after boot.
    pub multiply: f64,
}

/// `[policy.outlier.NAME]`.
#[derive(Clone, Debug)]
pub struct OutlierPolicy {
    /// Its name.
    pub name: String,
    /// Envoy parameters.
    pub config: crate::policy::outlier::Config,
}

/// `[policy.bulkhead.NAME]`.
#[derive(Clone, Debug)]
pub struct BulkheadPolicy {
    /// Its name.
    pub name: String,
    /// Limits.
    pub config: crate::policy::bulkhead::Config,
    /// Per attempt or per call.
    pub scope: Scope,
}

/// What a rate limiter keys its buckets by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKey {
    /// One bucket per instance.
    Global,
    /// One per caller: the calling service, or the request key for clients.
    Client,
    /// One per endpoint.
    Route,
}

/// The algorithm of a rate limiter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateLimitKind {
    /// Envoy token bucket.
    TokenBucket {
        /// Capacity.
        max_tokens: u64,
        /// Tokens per fill.
        tokens_per_fill: u64,
        /// Fill period.
        fill_interval: SimDuration,
    },
    /// Resilience4j AtomicRateLimiter: requests wait up to `timeout` for a later cycle.
    Resilience4j {
        /// limitForPeriod.
        limit: u32,
        /// limitRefreshPeriod.
        period: SimDuration,
        /// timeoutDuration.
        timeout: SimDuration,
    },
    /// GCRA.
    Gcra {
        /// Emission interval (1 / rate).
        period: SimDuration,
        /// Burst.
        burst: u64,
    },
}

/// `[policy.rate_limit.NAME]`.
#[derive(Clone, Debug)]
pub struct RateLimitPolicy {
    /// Its name.
    pub name: String,
    /// Algorithm.
    pub kind: RateLimitKind,
    /// Keying.
    pub key: LimitKey,
}

/// `[policy.concurrency.NAME]`.
#[derive(Clone, Debug)]
pub struct ConcurrencyPolicy {
    /// Its name.
    pub name: String,
    /// Algorithm with its parameters.
    pub algorithm: crate::policy::concurrency::Algorithm,
    /// Starting limit.
    pub initial: f64,
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// `[policy.throttle.NAME]`.
#[derive(Clone, Debug)]
pub struct ThrottlePolicy {
    /// Its name.
    pub name: String,
    /// Success rate below which rejection starts (1/K).
    pub threshold: f64,
    /// Aggression (1 = linear).
    pub aggression: f64,
    /// Cap of the rejection probability.
    pub max_reject: f64,
    /// Requests per second below which nothing is rejected.
    pub min_rps: f64,
    /// Sliding window.
    pub window: SimDuration,
}

pub use crate::policy::fallback::Fallback;

impl SystemSpec {
    /// The end of the run.
    pub fn horizon(&self) -> SimTime {
        SimTime::ZERO.after(self.duration)
    }

    /// Whether anything in the system looks at criticality: a workload or a call that sets
    /// one, or a queue that orders or sheds by it. Then every service counts its outcomes
    /// by criticality (so a variant without priorities reports the same figures).
    pub fn uses_criticality(&self) -> bool {
        let call_sets = |c: &CallSpec| c.criticality.is_some();
        self.workloads
            .iter()
            .any(|w| w.criticality != Criticality::Critical)
            || self.services.iter().any(|s| {
                s.discipline == Discipline::Priority
                    || s.criticality_shed.is_some()
                    || s.endpoints
                        .iter()
                        .flat_map(|e| &e.steps)
                        .any(|st| st.calls().iter().any(call_sets))
            })
    }
}

/// Latency and loss between services.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// One-way latency of a hop with no override.
    pub latency: Dist,
    /// Probability that a message (request or response) is lost.
    pub loss: f64,
    /// Per-link overrides, applying in both directions.
    pub links: Vec<LinkSpec>,
    /// Latency between instances in different zones (replaces the hop's latency).
    pub cross_zone: Option<Dist>,
}

/// A per-link override of latency and loss.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    /// One end.
    pub a: ServiceId,
    /// The other end.
    pub b: ServiceId,
    /// One-way latency.
    pub latency: Dist,
    /// Loss probability.
    pub loss: f64,
}

/// One service: identical instances behind one name.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// Name, unique.
    pub name: String,
    /// Number of instances.
    pub replicas: u32,
    /// Concurrent local-work slots per instance.
    pub workers: u32,
    /// Work waiting for a worker, per instance; arrivals beyond it are rejected.
    pub queue_capacity: u32,
    /// Thread-per-request pool per instance: a request holds a thread from admission to
    /// its response, waiting on calls included. `None`: no such limit (asynchronous server).
    pub threads: Option<u32>,
    /// Queue order.
    pub discipline: Discipline,
    /// Dropping work that waited too long.
    pub shedding: Shedding,
    /// Queue lengths at which each criticality is refused (`None`: all at the capacity).
    pub criticality_shed: Option<Thresholds>,
    /// Rate limiter on arrivals (index into [`SystemSpec::rate_limits`]).
    pub rate_limit: Option<u32>,
    /// Adaptive concurrency limit on arrivals (index into [`SystemSpec::concurrency`]).
    pub concurrency: Option<u32>,
    /// Whose caller-side policy state this service's calls use, unless a policy says.
    pub policy_state: Option<StateScope>,
    /// Calls carry the request's deadline downstream.
    pub propagate_deadline: bool,
    /// Expired requests are failed without work.
    pub drop_expired: bool,
    /// Probability that a request fails on its own (after its steps), as a 5xx would.
    pub error_rate: f64,
    /// Optimistic concurrency on the request's key: a request reads the key's version when
    /// its first work starts and fails with a conflict if another committed before it.
    pub occ: bool,
    /// Zone of each instance slot (indices into [`SystemSpec::zones`]); empty without zones.
    pub zones: Vec<u32>,
    /// Host of each instance slot (indices into [`SystemSpec::hosts`]); empty without hosts.
    pub hosts: Vec<u32>,
    /// Cores each instance requests on its host (placement's bookkeeping).
    pub cpu: f64,
    /// A horizontal autoscaler.
    pub autoscale: Option<AutoscaleSpec>,
    /// A canary version.
    pub canary: Option<CanarySpec>,
    /// A rolling update to a new version.
    pub rollout: Option<RolloutSpec>,
    /// Slower work right after an instance boots.
    pub cold_start: Option<ColdStart>,
    /// How often its caches of its callees' instances refresh, when not the registry's
    /// `cache_ttl` (a server-side load balancer watching the registry refreshes fast).
    pub cache_ttl: Option<SimDuration>,
    /// Endpoints (at least one).
    pub endpoints: Vec<EndpointSpec>,
}

/// What an autoscaler aims at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleTarget {
    /// Share of worker time busy over the last interval.
    Utilization(f64),
    /// Requests in flight per instance.
    InFlight(f64),
}

/// A horizontal autoscaler (Kubernetes HPA semantics).
#[derive(Clone, Debug)]
pub struct AutoscaleSpec {
    /// The metric and its target.
    pub target: ScaleTarget,
    /// Evaluation period.
    pub interval: SimDuration,
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Decision to serving.
    pub provision: SimDuration,
    /// Scale-down stabilization window.
    pub scale_down_window: SimDuration,
    /// Dead band around the target.
    pub tolerance: f64,
}

/// A canary version of a service.
#[derive(Clone, Debug)]
pub struct CanarySpec {
    /// Its instances.
    pub replicas: u32,
    /// Its local work (replacing each endpoint's first work step).
    pub work: Option<Dist>,
    /// Its error rate.
    pub error_rate: f64,
    /// How traffic moves to it, and when it moves back.
    pub shift: ShiftSpec,
}

/// Traffic moving to a new version or service: a weight schedule, routes that override it,
/// and an automatic rollback (a canary's, a migration's).
#[derive(Clone, Debug)]
pub struct ShiftSpec {
    /// (from, percent of traffic to the new side), sorted.
    pub weights: Vec<(SimTime, f64)>,
    /// Automatic rollback.
    pub rollback: Option<RollbackSpec>,
    /// Requests matched by a route go to its side whatever the weight (first match wins).
    pub routes: Vec<RouteSpec>,
}

/// A route: requests that match go to one version.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RouteSpec {
    /// What a request must carry.
    pub matches: RouteMatch,
    /// To the new side (the canary, the replacement: true) or the old one.
    pub canary: bool,
}

/// What a route matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RouteMatch {
    /// A header (bit index into [`SystemSpec::headers`]).
    Header(u8),
    /// A request key in `lo..=hi`.
    Keys(u64, u64),
}

/// A rolling update (Kubernetes Deployment semantics): from `at`, new-version instances
/// replace the old ones, at most `max_surge` above and `max_unavailable` below the replicas.
#[derive(Clone, Debug)]
pub struct RolloutSpec {
    /// When it starts.
    pub at: SimTime,
    /// Instances above the replicas while it runs.
    pub max_surge: u32,
    /// Ready instances below the replicas allowed while it runs.
    pub max_unavailable: u32,
    /// Start to serving of a new instance.
    pub startup: SimDuration,
    /// Old instances drain (deregister, finish, go after `grace`) rather than stop at once.
    pub drain: bool,
    /// Longest drain.
    pub grace: SimDuration,
    /// The new version's local work (replacing each endpoint's first work step).
    pub work: Option<Dist>,
    /// The new version's error rate.
    pub error_rate: f64,
}

/// When a canary is rolled back.
#[derive(Clone, Copy, Debug)]
pub struct RollbackSpec {
    /// Error-rate threshold.
    pub error_rate: Option<f64>,
    /// p99 threshold.
    pub p99: Option<SimDuration>,
    /// Window.
    pub window: SimDuration,
    /// Requests needed to judge.
    pub min_requests: u64,
}

impl ServiceSpec {
    /// Slots of the stable version: the replicas, or the autoscaler's maximum when larger.
    pub fn stable_slots(&self) -> u32 {
        self.autoscale
            .as_ref()
            .map_or(self.replicas, |a| a.max.max(self.replicas))
    }

    /// All instance slots: the stable version's, then the canary's or a rollout's new
    /// instances (each new instance gets a slot of its own, as a new pod gets a new address).
    pub fn slots(&self) -> u32 {
        self.stable_slots()
            + self.canary.as_ref().map_or(0, |c| c.replicas)
            + self.rollout.as_ref().map_or(0, |_| self.replicas)
    }

    /// Its discovery caches' refresh period under registry `reg`.
    pub fn cache_ttl(&self, reg: &RegistrySpec) -> SimDuration {
        self.cache_ttl.unwrap_or(reg.cache_ttl)
    }

    /// The new version's (work replacing the first step, error rate), from a canary or rollout.
    pub fn new_version(&self) -> Option<(Option<&Dist>, f64)> {
        match (&self.canary, &self.rollout) {
            (Some(c), _) => Some((c.work.as_ref(), c.error_rate)),
            (None, Some(r)) => Some((r.work.as_ref(), r.error_rate)),
            (None, None) => None,
        }
    }
}

/// One operation of a service, with its own steps.
#[derive(Clone, Debug)]
pub struct EndpointSpec {
    /// Name, unique within the service.
    pub name: String,
    /// Relative weight when a caller does not name an endpoint.
    pub weight: f64,
    /// What handling a request does, in order.
    pub steps: Vec<Step>,
}

/// One step of a handler.
#[derive(Clone, Debug)]
pub enum Step {
    /// Local work holding a worker for a drawn duration.
    Work(Dist),
    /// One synchronous call.
    Call(CallSpec),
    /// Calls issued together; the step ends when all have answered.
    Parallel(Vec<CallSpec>),
    /// Starts a saga (index into [`SystemSpec::sagas`]); the handler goes on at once, or
    /// with `wait` (true) waits for its end and fails unless it completed.
    Saga(u32, bool),
    /// Runs a two-phase commit (index into [`SystemSpec::transactions`]) and waits for its
    /// decision: on with the handler after a commit, failed after an abort.
    Tx(u32),
    /// A call that a strangler-fig migration (index into [`SystemSpec::migrations`]) sends
    /// to the old service (`[0]`) or to its replacement (`[1]`).
    Migrate(u32, Box<[CallSpec; 2]>),
}

impl Step {
    /// The calls this step may make (none for work and sagas).
    pub fn calls(&self) -> &[CallSpec] {
        match self {
            Step::Call(c) => std::slice::from_ref(c),
            Step::Parallel(cs) => cs,
            Step::Migrate(_, cs) => &cs[..],
            Step::Work(_) | Step::Saga(..) | Step::Tx(_) => &[],
        }
    }

    /// The same, to change them (validation).
    pub fn calls_mut(&mut self) -> &mut [CallSpec] {
        match self {
            Step::Call(c) => std::slice::from_mut(c),
            Step::Parallel(cs) => cs,
            Step::Migrate(_, cs) => &mut cs[..],
            Step::Work(_) | Step::Saga(..) | Step::Tx(_) => &mut [],
        }
    }
}

/// A strangler-fig migration: a facade's calls to an old service move to its replacement
/// by a weight schedule and routes, and move back if the replacement fails them.
#[derive(Clone, Debug)]
pub struct MigrationSpec {
    /// Its name.
    pub name: String,
    /// Its subject in `events.csv`: "migration:NAME" (apart from a service's name).
    pub label: String,
    /// The service being replaced.
    pub from: ServiceId,
    /// Its replacement.
    pub to: ServiceId,
    /// How traffic moves, and when it moves back.
    pub shift: ShiftSpec,
}

/// An orchestrated saga.
#[derive(Clone, Debug)]
pub struct SagaSpec {
    /// Its name.
    pub name: String,
    /// The service that runs it.
    pub orchestrator: ServiceId,
    /// Control: steps, pivot, attempts, back-off.
    pub config: crate::policy::saga::Config,
    /// Step names.
    pub step_names: Vec<String>,
    /// Per step: the action and compensation calls.
    pub calls: Vec<(Option<CallSpec>, Option<CallSpec>)>,
    /// The orchestrator's hidden endpoint (weight 0) whose steps are these calls.
    pub endpoint: u32,
    /// Per step: the hidden endpoint's step index of the action and of the compensation.
    pub call_steps: Vec<[Option<u32>; 2]>,
    /// Choreography: per step, the queues of its action and compensation events (the
    /// participants consume them); `None`: orchestration.
    pub choreography: Option<Vec<[Option<u32>; 2]>>,
    /// Participants deduplicate its actions and compensations by saga and step.
    pub idempotent: bool,
}

/// A two-phase commit: its coordinator's hidden endpoint holds, per participant k, the call
/// carrying its PREPARE (step k), its COMMIT (n + k) and its ABORT (2n + k).
#[derive(Clone, Debug)]
pub struct TxSpec {
    /// Its name.
    pub name: String,
    /// The service that coordinates it.
    pub coordinator: ServiceId,
    /// The participants' services, in order.
    pub participants: Vec<ServiceId>,
    /// The coordinator's hidden endpoint (weight 0).
    pub endpoint: u32,
    /// Wait before resending an unacknowledged decision.
    pub resend: SimDuration,
}

/// An append-only event log kept by a service.
#[derive(Clone, Debug)]
pub struct EventStoreSpec {
    /// Its name.
    pub name: String,
    /// The service that stores it.
    pub service: ServiceId,
    /// Events it holds at most.
    pub max_events: u64,
}

/// A projector applying an event store's events in order to a read model.
#[derive(Clone, Debug)]
pub struct ProjectionSpec {
    /// Its name.
    pub name: String,
    /// The event store it follows (index into [`SystemSpec::event_stores`]).
    pub store: u32,
    /// The service that runs it and keeps the read model.
    pub service: ServiceId,
    /// The endpoint that applies one event.
    pub endpoint: u32,
    /// When it starts.
    pub start: SimTime,
    /// The offset it starts from; `None`: the log's end when it starts.
    pub from: Option<u64>,
    /// An apply unanswered this long is sent again.
    pub timeout: SimDuration,
    /// Wait after a failed apply.
    pub retry_delay: SimDuration,
}

/// A synchronous call to another service.
#[derive(Clone, Debug)]
pub struct CallSpec {
    /// Callee.
    pub to: ServiceId,
    /// Callee endpoint; `None` picks one by weight.
    pub endpoint: Option<u32>,
    /// The caller stops waiting after this long (the callee keeps working).
    pub timeout: Option<SimDuration>,
    /// Probability that the call is made at all (conditional paths).
    pub probability: f64,
    /// Whether a failed call fails the caller's request.
    pub required: bool,
    /// Retry policy (index into [`SystemSpec::retries`]).
    pub retry: Option<u32>,
    /// Circuit breaker (index into [`SystemSpec::breakers`]); one breaker per caller service,
    /// callee and policy name, shared by the caller's instances.
    pub breaker: Option<u32>,
    /// Hedging policy (index into [`SystemSpec::hedges`]); never together with `retry`.
    pub hedge: Option<u32>,
    /// The cache in front of the call (index into [`SystemSpec::caches`]).
    pub cache: Option<u32>,
    /// The cache whose data the call updates (index into [`SystemSpec::caches`]).
    pub updates: Option<u32>,
    /// Load balancer (index into [`SystemSpec::balancers`]); round robin when `None`.
    pub balancer: Option<u32>,
    /// Outlier detector (index into [`SystemSpec::outliers`]).
    pub outlier: Option<u32>,
    /// Bulkhead (index into [`SystemSpec::bulkheads`]).
    pub bulkhead: Option<u32>,
    /// Client-side adaptive concurrency limit (index into [`SystemSpec::concurrency`]).
    pub concurrency: Option<u32>,
    /// Client-side adaptive throttling (index into [`SystemSpec::throttles`]).
    pub throttle: Option<u32>,
    /// Connection pool (index into [`SystemSpec::pools`]); a meshed call without one uses
    /// the mesh's.
    pub pool: Option<u32>,
    /// A publish: the callee is the broker, which stores the message before it answers.
    pub publish: Option<PublishSpec>,
    /// An append (index into [`SystemSpec::event_stores`]): the callee is the store's
    /// service, which commits the event when its handler succeeds.
    pub append: Option<u32>,
    /// A read of a projection's read model (index into [`SystemSpec::projections`]).
    pub reads: Option<u32>,
    /// A database write that commits an event: (where the event goes, through an outbox).
    pub write: Option<(Dest, bool)>,
    /// The publish half of a dual write (the event its write committed).
    pub after_write: bool,
    /// A publish waits for the broker's acknowledgement (else fire and forget).
    pub wait: bool,
    /// The criticality the call's requests carry; `None`: the caller's request's.
    pub criticality: Option<Criticality>,
}

pub use crate::policy::cache::CachePolicy;
pub use crate::policy::criticality::{Criticality, Thresholds};
pub use crate::policy::hedge::HedgePolicy;
pub use crate::policy::outcome::{AttemptOutcome, OutcomeSet};
pub use crate::policy::status::{ErrorStatus, RetryOn, Status};

pub use crate::policy::budget::BudgetSpec;
pub use crate::policy::retry::RetryPolicy;

/// A named circuit breaker (`[policy.breaker.NAME]`).
#[derive(Clone, Debug)]
pub struct BreakerPolicy {
    /// Its name.
    pub name: String,
    /// The state machine's configuration.
    pub config: crate::policy::breaker::Config,
    /// Which attempt outcomes count as failures.
    pub record: OutcomeSet,
    /// Which outcomes count neither way (Resilience4j's ignoreExceptions).
    pub ignore: OutcomeSet,
    /// A fixed answer instead of a failure.
    pub fallback: Option<Fallback>,
    /// Per attempt or per call.
    pub scope: Scope,
}

/// A source of requests aimed at one service.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// Name, unique.
    pub name: String,
    /// Entry service.
    pub target: ServiceId,
    /// Entry endpoint; `None` picks one by weight.
    pub endpoint: Option<u32>,
    /// The client gives up after this long.
    pub timeout: Option<SimDuration>,
    /// Requests carry a key drawn from `0..keys` (0: every key is 0).
    pub keys: u64,
    /// Zipf exponent of the key draw; `None`: uniform.
    pub zipf: Option<f64>,
    /// (header bit, share of requests that carry it).
    pub headers: Vec<(u8, f64)>,
    /// The criticality its requests carry (and their calls, unless a call sets its own).
    pub criticality: Criticality,
    /// Open or closed loop.
    pub arrivals: Arrivals,
}

/// How requests arrive.
#[derive(Clone, Debug)]
pub enum Arrivals {
    /// Open loop: arrivals independent of responses, with a rate profile (per second).
    Open {
        /// The rate over time.
        profile: RateProfile,
        /// Exponential gaps (Poisson process, thinned for varying rates) or fixed gaps.
        poisson: bool,
    },
    /// Closed loop: `users` clients each send, wait for the answer, think, repeat.
    Closed {
        /// Number of clients.
        users: u32,
        /// Pause between an answer and the next request.
        think: Dist,
    },
    /// `size` requests at the same instant, from `at`, every `every` (None: once), `count`
    /// times (u32::MAX: until the end).
    Burst {
        /// Requests per burst.
        size: u32,
        /// First burst.
        at: SimTime,
        /// Period.
        every: Option<SimDuration>,
        /// Bursts.
        count: u32,
        /// Each burst's requests share a key of their own.
        same_key: bool,
    },
}

/// Arrival rate (requests per second) as a function of time.
#[derive(Clone, Debug)]
pub enum RateProfile {
    /// Fixed rate.
    Flat(f64),
    /// Linear from `from` to `to` over `over`, then `to`.
    Ramp {
        /// Rate at t = 0.
        from: f64,
        /// Rate after the ramp.
        to: f64,
        /// Ramp length.
        over: SimDuration,
    },
    /// Piecewise constant: `(start, rate)` sorted by start; rate before the first start is 0.
    Steps(Vec<(SimTime, f64)>),
    /// `base`, except `peak` during [at, at + length).
    Spike {
        /// Normal rate.
        base: f64,
        /// Rate during the spike.
        peak: f64,
        /// Spike start.
        at: SimTime,
        /// Spike length.
        length: SimDuration,
    },
    /// `mean + amplitude · sin(2π t / period)`, floored at 0.
    Diurnal {
        /// Mean rate.
        mean: f64,
        /// Swing around the mean.
        amplitude: f64,
        /// Period of one cycle.
        period: SimDuration,
    },
}

impl RateProfile {
    /// Rate at `t`, per second.
    pub fn rate_at(&self, t: SimTime) -> f64 {
        match self {
            RateProfile::Flat(r) => *r,
            RateProfile::Ramp { from, to, over } => {
                if over.0 == 0 || t.0 >= over.0 {
                    *to
                } else {
                    from + (to - from) * (t.0 as f64 / over.0 as f64)
                }
            }
            RateProfile::Steps(steps) => {
                let i = steps.partition_point(|(start, _)| *start <= t);
                if i == 0 {
                    0.0
                } else {
                    steps[i - 1].1
                }
            }
            RateProfile::Spike {
                base,
                peak,
                at,
                length,
            } => {
                if t >= *at && t < at.after(*length) {
                    *peak
                } else {
                    *base
                }
            }
            RateProfile::Diurnal {
                mean,
                amplitude,
                period,
            } => {
                let phase = (t.0 % period.0.max(1)) as f64 / period.0.max(1) as f64;
                (mean + amplitude * (2.0 * std::f64::consts::PI * phase).sin()).max(0.0)
            }
        }
    }

    /// An upper bound of the rate over all time (for thinning).
    pub fn max_rate(&self) -> f64 {
        match self {
            RateProfile::Flat(r) => *r,
            RateProfile::Ramp { from, to, .. } => from.max(*to),
            RateProfile::Steps(steps) => steps.iter().map(|s| s.1).fold(0.0, f64::max),
            RateProfile::Spike { base, peak, .. } => base.max(*peak),
            RateProfile::Diurnal {
                mean, amplitude, ..
            } => mean + amplitude.abs(),
        }
    }
}

/// `[trace]`: which root requests are kept as traces (a span per attempt).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpec {
    /// Share of roots kept at random (by a hash of the trace id).
    pub sample: f64,
    /// At most this many sampled traces.
    pub max_sampled: usize,
    /// Keep the N slowest roots.
    pub slowest: usize,
    /// Keep failed roots, at most this many.
    pub failed: usize,
    /// Spans per trace; beyond it spans are counted, not kept.
    pub max_spans: usize,
}

impl Default for TraceSpec {
    fn default() -> Self {
        TraceSpec {
            sample: 0.0005,
            max_sampled: 10,
            slowest: 5,
            failed: 10,
            max_spans: 200,
        }
    }
}

/// `[policy.pool.NAME]`: a connection pool.
#[derive(Clone, Debug)]
pub struct PoolPolicy {
    /// Its name.
    pub name: String,
    /// The pool's parameters.
    pub config: crate::policy::pool::Config,
}

/// `[mesh]`: sidecar proxies beside the instances of the meshed services.
#[derive(Clone, Debug)]
pub struct MeshSpec {
    /// Each service's proxy (`None`: not meshed).
    pub proxies: Vec<Option<ProxySpec>>,
    /// mTLS between two meshed services: each new connection pays one more round trip and
    /// this much handshake work.
    pub mtls: Option<Dist>,
    /// The inbound proxies' authorization check.
    pub authz: Option<AuthzSpec>,
    /// The outbound proxies' connection pool, for meshed calls without their own.
    pub pool: crate::policy::pool::Config,
}

impl MeshSpec {
    /// Whether calls from `from` to `to` run between two sidecars.
    pub fn meshed(&self, from: usize, to: usize) -> bool {
        self.proxies[from].is_some() && self.proxies[to].is_some()
    }
}

/// One service's sidecar.
#[derive(Clone, Debug)]
pub struct ProxySpec {
    /// Proxy CPU per request (both directions).
    pub latency: Dist,
    /// Proxy workers per instance.
    pub workers: u32,
    /// Requests that may wait for a worker before the proxy answers 503.
    pub queue: u32,
}

/// An authorization policy checked by inbound proxies.
#[derive(Clone, Debug)]
pub struct AuthzSpec {
    /// Cost of a check.
    pub latency: Dist,
    /// (caller, callee) pairs denied with a 403.
    pub deny: Vec<(ServiceId, ServiceId)>,
}
