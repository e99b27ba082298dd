//! A run directory read back: the files `faultline run` wrote, for charts and the HTML report.

use super::traces::{from_chrome, TraceView};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::metrics::{InstanceRow, SeriesRow};
pub use crate::results::events::StateEvent;
use crate::results::manifest::Manifest;

/// One row of `events.csv` as text, before `StateEvent::from_columns` types it.
#[derive(Deserialize)]
struct EventRec {
    t_s: f64,
    kind: String,
    subject: String,
    detail: String,
}

/// One row of `latency_cdf.csv`.
#[derive(Clone, Debug, Deserialize)]
#[allow(missing_docs)]
pub struct CdfRec {
    pub workload: String,
    pub latency_ms: f64,
    pub fraction: f64,
}

/// Everything in a run directory.
pub struct RunData {
    /// `summary.json`.
    pub summary: Value,
    /// `manifest.json`.
    pub manifest: Manifest,
    /// `timeseries.csv`.
    pub series: Vec<SeriesRow>,
    /// `events.csv`.
    pub events: Vec<StateEvent>,
    /// `instances.csv`, for the services the load-share charts show (see [`instances`]).
    pub instances: Vec<InstanceRow>,
    /// `latency_cdf.csv`.
    pub cdf: Vec<CdfRec>,
    /// `traces.json`, read back.
    pub traces: Vec<TraceView>,
    /// `scenario.toml`: the scenario's text as given.
    pub scenario_text: String,
    /// The rows of each `(kind, name)` in `series`, in time order, and the components in
    /// first-seen order: a report of 2,000 services looks each one up once, not by
    /// scanning every row for its name.
    index: BTreeMap<(String, String), Vec<usize>>,
    seen: Vec<(String, String)>,
}

fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name))
        .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
}

fn csv_rows<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<Vec<T>, String> {
    let path = dir.join(name);
    let mut r = csv::Reader::from_path(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    r.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Points per series the charts are drawn from at most: a longer series is merged
/// `stride` buckets at a time as it streams in, so a report's memory does not grow with
/// the run's duration.
pub const MAX_POINTS: usize = 4_000;

/// State changes kept for the charts at most (the file keeps them all).
pub const MAX_EVENTS: usize = 200_000;

/// `timeseries.csv`, streamed twice: once to count each component's buckets, once to
/// keep every row (a run of up to `MAX_POINTS` buckets: the file as written) or `stride`
/// buckets merged into one (counts summed, latencies and levels at their maximum,
/// utilisation averaged), which keeps a spike's height in the chart.
fn series(dir: &Path) -> Result<Vec<SeriesRow>, String> {
    merged_rows(
        &dir.join("timeseries.csv"),
        |r: &SeriesRow| (r.kind.to_string(), r.name.clone()),
        |_| true,
        merge,
        |r| r.t_s,
    )
}

/// The rows of a per-bucket CSV file that `keep` keeps, streamed twice: once to count each
/// component's buckets (components told apart by `key`), once to keep every row when the
/// longest component has at most `MAX_POINTS` buckets, else `stride` buckets of each merged
/// into one by `merge` (given how many the first already holds). Sorted by time (`t_s`).
fn merged_rows<T: for<'de> Deserialize<'de>, K: Ord + Clone>(
    path: &Path,
    key: impl Fn(&T) -> K,
    keep: impl Fn(&T) -> bool,
    merge: impl Fn(&mut T, &T, usize),
    t_s: impl Fn(&T) -> f64,
) -> Result<Vec<T>, String> {
    let open =
        || csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let mut buckets: std::collections::BTreeMap<K, usize> = Default::default();
    for row in open()?.deserialize::<T>() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        if keep(&row) {
            *buckets.entry(key(&row)).or_default() += 1;
        }
    }
    let longest = buckets.values().copied().max().unwrap_or(0);
    let stride = longest.div_ceil(MAX_POINTS).max(1);
    let mut out = Vec::new();
    // Per component: the merged row being built and how many buckets it holds.
    let mut open_rows: std::collections::BTreeMap<K, (T, usize)> = Default::default();
    for row in open()?.deserialize::<T>() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        if !keep(&row) {
            continue;
        }
        if stride == 1 {
            out.push(row);
            continue;
        }
        let k = key(&row);
        let done = match open_rows.get_mut(&k) {
            None => {
                open_rows.insert(k.clone(), (row, 1));
                false
            }
            Some((m, n)) => {
                merge(m, &row, *n);
                *n += 1;
                *n == stride
            }
        };
        if done {
            out.push(open_rows.remove(&k).expect("just merged").0);
        }
    }
    out.extend(open_rows.into_values().map(|(m, _)| m));
    out.sort_by(|a, b| t_s(a).total_cmp(&t_s(b)));
    Ok(out)
}

