//! Edges (caller service → callee): call sites, the caller-side state each edge keeps, and how an attempt's end feeds it.

use super::*;

/// One call site in a handler, resolved.
pub(super) struct Site {
    pub(super) spec: CallSpec,
    pub(super) from: u32,
    /// Its caller → callee pair (an index into `World::pairs`).
    pub(super) edge: u32,
    /// Its calls' counters (the edge's figures are the sum of its sites' and its own).
    pub(super) stats: EdgeStats,
    /// The new side of this migration: its calls' outcomes judge the rollback.
    pub(super) migration: Option<u32>,
}

/// The caller-side state of a caller → callee pair, kept once per caller service or once per
/// caller instance (see `Pair`): the breaker, the retry budget, the balancer, counters.
#[derive(Clone)]
pub(super) struct Edge {
    pub(super) from: u32,
    pub(super) to: u32,
    /// The caller instance (index within its service) that owns this state; `None` when the
    /// calling service shares it.
    pub(super) caller: Option<u32>,
    pub(super) breaker: Option<Breaker>,
    /// The breaker wraps whole calls (`scope = "call"`).
    pub(super) breaker_per_call: bool,
    /// The bulkhead is held per call.
    pub(super) bulkhead_per_call: bool,
    pub(super) record: OutcomeSet,
    /// Outcomes its breaker hears neither as failures nor as successes.
    pub(super) ignore: OutcomeSet,
    pub(super) timer_at: Option<SimTime>,
    pub(super) rng: SimRng,
    /// Retry limits across the edge's calls.
    pub(super) budget: RetryBudget,
    /// The caller-side layers, outermost first, by scope: `layers[Scope::Attempt as usize]`
    /// and `layers[Scope::Call as usize]` (see `LayerKind`).
    pub(super) layers: [Vec<LayerKind>; 2],
    pub(super) stats: EdgeStats,
    /// Latency of successful attempts (for percentile hedging delays).
    /// Latency of successful attempts, kept only when a site on the pair hedges at an
    /// observed percentile (a histogram is tens of kilobytes: per caller instance it adds up).
    pub(super) attempt_latency: Option<Latency>,
    pub(super) open_since: Option<SimTime>,
    pub(super) open_ns: u64,
    pub(super) transitions: u64,
    /// The callee's instance range and how this caller picks among them.
    pub(super) first_host: u32,
    /// Round-robin position when there is no balancer policy.
    pub(super) rr: u32,
    pub(super) balancer: Option<Balancer>,
    pub(super) lb_rng: SimRng,
    pub(super) weights: Vec<u32>,
    pub(super) hosts: Vec<HostView>,
    /// Attempts in flight per callee instance.
    pub(super) active: Vec<u32>,
    pub(super) outlier: Option<Detector>,
    pub(super) outlier_rng: SimRng,
    pub(super) bulkhead: Option<Bulkhead>,
    pub(super) limiter: Option<Limiter>,
    pub(super) limiter_rng: SimRng,
    pub(super) throttle: Option<Admission>,
    pub(super) throttle_rng: SimRng,
    pub(super) fallback: Option<Fallback>,
    /// The caller's discovery cache: which callee instances it lists (empty: no registry).
    pub(super) cache: Vec<bool>,
    /// Zone-aware routing: usable local instances needed to stay in the caller's zone.
    pub(super) zone_aware: Option<u32>,
    /// Slow start: (window, aggression, min weight percent).
    pub(super) slow_start: Option<(SimDuration, f64, f64)>,
    /// Its connection pool (None: connections are not modelled).
    pub(super) conns: Option<Box<conn::Conns>>,
}

/// Whose caller-side state a pair keeps when nothing says. In the references it lives in the
/// caller's process: every Envoy sidecar keeps its own load balancer, outlier detector and
/// circuit-breaking counters per upstream cluster, a gRPC channel its own picker and retry
/// throttle, a Resilience4j registry its own breakers and bulkheads per JVM.
pub(super) const DEFAULT_STATE: StateScope = StateScope::Instance;

