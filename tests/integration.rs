//! Integration tests: queueing-theory oracles, determinism, common random numbers, CLI errors, the gallery.

use faultline::metrics::MemorySink;
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario::{self, Scenario};
use std::path::Path;
use std::process::Command;

mod common;
use common::{parse as scenario, run_with};

fn run(scn: &Scenario) -> RunResult {
    run_with(scn, RunOptions::default()).0
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
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-det-{}", std::process::id()));
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
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("event-budget")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("event_budget"));
}

fn expect_invalid(name: &str, text: &str, line: usize, needle: &str) {
    // Cargo's scratch directory for integration tests (inside target/): nothing left in /tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("invalid-input");
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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-contract-{}", std::process::id()));
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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-progress-{}", std::process::id()));
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
