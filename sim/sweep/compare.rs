//! `faultline compare`: two variants of a scenario on the same seeds, paired differences
//! of every key metric with 95 % intervals, and a verdict per metric.

use super::stats::{self, Summary};
use super::{key_metric, SweepError};
use crate::api::{replication_seed, run, Scenario};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Whether lower is better for a metric (Some(true)), higher (Some(false)), or neither.
fn lower_is_better(path: &str) -> Option<bool> {
    let last = path.rsplit('.').next().unwrap_or(path);
    if path.contains(".latency_ms.") || path.contains(".queue_wait_ms.") {
        return Some(true);
    }
    match last {
        "error_rate" | "failed" | "errors" | "rejected" | "timeouts" | "amplification"
        | "retries" | "breaker_rejected" | "stuck" | "inconsistent" | "dead_lettered"
        | "double_effects" | "pending_at_end" => Some(true),
        "ok" | "completed" => Some(false),
        _ => None,
    }
}

/// A labelled latency CDF: (label, (ms, fraction)).
pub type Cdf = (String, Vec<(f64, f64)>);

/// One metric's comparison.
#[derive(Clone, Debug)]
pub struct Row {
    /// Path in summary.json.
    pub metric: String,
    /// Mean under A and under B.
    pub a: f64,
    /// Mean under B.
    pub b: f64,
    /// The paired difference B − A: mean and interval.
    pub diff: Summary,
    /// better, worse, changed, no significant difference.
    pub verdict: &'static str,
}

/// "A (x=1, y=2)": a variant's letter and the overrides that make it ("A (as written)" when
/// none), to name it in legends.
pub fn variant_label(letter: &str, sets: &[String]) -> String {
    if sets.is_empty() {
        format!("{letter} (as written)")
    } else {
        format!("{letter} ({})", sets.join(", "))
    }
}

/// Runs both variants on replications 0..r and compares them; `labels` name A and B in the
/// CDF legend.
pub fn compare(
    a: &Scenario,
    b: &Scenario,
    labels: [&str; 2],
    r: u32,
    jobs: usize,
) -> Result<(Vec<Row>, Vec<Cdf>), SweepError> {
    let base = a.spec.seed;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| SweepError::Io(std::io::Error::other(e)))?;
    let runs: Vec<(crate::api::Summary, crate::api::Summary)> = pool.install(|| {
        (0..r)
            .into_par_iter()
            .map(|k| {
                let seed = replication_seed(base, k);
                (run(a, seed), run(b, seed))
            })
            .collect()
    });
    let metrics: Vec<String> = runs[0]
        .0
        .metrics()
        .into_iter()
        .map(|m| m.0)
        .filter(|m| key_metric(m))
        .collect();
    let mut rows = Vec::new();
    for m in metrics {
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|(x, y)| Some((x.get(&m)?, y.get(&m)?)))
            .collect();
        if pairs.len() != runs.len() {
            continue;
        }
        let diffs: Vec<f64> = pairs.iter().map(|(x, y)| y - x).collect();
        let d = Summary::of(&diffs);
        let mean =
            |f: fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / pairs.len() as f64;
        let significant = pairs.len() > 1 && (d.lo > 0.0 || d.hi < 0.0);
        let verdict = if pairs.len() < 2 {
            "n/a: one replication"
        } else if !significant {
            "no significant difference"
        } else {
            match lower_is_better(&m) {
                Some(true) if d.mean < 0.0 => "better",
                Some(false) if d.mean > 0.0 => "better",
                Some(_) => "worse",
                None => "changed",
            }
        };
        rows.push(Row {
            metric: m,
            a: mean(|p| p.0),
            b: mean(|p| p.1),
            diff: d,
            verdict,
        });
    }
    let mut cdfs = Vec::new();
    for (label, s) in [(labels[0], &runs[0].0), (labels[1], &runs[0].1)] {
        for w in &s.result.workloads {
            cdfs.push((format!("{label}: {}", w.name), w.cdf.clone()));
        }
    }
    Ok((rows, cdfs))
}

/// compare.csv.
pub fn csv(rows: &[Row]) -> String {
    let mut o = String::from("metric,a_mean,b_mean,diff_mean,diff_ci95_lo,diff_ci95_hi,verdict\n");
    for r in rows {
        let _ = writeln!(
            o,
            "{},{},{},{},{},{},{}",
            r.metric,
            stats::fmt(r.a),
            stats::fmt(r.b),
            stats::fmt(r.diff.mean),
            stats::fmt(r.diff.lo),
            stats::fmt(r.diff.hi),
            r.verdict
        );
    }
    o
}

/// The table printed on stdout: workload metrics, then everything that differs.
pub fn table(rows: &[Row]) -> String {
    let mut o = format!(
        "{:<48} {:>12} {:>12} {:>26}  verdict\n",
        "metric", "A", "B", "B - A (95 % interval)"
    );
    for r in rows.iter().filter(|r| {
        r.metric.starts_with("workloads.")
            || r.verdict == "better"
            || r.verdict == "worse"
            || r.verdict == "changed"
    }) {
        let _ = writeln!(
            o,
            "{:<48} {:>12} {:>12} {:>26}  {}",
            r.metric,
            stats::fmt(r.a),
            stats::fmt(r.b),
            format!(
                "{} [{}, {}]",
                stats::fmt(r.diff.mean),
                stats::fmt(r.diff.lo),
                stats::fmt(r.diff.hi)
            ),
            r.verdict
        );
    }
    o
}

/// Writes compare.csv and the overlaid CDF into `dir`.
pub fn write(
    dir: &Path,
    rows: &[Row],
    cdfs: Vec<(String, Vec<(f64, f64)>)>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.csv"), csv(rows))?;
    crate::report::charts::cdf_overlay(dir, "compare-cdf", cdfs)
}
