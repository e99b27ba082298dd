//! The resilience layers in the gallery's scenarios and in call scope: bulkheads, deadlines,
//! outlier ejection and shedding as the gallery tells them; a permit or a breaker result per
//! call rather than per attempt; error and slow faults; a breaker over its own bulkhead.

use faultline::metrics::MemorySink;
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario;

mod common;
use common::{run_full, share};

fn run(text: &str) -> RunResult {
    run_full(text).0
}

fn load_run(file: &str, sets: &[&str]) -> RunResult {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scn = scenario::load(std::path::Path::new(file), &sets).unwrap_or_else(|e| panic!("{e}"));
    World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default())
}

fn error_rate(r: &RunResult, wl: usize) -> f64 {
    let c = &r.workloads[wl].counts;
    share(c.failed(), c.requests)
}

/// scenarios/bulkhead.toml: what its header promises.
#[test]
fn gallery_bulkhead_contains_the_slow_dependency() {
    let f = "scenarios/bulkhead.toml";
    let without = load_run(f, &[]);
    assert!(error_rate(&without, 0) > 0.2, "{}", error_rate(&without, 0));
    for variant in ["per-dependency", "envoy-pool"] {
        let with = load_run(f, &[&format!("service.api.bulkhead={variant}")]);
        assert_eq!(error_rate(&with, 0), 0.0, "{variant}");
        let e = with.edges.iter().find(|e| e.to == "reporting").unwrap();
        assert!(e.stats.bulkhead_rejected > 0, "{variant}: {:?}", e.stats);
    }
}

/// scenarios/timeout-inversion.toml: validate flags it; deadlines cut waste and errors.
#[test]
fn gallery_timeout_inversion_is_fixed_by_deadlines() {
    let f = "scenarios/timeout-inversion.toml";
    let scn = scenario::load(std::path::Path::new(f), &[]).unwrap();
    let inversions = faultline::scenario::analysis::timeout_inversions(&scn.spec);
    assert_eq!(inversions.len(), 1, "{inversions:?}");
    assert!(!inversions[0].bounded);
    let fixed = scenario::load(
        std::path::Path::new(f),
        &["service.mid.propagate_deadline=true".to_string()],
    )
    .unwrap();
    assert!(faultline::scenario::analysis::timeout_inversions(&fixed.spec)[0].bounded);
    let before = load_run(f, &[]);
    let after = load_run(
        f,
        &[
            "service.front.propagate_deadline=true",
            "service.mid.propagate_deadline=true",
            "service.backend.drop_expired=true",
        ],
    );
    let amp = |r: &RunResult| {
        let e = r.edges.iter().find(|e| e.from == "mid").unwrap();
        share(e.stats.attempts, e.stats.calls)
    };
    assert!(
        amp(&before) > 1.5 && amp(&after) < 1.05,
        "{} {}",
        amp(&before),
        amp(&after)
    );
    let wasted = |r: &RunResult| r.services[2].wasted_work_ms;
    assert!(
        wasted(&after) * 3.0 < wasted(&before),
        "{} {}",
        wasted(&after),
        wasted(&before)
    );
    assert!(error_rate(&after, 0) * 3.0 < error_rate(&before, 0));
}

/// scenarios/outlier-ejection.toml: ejection cuts the errors a hundredfold; a max ejection
/// percent below one host's share refuses every ejection.
#[test]
fn gallery_outlier_ejection() {
    let f = "scenarios/outlier-ejection.toml";
    let before = load_run(f, &[]);
    let after = load_run(f, &["service.front.outlier=envoy"]);
    let strict = load_run(
        f,
        &[
            "service.front.outlier=envoy",
            "policy.outlier.envoy.max_ejection_percent=5",
        ],
    );
    assert!((error_rate(&before, 0) - 0.094).abs() < 0.01);
    assert!(error_rate(&after, 0) * 100.0 < error_rate(&before, 0));
    assert_eq!(after.edges[0].stats.ejections, 3);
    assert_eq!(strict.edges[0].stats.ejections, 0);
    assert_eq!(error_rate(&strict, 0), error_rate(&before, 0));
}

