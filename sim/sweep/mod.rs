//! Sweeps: a grid of scenario variants × replications, run in parallel (one world per
//! run), each run's metrics written atomically as it finishes, aggregated in a fixed order
//! so the files are the same bytes whatever the thread count, the shard split or an
//! interruption.

pub mod axes;
pub mod charts;
pub mod compare;
pub mod emit;
pub mod stats;

use crate::api::{replication_seed, run, Scenario};
use axes::Axis;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::io;
use std::path::{Path, PathBuf};

/// What to sweep.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario (with the command line's `--set` overrides).
    pub scenario: Scenario,
    /// Axes combined in a grid.
    pub grid: Vec<Axis>,
    /// Axes that move together.
    pub zip: Vec<Axis>,
    /// Replications per point.
    pub replications: u32,
}

/// Invalid input (exit 2) or a failure to write (exit 1).
#[derive(Debug)]
pub enum SweepError {
    /// The input is wrong.
    Invalid(String),
    /// Shards to merge are not all there yet (a directory without `sweep.json`, or runs
    /// missing): `merge --wait` waits for them.
    Incomplete(String),
    /// Writing failed.
    Io(io::Error),
}

impl From<io::Error> for SweepError {
    fn from(e: io::Error) -> Self {
        SweepError::Io(e)
    }
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::Invalid(m) | SweepError::Incomplete(m) => write!(f, "{m}"),
            SweepError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl Plan {
    /// Builds a plan from the scenario's `[sweep]` table, then the command line's axes
    /// (which replace the table's axes when given).
    pub fn new(
        scenario: Scenario,
        grid: Vec<Axis>,
        zip: Vec<Axis>,
        replications: Option<u32>,
    ) -> Result<Plan, SweepError> {
        let (g, z) = if grid.is_empty() && zip.is_empty() {
            table_axes(&scenario)?
        } else {
            (grid, zip)
        };
        let table_replications = scenario.raw.sweep.as_ref().and_then(|t| t.replications);
        let replications = replications.or(table_replications).unwrap_or(1);
        if replications == 0 {
            return Err(SweepError::Invalid(
                "replications must be at least 1".into(),
            ));
        }
        let plan = Plan {
            scenario,
            grid: g,
            zip: z,
            replications,
        };
        // Every point must validate before anything runs.
        for p in plan.points()? {
            plan.variant(&p)?;
        }
        Ok(plan)
    }

    /// The points, in order.
    pub fn points(&self) -> Result<Vec<Vec<(String, String)>>, SweepError> {
        axes::points(&self.grid, &self.zip).map_err(SweepError::Invalid)
    }

    /// The swept paths, grid first.
    pub fn params(&self) -> Vec<String> {
        self.grid
            .iter()
            .chain(&self.zip)
            .map(|a| a.path.clone())
            .collect()
    }

    fn variant(&self, point: &[(String, String)]) -> Result<Scenario, SweepError> {
        let sets: Vec<String> = point.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
        self.scenario
            .with(&refs)
            .map_err(|e| SweepError::Invalid(e.to_string()))
    }

    /// The manifest: what a sweep directory's results belong to. A resumed sweep and the
    /// shards to merge must have the same one.
    pub fn manifest(&self) -> Result<Value, SweepError> {
        Ok(json!({
            "faultline_version": crate::results::manifest::VERSION,
            "scenario": self.scenario.spec.name,
            "scenario_hash": self.scenario.hash(),
            "overrides": self.scenario.overrides,
            "base_seed": self.scenario.spec.seed,
            "grid": self.grid,
            "zip": self.zip,
            "replications": self.replications,
            "points": self.points()?.len(),
            // The text itself, so `merge` needs nothing but the shard directories.
            "scenario_text": self.scenario.text,
        }))
    }
}

/// The axes (grid, zip) of the scenario's own `[sweep]` table.
pub(crate) fn table_axes(scenario: &Scenario) -> Result<(Vec<Axis>, Vec<Axis>), SweepError> {
    let Some(table) = scenario.raw.sweep.as_ref() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let conv = |m: &toml::Table| {
        m.iter()
            .map(|(p, v)| axes::toml_values(p, v).map_err(SweepError::Invalid))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok((conv(&table.grid)?, conv(&table.zip)?))
}

/// Is this summary path a key metric (a column of sweep.csv)?
pub fn key_metric(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let last = *parts.last().unwrap_or(&"");
    match parts.first().copied() {
        Some("workloads") => true,
        Some("services") => {
            path.ends_with(".utilization")
                || path.ends_with(".latency_ms.p99")
                || path.ends_with(".queue_wait_ms.mean")
                || ["timeouts", "rejected", "errors"].contains(&last) && parts.len() == 3
        }
        Some("edges") => {
            ["amplification", "retries", "failed", "breaker_rejected"].contains(&last)
                && parts.len() == 3
        }
        Some("sagas") => {
            [
                "completed",
                "compensated",
                "failed",
                "stuck",
                "inconsistent",
            ]
            .contains(&last)
                && parts.len() == 3
        }
        Some("brokers") => ["dead_lettered", "double_effects", "max_ready"].contains(&last),
        Some("caches") => {
            ["hit_ratio", "misses", "coalesced", "stale_reads"].contains(&last) && parts.len() == 3
        }
        _ => false,
    }
}

fn run_file(dir: &Path, point: usize, r: u32) -> PathBuf {
    dir.join("runs").join(format!("p{point:04}-r{r:03}.json"))
}

/// Whether run `(point, r)` finished: its file reads back as the run file of that point and
/// replication. A truncated or foreign file does not count, so resuming runs it again.
fn run_done(dir: &Path, point: usize, r: u32) -> bool {
    let Ok(bytes) = std::fs::read(run_file(dir, point, r)) else {
        return false;
    };
    serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| {
        v["point"] == json!(point) && v["replication"] == json!(r) && v["metrics"].is_object()
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("plain data");
    b.push(b'\n');
    b
}

/// Prepares `dir` for `plan`: writes its manifest, or checks the one already there.
fn open_dir(plan: &Plan, dir: &Path) -> Result<(), SweepError> {
    std::fs::create_dir_all(dir.join("runs"))?;
    let manifest = plan.manifest()?;
    let path = dir.join("sweep.json");
    if let Ok(old) = std::fs::read(&path) {
        let old: Value = serde_json::from_slice(&old).unwrap_or(Value::Null);
        if old != manifest {
            return Err(SweepError::Invalid(format!(
                "{} holds results of another sweep (the scenario, its overrides, the axes, the replications or the faultline version changed): refusing to mix them; use another --out or delete it",
                dir.display()
            )));
        }
    } else {
        write_atomic(&path, &pretty(&manifest))?;
    }
    Ok(())
}

/// Which runs a shard does: points K, K+N, K+2N...
#[derive(Clone, Copy, Debug)]
pub struct Shard {
    /// This shard's index.
    pub k: usize,
    /// How many shards.
    pub n: usize,
}

impl Shard {
    /// All points.
    pub const ALL: Shard = Shard { k: 0, n: 1 };

    /// Parses `K/N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: expected K/N, e.g. 0/4"))?;
        let (k, n): (usize, usize) = (
            k.trim()
                .parse()
                .map_err(|_| format!("--shard {s:?}: K is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("--shard {s:?}: N is not a number"))?,
        );
        if n == 0 || k >= n {
            return Err(format!("--shard {s:?}: need 0 <= K < N"));
        }
        Ok(Shard { k, n })
    }
}

/// What a sweep did.
pub struct Outcome {
    /// Runs done now.
    pub ran: usize,
    /// Runs found finished already (resumed).
    pub skipped: usize,
    /// Runs the sweep has in all.
    pub total: usize,
    /// The aggregate files were written (every run of every point is there).
    pub complete: bool,
}

/// Runs the plan's runs that this shard owns and are not finished yet, writing each as it
/// finishes; then, if every run is there, writes the aggregates.
pub fn execute(
    plan: &Plan,
    dir: &Path,
    shard: Shard,
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Outcome, SweepError> {
    open_dir(plan, dir)?;
    let points = plan.points()?;
    let todo: Vec<(usize, u32)> = (0..points.len())
        .filter(|p| p % shard.n == shard.k)
        .flat_map(|p| (0..plan.replications).map(move |r| (p, r)))
        .collect();
    let (done, missing): (Vec<_>, Vec<_>) =
        todo.into_iter().partition(|&(p, r)| run_done(dir, p, r));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| SweepError::Io(io::Error::other(e)))?;
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(), SweepError>> = pool.install(|| {
        missing
            .par_iter()
            .map(|&(p, r)| {
                let scn = plan.variant(&points[p])?;
                let seed = replication_seed(plan.scenario.spec.seed, r);
                let s = run(&scn, seed);
                let metrics: Map<String, Value> = s
                    .metrics()
                    .into_iter()
                    .filter(|(k, _)| key_metric(k))
                    .map(|(k, v)| (k, json!(v)))
                    .collect();
                let doc = json!({
                    "point": p,
                    "replication": r,
                    "seed": seed,
                    "set": points[p].iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                    "stop_reason": s.json["stop_reason"],
                    "metrics": metrics,
                });
                write_atomic(&run_file(dir, p, r), &pretty(&doc))?;
                progress(counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                Ok(())
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let total = points.len() * plan.replications as usize;
    let complete = (0..points.len()).all(|p| (0..plan.replications).all(|r| run_done(dir, p, r)));
    if complete {
        aggregate(plan, dir)?;
    }
    Ok(Outcome {
        ran: missing.len(),
        skipped: done.len(),
        total,
        complete,
    })
}

/// Reads every run file and writes `sweep.csv`, `sweep_summary.csv` and the charts.
pub fn aggregate(plan: &Plan, dir: &Path) -> Result<(), SweepError> {
    let points = plan.points()?;
    let params = plan.params();
    let mut runs: Vec<Vec<Value>> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for p in 0..points.len() {
        let mut per = Vec::new();
        for r in 0..plan.replications {
            let path = run_file(dir, p, r);
            let v: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .map_err(|e| SweepError::Invalid(format!("{}: {e}", path.display())))?;
            if let Some(m) = v["metrics"].as_object() {
                for k in m.keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            per.push(v);
        }
        runs.push(per);
    }
    let cell = |x: Option<f64>| x.map_or(String::new(), stats::fmt);
    // sweep.csv: one row per run.
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["point".to_string(), "replication".into(), "seed".into()];
    head.extend(params.iter().cloned());
    head.extend(columns.iter().cloned());
    w.write_record(&head).map_err(io::Error::other)?;
    for (p, per) in runs.iter().enumerate() {
        for v in per {
            let mut row = vec![
                p.to_string(),
                v["replication"].to_string(),
                v["seed"].to_string(),
            ];
            row.extend(points[p].iter().map(|(_, x)| x.clone()));
            row.extend(columns.iter().map(|c| cell(v["metrics"][c].as_f64())));
            w.write_record(&row).map_err(io::Error::other)?;
        }
    }
    write_atomic(
        &dir.join("sweep.csv"),
        &w.into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?,
    )?;
    // sweep_summary.csv: per point, mean, standard deviation and 95 % interval per metric.
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["point".to_string(), "runs".into()];
    head.extend(params.iter().cloned());
    for c in &columns {
        for s in ["mean", "sd", "ci95_lo", "ci95_hi"] {
            head.push(format!("{c}:{s}"));
        }
    }
    w.write_record(&head).map_err(io::Error::other)?;
    let mut summaries: Vec<Vec<stats::Summary>> = Vec::new();
    for (p, per) in runs.iter().enumerate() {
        let mut row = vec![p.to_string(), per.len().to_string()];
        row.extend(points[p].iter().map(|(_, x)| x.clone()));
        let mut sums = Vec::new();
        for c in &columns {
            let xs: Vec<f64> = per
                .iter()
                .filter_map(|v| v["metrics"][c].as_f64())
                .collect();
            let s = stats::Summary::of(&xs);
            row.extend([s.mean, s.sd, s.lo, s.hi].map(|x| cell(Some(x))));
            sums.push(s);
        }
        summaries.push(sums);
        w.write_record(&row).map_err(io::Error::other)?;
    }
    write_atomic(
        &dir.join("sweep_summary.csv"),
        &w.into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?,
    )?;
    charts::sweep_charts(dir, &plan.grid, &plan.zip, &points, &columns, &summaries)?;
    Ok(())
}

/// Joins shard directories into `out`: the same manifest in each, their runs copied, then
/// the aggregates, exactly as one sweep writes them.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Outcome, SweepError> {
    let mut manifest: Option<Value> = None;
    for d in dirs {
        let m: Value = std::fs::read(d.join("sweep.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                SweepError::Incomplete(format!(
                    "{} has no sweep.json: not a sweep directory (or its shard has not started)",
                    d.display()
                ))
            })?;
        match &manifest {
            None => manifest = Some(m),
            Some(first) if *first != m => {
                return Err(SweepError::Invalid(format!(
                    "{} belongs to another sweep than {}: refusing to merge",
                    d.display(),
                    dirs[0].display()
                )))
            }
            _ => {}
        }
    }
    let manifest = manifest.ok_or_else(|| SweepError::Invalid("no directories to merge".into()))?;
    let plan = plan_from_manifest(&manifest)?;
    if plan.manifest()? != manifest {
        return Err(SweepError::Invalid(
            "sweep.json does not describe itself (edited by hand, or written by another faultline version): refusing to merge".into(),
        ));
    }
    open_dir(&plan, out)?;
    for d in dirs {
        let rd = std::fs::read_dir(d.join("runs"))?;
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
        {
            let target = out.join("runs").join(p.file_name().expect("a file"));
            let whole = std::fs::read(&p)
                .ok()
                .is_some_and(|b| serde_json::from_slice::<Value>(&b).is_ok());
            if whole && !target.exists() {
                write_atomic(&target, &std::fs::read(&p)?)?;
            }
        }
    }
    let points = plan.points()?.len();
    let missing: Vec<String> = (0..points)
        .flat_map(|p| (0..plan.replications).map(move |r| (p, r)))
        .filter(|&(p, r)| !run_done(out, p, r))
        .map(|(p, r)| format!("p{p:04}-r{r:03}"))
        .collect();
    if !missing.is_empty() {
        return Err(SweepError::Incomplete(format!(
            "{} run(s) missing after the merge (a shard did not finish?): {}",
            missing.len(),
            missing
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    aggregate(&plan, out)?;
    Ok(Outcome {
        ran: 0,
        skipped: points * plan.replications as usize,
        total: points * plan.replications as usize,
        complete: true,
    })
}

/// The plan a manifest describes, from the scenario text it carries.
fn plan_from_manifest(m: &Value) -> Result<Plan, SweepError> {
    let text = m["scenario_text"].as_str().ok_or_else(|| {
        SweepError::Invalid(
            "sweep.json carries no scenario text: it was written by an older faultline; run the shards again with this one".into(),
        )
    })?;
    let overrides: Vec<String> = m["overrides"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let label = format!(
        "sweep.json's scenario {:?}",
        m["scenario"].as_str().unwrap_or("")
    );
    let scenario = crate::scenario::parse(&label, text, &overrides)
        .map_err(|e| SweepError::Invalid(e.to_string()))?;
    let axes = |k: &str| -> Vec<Axis> { serde_json::from_value(m[k].clone()).unwrap_or_default() };
    Ok(Plan {
        scenario,
        grid: axes("grid"),
        zip: axes("zip"),
        replications: m["replications"].as_u64().unwrap_or(1) as u32,
    })
}
