//! Integration tests of the resilience layers wired into calls and services, and of the faults
//! that change what is in flight. Each test runs a small scenario twice (with and without the
//! layer, same seed) and checks the layer's effect from the run's results.

use faultline::model::RunResult;

mod common;
use common::{run_full, share};

fn run(text: &str) -> RunResult {
    run_full(text).0
}

/// A front end calling 10 back-end instances; instance 0 fails every request from 10 s on.
fn outlier_scenario(policy: &str) -> String {
    format!(
        r#"
[sim]
name = "od"
duration = "60s"
seed = 5
[policy.outlier.od]
{policy}
[[service]]
name = "front"
workers = 64
calls = [{{ to = "back", timeout = "1s" {od} }}]
[[service]]
name = "back"
replicas = 10
workers = 4
work = {{ dist = "exp", mean = "2ms" }}
[[workload]]
name = "w"
target = "front"
arrivals = {{ kind = "poisson", rate = 200 }}
[[fault]]
kind = "error"
target = "back"
instance = 0
at = "10s"
"#,
        od = if policy.is_empty() {
            ""
        } else {
            ", outlier = \"od\""
        }
    )
}

/// §12: five consecutive 5xx eject the failing host for 30 s, then 60 s, ...; the caller's
/// errors drop to the few calls made while it is back in rotation.
#[test]
fn outlier_detection_ejects_the_failing_instance() {
    let without = run(&outlier_scenario(""));
    let (with, sink) = run_full(&outlier_scenario("consecutive_5xx = 5"));
    let errors = |r: &RunResult| r.workloads[0].counts.errors;
    // Without: a tenth of the calls after 10 s fail (≈ 200/s × 50 s / 10 = 1000).
    assert!(
        (800..1200).contains(&errors(&without)),
        "{}",
        errors(&without)
    );
    // With: 5 per ejection, two ejections: 10 errors.
    assert!(
        errors(&with) * 20 < errors(&without),
        "{} vs {}",
        errors(&with),
        errors(&without)
    );
    let edge = &with.edges[0];
    assert!(edge.stats.ejections >= 2, "{:?}", edge.stats);
    assert_eq!(edge.stats.ejection_overflows, 0);
    let ejections: Vec<f64> = sink
        .events
        .iter()
        .filter(|e| e.kind() == "outlier" && e.detail().starts_with("ejected"))
        .map(|e| e.t_s)
        .collect();
    let unejections: Vec<f64> = sink
        .events
        .iter()
        .filter(|e| e.kind() == "outlier" && e.detail() == "unejected")
        .map(|e| e.t_s)
        .collect();
    assert!(ejections[0] >= 10.0 && ejections[0] < 10.5, "{ejections:?}");
    // The first ejection lasts base_ejection_time (30 s), rounded up to the next 10 s sweep:
    // ejected at 10.2 s, back at the sweep at 50 s.
    assert_eq!(unejections[0], 50.0, "{unejections:?}");
    // The second (five calls later) lasts twice as long: 60 s, past the end of the run.
    assert!(ejections[1] >= 50.0 && ejections[1] < 50.5, "{ejections:?}");
    assert_eq!(unejections.len(), 1);
}

/// §12 B3 through the model: with 5 hosts and the 10 % default, Envoy never ejects.
#[test]
fn outlier_detection_respects_max_ejection_percent() {
    let text = outlier_scenario("consecutive_5xx = 5").replace("replicas = 10", "replicas = 5");
    let r = run(&text);
    assert_eq!(r.edges[0].stats.ejections, 0);
    assert!(r.edges[0].stats.ejection_overflows > 100);
}

/// §10.6 through the model: when most hosts are ejected, the balancer panics and uses all.
#[test]
fn panic_threshold_spreads_over_all_hosts() {
    let text = outlier_scenario("consecutive_5xx = 5\nmax_ejection_percent = 100")
        .replace("instance = 0\n", "")
        .replace("replicas = 10", "replicas = 4");
    let r = run(&text);
    // Every host fails: ejecting three of four leaves 25 % healthy < 50 %: panic.
    assert!(
        r.edges[0].stats.panic_picks > 1000,
        "{:?}",
        r.edges[0].stats
    );
    assert_eq!(r.edges[0].stats.no_healthy_upstream, 0);
    // With panic disabled, a fully ejected cluster answers "no healthy upstream".
    let text = text.replace(
        "[policy.outlier.od]",
        "[policy.balancer.nopanic]\nkind = \"round_robin\"\npanic_threshold = 0\n[policy.outlier.od]",
    );
    let text = text.replace(
        "outlier = \"od\"",
        "outlier = \"od\", balancer = \"nopanic\"",
    );
    let r = run(&text);
    assert!(
        r.edges[0].stats.no_healthy_upstream > 1000,
        "{:?}",
        r.edges[0].stats
    );
}

