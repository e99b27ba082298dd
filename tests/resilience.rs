//! Resilience policies end to end: the retry storm and its budgets, breakers stopping a
//! cascade, fault kinds, threads held across calls, retries and hedging (gRFC A6), and
//! property tests of the policy layers against their invariants.

use faultline::model::{RunOptions, RunResult};
use faultline::policy::breaker::State as BreakerState;
use faultline::results::events::Change;
use faultline::scenario::{self, Scenario};
use std::path::Path;

mod common;
use common::{parse as scenario, run_with};

fn run(scn: &Scenario) -> RunResult {
    run_with(scn, RunOptions::default()).0
}

fn load_with(file: &str, sets: &[&str]) -> Scenario {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    scenario::load(Path::new(file), &sets).unwrap_or_else(|e| panic!("{e}"))
}

/// The retry storm: without a budget, retries amplify the load above 2x and the backend
/// stays collapsed after the spike; with an Envoy retry budget, under the same seed,
/// amplification stays below 1.3x and the backend drains its queue.
#[test]
fn retry_storm_needs_a_budget() {
    let storm = run(&load_with("scenarios/retry-storm.toml", &[]));
    let calm = run(&load_with(
        "scenarios/retry-storm.toml",
        &["service.api.calls[0].retry=budgeted"],
    ));
    let amp = |r: &RunResult| r.edges[0].stats.attempts as f64 / r.edges[0].stats.calls as f64;
    assert!(
        amp(&storm) > 2.0,
        "no budget: amplification {}",
        amp(&storm)
    );
    assert!(amp(&calm) < 1.3, "budget: amplification {}", amp(&calm));
    assert!(calm.edges[0].stats.budget_denied > 0);
    assert_eq!(
        storm.workloads[0].counts.requests, calm.workloads[0].counts.requests,
        "same seed, same arrivals"
    );
    assert!(calm.workloads[0].counts.ok > storm.workloads[0].counts.ok);
    // The summary reports the same figure.
    let scn = load_with("scenarios/retry-storm.toml", &[]);
    let v = faultline::report::summary_json(&scn, &storm);
    assert!(
        v["edges"]["api->backend"]["amplification"]
            .as_f64()
            .unwrap()
            > 2.0
    );
    assert_eq!(
        v["services"]["api"]["retries"].as_u64().unwrap(),
        storm.edges[0].stats.retries
    );
}

/// Brooker's retry token bucket (a success deposits 0.1, a retry costs 1): with up to 3
/// retries against a backend failing half its requests, the load is 1 + f + f^2 + f^3 =
/// 1.875x without it and 1 + 0.05 / 0.95 = 1.053x with it; at f = 1 it falls to 1x.
/// Bounds: 20 s at 1000 calls/s, about 5 sd of the attempts-per-call mean either side.
#[test]
fn retry_token_bucket_holds_the_load_near_one_tenth_extra() {
    let scn = load_with(
        "scenarios/validation/retry-amplification.toml",
        &["sim.duration=\"25s\"", "sim.warmup=\"5s\""],
    );
    let v = faultline::report::summary_json(&scn, &run(&scn));
    let amp = |edge: &str| v["edges"][edge]["amplification"].as_f64().unwrap();
    let plain = amp("plain-50->backend-50");
    assert!((plain - 1.875).abs() < 0.04, "no limit, f = 0.5: {plain}");
    let bucket = amp("bucket-50->backend-50");
    assert!(
        (bucket - 1.0 - 0.05 / 0.95).abs() < 0.004,
        "token bucket, f = 0.5: {bucket}"
    );
    let dead = amp("bucket-100->backend-100");
    assert!(dead < 1.001, "token bucket, f = 1: {dead}");
    assert!(
        v["edges"]["bucket-100->backend-100"]["budget_denied"]
            .as_u64()
            .unwrap()
            > 10_000
    );
    assert!((amp("plain-100->backend-100") - 4.0).abs() < 0.01);
}