/// Folds bucket `b` into `m`, which already holds `n` buckets.
fn merge(m: &mut SeriesRow, b: &SeriesRow, n: usize) {
    m.requests += b.requests;
    m.ok += b.ok;
    m.errors += b.errors;
    m.rejected += b.rejected;
    m.timeouts += b.timeouts;
    m.latency_p50_ms = m.latency_p50_ms.max(b.latency_p50_ms);
    m.latency_p90_ms = m.latency_p90_ms.max(b.latency_p90_ms);
    m.latency_p99_ms = m.latency_p99_ms.max(b.latency_p99_ms);
    m.latency_p999_ms = m.latency_p999_ms.max(b.latency_p999_ms);
    m.in_flight = m.in_flight.max(b.in_flight);
    m.queue_depth = m.queue_depth.max(b.queue_depth);
    m.utilization = (m.utilization * n as f64 + b.utilization) / (n + 1) as f64;
    m.oldest_age_s = m.oldest_age_s.max(b.oldest_age_s);
}

/// Services whose instances get a load-share chart, at most (the first in the file).
pub const SHARE_SERVICES: usize = 6;
/// Instances a load-share chart draws, at most (a service with more gets none: its spread
/// is in `summary.json`).
pub const SHARE_INSTANCES: u32 = 20;

/// `instances.csv` for the first [`SHARE_SERVICES`] services with at most
/// [`SHARE_INSTANCES`] instances, merged as `timeseries.csv` is (requests summed, in flight
/// at its maximum). A directory from before the file existed has none.
fn instances(dir: &Path) -> Result<Vec<InstanceRow>, String> {
    let path = dir.join("instances.csv");
    if !path.exists() {
        return Ok(Vec::new());
    }
    // Which services qualify: one pass for their widths.
    // (A map, not a scan of the services seen so far: a system of thousands of services
    // writes a row per instance per bucket.)
    let mut widest: BTreeMap<String, (usize, u32)> = BTreeMap::new();
    let mut r = csv::Reader::from_path(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for row in r.deserialize::<InstanceRow>() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let order = widest.len();
        let w = widest.entry(row.service).or_insert((order, 0));
        w.1 = w.1.max(row.instance + 1);
    }
    let mut chosen: Vec<(usize, String)> = widest
        .into_iter()
        .filter(|(_, (_, n))| *n <= SHARE_INSTANCES)
        .map(|(s, (order, _))| (order, s))
        .collect();
    chosen.sort();
    let chosen: std::collections::BTreeSet<String> = chosen
        .into_iter()
        .take(SHARE_SERVICES)
        .map(|(_, s)| s)
        .collect();
    merged_rows(
        &path,
        |r: &InstanceRow| (r.service.clone(), r.instance),
        |r| chosen.contains(&r.service),
        |m, b, _| {
            m.requests += b.requests;
            m.in_flight = m.in_flight.max(b.in_flight);
        },
        |r| r.t_s,
    )
}