/// Four back-end instances, instance 0 ten times slower during the whole run.
fn balancer_scenario(kind: &str, keys: &str) -> String {
    format!(
        r#"
[sim]
name = "lb"
duration = "60s"
seed = 9
[policy.balancer.lb]
kind = "{kind}"
[[service]]
name = "front"
workers = 256
calls = [{{ to = "back", balancer = "lb" }}]
[[service]]
name = "back"
replicas = 4
workers = 2
queue = {{ capacity = 100000 }}
work = {{ dist = "exp", mean = "10ms" }}
[[workload]]
name = "w"
target = "front"
{keys}
arrivals = {{ kind = "poisson", rate = 200 }}
[[fault]]
kind = "slow"
target = "back"
instance = 0
multiply = 4.0
at = "0s"
"#
    )
}

/// §10.2: least request (power of two choices) steers away from the slow instance; round
/// robin keeps feeding it a quarter of the load (ρ = 0.25 × 200 × 40 ms / 2 = 1: unstable).
#[test]
fn least_request_avoids_the_slow_instance() {
    let rr = run(&balancer_scenario("round_robin", ""));
    let p2c = run(&balancer_scenario("least_request", ""));
    let lc = run(&balancer_scenario("least_connections", ""));
    let p99 = |r: &RunResult| r.workloads[0].latency.p99;
    assert!(
        p99(&rr) > 500.0,
        "round robin overloads the slow instance: {}",
        p99(&rr)
    );
    assert!(p99(&p2c) * 5.0 < p99(&rr), "{} vs {}", p99(&p2c), p99(&rr));
    assert!(p99(&lc) * 5.0 < p99(&rr), "{} vs {}", p99(&lc), p99(&rr));
}

/// §10.4: hashing by key sends one key to one instance. Four single-worker instances at
/// 80 requests/s: spread by many keys each runs at ρ = 0.2 (mean 12.5 ms, M/M/1); pinned by
/// one key, one instance runs at ρ = 0.8 (mean 50 ms).
#[test]
fn hash_balancers_pin_keys_to_instances() {
    let text = |kind: &str, keys: u32| {
        format!(
            r#"
[sim]
name = "hash"
duration = "300s"
seed = 3
[policy.balancer.lb]
kind = "{kind}"
[[service]]
name = "front"
workers = 1000
calls = [{{ to = "back", balancer = "lb" }}]
[[service]]
name = "back"
replicas = 4
queue = {{ capacity = 100000 }}
work = {{ dist = "exp", mean = "10ms" }}
[[workload]]
name = "w"
target = "front"
keys = {keys}
arrivals = {{ kind = "poisson", rate = 80 }}
"#
        )
    };
    for kind in ["hash", "ring_hash", "maglev"] {
        let one = run(&text(kind, 1)).workloads[0].latency.mean;
        let many = run(&text(kind, 100_000)).workloads[0].latency.mean;
        // ±20 % covers 300 s of M/M/1 at these loads and the uneven shares of a hash.
        assert!((many - 12.5).abs() < 2.5, "{kind}: many keys {many} ms");
        assert!((one - 50.0).abs() < 10.0, "{kind}: one key {one} ms");
    }
}

/// A thread-per-request API: `browse` calls a healthy catalog, `report` calls a slow
/// reporting service. Without a bulkhead the slow calls take every thread.
fn bulkhead_scenario(bulkhead: &str) -> String {
    format!(
        r#"
[sim]
name = "bh"
duration = "60s"
seed = 2
{bulkhead}
[[service]]
name = "api"
threads = 20
workers = 8
queue = {{ capacity = 50 }}
[[service.endpoint]]
name = "browse"
calls = [{{ to = "catalog", timeout = "2s" }}]
[[service.endpoint]]
name = "report"
calls = [{{ to = "reporting", timeout = "5s" {bh} }}]
[[service]]
name = "catalog"
workers = 8
work = {{ dist = "exp", mean = "5ms" }}
[[service]]
name = "reporting"
workers = 4
queue = {{ capacity = 1000 }}
work = {{ dist = "exp", mean = "50ms" }}
[[workload]]
name = "browsers"
target = "api"
endpoint = "browse"
timeout = "1s"
arrivals = {{ kind = "poisson", rate = 100 }}
[[workload]]
name = "reporters"
target = "api"
endpoint = "report"
timeout = "6s"
arrivals = {{ kind = "poisson", rate = 10 }}
[[fault]]
kind = "slow"
target = "reporting"
multiply = 40.0
at = "10s"
for = "30s"
"#,
        bh = if bulkhead.is_empty() {
            ""
        } else {
            ", bulkhead = \"reports\""
        },
        bulkhead = if bulkhead.is_empty() {
            String::new()
        } else {
            format!("[policy.bulkhead.reports]\n{bulkhead}")
        }
    )
}