/// The cascading failure: a slow payment exhausts frontend's threads and the healthy
/// browse path fails; a breaker on slow calls keeps browse's error rate over 5x lower.
#[test]
fn breaker_stops_the_cascade() {
    let rate = |r: &RunResult| {
        let c = &r.workloads[0].counts;
        c.failed() as f64 / (c.ok + c.failed()) as f64
    };
    let (open_loop, sink) = run_with(
        &load_with("scenarios/cascading-failure.toml", &[]),
        RunOptions::default(),
    );
    let guarded = run(&load_with(
        "scenarios/cascading-failure.toml",
        &["service.frontend.breaker=slow-payment"],
    ));
    assert!(
        rate(&open_loop) > 0.03,
        "the cascade did not happen: {}",
        rate(&open_loop)
    );
    assert!(
        rate(&guarded) * 5.0 < rate(&open_loop),
        "breaker {} vs none {}",
        rate(&guarded),
        rate(&open_loop)
    );
    let payment = guarded.edges.iter().find(|e| e.to == "payment").unwrap();
    assert!(payment.stats.breaker_rejected > 0 && payment.breaker_open_s > 10.0);
    // The fault window is in events.csv.
    assert!(sink
        .events
        .iter()
        .any(|e| e.kind() == "fault_start" && e.subject == "payment" && e.t_s == 30.0));
    assert!(sink
        .events
        .iter()
        .any(|e| e.kind() == "fault_end" && e.t_s == 90.0));
}

/// Breaker transitions logged during a run form a legal chain: each starts where the last ended.
#[test]
fn logged_breaker_transitions_are_legal() {
    let (_, sink) = run_with(
        &load_with(
            "scenarios/cascading-failure.toml",
            &["service.frontend.breaker=slow-payment"],
        ),
        RunOptions::default(),
    );
    // Each frontend pod's breaker (frontend/k->payment) follows the state machine.
    let mut state: std::collections::BTreeMap<String, String> = Default::default();
    let mut n = 0;
    for e in sink
        .events
        .iter()
        .filter(|e| e.kind() == "breaker" && e.subject.ends_with("->payment"))
    {
        let detail = e.detail();
        let (from, to) = detail.split_once(" -> ").unwrap();
        let state = state.entry(e.subject.clone()).or_insert("closed".into());
        assert_eq!(from, state, "{} at {}", e.subject, e.t_s);
        assert!(
            matches!(
                (from, to),
                ("closed", "open")
                    | ("open", "half_open")
                    | ("half_open", "open")
                    | ("half_open", "closed")
            ),
            "{from} -> {to}"
        );
        *state = to.to_string();
        n += 1;
    }
    assert!(n >= 3);
}

const FAULTY: &str = r#"
[sim]
name = "faults"
duration = "40s"
seed = 9
[network]
latency = { dist = "constant", value = "1ms" }
[[service]]
name = "front"
workers = 64
calls = [{ to = "back", timeout = "500ms" }]
[[service]]
name = "back"
replicas = 2
workers = 8
work = { dist = "constant", value = "10ms" }
[[workload]]
name = "w"
target = "front"
timeout = "2s"
arrivals = { kind = "constant", rate = 100 }
"#;

