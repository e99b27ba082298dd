//! Caller-side state per caller instance: each caller instance
//! keeps its own breakers, outlier detector and balancer, as every pod's sidecar does;
//! `state = "service"` shares one per calling service.

mod common;

use common::run_text;
use faultline::metrics::StateEvent;
use std::collections::BTreeMap;

/// Five api pods call three db instances; db instance 0 fails every request from 10 s to
/// 30 s. Each pod's breaker (30 % of its last 10 calls failed) sees only its own calls.
fn pods(state: &str) -> String {
    format!(
        r#"
[sim]
name = "pods"
duration = "40s"
seed = 5

[policy.breaker.b]
kind = "rate"
window = {{ kind = "count", size = 10 }}
minimum_calls = 10
failure_rate = 0.3
open_for = "2s"
{state}

[[service]]
name = "api"
replicas = 5
workers = 16
calls = [{{ to = "db", timeout = "1s", breaker = "b" }}]

[[service]]
name = "db"
replicas = 3
workers = 16
work = {{ dist = "exp", mean = "2ms" }}

[[workload]]
name = "w"
target = "api"
arrivals = {{ kind = "poisson", rate = 200 }}

[[fault]]
kind = "error"
target = "db"
instance = 0
p = 1.0
at = "10s"
for = "20s"
"#
    )
}

/// When each breaker (by subject) first opened.
fn first_opens(events: &[StateEvent]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind() == "breaker") {
        if e.detail().ends_with("-> open") {
            out.entry(e.subject.clone()).or_insert(e.t_s);
        }
    }
    out
}

#[test]
fn per_instance_breakers_open_at_different_times_and_a_shared_one_once() {
    let (r, events) = run_text("pods.toml", &pods("state = \"instance\""), &[]);
    let opens = first_opens(&events);
    // Every pod round-robins over db: each sees a third of its calls fail and opens its own
    // breaker, each at a time of its own.
    assert_eq!(opens.len(), 5, "{opens:?}");
    assert!(
        opens
            .keys()
            .all(|k| k.starts_with("api/") && k.ends_with("->db")),
        "{opens:?}"
    );
    let times: std::collections::BTreeSet<u64> = opens.values().map(|t| (t * 1e9) as u64).collect();
    assert_eq!(times.len(), 5, "all at once: {opens:?}");
    let e = &r.edges[0];
    assert_eq!((e.callers, e.breaker_states.len()), (Some(5), 5));

    let (r, events) = run_text("pods.toml", &pods("state = \"service\""), &[]);
    let opens = first_opens(&events);
    assert_eq!(opens.keys().collect::<Vec<_>>(), ["api->db"], "{opens:?}");
    assert_eq!(
        (r.edges[0].callers, r.edges[0].breaker_states.len()),
        (None, 1)
    );
}

#[test]
fn a_service_can_set_the_scope_for_its_calls_and_a_policy_overrides_it() {
    let shared = pods("").replace(
        "name = \"api\"\nreplicas = 5",
        "name = \"api\"\npolicy_state = \"service\"\nreplicas = 5",
    );
    let (r, _) = run_text("pods.toml", &shared, &[]);
    assert_eq!(r.edges[0].callers, None);
    let own = pods("state = \"instance\"").replace(
        "name = \"api\"\nreplicas = 5",
        "name = \"api\"\npolicy_state = \"service\"\nreplicas = 5",
    );
    let (r, _) = run_text("pods.toml", &own, &[]);
    assert_eq!(r.edges[0].callers, Some(5));
}