/// §7.1: a semaphore bulkhead of 5 on the slow dependency leaves 15 threads to browse.
#[test]
fn bulkhead_isolates_a_slow_dependency() {
    let without = run(&bulkhead_scenario(""));
    let with = run(&bulkhead_scenario(
        "kind = \"semaphore\"\nmax_concurrent = 5",
    ));
    let browse_failed = |r: &RunResult| r.workloads[0].counts.failed();
    assert!(
        browse_failed(&without) > 500,
        "the slow reporting service starves browse: {:?}",
        without.workloads[0].counts
    );
    assert_eq!(browse_failed(&with), 0, "{:?}", with.workloads[0].counts);
    assert!(with
        .edges
        .iter()
        .any(|e| e.to == "reporting" && e.stats.bulkhead_rejected > 0));
    // Envoy limits do the same with a pending queue: 5 connections, 5 pending.
    let envoy = run(&bulkhead_scenario(
        "kind = \"envoy\"\nmax_connections = 5\nmax_pending = 5",
    ));
    assert!(browse_failed(&envoy) < browse_failed(&without) / 10);
}

/// §7.1 B2 through the model: a caller that waits for a permit longer than max_wait is
/// refused at exactly max_wait.
#[test]
fn bulkhead_wait_ends_at_max_wait() {
    let text = r#"
[sim]
name = "bw"
duration = "10s"
[policy.bulkhead.one]
kind = "semaphore"
max_concurrent = 1
max_wait = "100ms"
[[service]]
name = "front"
workers = 16
calls = [{ to = "back", bulkhead = "one" }]
[[service]]
name = "back"
workers = 4
work = { dist = "constant", value = "300ms" }
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "constant", rate = 10 }
"#;
    let r = run(text);
    let w = &r.workloads[0];
    // Every 100 ms a request comes; each holds the permit 300 ms: one in three gets it,
    // the others wait exactly 100 ms and are refused.
    let ok_share = share(w.counts.ok, w.counts.requests);
    assert!((ok_share - 1.0 / 3.0).abs() < 0.05, "{ok_share}");
    // The refused calls fail their requests (a required call), and never reach the back end.
    assert_eq!(r.edges[0].stats.bulkhead_rejected, w.counts.errors);
    assert!(
        r.services[1].counts.requests - w.counts.ok <= 1,
        "one may still run at the end"
    );
    // Each refusal came exactly max_wait after its request (the median is one; HDR buckets
    // are 0.1 % wide).
    let p50 = r.workloads[0].latency.p50;
    assert!((p50 - 100.0).abs() < 0.1, "{:?}", r.workloads[0].latency);
}

/// §9.1 through the model: a token bucket of 100 per second passes 100 per second and
/// answers the rest 429 at once.
#[test]
fn rate_limits_answer_429() {
    let text = |limit: &str| {
        format!(
            r#"
[sim]
name = "rl"
duration = "10s"
[policy.rate_limit.gw]
{limit}
[[service]]
name = "gateway"
workers = 64
rate_limit = "gw"
work = {{ dist = "constant", value = "1ms" }}
[[workload]]
name = "w"
target = "gateway"
arrivals = {{ kind = "constant", rate = 400 }}
"#
        )
    };
    let r = run(&text(
        "kind = \"token_bucket\"\nmax_tokens = 100\nfill_interval = \"1s\"\ntokens_per_fill = 100",
    ));
    let s = &r.services[0];
    // 100 at start, 100 at each of the nine fills before 10 s: 1000 of 3000 pass.
    assert_eq!(s.counts.ok, 1000, "{:?}", s.counts);
    assert_eq!(
        s.counts.ok + s.drops.rate_limited + r.in_flight_at_end,
        s.counts.requests
    );
    assert_eq!(r.workloads[0].counts.rejected, s.drops.rate_limited);
    assert_eq!(
        r.workloads[0].latency.max, 1.0,
        "429s are immediate, served work 1 ms"
    );
    // GCRA at 100/s with no burst: one every 10 ms: every fourth arrival.
    let r = run(&text("kind = \"gcra\"\nrate = 100"));
    let ok = r.services[0].counts.ok;
    assert!((999..=1001).contains(&ok), "{ok}");
    // Per client: each of two callers gets its own bucket.
    let r = run(
        &text("kind = \"gcra\"\nrate = 100\nkey = \"client\"").replace(
            "arrivals = { kind = \"constant\", rate = 400 }",
            "keys = 2\narrivals = { kind = \"constant\", rate = 400 }",
        ),
    );
    let ok = r.services[0].counts.ok;
    assert!((1500..=2000).contains(&ok), "{ok}");
}