/// Every fault kind runs from TOML and has its effect inside its window only.
#[test]
fn every_fault_kind_has_its_effect() {
    let base = run(&scenario(FAULTY));
    let w = |r: &RunResult| r.workloads[0].clone();
    assert_eq!(w(&base).counts.failed(), 0);
    let with = |fault: &str| {
        run(&scenario(&format!(
            "{FAULTY}\n[[fault]]\nat = \"10s\"\nfor = \"10s\"\n{fault}\n"
        )))
    };

    // latency: +100 ms for every request during a quarter of the run.
    let r = with("kind = \"latency\"\ntarget = \"back\"\nadd = \"100ms\"");
    let extra = w(&r).latency.mean - w(&base).latency.mean;
    assert!(
        (extra - 25.0).abs() < 1.5,
        "latency fault added {extra} ms on average"
    );
    // error: half the requests during the window fail: 1/8 of all.
    let r = with("kind = \"error\"\ntarget = \"back\"\np = 0.5");
    let share = w(&r).counts.errors as f64 / w(&r).counts.requests as f64;
    assert!((share - 0.125).abs() < 0.02, "{share}");
    // slow: work x3 during the window raises the back end's busy time by half.
    let r = with("kind = \"slow\"\ntarget = \"back\"\nmultiply = 3.0");
    let ratio = r.services[1].utilization / base.services[1].utilization;
    assert!((ratio - 1.5).abs() < 0.05, "{ratio}");
    // crash of one of two instances: round robin sends it half the calls for a quarter of the run.
    let r = with("kind = \"crash\"\ntarget = \"back\"\ninstance = 1");
    let share = w(&r).counts.errors as f64 / w(&r).counts.requests as f64;
    assert!((share - 0.125).abs() < 0.01, "{share}");
    assert!(r.services[1].counts.requests < base.services[1].counts.requests);
    // partition: every call in the window times out at 500 ms.
    let r = with("kind = \"partition\"\ntarget = \"front\"\npeer = \"back\"");
    assert!(
        (w(&r).counts.errors as i64 - 1000).abs() <= 2,
        "{:?}",
        w(&r).counts
    );
    assert!(r.network_lost >= 999);
    assert_eq!(
        w(&r).latency.max,
        500.0,
        "the per-try timeout ends each partitioned call"
    );
    // reset: the same calls fail fast instead.
    let r = with("kind = \"reset\"\ntarget = \"front\"\npeer = \"back\"");
    assert!((w(&r).counts.errors as i64 - 1000).abs() <= 2);
    assert!(
        w(&r).latency.p99 < 20.0,
        "reset failures are fast: {}",
        w(&r).latency.p99
    );
    // loss: 20 % per message in the window, so 1 - 0.8^2 = 36 % of the window's calls fail.
    let r = with("kind = \"loss\"\ntarget = \"front\"\npeer = \"back\"\np = 0.2");
    let share = w(&r).counts.errors as f64 / 1000.0;
    assert!((share - 0.36).abs() < 0.05, "{share}");
}

/// A thread-per-request pool bounds concurrency while requests wait on calls:
/// 4 threads and 100 ms calls give at most 40 requests per second.
#[test]
fn threads_are_held_across_calls() {
    let text = FAULTY
        .replace("workers = 64", "workers = 64\nthreads = 4")
        .replace("value = \"10ms\"", "value = \"100ms\"")
        .replace("replicas = 2\nworkers = 8", "replicas = 2\nworkers = 64");
    let r = run(&scenario(&text));
    // Completions at front (its clients give up on most of the backlog, so count at the service).
    let done = r.services[0].counts.ok as f64 / 40.0;
    assert!(
        done <= 40.0 && done > 37.0,
        "{done} req/s through 4 threads"
    );
    assert!(
        r.workloads[0].counts.timeouts > 1000,
        "the backlog makes clients time out"
    );
    // Without the thread limit the same system serves the full 100/s.
    let r = run(&scenario(&text.replace("threads = 4\n", "")));
    assert!(r.workloads[0].counts.ok as f64 / 40.0 > 99.0);
}