#[test]
fn each_callers_outlier_detector_ejects_on_its_own() {
    // Outlier detection per pod: db 0 fails, and each pod ejects it after five of its own
    // consecutive failures, at its own time; a host ejected by one pod is still called by
    // a pod that has not seen five failures yet.
    let text = pods("").replace(
        "calls = [{ to = \"db\", timeout = \"1s\", breaker = \"b\" }]",
        "calls = [{ to = \"db\", timeout = \"1s\", outlier = \"o\" }]",
    ) + "\n[policy.outlier.o]\nconsecutive_5xx = 5\ninterval = \"1s\"\nmax_ejection_percent = 50\nstate = \"instance\"\n";
    let (r, events) = run_text("pods.toml", &text, &[]);
    let ejections: BTreeMap<String, f64> = events
        .iter()
        .filter(|e| e.kind() == "outlier" && e.detail().starts_with("ejected"))
        .fold(BTreeMap::new(), |mut m, e| {
            m.entry(e.subject.clone()).or_insert(e.t_s);
            m
        });
    assert_eq!(ejections.len(), 5, "{ejections:?}");
    assert!(
        ejections.keys().all(|k| k.ends_with("->db/0")),
        "{ejections:?}"
    );
    let (first, last) = (
        ejections.values().cloned().fold(f64::MAX, f64::min),
        ejections.values().cloned().fold(0.0, f64::max),
    );
    assert!(last > first, "all pods ejected at once: {ejections:?}");
    assert!(r.edges[0].stats.ejections >= 5, "{:?}", r.edges[0].stats);
    // Summed over the pods: each still has db 0 out at the end (ejections grow longer each
    // time), and none ejected more than it (max_ejection_percent 50 of 3 hosts).
    assert_eq!(r.edges[0].ejected_at_end, Some(5));
}

/// Twenty api pods spread 700 requests a second over ten single-worker db instances (10 ms
/// each: 70 % busy) with power-of-two-choices least request.
fn herd(state: &str) -> String {
    format!(
        r#"
[sim]
name = "herd"
duration = "60s"
warmup = "5s"
seed = 9

[policy.balancer.p2c]
kind = "least_request"
choices = 2
{state}

[[service]]
name = "api"
replicas = 20
workers = 64
calls = [{{ to = "db", timeout = "5s", balancer = "p2c" }}]

[[service]]
name = "db"
replicas = 10
workers = 1
queue = {{ capacity = 100000 }}
work = {{ dist = "exp", mean = "10ms" }}

[[workload]]
name = "w"
target = "api"
arrivals = {{ kind = "poisson", rate = 700 }}
"#
    )
}

#[test]
fn independent_least_request_pickers_balance_worse_than_a_shared_one() {
    // One shared picker sees every request in flight: it is join-the-shortest-of-two over
    // the ten queues, and waits stay short. Twenty pickers each see only their own
    // requests (a twentieth of the load), so their choices are nearly random: each db
    // instance is close to an M/M/1 queue at 70 %, whose mean time in system is
    // 10 ms / (1 - 0.7) = 33 ms. Expected direction: per-instance pickers herd and wait
    // longer; by how much is the measured difference.
    let mean = |state: &str| {
        let (r, _) = run_text("herd.toml", &herd(state), &[]);
        r.workloads[0].latency.mean
    };
    let (shared, own) = (mean("state = \"service\""), mean("state = \"instance\""));
    eprintln!("least request, mean latency: shared {shared:.2} ms, per instance {own:.2} ms");
    // Shared: the mean-field limit of power-of-two choices at 70 % (Mitzenmacher) is
    // 10 ms x sum over i >= 1 of 0.7^(2^i - 2) = 16.1 ms, plus about 1 ms of network.
    assert!((15.0..20.0).contains(&shared), "shared {shared} ms");
    assert!(
        own > 1.3 * shared,
        "shared {shared} ms, per instance {own} ms"
    );
    // The independent pickers do no worse than random choice would (M/M/1: 33 ms, plus
    // the network; 60 s of 700/s keeps the sampling error near 2 ms).
    assert!(own < 40.0, "per instance {own} ms");
}

