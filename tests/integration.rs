//! Integration tests: queueing-theory oracles, determinism, common random numbers, CLI errors, the gallery.

use faultline::metrics::MemorySink;
use faultline::model::{RunOptions, RunResult, World};
use faultline::policy::breaker::State as BreakerState;
use faultline::results::events::Change;
use faultline::scenario::{self, Scenario};
use std::path::Path;
use std::process::Command;

fn scenario(text: &str) -> Scenario {
    scenario::parse("test.toml", text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn run(scn: &Scenario) -> RunResult {
    run_with(scn, RunOptions::default()).0
}

fn run_with(scn: &Scenario, opts: RunOptions) -> (RunResult, MemorySink) {
    let mut sink = MemorySink::default();
    let r = World::new(&scn.spec, opts).run(&mut sink);
    (r, sink)
}

/// A single-service queue: `c` workers, Poisson(lambda) arrivals, exp(1/mu) work.
fn queue_scenario(
    lambda: f64,
    c: u32,
    mean_work: &str,
    duration: &str,
    warmup: &str,
    seed: u64,
) -> Scenario {
    scenario(&format!(
        r#"
[sim]
name = "q"
duration = "{duration}"
warmup = "{warmup}"
seed = {seed}
bucket = "1h"
max_in_flight = 1000000
[[service]]
name = "q"
workers = {c}
queue = {{ capacity = 1000000 }}
work = {{ dist = "exp", mean = "{mean_work}" }}
[[workload]]
name = "w"
target = "q"
arrivals = {{ kind = "poisson", rate = {lambda} }}
"#
    ))
}

/// Erlang C: the probability that an arrival to an M/M/c queue waits, a = lambda/mu.
fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / c as f64;
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        if k > 0 {
            term *= a / k as f64;
        }
        sum += term;
    }
    let top = term * a / c as f64; // a^c / c!
    top / ((1.0 - rho) * sum + top)
}

/// M/M/1: mean response time 1/(mu - lambda). lambda = 5/s, mu = 10/s: W = 200 ms.
/// 500,000 customers at rho = 0.5: the batch-means standard error of W is ~0.7 %,
/// so 3 % is a >4-sigma band that still catches any real modelling error
/// (a lost or double-counted service time moves W by 50 % or more).
#[test]
fn mm1_mean_response_matches_theory() {
    let scn = queue_scenario(5.0, 1, "100ms", "100000s", "100s", 11);
    let r = run(&scn);
    let w_ms = r.services[0].latency.mean;
    assert!(
        (w_ms - 200.0).abs() / 200.0 < 0.03,
        "M/M/1 W = {w_ms} ms, theory 200 ms"
    );
    // Utilisation is rho = 0.5 (the busy-time integral, a different estimator).
    let u = r.services[0].utilization;
    assert!((u - 0.5).abs() < 0.01, "utilisation {u}");
}

/// M/M/c mean wait in queue Wq = C(c, a) / (c mu - lambda), two parameter sets.
///
/// (a) c = 10, lambda = 9/s, mu = 1/s (rho = 0.9, the benchmark model): a single
/// 1,000,000-customer run varies by ~2 % between seeds (measured over 6 seeds:
/// 644-688 ms around 668.7), so we average 6 seeds of ~1,000,000 customers; the
/// standard error of the mean is then ~1 %, and 3 % is a 3-sigma band.
/// (b) c = 20, lambda = 14/s, mu = 1/s (rho = 0.7): 4 seeds of ~500,000 customers.
#[test]
fn mmc_mean_wait_matches_erlang_c() {
    for (lambda, c, duration, seeds) in [(9.0, 10u32, "31h", 6u64), (14.0, 20, "10h", 4)] {
        let a = lambda; // mu = 1/s
        let wq_theory_ms = erlang_c(c, a) / (c as f64 - lambda) * 1000.0;
        let mut sum = 0.0;
        let mut lq_sum = 0.0;
        for seed in 1..=seeds {
            let r = run(&queue_scenario(lambda, c, "1s", duration, "1h", seed));
            let s = &r.services[0];
            sum += s.queue_wait.mean;
            // Little's law on the queue alone: Lq = lambda * Wq, with lambda measured.
            let measured_s = (r.end.as_secs_f64() - 3600.0).max(1.0);
            lq_sum += s.counts.requests as f64 / measured_s * s.queue_wait.mean / 1000.0;
        }
        let wq = sum / seeds as f64;
        let err = (wq - wq_theory_ms).abs() / wq_theory_ms;
        assert!(
            err < 0.03,
            "M/M/{c} lambda {lambda}: Wq {wq:.1} ms vs Erlang C {wq_theory_ms:.1} ms ({:.2} %)",
            err * 100.0
        );
        let lq_theory = lambda * wq_theory_ms / 1000.0;
        let lq = lq_sum / seeds as f64;
        assert!(
            (lq - lq_theory).abs() / lq_theory < 0.03,
            "Lq {lq} vs {lq_theory}"
        );
    }
}