/// scenarios/overload-shedding.toml: each shedding policy brings the error rate down to
/// about the unavoidable excess (100/s for 30 s of 33 000 requests: 9 %) and keeps served
/// latency near the no-load one.
#[test]
fn gallery_overload_shedding() {
    let f = "scenarios/overload-shedding.toml";
    let fifo = load_run(f, &[]);
    assert!(error_rate(&fifo, 0) > 0.5);
    assert!(fifo.services[0].latency.p99 > 2000.0);
    for v in [
        "service.api.queue.discipline=adaptive_lifo",
        "service.api.queue.max_wait=100ms",
        "service.api.concurrency=gradient2",
    ] {
        let r = load_run(f, &[v]);
        assert!(error_rate(&r, 0) < 0.13, "{v}: {}", error_rate(&r, 0));
        assert!(
            r.services[0].latency.p99 < 200.0,
            "{v}: {}",
            r.services[0].latency.p99
        );
    }
}

/// A caller retrying a callee that always fails: 3 attempts, 110 ms apart, 20 calls a second
/// (110 ms so that no retry coincides with an arrival).
fn scope_scenario(policy: &str, call: &str) -> String {
    format!(
        r#"
[sim]
name = "scope"
duration = "10s"
[policy.retry.r]
max_attempts = 3
backoff = {{ kind = "fixed", value = "110ms" }}
{policy}
[[service]]
name = "a"
workers = 100
calls = [{{ to = "b", retry = "r" {call} }}]
[[service]]
name = "b"
workers = 100
error_rate = 1.0
work = {{ dist = "constant", value = "0ms" }}
[[workload]]
name = "w"
target = "a"
arrivals = {{ kind = "constant", rate = 20 }}
"#
    )
}

/// §19: where a bulkhead sits. Inside the retries (default) it is held only while an attempt
/// runs (0 ms here: never contended); outside, a call holds it through its back-offs (220 ms),
/// so with one permit only the first call of every five (250 ms) gets it.
#[test]
fn bulkhead_scope_call_holds_the_permit_across_retries() {
    let policy = |scope: &str| {
        format!(
            "[policy.bulkhead.one]\nkind = \"semaphore\"\nmax_concurrent = 1\nscope = \"{scope}\""
        )
    };
    let inside = run(&scope_scenario(&policy("attempt"), ", bulkhead = \"one\""));
    let outside = run(&scope_scenario(&policy("call"), ", bulkhead = \"one\""));
    assert_eq!(inside.edges[0].stats.bulkhead_rejected, 0);
    let refused = share(
        outside.edges[0].stats.bulkhead_rejected,
        outside.edges[0].stats.calls,
    );
    assert!((refused - 0.8).abs() < 0.01, "{refused}");
    // Refused calls make no attempt at all (the last admitted one may still be retrying).
    let e = &outside.edges[0].stats;
    let admitted = e.calls - e.bulkhead_rejected;
    assert!(
        (3 * admitted - 2..=3 * admitted).contains(&e.attempts),
        "{e:?}"
    );
}

/// §19: where a breaker sits. Inside the retries every attempt is a result: the 5th failure
/// comes at 150 ms and the breaker opens after 5 attempts. Outside, a call's three attempts
/// count once: the 5th call's result comes at 0.2 + 0.22 = 0.42 s, by which time 9 calls
/// (sent at 0 to 400 ms) hold permits and make all their 27 attempts.
#[test]
fn breaker_scope_call_sees_one_result_per_call() {
    let policy = |scope: &str| {
        format!("[policy.breaker.b]\nkind = \"consecutive\"\nfailures = 5\nopen_for = \"1h\"\nscope = \"{scope}\"")
    };
    let inside = run(&scope_scenario(&policy("attempt"), ", breaker = \"b\""));
    let outside = run(&scope_scenario(&policy("call"), ", breaker = \"b\""));
    // Attempts that reached b before the breaker opened.
    assert_eq!(inside.services[1].counts.requests, 5);
    assert_eq!(outside.services[1].counts.requests, 27);
    assert_eq!(
        outside.edges[0].stats.breaker_rejected,
        outside.edges[0].stats.calls - 9
    );
}

/// A front end calling a back end of two instances for 40 s at 100/s; `fault` hits the back
/// end from 10 s to 30 s.
fn fault_scenario(fault: &str) -> String {
    format!(
        r#"
[sim]
name = "fx"
duration = "40s"
seed = 6
[[service]]
name = "front"
workers = 64
calls = [{{ to = "back", timeout = "2s" }}]
[[service]]
name = "back"
replicas = 2
workers = 4
queue = {{ capacity = 100000 }}
work = {{ dist = "constant", value = "10ms" }}
[[workload]]
name = "w"
target = "front"
arrivals = {{ kind = "constant", rate = 100 }}
[[fault]]
target = "back"
at = "10s"
for = "20s"
{fault}
"#
    )
}

