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

mod accounting;
mod cache;
mod call;
mod client;
mod conn;
mod deploy;
mod discovery;
mod edge;
mod eventstore;
mod faults;
mod hosts;
mod instance;
mod layers;
mod mesh;
pub mod messaging;
mod network;
mod recovery;
pub mod sagas;
mod scaling;
pub mod spec;
pub mod tracing;
pub mod twopc;

use crate::engine::{Engine, EventKey, Stop};
use crate::ids::{CallId, IdVec, ReqId};
use crate::metrics::{
    secs, Counts, InstanceRow, Latency, Outcome, SeriesRow, Sink, StateEvent, PULSE_EVENTS,
};
use crate::policy::balancer::{slow_start_factor, Balancer, HostView};
use crate::policy::breaker::{self, Breaker};
use crate::policy::budget::RetryBudget;
use crate::policy::bulkhead::{Acquire, Bulkhead};
use crate::policy::command::{CallCommand, Commands};
use crate::policy::concurrency::Limiter;
use crate::policy::criticality::{LeveledQueue, LEVELS};
use crate::policy::deadline::Deadlines;
use crate::policy::outlier::Detector;
use crate::policy::retry::{self, RetryDecision, RetryState};
use crate::policy::shed::{Admission, Codel};
use crate::policy::status::{ErrorStatus, Status};
use crate::results;
use crate::results::events::{Change, InstanceState, OutlierChange};
pub use crate::results::{
    CanaryResult, ConnResult, Drops, EdgeResult, EdgeStats, InstanceResult, RolloutResult,
    RunResult, ScalingResult, ServiceResult, SiteResult, StopReason, WorkloadResult,
};
use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime, NS_PER_S};
use accounting::*;
use call::*;
use client::*;
use edge::*;
use instance::*;
use network::*;
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
    Deliver { req: ReqId },
    /// A work step ends.
    WorkDone { req: ReqId },
    /// A response reaches the caller.
    Respond { req: ReqId },
    /// A caller's (or client's) timeout fires.
    Timeout { req: ReqId },
    /// A call's back-off is over: make the next attempt.
    Retry { call: CallId },
    /// A hedged call's next attempt is due.
    Hedge { call: CallId },
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
    BulkheadWait { call: CallId },
    /// A call's breaker fallback answers.
    Fallback { call: CallId },
    /// An instance under a random failure process fails.
    Fail { inst: u32 },
    /// An instance under a random failure process is repaired.
    Repair { inst: u32 },
    /// A stop-the-world pause (a `gc` fault) starts on instance `inst`.
    GcPause { inst: u32 },
    /// It ends.
    GcResume { inst: u32 },
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
    /// Migration `m`'s weight schedule moves on.
    MigrationWeight { m: u32 },
    /// Migration `m`'s rollback check at the end of a window.
    MigrationCheck { m: u32 },
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
    /// A cache hit answers its call (a slot of the caches actor's pending answers).
    CacheHit { slot: u32 },
    /// A service's outbox relay marks the rows it published sent.
    OutboxMark { svc: u32 },
    /// A host's next work step ends.
    HostTick { host: u32 },
    /// A transaction's carrier sends its unacknowledged decision again.
    TxResend { req: ReqId },
    /// A transaction checks whether its coordinator recovered.
    TxRecover { tx: u32 },
    /// A projection's projector wakes: its start, a retry, or an apply's timeout.
    Projection { proj: u32 },
    /// A consumer's acknowledgement (or nack) of a delivery reaches its broker.
    Ack { delivery: u32 },
    /// A choreographed saga step's handler ran past the step's timeout.
    HandlerTimeout { delivery: u32 },
}

