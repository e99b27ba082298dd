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
    let d = std::env::temp_dir().join(format!("faultline-check-{}-{name}", std::process::id()));
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
