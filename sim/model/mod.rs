//! The system model: instances with workers and bounded queues, the network, workloads, and the run loop.
//!
//! This is the only layer where the engine and the domain meet. A request's life:
//! a workload (or a caller's call step) creates it; after the network delay it is
//! *delivered* to an instance, which rejects it at once if its queue is full;
//! otherwise its endpoint's steps run in order: `work` holds one of the instance's
//! workers for a drawn time (waiting in the queue when none is free), a call sends
//! a child request and waits for its answer (holding no worker), a parallel group
//! waits for all its children. A required call that fails fails the request. The
//! answer travels back over the network; a lost message is never delivered, so
//! only the caller's timeout ends the wait. A caller that times out abandons the
//! wait while the callee keeps working: that work is counted as wasted.

mod deploy;
mod discovery;
mod faults;
mod layers;
pub mod messaging;
pub mod sagas;
mod scaling;
pub mod spec;
pub mod tracing;

use crate::dist::Dist;
use crate::engine::{Engine, EventKey, Stop};
use crate::metrics::{secs, Counts, Latency, Outcome, SeriesRow, Sink, StateEvent};
use crate::policy::balancer::{slow_start_factor, Balancer, HostView};
use crate::policy::breaker::{self, Breaker, CallResult};
use crate::policy::budget::RetryBudget;
use crate::policy::bulkhead::{Acquire, Bulkhead};
use crate::policy::command::{CallCommand, Commands};
use crate::policy::concurrency::Limiter;
use crate::policy::deadline::Deadlines;
use crate::policy::outlier::Detector;
use crate::policy::retry::{self, RetryDecision, RetryState};
use crate::policy::shed::{Admission, Codel};
pub use crate::results::{
    CanaryResult, Drops, EdgeResult, EdgeStats, RolloutResult, RunResult, ScalingResult,
    ServiceResult, StopReason, WorkloadResult,
};
use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime, NS_PER_S};
use rand_distr::{Distribution, Exp};
use spec::*;
use std::collections::VecDeque;

/// "No request" in parent links.
const NONE: u32 = u32::MAX;

/// The events of the model. Kept at 8 bytes: the heap moves them on every sift.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// An open-loop workload's next arrival.
    Arrive { wl: u32 },
    /// A closed-loop user (an index into `World::users`) finished thinking and sends.
    UserSend { user: u32 },
    /// A request reaches its instance.
    Deliver { req: u32 },
    /// A work step ends.
    WorkDone { req: u32 },
    /// A response reaches the caller.
    Respond { req: u32 },
    /// A caller's (or client's) timeout fires.
    Timeout { req: u32 },
    /// A call's back-off is over: make the next attempt.
    Retry { call: u32 },
    /// A hedged call's next attempt is due.
    Hedge { call: u32 },
    /// A breaker's timer (automatic half-open, half-open max wait).
    BreakerTimer { edge: u32 },
    /// A fault starts.
    FaultStart { fault: u32 },
    /// A fault ends.
    FaultEnd { fault: u32 },
    /// A time-series bucket closes.
    Bucket,
    /// Warmup ends: statistics start.
    WarmupEnd,
    /// An edge's outlier detector sweeps.
    OutlierSweep { edge: u32 },
    /// A call waiting for a bulkhead permit gives up (if still waiting).
    BulkheadWait { call: u32 },
    /// A call's breaker fallback answers.
    Fallback { call: u32 },
    /// An instance under a random failure process fails.
    Fail { inst: u32 },
    /// An instance under a random failure process is repaired.
    Repair { inst: u32 },
    /// An instance's heartbeat to its registry is due.
    Heartbeat { inst: u32 },
    /// A service registry's health loop.
    RegistryTick { svc: u32 },
    /// A caller's discovery cache refresh.
    CacheRefresh { edge: u32 },
    /// An active health check of an instance is due.
    Probe { inst: u32 },
    /// A health check the checker could not deliver (the service is cut off) times out.
    ProbeLost { inst: u32 },
    /// A restarted instance finished booting.
    Boot { inst: u32 },
    /// A service's autoscaler evaluates.
    Autoscale { svc: u32 },
    /// An instance the autoscaler asked for is ready.
    Provisioned { inst: u32 },
    /// A draining instance's grace period ends.
    Drained { inst: u32 },
    /// A canary's weight schedule moves on.
    CanaryWeight { svc: u32 },
    /// A canary's rollback check.
    CanaryCheck { svc: u32 },
    /// A rolling update starts.
    RolloutStart { svc: u32 },
    /// A delivered message's visibility timeout ends.
    Visibility { delivery: u32 },
    /// A requeued message's redelivery delay ends.
    Redeliver { queue: u16, slot: u32 },
    /// A queue's periodic tick.
    QueuePoll { queue: u32 },
    /// A saga's back-off is over.
    SagaStep { saga: u32 },
    /// A saga ended a while ago: judge its effects.
    SagaSettled { saga: u32 },
    /// A service's outbox relay publishes.
    OutboxRelay { svc: u32 },
    /// A new-version instance a rollout started has booted.
    Started { inst: u32 },
}

impl Ev {
    /// A stable encoding for the event-stream digest: (variant number, payload). Variant
    /// numbers follow the declaration order at the time the digests were recorded; keep
    /// them when variants move, so that the digest compares like with like.
    fn stable_code(self) -> (u32, u64) {
        match self {
            Ev::Arrive { wl } => (0, wl as u64),
            Ev::UserSend { user } => (1, user as u64),
            Ev::Deliver { req } => (2, req as u64),
            Ev::WorkDone { req } => (3, req as u64),
            Ev::Respond { req } => (4, req as u64),
            Ev::Timeout { req } => (5, req as u64),
            Ev::Retry { call } => (6, call as u64),
            Ev::Hedge { call } => (7, call as u64),
            Ev::BreakerTimer { edge } => (8, edge as u64),
            Ev::FaultStart { fault } => (9, fault as u64),
            Ev::FaultEnd { fault } => (10, fault as u64),
            Ev::Bucket => (11, 0),
            Ev::WarmupEnd => (12, 0),
            Ev::OutlierSweep { edge } => (13, edge as u64),
            Ev::BulkheadWait { call } => (14, call as u64),
            Ev::Fallback { call } => (15, call as u64),
            Ev::Fail { inst } => (16, inst as u64),
            Ev::Repair { inst } => (17, inst as u64),
            Ev::Heartbeat { inst } => (18, inst as u64),
            Ev::RegistryTick { svc } => (19, svc as u64),
            Ev::CacheRefresh { edge } => (20, edge as u64),
            Ev::Probe { inst } => (21, inst as u64),
            Ev::ProbeLost { inst } => (22, inst as u64),
            Ev::Boot { inst } => (23, inst as u64),
            Ev::Autoscale { svc } => (24, svc as u64),
            Ev::Provisioned { inst } => (25, inst as u64),
            Ev::Drained { inst } => (26, inst as u64),
            Ev::CanaryWeight { svc } => (27, svc as u64),
            Ev::CanaryCheck { svc } => (28, svc as u64),
            Ev::RolloutStart { svc } => (29, svc as u64),
            Ev::Visibility { delivery } => (30, delivery as u64),
            Ev::Redeliver { queue, slot } => (31, (queue as u64) << 32 | slot as u64),
            Ev::QueuePoll { queue } => (32, queue as u64),
            Ev::SagaStep { saga } => (33, saga as u64),
            Ev::SagaSettled { saga } => (34, saga as u64),
            Ev::OutboxRelay { svc } => (35, svc as u64),
            Ev::Started { inst } => (36, inst as u64),
        }
    }
}

/// Why a request ended the way it did, beyond its outcome (what a status code would say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Code {
    #[default]
    None,
    /// Connection refused or reset: the instance is down, crashed mid-request, or the link reset.
    Refused,
    /// 429 from a rate limiter.
    Limited,
    /// Refused by the server's adaptive concurrency limit.
    ConcurrencyLimited,
    /// Dropped from the queue by load shedding (CoDel, adaptive LIFO, max wait).
    Shed,
    /// Its deadline had passed (server-side drop of expired work).
    Expired,
}

/// Resources an attempt holds at the caller, released when it ends.
const HOLD_BULKHEAD: u8 = 1;
const HOLD_LIMITER: u8 = 2;

/// What the caller learns about one attempt when it ends.
#[derive(Clone, Copy, Debug)]
struct Done {
    /// The instance it went to (NONE when nothing was sent).
    host: u32,
    holds: u8,
    /// In flight at the client limiter when it started.
    inflight: u32,
    code: Code,
}

impl Done {
    const LOCAL: Done = Done {
        host: NONE,
        holds: 0,
        inflight: 0,
        code: Code::None,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Travelling to the instance.
    Sent,
    /// At the instance (queued, working or waiting on calls).
    Running,
    /// Its answer is travelling back.
    Responding,
    /// A message was lost: only the timeout will free it.
    Lost,
    /// The slot is free.
    Free,
}

#[derive(Clone, Debug)]
struct Req {
    service: u32,
    instance: u32,
    endpoint: u32,
    step: u32,
    pending: u32,
    parent: u32,
    /// Root requests: the workload; child requests: unused.
    workload: u32,
    /// Closed-loop user (NONE for open loop).
    user: u32,
    state: State,
    /// It reached its instance (a lost request never does).
    arrived: bool,
    /// A delay fault already held it once.
    delayed: bool,
    failed: bool,
    abandoned: bool,
    measured: bool,
    outcome: Outcome,
    /// When the client sent it (roots) or the caller sent it (children).
    sent: SimTime,
    /// When it reached its instance.
    born: SimTime,
    enqueued: SimTime,
    work_started: SimTime,
    timeout: Option<EventKey>,
    /// Worker time spent on this request and every answered child, ns.
    work_ns: u64,
    /// The request's key (a user id), inherited by its calls.
    key: u64,
    /// The headers it carries (bit k: `SystemSpec::headers[k]`), inherited by its calls.
    headers: u8,
    /// A publish's or a delivery's message id (0: none).
    msg: u64,
    /// At a broker: where the message it carries goes (NONE: not a publish).
    dest: u32,
    /// At a consumer: the delivery it handles (NONE: not a delivery).
    delivery: u32,
    /// A saga's carrier, or a participant's request for a saga step: the saga (NONE: none).
    saga: u32,
    /// A participant's request: step << 1 | compensation (NONE: the carrier itself).
    saga_step: u32,
    /// Its database write committed an event it has not published yet (dual write).
    event_due: bool,
    /// When its caller stops waiting (SimTime::MAX: never); propagated downstream on request.
    deadline: SimTime,
    code: Code,
    /// Caller-side resources its attempt holds.
    holds: u8,
    /// In flight at the caller's limiter when sent.
    inflight: u32,
    /// In flight at the server's limiter when admitted (0: not admitted by one).
    server_inflight: u32,
    /// Its instance crashed under it: it holds nothing there and vanishes once no event
    /// refers to it.
    killed: bool,
    /// Counted in its instance's in-flight requests (and holding a thread, if any).
    admitted: bool,
    /// Holding a worker.
    working: bool,
    /// The instance's total paused time when its current work started.
    pause_mark: u64,
    /// It already waited for a rate limiter's permission (Resilience4j): admitted on arrival.
    rate_waited: bool,
    /// An active health check, not a client's request.
    probe: bool,
    /// At an `occ` service: the key's version it read (NONE: none read, or already closed).
    occ_seen: u32,
    /// Its span, when its trace is recorded.
    span: tracing::SpanRef,
}

/// A logical call from a request to a callee: one or more attempts under its policies.
struct Call {
    /// The calling request.
    parent: u32,
    site: u32,
    attempt: u32,
    attempt_started: SimTime,
    /// The call's own deadline and the one it inherited.
    deadlines: Deadlines,
    /// Back-off memory and standing with the edge's retry budget.
    retry: RetryState,
    /// Attempts in flight (child request ids; NONE for free slots). Hedging keeps several.
    outstanding: [u32; 5],
    /// The next hedge's timer.
    hedge_timer: Option<EventKey>,
    /// Waiting for a bulkhead permit until this time (SimTime::MAX: no own timer).
    bulkhead_wait: Option<SimTime>,
    /// What the waiting attempt already holds.
    wait_done: Done,
    /// The last attempt was refused by the breaker (for fallbacks on open).
    last_open: bool,
    /// Already answered by its fallback.
    fell_back: bool,
    /// When the call started.
    started: SimTime,
    /// Call-scoped resources it holds (a bulkhead permit).
    call_holds: u8,
    /// It holds a call-scoped breaker permit.
    breaker_permit: bool,
    /// Its bulkhead wait is call-scoped (no attempt made yet).
    waiting_call: bool,
    /// Bumped each time the slot is reused, to tell a live call from a finished one.
    generation: u32,
    measured: bool,
    work_ns: u64,
    /// A publish call's message id (retries send the same message again).
    msg: u64,
}

/// One call site in a handler, resolved.
struct Site {
    spec: CallSpec,
    from: u32,
    edge: u32,
}

/// Per-edge state: the breaker, the retry budget and counters.
struct Edge {
    from: u32,
    to: u32,
    breaker: Option<Breaker>,
    /// The breaker wraps whole calls (`scope = "call"`).
    breaker_per_call: bool,
    /// The bulkhead is held per call.
    bulkhead_per_call: bool,
    record: OutcomeSet,
    timer_at: Option<SimTime>,
    rng: SimRng,
    /// Retry limits across the edge's calls.
    budget: RetryBudget,
    stats: EdgeStats,
    /// Latency of successful attempts (for percentile hedging delays).
    attempt_latency: Latency,
    open_since: Option<SimTime>,
    open_ns: u64,
    transitions: u64,
    /// The callee's instance range and how this caller picks among them.
    first_host: u32,
    /// Round-robin position when there is no balancer policy.
    rr: u32,
    balancer: Option<Balancer>,
    lb_rng: SimRng,
    weights: Vec<u32>,
    hosts: Vec<HostView>,
    /// Attempts in flight per callee instance.
    active: Vec<u32>,
    outlier: Option<Detector>,
    outlier_rng: SimRng,
    bulkhead: Option<Bulkhead>,
    limiter: Option<Limiter>,
    limiter_rng: SimRng,
    throttle: Option<Admission>,
    throttle_rng: SimRng,
    fallback: Option<Fallback>,
    /// The caller's discovery cache: which callee instances it lists (empty: no registry).
    cache: Vec<bool>,
    /// Zone-aware routing: usable local instances needed to stay in the caller's zone.
    zone_aware: Option<u32>,
    /// Slow start: (window, aggression, min weight percent).
    slow_start: Option<(SimDuration, f64, f64)>,
}

impl Req {
    /// What its caller needs to close this attempt: where it went, what it holds (taken, so
    /// nothing is released twice), and why it ended.
    fn take_done(&mut self, code: Code) -> Done {
        Done {
            host: self.instance,
            holds: std::mem::take(&mut self.holds),
            inflight: self.inflight,
            code,
        }
    }

