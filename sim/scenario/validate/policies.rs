//! Named policies (`[policy.retry]`, `[policy.breaker]`, `[policy.hedge]`) and the defaults calls inherit.

use super::*;

/// A service's default policies for its calls, and where it can publish.
pub(super) struct Defaults<'a> {
    pub(super) dests: &'a BTreeMap<String, (Dest, Option<ServiceId>)>,
    /// The service whose handler this is.
    pub(super) service: usize,
    pub(super) retry: Option<&'a str>,
    pub(super) breaker: Option<&'a str>,
    pub(super) balancer: Option<&'a str>,
    pub(super) outlier: Option<&'a str>,
    pub(super) bulkhead: Option<&'a str>,
    pub(super) path: TomlPath,
}

impl<'a> Defaults<'a> {
    /// Service `service`'s defaults, as its handlers' calls (and the saga or transaction
    /// calls it makes) inherit them.
    pub(super) fn of(
        raw: &'a RawScenario,
        service: usize,
        dests: &'a BTreeMap<String, (Dest, Option<ServiceId>)>,
    ) -> Self {
        let s = &raw.service[service];
        Defaults {
            retry: s.retry.as_deref(),
            breaker: s.breaker.as_deref(),
            balancer: s.balancer.as_deref(),
            outlier: s.outlier.as_deref(),
            bulkhead: s.bulkhead.as_deref(),
            path: root().key("service").index(service),
            dests,
            service,
        }
    }
}

/// The named policies, built.
pub(super) struct Policies {
    pub(super) retries: Vec<RetryPolicy>,
    pub(super) breakers: Vec<BreakerPolicy>,
    pub(super) hedges: Vec<HedgePolicy>,
    pub(super) caches: Vec<crate::model::spec::CachePolicy>,
    pub(super) balancers: Vec<BalancerPolicy>,
    pub(super) outliers: Vec<OutlierPolicy>,
    pub(super) bulkheads: Vec<BulkheadPolicy>,
    pub(super) rate_limits: Vec<RateLimitPolicy>,
    pub(super) concurrency: Vec<ConcurrencyPolicy>,
    pub(super) throttles: Vec<ThrottlePolicy>,
    pub(super) pools: Vec<PoolPolicy>,
    pub(super) states: PolicyStates,
}

impl Policies {
    /// Resolves a call's policy name (or its service's default); "none" means no policy.
    pub(super) fn pick(
        &self,
        cx: &mut Ctx,
        kind: &str,
        name: Option<&str>,
        path: TomlPath,
        default: Option<&str>,
        default_path: &TomlPath,
    ) -> Option<u32> {
        let (name, path) = match (name, default) {
            (Some(n), _) => (n, path),
            (None, Some(d)) => (d, default_path.key(kind)),
            (None, None) => return None,
        };
        if name == "none" {
            return None;
        }
        let names: Vec<&str> = match kind {
            "retry" => self.retries.iter().map(|r| r.name.as_str()).collect(),
            "hedge" => self.hedges.iter().map(|h| h.name.as_str()).collect(),
            "cache" => self.caches.iter().map(|h| h.name.as_str()).collect(),
            "balancer" => self.balancers.iter().map(|h| h.name.as_str()).collect(),
            "outlier" => self.outliers.iter().map(|h| h.name.as_str()).collect(),
            "bulkhead" => self.bulkheads.iter().map(|h| h.name.as_str()).collect(),
            "rate_limit" => self.rate_limits.iter().map(|h| h.name.as_str()).collect(),
            "concurrency" => self.concurrency.iter().map(|h| h.name.as_str()).collect(),
            "throttle" => self.throttles.iter().map(|h| h.name.as_str()).collect(),
            "pool" => self.pools.iter().map(|h| h.name.as_str()).collect(),
            _ => self.breakers.iter().map(|b| b.name.as_str()).collect(),
        };
        match names.iter().position(|n| *n == name) {
            Some(i) => Some(i as u32),
            None => {
                let none = format!("none is defined: add [policy.{kind}.{name}]");
                let what = format!("{kind} policy");
                cx.err(path, unknown(&what, name, &names, "defined", &none));
                None
            }
        }
    }
}