/// A caller → callee pair: its call sites share one `Edge` state per calling service, or
/// one per calling instance, made the first time that instance calls.
pub(super) struct Pair {
    pub(super) per_instance: bool,
    /// Per caller instance (index within its service): its state in `World::edges`.
    pub(super) states: Vec<Option<u32>>,
}

/// The scope of each pair's state: "service" when a policy on one of its sites says so (or
/// when none says and its calling service does), else "instance" when one says so; with
/// nothing said, `DEFAULT_STATE`. A pair keeps all its state at one scope.
pub(super) fn build_pairs(spec: &SystemSpec, sites: &[Site], edges: &[Edge]) -> Vec<Pair> {
    let st = &spec.states;
    // What each pair's sites' policies say, gathered in one pass over the sites.
    let mut said: Vec<Vec<StateScope>> = vec![Vec::new(); edges.len()];
    for s in sites {
        let (c, said) = (&s.spec, &mut said[s.edge as usize]);
        let pick = |v: &[Option<StateScope>], i: Option<u32>| i.and_then(|i| v[i as usize]);
        said.extend(pick(&st.retry, c.retry));
        said.extend(pick(&st.breaker, c.breaker));
        said.extend(pick(&st.balancer, c.balancer));
        said.extend(pick(&st.outlier, c.outlier));
        said.extend(pick(&st.bulkhead, c.bulkhead));
        said.extend(pick(&st.concurrency, c.concurrency));
        said.extend(pick(&st.throttle, c.throttle));
        said.extend(pick(&st.pool, c.pool));
    }
    edges
        .iter()
        .zip(said)
        .map(|(e, said)| {
            let from = &spec.services[e.from as usize];
            let scope = if said.contains(&StateScope::Service) {
                StateScope::Service
            } else if !said.is_empty() {
                StateScope::Instance
            } else {
                from.policy_state.unwrap_or(DEFAULT_STATE)
            };
            let per_instance = scope == StateScope::Instance;
            Pair {
                per_instance,
                states: if per_instance {
                    vec![None; from.slots() as usize]
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// A name for every call site, in `build_sites`' order: "endpoint step N" (".M" for the
/// M-th member of a parallel group), or "saga NAME: STEP" (" compensation") for the call a
/// saga's orchestrator makes.
pub(super) fn site_labels(spec: &SystemSpec) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in spec.services.iter().enumerate() {
        for (ep, e) in s.endpoints.iter().enumerate() {
            let saga = spec.sagas.iter().find(|g| {
                g.orchestrator.0 as usize == i
                    && g.endpoint as usize == ep
                    && g.choreography.is_none()
            });
            let tx = spec
                .transactions
                .iter()
                .find(|t| t.coordinator.0 as usize == i && t.endpoint as usize == ep);
            for (k, step) in e.steps.iter().enumerate() {
                if let Some(t) = tx {
                    let n = t.participants.len();
                    let phase = ["prepare", "commit", "abort"][k / n];
                    let to = &spec.services[t.participants[k % n].0 as usize].name;
                    out.push(format!("transaction {}: {phase} {to}", t.name));
                    continue;
                }
                let calls = step.calls().len();
                for m in 0..calls {
                    let label = match (saga, step) {
                        (Some(g), _) => {
                            let (j, c) = g
                                .call_steps
                                .iter()
                                .enumerate()
                                .find_map(|(j, at)| {
                                    at.iter().position(|x| *x == Some(k as u32)).map(|c| (j, c))
                                })
                                .expect("a saga endpoint's steps are its calls");
                            let undo = if c == 1 { " compensation" } else { "" };
                            format!("saga {}: {}{undo}", g.name, g.step_names[j])
                        }
                        (None, Step::Parallel(_)) => format!("{} step {}.{}", e.name, k + 1, m + 1),
                        (None, Step::Migrate(..)) => {
                            let side = if m == 0 { "old" } else { "new" };
                            format!("{} step {} ({side})", e.name, k + 1)
                        }
                        (None, _) => format!("{} step {}", e.name, k + 1),
                    };
                    out.push(label);
                }
            }
        }
    }
    out
}

impl Edge {
    /// Its name in `events.csv`: "caller->callee", or "caller/k->callee" for the state of
    /// caller instance k.
    pub(super) fn name(&self, spec: &SystemSpec) -> String {
        let (from, to) = (
            &spec.services[self.from as usize].name,
            &spec.services[self.to as usize].name,
        );
        match self.caller {
            None => format!("{from}->{to}"),
            Some(k) => format!("{from}/{k}->{to}"),
        }
    }
}

/// Numbers every call site, and makes one edge per (caller, callee) pair that
/// carries the breaker and retry budget of the first site naming one.
pub(super) fn build_sites(spec: &SystemSpec) -> (Vec<Site>, Vec<Vec<Vec<u32>>>, Vec<Edge>) {
    let mut sites = Vec::new();
    let mut index = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for (i, s) in spec.services.iter().enumerate() {
        let mut per_ep = Vec::new();
        for e in &s.endpoints {
            let mut per_step = Vec::new();
            for step in &e.steps {
                per_step.push(sites.len() as u32);
                let migration = match step {
                    Step::Migrate(m, _) => Some(*m),
                    _ => None,
                };
                for (k, c) in step.calls().iter().enumerate() {
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
                                caller: None,
                                breaker: None,
                                breaker_per_call: false,
                                bulkhead_per_call: false,
                                record: OutcomeSet::BREAKER_DEFAULT,
                                ignore: OutcomeSet::EMPTY,
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
                                conns: None,
                                timer_at: None,
                                rng: SimRng::for_component(spec.seed, &name),
                                budget: RetryBudget::default(),
                                layers: [Vec::new(), Vec::new()],
                                stats: EdgeStats::default(),
                                attempt_latency: None,
                                open_since: None,
                                open_ns: 0,
                                transitions: 0,
                            });
                            edges.len() - 1
                        }
                    };
                    let e = &mut edges[edge];
                    let by_percentile = c
                        .hedge
                        .is_some_and(|h| spec.hedges[h as usize].percentile.is_some());
                    if by_percentile && e.attempt_latency.is_none() {
                        e.attempt_latency = Some(Latency::new(2));
                    }
                    if let (None, Some(b)) = (&e.breaker, c.breaker) {
                        let policy = &spec.breakers[b as usize];
                        e.breaker = Some(Breaker::new(policy.config.clone()));
                        e.record = policy.record;
                        e.ignore = policy.ignore;
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
                    if e.conns.is_none() {
                        let meshed = spec
                            .mesh
                            .as_ref()
                            .filter(|m| m.meshed(from as usize, to as usize));
                        let cfg = match (c.pool, meshed) {
                            (Some(p), _) => Some(spec.pools[p as usize].config),
                            (None, Some(m)) => Some(m.pool),
                            (None, None) => None,
                        };
                        e.conns = cfg.map(|cfg| {
                            Box::new(conn::Conns {
                                cfg,
                                pool: Default::default(),
                                mtls: meshed.is_some_and(|m| m.mtls.is_some()),
                            })
                        });
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
                        stats: EdgeStats::default(),
                        migration: migration.filter(|_| k == 1),
                    });
                }
            }
            per_ep.push(per_step);
        }
        index.push(per_ep);
    }
    for e in &mut edges {
        e.layers = layer_stack(e);
    }
    (sites, index, edges)
}