    /// A request just sent at `now`, not yet delivered.
    #[allow(clippy::too_many_arguments)]
    fn new(
        now: SimTime,
        service: u32,
        instance: u32,
        endpoint: u32,
        parent: u32,
        workload: u32,
        user: u32,
        state: State,
        measured: bool,
    ) -> Req {
        Req {
            service,
            instance,
            endpoint,
            step: 0,
            pending: 0,
            parent,
            workload,
            user,
            state,
            arrived: false,
            delayed: false,
            failed: false,
            abandoned: false,
            measured,
            outcome: Outcome::Ok,
            sent: now,
            born: now,
            enqueued: now,
            work_started: now,
            timeout: None,
            work_ns: 0,
            key: 0,
            headers: 0,
            msg: 0,
            dest: NONE,
            delivery: NONE,
            saga: NONE,
            saga_step: NONE,
            event_due: false,
            deadline: SimTime::MAX,
            code: Code::None,
            holds: 0,
            inflight: 0,
            server_inflight: 0,
            killed: false,
            admitted: false,
            working: false,
            pause_mark: 0,
            rate_waited: false,
            probe: false,
            occ_seen: NONE,
            span: tracing::SpanRef::NONE,
        }
    }
}

struct Instance {
    service: u32,
    busy: u32,
    in_flight: u32,
    queue: VecDeque<u32>,
    /// Threads held (thread-per-request services only).
    threads_busy: u32,
    /// Requests waiting for a thread.
    admit: VecDeque<u32>,
    /// Faults in force on this instance.
    fault: InstanceFault,
    /// When the work queue was last empty (adaptive LIFO).
    last_empty: SimTime,
    codel: Option<Codel>,
    /// Rate limiters by key.
    limits: std::collections::BTreeMap<u64, layers::RateLimiter>,
    /// Adaptive concurrency limit on arrivals.
    limiter: Option<Limiter>,
    /// Paused since (a pause fault).
    paused_at: Option<SimTime>,
    /// Total time paused so far, ns.
    paused_ns: u64,
    /// What to resume when the pause ends.
    frozen: Vec<faults::Frozen>,
    /// Restarted, booting until this time (down until then).
    booting: Option<SimTime>,
    /// Its zone (NONE without zones).
    zone: u32,
    /// In service (autoscaled services keep absent slots up to their maximum).
    present: bool,
    /// Asked for by the autoscaler, not yet serving.
    provisioning: bool,
    /// Scaled in: no new traffic, gone after a grace period.
    draining: bool,
    /// Runs the service's new version (a canary's, a rollout's).
    v2: bool,
    /// When it last booted (`None`: running since before t = 0): cold start and slow start.
    booted_at: Option<SimTime>,
}

/// The effect of the faults in force on one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
struct InstanceFault {
    down: bool,
    delay: Option<(SimDuration, f64)>,
    /// Share of requests aborted, and with which status.
    abort: f64,
    abort_code: u16,
    /// Work multiplier, for a share of requests.
    slow: f64,
    slow_p: f64,
    /// Workers while a slow fault holds.
    workers: Option<u32>,
}

impl InstanceFault {
    const NONE: InstanceFault = InstanceFault {
        down: false,
        delay: None,
        abort: 0.0,
        abort_code: 500,
        slow: 1.0,
        slow_p: 1.0,
        workers: None,
    };
}

/// A fault in force on a link.
#[derive(Clone, Copy, Debug, PartialEq)]
enum LinkFault {
    None,
    Partition,
    Reset,
    Loss(f64),
}

struct Svc {
    first_instance: u32,
    instances: u32,
    workers: u32,
    work_rng: SimRng,
    error_rng: SimRng,
    branch_rng: SimRng,
    fault_rng: SimRng,
    /// Endpoint choice for this service's calls, apart from `branch_rng` so that a call's
    /// probability never shifts which endpoints later calls pick.
    endpoint_rng: SimRng,
    /// Cumulative endpoint weights (normalised).
    endpoint_cum: Vec<f64>,
    busy: u32,
    busy_since: SimTime,
    busy_ns: u128,
    bucket_busy_ns: u128,
    /// Requests admitted at this service's instances (queued, working or waiting on calls).
    held: u32,
    held_since: SimTime,
    /// ∫ held dt after warmup, for the time-average number in the service (Little's L).
    held_ns: u128,
    counts: Counts,
    bucket: Counts,
    latency: Latency,
    bucket_latency: Latency,
    queue_wait: Latency,
    wasted_ns: u128,
    /// Requests refused or dropped by server-side layers, after warmup.
    drops: Drops,
    /// Draws of the server's adaptive concurrency limit (Vegas probes).
    limit_rng: SimRng,
    /// Registry status changes of its instances, after warmup.
    registry_changes: u64,
    /// The autoscaler, if any.
    scaler: Option<scaling::Scaler>,
    /// The canary, if any.
    canary: Option<deploy::Canary>,
    /// A rolling update, if any.
    rollout: Option<deploy::Rollout>,
    /// Instance-time present after warmup, ns (autoscaled services' capacity).
    present_ns: u128,
    present_since: SimTime,
    /// `occ` services: per key with open readers, (version, readers). A key nobody holds a
    /// read of is forgotten: its version only matters to requests that read it.
    occ_rows: std::collections::BTreeMap<u64, (u32, u32)>,
    /// Commits refused because the key changed since the read, after warmup.
    conflicts: u64,
}

struct Link {
    latency: Dist,
    loss: f64,
    fault: LinkFault,
    rng: SimRng,
    messages: u64,
    lost: u64,
}

impl Link {
    /// The loss probability in force, or `None` while a reset fault fails every message fast.
    fn loss_now(&self) -> Option<f64> {
        match self.fault {
            LinkFault::None => Some(self.loss),
            LinkFault::Partition => Some(1.0),
            LinkFault::Loss(p) => Some(p.max(self.loss)),
            LinkFault::Reset => None,
        }
    }
}

impl Discipline {
    /// The next request waiting for a thread under this discipline (adaptive LIFO and
    /// shedding act on the work queue; the thread queue is served FIFO under it).
    fn pop(self, queue: &mut VecDeque<u32>) -> Option<u32> {
        match self {
            Discipline::Fifo | Discipline::AdaptiveLifo { .. } => queue.pop_front(),
            Discipline::Lifo => queue.pop_back(),
        }
    }
}

struct Wl {
    rng: SimRng,
    think_rng: SimRng,
    /// Endpoint choice, apart from arrivals so endpoint weights never move arrival times.
    endpoint_rng: SimRng,
    /// Request keys (user ids).
    key_rng: SimRng,
    rr: u32,
    /// Exponential gaps at the profile's maximum rate, per ns (thinning).
    gap: Option<Exp<f64>>,
    /// Sent but not yet answered or timed out, since t = 0 (warmup included).
    pending: u64,
    counts: Counts,
    bucket: Counts,
    latency: Latency,
    bucket_latency: Latency,
    /// Bursts sent so far (burst arrivals).
    bursts: u32,
    /// The key the request being sent carries, overriding `keys` (a burst's own key).
    key_override: Option<u64>,
}

/// Run options that do not change results.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the first N root arrival times in [`RunResult::arrivals`] (for tests of common random numbers).
    pub record_arrivals: usize,
    /// Fold every delivered `(time, sequence, event)` into [`RunResult::event_digest`]: a
    /// refactor that changes nothing keeps the digest, and one that does shows where the
    /// streams part far earlier than the output files would.
    pub digest_events: bool,
}

/// A system being simulated.
pub struct World<'a> {
    spec: &'a SystemSpec,
    engine: Engine<Ev>,
    svcs: Vec<Svc>,
    insts: Vec<Instance>,
    reqs: Vec<Req>,
    free: Vec<u32>,
    live: usize,
    /// links[from * n + to]: index into `link_table`, or NONE for pairs that never talk.
    links: Vec<u32>,
    link_table: Vec<Link>,
    wls: Vec<Wl>,
    calls: Vec<Call>,
    free_calls: Vec<u32>,
    sites: Vec<Site>,
    /// site_index[service][endpoint][step]: the first site of that step (parallel members follow).
    site_index: Vec<Vec<Vec<u32>>>,
    edges: Vec<Edge>,
    /// State changes waiting to be written to the sink.
    log: Vec<StateEvent>,
    /// Closed-loop users: the workload of each (events carry the index, keeping them 8 bytes).
    users: Vec<u32>,
    warmup: SimTime,
    bucket_start: SimTime,
    stop: Option<StopReason>,
    opts: RunOptions,
    arrivals: Vec<SimTime>,
    /// Calls handed a bulkhead permit, to dispatch after the current event.
    woken: Vec<u32>,
    /// Requests dropped at dequeue (and whether for an expired deadline), answered after it.
    shed_buf: Vec<(u32, bool)>,
    /// Per service, with `[registry]`: its registry.
    discovery: Vec<discovery::Discovery>,
    /// Zone pairs cut by a zone partition.
    zone_cuts: Vec<(u32, u32)>,
    /// Registry outages in force.
    registry_down: u32,
    /// Per service: registry partitions in force that cut it off from the registry.
    registry_cut: Vec<u32>,
    /// Health checks alive (counted in `live`, not in the traffic left at the end).
    live_probes: usize,
    /// Broker queues.
    queues: Vec<messaging::QueueState>,
    /// Messages handed to consumers.
    deliveries: Vec<messaging::DeliveryRec>,
    free_deliveries: Vec<u32>,
    /// The last message id given out.
    next_msg: u64,
    /// Draws poison messages.
    msg_rng: SimRng,
    /// Round robin of fire-and-forget publishes over broker instances.
    one_way_rr: u32,
    /// Saga instances (running or settling).
    sagas: Vec<sagas::SagaRun>,
    free_sagas: Vec<u32>,
    saga_stats: Vec<sagas::SagaStats>,
    next_saga: u64,
    /// Per service: its outbox and the events its writes committed.
    outboxes: Vec<messaging::Outbox>,
    /// Dual-write publishes not stored yet: message id -> (writer, when the publish failed).
    awaiting: std::collections::BTreeMap<u64, (u32, Option<SimTime>)>,
    /// Instances under a random failure process: (its fault, its stream). Kept out of
    /// `Instance`, which the hot path touches, because a ChaCha state is large.
    randoms: std::collections::BTreeMap<usize, (u32, SimRng)>,
    /// Records traces (None when `[trace]` keeps nothing).
    tracer: Option<tracing::Tracer>,
    /// Scratch: the call sites of a parallel group chosen to run.
    chosen: Vec<u32>,
    /// The event-stream digest so far (with `RunOptions::digest_events`).
    digest: Option<u64>,
}

/// The engine's timer lanes (see `engine`): timers of one lane are mostly scheduled in
/// time order, because they share a duration.
#[derive(Clone, Copy)]
enum Lane {
    /// A workload's client timeouts.
    Workload(u32),
    /// A call site's attempt timeouts.
    Site(u32),
    /// A call site's hedge timers.
    Hedge(u32),
    /// A queue's visibility timeouts.
    Visibility(u32),
    /// A service's health-check timeouts.
    Probe(u32),
}

impl<'a> World<'a> {
    /// The engine lane of `lane`.
    fn lane(&self, lane: Lane) -> u32 {
        let (w, s) = (self.wls.len() as u32, self.sites.len() as u32);
        match lane {
            Lane::Workload(i) => i,
            Lane::Site(i) => w + i,
            Lane::Hedge(i) => w + s + i,
            Lane::Visibility(i) => w + 2 * s + i,
            Lane::Probe(i) => w + 2 * s + self.queues.len() as u32 + i,
        }
    }

