//! POLICIES.md's numbered behaviours for retries, Envoy's retry state machine, gRPC hedging
//! and deadlines (§2, §5, §6, §8), checked through the whole model: one client, one callee,
//! zero network latency, so every time below is exact.

use faultline::metrics::MemorySink;
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario;

/// One request at t = 0 from `client` (timeout `client_timeout`) to `a`, which calls `b`
/// with the given call options; `b` runs `b_steps`.
fn one_request(policies: &str, call: &str, b: &str, client_timeout: &str) -> RunResult {
    let workers = if b.contains("workers") {
        ""
    } else {
        "workers = 10"
    };
    let text = format!(
        r#"
[sim]
name = "one"
duration = "60s"
{policies}
[[service]]
name = "a"
workers = 10
calls = [{{ to = "b" {call} }}]
[[service]]
name = "b"
{workers}
{b}
[[workload]]
name = "w"
target = "a"
{client_timeout}
arrivals = {{ kind = "step", process = "uniform", steps = [{{ at = "0s", rate = 0.01 }}] }}
"#
    );
    let scn = scenario::parse("one.toml", &text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default());
    assert_eq!(
        r.workloads.last().unwrap().counts.requests,
        1,
        "exactly one request"
    );
    r
}

/// Attempts the callee received.
fn attempts(r: &RunResult) -> u64 {
    r.services[1].counts.requests
}

/// The client's latency of its one request, ms.
fn latency(r: &RunResult) -> f64 {
    r.workloads.last().unwrap().latency.max
}

const ALWAYS_FAILS: &str = "error_rate = 1.0\nwork = { dist = \"constant\", value = \"0ms\" }";

/// §2 B1: Resilience4j defaults (3 attempts, 500 ms fixed wait), always failing callee:
/// 3 calls, 1000 ms of waiting, and the last error surfaces.
#[test]
fn s2_b1_resilience4j_defaults() {
    let r = one_request(
        "[policy.retry.r4j]\nmax_attempts = 3\nbackoff = { kind = \"fixed\", value = \"500ms\" }",
        ", retry = \"r4j\"",
        ALWAYS_FAILS,
        "",
    );
    assert_eq!(attempts(&r), 3);
    assert_eq!(latency(&r), 1000.0);
    assert_eq!(r.workloads[0].counts.errors, 1);
}

/// §2 B2: max_attempts = 1: exactly one call, no wait.
#[test]
fn s2_b2_one_attempt() {
    let r = one_request(
        "[policy.retry.once]\nmax_attempts = 1",
        ", retry = \"once\"",
        ALWAYS_FAILS,
        "",
    );
    assert_eq!(attempts(&r), 1);
    assert_eq!(latency(&r), 0.0);
}

/// §2 B3: exponential(100 ms, ×2), 5 attempts, always failing: waits 100, 200, 400, 800 ms.
#[test]
fn s2_b3_exponential_waits() {
    let r = one_request(
        "[policy.retry.exp]\nmax_attempts = 5\nbackoff = { kind = \"resilience4j\", base = \"100ms\", multiplier = 2.0 }",
        ", retry = \"exp\"",
        ALWAYS_FAILS,
        "",
    );
    assert_eq!(attempts(&r), 5);
    assert_eq!(latency(&r), 1500.0);
}

/// §2 B4: an outcome the policy does not retry ends the call after one attempt.
#[test]
fn s2_b4_ignored_outcome_is_not_retried() {
    let r = one_request(
        "[policy.retry.timeouts]\nmax_attempts = 3\nretry_on = [\"timeout\"]",
        ", retry = \"timeouts\"",
        ALWAYS_FAILS,
        "",
    );
    assert_eq!(attempts(&r), 1);
    assert_eq!(r.workloads[0].counts.errors, 1);
}

/// §5 B1: retry_on 5xx with num_retries 1 (2 attempts): two 503s, the client sees the second
/// after exactly two attempts.
#[test]
fn s5_b1_two_attempts_then_the_error() {
    let r = one_request(
        "[policy.retry.envoy]\nmax_attempts = 2\nbackoff = { kind = \"envoy\" }\nretry_on = [\"error\", \"rejected\", \"timeout\", \"connect_failure\"]",
        ", retry = \"envoy\"",
        ALWAYS_FAILS,
        "",
    );
    assert_eq!(attempts(&r), 2);
    assert_eq!(r.workloads[0].counts.errors, 1);
    // One Envoy back-off in between: uniform in [0, 25 ms).
    assert!(latency(&r) < 25.0);
}

/// §5 B2: route timeout 3 s; the first attempt takes 2.7 s and fails; the retry has 0.3 s
/// left, does not make it, and the client gets a timeout at exactly 3 s, with no third try.
#[test]
fn s5_b2_route_timeout_bounds_the_retries() {
    let r = one_request(
        "[policy.retry.route]\nmax_attempts = 5\noverall_timeout = \"3s\"",
        ", retry = \"route\"",
        "error_rate = 1.0\nwork = { dist = \"constant\", value = \"2700ms\" }",
        "",
    );
    assert_eq!(attempts(&r), 2);
    assert_eq!(latency(&r), 3000.0);
    // The call ended in a timeout; it fails a's request, which the client sees as an error.
    assert_eq!(r.edges[0].stats.failed, 1);
    assert_eq!(r.workloads[0].counts.errors, 1);
}