/// Little's law L = lambda W on every service of a 3-tier chain: the time-average
/// number of requests inside a service (sampled at 3,000 evenly spaced instants)
/// equals its arrival rate times its mean latency. Also utilisation = lambda E[S] / c.
/// 300 s at 600/s is 180,000 requests; snapshot noise is ~1-2 %, so 5 % is safe
/// while a missed decrement or a leaked request would break it by far more.
#[test]
fn littles_law_holds_on_a_chain() {
    let text = std::fs::read_to_string("scenarios/chain.toml").unwrap();
    let scn = scenario::parse(
        "chain.toml",
        &text,
        &[
            "sim.duration=300s".into(),
            "sim.warmup=0s".into(),
            "sim.bucket=100ms".into(),
        ],
    )
    .unwrap();
    let (r, sink) = run_with(&scn, RunOptions::default());
    for (s, (workers, mean_work_ms)) in r.services.iter().zip([(4.0, 2.0), (8.0, 10.0), (4.0, 5.0)])
    {
        let rows: Vec<_> = sink
            .rows
            .iter()
            .filter(|row| row.kind == "service" && row.name == s.name)
            .collect();
        let l = rows.iter().map(|row| row.in_flight as f64).sum::<f64>() / rows.len() as f64;
        let lambda = s.counts.requests as f64 / 300.0;
        let w = s.latency.mean / 1000.0;
        assert!(
            (l - lambda * w).abs() / (lambda * w) < 0.05,
            "{}: L {l:.3} vs lambda W {:.3}",
            s.name,
            lambda * w
        );
        let u_theory = 600.0 * mean_work_ms / 1000.0 / workers;
        assert!(
            (s.utilization - u_theory).abs() < 0.02,
            "{}: utilisation {} vs {u_theory}",
            s.name,
            s.utilization
        );
    }
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("runs")
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Same scenario and seed: every output file byte-identical. Another seed: different.
#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = std::env::temp_dir().join(format!("faultline-det-{}", std::process::id()));
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|d| tmp.join(d)).collect();
    for (dir, seed) in dirs.iter().zip(["42", "42", "43"]) {
        let out = run_cli(&[
            "run",
            "scenarios/quickstart.toml",
            "--seed",
            seed,
            "--set",
            "sim.duration=30s",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (a, b, c) = (files_of(&dirs[0]), files_of(&dirs[1]), files_of(&dirs[2]));
    let names: Vec<_> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "amplification.svg",
            "events.csv",
            "graph.svg",
            "instances.csv",
            "latency-cdf.svg",
            "latency-workload-shoppers.svg",
            "latency_cdf.csv",
            "manifest.json",
            "report.html",
            "scenario.toml",
            "services.svg",
            "share-gateway.svg",
            "share-orders.svg",
            "share-payment.svg",
            "share-users.svg",
            "summary.json",
            "throughput-shoppers.svg",
            "timeseries.csv",
            "traces.json",
            "traces.otlp.json",
            "waterfall.svg",
        ]
    );
    assert_eq!(a, b, "two runs with the same seed differ");
    let differs = |name: &str| {
        a.iter().find(|f| f.0 == name).unwrap().1 != c.iter().find(|f| f.0 == name).unwrap().1
    };
    assert!(
        differs("summary.json") && differs("timeseries.csv"),
        "another seed gave the same results"
    );
    std::fs::remove_dir_all(&tmp).ok();
}

