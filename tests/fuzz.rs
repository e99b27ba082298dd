//! A structured fuzzer: byte- and token-level mutations of every scenario in the repository,
//! driven through the loader, the static analysis and a bounded run, in-process.
//!
//! `cargo test` runs it for a few seconds; `FAULTLINE_FUZZ_SECS=3600 cargo test --release
//! --test fuzz -- --nocapture` runs it for an hour (`FAULTLINE_FUZZ_SEED` picks the
//! stream). An input that panics, or whose load or run takes longer than `SLOW`, is
//! written to `tests/fuzz_found/` and the test fails; every file there is replayed as a
//! regression test on every run. (cargo-afl and cargo-fuzz need a nightly toolchain or
//! an instrumenting linker this machine's stable toolchain lacks; see the closing notes.)

use faultline::metrics::NullSink;
use faultline::model::{RunOptions, World};
use faultline::scenario::{self, analysis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a single input may take to load, analyse and run (bounded below) in a debug
/// build before it counts as a hang.
const SLOW: Duration = Duration::from_secs(20);

/// The run's own limits for fuzzed inputs: small, so that every input ends quickly.
const LIMITS: [&str; 3] = [
    "sim.max_events=200000",
    "sim.max_in_flight=20000",
    "sim.duration=30s",
];

/// Tokens that have broken things before, or sit on a boundary.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "0.0",
    "1e-300",
    "\"0s\"",
    "\"0ns\"",
    "\"18446744073709551615ns\"",
    "\"9223372036854775807ns\"",
    "\"1000000h\"",
    "\"1ns\"",
    "\"\"",
    "\"a\\nb\"",
    "true",
    "[]",
    "{}",
    "[[service]]",
    "[[workload]]",
    "[[fault]]",
    "[policy.retry.x]",
    "\"exp\"",
    "\"constant\"",
    "\"burst\"",
    "\"closed\"",
    "\"parallel\"",
    "p = 0.5",
    "replicas = 0",
    "workers = 0",
    "rate = 0",
    "max_attempts = 1000000",
    "timeout = \"0s\"",
];

fn corpus() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["scenarios", "scenarios/validation"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            out.push((
                f.display().to_string(),
                std::fs::read_to_string(&f).unwrap(),
            ));
        }
    }
    out
}

/// One mutation of `text`.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        if b.is_empty() {
            b.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..7) {
            // Flip a byte.
            0 => b[at] ^= 1 << rng.random_range(0..8),
            // Delete a range.
            1 => {
                let end = (at + rng.random_range(1..40)).min(b.len());
                b.drain(at..end);
            }
            // Duplicate a range (a line, a table).
            2 => {
                let end = (at + rng.random_range(1..200)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
            // Replace a number by a boundary token.
            3 => {
                if let Some(start) = (at..b.len()).find(|&i| b[i].is_ascii_digit()) {
                    let end = (start..b.len())
                        .find(|&i| !(b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e'))
                        .unwrap_or(b.len());
                    let t = TOKENS[rng.random_range(0..TOKENS.len())];
                    b.splice(start..end, t.bytes());
                }
            }
            // Insert a token.
            4 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.splice(at..at, t.bytes());
            }
            // Insert a line from elsewhere in the corpus text.
            5 => {
                let lines: Vec<&str> = text.lines().collect();
                let line = lines[rng.random_range(0..lines.len())];
                let nl = (at..b.len()).find(|&i| b[i] == b'\n').unwrap_or(b.len());
                let mut ins = b"\n".to_vec();
                ins.extend_from_slice(line.as_bytes());
                b.splice(nl..nl, ins);
            }
            // Random bytes, invalid UTF-8 included.
            _ => {
                let n = rng.random_range(1..8);
                let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(at..at, junk);
            }
        }
    }
    b
}

/// Loads (as written, then under small limits), analyses and, when valid, runs `bytes`.
/// Ok(whether it was valid as written); Err: what went wrong.
fn exercise(bytes: &[u8]) -> Result<bool, String> {
    let started = now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        let valid = scenario::parse("fuzz.toml", text, &[]).is_ok();
        let limits: Vec<String> = LIMITS.iter().map(|s| s.to_string()).collect();
        let Ok(scn) = scenario::parse("fuzz.toml", text, &limits) else {
            return valid;
        };
        let _ = analysis::report(&scn.spec, scn.raw.sim.latency_budget);
        let _ = analysis::dot(&scn.spec);
        let _ = World::new(&scn.spec, RunOptions::default()).run(&mut NullSink);
        valid
    }));
    let took = now().duration_since(started);
    match outcome {
        Err(p) => Err(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Ok(_) if took > SLOW => Err(format!("took {took:?}")),
        Ok(valid) => Ok(valid),
    }
}

#[allow(clippy::disallowed_methods)] // the fuzzer's own budget, never near a result
fn now() -> Instant {
    Instant::now()
}

fn found_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_found")
}

/// Every input the fuzzer ever found stays a regression test.
#[test]
fn inputs_found_before_end_cleanly() {
    let Ok(entries) = std::fs::read_dir(found_dir()) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if let Err(why) = exercise(&bytes) {
            panic!("{}: {why}", path.display());
        }
    }
}

#[test]
fn mutated_scenarios_end_cleanly() {
    let secs: u64 = std::env::var("FAULTLINE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("FAULTLINE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(18);
    let corpus = corpus();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let deadline = now() + Duration::from_secs(secs);
    // Quiet panics: each one is caught, recorded and reported below.
    std::panic::set_hook(Box::new(|_| {}));
    let (mut execs, mut valid) = (0u64, 0u64);
    let mut failures = Vec::new();
    while now() < deadline {
        let (_, text) = &corpus[rng.random_range(0..corpus.len())];
        let bytes = mutate(text, &mut rng);
        execs += 1;
        let outcome = exercise(&bytes);
        valid += matches!(outcome, Ok(true)) as u64;
        if let Err(why) = outcome {
            std::fs::create_dir_all(found_dir()).unwrap();
            let path = found_dir().join(format!("seed{seed}-{execs}.toml"));
            std::fs::write(&path, &bytes).unwrap();
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "fuzz: {execs} inputs in {secs} s (seed {seed}), {valid} valid, {} failures",
        failures.len()
    );
    assert!(execs > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