pub(super) fn outcome_set(
    cx: &mut Ctx,
    list: Option<&[String]>,
    default: OutcomeSet,
    allowed: &[&str],
    path: TomlPath,
) -> OutcomeSet {
    let Some(list) = list else { return default };
    let mut set = OutcomeSet::EMPTY;
    for (i, item) in list.iter().enumerate() {
        match AttemptOutcome::from_name(item).filter(|o| allowed.contains(&o.name())) {
            Some(o) => set = set.with(o),
            None => cx.err(
                path.index(i),
                unknown("outcome", item, allowed, "valid", ""),
            ),
        }
    }
    set
}

/// A retry policy's `retry_on` and `retriable_status_codes`: faultline's outcome names and
/// the conditions of Envoy, Istio and gRPC (`policy::status`).
fn retry_on(cx: &mut Ctx, r: &crate::scenario::raw::RawRetry, p: &TomlPath) -> RetryOn {
    const OUTCOMES: [&str; 8] = [
        "error",
        "timeout",
        "rejected",
        "circuit_open",
        "connect_failure",
        "rate_limited",
        "refused",
        "forbidden",
    ];
    let mut on = RetryOn::outcomes(OutcomeSet::RETRY_DEFAULT);
    if let Some(list) = r.retry_on.as_deref() {
        on = RetryOn::outcomes(OutcomeSet::EMPTY);
        for (i, item) in list.iter().enumerate() {
            let outcome = AttemptOutcome::from_name(item).is_some();
            if (outcome && !OUTCOMES.contains(&item.as_str())) || !on.add(item) {
                let valid: Vec<&str> = OUTCOMES
                    .iter()
                    .copied()
                    .chain(crate::policy::status::condition_names())
                    .collect();
                cx.err(
                    p.key("retry_on").index(i),
                    unknown("retry condition", item, &valid, "valid", ""),
                );
            }
        }
    }
    // As in Envoy, the codes alone retry nothing: they need "retriable-status-codes".
    let codes_path = p.key("retriable_status_codes");
    match (&r.retriable_status_codes, on.wants_codes()) {
        (Some(codes), true) => {
            for (i, &c) in codes.iter().enumerate() {
                match u16::try_from(c).ok().and_then(Status::http) {
                    Some(_) => on.codes.push(c as u16),
                    None => cx.err(
                        codes_path.index(i),
                        format!("{c} is not an HTTP status: use a code from 100 to 599 (gRPC statuses are named in retry_on, such as \"unavailable\")"),
                    ),
                }
            }
        }
        (Some(_), false) => cx.err(
            codes_path,
            "retriable_status_codes needs retry_on to name \"retriable-status-codes\" (as in Envoy, the codes alone retry nothing)",
        ),
        (None, true) if on.codes.is_empty() => cx.err(
            p.key("retry_on"),
            "\"retriable-status-codes\" needs retriable_status_codes = [<HTTP codes>], such as [429, 503] (or name the codes in retry_on, as Istio does: \"503\")",
        ),
        (None, _) => {}
    }
    on
}