const BASE: &str = r#"
[sim]
name = "crn"
duration = "60s"
seed = 5
[network]
latency = { dist = "exp", mean = "1ms" }
[[service]]
name = "front"
workers = 4
work = { dist = "exp", mean = "3ms" }
calls = [{ to = "back", timeout = "TIMEOUT" }]
[[service]]
name = "back"
workers = 2
work = { dist = "lognormal", mean = "8ms", sigma = 1.0 }
[[workload]]
name = "users"
target = "front"
arrivals = { kind = "poisson", rate = 150 }
"#;

/// Adding a service (with its own workload) leaves another service's draws, and so
/// its every statistic, unchanged: each component has its own random stream.
#[test]
fn adding_a_service_leaves_other_draws_unchanged() {
    let base = BASE.replace("TIMEOUT", "50ms");
    let extra = format!(
        "{base}\n[[service]]\nname = \"audit\"\nworkers = 1\nwork = {{ dist = \"exp\", mean = \"2ms\" }}\n[[workload]]\nname = \"auditors\"\ntarget = \"audit\"\narrivals = {{ kind = \"poisson\", rate = 50 }}\n"
    );
    let (a, b) = (run(&scenario(&base)), run(&scenario(&extra)));
    assert_eq!(b.services.len(), 3);
    for i in 0..2 {
        assert_eq!(a.services[i].counts, b.services[i].counts);
        assert_eq!(a.services[i].latency, b.services[i].latency);
        assert_eq!(a.services[i].queue_wait, b.services[i].queue_wait);
    }
    assert_eq!(a.workloads[0].latency, b.workloads[0].latency);
}

/// Changing a call's timeout changes outcomes but not a single arrival time
/// (common random numbers: A/B comparisons differ only by the policy).
#[test]
fn changing_a_timeout_leaves_arrivals_unchanged() {
    let opts = RunOptions {
        record_arrivals: 5_000,
        ..RunOptions::default()
    };
    let (a, _) = run_with(&scenario(&BASE.replace("TIMEOUT", "10ms")), opts.clone());
    let (b, _) = run_with(&scenario(&BASE.replace("TIMEOUT", "500ms")), opts);
    assert_eq!(a.arrivals.len(), 5_000);
    assert_eq!(a.arrivals, b.arrivals);
    assert_eq!(
        a.workloads[0].counts.requests,
        b.workloads[0].counts.requests
    );
    assert!(
        a.workloads[0].counts.errors > b.workloads[0].counts.errors,
        "the timeout change had no effect"
    );
}

/// Conservation: every request sent is answered, timed out, or still pending at the end.
#[test]
fn requests_are_conserved() {
    for timeout in ["5ms", "20ms", "1s"] {
        let mut text = BASE.replace("TIMEOUT", timeout);
        text = text.replace(
            "[[workload]]\nname = \"users\"",
            "[[workload]]\nname = \"users\"\ntimeout = \"30ms\"",
        );
        let r = run(&scenario(&text));
        let w = &r.workloads[0];
        assert_eq!(
            w.counts.requests,
            w.counts.ok + w.counts.failed() + w.pending_at_end,
            "timeout {timeout}"
        );
        // The callee saw every call the caller made that was not lost.
        let (front, back) = (&r.services[0], &r.services[1]);
        assert!(back.counts.requests <= front.counts.requests);
    }
}

/// A caller that gives up leaves the callee working: the wasted work is counted.
#[test]
fn timeouts_waste_callee_work() {
    let r = run(&scenario(&BASE.replace("TIMEOUT", "5ms")));
    let back = &r.services[1];
    assert!(back.counts.timeouts > 0);
    assert!(back.wasted_work_ms > 0.0);
    let r = run(&scenario(&BASE.replace("TIMEOUT", "10s")));
    assert_eq!(r.services[1].counts.timeouts, 0);
    assert_eq!(r.services[1].wasted_work_ms, 0.0);
}

/// A full queue rejects at once and the caller sees a failure.
#[test]
fn full_queue_rejects() {
    let r = run(&scenario(
        r#"
[sim]
name = "reject"
duration = "10s"
[[service]]
name = "s"
workers = 1
queue = { capacity = 2 }
work = { dist = "constant", value = "100ms" }
[[workload]]
name = "w"
target = "s"
arrivals = { kind = "constant", rate = 100 }
"#,
    ));
    let (s, w) = (&r.services[0], &r.workloads[0]);
    // Capacity 10/s against 100/s offered: ~90 % rejected.
    assert!(
        s.counts.rejected > 800 && s.counts.ok < 110,
        "{:?}",
        s.counts
    );
    assert_eq!(w.counts.rejected, s.counts.rejected);
}

