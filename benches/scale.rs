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

use faultline::api::{run_to_dir, Scenario};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const LAYERS: usize = 4;
const WORKLOADS: usize = 10;

/// The scenario text of a layered system with `services` services (a multiple of LAYERS).
pub fn layered(services: usize, duration_s: u32) -> String {
    let width = services / LAYERS;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[sim]\nname = \"layered-{services}\"\nduration = \"{duration_s}s\"\nseed = 1\nbucket = \"10s\"\n"
    );
    s.push_str("[network]\nlatency = { dist = \"uniform\", min = \"0.2ms\", max = \"0.6ms\" }\n\n");
    s.push_str(
        "[policy.retry.r]\nmax_attempts = 2\nbackoff = { kind = \"exponential\", base = \"10ms\", cap = \"100ms\", jitter = \"full\" }\n\n",
    );
    s.push_str("[policy.breaker.b]\nkind = \"consecutive\"\nfailures = 5\nopen_for = \"5s\"\n\n");
    for layer in 0..LAYERS {
        for i in 0..width {
            let _ = writeln!(
                s,
                "[[service]]\nname = \"s{layer}-{i}\"\nreplicas = 3\nworkers = 4"
            );
            s.push_str("work = { dist = \"exp\", mean = \"2ms\" }\nerror_rate = 0.001\n");
            if layer + 1 < LAYERS {
                let (a, b) = ((2 * i) % width, (2 * i + 1) % width);
                let _ = writeln!(
                    s,
                    "calls = [{{ to = \"s{n}-{a}\", p = 0.5, timeout = \"200ms\", retry = \"r\", breaker = \"b\" }}, \
                     {{ to = \"s{n}-{b}\", p = 0.5, timeout = \"200ms\", retry = \"r\", breaker = \"b\" }}]",
                    n = layer + 1
                );
            }
            s.push('\n');
        }
    }
    for w in 0..WORKLOADS {
        let _ = writeln!(
            s,
            "[[workload]]\nname = \"w{w}\"\ntarget = \"s0-{}\"\ntimeout = \"2s\"\narrivals = {{ kind = \"poisson\", rate = 200 }}\n",
            w % width
        );
    }
    s
}

/// Peak resident memory of this process in MB, from /proc (Linux); None elsewhere.
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs one scenario file into `out` and prints "events wall_s peak_mb" on stdout.
#[allow(clippy::disallowed_methods)] // wall time is what a benchmark measures
fn child(file: &Path, out: &Path) {
    let scn = Scenario::from_path(file).expect("valid generated scenario");
    let t = Instant::now();
    let r = run_to_dir(&scn, out).expect("report written");
    let wall = t.elapsed().as_secs_f64();
    println!(
        "{} {wall:.3} {:.1}",
        r.result.events,
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
    println!("| services | events | wall | peak memory |");
    println!("|---|---|---|---|");
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
        println!("| {n} | {} | {:.2} s | {:.0} MB |", f[0], f[1], f[2]);
        rows.push((f[1], f[2]));
    }
    println!(
        "\n2,000 / 20 services: wall ×{:.2}, peak memory ×{:.1}",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
