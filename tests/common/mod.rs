//! Helpers shared by the model-level test files: run a scenario (a file, or text) with
//! overrides and keep its results and its state-change log.

// Each test file uses its own subset of these.
#![allow(dead_code)]

use faultline::metrics::{MemorySink, StateEvent};
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario::{self, Scenario};

/// Runs a loaded scenario; its result and its `events.csv` rows.
pub fn run(scn: &Scenario) -> (RunResult, Vec<StateEvent>) {
    let mut sink = MemorySink::default();
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    (r, sink.events)
}

fn owned(sets: &[&str]) -> Vec<String> {
    sets.iter().map(|s| s.to_string()).collect()
}

/// Runs scenario file `file` with `--set` overrides.
pub fn run_file(file: &str, sets: &[&str]) -> (RunResult, Vec<StateEvent>) {
    let scn =
        scenario::load(std::path::Path::new(file), &owned(sets)).unwrap_or_else(|e| panic!("{e}"));
    run(&scn)
}

/// Runs scenario text (named `name` in error messages) with `--set` overrides.
pub fn run_text(name: &str, text: &str, sets: &[&str]) -> (RunResult, Vec<StateEvent>) {
    let scn = scenario::parse(name, text, &owned(sets)).unwrap_or_else(|e| panic!("{e}"));
    run(&scn)
}