fn events(dir: &Path) -> Result<Vec<StateEvent>, String> {
    let path = dir.join("events.csv");
    let mut r = csv::Reader::from_path(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    r.deserialize::<EventRec>()
        .take(MAX_EVENTS)
        .map(|r| {
            let r = r.map_err(|e| format!("{}: {e}", path.display()))?;
            StateEvent::from_columns(r.t_s, &r.kind, &r.subject, &r.detail)
        })
        .collect()
}

fn json_file(dir: &Path, name: &str) -> Result<Value, String> {
    serde_json::from_str(&read(dir, name)?)
        .map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

impl RunData {
    /// Reads a directory written by `faultline run`.
    pub fn load(dir: &Path) -> Result<RunData, String> {
        if !dir.join("summary.json").exists() {
            return Err(format!(
                "{} has no summary.json: give a directory written by `faultline run`",
                dir.display()
            ));
        }
        let summary = json_file(dir, "summary.json")?;
        RunData::load_with_summary(dir, summary)
    }

    /// [`RunData::load`] with the summary given rather than read (a run that has it in
    /// memory, before `summary.json` is written).
    pub fn load_with_summary(dir: &Path, summary: Value) -> Result<RunData, String> {
        let series = series(dir)?;
        let mut index: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        let mut seen = Vec::new();
        for (i, r) in series.iter().enumerate() {
            let key = (r.kind.to_string(), r.name.clone());
            match index.get_mut(&key) {
                Some(rows) => rows.push(i),
                None => {
                    seen.push(key.clone());
                    index.insert(key, vec![i]);
                }
            }
        }
        Ok(RunData {
            summary,
            manifest: Manifest::read(dir)?,
            series,
            index,
            seen,
            events: events(dir)?,
            instances: instances(dir)?,
            cdf: csv_rows(dir, "latency_cdf.csv")?,
            traces: from_chrome(&json_file(dir, "traces.json")?)
                .map_err(|e| format!("{}: {e}", dir.join("traces.json").display()))?,
            scenario_text: read(dir, "scenario.toml")?,
        })
    }

    /// The scenario again, from `scenario.toml` with the manifest's overrides.
    pub fn scenario(&self) -> Result<crate::scenario::Scenario, String> {
        let m = &self.manifest;
        crate::scenario::parse(&m.scenario_file, &self.scenario_text, &m.overrides)
            .map_err(|e| e.to_string())
    }

    /// Names of a kind's components in first-seen order.
    pub fn names(&self, kind: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The rows of one component, in time order.
    pub fn rows<'a>(&'a self, kind: &str, name: &str) -> impl Iterator<Item = &'a SeriesRow> {
        self.index
            .get(&(kind.to_string(), name.to_string()))
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.series[i])
    }

    /// The time-series bucket width, seconds.
    pub fn bucket_s(&self) -> f64 {
        let mut ts = self.series.iter().map(|r| r.t_s);
        let first = ts.next().unwrap_or(0.0);
        ts.find(|&t| t > first).map_or(1.0, |t| t - first)
    }

    /// Simulated duration, seconds.
    pub fn duration_s(&self) -> f64 {
        self.summary["sim_duration_s"].as_f64().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: usize, p99: f64) -> SeriesRow {
        SeriesRow {
            t_s: t as f64,
            kind: "service".into(),
            name: "api".into(),
            requests: 10,
            ok: 9,
            errors: 1,
            rejected: 0,
            timeouts: 0,
            latency_p50_ms: 1.0,
            latency_p90_ms: 2.0,
            latency_p99_ms: p99,
            latency_p999_ms: p99,
            in_flight: 3,
            queue_depth: (t % 7) as u64,
            utilization: 0.5,
            oldest_age_s: 0.0,
        }
    }

    /// A series ten times longer than `MAX_POINTS` is merged ten buckets at a time as it
    /// streams in: totals kept, the one-bucket spike kept at its height.
    #[test]
    fn long_series_are_merged_keeping_totals_and_peaks() {
        let dir = std::env::temp_dir().join(format!("faultline-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = 10 * MAX_POINTS;
        let mut w = csv::Writer::from_path(dir.join("timeseries.csv")).unwrap();
        for t in 0..n {
            w.serialize(row(t, if t == 12_345 { 900.0 } else { 5.0 }))
                .unwrap();
        }
        w.flush().unwrap();
        let rows = series(&dir).unwrap();
        assert_eq!(rows.len(), MAX_POINTS);
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 10 * n as u64);
        assert_eq!(rows[1].t_s - rows[0].t_s, 10.0);
        let peak = rows.iter().map(|r| r.latency_p99_ms).fold(0.0, f64::max);
        assert_eq!(peak, 900.0);
        assert_eq!(rows.iter().map(|r| r.queue_depth).max(), Some(6));
        assert!(rows.iter().all(|r| (r.utilization - 0.5).abs() < 1e-12));
        // A short series comes back as written.
        let mut w = csv::Writer::from_path(dir.join("timeseries.csv")).unwrap();
        for t in 0..100 {
            w.serialize(row(t, 5.0)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(
            series(&dir).unwrap(),
            (0..100).map(|t| row(t, 5.0)).collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
