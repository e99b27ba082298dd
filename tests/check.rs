//! `faultline check` over `[[expect]]` blocks, and the library API that a team's own
//! `cargo test` uses for the same purpose.

use faultline::api::{replication_seed, run, Scenario};
use std::path::PathBuf;
use std::process::Command;

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The gallery's expectations hold. (The validation suite under `scenarios/validation/`
/// runs hours of simulated time per seed; `.ci/run` checks it with the release binary.)
#[test]
fn the_gallery_passes_its_checks() {
    let mut files: Vec<String> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = cli(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// An impossible expectation fails with exit 1, names the metric, says how to reproduce
/// it, and the JUnit file records the failure.
#[test]
fn an_impossible_expectation_fails_and_is_reported() {
    let dir = tmp("impossible");
    let text = std::fs::read_to_string("scenarios/quickstart.toml")
        .unwrap()
        .replace("below = 400.0", "below = 1.0")
        .replace("duration = \"2m\"", "duration = \"20s\"");
    let file = dir.join("qs.toml");
    std::fs::write(&file, text).unwrap();
    let junit = dir.join("junit.xml");
    let out = cli(&[
        "check",
        file.to_str().unwrap(),
        "--seeds",
        "2",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .expect("a FAIL line");
    assert!(
        fail.contains("workloads.shoppers.latency_ms.p99 below 1 on all 2 seeds"),
        "{fail}"
    );
    assert!(stdout.contains("reproduce: faultline run"), "{stdout}");
    assert!(
        stdout.contains("PASS") && stdout.contains("1 failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"workloads.shoppers.latency_ms.p99 below 1"),
        "{xml}"
    );
    // The reproduce command is one the CLI accepts, and its run shows the failing value.
    let repro = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: faultline "))
        .unwrap();
    let mut args: Vec<&str> = repro.split(' ').collect();
    args.extend(["--out", dir.to_str().unwrap()]);
    assert!(cli(&args).status.success(), "{repro}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad expectations are invalid input: two bounds, or a metric that is not in summary.json
/// (with the nearest path suggested).
#[test]
fn bad_expectations_are_invalid_input() {
    let dir = tmp("bad");
    let base = std::fs::read_to_string("scenarios/retry-storm.toml").unwrap();
    let two = dir.join("two.toml");
    std::fs::write(
        &two,
        base.replace("above = 0.5", "above = 0.5\nbelow = 0.9"),
    )
    .unwrap();
    let out = cli(&["check", two.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly one of below"));
    let typo = dir.join("typo.toml");
    std::fs::write(
        &typo,
        base.replace("shoppers.error_rate", "shoppers.eror_rate"),
    )
    .unwrap();
    let out = cli(&["check", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did you mean \"workloads.shoppers.error_rate\""),
        "{err}"
    );
    assert_eq!(cli(&["check", "no/such/dir"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// The library API, as a team would use it in its own tests: a policy change checked
/// against the scenario it protects.
#[test]
fn library_api_runs_variants_on_common_seeds() {
    let base = Scenario::from_path("scenarios/quickstart.toml")
        .unwrap()
        .with(&["sim.duration=30s"])
        .unwrap();
    // A 500 ms payment timeout lets the 400 ms tail through: fewer failed orders.
    let patient = base
        .with(&["service.orders.calls[1].timeout=\"500ms\""])
        .unwrap();
    let seed = replication_seed(base.spec.seed, 1);
    let (a, b) = (run(&base, seed), run(&patient, seed));
    let failed = |s: &faultline::api::Summary| s.get("workloads.shoppers.failed").unwrap();
    assert!(
        failed(&b) < failed(&a) / 5.0,
        "{} vs {}",
        failed(&a),
        failed(&b)
    );
    // Same seed, same numbers; names with arrows resolve.
    assert_eq!(run(&base, seed).json, a.json);
    assert!(a.get("edges.orders->payment.calls").unwrap() > 1_000.0);
    assert!(a
        .metrics()
        .iter()
        .any(|(k, _)| k == "workloads.shoppers.latency_ms.p99"));
    assert!(Scenario::from_toml_str("x.toml", "[sim]\nname = 1").is_err());
}

/// An M/M/1 queue at ρ = 0.5 (λ = 5/s, mean service 100 ms) for `check`'s mean form: its
/// mean response is 1 / (μ − λ) = 200 ms.
fn mm1(expect: &str) -> String {
    format!(
        "[sim]\nname = \"mm1\"\nduration = \"400s\"\nwarmup = \"20s\"\nseed = 3\n\
         [[service]]\nname = \"s\"\nwork = {{ dist = \"exp\", mean = \"100ms\" }}\n\
         [[workload]]\nname = \"w\"\ntarget = \"s\"\narrivals = {{ kind = \"poisson\", rate = 5 }}\n\
         {expect}"
    )
}

/// The mean over seeds is judged in standard errors, with the interval printed: the true
/// M/M/1 mean (200 ms) passes, 150 ms fails; a derived share (ok / sent) can be expected;
/// the JUnit file keeps its shape and carries the interval.
#[test]
fn means_over_seeds_are_judged_in_standard_errors_with_their_interval() {
    let dir = tmp("means");
    let expect = |target: f64| {
        format!(
            "[[expect]]\nmetric = \"workloads.w.latency_ms.mean\"\nmean = {target}\nwithin_se = 3\nseeds = 12\n\
             [[expect]]\nmetric = \"workloads.w.ok / workloads.w.sent\"\nmean = 1\nwithin_abs = 0.001\nseeds = 12\n"
        )
    };
    let good = dir.join("good.toml");
    std::fs::write(&good, mm1(&expect(200.0))).unwrap();
    let out = cli(&["check", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "workloads.w.latency_ms.mean mean 200 within 3 standard errors over 12 seeds"
        ),
        "{stdout}"
    );
    // The interval printed brackets the true mean and is a few ms wide.
    let line = stdout
        .lines()
        .find(|l| l.contains("latency_ms.mean"))
        .unwrap();
    let nums: Vec<f64> = line
        .split("95 % interval ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .split(" to ")
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        nums[0] < 200.0 && 200.0 < nums[1] && nums[1] - nums[0] < 30.0,
        "{line}"
    );
    assert!(stdout.contains("PASS") && stdout.contains("ok / workloads.w.sent mean 1"));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, mm1(&expect(150.0))).unwrap();
    let junit = dir.join("junit.xml");
    let out = cli(&[
        "check",
        bad.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("standard error"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"1\"") && xml.contains("95 % interval"),
        "{xml}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Mistakes in the mean form and in derived metrics are invalid input (exit 2), placed at
/// their line, before anything runs.
#[test]
fn mean_form_and_derived_metric_mistakes_are_invalid_input() {
    let dir = tmp("mean-mistakes");
    for (expect, says) in [
        (
            "[[expect]]\nmetric = \"workloads.w.sent\"\nmean = 5\nwithin_se = 2\n",
            "within_se needs seeds = 2 or more",
        ),
        (
            "[[expect]]\nmetric = \"workloads.w.sent\"\nmean = 5\nseeds = 3\n",
            "needs exactly one tolerance",
        ),
        (
            "[[expect]]\nmetric = \"workloads.w.sent\"\nbelow = 5\nwithin_rel = 0.1\n",
            "within_rel applies to mean",
        ),
        (
            "[[expect]]\nmetric = \"workloads.w.rejected /\"\nbelow = 5\n",
            "the metric ends where a path or a number should be",
        ),
        (
            "[[expect]]\nmetric = \"workloads.w.rejected / workloads.w.snet\"\nbelow = 5\n",
            "no metric \"workloads.w.snet\" (did you mean \"workloads.w.sent\"?)",
        ),
    ] {
        let f = dir.join("m.toml");
        std::fs::write(&f, mm1(expect)).unwrap();
        let out = cli(&["check", f.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expect}: {stderr}");
        assert!(stderr.contains(says), "{expect}: {stderr}");
        assert!(stderr.contains("m.toml:"), "placed: {stderr}");
    }
    std::fs::remove_dir_all(dir).ok();
}