/// §9.3 through the model: Resilience4j's limiter makes requests wait for a later cycle (up
/// to its timeout) instead of refusing them: 10 per 100 ms against 200/s passes 100/s, each
/// waiting at most 1 s, and refuses the rest.
#[test]
fn resilience4j_rate_limiter_makes_requests_wait() {
    let text = r#"
[sim]
name = "r4j"
duration = "10s"
[policy.rate_limit.r4j]
kind = "resilience4j"
limit_for_period = 10
refresh_period = "100ms"
timeout = "1s"
[[service]]
name = "s"
workers = 64
rate_limit = "r4j"
work = { dist = "constant", value = "1ms" }
[[workload]]
name = "w"
target = "s"
arrivals = { kind = "constant", rate = 200 }
"#;
    let r = run(text);
    let s = &r.services[0];
    // 100 a second for 10 s, plus the second of reservations still waiting at the end.
    assert!((990..=1010).contains(&s.counts.ok), "{:?}", s.counts);
    assert!(s.drops.rate_limited > 800, "{:?}", s.drops);
    let w = &r.workloads[0].latency;
    assert!(w.max <= 1001.0 && w.max > 900.0, "{w:?}");
}

/// §14.3 / SRE "Handling Overload": a client with adaptive throttling (K = 2) facing a backend
/// that accepts 100 of its 300 requests per second rejects locally with probability
/// (requests − 2·accepts)/(requests + 1) ≈ 1/3.
#[test]
fn client_throttling_converges_to_the_sre_formula() {
    let text = |throttle: &str| {
        format!(
            r#"
[sim]
name = "thr"
duration = "10m"
warmup = "2m"
[policy.rate_limit.cap]
kind = "token_bucket"
max_tokens = 100
tokens_per_fill = 10
fill_interval = "100ms"
[policy.throttle.sre]
k = 2
[[service]]
name = "client"
workers = 1000
calls = [{{ to = "backend", timeout = "1s" {throttle} }}]
[[service]]
name = "backend"
workers = 100
rate_limit = "cap"
work = {{ dist = "constant", value = "1ms" }}
[[workload]]
name = "w"
target = "client"
arrivals = {{ kind = "poisson", rate = 300 }}
"#
        )
    };
    let r = run(&text(", throttle = \"sre\""));
    let e = &r.edges[0].stats;
    let p = share(e.throttled, e.calls);
    assert!((p - 1.0 / 3.0).abs() < 0.02, "rejected locally: {p}");
    // Without throttling every request reaches the backend.
    let r = run(&text(""));
    assert_eq!(r.edges[0].stats.attempts, r.edges[0].stats.calls);
}

/// An overloaded single-worker service (ρ = 1.25 for 20 s).
fn overload_scenario(queue: &str) -> String {
    format!(
        r#"
[sim]
name = "ov"
duration = "40s"
seed = 4
[[service]]
name = "s"
workers = 1
queue = {{ capacity = 100000 {queue} }}
work = {{ dist = "exp", mean = "10ms" }}
[[workload]]
name = "w"
target = "s"
arrivals = {{ kind = "spike", base = 50, peak = 125, at = "10s", for = "20s" }}
"#
    )
}

/// §14: under overload, FIFO makes everyone wait; CoDel, adaptive LIFO and a max wait shed
/// the oldest work so that what is served stays fast.
#[test]
fn shedding_keeps_served_latency_bounded() {
    let fifo = run(&overload_scenario(""));
    let p99 = |r: &RunResult| r.services[0].latency.p99;
    assert!(p99(&fifo) > 5000.0, "FIFO under overload: {}", p99(&fifo));
    assert_eq!(fifo.services[0].drops.shed, 0);
    for q in [
        ", codel = { target = \"5ms\", interval = \"100ms\" }",
        ", discipline = \"adaptive_lifo\"",
        ", max_wait = \"200ms\"",
    ] {
        let r = run(&overload_scenario(q));
        let s = &r.services[0];
        // At least the excess (25/s for 20 s = 500) must go.
        assert!(s.drops.shed > 500, "{q}: {:?}", s.drops);
        assert!(
            p99(&r) < p99(&fifo) / 5.0,
            "{q}: p99 {} vs {}",
            p99(&r),
            p99(&fifo)
        );
        assert_eq!(s.counts.rejected, s.drops.shed);
    }
}