/// Retries follow their policy: max attempts, retry_on, and per-edge accounting.
#[test]
fn retries_follow_their_policy() {
    let text = format!(
        "{}\n[policy.retry.r]\nmax_attempts = 3\nretry_on = [\"error\"]\n",
        FAULTY
            .replace(
                "timeout = \"500ms\" }",
                "timeout = \"500ms\", retry = \"r\" }"
            )
            .replace(
                "work = { dist = \"constant\", value = \"10ms\" }",
                "work = { dist = \"constant\", value = \"10ms\" }\nerror_rate = 0.5"
            )
    );
    let r = run(&scenario(&text));
    let e = &r.edges[0].stats;
    // Each attempt fails with p = 0.5, so attempts per call = 1 + 0.5 + 0.25 = 1.75, and a call fails with 0.125.
    let amp = e.attempts as f64 / e.calls as f64;
    assert!((amp - 1.75).abs() < 0.05, "{amp}");
    assert!((e.failed as f64 / e.calls as f64 - 0.125).abs() < 0.02);
    // Not retried on what retry_on leaves out.
    let r = run(&scenario(
        &text.replace("retry_on = [\"error\"]", "retry_on = [\"timeout\"]"),
    ));
    assert_eq!(r.edges[0].stats.retries, 0);
}

/// `validate` reports worst-case retry amplification per path (the product of attempts)
/// and timeout inversions (a caller giving up before its callee's retries are done).
#[test]
fn validate_reports_amplification_and_timeout_inversions() {
    let text = r#"
[sim]
name = "inv"
duration = "10s"
[policy.retry.three]
max_attempts = 3
[[service]]
name = "a"
calls = [{ to = "b", timeout = "250ms", retry = "three" }]
[[service]]
name = "b"
calls = [{ to = "c", timeout = "100ms", retry = "three" }]
[[service]]
name = "c"
[[workload]]
name = "w"
target = "a"
arrivals = { kind = "poisson", rate = 1 }
"#;
    let scn = scenario(text);
    let paths = faultline::scenario::analysis::call_paths(&scn.spec, &scn.spec.workloads[0]);
    assert_eq!(paths[0].amplification(), 9);
    let inv = faultline::scenario::analysis::timeout_inversions(&scn.spec);
    assert_eq!(inv.len(), 1);
    assert_eq!(
        inv[0].callee_may_take,
        faultline::time::parse_duration("300ms").unwrap()
    );
    let report = faultline::scenario::analysis::report(&scn.spec, None);
    assert!(report.contains("worst-case amplification 9x"), "{report}");
    assert!(
        report.contains("a -> b times out after 250ms, but b may spend up to 300ms on c"),
        "{report}"
    );
    // A longer caller timeout removes the inversion.
    let fixed = scenario(&text.replace("timeout = \"250ms\"", "timeout = \"400ms\""));
    assert!(faultline::scenario::analysis::timeout_inversions(&fixed.spec).is_empty());
}

/// Regression: a call that fails at once (reset link, open breaker) inside a parallel
/// group must not let the request move on before the group's other calls answer
/// (this leaked requests in the 20-service mesh before the fix).
#[test]
fn instant_failures_inside_a_parallel_group_wait_for_the_group() {
    let text = r#"
[sim]
name = "par"
duration = "20s"
[network]
latency = { dist = "constant", value = "1ms" }
[[service]]
name = "front"
workers = 8
calls = [{ parallel = [{ to = "back", timeout = "1s" }, { to = "other", timeout = "1s" }] }]
[[service]]
name = "back"
workers = 8
work = { dist = "constant", value = "5ms" }
[[service]]
name = "other"
workers = 8
work = { dist = "constant", value = "5ms" }
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "constant", rate = 50 }
[[fault]]
kind = "reset"
target = "front"
peer = "back"
at = "0s"
"#;
    let (r, sink) = run_with(&scenario(text), RunOptions::default());
    let w = &r.workloads[0].counts;
    assert_eq!(
        w.requests,
        w.errors + r.workloads[0].pending_at_end,
        "{w:?}"
    );
    assert!(r.workloads[0].pending_at_end <= 1);
    // Every request waited for `other` (5 ms + 2 x 1 ms) before failing.
    assert!(
        r.workloads[0].latency.mean >= 7.0,
        "{}",
        r.workloads[0].latency.mean
    );
    assert_eq!(
        r.services[2].counts.ok,
        w.requests - r.workloads[0].pending_at_end
    );
    let last = sink
        .rows
        .iter()
        .rev()
        .find(|row| row.name == "front")
        .unwrap();
    assert!(
        last.in_flight <= 1,
        "front leaks requests: {}",
        last.in_flight
    );
}