/// Per-instance figures add up to their service's, in scenarios with crashes, retries,
/// timeouts, rejections and autoscaling.
#[test]
fn instance_figures_add_up_to_the_service() {
    for f in [
        "scenarios/stale-discovery.toml",
        "scenarios/thundering-herd.toml",
        "scenarios/bulkhead.toml",
        "scenarios/retry-storm.toml",
    ] {
        let (r, _) = common::run_file(f, &[]);
        for s in &r.services {
            let sum = |of: fn(&faultline::metrics::Counts) -> u64| -> u64 {
                s.instances.iter().map(|x| of(&x.counts)).sum()
            };
            let c = &s.counts;
            assert_eq!(sum(|c| c.requests), c.requests, "{f} {}", s.name);
            assert_eq!(sum(|c| c.ok), c.ok, "{f} {}", s.name);
            assert_eq!(sum(|c| c.errors), c.errors, "{f} {}", s.name);
            assert_eq!(sum(|c| c.rejected), c.rejected, "{f} {}", s.name);
            assert_eq!(sum(|c| c.timeouts), c.timeouts, "{f} {}", s.name);
            // Utilisation: the instances' shares sum to the service's (all ran throughout,
            // or were restarted; work is counted where it ends).
            let u: f64 =
                s.instances.iter().map(|x| x.utilization).sum::<f64>() / s.instances.len() as f64;
            assert!(
                (u - s.utilization).abs() < 0.02,
                "{f} {}: {u} vs {}",
                s.name,
                s.utilization
            );
        }
    }
}

#[test]
fn round_robin_spreads_requests_evenly_and_least_request_avoids_a_slow_instance() {
    // Ten db instances, one of them ten times slower: round robin gives it its tenth;
    // shared least request sends it far less.
    let slow = |balancer: &str| {
        let text = herd("state = \"service\"")
            .replace(", balancer = \"p2c\"", balancer)
            .replace("rate = 700", "rate = 300")
            + "\n[[fault]]\nkind = \"slow\"\ntarget = \"db\"\ninstance = 0\nmultiply = 10\np = 1.0\nat = \"0s\"\n";
        let (r, _) = run_text("herd.toml", &text, &[]);
        let db = r.services.iter().find(|s| s.name == "db").unwrap().clone();
        db.instances[0].counts.requests as f64 / db.counts.requests as f64
    };
    let rr = slow("");
    let lr = slow(", balancer = \"p2c\"");
    assert!((rr - 0.1).abs() < 0.01, "round robin: {rr}");
    assert!(lr < 0.05, "least request: {lr}");
}

#[test]
fn an_unknown_state_is_refused_at_its_line() {
    let bad = pods("state = \"pod\"");
    let err = refusal(&bad);
    assert!(
        err.contains("policy.breaker.b.state: unknown state \"pod\"")
            && err.contains("\"instance\""),
        "{err}"
    );
    let line = bad.lines().position(|l| l == "state = \"pod\"").unwrap() + 1;
    assert!(err.contains(&format!("pods.toml:{line}:")), "{err}");
    let bad = pods("").replace(
        "name = \"api\"",
        "name = \"api\"\npolicy_state = \"shared\"",
    );
    let err = refusal(&bad);
    assert!(
        err.contains("service[0].policy_state: unknown state \"shared\""),
        "{err}"
    );
}

/// The error a scenario text is refused with.
fn refusal(text: &str) -> String {
    match faultline::scenario::parse("pods.toml", text, &[]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    }
}

/// Eight front pods, each with its own round robin over five backends, behind a client that
/// round-robins over the pods. Were every pod's index to start at host 0 (as a naive picker
/// does), request n would reach pod n mod 8 and go to backend (n div 8) mod 5: bursts of
/// eight on one backend. Envoy seeds each picker at random (`seed_`), and so does faultline:
/// round robin then queues less than random picks, as it should.
#[test]
fn per_pod_round_robin_pickers_do_not_move_in_lockstep() {
    let text = |kind: &str| {
        format!(
            r#"
[sim]
name = "rr"
duration = "60s"
seed = 21

[policy.balancer.b]
kind = "{kind}"

[[service]]
name = "front"
replicas = 8
workers = 64
calls = [{{ to = "back", timeout = "1s", balancer = "b" }}]

[[service]]
name = "back"
replicas = 5
workers = 2
work = {{ dist = "exp", mean = "8ms" }}

[[workload]]
name = "w"
target = "front"
arrivals = {{ kind = "poisson", rate = 400 }}
"#
        )
    };
    let (rr, _) = run_text("rr.toml", &text("round_robin"), &[]);
    let (random, _) = run_text("rr.toml", &text("random"), &[]);
    let (p50_rr, p50_random) = (rr.workloads[0].latency.p50, random.workloads[0].latency.p50);
    // In lockstep round robin's median was 60 % worse than random's (10.0 against 6.3 ms).
    assert!(
        p50_rr < p50_random,
        "round robin p50 {p50_rr} ms, random {p50_random} ms"
    );
}