/// §13: an adaptive concurrency limit at the server rejects beyond its limit, so the latency
/// of admitted requests stays near the no-load latency.
#[test]
fn adaptive_concurrency_limits_bound_latency() {
    let base = overload_scenario("").replace("workers = 1", "workers = 1\nconcurrency = \"cl\"");
    for kind in ["aimd", "vegas", "gradient2"] {
        let text = format!(
            "{base}\n[policy.concurrency.cl]\nkind = \"{kind}\"\ninitial = 10\nmin = 1\nmax = 100\n{}",
            if kind == "aimd" { "timeout = \"100ms\"" } else { "" }
        );
        let r = run(&text);
        let s = &r.services[0];
        assert!(s.drops.concurrency_limited > 100, "{kind}: {:?}", s.drops);
        assert!(s.latency.p99 < 1000.0, "{kind}: p99 {}", s.latency.p99);
        assert_eq!(s.concurrency_limit.len(), 1);
    }
}

/// §8.3: A spends 200 ms, then calls B with the remaining budget of the client's 1 s. A burst
/// (20/s for 5 s against B's 3.3/s) leaves B with a long queue of requests whose clients gave
/// up: without deadlines B serves every one of them before anything new, and stays useless for
/// the rest of the run; with propagation and `drop_expired` it skips the dead ones at once.
#[test]
fn deadlines_propagate_and_expired_work_is_dropped() {
    let text = |on: bool| {
        format!(
            r#"
[sim]
name = "dl"
duration = "60s"
[[service]]
name = "a"
workers = 100
propagate_deadline = {on}
work = {{ dist = "constant", value = "200ms" }}
calls = [{{ to = "b" }}]
[[service]]
name = "b"
workers = 1
queue = {{ capacity = 1000 }}
drop_expired = {on}
work = {{ dist = "constant", value = "300ms" }}
[[workload]]
name = "w"
target = "a"
timeout = "1s"
arrivals = {{ kind = "spike", base = 2, peak = 20, at = "10s", for = "5s" }}
"#
        )
    };
    let on = run(&text(true));
    let off = run(&text(false));
    assert!(
        on.services[1].drops.expired > 50,
        "{:?}",
        on.services[1].drops
    );
    assert_eq!(off.services[1].drops.expired, 0);
    let ok = |r: &RunResult| r.workloads[0].counts.ok;
    // 20 before the burst; after it, up to 90 more if B recovers.
    assert!(
        ok(&off) < 40,
        "without deadlines the backlog drowns B: {}",
        ok(&off)
    );
    assert!(
        ok(&on) > 70,
        "with them B serves live requests again: {}",
        ok(&on)
    );
    // No answer ever comes after the client's deadline: A's calls end with it.
    assert!(on.workloads[0].latency.max <= 1000.0);
}

/// A caller in front of two instances; instance 1 crashes for 20 s.
fn crash_scenario(extra: &str) -> String {
    format!(
        r#"
[sim]
name = "cr"
duration = "40s"
[policy.retry.r]
max_attempts = 2
retry_on = ["connect_failure"]
[policy.breaker.b]
kind = "consecutive"
failures = 5
open_for = "5s"
fallback = {{ latency = "2ms" }}
[[service]]
name = "front"
workers = 64
calls = [{{ to = "back", timeout = "5s" {extra} }}]
[[service]]
name = "back"
replicas = 2
workers = 8
work = {{ dist = "exp", mean = "5ms" }}
[[workload]]
name = "w"
target = "front"
arrivals = {{ kind = "poisson", rate = 100 }}
[[fault]]
kind = "crash"
target = "back"
instance = 1
at = "10s"
for = "20s"
"#
    )
}

/// §5 connect-failure: a refused connection retried once lands on the other instance.
#[test]
fn connect_failures_are_retried_on_another_instance() {
    let plain = run(&crash_scenario(""));
    let retried = run(&crash_scenario(", retry = \"r\""));
    assert!(plain.workloads[0].counts.errors > 800);
    assert_eq!(
        retried.workloads[0].counts.errors, 0,
        "{:?}",
        retried.workloads[0].counts
    );
    assert!(retried.edges[0].stats.retries > 800);
}