/// The first time after `now` of the form `phase + k * period` (k >= 0; k >= 1 when
/// `phase` is zero): when a timer armed at t = 0 would next fire.
fn next_on_grid(now: SimTime, phase: SimDuration, period: SimDuration) -> SimTime {
    let (phase, period) = (phase.0, period.0.max(1));
    let first = if phase == 0 { period } else { phase };
    if now.0 < first {
        return SimTime(first);
    }
    SimTime(first + ((now.0 - first) / period + 1) * period)
}

impl World<'_> {
    /// The caller-side state a call from instance `caller` (global index) over `pair` uses:
    /// the pair's own, or the caller instance's, made on its first call.
    pub(super) fn edge_state(&mut self, now: SimTime, pair: u32, caller: u32) -> u32 {
        let p = &self.pairs[pair as usize];
        if !p.per_instance {
            return pair;
        }
        let local = caller - self.svcs[self.edges[pair as usize].from as usize].first_instance;
        if let Some(k) = p.states[local as usize] {
            return k;
        }
        let spec = self.spec;
        let mut e = self.edges[pair as usize].clone();
        // A caller with one instance keeps the pair's names (and streams): the same run as a
        // shared state, but for when its timers were armed.
        let many = spec.services[e.from as usize].slots() > 1;
        e.caller = many.then_some(local);
        if many {
            let name = format!("edge:{}", e.name(spec));
            let stream = |what: &str| SimRng::for_component(spec.seed, &format!("{name}:{what}"));
            e.rng = SimRng::for_component(spec.seed, &name);
            e.lb_rng = stream("lb");
            e.outlier_rng = stream("outlier");
            e.limiter_rng = stream("limit");
            e.throttle_rng = stream("throttle");
            // Each pod's round robin starts where its own seed says (Envoy's `seed_`):
            // pickers that all started at host 0 would move in lockstep, each request of a
            // round-robined client landing on the same host as its predecessors.
            // The seed comes from the state's name, not a draw, so that no stream moves.
            let seed = crate::rng::mix64(spec.seed ^ crate::rng::stable_hash(name.as_bytes()));
            let start = (seed % e.active.len() as u64) as u32;
            e.rr = start;
            if let Some(b) = e.balancer.as_mut() {
                b.start_round_robin_at(start);
            }
        }
        let k = self.edges.len() as u32;
        self.pairs[pair as usize].states[local as usize] = Some(k);
        // Made on its first call, it behaves as if it had run since t = 0: its detector
        // sweeps on the interval's grid, its cache refreshes at its own phase of the TTL.
        if let Some(d) = &e.outlier {
            let at = next_on_grid(now, SimDuration::ZERO, d.interval());
            self.engine.schedule_at(at, Ev::OutlierSweep { edge: k });
        }
        if let Some(reg) = &spec.registry {
            let to = e.to as usize;
            e.cache = (0..e.active.len())
                .map(|j| self.directory.routable(to, j))
                .collect();
            let ttl = spec.services[e.from as usize].cache_ttl(reg);
            let phase = SimDuration((e.lb_rng.unit() * ttl.0 as f64) as u64);
            self.engine
                .schedule_at(next_on_grid(now, phase, ttl), Ev::CacheRefresh { edge: k });
        }
        self.edges.push(e);
        k
    }

    /// Releases what an ended attempt held at the caller (bulkhead permit, limiter slot, the
    /// instance's active count) and, when `report`, feeds its result to the limiter, the
    /// throttle, the balancer and outlier detection.
    pub(super) fn release_attempt(
        &mut self,
        now: SimTime,
        edge: u32,
        outcome: AttemptOutcome,
        rtt_ns: u64,
        done: Done,
        report: bool,
    ) {
        let how = Ended {
            outcome,
            elapsed: SimDuration(rtt_ns),
            inflight: done.inflight,
            sample: report && done.host.is_some(),
        };
        self.release_holds(now, edge, done.holds, how);
        let reset = !report
            || matches!(
                outcome,
                AttemptOutcome::Timeout | AttemptOutcome::ConnectFailure
            );
        self.release_conn(now, edge, done.conn, reset);
        let e = &mut self.edges[edge as usize];
        if report && outcome == AttemptOutcome::Ok {
            if let Some(t) = e.throttle.as_mut() {
                t.on_accept(now);
            }
        }
        let Some(host) = done.host else { return };
        let k = (host - e.first_host) as usize;
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
            let status = crate::policy::status::outlier_status(outcome, done.status());
            let changes = d.on_result(now, k, status, &mut e.outlier_rng);
            for change in changes.into_iter().flatten() {
                self.outlier_changed(now, edge, change);
            }
        }
    }

    /// A breaker's timer is due (unless re-armed since): it may move to half-open.
    pub(super) fn on_breaker_timer(&mut self, now: SimTime, edge: u32) {
        let e = &mut self.edges[edge as usize];
        if e.timer_at == Some(now) {
            e.timer_at = None;
            let t = e.breaker.as_mut().and_then(|b| b.on_timer(now));
            self.breaker_changed(now, edge, t);
        }
    }

    /// Logs a breaker transition, tracks time open, and arms the breaker's timer.
    pub(super) fn breaker_changed(
        &mut self,
        now: SimTime,
        edge: u32,
        t: Option<breaker::Transition>,
    ) {
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
            let name = e.name(self.spec);
            self.log.push(StateEvent {
                t_s: secs(now),
                subject: name,
                change: Change::Breaker {
                    from: t.from,
                    to: t.to,
                },
            });
        }
        if let Some(at) = e.breaker.as_ref().and_then(|b| b.next_timer()) {
            if e.timer_at != Some(at) && at >= now {
                e.timer_at = Some(at);
                self.engine.schedule_at(at, Ev::BreakerTimer { edge });
            }
        }
    }
}