/// Error injection answers with the status asked for: 500 an error, 503 a rejection, 429 a
/// rate limit, for the share of requests asked for.
#[test]
fn error_faults_answer_with_their_code() {
    for (code, errors, rejected) in [(500, true, false), (503, false, true), (429, false, true)] {
        let r = run(&fault_scenario(&format!(
            "kind = \"error\"\ncode = {code}\np = 0.5"
        )));
        let b = &r.services[1].counts;
        // Half of the 2000 requests in the window.
        let hit = if errors { b.errors } else { b.rejected };
        assert!((hit as i64 - 1000).abs() < 100, "{code}: {b:?}");
        assert_eq!(b.errors > 0, errors, "{code}");
        assert_eq!(b.rejected > 0, rejected, "{code}");
    }
}

/// A slow fault with fewer workers: 1 worker of 10 ms for 50/s per instance is ρ = 0.5, so
/// requests queue (M/D/1 would wait 5 ms; round robin makes arrivals more regular, so less),
/// where 4 workers hardly ever do.
#[test]
fn slow_fault_can_take_workers_away() {
    let poisson = |f: &str| {
        fault_scenario(f).replace(
            "kind = \"constant\", rate = 100",
            "kind = \"poisson\", rate = 100",
        )
    };
    let base = run(&poisson("kind = \"slow\"\nmultiply = 1.0\nworkers = 4"));
    let fewer = run(&poisson("kind = \"slow\"\nworkers = 1"));
    let wait = |r: &RunResult| r.services[1].queue_wait.mean;
    assert!(wait(&base) < 0.1, "{}", wait(&base));
    assert!(wait(&fewer) > 0.5, "{}", wait(&fewer));
    assert_eq!(fewer.workloads[0].counts.failed(), 0);
    // Work x3 for a third of the requests: busy time rises by 2/3 in the window, 1/3 overall.
    let third = run(&fault_scenario(
        "kind = \"slow\"\nmultiply = 3.0\np = 0.3333",
    ));
    let ratio = third.services[1].utilization / base.services[1].utilization;
    assert!((ratio - 4.0 / 3.0).abs() < 0.03, "{ratio}");
}

/// A breaker over the caller's own bulkhead: the bulkhead's refusals are failures by
/// default, as Resilience4j records every exception (BulkheadFullException included), so
/// the breaker opens when the bulkhead is full; with `ignore = ["refused"]` (R4J's
/// ignoreExceptions) they count neither way and it never opens. The callee itself never
/// fails: it is only slow.
fn breaker_over_bulkhead(breaker: &str) -> String {
    format!(
        r#"
[sim]
name = "breaker-over-bulkhead"
duration = "30s"
seed = 3
[policy.breaker.b]
kind = "rate"
window = {{ kind = "count", size = 20 }}
minimum_calls = 10
failure_rate = 0.5
open_for = "5s"
{breaker}
[policy.bulkhead.small]
kind = "semaphore"
max_concurrent = 2
max_wait = "0s"
[[service]]
name = "api"
workers = 64
calls = [{{ to = "slow", timeout = "10s", breaker = "b", bulkhead = "small" }}]
[[service]]
name = "slow"
workers = 64
work = {{ dist = "constant", value = "200ms" }}
[[workload]]
name = "w"
target = "api"
arrivals = {{ kind = "poisson", rate = 50 }}
"#
    )
}

#[test]
fn a_breaker_records_its_own_bulkheads_refusals_unless_told_to_ignore_them() {
    let edge = |r: &RunResult| r.edges.iter().find(|e| e.to == "slow").unwrap().clone();
    let default = run(&breaker_over_bulkhead(""));
    let e = edge(&default);
    assert!(e.stats.bulkhead_rejected > 0, "{:?}", e.stats);
    assert!(
        e.stats.breaker_rejected > 100,
        "refusals are failures: the breaker opens: {:?}",
        e.stats
    );
    let ignoring = run(&breaker_over_bulkhead("ignore = [\"refused\"]"));
    let e = edge(&ignoring);
    assert!(e.stats.bulkhead_rejected > 100, "{:?}", e.stats);
    assert_eq!(
        e.stats.breaker_rejected, 0,
        "ignored refusals never open it: {:?}",
        e.stats
    );
    // An outcome both recorded and ignored is refused, at the `ignore` line.
    let both = breaker_over_bulkhead("record = [\"timeout\", \"refused\"]\nignore = [\"refused\"]");
    let err = scenario::parse("both.toml", &both, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("both recorded and ignored"), "{err}");
    assert!(err.contains("both.toml:13:"), "{err}");
}
