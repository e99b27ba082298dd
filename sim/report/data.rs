//! A run directory read back: the files `faultline run` wrote, for charts and the HTML report.

use super::traces::{from_chrome, TraceView};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

pub use crate::metrics::SeriesRow;
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
    /// `latency_cdf.csv`.
    pub cdf: Vec<CdfRec>,
    /// `traces.json`, read back.
    pub traces: Vec<TraceView>,
    /// `scenario.toml`: the scenario's text as given.
    pub scenario_text: String,
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

fn events(dir: &Path) -> Result<Vec<StateEvent>, String> {
    csv_rows::<EventRec>(dir, "events.csv")?
        .into_iter()
        .map(|r| StateEvent::from_columns(r.t_s, &r.kind, &r.subject, &r.detail))
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
        Ok(RunData {
            summary: json_file(dir, "summary.json")?,
            manifest: Manifest::read(dir)?,
            series: csv_rows(dir, "timeseries.csv")?,
            events: events(dir)?,
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
        let mut out: Vec<String> = Vec::new();
        for r in self.series.iter().filter(|r| r.kind == kind) {
            if !out.contains(&r.name) {
                out.push(r.name.clone());
            }
        }
        out
    }

    /// The rows of one component, in time order.
    pub fn rows<'a>(&'a self, kind: &'a str, name: &'a str) -> impl Iterator<Item = &'a SeriesRow> {
        self.series
            .iter()
            .filter(move |r| r.kind == kind && r.name == name)
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