/// Lost messages end in the caller's timeout, never in a hang.
#[test]
fn lost_messages_become_timeouts() {
    let text = BASE.replace("TIMEOUT", "100ms").replace(
        "latency = { dist = \"exp\", mean = \"1ms\" }",
        "latency = { dist = \"exp\", mean = \"1ms\" }\nloss = 0.1",
    );
    let text = text.replace(
        "[[workload]]\nname = \"users\"",
        "[[workload]]\nname = \"users\"\ntimeout = \"1s\"",
    );
    let r = run(&scenario(&text));
    assert!(r.network_lost > 0);
    let w = &r.workloads[0];
    // About 19 % of calls lose the request or the reply (1 - 0.9^2).
    let failed = w.counts.errors as f64 / w.counts.requests as f64;
    assert!((failed - 0.19).abs() < 0.03, "{failed}");
    // Without timeouts a lossy network is refused up front.
    let bad = BASE
        .replace(", timeout = \"TIMEOUT\"", "")
        .replace("mean = \"1ms\" }", "mean = \"1ms\" }\nloss = 0.1");
    let err = scenario::parse("lossy.toml", &bad, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a timeout"), "{err}");
}

/// Hitting `sim.max_in_flight` stops the run and says so (exit code 1), instead of eating memory.
#[test]
fn request_limit_is_reported() {
    let r = run(&queue_scenario(20.0, 1, "1s", "1h", "0s", 1));
    assert_eq!(r.stop, faultline::model::StopReason::Horizon);
    let text = std::fs::read_to_string("scenarios/mmc.toml").unwrap();
    let scn = scenario::parse(
        "mmc.toml",
        &text,
        &[
            "workload.customers.arrivals.rate=50".into(),
            "sim.max_in_flight=500".into(),
        ],
    )
    .unwrap();
    let r = run(&scn);
    assert_eq!(r.stop, faultline::model::StopReason::RequestLimit);
    assert!(r.end.as_secs_f64() < 100.0);
    let out = run_cli(&[
        "run",
        "scenarios/mmc.toml",
        "--set",
        // validate's estimate (2.0e6 events) is within twice the limit, so it runs; the
        // run needs 2,007,831 and stops at the limit.
        "sim.max_events=1500000",
        "--out",
        std::env::temp_dir()
            .join("faultline-budget")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("event_budget"));
}

fn expect_invalid(name: &str, text: &str, line: usize, needle: &str) {
    let dir = std::env::temp_dir().join(format!("faultline-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    for cmd in ["run", "validate", "graph"] {
        let out = run_cli(&[cmd, file.to_str().unwrap(), "--set", "sim.seed=3"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd} {name}: {err}");
        let place = format!("{}:{line}:", file.display());
        assert!(
            err.contains(&place),
            "{cmd} {name}: expected {place} in: {err}"
        );
        assert!(
            err.contains(needle),
            "{cmd} {name}: expected {needle:?} in: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

const GOOD: &str = "[sim]\nname = \"x\"\nduration = \"10s\"\n\n[[service]]\nname = \"a\"\nwork = { dist = \"exp\", mean = \"1ms\" }\ncalls = [{ to = \"b\" }]\n\n[[service]]\nname = \"b\"\n\n[[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = { kind = \"poisson\", rate = 10 }\n";

#[test]
fn invalid_input_exits_2_with_file_line_and_problem() {
    // Sanity: the base text is valid.
    assert!(scenario::parse("good.toml", GOOD, &[]).is_ok());
    expect_invalid(
        "unknown_key.toml",
        &GOOD.replace("name = \"b\"", "name = \"b\"\nreplcas = 3"),
        12,
        "did you mean `replicas`",
    );
    expect_invalid(
        "cycle.toml",
        &GOOD.replace("name = \"b\"\n", "name = \"b\"\ncalls = [{ to = \"a\" }]\n"),
        8,
        "synchronous call cycle a -> b -> a",
    );
    expect_invalid(
        "negative_rate.toml",
        &GOOD.replace("rate = 10", "rate = -10"),
        16,
        "rate must be > 0",
    );
    expect_invalid(
        "missing_service.toml",
        &GOOD.replace("to = \"b\"", "to = \"bb\""),
        8,
        "unknown service \"bb\" (did you mean \"b\"?)",
    );
    expect_invalid(
        "bad_duration.toml",
        &GOOD.replace("\"10s\"", "\"10 parsecs\""),
        3,
        "invalid duration",
    );
    expect_invalid(
        "syntax.toml",
        &GOOD.replace("[[workload]]", "[[workload"),
        13,
        "unclosed array table",
    );
    let group = |n: usize| {
        let members = vec!["{ to = \"b\" }"; n].join(", ");
        GOOD.replace(
            "calls = [{ to = \"b\" }]",
            &format!("calls = [{{ parallel = [{members}] }}]"),
        )
    };
    expect_invalid(
        "huge_group.toml",
        &group(10_001),
        8,
        "a parallel group holds at most 10000 calls, this one has 10001",
    );
}

/// A parallel group larger than 64 (the old limit of a bit mask) calls every member and
/// waits for all: 300 calls to a leaf of constant 1 ms per request.
#[test]
fn a_wide_parallel_group_calls_every_member() {
    let members = vec!["{ to = \"b\" }"; 300].join(", ");
    let text = GOOD
        .replace(
            "calls = [{ to = \"b\" }]",
            &format!("calls = [{{ parallel = [{members}] }}]"),
        )
        .replace(
            "name = \"b\"\n",
            "name = \"b\"\nworkers = 10000\nwork = { dist = \"constant\", value = \"1ms\" }\n",
        );
    let scn = scenario::parse("wide.toml", &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default());
    let (w, a, b) = (
        &r.workloads[0].counts,
        &r.services[0].counts,
        &r.services[1].counts,
    );
    assert!(
        w.ok > 50 && w.errors + w.rejected + w.timeouts == 0,
        "{w:?}"
    );
    // Every member of every group was called (a group cut by the horizon aside).
    assert!(b.requests <= 300 * a.requests, "{a:?} {b:?}");
    assert!(b.requests >= 300 * (a.requests - 2), "{a:?} {b:?}");
    assert!(b.ok >= 300 * w.ok, "{w:?} {b:?}");
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let text = GOOD
        .replace("rate = 10", "rate = 0")
        .replace("to = \"b\"", "to = \"c\"")
        .replace("duration = \"10s\"", "duration = \"10s\"\nwarmup = \"10s\"");
    let err = scenario::parse("multi.toml", &text, &[]).unwrap_err();
    assert_eq!(err.diagnostics.len(), 3, "{err}");
}

/// Every scenario in the gallery parses, validates and runs (briefly), so the gallery cannot rot.
#[test]
fn every_gallery_scenario_runs() {
    let mut n = 0;
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let scn = scenario::load(&path, &["sim.duration=20s".into(), "sim.warmup=1s".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let r = run(&scn);
        assert_eq!(
            r.stop,
            faultline::model::StopReason::Horizon,
            "{}",
            path.display()
        );
        assert!(
            r.workloads.iter().all(|w| w.counts.requests > 0),
            "{} sent nothing",
            path.display()
        );
        let out = run_cli(&["validate", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(n >= 3);
}

/// The README's run writes summary.json with every field of the output contract.
#[test]
fn summary_has_every_contract_field() {
    let dir = std::env::temp_dir().join(format!("faultline-contract-{}", std::process::id()));
    let out = run_cli(&[
        "run",
        "scenarios/quickstart.toml",
        "--set",
        "sim.duration=20s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    for k in ["scenario", "seed", "sim_duration_s", "events"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let lat = ["mean", "p50", "p90", "p99", "p999", "max"];
    let w = &v["workloads"]["shoppers"];
    for k in ["sent", "ok", "failed", "error_rate"] {
        assert!(w[k].is_number(), "workload field {k}");
    }
    for k in lat {
        assert!(w["latency_ms"][k].is_number(), "workload latency {k}");
    }
    for s in ["gateway", "orders", "users", "inventory", "payment"] {
        let s = &v["services"][s];
        for k in [
            "requests",
            "ok",
            "errors",
            "rejected",
            "timeouts",
            "retries",
            "utilization",
        ] {
            assert!(s[k].is_number(), "service field {k}");
        }
        assert!(s["queue_wait_ms"]["mean"].is_number() && s["queue_wait_ms"]["p99"].is_number());
        for k in lat {
            assert!(s["latency_ms"][k].is_number(), "service latency {k}");
        }
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["seed"], 42);
    assert!(m["scenario_hash"].as_str().unwrap().starts_with("fnv1a64:"));
    // Defaults are written out: the effective parameters include the default queue.
    assert_eq!(m["effective"]["service"][0]["queue"]["discipline"], "fifo");
    std::fs::remove_dir_all(&dir).ok();
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// No text, however broken, makes the loader panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = scenario::parse("fuzz.toml", &text, &[]);
        }

        /// Mutating a valid scenario (deleting or duplicating a slice) never panics,
        /// and whatever still validates runs to completion.
        #[test]
        fn mutated_scenarios_never_panic(start in 0usize..400, len in 0usize..40, dup in proptest::bool::ANY) {
            let base = GOOD.replace("10s", "2s");
            let start = start.min(base.len());
            let end = (start + len).min(base.len());
            if !base.is_char_boundary(start) || !base.is_char_boundary(end) { return Ok(()); }
            let text = if dup {
                format!("{}{}{}", &base[..end], &base[start..end], &base[end..])
            } else {
                format!("{}{}", &base[..start], &base[end..])
            };
            if let Ok(scn) = scenario::parse("m.toml", &text, &[]) {
                let _ = run(&scn);
            }
        }

        /// Random overrides never panic.
        #[test]
        fn random_overrides_never_panic(path in "[a-z_.\\[\\]0-9]{1,30}", value in "\\PC{0,20}") {
            let _ = scenario::parse("o.toml", GOOD, &[format!("{path}={value}")]);
        }
    }
}

/// The latency-budget verdict agrees with a run: (200 ms − 10 ms gateway) / (2 × 2 ms
/// network + 30 ms service per hop) = 5.6, so 5 hops fit: a 5-hop chain fits, a 6-hop one
/// does not. And the issue's case, where the articles' one-way arithmetic is wrong:
/// (250 − 10) / (4 + 36) = 6 hops by the articles, but a six-hop chain takes
/// 10 + 6 × (2 × 4 + 36) = 274 ms > 250 ms; (250 − 10) / (2 × 4 + 36) = 5.45 says so.
#[test]
fn latency_budget_verdict_agrees_with_the_run() {
    fn chain(hops: usize, budget_ms: u64, net_ms: u64, work_ms: u64) -> String {
        let mut s = format!("[sim]\nname = \"budget\"\nduration = \"10s\"\nlatency_budget = \"{budget_ms}ms\"\n[network]\nlatency = {{ dist = \"constant\", value = \"{net_ms}ms\" }}\n");
        s += "[[service]]\nname = \"s0\"\nwork = { dist = \"constant\", value = \"10ms\" }\ncalls = [{ to = \"s1\" }]\n";
        for i in 1..=hops {
            s += &format!("[[service]]\nname = \"s{i}\"\nwork = {{ dist = \"constant\", value = \"{work_ms}ms\" }}\n");
            if i < hops {
                s += &format!("calls = [{{ to = \"s{}\" }}]\n", i + 1);
            }
        }
        s + "[[workload]]\nname = \"w\"\ntarget = \"s0\"\narrivals = { kind = \"constant\", rate = 1 }\n"
    }
    for (hops, fits, budget, net, work) in [
        (5, true, 200, 2, 30),
        (6, false, 200, 2, 30),
        (5, true, 250, 4, 36),
        (6, false, 250, 4, 36),
    ] {
        let scn = scenario(&chain(hops, budget, net, work));
        let b = faultline::scenario::analysis::hop_budget(
            &scn.spec,
            &scn.spec.workloads[0],
            scn.raw.sim.latency_budget.unwrap(),
        );
        let ratio = (budget - 10) as f64 / (2 * net + work) as f64;
        assert!((b.ratio - ratio).abs() < 1e-9, "{}", b.ratio);
        let article = (budget - 10) as f64 / (net + work) as f64;
        assert!(
            (b.article_ratio - article).abs() < 1e-9,
            "{}",
            b.article_ratio
        );
        assert_eq!(b.hops_fit, 5);
        assert_eq!(b.deepest_hops, hops);
        let text = faultline::scenario::analysis::report(&scn.spec, scn.raw.sim.latency_budget);
        assert!(
            text.contains(if fits { ": fits" } else { "does NOT fit" }),
            "{text}"
        );
        // The run agrees: with no queueing (1 req/s, constant times) the latency is exactly
        // 10 + hops × (2 × 2 + 30) − ... i.e. entry work + per hop a round trip and the work.
        let r = run(&scn);
        let expected_ms = 10.0 + hops as f64 * (2.0 * net as f64 + work as f64);
        assert!(
            (r.workloads[0].latency.max - expected_ms).abs() < 0.01,
            "{} vs {expected_ms}",
            r.workloads[0].latency.max
        );
        assert_eq!(r.workloads[0].latency.max <= budget as f64, fits);
    }
}

/// Closed loop: the interactive response-time law X = N / (R + Z). With N = 10 users,
/// think Z = exp(1 s) and an uncongested service of constant R = 100 ms, X = 9.09/s.
/// Over 2,000 s (~18,000 requests) the count's relative standard error is ~1 %; 3 % is a 3-sigma band.
#[test]
fn closed_loop_obeys_the_response_time_law() {
    let r = run(&scenario(
        r#"
[sim]
name = "closed"
duration = "2000s"
[[service]]
name = "s"
workers = 100
work = { dist = "constant", value = "100ms" }
[[workload]]
name = "users"
target = "s"
arrivals = { kind = "closed", users = 10, think = { dist = "exp", mean = "1s" } }
"#,
    ));
    let x = r.workloads[0].counts.requests as f64 / 2000.0;
    assert!(
        (x - 10.0 / 1.1).abs() / (10.0 / 1.1) < 0.03,
        "throughput {x}"
    );
}

/// Time-varying open-loop profiles send what their rate integrates to.
#[test]
fn arrival_profiles_send_their_integrated_rate() {
    let cases = [
        // (arrivals, expected count over 100 s)
        (r#"{ kind = "constant", rate = 20 }"#, 2000.0),
        (
            r#"{ kind = "ramp", from = 0, to = 40, over = "100s" }"#,
            2000.0,
        ),
        (
            r#"{ kind = "step", steps = [{ at = "0s", rate = 10 }, { at = "50s", rate = 30 }] }"#,
            2000.0,
        ),
        (
            r#"{ kind = "spike", base = 10, peak = 110, at = "40s", for = "10s" }"#,
            2000.0,
        ),
        (
            r#"{ kind = "diurnal", mean = 20, amplitude = 15, period = "50s" }"#,
            2000.0,
        ),
        (
            r#"{ kind = "step", steps = [{ at = "0s", rate = 10 }, { at = "50s", rate = 30 }], process = "uniform" }"#,
            2000.0,
        ),
    ];
    for (arrivals, want) in cases {
        let r = run(&scenario(&format!(
            "[sim]\nname = \"p\"\nduration = \"100s\"\n[[service]]\nname = \"s\"\nworkers = 1000\nwork = {{ dist = \"constant\", value = \"1ms\" }}\n[[workload]]\nname = \"w\"\ntarget = \"s\"\narrivals = {arrivals}\n"
        )));
        let got = r.workloads[0].counts.requests as f64;
        // Poisson count of 2,000: standard deviation 45, so 7 % (~3 sigma) for the random ones.
        assert!(
            (got - want).abs() / want < 0.07,
            "{arrivals}: {got} vs {want}"
        );
    }
}

/// Endpoints chosen by weight (3:1) route the traffic to their own calls; a named endpoint takes all of it.
#[test]
fn endpoints_split_by_weight() {
    let text = r#"
[sim]
name = "ep"
duration = "200s"
[[service]]
name = "api"
workers = 100
[[service.endpoint]]
name = "read"
weight = 3
calls = [{ to = "cache" }]
[[service.endpoint]]
name = "write"
weight = 1
calls = [{ to = "db" }]
[[service]]
name = "cache"
workers = 100
[[service]]
name = "db"
workers = 100
[[workload]]
name = "w"
target = "api"
arrivals = { kind = "poisson", rate = 50 }
"#;
    let r = run(&scenario(text));
    let (cache, db) = (
        r.services[1].counts.requests as f64,
        r.services[2].counts.requests as f64,
    );
    // 10,000 requests: the share of reads is 0.75 ± 0.0043 (1 sigma); 0.02 is over 4 sigma.
    assert!((cache / (cache + db) - 0.75).abs() < 0.02, "{cache} {db}");
    let r = run(&scenario(&text.replace(
        "target = \"api\"",
        "target = \"api\"\nendpoint = \"write\"",
    )));
    assert_eq!(r.services[1].counts.requests, 0);
    // Endpoint choice has its own stream: choosing by weight instead of by name
    // (one more draw per request) moves no arrival time.
    let opts = RunOptions {
        record_arrivals: 2_000,
        ..RunOptions::default()
    };
    let (a, _) = run_with(&scenario(text), opts.clone());
    let fixed = text.replace("target = \"api\"", "target = \"api\"\nendpoint = \"write\"");
    let (b, _) = run_with(&scenario(&fixed), opts);
    assert_eq!(a.arrivals, b.arrivals);
}

/// The layering holds: the engine, the foundations and the policies name no upper layer,
/// and policies never touch the event queue.
#[test]
fn engine_and_foundations_do_not_import_upper_layers() {
    for file in [
        "sim/engine/mod.rs",
        "sim/time.rs",
        "sim/rng.rs",
        "sim/dist.rs",
        "sim/metrics/mod.rs",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        for upper in [
            "crate::model",
            "crate::scenario",
            "crate::report",
            "crate::cli",
        ] {
            assert!(!text.contains(upper), "{file} imports {upper}");
        }
    }
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

/// Unknown policy names and bad policy fields are invalid input with a place and a hint.
#[test]
fn policy_errors_are_reported() {
    let text = GOOD.replace("calls = [{ to = \"b\" }]", "calls = [{ to = \"b\", retry = \"standrd\" }]")
        + "\n[policy.retry.standard]\nmax_attempts = 0\nbackoff = { kind = \"exponential\", base = \"10ms\", cap = \"1s\", jitter = \"ful\" }\n";
    let err = scenario::parse("p.toml", &text, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown retry policy \"standrd\" (did you mean \"standard\"?)"),
        "{err}"
    );
    assert!(
        err.contains("max_attempts counts the first attempt too"),
        "{err}"
    );
    assert!(err.contains("unknown jitter \"ful\""), "{err}");
    assert!(err.contains("p.toml:8:"), "{err}");
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

/// Uniform arrivals never land where the rate is zero: 10/s for 5 s then nothing sends
/// exactly the 50 requests at 0.0, 0.1, ..., 4.9 s.
#[test]
fn uniform_arrivals_stop_when_the_rate_drops_to_zero() {
    let scn = scenario(
        r#"
[sim]
name = "u"
duration = "20s"
[[service]]
name = "s"
work = { dist = "constant", value = "1ms" }
[[workload]]
name = "w"
target = "s"
arrivals = { kind = "step", process = "uniform", steps = [{ at = "0s", rate = 10 }, { at = "5s", rate = 0 }, { at = "15s", rate = 1 }] }
"#,
    );
    let (r, _) = run_with(
        &scn,
        RunOptions {
            record_arrivals: 100,
            ..RunOptions::default()
        },
    );
    let secs: Vec<f64> = r.arrivals.iter().map(|t| t.as_secs_f64()).collect();
    assert_eq!(secs.len(), 50 + 5, "{secs:?}");
    assert!((secs[49] - 4.9).abs() < 1e-9);
    // When the rate comes back, arrivals resume one gap later: 16, 17, 18, 19, 20 s.
    assert!((secs[50] - 16.0).abs() < 2e-3, "{secs:?}");
}

/// A run longer than a second, with stderr a pipe: no progress bar anywhere (not on stderr,
/// not in the files), and the summary lines are still there.
#[test]
fn no_progress_bar_off_a_terminal() {
    let dir = std::env::temp_dir().join(format!("faultline-progress-{}", std::process::id()));
    let out = run_cli(&[
        "run",
        "scenarios/mesh.toml",
        "--set",
        "sim.duration=40s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("faultline: mesh simulated 40.0s"), "{err}");
    assert!(
        !err.contains("ms simulated") && !err.contains('\r'),
        "{err}"
    );
    for (name, bytes) in files_of(&dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("ms simulated"),
            "{name}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