pub(super) fn build_policies(cx: &mut Ctx, raw: &RawScenario) -> Policies {
    use crate::policy::backoff::{Backoff, Jitter};
    use crate::policy::breaker::{Config, ConsecutiveConfig, RateConfig, WaitInterval, Window};
    use crate::policy::budget::EnvoyBudget;
    let pp = root().key("policy");
    let rp = &raw.policy;
    let names: [(&str, Vec<&String>); 10] = [
        ("cache", rp.cache.keys().collect()),
        ("retry", rp.retry.keys().collect()),
        ("breaker", rp.breaker.keys().collect()),
        ("hedge", rp.hedge.keys().collect()),
        ("balancer", rp.balancer.keys().collect()),
        ("outlier", rp.outlier.keys().collect()),
        ("bulkhead", rp.bulkhead.keys().collect()),
        ("rate_limit", rp.rate_limit.keys().collect()),
        ("concurrency", rp.concurrency.keys().collect()),
        ("throttle", rp.throttle.keys().collect()),
    ];
    for (kind, keys) in names {
        if keys.iter().any(|k| k.as_str() == "none") {
            cx.err(
                pp.key(kind).key("none"),
                "\"none\" is reserved (it turns a service's default policy off): pick another name",
            );
        }
    }
    let mut retries = Vec::new();
    for (name, r) in &raw.policy.retry {
        let p = pp.key("retry").key(name);
        if r.max_attempts == 0 {
            cx.err(
                p.key("max_attempts"),
                "max_attempts counts the first attempt too: it must be at least 1",
            );
        }
        let backoff = match &r.backoff {
            None => Backoff::None,
            Some(b) => {
                let bp = p.key("backoff");
                let need = |cx: &mut Ctx, v: Option<SimDuration>, key: &str| -> SimDuration {
                    v.unwrap_or_else(|| {
                        cx.err(
                            bp.key(key),
                            format!("missing `{key}` for backoff kind {:?}", b.kind),
                        );
                        SimDuration::ZERO
                    })
                };
                match b.kind.as_str() {
                    "none" => Backoff::None,
                    "fixed" => Backoff::Fixed(need(cx, b.value, "value")),
                    "exponential" => {
                        let jitter = match b.jitter.as_deref().unwrap_or("full") {
                            "none" => Jitter::None,
                            "full" => Jitter::Full,
                            "equal" => Jitter::Equal,
                            other => {
                                cx.err(bp.key("jitter"), format!("unknown jitter {other:?}: use \"none\", \"full\" or \"equal\" (\"decorrelated\" is its own backoff kind)"));
                                Jitter::Full
                            }
                        };
                        Backoff::Exponential {
                            base: need(cx, b.base, "base"),
                            cap: need(cx, b.cap, "cap"),
                            jitter,
                        }
                    }
                    "decorrelated" => Backoff::Decorrelated {
                        base: need(cx, b.base, "base"),
                        cap: need(cx, b.cap, "cap"),
                    },
                    "envoy" => {
                        let base = b.base.unwrap_or(SimDuration::from_millis(25));
                        Backoff::Envoy {
                            base,
                            max: b.cap.unwrap_or(SimDuration(base.0 * 10)),
                        }
                    }
                    "grpc" => Backoff::Grpc {
                        initial: need(cx, b.base, "base"),
                        multiplier: b.multiplier.unwrap_or(2.0),
                        max: need(cx, b.cap, "cap"),
                    },
                    "randomized" | "google" => {
                        let google = b.kind == "google";
                        let multiplier = b.multiplier.unwrap_or(if google { 1.5 } else { 2.0 });
                        let randomization = b.randomization.unwrap_or(0.5);
                        if !(multiplier >= 1.0 && multiplier.is_finite()) {
                            cx.err(
                                bp.key("multiplier"),
                                format!("multiplier {multiplier} must be at least 1"),
                            );
                        }
                        if !(0.0..1.0).contains(&randomization) {
                            cx.err(bp.key("randomization"), format!("randomization {randomization} must be in [0, 1): the wait falls within that fraction either side of the interval"));
                        }
                        if google {
                            Backoff::Google {
                                initial: b.base.unwrap_or(SimDuration::from_millis(500)),
                                multiplier,
                                max: b.cap.unwrap_or(SimDuration::from_secs(60)),
                                randomization,
                            }
                        } else {
                            Backoff::Randomized {
                                base: need(cx, b.base, "base"),
                                multiplier,
                                cap: need(cx, b.cap, "cap"),
                                randomization,
                            }
                        }
                    }
                    "resilience4j" => Backoff::R4jExponential {
                        initial: need(cx, b.base, "base"),
                        multiplier: b.multiplier.unwrap_or(1.5),
                        max: b.cap.unwrap_or(SimDuration(u64::MAX / 4)),
                    },
                    other => {
                        let kinds = [
                            "none",
                            "fixed",
                            "exponential",
                            "decorrelated",
                            "envoy",
                            "grpc",
                            "resilience4j",
                            "randomized",
                            "google",
                        ];
                        unknown_kind(cx, bp.key("kind"), "backoff", other, &kinds);
                        Backoff::None
                    }
                }
            }
        };
        let retry_on = retry_on(cx, r, &p);
        let budget = r.budget.as_ref().and_then(|b| {
            let bp = p.key("budget");
            match b.kind.as_str() {
                "envoy" => Some(BudgetSpec::Envoy(EnvoyBudget {
                    percent: b.percent.unwrap_or(20.0),
                    min_concurrency: b.min_concurrency.unwrap_or(3),
                })),
                "finagle" => {
                    let pc = b.percent_can_retry.unwrap_or(0.2);
                    if !(pc > 0.0 && pc <= 1.0) {
                        cx.err(
                            bp.key("percent_can_retry"),
                            format!("must be in (0, 1], got {pc}"),
                        );
                    }
                    Some(BudgetSpec::Finagle {
                        ttl: b.ttl.unwrap_or(SimDuration::from_secs(10)),
                        min_retries_per_s: b.min_retries_per_s.unwrap_or(10.0),
                        percent_can_retry: pc,
                    })
                }
                "grpc" => Some(BudgetSpec::Grpc {
                    max_tokens: b.max_tokens.unwrap_or(10).clamp(1, 1000),
                    token_ratio: b.token_ratio.unwrap_or(0.1),
                }),
                "aws" => Some(BudgetSpec::Aws),
                "token_bucket" => {
                    let deposit = b.token_ratio.unwrap_or(0.1);
                    if !(deposit > 0.0 && deposit <= 1.0) {
                        cx.err(
                            bp.key("token_ratio"),
                            format!("tokens deposited per success are in (0, 1], got {deposit}"),
                        );
                    }
                    Some(BudgetSpec::TokenBucket {
                        max_tokens: b.max_tokens.unwrap_or(10).clamp(1, 1_000_000),
                        deposit,
                    })
                }
                other => {
                    let kinds = ["envoy", "finagle", "grpc", "aws", "token_bucket"];
                    unknown_kind(cx, bp.key("kind"), "budget", other, &kinds);
                    None
                }
            }
        });
        retries.push(RetryPolicy {
            name: name.clone(),
            max_attempts: r.max_attempts.max(1),
            backoff,
            retry_on,
            budget,
            overall_timeout: r.overall_timeout,
        });
    }
    let mut breakers = Vec::new();
    for (name, b) in &raw.policy.breaker {
        let p = pp.key("breaker").key(name);
        let fraction = |cx: &mut Ctx, v: Option<f64>, key: &str, default: f64| -> f64 {
            let v = v.unwrap_or(default);
            if !(v > 0.0 && v <= 1.0) {
                cx.err(
                    p.key(key),
                    format!("{key} is a share of the window in (0, 1], got {v}"),
                );
            }
            v * 100.0
        };
        const HEARD: [&str; 6] = [
            "error",
            "timeout",
            "rejected",
            "connect_failure",
            "rate_limited",
            "refused",
        ];
        let record = outcome_set(
            cx,
            b.record.as_deref(),
            OutcomeSet::BREAKER_DEFAULT,
            &HEARD,
            p.key("record"),
        );
        let ignore = outcome_set(
            cx,
            b.ignore.as_deref(),
            OutcomeSet::EMPTY,
            &HEARD,
            p.key("ignore"),
        );
        if let Some(both) = ignore
            .iter()
            .find(|&o| record.contains(o) && b.record.is_some())
        {
            cx.err(
                p.key("ignore"),
                format!(
                    "{:?} is both recorded and ignored: an outcome counts one way (take it out of `record` or of `ignore`)",
                    both.name()
                ),
            );
        }
        let config = match b.kind.as_deref().unwrap_or("rate") {
            "rate" => {
                let window = match &b.window {
                    None => Window::Count(100),
                    Some(w) if w.size == 0 => {
                        cx.err(
                            p.key("window").key("size"),
                            "window size must be at least 1",
                        );
                        Window::Count(1)
                    }
                    Some(w) => match w.kind.as_str() {
                        "count" => Window::Count(w.size),
                        "time" => Window::Time(w.size),
                        other => {
                            cx.err(
                                p.key("window").key("kind"),
                                format!("unknown window kind {other:?}: use \"count\" or \"time\""),
                            );
                            Window::Count(w.size)
                        }
                    },
                };
                let open_for = b.open_for.unwrap_or(SimDuration::from_secs(60));
                let wait = match b.open_multiplier {
                    Some(m) => WaitInterval::Exponential {
                        initial: open_for,
                        multiplier: m,
                        max: b
                            .open_max
                            .unwrap_or(SimDuration(open_for.0.saturating_mul(10))),
                    },
                    None => WaitInterval::Fixed(open_for),
                };
                Config::Rate(RateConfig {
                    failure_rate_threshold: fraction(cx, b.failure_rate, "failure_rate", 0.5),
                    slow_call_rate_threshold: fraction(cx, b.slow_call_rate, "slow_call_rate", 1.0),
                    slow_call_duration: b.slow_call_duration.unwrap_or(SimDuration::from_secs(60)),
                    window,
                    minimum_calls: b.minimum_calls.unwrap_or(100).max(1),
                    half_open_calls: b.half_open_calls.unwrap_or(10).max(1),
                    wait,
                    automatic_transition: b.automatic.unwrap_or(false),
                    max_wait_half_open: b.max_wait_half_open.unwrap_or(SimDuration::ZERO),
                    after_max_wait: crate::policy::breaker::State::Open,
                })
            }
            "consecutive" => {
                for (key, set) in [
                    ("failure_rate", b.failure_rate.is_some()),
                    ("window", b.window.is_some()),
                    ("minimum_calls", b.minimum_calls.is_some()),
                    ("half_open_calls", b.half_open_calls.is_some()),
                    ("slow_call_rate", b.slow_call_rate.is_some()),
                ] {
                    if set {
                        cx.err(p.key(key), format!("`{key}` belongs to kind = \"rate\"; the consecutive breaker takes failures, open_for and successes"));
                    }
                }
                Config::Consecutive(ConsecutiveConfig {
                    failures: b.failures.unwrap_or(5).max(1),
                    open_for: b.open_for.unwrap_or(SimDuration::from_secs(30)),
                    half_open_successes: b.successes.unwrap_or(3).max(1),
                })
            }
            other => {
                cx.err(p.key("kind"), format!("unknown breaker kind {other:?}: use \"rate\" (Resilience4j) or \"consecutive\" (the articles')"));
                Config::Consecutive(ConsecutiveConfig::default())
            }
        };
        let fallback = b.fallback.as_ref().map(|f| Fallback {
            latency: f.latency,
            on_failure: match f.on.as_str() {
                "open" => false,
                "failure" => true,
                other => {
                    cx.err(p.key("fallback").key("on"), format!("unknown fallback trigger {other:?}: use \"open\" (calls the breaker refuses) or \"failure\" (any failed call)"));
                    false
                }
            },
        });
        breakers.push(BreakerPolicy {
            name: name.clone(),
            config,
            record,
            ignore,
            fallback,
            scope: scope(cx, b.scope.as_deref(), p.key("scope")),
        });
    }
    let mut hedges = Vec::new();
    for (name, h) in &raw.policy.hedge {
        let p = pp.key("hedge").key(name);
        if !(2..=5).contains(&h.max_attempts) {
            cx.err(p.key("max_attempts"), format!("max_attempts is 2 to 5 (the first attempt included; gRPC caps hedging at 5), got {}", h.max_attempts));
        }
        if let Some(q) = h.percentile {
            if !(q > 0.0 && q < 100.0) {
                cx.err(
                    p.key("percentile"),
                    format!("percentile is in (0, 100), got {q}"),
                );
            }
        }
        let none = OutcomeSet::of(&[AttemptOutcome::Timeout]);
        let non_fatal = outcome_set(
            cx,
            h.non_fatal.as_deref(),
            none,
            &[
                "error",
                "rejected",
                "connect_failure",
                "rate_limited",
                "refused",
            ],
            p.key("non_fatal"),
        );
        // A per-try timeout always lets the next hedge go at once (gRPC A6).
        let non_fatal = non_fatal.with(AttemptOutcome::Timeout);
        hedges.push(HedgePolicy {
            name: name.clone(),
            max_attempts: h.max_attempts.clamp(2, 5),
            delay: h.delay,
            percentile: h.percentile,
            non_fatal,
        });
    }
    let more = build_layer_policies(cx, raw);
    Policies {
        retries,
        breakers,
        hedges,
        caches: super::caches::build_caches(cx, raw),
        balancers: more.0,
        outliers: more.1,
        bulkheads: more.2,
        rate_limits: more.3,
        concurrency: more.4,
        throttles: more.5,
        pools: super::mesh::build_pools(cx, raw),
        states: policy_states(cx, raw),
    }
}

