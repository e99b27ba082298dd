//! Sweeps: same bytes whatever the thread count, shards merged equal one sweep, an
//! interrupted sweep resumes without redoing finished runs, and changed inputs are refused.

mod common;

use common::tree;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const AXES: [&str; 8] = [
    "--set",
    "sim.duration=20s",
    "--param",
    "service.orders.calls[1].timeout=200ms,400ms",
    "--param",
    "service.payment.workers=8,16,24",
    "--replications",
    "2",
];

fn sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "scenarios/quickstart.toml"];
    args.extend_from_slice(&AXES);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    cli(&args)
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    err
}

#[test]
fn threads_and_shards_give_the_same_bytes() {
    let (one, two) = (tmp("j1"), tmp("j2"));
    ok(&sweep(&one, &["--jobs", "1"]));
    ok(&sweep(&two, &["--jobs", "2"]));
    let single = tree(&one);
    assert_eq!(single, tree(&two), "--jobs 1 and --jobs 2 differ");
    let names: Vec<&str> = single.iter().map(|f| f.0.as_str()).collect();
    assert!(names.contains(&"sweep.csv") && names.contains(&"sweep_summary.csv"));
    assert!(
        names.iter().any(|n| n.starts_with("sweep-heatmap-")),
        "{names:?}"
    );
    assert_eq!(names.iter().filter(|n| n.starts_with("runs/")).count(), 12);
    // Common random numbers: replication r has one seed at every point; r = 0 is the scenario's.
    let csv = String::from_utf8(
        single
            .iter()
            .find(|f| f.0 == "sweep.csv")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 12);
    for r in &rows {
        let same = rows.iter().find(|x| x[1] == r[1]).unwrap();
        assert_eq!(r[2], same[2], "seed of replication {}", r[1]);
    }
    assert!(rows.iter().any(|r| r[1] == "0" && r[2] == "42"));
    // Shards 0/3, 1/3, 2/3 merged: the single sweep's bytes.
    let base = tmp("shards");
    let shards: Vec<PathBuf> = (0..3).map(|k| base.join(format!("shard-{k}"))).collect();
    for (k, d) in shards.iter().enumerate() {
        let err = ok(&sweep(d, &["--shard", &format!("{k}/3")]));
        assert!(err.contains("faultline merge"), "{err}");
        assert!(
            !d.join("sweep.csv").exists(),
            "a shard alone is not the sweep"
        );
    }
    let merged = base.join("merged");
    let mut args = vec!["merge"];
    let names: Vec<String> = shards.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    ok(&cli(&args));
    assert_eq!(tree(&merged), single, "merged shards differ from one sweep");
    // A missing shard is an error that says so.
    let partial = base.join("partial");
    let out = cli(&[
        "merge",
        &names[0],
        &names[1],
        "--out",
        partial.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    for d in [one, two, base] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// An interrupted sweep (some runs written, a half-written temporary file, no aggregates)
/// finishes without redoing the finished runs, with the bytes of an uninterrupted one.
#[test]
fn an_interrupted_sweep_resumes() {
    let (full, cut) = (tmp("full"), tmp("cut"));
    ok(&sweep(&full, &[]));
    ok(&sweep(&cut, &[]));
    // What a kill half way leaves: half the runs, a temporary file, no aggregates.
    let mut runs: Vec<PathBuf> = std::fs::read_dir(cut.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    for p in runs.iter().skip(6) {
        std::fs::remove_file(p).unwrap();
    }
    std::fs::write(runs[7].with_extension("tmp"), b"{\"point\": 3, \"repl").unwrap();
    for e in std::fs::read_dir(&cut).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "sweep.json" {
            std::fs::remove_file(p).unwrap();
        }
    }
    let kept = std::fs::read(&runs[0]).unwrap();
    let err = ok(&sweep(&cut, &[]));
    assert!(err.contains("ran 6 runs, 6 already done"), "{err}");
    assert_eq!(std::fs::read(&runs[0]).unwrap(), kept);
    std::fs::remove_file(runs[7].with_extension("tmp")).ok();
    assert_eq!(tree(&cut), tree(&full));
    // Finished: running again does nothing.
    assert!(ok(&sweep(&cut, &[])).contains("ran 0 runs, 12 already done"));
    // A run file cut short (a full disk, a copy interrupted) is run again, not refused.
    let whole = std::fs::read(&runs[3]).unwrap();
    std::fs::write(&runs[3], &whole[..whole.len() / 2]).unwrap();
    let err = ok(&sweep(&cut, &[]));
    assert!(err.contains("ran 1 runs, 11 already done"), "{err}");
    assert_eq!(std::fs::read(&runs[3]).unwrap(), whole);
    assert_eq!(tree(&cut), tree(&full));
    // Another sweep into the same directory is refused.
    let mut args = vec!["sweep", "scenarios/quickstart.toml"];
    args.extend_from_slice(&AXES[..6]);
    args.extend_from_slice(&["--replications", "3", "--out", cut.to_str().unwrap()]);
    let out = cli(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to mix"));
    std::fs::remove_dir_all(full).ok();
    std::fs::remove_dir_all(cut).ok();
}

/// A `[sweep]` table in the file is used when the command line gives no axes; bad axes
/// are invalid input.
#[test]
fn sweep_table_and_bad_axes() {
    let dir = tmp("table");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string("scenarios/quickstart.toml").unwrap()
        + "\n[sweep]\nreplications = 2\ngrid = { \"service.payment.workers\" = [8, 16] }\n";
    let text = text.replace("duration = \"2m\"", "duration = \"20s\"");
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out_dir = dir.join("out");
    ok(&cli(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]));
    let csv = std::fs::read_to_string(out_dir.join("sweep_summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("point,runs,service.payment.workers,"));
    for bad in ["nope", "service.payment.workers=", "x=5..1 step 1"] {
        let o = cli(&[
            "sweep",
            "scenarios/quickstart.toml",
            "--param",
            bad,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
    }
    let o = cli(&[
        "sweep",
        "scenarios/quickstart.toml",
        "--param",
        "service.nosuch.workers=1,2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(dir).ok();
}

/// `compare` pairs runs on shared seeds: a longer payment timeout trades failed orders for
/// a longer tail, and both show as significant, in the right direction.
#[test]
fn compare_reports_paired_differences_and_verdicts() {
    let dir = tmp("compare");
    let out = cli(&[
        "compare",
        "scenarios/quickstart.toml",
        "--set",
        "sim.duration=20s",
        "--a",
        "service.orders.calls[1].timeout=300ms",
        "--b",
        "service.orders.calls[1].timeout=600ms",
        "--replications",
        "4",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok(&out);
    let csv = std::fs::read_to_string(dir.join("compare.csv")).unwrap();
    let verdict = |m: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{m},")))
            .unwrap_or_else(|| panic!("{m}"))
            .rsplit(',')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("workloads.shoppers.failed"), "better");
    assert_eq!(verdict("workloads.shoppers.latency_ms.p99"), "worse");
    // Same seeds on both sides: the arrivals are identical, so the difference is exactly 0.
    assert!(
        csv.contains("workloads.shoppers.sent,")
            && csv.contains(",0,0,0,no significant difference")
    );
    // The CDF's legend names each side by its overrides.
    let svg = std::fs::read_to_string(dir.join("compare-cdf.svg")).unwrap();
    assert!(
        svg.contains("A (service.orders.calls[1].timeout=300ms): shoppers")
            && svg.contains("B (service.orders.calls[1].timeout=600ms): shoppers"),
        "legend"
    );
    std::fs::remove_dir_all(dir).ok();
}