/// §5 B3: retry_on gateway-error (503/504/reset in faultline's terms: rejected, timeout,
/// connect_failure): a 500 is not retried, a 503 (a full queue) is.
#[test]
fn s5_b3_gateway_error_retries_503_not_500() {
    let policy = "[policy.retry.gw]\nmax_attempts = 3\nretry_on = [\"rejected\", \"timeout\", \"connect_failure\"]";
    let r = one_request(policy, ", retry = \"gw\"", ALWAYS_FAILS, "");
    assert_eq!(attempts(&r), 1, "500: not retried");
    // b's only worker is taken at t = 0 by another client, and b has no queue: every attempt
    // is refused at once with a 503.
    let hogged = "workers = 1\nqueue = { capacity = 0 }\nwork = { dist = \"constant\", value = \"10s\" }\n[[workload]]\nname = \"hog\"\ntarget = \"b\"\narrivals = { kind = \"step\", process = \"uniform\", steps = [{ at = \"0s\", rate = 0.01 }] }";
    let r = one_request(policy, ", retry = \"gw\"", hogged, "");
    assert_eq!(r.services[1].counts.rejected, 3, "503: retried");
}

/// §5 B4 (the part that applies: faultline models 429, not 409): a 429 from a rate limiter is
/// not retried unless the policy lists `rate_limited` (Envoy's envoy-ratelimited).
#[test]
fn s5_b4_429_is_retried_only_when_asked() {
    let closed = "[policy.rate_limit.closed]\nkind = \"token_bucket\"\nmax_tokens = 0\nfill_interval = \"1h\"";
    let b = "rate_limit = \"closed\"\nwork = { dist = \"constant\", value = \"0ms\" }";
    let r = one_request(
        &format!("{closed}\n[policy.retry.gw]\nmax_attempts = 3\nretry_on = [\"error\", \"rejected\", \"timeout\", \"connect_failure\"]"),
        ", retry = \"gw\"",
        b,
        "",
    );
    assert_eq!(attempts(&r), 1, "429 is not a 5xx: not retried");
    let r = one_request(
        &format!("{closed}\n[policy.retry.rl]\nmax_attempts = 3\nretry_on = [\"rate_limited\"]"),
        ", retry = \"rl\"",
        b,
        "",
    );
    assert_eq!(attempts(&r), 3);
    assert_eq!(r.services[1].drops.rate_limited, 3);
}

/// §5 B5: per-try timeout 1 s, 2 retries, the upstream hangs: attempts at 0, 1 s + bo1,
/// 2 s + bo1 + bo2, then a timeout after the third per-try timeout.
#[test]
fn s5_b5_per_try_timeouts() {
    let r = one_request(
        "[policy.retry.pt]\nmax_attempts = 3\nbackoff = { kind = \"envoy\" }",
        ", timeout = \"1s\", retry = \"pt\"",
        "work = { dist = \"constant\", value = \"1h\" }",
        "",
    );
    assert_eq!(attempts(&r), 3);
    // Envoy back-offs: bo1 < 25 ms, bo2 < 50 ms (current code: [0, base · 2^(n−1))).
    assert!((3000.0..3075.0).contains(&latency(&r)), "{}", latency(&r));
    assert_eq!(r.edges[0].stats.failed, 1);
}

/// §6 B3: gRPC caps attempts at 5; faultline refuses a hedging policy above 5 with a clear
/// error rather than silently capping.
#[test]
fn s6_b3_more_than_five_attempts_is_refused() {
    let text = r#"
[sim]
name = "h"
duration = "1s"
[policy.hedge.h]
max_attempts = 7
delay = "10ms"
[[service]]
name = "a"
calls = [{ to = "b", hedge = "h", timeout = "1s" }]
[[service]]
name = "b"
[[workload]]
name = "w"
target = "a"
arrivals = { kind = "poisson", rate = 1 }
"#;
    let e = scenario::parse("h.toml", text, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_attempts") && e.contains("5"), "{e}");
}

/// §6 B4: deadline 1 s, and a back-off longer than what is left: the call ends with a timeout
/// at the deadline and no attempt starts after it.
#[test]
fn s6_b4_backoff_past_the_deadline_ends_at_the_deadline() {
    let r = one_request(
        "[policy.retry.d]\nmax_attempts = 5\noverall_timeout = \"1s\"\nbackoff = { kind = \"fixed\", value = \"800ms\" }",
        ", retry = \"d\"",
        "error_rate = 1.0\nwork = { dist = \"constant\", value = \"300ms\" }",
        "",
    );
    assert_eq!(attempts(&r), 1);
    assert_eq!(latency(&r), 1000.0);
    assert_eq!(r.edges[0].stats.failed, 1);
}

/// §8.3 B1: client deadline 1 s; a spends 200 ms, then calls b with the remaining 800 ms;
/// b needs 900 ms: the client sees the deadline pass at 1 s, a's call ends with it, and b
/// (dropping expired work) does not start its next step.
#[test]
fn s8_3_b1_deadline_propagation() {
    let text = r#"
[sim]
name = "dl"
duration = "10s"
[[service]]
name = "a"
workers = 10
propagate_deadline = true
work = { dist = "constant", value = "200ms" }
calls = [{ to = "b" }]
[[service]]
name = "b"
workers = 10
drop_expired = true
work = { dist = "constant", value = "900ms" }
calls = [{ work = { dist = "constant", value = "100ms" } }]
[[workload]]
name = "w"
target = "a"
timeout = "1s"
arrivals = { kind = "step", process = "uniform", steps = [{ at = "0s", rate = 0.01 }] }
"#;
    let scn = scenario::parse("dl.toml", text, &[]).unwrap();
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default());
    assert_eq!(r.workloads[0].counts.timeouts, 1);
    let e = &r.edges[0].stats;
    assert_eq!(
        (e.attempts, e.failed),
        (1, 1),
        "a's call timed out with the deadline"
    );
    // b finished its 900 ms step at 1.1 s, past the deadline: the 100 ms step never ran.
    assert_eq!(r.services[1].drops.expired, 1);
    assert_eq!(r.services[1].wasted_work_ms, 900.0);
}