impl Ev {
    /// A stable encoding for the event-stream digest: (variant number, payload). Variant
    /// numbers follow the declaration order at the time the digests were recorded; keep
    /// them when variants move, so that the digest compares like with like.
    fn stable_code(self) -> (u32, u64) {
        match self {
            Ev::Arrive { wl } => (0, wl as u64),
            Ev::UserSend { user } => (1, user as u64),
            Ev::Deliver { req } => (2, req.0 as u64),
            Ev::WorkDone { req } => (3, req.0 as u64),
            Ev::Respond { req } => (4, req.0 as u64),
            Ev::Timeout { req } => (5, req.0 as u64),
            Ev::Retry { call } => (6, call.0 as u64),
            Ev::Hedge { call } => (7, call.0 as u64),
            Ev::BreakerTimer { edge } => (8, edge as u64),
            Ev::FaultStart { fault } => (9, fault as u64),
            Ev::FaultEnd { fault } => (10, fault as u64),
            Ev::Bucket => (11, 0),
            Ev::WarmupEnd => (12, 0),
            Ev::OutlierSweep { edge } => (13, edge as u64),
            Ev::BulkheadWait { call } => (14, call.0 as u64),
            Ev::Fallback { call } => (15, call.0 as u64),
            Ev::Fail { inst } => (16, inst as u64),
            Ev::Repair { inst } => (17, inst as u64),
            Ev::GcPause { inst } => (41, inst as u64),
            Ev::GcResume { inst } => (42, inst as u64),
            Ev::HostTick { host } => (43, host as u64),
            Ev::TxResend { req } => (44, req.0 as u64),
            Ev::TxRecover { tx } => (45, tx as u64),
            Ev::Projection { proj } => (46, proj as u64),
            Ev::Ack { delivery } => (47, delivery as u64),
            Ev::HandlerTimeout { delivery } => (48, delivery as u64),
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
            Ev::MigrationWeight { m } => (39, m as u64),
            Ev::MigrationCheck { m } => (40, m as u64),
            Ev::RolloutStart { svc } => (29, svc as u64),
            Ev::Visibility { delivery } => (30, delivery as u64),
            Ev::Redeliver { queue, slot } => (31, (queue as u64) << 32 | slot as u64),
            Ev::QueuePoll { queue } => (32, queue as u64),
            Ev::SagaStep { saga } => (33, saga as u64),
            Ev::SagaSettled { saga } => (34, saga as u64),
            Ev::OutboxRelay { svc } => (35, svc as u64),
            Ev::Started { inst } => (36, inst as u64),
            Ev::CacheHit { slot } => (37, slot as u64),
            Ev::OutboxMark { svc } => (38, svc as u64),
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
    /// 403 from the callee's sidecar (an authorization policy).
    Forbidden,
    /// A status a fault chose (an HTTP code or a gRPC status), which `retry_on`'s Envoy
    /// conditions and the outlier detector read. (One byte, so a request stays its size.)
    Status(ErrorStatus),
}

/// No pooled connection.
const NO_CONN: u32 = u32::MAX;

/// Resources an attempt holds at the caller, released when it ends.
const HOLD_BULKHEAD: u8 = 1;
const HOLD_LIMITER: u8 = 2;
/// A call-scoped breaker's permit: the breaker hears the call's result when it ends.
const HOLD_BREAKER: u8 = 4;

/// What the caller learns about one attempt when it ends.
#[derive(Clone, Copy, Debug)]
struct Done {
    /// The instance it went to (None when nothing was sent).
    host: Option<u32>,
    holds: u8,
    /// In flight at the client limiter when it started.
    inflight: u32,
    code: Code,
    /// The pooled connection it rode (`NO_CONN`: none).
    conn: u32,
}

impl Done {
    const LOCAL: Done = Done {
        host: None,
        holds: 0,
        inflight: 0,
        code: Code::None,
        conn: NO_CONN,
    };

    /// The status a fault chose for the answer, if one did.
    #[inline]
    fn status(&self) -> Option<Status> {
        match self.code {
            Code::Status(s) => Some(s.status()),
            _ => None,
        }
    }
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

/// Who sent a request, and so who hears its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// A workload's client; `user` is its closed-loop user (`None`: open loop).
    Client { workload: u32, user: Option<u32> },
    /// An attempt of call `call`.
    Call { call: CallId },
    /// An active health check: its checker sees the answer at once.
    Probe,
    /// A broker's delivery (`delivery`) to a consumer.
    Delivery { delivery: u32 },
    /// A fire-and-forget publish: nobody hears the answer.
    OneWay,
    /// The carrier of saga `saga` (a generation-tagged reference) at its orchestrator, which
    /// hears its calls' answers itself; like a one-way message, nobody waits for the
    /// carrier's own answer.
    SagaCarrier { saga: u32 },
    /// The carrier of a cache's refresh of a stale entry: nobody waits for it.
    CacheFill,
    /// One participant's carrier of transaction `tx` (a generation-tagged reference) at its
    /// coordinator, which hears its calls' answers itself.
    TxCarrier { tx: u32 },
    /// A projector's apply of one event (`token` tells a resent apply from its first copy).
    Projection { proj: u32, token: u32 },
    /// A request to the registry service: `op` about instance (or, for a lookup, edge)
    /// `subject`; `passed` is a reported check's result.
    Registry {
        op: spec::RegistryOp,
        subject: u32,
        passed: bool,
    },
}

/// What a request carries besides its own work: a message for a broker, a delivered
/// message, or a database write with an event to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cargo {
    None,
    /// A publish: message `msg` for `dest`, stored when the broker's handler succeeds.
    Publish {
        dest: Dest,
        msg: u64,
    },
    /// A broker's delivery of message `msg` (with the `POISON` bit when it is one).
    Delivery {
        msg: u64,
    },
    /// An append to event store `store`, committed when the store's handler succeeds.
    Append {
        store: u32,
    },
    /// A read of projection `proj`'s read model, judged when its handler answers.
    Read {
        proj: u32,
    },
    /// A database write carrying an event for `dest`, written by service `writer`; with
    /// `outbox` the event commits in the same transaction, otherwise the writer publishes it
    /// afterwards (a dual write).
    Write {
        dest: Dest,
        outbox: bool,
        writer: u32,
    },
}

/// Which saga step a participant's request performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SagaStepRef {
    /// The saga (a generation-tagged reference: a late answer finds its saga gone).
    saga: u32,
    /// The step: step << 1 | compensation, as `SagaSpec::call_steps` and queues number it.
    code: u32,
}

