//! The README's speed table in one invocation: paired runs of the bare loops, faultline and
//! (when Python and SimPy are installed) SimPy on models A and B, and the 20-service mesh.
//!
//!   cargo bench --bench ratios                 5 rounds; FAULTLINE_ROUNDS=n for more
//!   FAULTLINE_SIMPY=0 cargo bench --bench ratios   without SimPy (it takes about a minute)
//!   FAULTLINE_ONLY=bare_mmc cargo bench --bench ratios   one model, once, for a profiler
//!     (bare_mmc, floor_mmc, bare_chain, floor_chain, mmc, chain or mesh; `valgrind
//!     --tool=callgrind` counts its instructions per event against faultline's)
//!
//! A and B are also run as their *floors* (`models/floor.rs`): the bare loop plus only
//! what faultline's outputs for the model need (counts, histograms, integrals, slowest
//! traces and series rows), which splits faultline's ratio into what the metrics cost and
//! what the general model costs.
//!
//! Each round runs every model once, back to back, so that a slow patch of a noisy machine
//! hits both sides of a ratio; the figures are the medians over rounds of each round's
//! ratio, not ratios of medians. Absolute times are printed for reference only.

mod models;

use models::{bare_chain, bare_mmc, faultline_run, floor_chain, floor_mmc, N};
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

/// Wall seconds of `f`: what a benchmark measures, printed and never fed to a simulation.
#[allow(clippy::disallowed_methods)]
fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// SimPy's wall seconds for A and B at `n` customers, or why there are none.
fn simpy(n: u64) -> Result<(f64, f64), String> {
    if std::env::var("FAULTLINE_SIMPY").is_ok_and(|v| v == "0") {
        return Err("skipped (FAULTLINE_SIMPY=0)".into());
    }
    let out = Command::new("python3")
        .args(["benches/simpy_models.py", &n.to_string()])
        .output()
        .map_err(|e| format!("skipped: python3 not runnable ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = if err.contains("No module named 'simpy'") {
            "SimPy is not installed (pip install simpy)".to_string()
        } else {
            err.lines().last().unwrap_or("failed").to_string()
        };
        return Err(format!("skipped: {why}"));
    }
    // "A_mmc: 1000000 customers in 14.40 s wall (...)"
    let text = String::from_utf8_lossy(&out.stdout);
    let wall = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let before = line.split(" s wall").next()?;
        before.rsplit(' ').next()?.parse().ok()
    };
    match (wall("A_mmc"), wall("B_chain")) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("skipped: unexpected output {text:?}")),
    }
}

/// Runs one model once (`FAULTLINE_ONLY`) and prints its events, for a profiler, with the
/// loops' own figure (A's mean wait, B's mean latency): the bare loops and the floors must
/// agree on it (and with faultline's summary) for their ratios to compare the same model.
fn only(model: &str) {
    let loop_figure = |name: &str, events: u64, mean_ns: f64| {
        println!("{name}: {events} events, mean {:.2} ms", mean_ns / 1e6);
    };
    let events = match model {
        "bare_mmc" => return loop_figure(model, 2 * N, bare_mmc()),
        "floor_mmc" => return loop_figure(model, 2 * N, floor_mmc()),
        // Per request: arrival, then arrive and work done at each tier, two replies.
        "bare_chain" => return loop_figure(model, 9 * N, bare_chain()),
        "floor_chain" => return loop_figure(model, 9 * N, floor_chain()),
        "mmc" => faultline_run("scenarios/mmc.toml", "111111s"),
        "chain" => faultline_run("scenarios/chain.toml", "1667s"),
        "mesh" => faultline_run("scenarios/mesh.toml", "60s"),
        other => {
            eprintln!("FAULTLINE_ONLY={other}: expected bare_mmc, floor_mmc, bare_chain, floor_chain, mmc, chain or mesh");
            std::process::exit(2);
        }
    };
    println!("{model}: {events} events");
}

fn main() {
    if let Ok(model) = std::env::var("FAULTLINE_ONLY") {
        only(&model);
        return;
    }
    let rounds: usize = std::env::var("FAULTLINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    // Per round and model: (bare loop, floor, faultline) seconds.
    let mut a: Vec<(f64, f64, f64)> = Vec::new();
    let mut b: Vec<(f64, f64, f64)> = Vec::new();
    let mut mesh = Vec::new();
    let mut mesh_events = 0;
    for round in 1..=rounds {
        // A: 111,111 s at 9/s is 1,000,000 customers on average; B: 1,667 s at 600/s.
        let a_bare = secs(|| {
            black_box(bare_mmc());
        });
        let a_floor = secs(|| {
            black_box(floor_mmc());
        });
        let a_fl = secs(|| {
            black_box(faultline_run("scenarios/mmc.toml", "111111s"));
        });
        let b_bare = secs(|| {
            black_box(bare_chain());
        });
        let b_floor = secs(|| {
            black_box(floor_chain());
        });
        let b_fl = secs(|| {
            black_box(faultline_run("scenarios/chain.toml", "1667s"));
        });
        let m = secs(|| {
            mesh_events = black_box(faultline_run("scenarios/mesh.toml", "60s"));
        });
        eprintln!(
            "round {round}/{rounds}: A bare {a_bare:.3} s, floor {a_floor:.3} s, faultline {a_fl:.3} s; B bare {b_bare:.3} s, floor {b_floor:.3} s, faultline {b_fl:.3} s; mesh {m:.3} s"
        );
        a.push((a_bare, a_floor, a_fl));
        b.push((b_bare, b_floor, b_fl));
        mesh.push(m);
    }
    eprintln!("SimPy, {N} customers per model (once: its spread is small beside the ratio)...");
    let sp = simpy(N);
    let row = |name: &str, runs: &[(f64, f64, f64)], simpy: Option<f64>| {
        let bare = median(runs.iter().map(|r| r.0).collect());
        let fl = median(runs.iter().map(|r| r.2).collect());
        let ratio = median(runs.iter().map(|r| r.2 / r.0).collect());
        let vs = simpy.map_or("— | —".to_string(), |s| {
            format!("{s:.1} s | {:.0}×", s / fl)
        });
        println!("| {name} | {bare:.3} s | {fl:.3} s | {ratio:.2}× | {vs} |");
    };
    println!("\n{rounds} paired rounds; times are medians, ratios medians of each round's ratio\n");
    println!("| model | bare loop | faultline | faultline / bare | SimPy | SimPy / faultline |");
    println!("|---|---|---|---|---|---|");
    let (sa, sb) = match &sp {
        Ok((x, y)) => (Some(*x), Some(*y)),
        Err(_) => (None, None),
    };
    row("A: M/M/10, 1,000,000 customers", &a, sa);
    row("B: 3-tier chain, 1,000,000 requests", &b, sb);
    let m = median(mesh);
    println!(
        "| C: 20-service mesh ({mesh_events} events) | — | {m:.3} s | {:.2} M events/s | — | — |",
        mesh_events as f64 / m / 1e6
    );
    println!("\nThe floors (the bare loop plus what faultline's outputs for the model need):");
    for (name, runs) in [("A", &a), ("B", &b)] {
        println!(
            "  {name}: {:.3} s, {:.2}× the bare loop; faultline {:.2}× the floor",
            median(runs.iter().map(|r| r.1).collect()),
            median(runs.iter().map(|r| r.1 / r.0).collect()),
            median(runs.iter().map(|r| r.2 / r.1).collect()),
        );
    }
    if let Err(why) = sp {
        println!("\nSimPy: {why}");
    }
}