    /// Builds the runtime state of `spec`: instances, streams, first events.
    pub fn new(spec: &'a SystemSpec, opts: RunOptions) -> Self {
        let seed = spec.seed;
        let opts_digest = opts.digest_events;
        let mut engine = Engine::new(spec.horizon(), spec.max_events);
        let mut insts = Vec::new();
        let mut svcs = Vec::new();
        for (i, s) in spec.services.iter().enumerate() {
            let first = insts.len() as u32;
            for k in 0..s.slots() {
                insts.push(Instance {
                    // Canary slots serve from the start; a rollout's surge slots wait for it.
                    present: k < s.replicas || (k >= s.stable_slots() && s.canary.is_some()),
                    v2: k >= s.stable_slots() && s.canary.is_some(),
                    booted_at: None,
                    provisioning: false,
                    draining: false,
                    service: i as u32,
                    busy: 0,
                    in_flight: 0,
                    queue: VecDeque::new(),
                    threads_busy: 0,
                    admit: VecDeque::new(),
                    fault: InstanceFault::NONE,
                    last_empty: SimTime::ZERO,
                    codel: s
                        .shedding
                        .codel
                        .map(|(target, interval)| Codel::new(target, interval)),
                    limits: std::collections::BTreeMap::new(),
                    limiter: s.concurrency.map(|c| {
                        let p = &spec.concurrency[c as usize];
                        Limiter::new(p.algorithm.clone(), p.initial, p.min, p.max)
                    }),
                    paused_at: None,
                    paused_ns: 0,
                    frozen: Vec::new(),
                    booting: None,
                    zone: s
                        .zones
                        .get(insts.len() - first as usize)
                        .copied()
                        .unwrap_or(NONE),
                });
            }
            let total: f64 = s.endpoints.iter().map(|e| e.weight).sum();
            let mut acc = 0.0;
            // Endpoints of weight 0 (a saga's calls, held by its orchestrator, come last) are
            // never picked by weight.
            let mut endpoint_cum: Vec<f64> = s
                .endpoints
                .iter()
                .map(|e| {
                    acc += e.weight / total;
                    acc
                })
                .collect();
            if let Some(last) = endpoint_cum.last_mut() {
                *last = 1.0;
            }
            svcs.push(Svc {
                first_instance: first,
                instances: s.slots(),
                workers: s.workers,
                work_rng: SimRng::for_component(seed, &format!("service:{}:work", s.name)),
                error_rng: SimRng::for_component(seed, &format!("service:{}:error", s.name)),
                branch_rng: SimRng::for_component(seed, &format!("service:{}:branch", s.name)),
                fault_rng: SimRng::for_component(seed, &format!("service:{}:faults", s.name)),
                endpoint_rng: SimRng::for_component(seed, &format!("service:{}:endpoint", s.name)),
                endpoint_cum,
                busy: 0,
                busy_since: SimTime::ZERO,
                busy_ns: 0,
                bucket_busy_ns: 0,
                held: 0,
                held_since: SimTime::ZERO,
                held_ns: 0,
                counts: Counts::default(),
                bucket: Counts::default(),
                latency: Latency::new(3),
                bucket_latency: Latency::new(2),
                queue_wait: Latency::new(3),
                wasted_ns: 0,
                drops: Drops::default(),
                limit_rng: SimRng::for_component(seed, &format!("service:{}:limit", s.name)),
                registry_changes: 0,
                scaler: None,
                canary: None,
                rollout: None,
                present_ns: 0,
                present_since: SimTime::ZERO,
                occ_rows: std::collections::BTreeMap::new(),
                conflicts: 0,
            });
        }
        // Directed links for every pair that calls each other (responses use the reverse link).
        let n = spec.services.len();
        let mut links = vec![NONE; n * n];
        let mut link_table = Vec::new();
        for (i, s) in spec.services.iter().enumerate() {
            for e in &s.endpoints {
                for step in &e.steps {
                    let calls: &[CallSpec] = match step {
                        Step::Call(c) => std::slice::from_ref(c),
                        Step::Parallel(cs) => cs,
                        Step::Work(_) | Step::Saga(_) => &[],
                    };
                    for c in calls {
                        let j = c.to.0 as usize;
                        for (from, to) in [(i, j), (j, i)] {
                            if links[from * n + to] == NONE {
                                let o = spec.network.links.iter().rev().find(|l| {
                                    (l.a.0 as usize, l.b.0 as usize) == (from, to)
                                        || (l.a.0 as usize, l.b.0 as usize) == (to, from)
                                });
                                let (latency, loss) = match o {
                                    Some(l) => (l.latency.clone(), l.loss),
                                    None => (spec.network.latency.clone(), spec.network.loss),
                                };
                                let name = format!(
                                    "net:{}->{}",
                                    spec.services[from].name, spec.services[to].name
                                );
                                links[from * n + to] = link_table.len() as u32;
                                link_table.push(Link {
                                    latency,
                                    loss,
                                    fault: LinkFault::None,
                                    rng: SimRng::for_component(seed, &name),
                                    messages: 0,
                                    lost: 0,
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut wls = Vec::new();
        let mut users = Vec::new();
        for (i, w) in spec.workloads.iter().enumerate() {
            let mut rng = SimRng::for_component(seed, &format!("workload:{}:arrivals", w.name));
            let mut think_rng = SimRng::for_component(seed, &format!("workload:{}:think", w.name));
            let gap = match &w.arrivals {
                Arrivals::Open {
                    profile,
                    poisson: true,
                } => {
                    let max = profile.max_rate();
                    (max > 0.0).then(|| Exp::new(max / NS_PER_S as f64).expect("positive rate"))
                }
                _ => None,
            };
            let mut wl = Wl {
                rng: rng.clone(),
                think_rng: think_rng.clone(),
                endpoint_rng: SimRng::for_component(seed, &format!("workload:{}:endpoint", w.name)),
                key_rng: SimRng::for_component(seed, &format!("workload:{}:keys", w.name)),
                rr: 0,
                gap,
                pending: 0,
                counts: Counts::default(),
                bucket: Counts::default(),
                latency: Latency::new(3),
                bucket_latency: Latency::new(2),
                bursts: 0,
                key_override: None,
            };
            match &w.arrivals {
                Arrivals::Open { profile, poisson } => {
                    if let Some(t) = next_arrival(
                        profile,
                        *poisson,
                        wl.gap.as_ref(),
                        &mut rng,
                        SimTime::ZERO,
                        spec.horizon(),
                        true,
                    ) {
                        engine.schedule_at(t, Ev::Arrive { wl: i as u32 });
                    }
                }
                Arrivals::Closed { users: n, think } => {
                    for _ in 0..*n {
                        let t = SimTime::ZERO.after(think.sample(&mut think_rng));
                        engine.schedule_at(
                            t,
                            Ev::UserSend {
                                user: users.len() as u32,
                            },
                        );
                        users.push(i as u32);
                    }
                }
                Arrivals::Burst { at, .. } => {
                    if *at < spec.horizon() {
                        engine.schedule_at(*at, Ev::Arrive { wl: i as u32 });
                    }
                }
            }
            wl.rng = rng;
            wl.think_rng = think_rng;
            wls.push(wl);
        }
        let (sites, site_index, edges) = build_sites(spec);
        for (k, e) in edges.iter().enumerate() {
            if let Some(d) = &e.outlier {
                engine.schedule_at(
                    SimTime::ZERO.after(d.interval()),
                    Ev::OutlierSweep { edge: k as u32 },
                );
            }
        }
        for (i, f) in spec.faults.iter().enumerate() {
            engine.schedule_at(f.at, Ev::FaultStart { fault: i as u32 });
            if f.until < spec.horizon() {
                engine.schedule_at(f.until, Ev::FaultEnd { fault: i as u32 });
            }
        }
        if spec.warmup.0 > 0 {
            engine.schedule_at(SimTime::ZERO.after(spec.warmup), Ev::WarmupEnd);
        }
        engine.schedule_at(SimTime::ZERO.after(spec.bucket), Ev::Bucket);
        let mut world = World {
            spec,
            engine,
            svcs,
            insts,
            reqs: Vec::with_capacity(1024),
            free: Vec::new(),
            live: 0,
            links,
            link_table,
            wls,
            calls: Vec::with_capacity(1024),
            free_calls: Vec::new(),
            sites,
            site_index,
            edges,
            log: Vec::new(),
            users,
            warmup: SimTime::ZERO.after(spec.warmup),
            bucket_start: SimTime::ZERO,
            stop: None,
            arrivals: Vec::with_capacity(opts.record_arrivals),
            opts,
            woken: Vec::new(),
            shed_buf: Vec::new(),
            discovery: Vec::new(),
            zone_cuts: Vec::new(),
            registry_down: 0,
            registry_cut: vec![0; spec.services.len()],
            live_probes: 0,
            queues: Vec::new(),
            deliveries: Vec::new(),
            free_deliveries: Vec::new(),
            next_msg: 0,
            msg_rng: SimRng::for_component(spec.seed, "messages"),
            one_way_rr: 0,
            sagas: Vec::new(),
            free_sagas: Vec::new(),
            saga_stats: Vec::new(),
            next_saga: 0,
            outboxes: Vec::new(),
            awaiting: std::collections::BTreeMap::new(),
            randoms: std::collections::BTreeMap::new(),
            tracer: tracing::Tracer::new(&spec.trace, spec.seed),
            chosen: Vec::new(),
            digest: opts_digest.then_some(0),
        };
        world.start_discovery();
        world.start_scaling();
        world.start_canaries();
        world.start_rollouts();
        world.start_messaging();
        world.start_sagas();
        world.start_outboxes();
        world
    }

    /// Runs to the end, streaming series and state changes into `sink`.
    pub fn run(mut self, sink: &mut dyn Sink) -> RunResult {
        sink.event(&StateEvent {
            t_s: 0.0,
            kind: "run_start",
            subject: self.spec.name.clone(),
            detail: format!("seed {}", self.spec.seed),
        });
        for (i, inst) in self.insts.iter().enumerate().filter(|(_, x)| x.present) {
            let s = &self.spec.services[inst.service as usize];
            let k = i as u32 - self.svcs[inst.service as usize].first_instance;
            sink.event(&StateEvent {
                t_s: 0.0,
                kind: "instance_up",
                subject: format!("{}/{}", s.name, k),
                detail: format!("{} workers", s.workers),
            });
        }
        let stop = loop {
            match self.engine.next_event() {
                Ok((now, ev)) => {
                    if let Some(d) = self.digest.as_mut() {
                        let (tag, payload) = ev.stable_code();
                        let seq = self.engine.current_seq();
                        for x in [now.0, seq, tag as u64, payload] {
                            *d = crate::rng::mix64(
                                d.rotate_left(7) ^ x.wrapping_add(crate::rng::GOLDEN),
                            );
                        }
                    }
                    self.handle(now, ev, sink);
                    if !self.log.is_empty() {
                        for e in self.log.drain(..) {
                            sink.event(&e);
                        }
                    }
                    if let Some(s) = self.stop {
                        break s;
                    }
                }
                Err(Stop::Horizon) => {
                    self.engine.finish(Stop::Horizon);
                    break StopReason::Horizon;
                }
                Err(Stop::EventBudget) => break StopReason::EventBudget,
            }
        };
        let end = self.engine.now();
        if end > self.bucket_start {
            self.close_bucket(end, sink);
        }
        let detail = match stop {
            StopReason::Horizon => "reached the scenario duration".to_string(),
            StopReason::EventBudget => format!(
                "event budget sim.max_events = {} exhausted",
                self.spec.max_events
            ),
            StopReason::RequestLimit => format!(
                "request limit sim.max_in_flight = {} reached",
                self.spec.max_in_flight
            ),
        };
        sink.event(&StateEvent {
            t_s: secs(end),
            kind: "run_end",
            subject: self.spec.name.clone(),
            detail,
        });
        self.finish(stop, end)
    }

    fn finish(mut self, stop: StopReason, end: SimTime) -> RunResult {
        let measured = end.since(self.warmup.min(end));
        let saga_results = self.saga_results();
        let mut event_results = self.event_results(end);
        let (traces, trace_stats) = self
            .tracer
            .take()
            .map(tracing::Tracer::into_traces)
            .unwrap_or_default();
        let spec = self.spec;
        let services = (0..self.svcs.len())
            .map(|i| {
                self.account_busy(i, end);
                self.account_held(i, end);
                if self.svcs[i].scaler.is_some() {
                    self.account_present(i, end);
                }
                let s = &self.svcs[i];
                let capacity_ns = if s.scaler.is_some() {
                    s.workers as f64 * s.present_ns as f64
                } else {
                    s.workers as f64 * s.instances as f64 * measured.0 as f64
                };
                ServiceResult {
                    name: spec.services[i].name.clone(),
                    counts: s.counts.clone(),
                    utilization: if capacity_ns > 0.0 {
                        s.busy_ns as f64 / capacity_ns
                    } else {
                        0.0
                    },
                    in_system_mean: s.held_ns as f64 / (measured.0 as f64).max(1.0),
                    queue_wait: s.queue_wait.summary(),
                    latency: s.latency.summary(),
                    wasted_work_ms: s.wasted_ns as f64 / 1e6,
                    conflicts: spec.services[i].occ.then_some(s.conflicts),
                    drops: s.drops.clone(),
                    registry_changes: spec.registry.as_ref().map(|_| s.registry_changes),
                    canary: s.canary.as_ref().map(|c| CanaryResult {
                        weight_pct: c.weight,
                        rolled_back_at_s: c.rolled_back.map(secs),
                        requests: c.total_requests,
                        failed: c.total_errors,
                    }),
                    events: event_results[i].take(),
                    rollout: s.rollout.as_ref().map(|r| RolloutResult {
                        started_at_s: r.started.map(secs),
                        finished_at_s: r.finished.map(secs),
                        replaced: r.replaced,
                    }),
                    scaling: s.scaler.as_ref().map(|sc| {
                        let first = s.first_instance as usize;
                        let present = self.insts[first..first + s.instances as usize]
                            .iter()
                            .filter(|x| x.present)
                            .count() as u32;
                        ScalingResult {
                            instances_at_end: present,
                            instances_max: sc.max_seen,
                            scale_ups: sc.scale_ups,
                            scale_downs: sc.scale_downs,
                        }
                    }),
                    concurrency_limit: self.insts
                        [s.first_instance as usize..(s.first_instance + s.instances) as usize]
                        .iter()
                        .filter_map(|x| x.limiter.as_ref().map(|l| l.limit()))
                        .collect(),
                    retries: self
                        .edges
                        .iter()
                        .filter(|e| e.from as usize == i)
                        .map(|e| e.stats.retries)
                        .sum(),
                }
            })
            .collect();
        let workloads = self
            .wls
            .iter()
            .zip(&spec.workloads)
            .map(|(w, s)| WorkloadResult {
                name: s.name.clone(),
                counts: w.counts.clone(),
                latency: w.latency.summary(),
                pending_at_end: w.pending,
                cdf: w.latency.cdf_ms(),
            })
            .collect();
        let edges = self
            .edges
            .iter()
            .map(|e| EdgeResult {
                from: spec.services[e.from as usize].name.clone(),
                to: spec.services[e.to as usize].name.clone(),
                stats: e.stats.clone(),
                breaker_state: e.breaker.as_ref().map(|b| b.state()),
                breaker_transitions: e.transitions,
                breaker_open_s: (e.open_ns + e.open_since.map_or(0, |s| end.since(s).0)) as f64
                    / 1e9,
                concurrency_limit: e.limiter.as_ref().map(|l| l.limit()),
                ejected_at_end: e.outlier.as_ref().map(|d| d.ejected_count()),
            })
            .collect();
        RunResult {
            stop,
            end,
            edges,
            events: self.engine.processed(),
            workloads,
            services,
            network_messages: self.link_table.iter().map(|l| l.messages).sum(),
            network_lost: self.link_table.iter().map(|l| l.lost).sum(),
            in_flight_at_end: (self.live - self.live_probes) as u64,
            queues: self.queue_results(),
            sagas: saga_results,
            arrivals: self.arrivals,
            traces,
            trace_stats,
            event_digest: self.digest,
        }
    }

    fn handle(&mut self, now: SimTime, ev: Ev, sink: &mut dyn Sink) {
        match ev {
            Ev::Arrive { wl } => self.on_arrive(now, wl),
            Ev::UserSend { user } => self.send_root(now, self.users[user as usize], user),
            Ev::Deliver { req } => self.on_deliver(now, req),
            Ev::WorkDone { req } => self.on_work_done(now, req),
            Ev::Respond { req } => self.on_respond(now, req),
            Ev::Timeout { req } => self.on_timeout(now, req),
            Ev::Retry { call } => self.on_retry(now, call),
            Ev::Hedge { call } => self.on_hedge(now, call),
            Ev::FaultStart { fault } => self.set_fault(now, fault, true),
            Ev::FaultEnd { fault } => self.set_fault(now, fault, false),
            Ev::BreakerTimer { edge } => {
                let e = &mut self.edges[edge as usize];
                if e.timer_at == Some(now) {
                    e.timer_at = None;
                    let t = e.breaker.as_mut().and_then(|b| b.on_timer(now));
                    self.breaker_changed(now, edge, t);
                }
            }
            Ev::OutlierSweep { edge } => self.on_outlier_sweep(now, edge),
            Ev::BulkheadWait { call } => self.on_bulkhead_wait(now, call),
            Ev::Fallback { call } => self.finish_call(now, call, Outcome::Ok),
            Ev::Fail { inst } => self.on_random_fail(now, inst, true),
            Ev::Repair { inst } => self.on_random_fail(now, inst, false),
            Ev::Heartbeat { inst } => self.on_heartbeat(now, inst),
            Ev::RegistryTick { svc } => self.on_registry_tick(now, svc),
            Ev::CacheRefresh { edge } => self.on_cache_refresh(now, edge),
            Ev::Probe { inst } => self.on_probe(now, inst),
            Ev::ProbeLost { inst } => self.on_probe_lost(now, inst),
            Ev::Boot { inst } => self.on_boot(now, inst),
            Ev::Autoscale { svc } => self.on_autoscale(now, svc),
            Ev::Provisioned { inst } => self.on_provisioned(now, inst),
            Ev::Drained { inst } => self.on_drained(now, inst),
            Ev::CanaryWeight { svc } => self.on_canary_weight(now, svc),
            Ev::CanaryCheck { svc } => self.on_canary_check(now, svc),
            Ev::RolloutStart { svc } => self.on_rollout_start(now, svc),
            Ev::Visibility { delivery } => self.on_visibility(now, delivery),
            Ev::Redeliver { queue, slot } => self.on_redeliver(now, queue, slot),
            Ev::QueuePoll { queue } => self.on_queue_poll(now, queue),
            Ev::SagaStep { saga } => self.on_saga_step(now, saga),
            Ev::SagaSettled { saga } => self.on_saga_settled(saga),
            Ev::OutboxRelay { svc } => self.on_outbox_relay(now, svc),
            Ev::Started { inst } => self.on_started(now, inst),
            Ev::Bucket => {
                self.close_bucket(now, sink);
                self.engine
                    .schedule_at(now.after(self.spec.bucket), Ev::Bucket);
            }
            Ev::WarmupEnd => {
                for i in 0..self.svcs.len() {
                    self.account_busy(i, now);
                    self.svcs[i].busy_ns = 0;
                    self.account_held(i, now);
                    self.svcs[i].held_ns = 0;
                }
                sink.event(&StateEvent {
                    t_s: secs(now),
                    kind: "warmup_end",
                    subject: self.spec.name.clone(),
                    detail: "statistics start".into(),
                });
            }
        }
        // Calls that got a bulkhead permit freed during this event go now, in order.
        while !self.woken.is_empty() {
            for w in std::mem::take(&mut self.woken) {
                self.wake(now, w);
            }
        }
    }

    // ---- requests -------------------------------------------------------

    fn alloc(&mut self, r: Req) -> Option<u32> {
        if self.live >= self.spec.max_in_flight {
            self.stop = Some(StopReason::RequestLimit);
            return None;
        }
        self.live += 1;
        Some(match self.free.pop() {
            Some(i) => {
                self.reqs[i as usize] = r;
                i
            }
            None => {
                self.reqs.push(r);
                (self.reqs.len() - 1) as u32
            }
        })
    }

    fn release(&mut self, id: u32) {
        // A request that read a row and never completed (its instance crashed) stops holding it.
        self.occ_close(id, false);
        self.live -= 1;
        if self.reqs[id as usize].probe {
            self.live_probes -= 1;
        }
        self.reqs[id as usize].state = State::Free;
        self.free.push(id);
    }

    fn pick_endpoint(&mut self, service: u32, fixed: Option<u32>, chooser: Chooser) -> u32 {
        if let Some(e) = fixed {
            return e;
        }
        let cum = &self.svcs[service as usize].endpoint_cum;
        if cum[0] >= 1.0 {
            // The first endpoint takes all the weight.
            return 0;
        }
        let u = match chooser {
            Chooser::Service(s) => self.svcs[s as usize].endpoint_rng.unit(),
            Chooser::Workload(w) => self.wls[w as usize].endpoint_rng.unit(),
        };
        let cum = &self.svcs[service as usize].endpoint_cum;
        cum.partition_point(|&c| c <= u).min(cum.len() - 1) as u32
    }

    fn on_arrive(&mut self, now: SimTime, wl: u32) {
        if let Arrivals::Burst {
            size,
            every,
            count,
            same_key,
            ..
        } = self.spec.workloads[wl as usize].arrivals
        {
            return self.on_burst(now, wl, size, every, count, same_key);
        }
        self.send_root(now, wl, NONE);
        if self.stop.is_some() {
            return;
        }
        let Arrivals::Open { profile, poisson } = &self.spec.workloads[wl as usize].arrivals else {
            unreachable!("open loop")
        };
        let w = &mut self.wls[wl as usize];
        if let Some(t) = next_arrival(
            profile,
            *poisson,
            w.gap.as_ref(),
            &mut w.rng,
            now,
            self.spec.horizon(),
            false,
        ) {
            self.engine.schedule_at(t, Ev::Arrive { wl });
        }
    }

    /// A burst: `size` requests at once, then the next burst if any is left.
    fn on_burst(
        &mut self,
        now: SimTime,
        wl: u32,
        size: u32,
        every: Option<SimDuration>,
        count: u32,
        same_key: bool,
    ) {
        let w = &mut self.wls[wl as usize];
        let burst = w.bursts;
        w.bursts += 1;
        // A key no other burst or workload uses: the workload in the high bits.
        w.key_override = same_key.then_some((wl as u64) << 40 | burst as u64);
        for _ in 0..size {
            if self.stop.is_some() {
                break;
            }
            self.send_root(now, wl, NONE);
        }
        self.wls[wl as usize].key_override = None;
        if let (Some(every), true, None) = (every, burst + 1 < count, self.stop) {
            let next = now.after(every);
            if next < self.spec.horizon() {
                self.engine.schedule_at(next, Ev::Arrive { wl });
            }
        }
    }

    /// A client sends a request straight to the target (clients sit at the edge: no network hop).
    fn send_root(&mut self, now: SimTime, wl: u32, user: u32) {
        let spec = &self.spec.workloads[wl as usize];
        let target = spec.target.0;
        let endpoint = self.pick_endpoint(target, spec.endpoint, Chooser::Workload(wl));
        let w = &mut self.wls[wl as usize];
        let key = if let Some(k) = w.key_override {
            k
        } else if spec.keys > 0 {
            w.key_rng.index(spec.keys as usize) as u64
        } else {
            0
        };
        let mut headers = 0u8;
        for &(bit, share) in &spec.headers {
            if w.key_rng.chance(share) {
                headers |= 1 << bit;
            }
        }
        let version = self.pick_version(target as usize, key, headers);
        let svc = &self.svcs[target as usize];
        let w = &mut self.wls[wl as usize];
        let (first, n) = (svc.first_instance, svc.instances);
        let rr = w.rr;
        w.rr = w.rr.wrapping_add(1);
        // Clients come through an edge load balancer: round robin over the instances it
        // knows to serve (those the registry lists, or the autoscaler runs), or all of them.
        let eligible = |j: u32| -> bool {
            match self.discovery.get(target as usize) {
                Some(d) => d.registry.routable(j as usize),
                None => {
                    let x = &self.insts[(first + j) as usize];
                    x.present && !x.draining
                }
            }
        };
        // The traffic split picks a version first, when it has an instance to take the request.
        let of_version =
            |j: u32| version.map_or(true, |c| self.insts[(first + j) as usize].v2 == c);
        let split = |j: u32| eligible(j) && of_version(j);
        let any_split = (0..n).any(split);
        let eligible = |j: u32| if any_split { split(j) } else { eligible(j) };
        let k = if self.discovery.is_empty() && svc.scaler.is_none() && version.is_none() {
            rr % n
        } else {
            let count = (0..n).filter(|&j| eligible(j)).count() as u32;
            if count == 0 {
                rr % n
            } else {
                (0..n)
                    .filter(|&j| eligible(j))
                    .nth((rr % count) as usize)
                    .expect("count > 0")
            }
        };
        let instance = svc.first_instance + k;
        let measured = now >= self.warmup;
        if measured {
            w.counts.requests += 1;
        }
        w.bucket.requests += 1;
        w.pending += 1;
        if self.arrivals.len() < self.opts.record_arrivals {
            self.arrivals.push(now);
        }
        let timeout = spec.timeout;
        let mut req = Req::new(
            now,
            target,
            instance,
            endpoint,
            NONE,
            wl,
            user,
            State::Sent,
            measured,
        );
        req.key = key;
        req.headers = headers;
        if let Some(t) = timeout {
            req.deadline = now.after(t);
        }
        if let (true, Some(tr)) = (measured, self.tracer.as_mut()) {
            req.span = tr.open(wl, target, k, endpoint, now);
        }
        let Some(id) = self.alloc(req) else {
            return;
        };
        if let Some(t) = timeout {
            let lane = self.lane(Lane::Workload(wl));
            self.reqs[id as usize].timeout = Some(self.engine.schedule_timer(
                lane,
                now.after(t),
                Ev::Timeout { req: id },
            ));
        }
        self.on_deliver(now, id);
    }

    /// Sends one attempt of `call_id` to instance `instance` over the network, timing it out at `until`.
    fn send_attempt(
        &mut self,
        now: SimTime,
        call_id: u32,
        instance: u32,
        holds: u8,
        inflight: u32,
        until: SimTime,
    ) {
        let c = &self.calls[call_id as usize];
        let (parent_req, site) = (c.parent, &self.sites[c.site as usize]);
        let (from, to, fixed_endpoint) = (site.from, site.spec.to.0, site.spec.endpoint);
        let (key, headers) = (
            self.reqs[parent_req as usize].key,
            self.reqs[parent_req as usize].headers,
        );
        let (cross, cut) = self.zone_hop(self.reqs[parent_req as usize].instance, instance);
        let endpoint = self.pick_endpoint(to, fixed_endpoint, Chooser::Service(from));
        let n = self.svcs.len();
        let li = self.links[from as usize * n + to as usize] as usize;
        let link = &mut self.link_table[li];
        link.messages += 1;
        let done = Done {
            host: instance,
            holds,
            inflight,
            code: Code::Refused,
        };
        let Some(loss) = link.loss_now() else {
            // The connection is reset at once: a fast failure, nothing reaches the callee.
            self.attempt_done(
                now,
                call_id,
                NONE,
                AttemptOutcome::ConnectFailure,
                0,
                0,
                done,
            );
            return;
        };
        let lost = cut || link.rng.chance(loss);
        let delay = match (
            lost,
            cross
                .then_some(())
                .and(self.spec.network.cross_zone.as_ref()),
        ) {
            (true, _) => SimDuration::ZERO,
            (false, Some(d)) => d.sample(&mut link.rng),
            (false, None) => link.latency.sample(&mut link.rng),
        };
        if lost {
            link.lost += 1;
        }
        let mut req = Req::new(
            now,
            to,
            instance,
            endpoint,
            call_id,
            NONE,
            NONE,
            if lost { State::Lost } else { State::Sent },
            false,
        );
        req.key = key;
        req.headers = headers;
        req.deadline = until;
        if let Some((dest, outbox)) = self.sites[self.calls[call_id as usize].site as usize]
            .spec
            .write
        {
            // A database write carrying an event: the database learns where it goes.
            let code = match dest {
                Dest::Queue(q) => q,
                Dest::Topic(t) => t | messaging::TOPIC_BIT,
            };
            req.dest = code | messaging::WRITE_BIT | if outbox { messaging::OUTBOX_BIT } else { 0 };
            req.msg = from as u64;
        }
        let carrier = &self.reqs[parent_req as usize];
        if carrier.saga != NONE && carrier.saga_step == NONE {
            // A saga step's call: the participant's request carries which step it is.
            let (reference, k) = (carrier.saga, carrier.step);
            req.saga = reference;
            req.saga_step = self.saga_step_code(reference, k);
        }
        if let Some(p) = self.sites[self.calls[call_id as usize].site as usize]
            .spec
            .publish
        {
            req.msg = self.calls[call_id as usize].msg;
            req.dest = match p.dest {
                Dest::Queue(q) => q,
                Dest::Topic(t) => t | messaging::TOPIC_BIT,
            };
        }
        req.holds = holds;
        req.inflight = inflight;
        let parent_span = self.reqs[parent_req as usize].span;
        if let (false, Some(tr)) = (parent_span == tracing::SpanRef::NONE, self.tracer.as_mut()) {
            let k = instance - self.svcs[to as usize].first_instance;
            let attempt = self.calls[call_id as usize].attempt;
            req.span = tr.child(parent_span, to, k, endpoint, attempt, now);
        }
        let Some(id) = self.alloc(req) else {
            return;
        };
        if let Some(slot) = self.calls[call_id as usize]
            .outstanding
            .iter_mut()
            .find(|s| **s == NONE)
        {
            *slot = id;
        }
        if until != SimTime::MAX {
            let lane = self.lane(Lane::Site(self.calls[call_id as usize].site));
            self.reqs[id as usize].timeout = Some(self.engine.schedule_timer(
                lane,
                until,
                Ev::Timeout { req: id },
            ));
        }
        if !lost {
            self.engine
                .schedule_at(now.after(delay), Ev::Deliver { req: id });
        }
    }

    // ---- calls: retries, breakers, budgets ------------------------------------

    /// A request starts a logical call at `site`.
    fn start_call(&mut self, now: SimTime, parent: u32, site: u32) {
        let spec = self.spec;
        let s = &self.sites[site as usize];
        let edge = s.edge as usize;
        let retry = s.spec.retry.map(|r| &spec.retries[r as usize]);
        let deadlines = Deadlines::start(
            now,
            retry.and_then(|r| r.overall_timeout),
            spec.services[s.from as usize].propagate_deadline,
            self.reqs[parent as usize].deadline,
        );
        let measured = now >= self.warmup;
        let e = &mut self.edges[edge];
        e.budget.on_call_start(now);
        if measured {
            e.stats.calls += 1;
        }
        let call = Call {
            parent,
            site,
            attempt: 0,
            attempt_started: now,
            deadlines,
            retry: RetryState::default(),
            outstanding: [NONE; 5],
            hedge_timer: None,
            bulkhead_wait: None,
            wait_done: Done::LOCAL,
            last_open: false,
            fell_back: false,
            started: now,
            call_holds: 0,
            breaker_permit: false,
            waiting_call: false,
            generation: 0,
            measured,
            work_ns: 0,
            msg: 0,
        };
        let publish = self.sites[site as usize].spec.publish;
        let call = match publish {
            Some(p) => Call {
                msg: self.new_message_id(p.poison),
                ..call
            },
            None => call,
        };
        if self.sites[site as usize].spec.after_write {
            self.dual_publish(parent, call.msg);
        }
        let id = match self.free_calls.pop() {
            Some(i) => {
                let generation = self.calls[i as usize].generation.wrapping_add(1);
                self.calls[i as usize] = Call { generation, ..call };
                i
            }
            None => {
                self.calls.push(call);
                (self.calls.len() - 1) as u32
            }
        };
        if self.call_layers(now, id) {
            self.first_attempt(now, id);
        }
    }

    /// The layers that wrap a whole call (breaker and bulkhead with `scope = "call"`).
    /// Returns false when the call was refused (and ended) or waits for a permit.
    fn call_layers(&mut self, now: SimTime, id: u32) -> bool {
        let c = &self.calls[id as usize];
        let (edge, measured) = (self.sites[c.site as usize].edge, c.measured);
        let e = &mut self.edges[edge as usize];
        if e.breaker_per_call {
            if let Some(b) = e.breaker.as_mut() {
                let (permit, t) = b.try_acquire(now);
                self.breaker_changed(now, edge, t);
                if permit.is_err() {
                    if measured {
                        self.edges[edge as usize].stats.breaker_rejected += 1;
                    }
                    self.calls[id as usize].last_open = true;
                    self.finish_call(now, id, Outcome::Error);
                    return false;
                }
                self.calls[id as usize].breaker_permit = true;
            }
        }
        let e = &mut self.edges[edge as usize];
        if e.bulkhead_per_call {
            if let Some(b) = e.bulkhead.as_mut() {
                match b.acquire(now, id) {
                    Acquire::Granted => self.calls[id as usize].call_holds |= HOLD_BULKHEAD,
                    Acquire::Rejected => {
                        if measured {
                            e.stats.bulkhead_rejected += 1;
                        }
                        self.finish_call(now, id, Outcome::Rejected);
                        return false;
                    }
                    Acquire::Wait { until } => {
                        let until = until.unwrap_or_else(|| self.call_deadline(id));
                        let c = &mut self.calls[id as usize];
                        c.bulkhead_wait = Some(until);
                        c.waiting_call = true;
                        if until != SimTime::MAX {
                            self.engine
                                .schedule_at(until.max(now), Ev::BulkheadWait { call: id });
                        }
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Sends a call's first attempt and, when it hedges, arms the next.
    fn first_attempt(&mut self, now: SimTime, id: u32) {
        // The first attempt may end the call at once (a reset link, a refusing layer), and
        // the slot may even hold a new call by then: `run_commands` stops there.
        let mut out = Commands::default();
        out.push(CallCommand::SendAttempt);
        if self.sites[self.calls[id as usize].site as usize]
            .spec
            .hedge
            .is_some()
        {
            out.push(CallCommand::ArmHedge);
        }
        self.run_commands(now, id, out);
    }

    /// Whether a hop between instances `a` and `b` crosses zones, and whether a zone partition
    /// cuts it.
    fn zone_hop(&self, a: u32, b: u32) -> (bool, bool) {
        if self.spec.zones.is_empty() {
            return (false, false);
        }
        let (za, zb) = (self.insts[a as usize].zone, self.insts[b as usize].zone);
        if za == NONE || zb == NONE || za == zb {
            return (false, false);
        }
        let cut = self
            .zone_cuts
            .iter()
            .any(|&(x, y)| (x, y) == (za, zb) || (y, x) == (za, zb));
        (true, cut)
    }

    /// A call's back-off is over: retry, unless its deadline came first.
    fn on_retry(&mut self, now: SimTime, id: u32) {
        if now >= self.call_deadline(id) {
            let c = &mut self.calls[id as usize];
            let edge = self.sites[c.site as usize].edge;
            self.edges[edge as usize]
                .budget
                .end_retry(&mut c.retry.ticket);
            self.finish_call(now, id, Outcome::Timeout);
        } else {
            self.attempt(now, id);
        }
    }

    /// Schedules the next hedge of a live hedged call, if it has attempts left.
    fn arm_hedge(&mut self, now: SimTime, id: u32) {
        let spec = self.spec;
        let c = &self.calls[id as usize];
        let site = &self.sites[c.site as usize];
        let h = &spec.hedges[site.spec.hedge.expect("hedged") as usize];
        if !h.next_due(c.attempt, c.hedge_timer.is_some()) {
            return;
        }
        let seen = &self.edges[site.edge as usize].attempt_latency;
        let delay = h.delay(seen.count(), |q| SimDuration(seen.percentile_ns(q)));
        let lane = self.lane(Lane::Hedge(c.site));
        let key = self
            .engine
            .schedule_timer(lane, now.after(delay), Ev::Hedge { call: id });
        self.calls[id as usize].hedge_timer = Some(key);
    }

    /// A hedge timer fired: send one more attempt.
    fn on_hedge(&mut self, now: SimTime, id: u32) {
        self.calls[id as usize].hedge_timer = None;
        let mut out = Commands::default();
        if self.calls[id as usize].bulkhead_wait.is_none() {
            out.push(CallCommand::SendAttempt);
        }
        // (While the previous attempt still waits for a bulkhead permit, hedging cannot add
        // load: only the timer is re-armed.)
        out.push(CallCommand::ArmHedge);
        self.run_commands(now, id, out);
    }

    /// Whether call slot `id` holds a live call (not on the free list).
    fn free_calls_live(&self, id: u32) -> bool {
        self.calls[id as usize].parent != NONE
    }

    /// Abandons every attempt of a call still in flight (the losers of a hedge), releasing
    /// what they hold at the caller; nothing is reported about them.
    fn cancel_attempts(&mut self, now: SimTime, id: u32) {
        let edge = self.sites[self.calls[id as usize].site as usize].edge;
        let outstanding = std::mem::replace(&mut self.calls[id as usize].outstanding, [NONE; 5]);
        for child in outstanding.into_iter().filter(|&c| c != NONE) {
            let r = &mut self.reqs[child as usize];
            r.abandoned = true;
            let done = r.take_done(Code::None);
            if let Some(k) = r.timeout.take() {
                self.engine.cancel(k);
            }
            if r.state == State::Lost {
                // Nothing will come back: free it now.
                let (s, work, arrived) = (r.service as usize, r.work_ns, r.arrived);
                if arrived {
                    self.svcs[s].wasted_ns += work as u128;
                }
                self.release(child);
            }
            self.release_attempt(now, edge, AttemptOutcome::Timeout, 0, done, false);
        }
    }

    /// Makes the next attempt of a call through its client layers, outermost first
    /// (POLICIES.md §19): breaker ⊃ adaptive throttle ⊃ concurrency limit ⊃ bulkhead ⊃
    /// balancer pick ⊃ send. A layer that refuses ends the attempt locally.
    fn attempt(&mut self, now: SimTime, id: u32) {
        let c = &mut self.calls[id as usize];
        c.attempt += 1;
        c.attempt_started = now;
        c.last_open = false;
        let (edge, measured) = (self.sites[c.site as usize].edge, c.measured);
        let e = &mut self.edges[edge as usize];
        if let Some(b) = e.breaker.as_mut().filter(|_| !e.breaker_per_call) {
            let (permit, t) = b.try_acquire(now);
            self.breaker_changed(now, edge, t);
            if permit.is_err() {
                let e = &mut self.edges[edge as usize];
                if measured {
                    e.stats.breaker_rejected += 1;
                }
                self.attempt_done(
                    now,
                    id,
                    NONE,
                    AttemptOutcome::CircuitOpen,
                    0,
                    0,
                    Done::LOCAL,
                );
                return;
            }
        }
        let e = &mut self.edges[edge as usize];
        if let Some(t) = e.throttle.as_mut() {
            let p = t.p_reject(now);
            t.on_request(now);
            if e.throttle_rng.chance(p) {
                if measured {
                    e.stats.throttled += 1;
                }
                self.attempt_done(now, id, NONE, AttemptOutcome::Refused, 0, 0, Done::LOCAL);
                return;
            }
        }
        let mut done = Done::LOCAL;
        if let Some(l) = e.limiter.as_mut() {
            match l.try_acquire() {
                Some(n) => {
                    done.holds |= HOLD_LIMITER;
                    done.inflight = n;
                }
                None => {
                    if measured {
                        e.stats.limited += 1;
                    }
                    self.attempt_done(now, id, NONE, AttemptOutcome::Refused, 0, 0, done);
                    return;
                }
            }
        }
        if let Some(b) = e.bulkhead.as_mut().filter(|_| !e.bulkhead_per_call) {
            match b.acquire(now, id) {
                Acquire::Granted => done.holds |= HOLD_BULKHEAD,
                Acquire::Rejected => {
                    if measured {
                        e.stats.bulkhead_rejected += 1;
                    }
                    self.attempt_done(now, id, NONE, AttemptOutcome::Refused, 0, 0, done);
                    return;
                }
                Acquire::Wait { until } => {
                    // An Envoy pending request waits as long as the attempt's own timeout allows.
                    let until = until.unwrap_or_else(|| self.attempt_deadline(now, id));
                    let c = &mut self.calls[id as usize];
                    c.bulkhead_wait = Some(until);
                    c.wait_done = done;
                    if until != SimTime::MAX {
                        self.engine
                            .schedule_at(until.max(now), Ev::BulkheadWait { call: id });
                    }
                    return;
                }
            }
        }
        self.dispatch(now, id, done);
    }

    /// The end of call `id` as a whole: its retry policy's overall timeout, and the calling
    /// request's deadline when its service propagates deadlines.
    fn call_deadline(&self, id: u32) -> SimTime {
        self.calls[id as usize].deadlines.call_end()
    }

    /// When the current attempt of call `id` times out: its per-try timeout within the call's
    /// overall deadline, and within the calling request's deadline when its service propagates it.
    fn attempt_deadline(&self, now: SimTime, id: u32) -> SimTime {
        let c = &self.calls[id as usize];
        let per_try = self.sites[c.site as usize].spec.timeout;
        c.deadlines.attempt_end(now, per_try)
    }

    /// The attempt passed its caller-side limits: pick an instance and send.
    fn dispatch(&mut self, now: SimTime, id: u32, mut done: Done) {
        let c = &self.calls[id as usize];
        let (site, attempt, measured) = (c.site, c.attempt, c.measured);
        let edge = self.sites[site as usize].edge;
        let until = self.attempt_deadline(now, id);
        if until <= now {
            // The deadline has already passed: DEADLINE_EXCEEDED without sending.
            self.attempt_done(now, id, NONE, AttemptOutcome::Timeout, 0, 0, done);
            return;
        }
        let parent = &self.reqs[c.parent as usize];
        let (key, headers, zone) = (
            parent.key,
            parent.headers,
            self.insts[parent.instance as usize].zone,
        );
        let Some(host) = self.pick_host(now, edge, key, headers, zone) else {
            if measured {
                self.edges[edge as usize].stats.no_healthy_upstream += 1;
            }
            self.attempt_done(now, id, NONE, AttemptOutcome::Refused, 0, 0, done);
            return;
        };
        let hedged = self.sites[site as usize].spec.hedge.is_some();
        // Down, or no longer (or not yet) in service.
        let dead = self.insts[host as usize].fault.down || !self.insts[host as usize].present;
        let e = &mut self.edges[edge as usize];
        e.active[(host - e.first_host) as usize] += 1;
        if measured {
            e.stats.calls_to_dead += dead as u64;
            e.stats.attempts += 1;
            if attempt > 1 {
                if hedged {
                    e.stats.hedges += 1;
                } else {
                    e.stats.retries += 1;
                }
            }
        }
        done.host = host;
        self.send_attempt(now, id, host, done.holds, done.inflight, until);
    }

    /// An attempt ended: release what it held, record it, then retry or finish the call.
    #[allow(clippy::too_many_arguments)]
    fn attempt_done(
        &mut self,
        now: SimTime,
        id: u32,
        child: u32,
        outcome: AttemptOutcome,
        work_ns: u64,
        attempt_ns: u64,
        done: Done,
    ) {
        let spec = self.spec;
        if let (true, Some(tr)) = (child == NONE, self.tracer.as_mut()) {
            // Nothing was sent: an instant span says why.
            let c = &self.calls[id as usize];
            let (parent_span, attempt) = (self.reqs[c.parent as usize].span, c.attempt);
            let to = self.sites[c.site as usize].spec.to.0;
            let host = done.host;
            let k = if host == NONE {
                tracing::NONE
            } else {
                host - self.svcs[to as usize].first_instance
            };
            let s = tr.child(parent_span, to, k, tracing::NONE, attempt, now);
            tr.close(s, now, outcome.name());
        }
        let c = &mut self.calls[id as usize];
        c.work_ns += work_ns;
        if child != NONE {
            if let Some(slot) = c.outstanding.iter_mut().find(|s| **s == child) {
                *slot = NONE;
            }
        }
        c.last_open = outcome == AttemptOutcome::CircuitOpen;
        let site = &self.sites[c.site as usize];
        let edge = site.edge;
        let retry = site.spec.retry.map(|r| &spec.retries[r as usize]);
        self.release_attempt(now, edge, outcome, attempt_ns, done, true);
        let c = &mut self.calls[id as usize];
        let e = &mut self.edges[edge as usize];
        e.budget.end_retry(&mut c.retry.ticket);
        if outcome != AttemptOutcome::CircuitOpen {
            if let Some(b) = e.breaker.as_mut().filter(|_| !e.breaker_per_call) {
                let result = if e.record.contains(outcome) {
                    CallResult::Failure
                } else {
                    CallResult::Success
                };
                let t = b.on_result(now, result, SimDuration(attempt_ns));
                self.breaker_changed(now, edge, t);
            }
            if outcome == AttemptOutcome::Ok {
                self.edges[edge as usize].attempt_latency.record(attempt_ns);
            }
        }
        if let Some(h) = self.sites[self.calls[id as usize].site as usize].spec.hedge {
            let h = &spec.hedges[h as usize];
            let c = &self.calls[id as usize];
            let outstanding = c.outstanding.iter().filter(|&&s| s != NONE).count();
            let mut out = Commands::default();
            h.on_attempt_done(outcome, c.attempt, outstanding, &mut out);
            self.run_commands(now, id, out);
            return;
        }
        let deadline = self.call_deadline(id);
        let e = &mut self.edges[edge as usize];
        let c = &mut self.calls[id as usize];
        let local_refusal = matches!(
            outcome,
            AttemptOutcome::CircuitOpen | AttemptOutcome::Refused
        );
        e.budget.on_attempt_result(
            outcome == AttemptOutcome::Ok,
            local_refusal,
            &c.retry.ticket,
        );
        let max_retries = e.bulkhead.as_ref().and_then(|b| b.max_retries());
        let decision = match retry {
            Some(r) => r.decide(
                now,
                c.attempt,
                outcome,
                deadline,
                &mut c.retry,
                &mut e.budget,
                max_retries,
                &mut e.rng,
            ),
            None => retry::no_retry(outcome),
        };
        match decision {
            RetryDecision::RetryAt(at) => {
                self.engine.schedule_at(at, Ev::Retry { call: id });
            }
            RetryDecision::Finish {
                outcome,
                budget_denied,
            } => {
                if budget_denied && c.measured {
                    e.stats.budget_denied += 1;
                }
                self.finish_call(now, id, outcome);
            }
        }
    }

    /// Carries out the commands a call machine wrote, in order, until the call ends (a
    /// command may end it: an attempt refused at once, a finish).
    fn run_commands(&mut self, now: SimTime, id: u32, out: Commands) {
        let generation = self.calls[id as usize].generation;
        for &cmd in out.as_slice() {
            if self.calls[id as usize].generation != generation || !self.free_calls_live(id) {
                return;
            }
            match cmd {
                CallCommand::CancelOutstanding => self.cancel_attempts(now, id),
                CallCommand::CancelHedgeTimer => {
                    if let Some(k) = self.calls[id as usize].hedge_timer.take() {
                        self.engine.cancel(k);
                    }
                }
                CallCommand::SendAttempt => self.attempt(now, id),
                CallCommand::ArmHedge => self.arm_hedge(now, id),
                CallCommand::Finish(outcome) => self.finish_call(now, id, outcome),
            }
        }
    }

    /// Releases what an ended attempt held at the caller (bulkhead permit, limiter slot, the
    /// instance's active count) and, when `report`, feeds its result to the limiter, the
    /// throttle, the balancer and outlier detection.
    fn release_attempt(
        &mut self,
        now: SimTime,
        edge: u32,
        outcome: AttemptOutcome,
        rtt_ns: u64,
        done: Done,
        report: bool,
    ) {
        let e = &mut self.edges[edge as usize];
        if done.holds & HOLD_BULKHEAD != 0 {
            if let Some(w) = e.bulkhead.as_mut().and_then(|b| b.release()) {
                self.woken.push(w);
            }
        }
        if done.holds & HOLD_LIMITER != 0 {
            if let Some(l) = e.limiter.as_mut() {
                let dropped = matches!(outcome, AttemptOutcome::Timeout | AttemptOutcome::Rejected);
                let ignore = !report || done.host == NONE;
                l.release(
                    SimDuration(rtt_ns),
                    done.inflight,
                    dropped,
                    ignore,
                    &mut e.limiter_rng,
                );
            }
        }
        if report && outcome == AttemptOutcome::Ok {
            if let Some(t) = e.throttle.as_mut() {
                t.on_accept(now);
            }
        }
        if done.host == NONE {
            return;
        }
        let k = (done.host - e.first_host) as usize;
        e.active[k] -= 1;
        if !report {
            return;
        }
        if outcome != AttemptOutcome::Ok {
            let w = e.weights.get(k).copied().unwrap_or(1);
            if let Some(b) = e.balancer.as_mut() {
                b.on_failure(k, w);
            }
        }
        if let Some(d) = e.outlier.as_mut() {
            if let Some(change) = d.on_result(now, k, outcome.outlier_status(), &mut e.outlier_rng)
            {
                self.outlier_changed(now, edge, change);
            }
        }
    }

    /// A logical call ended: tell the calling request (or answer with the breaker's fallback).
    fn finish_call(&mut self, now: SimTime, id: u32, outcome: Outcome) {
        let edge = self.sites[self.calls[id as usize].site as usize].edge;
        if self.calls[id as usize].bulkhead_wait.take().is_some() {
            // A hedged attempt still waiting for a permit stops waiting.
            let done = self.calls[id as usize].wait_done;
            if let Some(b) = self.edges[edge as usize].bulkhead.as_mut() {
                b.give_up(id, false);
            }
            self.release_attempt(now, edge, AttemptOutcome::Timeout, 0, done, false);
        }
        let c = &mut self.calls[id as usize];
        let (permit, holds, started) = (
            std::mem::take(&mut c.breaker_permit),
            std::mem::take(&mut c.call_holds),
            c.started,
        );
        let e = &mut self.edges[edge as usize];
        if permit {
            // A call-scoped breaker sees one result per call, after all its retries.
            let result = if e.record.contains_call(outcome) {
                CallResult::Failure
            } else {
                CallResult::Success
            };
            if let Some(b) = e.breaker.as_mut() {
                let t = b.on_result(now, result, now.since(started));
                self.breaker_changed(now, edge, t);
            }
        }
        if holds & HOLD_BULKHEAD != 0 {
            let e = &mut self.edges[edge as usize];
            if let Some(w) = e.bulkhead.as_mut().and_then(|b| b.release()) {
                self.woken.push(w);
            }
        }
        let c = &mut self.calls[id as usize];
        let fallback = self.edges[edge as usize].fallback;
        if let Some(at) = fallback.and_then(|f| f.answer_at(now, outcome, c.last_open, c.fell_back))
        {
            c.fell_back = true;
            if c.measured {
                self.edges[edge as usize].stats.fallbacks += 1;
            }
            if let Some(k) = c.hedge_timer.take() {
                self.engine.cancel(k);
            }
            self.engine.schedule_at(at, Ev::Fallback { call: id });
            return;
        }
        let c = &self.calls[id as usize];
        let (parent, work, measured) = (c.parent, c.work_ns, c.measured);
        if outcome != Outcome::Ok && self.sites[c.site as usize].spec.after_write {
            let msg = c.msg;
            self.dual_publish_failed(now, msg);
        }
        let c = &self.calls[id as usize];
        let site = &self.sites[c.site as usize];
        let (edge, required) = (site.edge as usize, site.spec.required);
        if let Some(k) = self.calls[id as usize].hedge_timer.take() {
            self.engine.cancel(k);
        }
        self.calls[id as usize].parent = NONE;
        let e = &mut self.edges[edge];
        e.budget.on_call_end();
        if measured {
            if outcome == Outcome::Ok {
                e.stats.ok += 1;
            } else {
                e.stats.failed += 1;
            }
        }
        self.free_calls.push(id);
        self.call_result(now, parent, outcome, required, work);
    }

    /// Logs a breaker transition, tracks time open, and arms the breaker's timer.
    fn breaker_changed(&mut self, now: SimTime, edge: u32, t: Option<breaker::Transition>) {
        let e = &mut self.edges[edge as usize];
        if let Some(t) = t {
            e.transitions += 1;
            let is_open = |s| matches!(s, breaker::State::Open | breaker::State::ForcedOpen);
            if is_open(t.to) && e.open_since.is_none() {
                e.open_since = Some(now);
            } else if !is_open(t.to) {
                if let Some(since) = e.open_since.take() {
                    e.open_ns += now.since(since).0;
                }
            }
            let name = format!(
                "{}->{}",
                self.spec.services[e.from as usize].name, self.spec.services[e.to as usize].name
            );
            self.log.push(StateEvent {
                t_s: secs(now),
                kind: "breaker",
                subject: name,
                detail: format!("{} -> {}", state_name(t.from), state_name(t.to)),
            });
        }
        if let Some(at) = e.breaker.as_ref().and_then(|b| b.next_timer()) {
            if e.timer_at != Some(at) && at >= now {
                e.timer_at = Some(at);
                self.engine.schedule_at(at, Ev::BreakerTimer { edge });
            }
        }
    }

    fn on_deliver(&mut self, now: SimTime, id: u32) {
        if self.reqs[id as usize].killed {
            // Held by a delay fault when its instance crashed.
            self.release(id);
            return;
        }
        let i = self.reqs[id as usize].instance as usize;
        if self.insts[i].paused_at.is_some() && !self.insts[i].fault.down {
            // A frozen process accepts nothing until it resumes.
            self.insts[i].frozen.push(faults::Frozen::Deliver(id));
            return;
        }
        self.trace_mark(id, tracing::Mark::Arrived, now);
        let r = &mut self.reqs[id as usize];
        r.state = State::Running;
        r.arrived = true;
        r.born = now;
        // Health checks are not traffic: they use workers but stay out of the statistics.
        r.measured = !r.probe && now >= self.warmup;
        let (s, i, measured, delayed) = (
            r.service as usize,
            r.instance as usize,
            r.measured,
            r.delayed,
        );
        let fault = self.insts[i].fault;
        if !self.insts[i].present {
            // A slot the autoscaler does not use (or one it scaled in): nothing listens.
            self.reqs[id as usize].code = Code::Refused;
            self.respond(now, id, Outcome::Error);
            return;
        }
        if fault != InstanceFault::NONE {
            if fault.down {
                // Connection refused: a fast error, the service never sees the request.
                self.reqs[id as usize].code = Code::Refused;
                self.respond(now, id, Outcome::Error);
                return;
            }
            if let Some((add, p)) = fault.delay {
                if !delayed && self.svcs[s].fault_rng.chance(p) {
                    self.reqs[id as usize].delayed = true;
                    self.engine
                        .schedule_at(now.after(add), Ev::Deliver { req: id });
                    return;
                }
            }
        }
        let svc = &mut self.svcs[s];
        let waited = self.reqs[id as usize].rate_waited;
        if !waited && measured {
            svc.counts.requests += 1;
        }
        let probe = self.reqs[id as usize].probe;
        if !waited && !probe {
            svc.bucket.requests += 1;
        }
        if !waited && fault.abort > 0.0 && svc.fault_rng.chance(fault.abort) {
            let (outcome, code) = match fault.abort_code {
                500 => (Outcome::Error, Code::None),
                429 => (Outcome::Rejected, Code::Limited),
                _ => (Outcome::Rejected, Code::None),
            };
            if measured {
                svc.counts.add(outcome);
            }
            svc.bucket.add(outcome);
            self.reqs[id as usize].code = code;
            self.respond(now, id, outcome);
            return;
        }
        if !self.admit(now, id) {
            return;
        }
        let svc = &mut self.svcs[s];
        let capacity = self.spec.services[s].queue_capacity as usize;
        let inst = &mut self.insts[i];
        if let Some(threads) = self.spec.services[s].threads {
            if inst.threads_busy >= threads {
                if inst.admit.len() >= capacity {
                    if measured {
                        svc.counts.rejected += 1;
                    }
                    svc.bucket.rejected += 1;
                    self.release_server_limit(now, id, Outcome::Rejected);
                    self.respond(now, id, Outcome::Rejected);
                } else {
                    inst.admit.push_back(id);
                    self.reqs[id as usize].enqueued = now;
                }
                return;
            }
            inst.threads_busy += 1;
        }
        if inst.queue.len() >= capacity && inst.busy >= svc.workers {
            if self.spec.services[s].threads.is_some() {
                inst.threads_busy -= 1;
            }
            // Admission control: a full queue refuses at once.
            if measured {
                svc.counts.rejected += 1;
            }
            svc.bucket.rejected += 1;
            self.release_server_limit(now, id, Outcome::Rejected);
            self.respond(now, id, Outcome::Rejected);
            return;
        }
        inst.in_flight += 1;
        self.reqs[id as usize].admitted = true;
        self.held_change(s, now, 1);
        self.advance(now, id);
    }

    /// Runs steps until one has to wait (work or calls) or the handler ends.
    fn advance(&mut self, now: SimTime, id: u32) {
        let spec = self.spec;
        loop {
            let r = &self.reqs[id as usize];
            let steps = steps_of(spec, r.service, r.endpoint);
            let Some(step) = steps.get(r.step as usize) else {
                self.complete(now, id);
                return;
            };
            let service = r.service as usize;
            if spec.services[service].drop_expired && now >= r.deadline {
                // Nobody waits for the answer any more: stop here (gRPC server cancellation).
                if r.measured {
                    self.svcs[service].drops.expired += 1;
                }
                self.reqs[id as usize].code = Code::Expired;
                self.complete(now, id);
                return;
            }
            match step {
                Step::Work(_) => {
                    let inst = &mut self.insts[r.instance as usize];
                    let free = inst.busy < inst.fault.workers.unwrap_or(self.svcs[service].workers);
                    if !free {
                        if inst.queue.is_empty() {
                            inst.last_empty = now;
                        }
                        inst.queue.push_back(id);
                    }
                    self.reqs[id as usize].enqueued = now;
                    if free {
                        self.start_work(now, id);
                    }
                    return;
                }
                Step::Call(c) if c.publish.is_some() && !c.wait => {
                    if self.svcs[service].branch_rng.chance(c.probability) {
                        self.fire_and_forget(now, id, c);
                    }
                }
                Step::Call(c) => {
                    if self.svcs[service].branch_rng.chance(c.probability) {
                        let site = self.site_index[service][r.endpoint as usize][r.step as usize];
                        self.reqs[id as usize].pending = 1;
                        self.start_call(now, id, site);
                        return;
                    }
                }
                Step::Saga(def) => self.start_saga(now, id, *def),
                Step::Parallel(cs) => {
                    let first = self.site_index[service][r.endpoint as usize][r.step as usize];
                    // Decide every member first and set `pending` to the total before any call
                    // starts: a call can finish at once (breaker open, reset link), and the
                    // request must not move on until the whole group is done.
                    let mut chosen = std::mem::take(&mut self.chosen);
                    chosen.clear();
                    for (k, c) in cs.iter().enumerate() {
                        if self.svcs[service].branch_rng.chance(c.probability) {
                            chosen.push(first + k as u32);
                        }
                    }
                    if !chosen.is_empty() {
                        self.reqs[id as usize].pending = chosen.len() as u32;
                        for &site in &chosen {
                            self.start_call(now, id, site);
                        }
                        self.chosen = chosen;
                        return;
                    }
                    self.chosen = chosen;
                }
            }
            self.reqs[id as usize].step += 1;
        }
    }

    fn start_work(&mut self, now: SimTime, id: u32) {
        self.trace_mark(id, tracing::Mark::WorkStarted, now);
        let spec = self.spec;
        let r = &mut self.reqs[id as usize];
        let Step::Work(dist) = &steps_of(spec, r.service, r.endpoint)[r.step as usize] else {
            unreachable!("start_work on a work step")
        };
        let step = if r.probe { u32::MAX } else { r.step };
        r.work_started = now;
        r.working = true;
        r.pause_mark = self.insts[r.instance as usize].paused_ns;
        let (s, i, measured, waited) = (
            r.service as usize,
            r.instance as usize,
            r.measured,
            now.since(r.enqueued),
        );
        self.account_busy(s, now);
        let svc = &mut self.svcs[s];
        svc.busy += 1;
        self.insts[i].busy += 1;
        if measured {
            svc.queue_wait.record(waited.0);
        }
        // The canary version brings its own local work (replacing the first work step).
        let dist = match (spec.services[s].new_version(), self.insts[i].v2, step) {
            (Some((Some(work), _)), true, 0) => work,
            _ => dist,
        };
        let mut d = dist.sample(&mut svc.work_rng);
        if let (Some(c), Some(at)) = (&spec.services[s].cold_start, self.insts[i].booted_at) {
            // Cold: slower by a factor falling linearly to 1 over the cold-start period.
            let age = now.since(at);
            if age < c.duration {
                let left = 1.0 - age.0 as f64 / c.duration.0 as f64;
                d = SimDuration((d.0 as f64 * (1.0 + (c.multiply - 1.0) * left)) as u64);
            }
        }
        if spec.services[s].occ && self.reqs[id as usize].occ_seen == NONE && step != u32::MAX {
            // Optimistic concurrency: the read happens as the handler starts.
            let key = self.reqs[id as usize].key;
            let row = svc.occ_rows.entry(key).or_insert((0, 0));
            row.1 += 1;
            self.reqs[id as usize].occ_seen = row.0;
        }
        let fault = self.insts[i].fault;
        if fault.slow != 1.0 && svc.fault_rng.chance(fault.slow_p) {
            d = SimDuration((d.0 as f64 * fault.slow) as u64);
        }
        self.engine
            .schedule_at(now.after(d), Ev::WorkDone { req: id });
    }

    fn on_work_done(&mut self, now: SimTime, id: u32) {
        let r = &mut self.reqs[id as usize];
        if r.killed {
            // Its worker was given back when the instance crashed.
            self.release(id);
            return;
        }
        let i = r.instance as usize;
        let inst = &mut self.insts[i];
        {
            if let Some(since) = inst.paused_at {
                // Frozen mid-work: the rest runs after the pause.
                let left = now.since(since).0;
                inst.frozen.push(faults::Frozen::Work(id, left));
                return;
            }
            if inst.paused_ns > r.pause_mark {
                // A pause came and went while it worked: it ends that much later.
                let extra = inst.paused_ns - r.pause_mark;
                r.pause_mark = inst.paused_ns;
                self.engine
                    .schedule_at(now.after(SimDuration(extra)), Ev::WorkDone { req: id });
                return;
            }
        }
        r.work_ns += now.since(r.work_started).0;
        r.working = false;
        r.step += 1;
        let s = r.service as usize;
        self.account_busy(s, now);
        self.svcs[s].busy -= 1;
        self.insts[i].busy -= 1;
        self.fill_workers(now, i);
        self.advance(now, id);
    }

    /// Starts waiting work on every free worker of instance `i`.
    fn fill_workers(&mut self, now: SimTime, i: usize) {
        let s = self.insts[i].service as usize;
        let workers = self.insts[i].fault.workers.unwrap_or(self.svcs[s].workers);
        while self.insts[i].busy < workers {
            match self.next_work(now, i) {
                Some(n) => self.start_work(now, n),
                None => break,
            }
        }
        self.answer_shed(now);
    }

    /// The handler ran all its steps (or a required call failed): decide the outcome and answer.
    fn complete(&mut self, now: SimTime, id: u32) {
        let r = &self.reqs[id as usize];
        let (s, i) = (r.service as usize, r.instance as usize);
        let svc = &mut self.svcs[s];
        let canary = self.insts[i].v2;
        let error_rate = match (self.spec.services[s].new_version(), canary) {
            (Some((_, rate)), true) => rate,
            _ => self.spec.services[s].error_rate,
        };
        let poison = r.delivery != NONE && r.msg & messaging::POISON != 0;
        let mut outcome = if matches!(r.code, Code::Shed | Code::Expired) {
            Outcome::Rejected
        } else if r.failed || poison || svc.error_rng.chance(error_rate) {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        if self.occ_close(id, outcome == Outcome::Ok) == Some(false) {
            outcome = Outcome::Error;
        }
        let r = &self.reqs[id as usize];
        let (dest, msg, key) = (r.dest, r.msg, r.key);
        if dest != NONE && dest & messaging::WRITE_BIT != 0 {
            if outcome == Outcome::Ok {
                self.write_committed(id);
            }
        } else if dest != NONE && outcome == Outcome::Ok && !self.store_message(now, dest, msg, key)
        {
            // The broker's queue is full: the publish is refused.
            outcome = Outcome::Rejected;
        }
        let r = &self.reqs[id as usize];
        let (born, measured, probe) = (r.born, r.measured, r.probe);
        // (A choreographed step's effect is judged with its message, in `delivery_done`.)
        if outcome == Outcome::Ok && r.saga != NONE && r.saga_step != NONE && r.delivery == NONE {
            let (reference, code) = (r.saga, r.saga_step);
            self.saga_effect(now, reference, code);
        }
        self.release_server_limit(now, id, outcome);
        self.held_change(s, now, -1);
        let svc = &mut self.svcs[s];
        self.insts[i].in_flight -= 1;
        self.reqs[id as usize].admitted = false;
        let latency = now.since(born).0;
        if measured {
            svc.counts.add(outcome);
            svc.latency.record(latency);
        }
        if !probe {
            svc.bucket.add(outcome);
            svc.bucket_latency.record(latency);
            if canary {
                self.canary_request(s, outcome, latency);
            }
        }
        self.respond(now, id, outcome);
        if self.spec.services[s].threads.is_some() {
            let inst = &mut self.insts[i];
            inst.threads_busy -= 1;
            let next = self.spec.services[s].discipline.pop(&mut inst.admit);
            if let Some(n) = next {
                inst.threads_busy += 1;
                inst.in_flight += 1;
                self.reqs[n as usize].admitted = true;
                self.held_change(s, now, 1);
                self.advance(now, n);
            }
        }
    }

    /// Ends request `id`'s hold on its `occ` row, committing if `commit`: Some(true) when the
    /// commit went through, Some(false) on a conflict (another request committed the key
    /// since this one read it), None when there is nothing to commit or none was asked.
    fn occ_close(&mut self, id: u32, commit: bool) -> Option<bool> {
        let r = &mut self.reqs[id as usize];
        if r.occ_seen == NONE {
            return None;
        }
        let (seen, key, measured) = (r.occ_seen, r.key, r.measured);
        r.occ_seen = NONE;
        let svc = &mut self.svcs[r.service as usize];
        let row = svc.occ_rows.get_mut(&key).expect("a read row is held");
        let verdict = commit.then(|| {
            let ok = row.0 == seen;
            if ok {
                row.0 = (row.0 + 1) & 0x7fff_ffff; // never NONE
            }
            ok
        });
        row.1 -= 1;
        if row.1 == 0 {
            svc.occ_rows.remove(&key);
        }
        if verdict == Some(false) && measured {
            svc.conflicts += 1;
        }
        verdict
    }

    /// Sends the answer of `id` back to whoever waits for it.
    fn respond(&mut self, now: SimTime, id: u32, outcome: Outcome) {
        self.trace_mark(id, tracing::Mark::Answered, now);
        let r = &mut self.reqs[id as usize];
        r.outcome = outcome;
        if r.abandoned {
            // Nobody waits: all the work done for it was wasted.
            let (s, work) = (r.service as usize, r.work_ns);
            self.svcs[s].wasted_ns += work as u128;
            if r.timeout.is_none() {
                self.release(id);
            }
            return;
        }
        if r.probe {
            // The checker (a local agent) sees the answer at once.
            if let Some(k) = r.timeout.take() {
                self.engine.cancel(k);
            }
            self.probe_result(now, id, outcome == Outcome::Ok);
            self.release(id);
            return;
        }
        if r.delivery != NONE {
            self.delivery_done(now, id, outcome, false);
            return;
        }
        if r.parent == NONE && r.workload == NONE {
            // A one-way message (a fire-and-forget publish): nobody hears the answer.
            self.release(id);
            return;
        }
        if r.parent == NONE {
            self.client_result(now, id, outcome);
            return;
        }
        let (call, service) = (r.parent as usize, r.service as usize);
        let parent_service = self.sites[self.calls[call].site as usize].from as usize;
        let callee = r.instance;
        let (cross, cut) =
            self.zone_hop(callee, self.reqs[self.calls[call].parent as usize].instance);
        let n = self.svcs.len();
        let li = self.links[service * n + parent_service] as usize;
        let r = &mut self.reqs[id as usize];
        let link = &mut self.link_table[li];
        link.messages += 1;
        let loss = link.loss_now().unwrap_or_else(|| {
            // The answer's connection was reset: the caller sees a connection failure.
            r.outcome = Outcome::Error;
            r.code = Code::Refused;
            link.loss
        });
        if cut || link.rng.chance(loss) {
            link.lost += 1;
            r.state = State::Lost;
            return;
        }
        let delay = match cross
            .then_some(())
            .and(self.spec.network.cross_zone.as_ref())
        {
            Some(d) => d.sample(&mut link.rng),
            None => link.latency.sample(&mut link.rng),
        };
        r.state = State::Responding;
        self.engine
            .schedule_at(now.after(delay), Ev::Respond { req: id });
    }

    /// Records a point on the server's side of request `id`'s span, if it is traced.
    #[inline]
    fn trace_mark(&mut self, id: u32, mark: tracing::Mark, now: SimTime) {
        let span = self.reqs[id as usize].span;
        if span != tracing::SpanRef::NONE {
            if let Some(tr) = self.tracer.as_mut() {
                tr.mark(span, mark, now);
            }
        }
    }

    fn on_respond(&mut self, now: SimTime, id: u32) {
        let r = &mut self.reqs[id as usize];
        if r.abandoned {
            // The caller timed out while the answer travelled.
            let (s, work) = (r.service as usize, r.work_ns);
            self.svcs[s].wasted_ns += work as u128;
            self.release(id);
            return;
        }
        if let Some(k) = r.timeout.take() {
            self.engine.cancel(k);
        }
        let (call, outcome, work, sent) = (r.parent, r.outcome, r.work_ns, r.sent);
        let code = r.code;
        let done = r.take_done(code);
        let span = r.span;
        self.release(id);
        let attempt = match done.code {
            Code::Refused => AttemptOutcome::ConnectFailure,
            Code::Limited => AttemptOutcome::RateLimited,
            _ => AttemptOutcome::from(outcome),
        };
        if let Some(tr) = self.tracer.as_mut() {
            tr.close(span, now, attempt.name());
        }
        self.attempt_done(now, call, id, attempt, work, now.since(sent).0, done);
    }

    /// A call of `parent` ended with `outcome`.
    fn call_result(
        &mut self,
        now: SimTime,
        parent: u32,
        outcome: Outcome,
        required: bool,
        work_ns: u64,
    ) {
        if self.reqs[parent as usize].saga != NONE && self.reqs[parent as usize].saga_step == NONE {
            // A saga's carrier: the orchestrator decides.
            self.saga_reply(now, parent, outcome);
            return;
        }
        let p = &mut self.reqs[parent as usize];
        p.work_ns += work_ns;
        p.pending -= 1;
        if outcome != Outcome::Ok && required {
            p.failed = true;
        }
        if p.pending > 0 {
            return;
        }
        if p.killed {
            // Its instance crashed while it waited: nobody needs these answers.
            self.release(parent);
            return;
        }
        let i = p.instance as usize;
        if self.insts[i].paused_at.is_some() {
            self.insts[i].frozen.push(faults::Frozen::Advance(parent));
            return;
        }
        self.resume_after_calls(now, parent);
    }

    /// All calls of a step answered: fail the request or go on with its handler.
    fn resume_after_calls(&mut self, now: SimTime, id: u32) {
        let p = &mut self.reqs[id as usize];
        if p.failed {
            self.complete(now, id);
        } else {
            p.step += 1;
            self.advance(now, id);
        }
    }

    fn on_timeout(&mut self, now: SimTime, id: u32) {
        let r = &mut self.reqs[id as usize];
        r.timeout = None;
        r.abandoned = true;
        let (s, measured, arrived, parent) = (r.service as usize, r.measured, r.arrived, r.parent);
        // The callee counts requests it received whose caller gave up on them.
        if arrived {
            if measured {
                self.svcs[s].counts.timeouts += 1;
            }
            self.svcs[s].bucket.timeouts += 1;
        }
        if self.reqs[id as usize].probe {
            self.probe_result(now, id, false);
        } else if parent == NONE {
            self.client_result(now, id, Outcome::Timeout);
        } else {
            let r = &mut self.reqs[id as usize];
            let sent = r.sent;
            let done = r.take_done(Code::None);
            if let Some(tr) = self.tracer.as_mut() {
                tr.close(r.span, now, "timeout");
            }
            self.attempt_done(
                now,
                parent,
                id,
                AttemptOutcome::Timeout,
                0,
                now.since(sent).0,
                done,
            );
        }
        let r = &self.reqs[id as usize];
        match r.state {
            // Never arrived, or its answer was lost: nothing will come back.
            State::Lost => {
                if r.arrived {
                    let work = r.work_ns;
                    self.svcs[s].wasted_ns += work as u128;
                }
                self.release(id);
            }
            // Still working, or its answer is on the way: freed when that ends.
            State::Sent | State::Running | State::Responding | State::Free => {}
        }
    }

    /// A root request ended for its client (answered, or the client gave up).
    fn client_result(&mut self, now: SimTime, id: u32, outcome: Outcome) {
        let r = &self.reqs[id as usize];
        if outcome != Outcome::Timeout {
            if let Some(k) = r.timeout {
                self.engine.cancel(k);
            }
            self.client_account(now, id, outcome);
            self.release(id);
        } else {
            self.client_account(now, id, outcome);
        }
    }

    /// Counts a root request's end for its workload and lets a closed-loop user think.
    fn client_account(&mut self, now: SimTime, id: u32, outcome: Outcome) {
        let r = &self.reqs[id as usize];
        let (wl, user, measured, sent) = (r.workload, r.user, r.sent >= self.warmup, r.sent);
        if let Some(tr) = self.tracer.as_mut() {
            tr.finish(r.span, now, outcome.name());
        }
        let w = &mut self.wls[wl as usize];
        w.pending -= 1;
        let latency = now.since(sent).0;
        if measured {
            w.counts.add(outcome);
            if matches!(outcome, Outcome::Ok | Outcome::Error) {
                w.latency.record(latency);
            }
        }
        w.bucket.add(outcome);
        if matches!(outcome, Outcome::Ok | Outcome::Error) {
            w.bucket_latency.record(latency);
        }
        if user != NONE {
            if let Arrivals::Closed { think, .. } = &self.spec.workloads[wl as usize].arrivals {
                let t = now.after(think.sample(&mut w.think_rng));
                self.engine.schedule_at(t, Ev::UserSend { user });
            }
        }
    }

    // ---- faults -----------------------------------------------------------

    /// Starts (`on`) or ends a fault, and logs it.
    fn set_fault(&mut self, now: SimTime, idx: u32, on: bool) {
        let f = &self.spec.faults[idx as usize];
        let svc = &self.svcs[f.target.0 as usize];
        let (first, n) = (svc.first_instance, svc.instances);
        let instances = match f.instance {
            Some(k) => first + k..first + k + 1,
            None => first..first + n,
        };
        let subject;
        match f.kind {
            FaultKind::ZoneOutage(z) => {
                for i in 0..self.insts.len() {
                    if self.insts[i].zone == z {
                        self.set_down(now, i, on);
                    }
                }
                subject = format!("zone {}", self.spec.zones[z as usize]);
            }
            FaultKind::RegistryOutage => {
                if on {
                    self.registry_down += 1;
                } else {
                    self.registry_down -= 1;
                    if self.registry_down == 0 {
                        for d in &mut self.discovery {
                            d.registry.resync(now);
                        }
                    }
                }
                subject = "registry".into();
            }
            FaultKind::RegistryPartition => {
                let s = f.target.0 as usize;
                if on {
                    self.registry_cut[s] += 1;
                } else {
                    self.registry_cut[s] -= 1;
                }
                subject = format!("{}<->registry", self.spec.services[s].name);
            }
            FaultKind::ZonePartition(a, b) => {
                if on {
                    self.zone_cuts.push((a, b));
                } else if let Some(k) = self.zone_cuts.iter().position(|&c| c == (a, b)) {
                    self.zone_cuts.remove(k);
                }
                subject = format!(
                    "zones {}<->{}",
                    self.spec.zones[a as usize], self.spec.zones[b as usize]
                );
            }
            FaultKind::Partition | FaultKind::Reset | FaultKind::Loss(_) => {
                let peer = f.peer.expect("validated").0 as usize;
                let a = f.target.0 as usize;
                let k = self.svcs.len();
                let value = match (on, f.kind) {
                    (false, _) => LinkFault::None,
                    (true, FaultKind::Partition) => LinkFault::Partition,
                    (true, FaultKind::Reset) => LinkFault::Reset,
                    (true, FaultKind::Loss(p)) => LinkFault::Loss(p),
                    _ => unreachable!("link faults only"),
                };
                for li in [self.links[a * k + peer], self.links[peer * k + a]] {
                    if li != NONE {
                        self.link_table[li as usize].fault = value;
                    }
                }
                subject = format!(
                    "{}<->{}",
                    self.spec.services[a].name, self.spec.services[peer].name
                );
            }
            kind => {
                for i in instances {
                    let fault = &mut self.insts[i as usize].fault;
                    match kind {
                        FaultKind::Crash => self.set_down(now, i as usize, on),
                        FaultKind::Pause => self.set_paused(now, i as usize, on),
                        FaultKind::RandomCrash { .. } => self.set_random(now, idx, i as usize, on),
                        FaultKind::Abort(code) => {
                            fault.abort = if on { f.p } else { 0.0 };
                            fault.abort_code = code;
                        }
                        FaultKind::Delay(add) => fault.delay = on.then_some((add, f.p)),
                        FaultKind::Slow { multiply, workers } => {
                            fault.slow = if on { multiply } else { 1.0 };
                            fault.slow_p = f.p;
                            fault.workers = if on { workers } else { None };
                            if !on {
                                // Workers are back: start waiting work on them.
                                self.fill_workers(now, i as usize);
                            }
                        }
                        _ => unreachable!("instance faults only"),
                    }
                }
                let name = &self.spec.services[f.target.0 as usize].name;
                subject = match f.instance {
                    Some(k) => format!("{name}/{k}"),
                    None => name.clone(),
                };
            }
        }
        let detail = match f.kind {
            FaultKind::Delay(d) => format!("latency +{d} for {}% of requests", f.p * 100.0),
            FaultKind::Abort(code) => format!("{code} for {}% of requests", f.p * 100.0),
            FaultKind::Slow { multiply, workers } => match workers {
                Some(w) => format!("work x{multiply}, {w} workers"),
                None => format!("work x{multiply}"),
            },
            FaultKind::Crash => "crash: in-flight work lost, connections refused".into(),
            FaultKind::Pause => "pause: the instance freezes".into(),
            FaultKind::ZoneOutage(_) => "zone outage: every instance in it down".into(),
            FaultKind::ZonePartition(..) => "zone partition: messages between them dropped".into(),
            FaultKind::RegistryOutage => {
                "registry outage: no heartbeats, checks or cache refreshes".into()
            }
            FaultKind::RegistryPartition => {
                "cut off from the registry: its heartbeats and refreshes fail".into()
            }
            FaultKind::RandomCrash { mttf, mttr } => {
                format!("random failures: mean {mttf} up, {mttr} down")
            }
            FaultKind::Partition => "partition: messages dropped".into(),
            FaultKind::Reset => "reset: connections fail fast".into(),
            FaultKind::Loss(p) => format!("loss {p}"),
        };
        self.log.push(StateEvent {
            t_s: secs(now),
            kind: if on { "fault_start" } else { "fault_end" },
            subject,
            detail,
        });
    }

    // ---- accounting -------------------------------------------------------

    /// Integrates busy workers up to `now` (only after warmup counts for the summary).
    #[inline]
    fn account_busy(&mut self, s: usize, now: SimTime) {
        let svc = &mut self.svcs[s];
        let from = svc.busy_since.max(self.bucket_start);
        if now > from {
            svc.bucket_busy_ns += svc.busy as u128 * now.since(from).0 as u128;
        }
        let from = svc.busy_since.max(self.warmup);
        if now > from {
            svc.busy_ns += svc.busy as u128 * now.since(from).0 as u128;
        }
        if let Some(sc) = svc.scaler.as_mut() {
            sc.busy_ns += svc.busy as u128 * now.since(svc.busy_since).0 as u128;
        }
        svc.busy_since = now;
    }

    /// Integrates the requests held by service `s` up to `now`, then changes the count by
    /// `delta` (admitted +1, answered or dropped −1).
    pub(super) fn held_change(&mut self, s: usize, now: SimTime, delta: i32) {
        self.account_held(s, now);
        let svc = &mut self.svcs[s];
        svc.held = svc.held.wrapping_add_signed(delta);
    }

    fn account_held(&mut self, s: usize, now: SimTime) {
        let svc = &mut self.svcs[s];
        let from = svc.held_since.max(self.warmup);
        if now > from {
            svc.held_ns += svc.held as u128 * now.since(from).0 as u128;
        }
        svc.held_since = now;
    }

    fn close_bucket(&mut self, now: SimTime, sink: &mut dyn Sink) {
        let t_s = secs(self.bucket_start);
        let width = now.since(self.bucket_start).0 as f64;
        for s in 0..self.svcs.len() {
            self.account_busy(s, now);
            let first = self.svcs[s].first_instance as usize;
            let n = self.svcs[s].instances as usize;
            let (in_flight, queue_depth) =
                self.insts[first..first + n]
                    .iter()
                    .fold((0u64, 0u64), |(f, q), i| {
                        (
                            f + i.in_flight as u64,
                            q + (i.queue.len() + i.admit.len()) as u64,
                        )
                    });
            let svc = &mut self.svcs[s];
            let capacity = svc.workers as f64 * n as f64 * width;
            sink.series(&row(
                t_s,
                "service",
                &self.spec.services[s].name,
                &svc.bucket,
                &svc.bucket_latency,
                in_flight,
                queue_depth,
                svc.bucket_busy_ns as f64 / capacity.max(1.0),
            ));
            svc.bucket = Counts::default();
            svc.bucket_latency.reset();
            svc.bucket_busy_ns = 0;
        }
        for (w, spec) in self.wls.iter_mut().zip(&self.spec.workloads) {
            sink.series(&row(
                t_s,
                "workload",
                &spec.name,
                &w.bucket,
                &w.bucket_latency,
                0,
                0,
                0.0,
            ));
            w.bucket = Counts::default();
            w.bucket_latency.reset();
        }
        self.queue_rows(now, t_s, sink);
        self.sweep_awaiting(now, false);
        self.bucket_start = now;
    }
}

const _: () = assert!(std::mem::size_of::<Ev>() == 8);

fn state_name(s: breaker::State) -> &'static str {
    match s {
        breaker::State::Closed => "closed",
        breaker::State::Open => "open",
        breaker::State::HalfOpen => "half_open",
        breaker::State::Disabled => "disabled",
        breaker::State::ForcedOpen => "forced_open",
        breaker::State::MetricsOnly => "metrics_only",
    }
}

/// The steps a request runs: its endpoint's, or a health check's.
fn steps_of(spec: &SystemSpec, service: u32, endpoint: u32) -> &[Step] {
    if endpoint == discovery::PROBE {
        &spec
            .registry
            .as_ref()
            .and_then(|r| r.checks.as_ref())
            .expect("probes only with checks")
            .steps
    } else {
        &spec.services[service as usize].endpoints[endpoint as usize].steps
    }
}

/// Numbers every call site, and makes one edge per (caller, callee) pair that
/// carries the breaker and retry budget of the first site naming one.
fn build_sites(spec: &SystemSpec) -> (Vec<Site>, Vec<Vec<Vec<u32>>>, Vec<Edge>) {
    let mut sites = Vec::new();
    let mut index = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for (i, s) in spec.services.iter().enumerate() {
        let mut per_ep = Vec::new();
        for e in &s.endpoints {
            let mut per_step = Vec::new();
            for step in &e.steps {
                per_step.push(sites.len() as u32);
                let calls: &[CallSpec] = match step {
                    Step::Call(c) => std::slice::from_ref(c),
                    Step::Parallel(cs) => cs,
                    Step::Work(_) | Step::Saga(_) => &[],
                };
                for c in calls {
                    let (from, to) = (i as u32, c.to.0);
                    let edge = match edges.iter().position(|e| e.from == from && e.to == to) {
                        Some(k) => k,
                        None => {
                            let name =
                                format!("edge:{}->{}", s.name, spec.services[to as usize].name);
                            let stream = |what: &str| {
                                SimRng::for_component(spec.seed, &format!("{name}:{what}"))
                            };
                            let first_host: u32 =
                                spec.services[..to as usize].iter().map(|x| x.slots()).sum();
                            let hosts = spec.services[to as usize].slots() as usize;
                            edges.push(Edge {
                                from,
                                to,
                                breaker: None,
                                breaker_per_call: false,
                                bulkhead_per_call: false,
                                record: OutcomeSet::BREAKER_DEFAULT,
                                first_host,
                                rr: 0,
                                balancer: None,
                                lb_rng: stream("lb"),
                                weights: Vec::new(),
                                hosts: Vec::with_capacity(hosts),
                                active: vec![0; hosts],
                                outlier: None,
                                outlier_rng: stream("outlier"),
                                bulkhead: None,
                                limiter: None,
                                limiter_rng: stream("limit"),
                                throttle: None,
                                throttle_rng: stream("throttle"),
                                fallback: None,
                                cache: Vec::new(),
                                zone_aware: None,
                                slow_start: None,
                                timer_at: None,
                                rng: SimRng::for_component(spec.seed, &name),
                                budget: RetryBudget::default(),
                                stats: EdgeStats::default(),
                                attempt_latency: Latency::new(2),
                                open_since: None,
                                open_ns: 0,
                                transitions: 0,
                            });
                            edges.len() - 1
                        }
                    };
                    let e = &mut edges[edge];
                    if let (None, Some(b)) = (&e.breaker, c.breaker) {
                        let policy = &spec.breakers[b as usize];
                        e.breaker = Some(Breaker::new(policy.config.clone()));
                        e.record = policy.record;
                        e.fallback = policy.fallback;
                        e.breaker_per_call = policy.scope == Scope::Call;
                    }
                    if let (None, Some(b)) = (&e.balancer, c.balancer) {
                        let p = &spec.balancers[b as usize];
                        e.balancer = Some(Balancer::new(p.kind.clone(), p.panic_threshold));
                        e.weights = p.weights.clone();
                        e.zone_aware = p.zone_aware;
                        e.slow_start = p.slow_start;
                    }
                    let autoscaled = spec.services[to as usize].autoscale.is_some()
                        || spec.services[to as usize].canary.is_some()
                        || spec.services[to as usize].rollout.is_some();
                    if (spec.registry.is_some() || autoscaled)
                        && e.balancer.is_none()
                        && c.balancer.is_none()
                    {
                        // Discovery needs a balancer that consults the caller's cache.
                        e.balancer = Some(Balancer::new(
                            crate::policy::balancer::Kind::RoundRobin,
                            50.0,
                        ));
                    }
                    if let (None, Some(o)) = (&e.outlier, c.outlier) {
                        let p = &spec.outliers[o as usize];
                        e.outlier = Some(Detector::new(p.config.clone(), e.active.len()));
                        if e.balancer.is_none() {
                            // Ejections need a balancer that consults health: Envoy's default.
                            e.balancer = Some(Balancer::new(
                                crate::policy::balancer::Kind::RoundRobin,
                                50.0,
                            ));
                        }
                    }
                    if let (None, Some(b)) = (&e.bulkhead, c.bulkhead) {
                        e.bulkhead = Some(Bulkhead::new(spec.bulkheads[b as usize].config));
                        e.bulkhead_per_call = spec.bulkheads[b as usize].scope == Scope::Call;
                    }
                    if let (None, Some(l)) = (&e.limiter, c.concurrency) {
                        let p = &spec.concurrency[l as usize];
                        e.limiter =
                            Some(Limiter::new(p.algorithm.clone(), p.initial, p.min, p.max));
                    }
                    if let (None, Some(t)) = (&e.throttle, c.throttle) {
                        let p = &spec.throttles[t as usize];
                        e.throttle = Some(Admission::new(
                            p.threshold,
                            p.aggression,
                            p.max_reject,
                            p.min_rps,
                            p.window,
                        ));
                    }
                    if let (false, Some(r)) = (e.budget.is_limited(), c.retry) {
                        // The first retry policy on the edge that names a budget sets it.
                        if let Some(b) = &spec.retries[r as usize].budget {
                            e.budget = RetryBudget::new(Some(b));
                        }
                    }
                    sites.push(Site {
                        spec: c.clone(),
                        from,
                        edge: edge as u32,
                    });
                }
            }
            per_ep.push(per_step);
        }
        index.push(per_ep);
    }
    (sites, index, edges)
}

#[derive(Clone, Copy)]
enum Chooser {
    Service(u32),
    Workload(u32),
}

#[allow(clippy::too_many_arguments)]
fn row(
    t_s: f64,
    kind: &'static str,
    name: &str,
    c: &Counts,
    l: &Latency,
    in_flight: u64,
    queue_depth: u64,
    utilization: f64,
) -> SeriesRow {
    let ms = |q| l.percentile_ns(q) as f64 / 1e6;
    SeriesRow {
        t_s,
        kind,
        name: name.to_string(),
        requests: c.requests,
        ok: c.ok,
        errors: c.errors,
        rejected: c.rejected,
        timeouts: c.timeouts,
        latency_p50_ms: ms(50.0),
        latency_p90_ms: ms(90.0),
        latency_p99_ms: ms(99.0),
        latency_p999_ms: ms(99.9),
        in_flight,
        queue_depth,
        utilization,
        oldest_age_s: 0.0,
    }
}

/// The next arrival strictly after `now` (or at `now` for the very first uniform one),
/// or `None` past the horizon. Poisson arrivals with a varying rate use thinning
/// (Lewis & Shedler): candidates at the maximum rate, each kept with probability
/// rate(t)/max. Uniform arrivals step by 1/rate(t); a zero rate is skipped in 1 ms steps.
fn next_arrival(
    profile: &RateProfile,
    poisson: bool,
    gap: Option<&Exp<f64>>,
    rng: &mut SimRng,
    now: SimTime,
    horizon: SimTime,
    first: bool,
) -> Option<SimTime> {
    let mut t = now;
    if poisson {
        let gap = gap?;
        let max = profile.max_rate();
        loop {
            t = t.after(SimDuration(gap.sample(rng).round().max(0.0) as u64));
            if t > horizon {
                return None;
            }
            if matches!(profile, RateProfile::Flat(_)) || rng.unit() * max < profile.rate_at(t) {
                return Some(t);
            }
        }
    }
    loop {
        if t > horizon {
            return None;
        }
        let rate = profile.rate_at(t);
        if rate > 0.0 {
            if first && t == SimTime::ZERO {
                return Some(t);
            }
            let step = SimDuration((NS_PER_S as f64 / rate).round().max(1.0) as u64);
            let next = t.after(step);
            if next <= horizon && profile.rate_at(next) <= 0.0 {
                // The gap ends where the rate is zero: nothing arrives there; go on from it.
                t = next;
                continue;
            }
            return Some(next);
        }
        t = t.after(SimDuration::from_millis(1));
    }
}
