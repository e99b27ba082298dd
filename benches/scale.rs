//! Does cost follow the work or the size of the system? Runs the same traffic through a
//! layered system of 20 services and one of 2,000 (issue 20's pair), each in a child
//! process of its own, report included, and prints wall time and peak memory side by side.
//!
//!   cargo bench --bench scale                      20 vs 2,000 services
//!   cargo bench --bench scale -- write DIR         only write the two scenario files
//!
//! Both systems have four layers, 3 replicas per service, two calls per service (each made
//! with p = 0.5, so a request visits one service per layer on average), retries and
//! breakers on every call, and 10 workloads of 200/s on the first layer: the same
//! requests and nearly the same events, spread over 5 or 500 services per layer.

use faultline::model::{RunOptions, World};
use faultline::report::{write_outputs, CsvSink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod layered;

use layered::layered;

/// Peak resident memory of this process in MB, from /proc (Linux); None elsewhere.
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs one scenario file into `out` (as `faultline run` does) and prints
/// "events parse_s simulate_s report_s peak_mb" on stdout.
#[allow(clippy::disallowed_methods)] // wall time is what a benchmark measures
fn child(file: &Path, out: &Path) {
    let t = Instant::now();
    let scn = faultline::scenario::load(file, &[]).expect("valid generated scenario");
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::fs::create_dir_all(out).expect("output directory");
    let mut sink = CsvSink::create(out).expect("csv files");
    let result = World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    sink.finish().expect("csv written");
    let simulate = t.elapsed().as_secs_f64();
    let t = Instant::now();
    write_outputs(&scn, out, &result, false).expect("report written");
    let report = t.elapsed().as_secs_f64();
    println!(
        "{} {parse:.3} {simulate:.3} {report:.3} {:.1}",
        result.events,
        peak_mb().unwrap_or(f64::NAN)
    );
}

fn write(dir: &Path) -> Vec<(usize, PathBuf)> {
    std::fs::create_dir_all(dir).expect("scenario directory");
    [20, 2000]
        .into_iter()
        .map(|n| {
            let path = dir.join(format!("layered-{n}.toml"));
            std::fs::write(&path, layered(n, 60)).expect("scenario written");
            (n, path)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("child") => return child(Path::new(&args[1]), Path::new(&args[2])),
        Some("write") => {
            for (_, p) in write(Path::new(&args[1])) {
                println!("{}", p.display());
            }
            return;
        }
        _ => {}
    }
    let dir = std::env::temp_dir().join(format!("faultline-scale-{}", std::process::id()));
    let files = write(&dir);
    let me = std::env::current_exe().expect("own path");
    println!("| services | events | parse | simulate | report | wall | peak memory |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (n, file) in files {
        let out = dir.join(format!("out-{n}"));
        let o = Command::new(&me)
            .args(["child".as_ref(), file.as_os_str(), out.as_os_str()])
            .output()
            .expect("child runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let wall = f[1] + f[2] + f[3];
        println!(
            "| {n} | {} | {:.2} s | {:.2} s | {:.2} s | {wall:.2} s | {:.0} MB |",
            f[0], f[1], f[2], f[3], f[4]
        );
        rows.push((wall, f[4]));
    }
    println!(
        "\n2,000 / 20 services: wall ×{:.2}, peak memory ×{:.1}",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