#[derive(Clone, Debug)]
struct Req {
    service: u32,
    instance: u32,
    endpoint: u32,
    step: u32,
    pending: u32,
    /// Who sent it, and so who hears its answer.
    origin: Origin,
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
    /// How much it matters under overload, inherited by its calls unless a call sets its own.
    crit: Criticality,
    /// A message or an event it carries to a broker or a database.
    cargo: Cargo,
    /// A participant's request for a saga step (the carrier is an `Origin` instead).
    saga_step: Option<SagaStepRef>,
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
    /// At an `occ` service: the key's version it read (None: none read, or already closed).
    occ_seen: Option<u32>,
    /// Its span, when its trace is recorded.
    span: tracing::SpanRef,
    /// The pooled connection its attempt rides (`NO_CONN`: none).
    conn: u32,
    /// Its callee's inbound sidecar has yet to pass it.
    proxy_in: bool,
    /// Denied by the callee's sidecar: answered 403 once the check is done.
    denied: bool,
    /// Its connection cannot be made: its timeout fires as a connect failure.
    connect_fail: bool,
}

impl Req {
    /// What its caller needs to close this attempt: where it went, what it holds (taken, so
    /// nothing is released twice), and why it ended.
    fn take_done(&mut self, code: Code) -> Done {
        Done {
            host: Some(self.instance),
            holds: std::mem::take(&mut self.holds),
            inflight: self.inflight,
            code,
            conn: std::mem::replace(&mut self.conn, NO_CONN),
        }
    }