/// How an attempt or a call ended, for the layers it held.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ended {
    /// Its outcome (a call's, for a call-scoped breaker).
    pub(super) outcome: AttemptOutcome,
    /// Since it started.
    pub(super) elapsed: SimDuration,
    /// In flight at the concurrency limiter when it started.
    pub(super) inflight: u32,
    /// Whether the concurrency limiter takes it as a latency sample.
    pub(super) sample: bool,
}

/// A caller-side layer that a call or each of its attempts passes (POLICIES.md §19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LayerKind {
    /// The circuit breaker: refuses while open (CallNotPermitted).
    Breaker,
    /// Client-side adaptive throttling: refuses with a probability.
    Throttle,
    /// The client-side adaptive concurrency limit.
    Limiter,
    /// The bulkhead or connection pool: refuses, or makes the call wait for a permit.
    Bulkhead,
}

/// The layers an edge's policies make, in the documented default order (outermost
/// first): breaker ⊃ adaptive throttle ⊃ concurrency limit ⊃ bulkhead, then the
/// balancer's pick. The breaker and the bulkhead take the scope their policy names; the
/// throttle and the limiter act on each attempt.
fn layer_stack(e: &Edge) -> [Vec<LayerKind>; 2] {
    let scope = |per_call: bool| {
        if per_call {
            Scope::Call
        } else {
            Scope::Attempt
        }
    };
    let mut layers = [Vec::new(), Vec::new()];
    if e.breaker.is_some() {
        layers[scope(e.breaker_per_call) as usize].push(LayerKind::Breaker);
    }
    if e.throttle.is_some() {
        layers[Scope::Attempt as usize].push(LayerKind::Throttle);
    }
    if e.limiter.is_some() {
        layers[Scope::Attempt as usize].push(LayerKind::Limiter);
    }
    if e.bulkhead.is_some() {
        layers[scope(e.bulkhead_per_call) as usize].push(LayerKind::Bulkhead);
    }
    layers
}