mod policy_props {
    use super::*;
    use proptest::prelude::*;

    #[allow(clippy::too_many_arguments)]
    fn random_scenario(
        budget: usize,
        breaker: usize,
        fault: usize,
        threads: bool,
        attempts: u32,
        backoff: usize,
        seed: u64,
        hedge: bool,
    ) -> String {
        let budget = [
            "",
            "budget = { kind = \"envoy\" }",
            "budget = { kind = \"finagle\" }",
            "budget = { kind = \"grpc\" }",
            "budget = { kind = \"aws\" }",
            "budget = { kind = \"token_bucket\", max_tokens = 3 }",
        ][budget];
        let breaker = [
            "kind = \"rate\"\nwindow = { kind = \"count\", size = 10 }\nminimum_calls = 5\nopen_for = \"1s\"\nhalf_open_calls = 2",
            "kind = \"rate\"\nwindow = { kind = \"time\", size = 2 }\nminimum_calls = 5\nopen_for = \"500ms\"\nautomatic = true\nmax_wait_half_open = \"300ms\"\nslow_call_duration = \"20ms\"\nslow_call_rate = 0.5",
            "kind = \"consecutive\"\nfailures = 3\nopen_for = \"1s\"\nsuccesses = 2",
        ][breaker];
        let fault = [
            "kind = \"latency\"\ntarget = \"b\"\nadd = \"50ms\"\np = 0.5",
            "kind = \"error\"\ntarget = \"c\"\np = 0.7",
            "kind = \"slow\"\ntarget = \"b\"\nmultiply = 5.0",
            "kind = \"crash\"\ntarget = \"b\"\ninstance = 0",
            "kind = \"partition\"\ntarget = \"a\"\npeer = \"c\"",
            "kind = \"reset\"\ntarget = \"a\"\npeer = \"b\"",
            "kind = \"loss\"\ntarget = \"a\"\npeer = \"b\"\np = 0.3",
        ][fault];
        let backoff = ["", "backoff = { kind = \"fixed\", value = \"5ms\" }", "backoff = { kind = \"exponential\", base = \"2ms\", cap = \"50ms\", jitter = \"equal\" }", "backoff = { kind = \"decorrelated\", base = \"2ms\", cap = \"50ms\" }", "backoff = { kind = \"envoy\" }", "backoff = { kind = \"randomized\", base = \"2ms\", cap = \"50ms\" }", "backoff = { kind = \"google\", base = \"2ms\", cap = \"20ms\", randomization = 0.2 }"][backoff];
        let threads = if threads { "threads = 6" } else { "" };
        let hedge = if hedge { ", hedge = \"hg\"" } else { "" };
        format!(
            r#"
[sim]
name = "prop"
duration = "6s"
seed = {seed}
[network]
latency = {{ dist = "exp", mean = "1ms" }}
[policy.retry.r]
max_attempts = {attempts}
overall_timeout = "300ms"
{backoff}
{budget}
[policy.breaker.b]
{breaker}
[policy.hedge.hg]
max_attempts = 3
delay = "5ms"
percentile = 90
non_fatal = ["error"]
[[service]]
name = "a"
workers = 4
{threads}
queue = {{ capacity = 50 }}
retry = "r"
breaker = "b"
work = {{ dist = "exp", mean = "1ms" }}
calls = [{{ parallel = [{{ to = "b", timeout = "60ms" }}, {{ to = "c", timeout = "60ms", p = 0.7 }}] }}, {{ to = "b", timeout = "40ms", required = false{hedge} }}]
[[service]]
name = "b"
replicas = 2
workers = 2
queue = {{ capacity = 20, discipline = "lifo" }}
work = {{ dist = "lognormal", mean = "8ms", sigma = 1.0 }}
[[service]]
name = "c"
workers = 3
error_rate = 0.1
work = {{ dist = "exp", mean = "5ms" }}
[[workload]]
name = "w"
target = "a"
timeout = "500ms"
arrivals = {{ kind = "poisson", rate = 300 }}
[[workload]]
name = "users"
target = "a"
timeout = "400ms"
arrivals = {{ kind = "closed", users = 5, think = {{ dist = "exp", mean = "20ms" }} }}
[[fault]]
at = "1s"
for = "3s"
{fault}
"#
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Whatever the mix of policies and faults: no panic, every request sent is
        /// answered, timed out or pending, nothing leaks once the load is gone, and
        /// every edge's calls end ok or failed.
        #[test]
        fn policies_and_faults_conserve_requests(
            budget in 0usize..6, breaker in 0usize..3, fault in 0usize..7, threads in proptest::bool::ANY,
            attempts in 1u32..5, backoff in 0usize..7, seed in 0u64..1000, hedge in proptest::bool::ANY,
        ) {
            let text = random_scenario(budget, breaker, fault, threads, attempts, backoff, seed, hedge);
            let scn = scenario::parse("prop.toml", &text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let (r, sink) = run_with(&scn, RunOptions::default());
            prop_assert_eq!(r.stop, faultline::model::StopReason::Horizon);
            for w in &r.workloads {
                let c = &w.counts;
                prop_assert_eq!(c.requests, c.ok + c.failed() + w.pending_at_end, "{:?}", w);
            }
            for e in &r.edges {
                prop_assert!(e.stats.ok + e.stats.failed <= e.stats.calls);
                prop_assert!(e.stats.attempts + e.stats.breaker_rejected <= e.stats.calls * attempts.max(3) as u64);
            }
            // Breaker transitions in events.csv chain legally.
            let mut state = std::collections::BTreeMap::new();
            for ev in &sink.events {
                if let Change::Breaker { from, to } = ev.change {
                    let cur = state.entry(ev.subject.clone()).or_insert(BreakerState::Closed);
                    prop_assert_eq!(*cur, from);
                    *cur = to;
                }
            }
            // The same scenario and seed replay identically.
            let again = run(&scn);
            prop_assert_eq!(again.events, r.events);
        }
    }
}

const HEDGED: &str = r#"
[sim]
name = "hedge"
duration = "DURATION"
seed = 21
[network]
latency = { dist = "constant", value = "0ms" }
[policy.hedge.h]
max_attempts = MAX
delay = "DELAY"
NONFATAL
[[service]]
name = "front"
workers = 1000
calls = [{ to = "back", timeout = "TIMEOUT", hedge = "h" }]
[[service]]
name = "back"
workers = 1000
WORK
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "RATE" }
"#;

fn hedged(
    duration: &str,
    max: u32,
    delay: &str,
    timeout: &str,
    work: &str,
    rate: &str,
    non_fatal: &str,
) -> String {
    HEDGED
        .replace("DURATION", duration)
        .replace("MAX", &max.to_string())
        .replace("DELAY", delay)
        .replace("TIMEOUT", timeout)
        .replace("WORK", work)
        .replace("kind = \"RATE\"", rate)
        .replace("NONFATAL", non_fatal)
}

/// POLICIES.md §6 B1: max 4 attempts, 500 ms apart, callee never answers: attempts go
/// out at 0, 0.5, 1 and 1.5 s; each times out after 3 s, so the call fails at 4.5 s.
#[test]
fn s6_b1_hedges_are_spaced_by_the_delay() {
    let text = hedged(
        "19s",
        4,
        "500ms",
        "3s",
        "work = { dist = \"constant\", value = \"1ms\" }",
        "kind = \"constant\", rate = 0.1",
        "",
    )
        + "[[fault]]\nkind = \"partition\"\ntarget = \"front\"\npeer = \"back\"\nat = \"0s\"\n";
    let text = text.replace(
        "target = \"front\"\narrivals",
        "target = \"front\"\ntimeout = \"10s\"\narrivals",
    );
    let r = run(&scenario(&text));
    let e = &r.edges[0].stats;
    assert_eq!((e.calls, e.attempts, e.hedges), (2, 8, 6), "{e:?}");
    assert_eq!(r.workloads[0].latency.max, 4500.0);
    assert_eq!(r.workloads[0].counts.errors, 2);
}

/// §6 B2: a non-fatal failure sends the next hedge at once; a fatal one ends the call.
#[test]
fn s6_b2_non_fatal_failures_hedge_at_once() {
    let work = "work = { dist = \"constant\", value = \"100ms\" }\nerror_rate = 1.0";
    let r = run(&scenario(&hedged(
        "9500ms",
        3,
        "500ms",
        "3s",
        work,
        "kind = \"constant\", rate = 1",
        "non_fatal = [\"error\"]",
    )));
    let e = &r.edges[0].stats;
    assert_eq!(e.attempts, 3 * e.calls, "{e:?}");
    // Three attempts back to back, 100 ms each.
    assert_eq!(r.workloads[0].latency.max, 300.0);
    let r = run(&scenario(&hedged(
        "9500ms",
        3,
        "500ms",
        "3s",
        work,
        "kind = \"constant\", rate = 1",
        "",
    )));
    assert_eq!(
        r.edges[0].stats.attempts, r.edges[0].stats.calls,
        "errors are fatal by default"
    );
    assert_eq!(r.workloads[0].latency.max, 100.0);
}

/// Hedging cuts the tail (Dean & Barroso): 10 % of answers take 1 s, the rest 10 ms.
/// A hedge after 50 ms makes a call slow only if both attempts are (1 %), and costs
/// P(first attempt slower than 50 ms) = 10 % extra load. 20,000 calls: the extra-load
/// share has a standard error of 0.2 %, so +-1 % is a 5-sigma band.
#[test]
fn hedging_cuts_the_tail_for_ten_percent_more_load() {
    let work = r#"work = { dist = "mixture", parts = [{ weight = 0.9, of = { dist = "constant", value = "10ms" } }, { weight = 0.1, of = { dist = "constant", value = "1s" } }] }"#;
    let plain = run(&scenario(
        &hedged(
            "200s",
            2,
            "50ms",
            "5s",
            work,
            "kind = \"poisson\", rate = 100",
            "",
        )
        .replace(", hedge = \"h\"", ""),
    ));
    let fast = run(&scenario(&hedged(
        "200s",
        2,
        "50ms",
        "5s",
        work,
        "kind = \"poisson\", rate = 100",
        "",
    )));
    assert!(
        plain.workloads[0].latency.p99 > 900.0,
        "{}",
        plain.workloads[0].latency.p99
    );
    assert!(
        fast.workloads[0].latency.p90 < 70.0,
        "{}",
        fast.workloads[0].latency.p90
    );
    let e = &fast.edges[0].stats;
    let extra = e.hedges as f64 / e.calls as f64;
    assert!((extra - 0.10).abs() < 0.01, "extra load {extra}");
    // A slow call needs both attempts slow: 1 %.
    let slow = fast.workloads[0].latency.p99;
    assert!(slow > 900.0 || fast.workloads[0].latency.p999 > 900.0);
    // The losing attempts were cancelled for the caller but their work is counted as wasted.
    assert!(fast.services[1].wasted_work_ms > 0.0);
}

/// A call cannot both hedge and retry.
#[test]
fn hedge_and_retry_are_exclusive() {
    let text = hedged(
        "10s",
        2,
        "10ms",
        "1s",
        "",
        "kind = \"poisson\", rate = 1",
        "",
    )
    .replace("hedge = \"h\" }", "hedge = \"h\", retry = \"r\" }")
        + "[policy.retry.r]\nmax_attempts = 2\n";
    let err = scenario::parse("h.toml", &text, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("hedges or retries, not both"), "{err}");
}