    /// A request just sent at `now`, not yet delivered.
    #[allow(clippy::too_many_arguments)]
    fn new(
        now: SimTime,
        service: u32,
        instance: u32,
        endpoint: u32,
        origin: Origin,
        state: State,
        measured: bool,
    ) -> Req {
        Req {
            service,
            instance,
            endpoint,
            step: 0,
            pending: 0,
            origin,
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
            crit: Criticality::Critical,
            cargo: Cargo::None,
            saga_step: None,
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
            occ_seen: None,
            span: tracing::SpanRef::NONE,
            conn: NO_CONN,
            proxy_in: false,
            denied: false,
            connect_fail: false,
        }
    }
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
    reqs: IdVec<ReqId, Req>,
    free: Vec<ReqId>,
    live: usize,
    /// The network between services: links, their faults, zones.
    net: Network,
    wls: Vec<Wl>,
    calls: IdVec<CallId, Call>,
    free_calls: Vec<CallId>,
    sites: Vec<Site>,
    /// site_index[service][endpoint][step]: the first site of that step (parallel members follow).
    site_index: Vec<Vec<Vec<u32>>>,
    /// Caller-side states: one per pair first (kept by the calling service, or the template
    /// of per-instance ones), then the per-instance ones as callers first call.
    edges: Vec<Edge>,
    /// Caller → callee pairs, indexed like their first states in `edges`.
    pairs: Vec<Pair>,
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
    woken: Vec<CallId>,
    /// Requests dropped at dequeue (and whether for an expired deadline), answered after it.
    shed_buf: Vec<(ReqId, bool)>,
    /// Each migration's traffic shift (`SystemSpec::migrations`).
    migrations: Vec<deploy::Canary>,
    /// Follows each workload's recovery from each fault and load shape (none without any).
    recovery: Option<results::recovery::Tracker>,
    /// Services count outcomes by criticality (`SystemSpec::uses_criticality`): one flag
    /// read on the answer path instead of each service's.
    by_crit: bool,
    /// The discovery actor: registries, and what keeps services from them.
    directory: discovery::Directory,
    /// With a registry service: its clients' backoff state and counts.
    reg_clients: Option<discovery::Clients>,
    /// Health checks and registry requests alive (counted in `live`, not in the traffic
    /// left at the end).
    live_probes: usize,
    /// The messaging actor: broker queues, deliveries, message ids, outboxes.
    msg: messaging::Messaging,
    /// Saga instances (running or settling).
    sagas: sagas::Sagas,
    /// Instances under a random failure process: (its fault, its stream). Kept out of
    /// `Instance`, which the hot path touches, because a ChaCha state is large.
    randoms: std::collections::BTreeMap<usize, (u32, SimRng)>,
    /// Instances under a `gc` fault: their pause process.
    gcs: std::collections::BTreeMap<usize, faults::Gc>,
    /// Records traces (None when `[trace]` keeps nothing).
    tracer: Option<tracing::Tracer>,
    /// Scratch: the call sites of a parallel group chosen to run.
    chosen: Vec<u32>,
    /// The event-stream digest so far (with `RunOptions::digest_events`).
    digest: Option<u64>,
    /// The sidecars (None without a mesh).
    mesh: Option<mesh::Mesh>,
    /// The hosts' shared CPUs (none without `[[host]]`).
    hosts: hosts::Hosts,
    /// Two-phase commits in flight, and the participants' locks.
    txs: twopc::Txs,
    es: eventstore::EventStores,
    /// The caches in front of calls.
    caches: cache::Caches,
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
            Lane::Probe(i) => w + 2 * s + self.msg.queues.len() as u32 + i,
        }
    }

    /// Builds the runtime state of `spec`: instances, streams, first events.
    pub fn new(spec: &'a SystemSpec, opts: RunOptions) -> Self {
        let seed = spec.seed;
        let opts_digest = opts.digest_events;
        let mut engine = Engine::new(spec.horizon(), spec.max_events);
        let mut insts = Vec::new();
        let mut svcs = Vec::new();
        let by_crit = spec.uses_criticality();
        for (i, s) in spec.services.iter().enumerate() {
            let first = insts.len() as u32;
            for k in 0..s.slots() {
                insts.push(Instance::new(spec, i, k));
            }
            svcs.push(Svc::new(seed, s, first, by_crit));
        }
        let mut wls = Vec::new();
        let mut users = Vec::new();
        for (i, w) in spec.workloads.iter().enumerate() {
            let mut wl = Wl::new(seed, w);
            wl.schedule_first(spec, w, i as u32, &mut engine, &mut users);
            wls.push(wl);
        }
        let (sites, site_index, edges) = build_sites(spec);
        let pairs = build_pairs(spec, &sites, &edges);
        for (k, e) in edges.iter().enumerate() {
            // A pair kept per caller instance starts its detectors when each instance first
            // calls (`edge_state`); its own entry here is only the template they copy.
            if let (Some(d), false) = (&e.outlier, pairs[k].per_instance) {
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
        let insts_len = insts.len();
        let mesh = spec.mesh.as_ref().map(|m| {
            let slot_service: Vec<u32> = insts.iter().map(|i| i.service).collect();
            mesh::Mesh::new(spec, m, &slot_service)
        });
        let mut world = World {
            mesh,
            spec,
            engine,
            svcs,
            insts,
            reqs: IdVec::with_capacity(1024),
            free: Vec::new(),
            live: 0,
            net: Network::new(spec),
            wls,
            calls: IdVec::with_capacity(1024),
            free_calls: Vec::new(),
            sites,
            site_index,
            edges,
            pairs,
            log: Vec::new(),
            users,
            warmup: SimTime::ZERO.after(spec.warmup),
            bucket_start: SimTime::ZERO,
            stop: None,
            arrivals: Vec::with_capacity(opts.record_arrivals),
            opts,
            woken: Vec::new(),
            shed_buf: Vec::new(),
            migrations: Vec::new(),
            recovery: recovery::tracker(spec),
            by_crit,
            directory: discovery::Directory::new(spec.services.len()),
            reg_clients: None,
            live_probes: 0,
            msg: messaging::Messaging::new(spec, insts_len, spec.services.len()),
            sagas: sagas::Sagas::new(spec),
            caches: cache::Caches::new(spec),
            randoms: std::collections::BTreeMap::new(),
            gcs: std::collections::BTreeMap::new(),
            hosts: hosts::Hosts::new(spec),
            txs: twopc::Txs::new(spec),
            es: eventstore::EventStores::new(spec),
            tracer: tracing::Tracer::new(&spec.trace, spec.seed),
            chosen: Vec::new(),
            digest: opts_digest.then_some(0),
        };
        world.start_discovery();
        world.start_scaling();
        world.start_canaries();
        world.start_rollouts();
        world.start_messaging();
        world.start_outboxes();
        world.start_projections();
        world
    }

    /// Runs to the end, streaming series and state changes into `sink`.
    pub fn run(mut self, sink: &mut dyn Sink) -> RunResult {
        sink.event(&StateEvent {
            t_s: 0.0,
            subject: self.spec.name.clone(),
            change: Change::RunStart {
                seed: self.spec.seed,
            },
        });
        for (i, inst) in self.insts.iter().enumerate().filter(|(_, x)| x.present) {
            let s = &self.spec.services[inst.service as usize];
            let k = i as u32 - self.svcs[inst.service as usize].first_instance;
            sink.event(&StateEvent {
                t_s: 0.0,
                subject: format!("{}/{}", s.name, k),
                change: Change::Instance {
                    to: InstanceState::Up,
                    why: format!("{} workers", s.workers).into(),
                },
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
                    if self.engine.processed() & (PULSE_EVENTS - 1) == 0 {
                        sink.pulse(now);
                    }
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
            StopReason::Horizon => "reached the scenario duration".into(),
            StopReason::EventBudget => format!(
                "event budget sim.max_events = {} exhausted",
                self.spec.max_events
            )
            .into(),
            StopReason::RequestLimit => format!(
                "request limit sim.max_in_flight = {} reached",
                self.spec.max_in_flight
            )
            .into(),
        };
        sink.event(&StateEvent {
            t_s: secs(end),
            subject: self.spec.name.clone(),
            change: Change::RunEnd { why: detail },
        });
        self.finish(stop, end)
    }

    fn finish(mut self, stop: StopReason, end: SimTime) -> RunResult {
        let measured = end.since(self.warmup.min(end));
        let saga_results = self.sagas.results(self.spec);
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
                    canary: s.canary.as_ref().map(deploy::Canary::result),
                    events: event_results[i].take(),
                    criticality: s.by_crit.as_deref().cloned(),
                    proxy: self.mesh.as_ref().and_then(|m| {
                        let first = s.first_instance as usize;
                        m.result(spec, i, first..first + s.instances as usize, end)
                    }),
                    instances: {
                        let first = s.first_instance as usize;
                        let measured_ns = measured.0 as f64;
                        self.insts[first..first + s.instances as usize]
                            .iter()
                            .map(|x| {
                                let t = &x.tally;
                                InstanceResult {
                                    counts: t.counts.clone(),
                                    utilization: if measured_ns > 0.0 {
                                        t.work_ns as f64 / (s.workers as f64 * measured_ns)
                                    } else {
                                        0.0
                                    },
                                    latency_mean_ms: if t.completed > 0 {
                                        t.latency_ns as f64 / t.completed as f64 / 1e6
                                    } else {
                                        0.0
                                    },
                                }
                            })
                            .collect()
                    },
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
                        .sites
                        .iter()
                        .filter(|x| x.from as usize == i)
                        .map(|x| x.stats.retries)
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
        // Each pair's sites, in scenario order, grouped in one pass.
        let mut by_pair: Vec<Vec<SiteResult>> = vec![Vec::new(); self.pairs.len()];
        for (s, name) in self.sites.iter().zip(site_labels(spec)) {
            by_pair[s.edge as usize].push(SiteResult {
                name,
                stats: s.stats.clone(),
            });
        }
        let edges = self
            .pairs
            .iter()
            .enumerate()
            .map(|(k, p)| {
                // A shared pair's state is its own entry; a per-instance pair's, every
                // instance's that called (the entry at `k` is only their template).
                let states: Vec<&Edge> = if p.per_instance {
                    p.states
                        .iter()
                        .flatten()
                        .map(|&i| &self.edges[i as usize])
                        .collect()
                } else {
                    vec![&self.edges[k]]
                };
                let sites = std::mem::take(&mut by_pair[k]);
                let mut stats = EdgeStats::default();
                for e in &states {
                    stats.add(&e.stats);
                }
                for s in &sites {
                    stats.add(&s.stats);
                }
                let template = &self.edges[k];
                let open_ns: u64 = states
                    .iter()
                    .map(|e| e.open_ns + e.open_since.map_or(0, |s| end.since(s).0))
                    .sum();
                let limits: Vec<u64> = states
                    .iter()
                    .filter_map(|e| e.limiter.as_ref().map(|l| l.limit() as u64))
                    .collect();
                EdgeResult {
                    from: spec.services[template.from as usize].name.clone(),
                    to: spec.services[template.to as usize].name.clone(),
                    stats,
                    sites,
                    connections: conn::result(&states),
                    callers: p.per_instance.then_some(states.len() as u32),
                    breaker_states: states
                        .iter()
                        .filter_map(|e| e.breaker.as_ref().map(|b| b.state()))
                        .collect(),
                    breaker_transitions: states.iter().map(|e| e.transitions).sum(),
                    breaker_open_s: open_ns as f64 / 1e9,
                    concurrency_limit: (!limits.is_empty()).then(|| {
                        (limits.iter().sum::<u64>() as f64 / limits.len() as f64).round() as u32
                    }),
                    ejected_at_end: template.outlier.as_ref().map(|_| {
                        states
                            .iter()
                            .filter_map(|e| e.outlier.as_ref().map(|d| d.ejected_count()))
                            .sum()
                    }),
                }
            })
            .collect();
        let (network_messages, network_lost) = self.net.totals();
        let (event_stores, projections) = self.event_store_results();
        RunResult {
            stop,
            end,
            edges,
            events: self.engine.processed(),
            workloads,
            services,
            network_messages,
            network_lost,
            in_flight_at_end: (self.live - self.live_probes) as u64,
            queues: self.msg.queue_results(self.spec),
            sagas: saga_results,
            caches: self.caches.results(self.spec),
            migrations: self
                .spec
                .migrations
                .iter()
                .zip(&self.migrations)
                .map(|(m, c)| (m.name.clone(), c.result()))
                .collect(),
            hosts: self.host_results(end),
            transactions: self.tx_results(),
            event_stores,
            projections,
            registry: self.reg_clients.as_ref().map(|c| results::RegistryResult {
                service: spec.services[spec
                    .registry
                    .as_ref()
                    .and_then(|r| r.server.as_ref())
                    .expect("a registry service")
                    .service
                    .0 as usize]
                    .name
                    .clone(),
                ops: spec::RegistryOp::ALL
                    .iter()
                    .map(|op| {
                        let n = c.counts[op.index()];
                        (
                            op.name(),
                            results::RegistryOpResult {
                                sent: n.sent,
                                ok: n.ok,
                                errors: n.errors,
                                timeouts: n.timeouts,
                            },
                        )
                    })
                    .collect(),
            }),
            recovery: self.recovery.take().map_or_else(Vec::new, |t| t.finish()),
            arrivals: self.arrivals,
            traces,
            trace_stats,
            event_digest: self.digest,
        }
    }

    fn handle(&mut self, now: SimTime, ev: Ev, sink: &mut dyn Sink) {
        match ev {
            Ev::Arrive { wl } => self.on_arrive(now, wl),
            Ev::UserSend { user } => self.send_root(now, self.users[user as usize], Some(user)),
            Ev::Deliver { req } => self.on_deliver(now, req),
            Ev::WorkDone { req } => self.on_work_done(now, req),
            Ev::Respond { req } => self.on_respond(now, req),
            Ev::Timeout { req } => self.on_timeout(now, req),
            Ev::Retry { call } => self.on_retry(now, call),
            Ev::Hedge { call } => self.on_hedge(now, call),
            Ev::FaultStart { fault } => self.set_fault(now, fault, true),
            Ev::FaultEnd { fault } => self.set_fault(now, fault, false),
            Ev::BreakerTimer { edge } => self.on_breaker_timer(now, edge),
            Ev::OutlierSweep { edge } => self.on_outlier_sweep(now, edge),
            Ev::BulkheadWait { call } => self.on_bulkhead_wait(now, call),
            Ev::Fallback { call } => self.finish_call(now, call, Outcome::Ok),
            Ev::Fail { inst } => self.on_random_fail(now, inst, true),
            Ev::Repair { inst } => self.on_random_fail(now, inst, false),
            Ev::GcPause { inst } => self.on_gc(now, inst, true),
            Ev::GcResume { inst } => self.on_gc(now, inst, false),
            Ev::Heartbeat { inst } => self.on_heartbeat(now, inst),
            Ev::RegistryTick { svc } => self.on_registry_tick(now, svc),
            Ev::CacheRefresh { edge } => self.on_cache_refresh(now, edge),
            Ev::Probe { inst } => self.on_probe(now, inst),
            Ev::ProbeLost { inst } => self.on_probe_lost(now, inst),
            Ev::Boot { inst } => self.on_boot(now, inst),
            Ev::Autoscale { svc } => self.on_autoscale(now, svc),
            Ev::Provisioned { inst } => self.on_provisioned(now, inst),
            Ev::Drained { inst } => self.on_drained(now, inst),
            Ev::CanaryWeight { svc } => self.on_shift_weight(now, deploy::Shifter::Canary(svc)),
            Ev::CanaryCheck { svc } => self.on_shift_check(now, deploy::Shifter::Canary(svc)),
            Ev::MigrationWeight { m } => self.on_shift_weight(now, deploy::Shifter::Migration(m)),
            Ev::MigrationCheck { m } => self.on_shift_check(now, deploy::Shifter::Migration(m)),
            Ev::RolloutStart { svc } => self.on_rollout_start(now, svc),
            Ev::Visibility { delivery } => self.on_visibility(now, delivery),
            Ev::Redeliver { queue, slot } => self.on_redeliver(now, queue, slot),
            Ev::QueuePoll { queue } => self.on_queue_poll(now, queue),
            Ev::SagaStep { saga } => self.on_saga_step(now, saga),
            Ev::SagaSettled { saga } => self.on_saga_settled(saga),
            Ev::OutboxRelay { svc } => self.on_outbox_relay(now, svc),
            Ev::Started { inst } => self.on_started(now, inst),
            Ev::CacheHit { slot } => self.on_cache_hit(now, slot),
            Ev::OutboxMark { svc } => self.on_outbox_mark(svc),
            Ev::HostTick { host } => self.on_host_tick(now, host),
            Ev::TxResend { req } => self.on_tx_resend(now, req),
            Ev::TxRecover { tx } => self.on_tx_recover(now, tx),
            Ev::Projection { proj } => self.on_projection(now, proj),
            Ev::Ack { delivery } => self.on_ack(now, delivery),
            Ev::HandlerTimeout { delivery } => self.on_handler_timeout(now, delivery),
            Ev::Bucket => self.on_bucket(now, sink),
            Ev::WarmupEnd => self.on_warmup_end(now, sink),
        }
        // Calls that got a bulkhead permit freed during this event go now, in order.
        while !self.woken.is_empty() {
            for w in std::mem::take(&mut self.woken) {
                self.wake(now, w);
            }
        }
    }

    fn alloc(&mut self, r: Req) -> Option<ReqId> {
        if self.live >= self.spec.max_in_flight {
            self.stop = Some(StopReason::RequestLimit);
            return None;
        }
        self.live += 1;
        Some(match self.free.pop() {
            Some(i) => {
                self.reqs[i] = r;
                i
            }
            None => self.reqs.push(r),
        })
    }

    fn release(&mut self, id: ReqId) {
        // A request that read a row and never completed (its instance crashed) stops holding it.
        self.occ_close(id, false);
        self.live -= 1;
        if matches!(
            self.reqs[id].origin,
            Origin::Probe | Origin::Registry { .. }
        ) {
            self.live_probes -= 1;
        }
        self.reqs[id].state = State::Free;
        self.free.push(id);
    }
}

const _: () = assert!(std::mem::size_of::<Ev>() == 8);