/// A breaker's fallback answers when the breaker refuses.
#[test]
fn breaker_fallback_answers_when_open() {
    let two = crash_scenario(", breaker = \"b\"")
        .replace("replicas = 2", "replicas = 1")
        .replace("instance = 1\n", "");
    let r = run(&two);
    let e = &r.edges[0].stats;
    assert!(
        e.breaker_rejected > 1000 && e.fallbacks == e.breaker_rejected,
        "{e:?}"
    );
    // Only the calls that reached the dead instance (5 per half-open probe round) fail.
    assert!(
        r.workloads[0].counts.errors < 100,
        "{:?}",
        r.workloads[0].counts
    );
    let no_fallback = two.replace("fallback = { latency = \"2ms\" }\n", "");
    let r2 = run(&no_fallback);
    assert!(r2.workloads[0].counts.errors > 1000);
}

/// A crash loses in-flight work: callers learn at once (connection reset), not by timeout.
#[test]
fn crash_fails_in_flight_requests_at_once() {
    let text = r#"
[sim]
name = "cf"
duration = "20s"
[[service]]
name = "front"
workers = 64
calls = [{ to = "back", timeout = "10s" }]
[[service]]
name = "back"
workers = 100
work = { dist = "constant", value = "2s" }
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "constant", rate = 10 }
[[fault]]
kind = "crash"
target = "back"
at = "5s"
for = "1s"
"#;
    let (r, sink) = run_full(text);
    let w = &r.workloads[0];
    // Requests sent in [3 s, 5 s) were in flight: 20 of them fail at 5 s; those sent during
    // the crash are refused: 10 more.
    assert_eq!(w.counts.errors, 30, "{:?}", w.counts);
    assert_eq!(w.counts.timeouts, 0);
    assert!(sink.events.iter().any(|e| e.kind() == "fault_start"));
    // The lost work is counted as wasted: sent at 3.0, 3.1, ..., 4.9 s, 2.0 + 1.9 + ... + 0.1 = 21 s.
    assert!(
        (r.services[1].wasted_work_ms - 21_000.0).abs() < 1.0,
        "{}",
        r.services[1].wasted_work_ms
    );
    assert_eq!(
        r.in_flight_at_end,
        2 * 20,
        "the last 2 s still run: 20 requests and their 20 calls"
    );
}

/// A pause freezes an instance: arrivals wait, running work stretches by the pause.
#[test]
fn pause_freezes_then_resumes() {
    let text = r#"
[sim]
name = "pz"
duration = "20s"
[[service]]
name = "s"
workers = 100
work = { dist = "constant", value = "100ms" }
[[workload]]
name = "w"
target = "s"
arrivals = { kind = "constant", rate = 10 }
[[fault]]
kind = "pause"
target = "s"
at = "5s"
for = "2s"
"#;
    let r = run(text);
    let w = &r.workloads[0];
    assert_eq!(w.counts.failed(), 0);
    // The request that started at 4.95 s (if any) or arrived at 5.0 s waits the full 2 s:
    // the maximum is 2 s plus its work.
    assert!((w.latency.max - 2100.0).abs() < 1.0, "{}", w.latency.max);
    // 20 requests arrive in the pause and wait 2.0, 1.9, ..., 0.1 s (21 s in all); the one
    // working when it began (sent at 4.9 s, due at 5.0 s) is stretched by the full 2 s.
    let extra = w.latency.mean * w.counts.ok as f64 - 100.0 * w.counts.ok as f64;
    assert!((extra - 23_000.0).abs() < 1.0, "{extra}");
}

/// A random failure process per instance: times to failure and to repair are exponential,
/// so the long-run share of time down is mttr / (mttf + mttr).
#[test]
fn random_failures_follow_mttf_and_mttr() {
    let text = r#"
[sim]
name = "rf"
duration = "2000s"
bucket = "1h"
[[service]]
name = "front"
workers = 64
calls = [{ to = "back", timeout = "1s" }]
[[service]]
name = "back"
replicas = 10
workers = 8
work = { dist = "constant", value = "1ms" }
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "poisson", rate = 100 }
[[fault]]
kind = "random_crash"
target = "back"
at = "0s"
mttf = "40s"
mttr = "10s"
"#;
    let (r, sink) = run_full(text);
    let downs = sink
        .events
        .iter()
        .filter(|e| e.kind() == "instance_down")
        .count();
    // 10 instances × 2000 s / 50 s per cycle ≈ 400 failures (sd ≈ 20).
    assert!((320..480).contains(&downs), "{downs}");
    // Round robin sends each call to an instance down 20 % of the time.
    let p = share(r.workloads[0].counts.errors, r.workloads[0].counts.requests);
    assert!((p - 0.2).abs() < 0.03, "{p}");
}

