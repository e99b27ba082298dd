//! Helpers shared by the test files: run a scenario (a file, or text) with overrides and
//! keep its results and its state-change log; read a directory's files.

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

/// Scenario text named `test.toml`, which must be valid.
pub fn parse(text: &str) -> Scenario {
    scenario::parse("test.toml", text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Runs scenario text (which must be valid); its result and everything its sink kept.
pub fn run_full(text: &str) -> (RunResult, MemorySink) {
    run_with(&parse(text), RunOptions::default())
}

/// `part` as a share of `whole` (0 when there is none).
pub fn share(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// Runs a loaded scenario with `opts`; its result and everything its sink kept.
pub fn run_with(scn: &Scenario, opts: RunOptions) -> (RunResult, MemorySink) {
    let mut sink = MemorySink::default();
    let r = World::new(&scn.spec, opts).run(&mut sink);
    (r, sink)
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

/// Every file under `dir`, relative, with its bytes, sorted: two directories hold the same
/// bytes when their trees are equal.
pub fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &std::path::Path, d: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
