//! The other layer policies: balancers, outlier detection, bulkheads, rate limits, concurrency limits, throttles.

use super::*;

#[allow(clippy::type_complexity)]
pub(super) fn build_layer_policies(
    cx: &mut Ctx,
    raw: &RawScenario,
) -> (
    Vec<BalancerPolicy>,
    Vec<OutlierPolicy>,
    Vec<BulkheadPolicy>,
    Vec<RateLimitPolicy>,
    Vec<ConcurrencyPolicy>,
    Vec<ThrottlePolicy>,
) {
    use crate::policy::{balancer, bulkhead, concurrency, outlier};
    let pp = root().key("policy");
    let mut balancers = Vec::new();
    for (name, b) in &raw.policy.balancer {
        let p = pp.key("balancer").key(name);
        let kinds = [
            "round_robin",
            "smooth_weighted",
            "random",
            "weighted_random",
            "least_connections",
            "least_request",
            "hash",
            "ring_hash",
            "maglev",
        ];
        let kind = match b.kind.as_str() {
            "round_robin" => balancer::Kind::RoundRobin,
            "smooth_weighted" => balancer::Kind::SmoothWeighted,
            "random" => balancer::Kind::Random { weighted: false },
            "weighted_random" => balancer::Kind::Random { weighted: true },
            "least_connections" => balancer::Kind::LeastConnections,
            "least_request" => balancer::Kind::LeastRequest {
                choices: b.choices.unwrap_or(2).max(1),
                bias: b.bias.unwrap_or(1.0),
            },
            "hash" => balancer::Kind::Hash,
            "ring_hash" => balancer::Kind::RingHash {
                min_ring_size: b.ring_size.unwrap_or(1024).clamp(1, 8 << 20),
            },
            "maglev" => {
                let m = b.table_size.unwrap_or(65537);
                if m < 2 || !(2..m).take_while(|d| d * d <= m).all(|d| m % d != 0) {
                    cx.err(
                        p.key("table_size"),
                        format!(
                            "the Maglev table size must be a prime (Envoy uses 65537), got {m}"
                        ),
                    );
                }
                balancer::Kind::Maglev {
                    table_size: m.max(2),
                }
            }
            other => {
                unknown_kind(cx, p.key("kind"), "balancer", other, &kinds);
                balancer::Kind::RoundRobin
            }
        };
        let weights = b.weights.clone().unwrap_or_default();
        if weights.contains(&0) {
            cx.err(p.key("weights"), "instance weights must be at least 1");
        }
        balancers.push(BalancerPolicy {
            name: name.clone(),
            kind,
            panic_threshold: check_percent(cx, b.panic_threshold, p.key("panic_threshold")),
            weights: weights.into_iter().map(|w| w.max(1)).collect(),
            zone_aware: b.zone_aware.then_some(b.min_local.max(1)),
            slow_start: b.slow_start.as_ref().map(|s| {
                let sp = p.key("slow_start");
                if !matches!(b.kind.as_str(), "round_robin" | "least_request") {
                    cx.err(sp.clone(), format!("slow start applies to round_robin and least_request balancers (as in Envoy), not {:?}", b.kind));
                }
                if s.window.0 == 0 {
                    cx.err(sp.key("window"), "window must be longer than 0s");
                }
                if !(s.aggression.is_finite() && s.aggression > 0.0) {
                    cx.err(sp.key("aggression"), format!("aggression is above 0 (1.0: linear), got {}", s.aggression));
                }
                (s.window, s.aggression, check_percent(cx, s.min_weight_percent, sp.key("min_weight_percent")))
            }),
        });
    }
    let mut outliers = Vec::new();
    for (name, o) in &raw.policy.outlier {
        let p = pp.key("outlier").key(name);
        let d = outlier::Config::default();
        let pct = |cx: &mut Ctx, v: Option<f64>, key: &str, default: f64| {
            check_percent(cx, v.unwrap_or(default), p.key(key))
        };
        let config = outlier::Config {
            consecutive_5xx: o.consecutive_5xx.unwrap_or(d.consecutive_5xx),
            enforcing_consecutive_5xx: pct(
                cx,
                o.enforcing_consecutive_5xx,
                "enforcing_consecutive_5xx",
                d.enforcing_consecutive_5xx,
            ),
            consecutive_gateway: o.consecutive_gateway.unwrap_or(d.consecutive_gateway),
            enforcing_consecutive_gateway: pct(
                cx,
                o.enforcing_consecutive_gateway,
                "enforcing_consecutive_gateway",
                d.enforcing_consecutive_gateway,
            ),
            interval: o.interval.unwrap_or(d.interval),
            base_ejection: o.base_ejection.unwrap_or(d.base_ejection),
            max_ejection: o.max_ejection.unwrap_or(d.max_ejection),
            max_ejection_percent: pct(
                cx,
                o.max_ejection_percent,
                "max_ejection_percent",
                d.max_ejection_percent,
            ),
            always_eject_one_host: o.always_eject_one_host.unwrap_or(d.always_eject_one_host),
            success_rate_minimum_hosts: o
                .success_rate_minimum_hosts
                .unwrap_or(d.success_rate_minimum_hosts),
            success_rate_request_volume: o
                .success_rate_request_volume
                .unwrap_or(d.success_rate_request_volume),
            success_rate_stdev_factor: o
                .success_rate_stdev_factor
                .unwrap_or(d.success_rate_stdev_factor),
            enforcing_success_rate: pct(
                cx,
                o.enforcing_success_rate,
                "enforcing_success_rate",
                d.enforcing_success_rate,
            ),
            failure_percentage_threshold: pct(
                cx,
                o.failure_percentage_threshold,
                "failure_percentage_threshold",
                d.failure_percentage_threshold,
            ),
            failure_percentage_minimum_hosts: o
                .failure_percentage_minimum_hosts
                .unwrap_or(d.failure_percentage_minimum_hosts),
            failure_percentage_request_volume: o
                .failure_percentage_request_volume
                .unwrap_or(d.failure_percentage_request_volume),
            enforcing_failure_percentage: pct(
                cx,
                o.enforcing_failure_percentage,
                "enforcing_failure_percentage",
                d.enforcing_failure_percentage,
            ),
        };
        if config.interval.0 == 0 {
            cx.err(p.key("interval"), "interval must be longer than 0s");
        }
        if config.max_ejection < config.base_ejection {
            cx.err(
                p.key("max_ejection"),
                format!(
                    "max_ejection ({}) must be at least base_ejection ({}), as Envoy requires",
                    config.max_ejection, config.base_ejection
                ),
            );
        }
        outliers.push(OutlierPolicy {
            name: name.clone(),
            config,
        });
    }
    let mut bulkheads = Vec::new();
    for (name, b) in &raw.policy.bulkhead {
        let p = pp.key("bulkhead").key(name);
        let config = match b.kind.as_str() {
            "semaphore" => {
                for key in [
                    ("max_connections", b.max_connections.is_some()),
                    ("max_pending", b.max_pending.is_some()),
                    ("max_requests", b.max_requests.is_some()),
                    ("max_retries", b.max_retries.is_some()),
                ] {
                    if key.1 {
                        cx.err(p.key(key.0), format!("`{}` belongs to kind = \"envoy\"; a semaphore bulkhead takes max_concurrent and max_wait", key.0));
                    }
                }
                let max = b.max_concurrent.unwrap_or(25);
                if max == 0 {
                    cx.err(p.key("max_concurrent"), "max_concurrent must be at least 1");
                }
                bulkhead::Config::Semaphore {
                    max_concurrent: max.max(1),
                    max_wait: b.max_wait.unwrap_or(SimDuration::ZERO),
                }
            }
            "envoy" => {
                for key in [
                    ("max_concurrent", b.max_concurrent.is_some()),
                    ("max_wait", b.max_wait.is_some()),
                ] {
                    if key.1 {
                        cx.err(p.key(key.0), format!("`{}` belongs to kind = \"semaphore\"; Envoy limits are max_connections, max_pending, max_requests, max_retries", key.0));
                    }
                }
                let c = b.max_connections.unwrap_or(1024);
                let r = b.max_requests.unwrap_or(1024);
                if c == 0 || r == 0 {
                    cx.err(
                        p.clone(),
                        "max_connections and max_requests must be at least 1",
                    );
                }
                bulkhead::Config::Envoy {
                    max_connections: c.max(1),
                    max_pending: b.max_pending.unwrap_or(1024),
                    max_requests: r.max(1),
                    max_retries: b.max_retries.unwrap_or(3),
                }
            }
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "bulkhead",
                    other,
                    &["semaphore", "envoy"],
                );
                continue;
            }
        };
        bulkheads.push(BulkheadPolicy {
            name: name.clone(),
            config,
            scope: scope(cx, b.scope.as_deref(), p.key("scope")),
        });
    }
    let mut rate_limits = Vec::new();
    for (name, r) in &raw.policy.rate_limit {
        let p = pp.key("rate_limit").key(name);
        let kind = match r.kind.as_str() {
            "token_bucket" => {
                let (Some(max_tokens), Some(fill)) = (r.max_tokens, r.fill_interval) else {
                    cx.err(p.clone(), "a token bucket needs max_tokens and fill_interval (and optionally tokens_per_fill, default 1)");
                    continue;
                };
                if fill.0 == 0 {
                    cx.err(
                        p.key("fill_interval"),
                        "fill_interval must be longer than 0s",
                    );
                }
                RateLimitKind::TokenBucket {
                    max_tokens,
                    tokens_per_fill: r.tokens_per_fill.unwrap_or(1),
                    fill_interval: fill,
                }
            }
            "gcra" => {
                let Some(rate) = r.rate.filter(|x| x.is_finite() && *x > 0.0) else {
                    cx.err(
                        p.key("rate"),
                        "gcra needs rate, requests per second above 0",
                    );
                    continue;
                };
                RateLimitKind::Gcra {
                    period: SimDuration(((1e9 / rate).round() as u64).max(1)),
                    burst: r.burst.unwrap_or(0),
                }
            }
            "resilience4j" => {
                let period = r.refresh_period.unwrap_or(SimDuration(500));
                if period.0 == 0 {
                    cx.err(
                        p.key("refresh_period"),
                        "refresh_period must be longer than 0s",
                    );
                }
                RateLimitKind::Resilience4j {
                    limit: r.limit_for_period.unwrap_or(50),
                    period,
                    timeout: r.timeout.unwrap_or(SimDuration::from_secs(5)),
                }
            }
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "rate limit",
                    other,
                    &["token_bucket", "gcra", "resilience4j"],
                );
                continue;
            }
        };
        let key = match r.key.as_deref().unwrap_or("global") {
            "global" => LimitKey::Global,
            "client" => LimitKey::Client,
            "route" => LimitKey::Route,
            other => {
                cx.err(p.key("key"), format!("unknown key {other:?}: use \"global\", \"client\" (per caller) or \"route\" (per endpoint)"));
                LimitKey::Global
            }
        };
        rate_limits.push(RateLimitPolicy {
            name: name.clone(),
            kind,
            key,
        });
    }
    let mut conc = Vec::new();
    for (name, c) in &raw.policy.concurrency {
        let p = pp.key("concurrency").key(name);
        let (algorithm, defaults) = match c.kind.as_str() {
            "aimd" => {
                let backoff = c.backoff.unwrap_or(0.9);
                if !(0.5..1.0).contains(&backoff) {
                    cx.err(
                        p.key("backoff"),
                        format!("backoff is in [0.5, 1), got {backoff}"),
                    );
                }
                (
                    concurrency::Algorithm::Aimd {
                        backoff,
                        timeout: c.timeout.unwrap_or(SimDuration::from_secs(5)),
                    },
                    concurrency::AIMD_DEFAULTS,
                )
            }
            "vegas" => (
                concurrency::Algorithm::Vegas {
                    smoothing: c.smoothing.unwrap_or(1.0),
                    rtt_noload: 0,
                    probe_count: 0,
                    probe_jitter: 0.0,
                },
                concurrency::VEGAS_DEFAULTS,
            ),
            "gradient2" => (
                concurrency::Algorithm::Gradient2 {
                    smoothing: c.smoothing.unwrap_or(0.2),
                    queue_size: c.queue_size.unwrap_or(4.0),
                    tolerance: c.tolerance.unwrap_or(1.5),
                    long_window: 600,
                    long_rtt: 0.0,
                    samples: 0,
                },
                concurrency::GRADIENT2_DEFAULTS,
            ),
            other => {
                unknown_kind(
                    cx,
                    p.key("kind"),
                    "concurrency limit",
                    other,
                    &["aimd", "vegas", "gradient2"],
                );
                continue;
            }
        };
        let (initial, min, max) = (
            c.initial.unwrap_or(defaults.0),
            c.min.unwrap_or(defaults.1),
            c.max.unwrap_or(defaults.2),
        );
        if !(min >= 1.0 && min <= initial && initial <= max) {
            cx.err(p.clone(), format!("limits must satisfy 1 <= min <= initial <= max, got min {min}, initial {initial}, max {max}"));
        }
        if let Some(sm) = c.smoothing {
            if !(sm > 0.0 && sm <= 1.0) {
                cx.err(
                    p.key("smoothing"),
                    format!("smoothing is in (0, 1], got {sm}"),
                );
            }
        }
        conc.push(ConcurrencyPolicy {
            name: name.clone(),
            algorithm,
            initial,
            min,
            max,
        });
    }
    let mut throttles = Vec::new();
    for (name, t) in &raw.policy.throttle {
        let p = pp.key("throttle").key(name);
        if t.k.is_nan() || t.k < 1.0 {
            cx.err(
                p.key("k"),
                format!("k is at least 1 (the SRE book uses 2), got {}", t.k),
            );
        }
        if t.aggression.is_nan() || t.aggression < 1.0 {
            cx.err(
                p.key("aggression"),
                format!("aggression is at least 1, got {}", t.aggression),
            );
        }
        if !(t.max_reject > 0.0 && t.max_reject <= 1.0) {
            cx.err(
                p.key("max_reject"),
                format!("max_reject is in (0, 1], got {}", t.max_reject),
            );
        }
        if t.window.0 < 10 {
            cx.err(p.key("window"), "window must be longer than 10ns");
        }
        throttles.push(ThrottlePolicy {
            name: name.clone(),
            threshold: 1.0 / t.k.max(1.0),
            aggression: t.aggression.max(1.0),
            max_reject: t.max_reject,
            min_rps: t.min_rps.max(0.0),
            window: t.window,
        });
    }
    (balancers, outliers, bulkheads, rate_limits, conc, throttles)
}