mod layer_props {
    use super::*;
    use proptest::prelude::*;

    /// A three-service system with a random mix of every layer and fault kind.
    #[allow(clippy::too_many_arguments)]
    fn random_scenario(
        seed: u64,
        balancer: usize,
        outlier: bool,
        bulkhead: usize,
        throttle: bool,
        limiter: usize,
        server: usize,
        queue: usize,
        deadlines: bool,
        fault: usize,
        threads: bool,
        per_call: bool,
        registry: bool,
        autoscale: bool,
    ) -> String {
        let autoscale = if autoscale {
            "autoscale = { target_in_flight = 2, min = 1, max = 5, interval = \"400ms\", provision = \"300ms\", scale_down_window = \"1s\" }"
        } else {
            ""
        };
        let scope = if per_call { "call" } else { "attempt" };
        let canary = if deadlines {
            "[service.canary]\nreplicas = 2\nerror_rate = 0.3\nwork = { dist = \"exp\", mean = \"3ms\" }\nweights = [{ at = \"1s\", weight = 30 }, { at = \"3s\", weight = 100 }]\nrollback = { error_rate = 0.4, window = \"500ms\", min_requests = 20 }"
        } else {
            ""
        };
        let registry = if registry {
            "[registry]\ncache_ttl = \"300ms\"\nheartbeat = \"200ms\"\ncheck_interval = \"200ms\"\nunhealthy_after = \"500ms\"\nremove_after = \"1s\"\nstartup = \"200ms\"\nhealth_check = { interval = \"100ms\", timeout = \"30ms\", failures = 2, successes = 1 }"
        } else {
            ""
        };
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
        let mut call = String::from("to = \"b\", timeout = \"80ms\", retry = \"r\"");
        if per_call || fault == 0 {
            call += ", breaker = \"b\"";
        }
        if balancer < kinds.len() {
            call += ", balancer = \"lb\"";
        }
        if outlier {
            call += ", outlier = \"od\"";
        }
        if bulkhead > 0 {
            call += &format!(", bulkhead = \"bh{bulkhead}\"");
        }
        if throttle {
            call += ", throttle = \"t\"";
        }
        if limiter > 0 {
            call += &format!(", concurrency = \"c{limiter}\"");
        }
        let server = [
            "",
            "rate_limit = \"tb\"",
            "rate_limit = \"gc\"",
            "rate_limit = \"r4j\"",
            "concurrency = \"c1\"",
            "concurrency = \"c2\"",
            "concurrency = \"c3\"",
        ][server];
        let queue = [
            "queue = { capacity = 30 }",
            "queue = { capacity = 30, discipline = \"lifo\" }",
            "queue = { capacity = 30, discipline = \"adaptive_lifo\" }",
            "queue = { capacity = 30, codel = { target = \"2ms\", interval = \"50ms\" } }",
            "queue = { capacity = 30, max_wait = \"20ms\" }",
        ][queue];
        let fault = [
            "kind = \"crash\"\ntarget = \"b\"\ninstance = 1",
            "kind = \"pause\"\ntarget = \"b\"\ninstance = 0",
            "kind = \"pause\"\ntarget = \"a\"",
            "kind = \"random_crash\"\ntarget = \"b\"\nmttf = \"300ms\"\nmttr = \"100ms\"",
            "kind = \"error\"\ntarget = \"b\"\ninstance = 2\np = 0.9",
            "kind = \"reset\"\ntarget = \"a\"\npeer = \"b\"",
            "kind = \"slow\"\ntarget = \"b\"\ninstance = 0\nmultiply = 8.0",
            "kind = \"slow\"\ntarget = \"b\"\nworkers = 1\nmultiply = 2.0\np = 0.5",
            "kind = \"error\"\ntarget = \"b\"\ncode = 429\np = 0.5",
            "kind = \"zone_outage\"\nzone = \"z2\"",
            "kind = \"zone_partition\"\nzone = \"z1\"\npeer_zone = \"z2\"",
        ][fault];
        let threads = if threads { "threads = 8" } else { "" };
        let balancer = kinds.get(balancer).copied().unwrap_or("round_robin");
        format!(
            r#"
[sim]
name = "layers"
duration = "8s"
seed = {seed}
[network]
latency = {{ dist = "exp", mean = "1ms" }}
cross_zone = {{ dist = "exp", mean = "3ms" }}
{registry}
[policy.retry.r]
max_attempts = 3
backoff = {{ kind = "exponential", base = "2ms", cap = "20ms", jitter = "full" }}
[policy.balancer.lb]
kind = "{balancer}"
weights = [1, 2, 3]
zone_aware = {per_call}
[policy.outlier.od]
consecutive_5xx = 3
consecutive_gateway = 3
enforcing_consecutive_gateway = 100
interval = "500ms"
base_ejection = "1s"
max_ejection_percent = 50
success_rate_minimum_hosts = 3
success_rate_request_volume = 10
enforcing_failure_percentage = 100
failure_percentage_minimum_hosts = 3
failure_percentage_request_volume = 10
[policy.bulkhead.bh1]
kind = "semaphore"
max_concurrent = 4
max_wait = "10ms"
scope = "{scope}"
[policy.bulkhead.bh2]
kind = "envoy"
max_connections = 4
max_pending = 4
max_retries = 2
scope = "{scope}"
[policy.breaker.b]
kind = "consecutive"
failures = 5
open_for = "300ms"
scope = "{scope}"
fallback = {{ latency = "1ms", on = "failure" }}
[policy.throttle.t]
window = "2s"
[policy.concurrency.c1]
kind = "aimd"
initial = 5
min = 1
max = 50
timeout = "30ms"
[policy.concurrency.c2]
kind = "vegas"
initial = 5
max = 50
[policy.concurrency.c3]
kind = "gradient2"
initial = 5
min = 1
max = 50
[policy.rate_limit.tb]
kind = "token_bucket"
max_tokens = 20
tokens_per_fill = 2
fill_interval = "10ms"
[policy.rate_limit.r4j]
kind = "resilience4j"
limit_for_period = 3
refresh_period = "10ms"
timeout = "30ms"
[policy.rate_limit.gc]
kind = "gcra"
rate = 150
burst = 10
key = "client"
[[service]]
name = "a"
replicas = 2
zones = ["z1", "z2"]
workers = 8
{threads}
propagate_deadline = {deadlines}
work = {{ dist = "exp", mean = "1ms" }}
calls = [{{ {call} }}, {{ to = "c", timeout = "50ms", required = false }}]
[[service]]
name = "b"
replicas = 3
zones = ["z1", "z2", "z3"]
{autoscale}
workers = 2
drop_expired = {deadlines}
{queue}
{server}
work = {{ dist = "lognormal", mean = "6ms", sigma = 1.0 }}
{canary}
[[service]]
name = "c"
workers = 2
work = {{ dist = "exp", mean = "3ms" }}
[[workload]]
name = "w"
target = "a"
timeout = "400ms"
keys = 50
arrivals = {{ kind = "step", steps = [{{ at = "0s", rate = 250 }}, {{ at = "5s", rate = 0 }}] }}
[[fault]]
at = "1s"
for = "3s"
{fault}
"#
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Whatever the mix of layers and faults: no panic, every request is accounted for,
        /// nothing is left alive once the load has stopped and every timeout has passed, and
        /// the same seed replays the same run.
        #[test]
        fn layers_and_faults_conserve_requests(
            seed in 0u64..1000, balancer in 0usize..10, outlier in proptest::bool::ANY,
            bulkhead in 0usize..3, throttle in proptest::bool::ANY, limiter in 0usize..4,
            server in 0usize..7, queue in 0usize..5, deadlines in proptest::bool::ANY,
            fault in 0usize..11, threads in proptest::bool::ANY, per_call in proptest::bool::ANY,
            registry in proptest::bool::ANY, autoscale in proptest::bool::ANY,
        ) {
            let text = random_scenario(seed, balancer, outlier, bulkhead, throttle, limiter, server, queue, deadlines, fault, threads, per_call, registry, autoscale);
            let (r, sink) = run_full(&text);
            prop_assert_eq!(r.stop, faultline::model::StopReason::Horizon);
            let w = &r.workloads[0];
            prop_assert_eq!(w.counts.requests, w.counts.ok + w.counts.failed() + w.pending_at_end, "{:?}", w);
            prop_assert_eq!(r.in_flight_at_end, 0, "leak:\n{}", text);
            for e in &r.edges {
                prop_assert_eq!(e.stats.ok + e.stats.failed, e.stats.calls, "{:?}", e);
            }
            let again = run(&text);
            prop_assert_eq!(again.events, r.events);
            prop_assert_eq!(sink.events.len() > 2, true);
        }
    }
}