impl World<'_> {
    /// Passes call `id` (`scope = Call`) or its current attempt (`Attempt`) through the
    /// edge's layers of that scope, from position `from`, outermost first. `done` carries
    /// what the attempt holds so far; a call's holds go on the call. Returns the holds when
    /// every layer let it through. A refusal ends the attempt (`attempt_done`) or the call
    /// (`finish_call`) and returns `None`; so does a wait for a bulkhead permit, which
    /// resumes at the next layer when the permit comes (`wake`) or fails at its deadline.
    pub(super) fn pass_layers(
        &mut self,
        now: SimTime,
        id: CallId,
        scope: Scope,
        from: usize,
        mut done: Done,
    ) -> Option<Done> {
        let c = &self.calls[id];
        let (site, measured) = (c.site as usize, c.measured);
        let edge = c.edge;
        let s = scope as usize;
        for k in from..self.edges[edge as usize].layers[s].len() {
            let layer = self.edges[edge as usize].layers[s][k];
            let e = &mut self.edges[edge as usize];
            let mut hold = 0;
            let refused = match layer {
                LayerKind::Breaker => {
                    let b = e.breaker.as_mut().expect("a breaker layer has a breaker");
                    let (permit, t) = b.try_acquire(now);
                    self.breaker_changed(now, edge, t);
                    if permit.is_err() {
                        self.sites[site].stats.breaker_rejected += measured as u64;
                        Some(AttemptOutcome::CircuitOpen)
                    } else {
                        // Per attempt the result comes back with the attempt (`attempt_done`).
                        hold = if scope == Scope::Call {
                            HOLD_BREAKER
                        } else {
                            0
                        };
                        None
                    }
                }
                LayerKind::Throttle => {
                    let t = e
                        .throttle
                        .as_mut()
                        .expect("a throttle layer has a throttle");
                    let p = t.p_reject(now);
                    t.on_request(now);
                    let refuse = e.throttle_rng.chance(p);
                    self.sites[site].stats.throttled += (refuse && measured) as u64;
                    refuse.then_some(AttemptOutcome::Refused)
                }
                LayerKind::Limiter => {
                    let l = e.limiter.as_mut().expect("a limiter layer has a limiter");
                    match l.try_acquire() {
                        Some(n) => {
                            hold = HOLD_LIMITER;
                            done.inflight = n;
                            None
                        }
                        None => {
                            self.sites[site].stats.limited += measured as u64;
                            Some(AttemptOutcome::Refused)
                        }
                    }
                }
                LayerKind::Bulkhead => {
                    let b = e
                        .bulkhead
                        .as_mut()
                        .expect("a bulkhead layer has a bulkhead");
                    match b.acquire(now, id.0) {
                        Acquire::Granted => {
                            hold = HOLD_BULKHEAD;
                            None
                        }
                        Acquire::Rejected => {
                            self.sites[site].stats.bulkhead_rejected += measured as u64;
                            Some(AttemptOutcome::Refused)
                        }
                        Acquire::Wait { until } => {
                            // A call waits as long as its deadline allows; an attempt (an
                            // Envoy pending request) as long as its own timeout allows.
                            let until = until.unwrap_or_else(|| match scope {
                                Scope::Call => self.call_deadline(id),
                                Scope::Attempt => self.attempt_deadline(now, id),
                            });
                            let c = &mut self.calls[id];
                            c.bulkhead_wait = Some(until);
                            c.wait_done = done;
                            c.waiting_call = scope == Scope::Call;
                            c.resume_layer = (k + 1) as u8;
                            if until != SimTime::MAX {
                                self.engine
                                    .schedule_at(until.max(now), Ev::BulkheadWait { call: id });
                            }
                            return None;
                        }
                    }
                }
            };
            if let Some(outcome) = refused {
                match scope {
                    Scope::Call => {
                        self.calls[id].last_open = outcome == AttemptOutcome::CircuitOpen;
                        self.finish_call(now, id, outcome.call_outcome());
                    }
                    Scope::Attempt => self.attempt_done(now, id, None, outcome, 0, 0, done),
                }
                return None;
            }
            match scope {
                Scope::Call => self.calls[id].call_holds |= hold,
                Scope::Attempt => done.holds |= hold,
            }
        }
        Some(done)
    }

    /// Gives back what an attempt or a whole call held on `edge`, telling each layer how it
    /// ended: a call-scoped breaker hears the call's result (`outcome`, after `elapsed`); a
    /// bulkhead permit goes to the next waiter; the concurrency limiter takes the sample
    /// (`elapsed`, in flight when it started) unless `sample` is false.
    pub(super) fn release_holds(&mut self, now: SimTime, edge: u32, holds: u8, how: Ended) {
        let Ended {
            outcome,
            elapsed,
            inflight,
            sample,
        } = how;
        let e = &mut self.edges[edge as usize];
        if holds & HOLD_BREAKER != 0 {
            let result = breaker::classify(outcome, e.record, e.ignore);
            if let Some(b) = e.breaker.as_mut() {
                let t = b.on_result(now, result, elapsed);
                self.breaker_changed(now, edge, t);
            }
        }
        let e = &mut self.edges[edge as usize];
        if holds & HOLD_BULKHEAD != 0 {
            if let Some(w) = e.bulkhead.as_mut().and_then(|b| b.release()) {
                self.woken.push(CallId(w));
            }
        }
        if holds & HOLD_LIMITER != 0 {
            if let Some(l) = e.limiter.as_mut() {
                let dropped = matches!(outcome, AttemptOutcome::Timeout | AttemptOutcome::Rejected);
                l.release(elapsed, inflight, dropped, !sample, &mut e.limiter_rng);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges_of(policies: &str, call: &str) -> Vec<[Vec<LayerKind>; 2]> {
        let text = format!(
            "[sim]\nname = \"l\"\nduration = \"1s\"\n{policies}\n\
             [[service]]\nname = \"a\"\ncalls = [{{ to = \"b\", timeout = \"1s\"{call} }}]\n\
             [[service]]\nname = \"b\"\n\
             [[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = {{ kind = \"constant\", rate = 1 }}\n"
        );
        let scn = crate::scenario::parse("l.toml", &text, &[]).expect("valid");
        let (_, _, edges) = build_sites(&scn.spec);
        edges.into_iter().map(|e| e.layers).collect()
    }

    const ALL: &str = "[policy.breaker.br]\nfailure_rate = 0.5\nSCOPE\n\
        [policy.throttle.t]\nk = 2\n\
        [policy.concurrency.c]\nkind = \"vegas\"\n\
        [policy.bulkhead.b]\nkind = \"semaphore\"\nmax_concurrent = 4\n";
    const USE_ALL: &str =
        ", breaker = \"br\", throttle = \"t\", concurrency = \"c\", bulkhead = \"b\"";

    #[test]
    fn a_late_made_state_arms_its_timers_where_a_t0_timer_would_fire() {
        let s = |x: u64| SimTime(x * 1_000_000_000);
        let d = |x: u64| SimDuration(x * 1_000_000_000);
        // Outlier sweeps every 10 s from t = 0: 10, 20, 30...
        assert_eq!(next_on_grid(s(0), d(0), d(10)), s(10));
        assert_eq!(next_on_grid(s(9), d(0), d(10)), s(10));
        assert_eq!(next_on_grid(s(10), d(0), d(10)), s(20));
        assert_eq!(next_on_grid(s(25), d(0), d(10)), s(30));
        // A cache with phase 3 s and TTL 30 s: 3, 33, 63...
        assert_eq!(next_on_grid(s(0), d(3), d(30)), s(3));
        assert_eq!(next_on_grid(s(3), d(3), d(30)), s(33));
        assert_eq!(next_on_grid(s(40), d(3), d(30)), s(63));
    }

    #[test]
    fn s19_layers_go_outermost_first_each_at_its_scope() {
        use LayerKind::*;
        let per_attempt = edges_of(&ALL.replace("SCOPE", ""), USE_ALL);
        assert_eq!(
            per_attempt,
            [[vec![Breaker, Throttle, Limiter, Bulkhead], vec![]]]
        );
        let per_call = edges_of(&ALL.replace("SCOPE", "scope = \"call\""), USE_ALL);
        let (attempt, call) = (Scope::Attempt as usize, Scope::Call as usize);
        assert_eq!(per_call[0][call], [Breaker]);
        assert_eq!(per_call[0][attempt], [Throttle, Limiter, Bulkhead]);
        // Only the layers the scenario names.
        assert_eq!(edges_of("", ""), [[vec![], vec![]]]);
    }
}
