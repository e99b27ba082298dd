//! `manifest.json`: what it takes to reproduce a run, written and read in this one place.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The crate version written into every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `manifest.json` of a run directory. Fields are written in this order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The faultline version that ran it.
    pub faultline_version: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file as given on the command line.
    pub scenario_file: String,
    /// A stable hash of the file's text and the overrides.
    pub scenario_hash: String,
    /// The seed.
    pub seed: u64,
    /// The `--set` overrides, in order.
    pub overrides: Vec<String>,
    /// The scenario as run: every default filled in.
    pub effective: Value,
    /// The command that runs it again.
    pub reproduce: String,
}

impl Manifest {
    /// The manifest of a run of scenario `name` from `file` with `overrides` and `seed`;
    /// `hash` and `effective` (every default filled in) come from the parsed scenario.
    pub fn new(
        name: &str,
        file: &str,
        hash: String,
        seed: u64,
        overrides: &[String],
        effective: Value,
    ) -> Manifest {
        Manifest {
            faultline_version: VERSION.to_string(),
            scenario: name.to_string(),
            scenario_file: file.to_string(),
            scenario_hash: hash,
            seed,
            overrides: overrides.to_vec(),
            effective,
            reproduce: format!(
                "faultline run {file} --seed {seed}{}",
                overrides
                    .iter()
                    .map(|o| format!(" --set {o}"))
                    .collect::<String>()
            ),
        }
    }

    /// Reads the `manifest.json` in `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The services the scenario's `[report] services` chose, if it chose any.
    pub fn report_services(&self) -> Option<Vec<String>> {
        self.effective["report"]["services"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }
}
