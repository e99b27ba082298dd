//! The library API: load a scenario, run it at a seed, read metrics by their path in
//! `summary.json`. Enough to write resilience regression tests in plain `cargo test`.
//!
//! ```
//! use faultline::api::{run, Scenario};
//!
//! let scn = Scenario::from_path("scenarios/quickstart.toml").unwrap()
//!     .with(&["sim.duration=20s", "service.payment.workers=32"]).unwrap();
//! let summary = run(&scn, 42);
//! let p99 = summary.get("workloads.shoppers.latency_ms.p99").unwrap();
//! assert!(p99 < 1_000.0, "p99 {p99} ms");
//! ```

pub mod gallery;

use crate::metrics::{SeriesRow, Sink, StateEvent};
use crate::model::{RunOptions, RunResult, World};
use crate::report::{summary_json, CsvSink};
use crate::results::summary::flatten;
pub use crate::results::summary::lookup;
pub use crate::scenario::diag::ScenarioError;
pub use crate::scenario::Scenario;
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        crate::scenario::load(path.as_ref(), &[])
    }

    /// Validates scenario text; `name` is used in error messages.
    pub fn from_toml_str(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        crate::scenario::parse(name, text, &[])
    }

    /// The same scenario with more `path=value` overrides (as `--set` takes them).
    pub fn with(&self, overrides: &[&str]) -> Result<Scenario, ScenarioError> {
        let mut all = self.overrides.clone();
        all.extend(overrides.iter().map(|s| s.to_string()));
        crate::scenario::parse(&self.file, &self.text, &all)
    }
}

/// A sink that keeps nothing: runs that only need the summary.
struct NullSink;

impl Sink for NullSink {
    fn series(&mut self, _: &SeriesRow) {}
    fn event(&mut self, _: &StateEvent) {}
    fn instance(&mut self, _: &crate::metrics::InstanceRow) {}
}

/// What a run produced: `summary.json` as a value, and the raw results.
pub struct Summary {
    /// The `summary.json` document.
    pub json: Value,
    /// The run's results.
    pub result: RunResult,
}

impl Summary {
    /// A number by its path in `summary.json`, e.g. `workloads.shoppers.latency_ms.p99` or
    /// `edges.front->inventory.amplification` (names may contain dots).
    pub fn get(&self, path: &str) -> Option<f64> {
        lookup(&self.json, path).and_then(Value::as_f64)
    }

    /// Every numeric leaf of the summary as (path, value), in document order.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        flatten(&self.json, String::new(), &mut out);
        out
    }
}

/// Runs `scn` with its seed replaced by `seed` (nothing is written to disk).
pub fn run(scn: &Scenario, seed: u64) -> Summary {
    let mut spec = scn.spec.clone();
    spec.seed = seed;
    let result = World::new(&spec, RunOptions::default()).run(&mut NullSink);
    let seeded = Scenario {
        spec,
        ..scn.clone()
    };
    Summary {
        json: summary_json(&seeded, &result),
        result,
    }
}

/// The seed of replication `r` of a scenario whose seed is `base`: `base` itself for the
/// first, then a SplitMix64 mix of both, the same whatever else varies (common random
/// numbers across the points of a sweep or the variants of a comparison). Always below
/// 2^63, so it can be given back as `--seed`.
pub fn replication_seed(base: u64, r: u32) -> u64 {
    if r == 0 {
        return base;
    }
    // 63 bits: a TOML integer (what `--seed` and `sim.seed` accept) is an i64.
    crate::rng::mix64(base ^ (r as u64).wrapping_mul(crate::rng::GOLDEN)) & i64::MAX as u64
}

/// What [`run_to_dir`] produced.
pub struct RunOutput {
    /// Where the files are.
    pub dir: PathBuf,
    /// The results.
    pub result: RunResult,
    /// What happened: the insights' texts, as `summary.json` lists them.
    pub insights: Vec<String>,
}

/// Runs a scenario and writes every output file into `dir` (created if needed).
pub fn run_to_dir(scn: &Scenario, dir: &Path) -> io::Result<RunOutput> {
    run_to_dir_observed(scn, dir, false, &mut |_| {})
}

/// A sink that passes everything on and reports the simulated time of each new bucket.
struct Observed<'a> {
    inner: CsvSink,
    progress: &'a mut dyn FnMut(f64),
    last_s: f64,
}

impl Sink for Observed<'_> {
    fn series(&mut self, row: &SeriesRow) {
        if row.t_s > self.last_s {
            self.last_s = row.t_s;
            (self.progress)(row.t_s);
        }
        self.inner.series(row);
    }
    fn event(&mut self, event: &StateEvent) {
        self.inner.event(event);
    }
    fn instance(&mut self, row: &crate::metrics::InstanceRow) {
        self.inner.instance(row);
    }
    fn pulse(&mut self, now: crate::time::SimTime) {
        (self.progress)(now.as_secs_f64());
    }
}

/// [`run_to_dir`], telling `progress` the simulated time (seconds) as each time-series bucket
/// closes and every million events (for a progress display: it never changes what is
/// written), and drawing PNG copies
/// of the charts when `png`.
pub fn run_to_dir_observed(
    scn: &Scenario,
    dir: &Path,
    png: bool,
    progress: &mut dyn FnMut(f64),
) -> io::Result<RunOutput> {
    // Everything is written into a staging directory beside `dir` and renamed into place
    // at the end: a run killed halfway leaves `dir` as it was (an earlier run, whole) and
    // a `.NAME.partial-PID` directory that says what it is, never a mix of two runs.
    let staging = match dir.file_name() {
        Some(_) => staging_dir(dir)?,
        // `.` or `/`: nothing to rename; written in place.
        None => {
            std::fs::create_dir_all(dir)?;
            dir.to_path_buf()
        }
    };
    let mut sink = Observed {
        inner: CsvSink::create(&staging)?,
        progress,
        last_s: -1.0,
    };
    let result = World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    sink.inner.finish()?;
    let insights = crate::report::write_outputs(scn, &staging, &result, png)?;
    if staging != dir {
        swap_into_place(&staging, dir)?;
    }
    Ok(RunOutput {
        dir: dir.to_path_buf(),
        result,
        insights,
    })
}

/// A fresh, empty `.NAME.partial-PID` directory beside `dir`; leftovers of runs into `dir`
/// that were killed are removed first.
fn staging_dir(dir: &Path) -> io::Result<std::path::PathBuf> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other(format!("{} names no directory", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let prefix = format!(".{name}.partial-");
    for entry in std::fs::read_dir(&parent)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    Ok(staging)
}

/// Replaces `dir` by the finished `staging` directory: the old one is moved aside, the new
/// one renamed into place, the old one removed.
fn swap_into_place(staging: &Path, dir: &Path) -> io::Result<()> {
    if dir.exists() {
        let mut old_name = staging.file_name().expect("a named directory").to_owned();
        old_name.push("-old");
        let old = staging.with_file_name(old_name);
        std::fs::rename(dir, &old)?;
        std::fs::rename(staging, dir)?;
        std::fs::remove_dir_all(&old)
    } else {
        std::fs::rename(staging, dir)
    }
}