/// Reads a `state` (or a service's `policy_state`): "instance" or "service".
pub(super) fn state_scope(cx: &mut Ctx, v: Option<&str>, path: TomlPath) -> Option<StateScope> {
    match v? {
        "instance" => Some(StateScope::Instance),
        "service" => Some(StateScope::Service),
        other => {
            cx.err(path, format!("unknown state {other:?}: use \"instance\" (each caller instance keeps its own, the default) or \"service\" (one shared by the calling service)"));
            None
        }
    }
}

/// Every policy's `state`, by kind, in the order the policies are built (by name).
fn policy_states(cx: &mut Ctx, raw: &RawScenario) -> PolicyStates {
    let pp = root().key("policy");
    let rp = &raw.policy;
    let mut read =
        |kind: &str, states: Vec<(&String, Option<&String>)>| -> Vec<Option<StateScope>> {
            states
                .into_iter()
                .map(|(name, v)| {
                    state_scope(
                        cx,
                        v.map(|s| s.as_str()),
                        pp.key(kind).key(name).key("state"),
                    )
                })
                .collect()
        };
    PolicyStates {
        retry: read(
            "retry",
            rp.retry
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        breaker: read(
            "breaker",
            rp.breaker
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        balancer: read(
            "balancer",
            rp.balancer
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        outlier: read(
            "outlier",
            rp.outlier
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        bulkhead: read(
            "bulkhead",
            rp.bulkhead
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        concurrency: read(
            "concurrency",
            rp.concurrency
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        throttle: read(
            "throttle",
            rp.throttle
                .iter()
                .map(|(n, p)| (n, p.state.as_ref()))
                .collect(),
        ),
        pool: read(
            "pool",
            rp.pool.iter().map(|(n, p)| (n, p.state.as_ref())).collect(),
        ),
    }
}

/// Reads a breaker's or bulkhead's `scope`.
pub(super) fn scope(cx: &mut Ctx, v: Option<&str>, path: TomlPath) -> Scope {
    match v.unwrap_or("attempt") {
        "attempt" => Scope::Attempt,
        "call" => Scope::Call,
        other => {
            cx.err(path, format!("unknown scope {other:?}: use \"attempt\" (inside the retries: every attempt asks) or \"call\" (outside: once per call)"));
            Scope::Attempt
        }
    }
}

/// An error for an unknown `kind`, with a did-you-mean.
pub(super) fn unknown_kind(cx: &mut Ctx, path: TomlPath, what: &str, other: &str, kinds: &[&str]) {
    cx.err(
        path,
        unknown(&format!("{what} kind"), other, kinds, "valid", ""),
    );
}

/// Checks that a percentage lies in [0, 100].
pub(super) fn check_percent(cx: &mut Ctx, v: f64, path: TomlPath) -> f64 {
    if !(0.0..=100.0).contains(&v) {
        cx.err(path, format!("a percentage in [0, 100], got {v}"));
    }
    v
}