/// `scenarios/lb-slow-instance.toml`: what its header promises, by direction and band.
#[test]
fn lb_slow_instance_least_request_routes_round_the_slow_instance() {
    let f = "scenarios/lb-slow-instance.toml";
    let run = |sets: &[&str]| common::run_file(f, sets).0;
    let slow_share = |r: &faultline::model::RunResult| {
        let c = r.services.iter().find(|s| s.name == "catalog").unwrap();
        c.instances[2].counts.requests as f64 / c.counts.requests as f64
    };
    let error_rate = |r: &faultline::model::RunResult| {
        let c = &r.workloads[0].counts;
        c.failed() as f64 / (c.ok + c.failed()) as f64
    };
    let rr = run(&[]);
    // Round robin gives the slow instance its fifth: a sixth of its calls for a minute of
    // the 110 s measured fail, about 10 %.
    assert!((0.19..0.21).contains(&slow_share(&rr)));
    assert!(
        (0.08..0.13).contains(&error_rate(&rr)),
        "{}",
        error_rate(&rr)
    );
    let ring = run(&["service.front.calls[0].balancer=ring"]);
    assert!(error_rate(&ring) > 0.05, "hashing cannot move keys off it");
    let p2c = run(&["service.front.calls[0].balancer=p2c"]);
    assert_eq!(p2c.workloads[0].counts.failed(), 0);
    assert!(slow_share(&p2c) < 0.17, "{}", slow_share(&p2c));
    let shared = run(&[
        "service.front.calls[0].balancer=p2c",
        "policy.balancer.p2c.state=service",
    ]);
    assert_eq!(shared.workloads[0].counts.failed(), 0);
    assert!(
        shared.workloads[0].latency.p99 < p2c.workloads[0].latency.p99,
        "one picker sees every pod's requests in flight: shared p99 {} ms, per pod {} ms",
        shared.workloads[0].latency.p99,
        p2c.workloads[0].latency.p99
    );
}

/// `scenarios/one-pod-bad-day.toml`: only the zone-a pods' breakers move; a shared breaker
/// never opens; per-pod outlier detection ejects the bad instance in those pods only.
#[test]
fn one_pod_bad_day_opens_some_breakers_not_others() {
    let f = "scenarios/one-pod-bad-day.toml";
    let subjects = |events: &[StateEvent], kind: &str| -> Vec<String> {
        let mut s: Vec<String> = events
            .iter()
            .filter(|e| e.kind() == kind)
            .map(|e| e.subject.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let (own, events) = common::run_file(f, &[]);
    assert_eq!(subjects(&events, "breaker"), ["api/0->recs", "api/3->recs"]);
    assert!(own.workloads[0].counts.failed() < 300);
    assert!(own.edges[0].stats.fallbacks > 4000);
    let (shared, events) = common::run_file(f, &["policy.breaker.pod.state=service"]);
    assert!(
        subjects(&events, "breaker").is_empty(),
        "a twelfth of failures: it never opens"
    );
    assert!(shared.workloads[0].counts.failed() > 2000);
    let (ejecting, events) = common::run_file(f, &["service.api.calls[0].outlier=envoy"]);
    let ejected = subjects(&events, "outlier");
    assert_eq!(ejected, ["api/0->recs/0", "api/3->recs/0"]);
    assert!(ejecting.workloads[0].counts.failed() < 100);
}
