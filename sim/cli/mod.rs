//! The command-line interface (part of the binary, not the library): argument parsing (clap), progress bars and the commands, mapped to exit codes.

mod explore;
mod import;

use clap::{Parser, Subcommand};
use faultline::report;
use faultline::scenario::{self, analysis, diag::ScenarioError};
use std::io::IsTerminal;
use std::path::PathBuf;

/// A progress bar over simulated time, on stderr. Hidden until the run has taken a second
/// of wall time, and then only if stderr is a terminal: never in files or pipes.
fn progress_bar(horizon_s: f64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some((horizon_s * 1000.0) as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {simulated} simulated, {elapsed} wall, {eta_wall}",
        )
        .expect("a valid template")
        .with_key(
            "simulated",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&simulated_text(s.pos(), s.len().unwrap_or(0)));
            },
        )
        .with_key(
            "eta_wall",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&eta_text(
                    s.pos(),
                    s.len().unwrap_or(0),
                    s.elapsed().as_secs_f64(),
                ));
            },
        ),
    );
    bar
}

/// What the detectors found (`summary.json` `insights`), up to `most` lines.
fn insight_lines(found: &[String], most: usize) -> Vec<String> {
    if found.is_empty() {
        return vec!["what happened: nothing unusual".into()];
    }
    let mut out: Vec<String> = found
        .iter()
        .take(most)
        .map(|text| format!("what happened: {text}"))
        .collect();
    if found.len() > most {
        out.push(format!(
            "what happened: {} more in summary.json (insights)",
            found.len() - most
        ));
    }
    out
}

/// One line per disturbance, up to `most` (then how many more): when each workload was back
/// within the recovery bands after it, or that it was not by the end of the run.
fn recovery_lines(r: &faultline::results::RunResult, most: usize) -> Vec<String> {
    let end_s = r.end.as_secs_f64();
    let mut out: Vec<String> = r
        .recovery
        .iter()
        .take(most)
        .map(|(w, per)| {
            let each: Vec<String> = per
                .iter()
                .map(|(name, x)| match (x.goodput_before, x.after_s) {
                    (None, _) => format!("{name} had no traffic before it"),
                    (_, Some(a)) => format!("{name} recovered {a:.1} s after it"),
                    (_, None) if w.to_s >= end_s => format!("{name}: it lasts to the end"),
                    (_, None) => format!("{name} did not recover by the end"),
                })
                .collect();
            let span = if w.to_s > w.from_s {
                format!("{:.1}-{:.1} s", w.from_s, w.to_s)
            } else {
                format!("at {:.1} s", w.from_s)
            };
            format!(
                "recovery from {} ({}, {span}): {}",
                w.key,
                w.what,
                each.join("; ")
            )
        })
        .collect();
    if r.recovery.len() > most {
        out.push(format!(
            "recovery: {} more in summary.json (recovery)",
            r.recovery.len() - most
        ));
    }
    out
}

/// "12.5 of 120.0 s", in the unit that suits the horizon (positions in simulated ms).
fn simulated_text(pos_ms: u64, len_ms: u64) -> String {
    let (div, unit) = match len_ms {
        l if l >= 7_200_000 => (3_600_000.0, "h"),
        l if l >= 120_000 => (60_000.0, "min"),
        _ => (1_000.0, "s"),
    };
    format!(
        "{:.1} of {:.1} {unit}",
        pos_ms as f64 / div,
        len_ms as f64 / div
    )
}

/// The wall time left, from the pace so far: none until a second of wall time and 1 % of the
/// run have passed (an estimate from less is noise), then in seconds, minutes or hours.
fn eta_text(pos_ms: u64, len_ms: u64, elapsed_s: f64) -> String {
    if len_ms == 0 || elapsed_s < 1.0 || pos_ms * 100 < len_ms {
        return "eta estimating".into();
    }
    let left_s = elapsed_s * (len_ms - pos_ms.min(len_ms)) as f64 / pos_ms as f64;
    match left_s {
        s if s < 90.0 => format!("eta {s:.0} s"),
        s if s < 5_400.0 => format!("eta {:.0} min", s / 60.0),
        s => format!("eta {:.1} h", s / 3_600.0),
    }
}

/// Wall seconds between two plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_S: f64 = 30.0;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a check failed or the run hit a limit.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the input is invalid.
pub const EXIT_INVALID: i32 = 2;

/// faultline: a deterministic discrete-event simulator for microservice systems.
#[derive(Parser, Debug)]
#[command(name = "faultline", version, about, long_about = None,
    after_help = "Examples:\n  faultline run scenarios/quickstart.toml\n  faultline validate scenarios/quickstart.toml\n  faultline graph scenarios/quickstart.toml | dot -Tsvg > graph.svg\n\nExit codes: 0 ok, 1 failed (run limit hit), 2 invalid input.")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario and write its report into reports/<scenario>/: report.html (what happened, charts, traces, call graph), SVG charts, summary.json, timeseries.csv, events.csv, traces and manifest.json.
    #[command(
        after_help = "Examples:\n  faultline run scenarios/quickstart.toml\n  faultline run scenarios/chain.toml --set sim.duration=60s --seed 7 --out /tmp/chain\n  faultline run scenarios/quickstart.toml --set service.orders.workers=16"
    )]
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override any field: `path=value`, e.g. `sim.duration=30s` or `service.orders.replicas=4`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Output directory (default: reports/<scenario name>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write every chart as PNG beside its SVG.
        #[arg(long)]
        png: bool,
    },
    /// Rebuild the charts, trace waterfall, call graph and report.html of a run directory
    /// from the files already in it, without running the scenario again.
    #[command(
        after_help = "Example:\n  faultline report reports/quickstart\n  faultline report /tmp/chain --png"
    )]
    Report {
        /// A directory written by `faultline run`.
        dir: PathBuf,
        /// Also write every chart as PNG beside its SVG.
        #[arg(long)]
        png: bool,
    },
    /// Run every scenario of a directory into reports/<scenario>/ with an index; with
    /// --check, compare with the committed reports instead and fail on any difference.
    #[command(
        after_help = "Examples:\n  faultline gallery                 regenerate reports/ from scenarios/\n  faultline gallery --check         exit 1 if the committed reports differ"
    )]
    Gallery {
        /// Where the scenarios are (top-level *.toml files).
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Where the reports go.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Generate into a temporary directory and compare with --out, byte for byte.
        #[arg(long)]
        check: bool,
    },
    /// Run a grid of variants × replications in parallel: sweep.csv, sweep_summary.csv and
    /// charts. Resumable; shardable across machines; --emit prints cluster job files.
    #[command(
        after_help = "Examples:\n  faultline sweep scenarios/retry-storm.toml --param policy.retry.unbudgeted.max_attempts=1,2,3,4 --replications 5\n  faultline sweep s.toml --param 'service.orders.calls[1].timeout=100ms..500ms step 100ms' --param service.payment.workers=8,16\n  faultline sweep s.toml --zip service.a.workers=4,8 --zip service.b.workers=8,16\n  faultline sweep s.toml --param ... --shard 1/4 --out shard-1     (then: faultline merge shard-* --out sweep)\n  faultline sweep s.toml --param ... --emit slurm --shards 8 --out bundle   (then: bundle/submit.sh)\n  faultline sweep s.toml --param ... --emit k8s --shards 8 --out bundle     (then: kubectl apply -f bundle)\n\nReplication r runs with the same seed at every point (common random numbers); r = 0 is the scenario's own seed. Interrupted? Run the same command again: finished runs are kept."
    )]
    Sweep(SweepArgs),
    /// Run two variants on the same seeds and compare every key metric: paired
    /// differences with 95 % intervals and a verdict; compare.csv and an overlaid CDF.
    #[command(
        after_help = "Example:\n  faultline compare scenarios/quickstart.toml --a 'service.orders.calls[1].timeout=300ms' --b 'service.orders.calls[1].timeout=600ms' --replications 10"
    )]
    Compare {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Overrides of variant A (repeat for several).
        #[arg(long = "a", value_name = "PATH=VALUE")]
        a: Vec<String>,
        /// Overrides of variant B.
        #[arg(long = "b", value_name = "PATH=VALUE")]
        b: Vec<String>,
        /// Replications (pairs of runs on a shared seed).
        #[arg(long, default_value_t = 10)]
        replications: u32,
        /// Threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Overrides of both.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Output directory (default: reports/<scenario>-compare/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Join shard directories of one sweep into the files a single sweep writes.
    #[command(
        after_help = "Examples:\n  faultline merge results/shard-* --out sweep\n  faultline merge /results/shard-0 /results/shard-1 --out /results/sweep --wait 24h\n\nThe shards' sweep.json carries the scenario's text: no scenario file is needed."
    )]
    Merge {
        /// Shard directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged sweep goes.
        #[arg(long)]
        out: PathBuf,
        /// Wait up to this long (wall time, e.g. `30m`, `24h`) for shards that have not
        /// started or finished yet, looking again every 5 s; exit 1 if they are still missing.
        #[arg(long, value_name = "DURATION")]
        wait: Option<String>,
    },
    /// Search for fault schedules that break a scenario's [[expect]] blocks, shrink each to a
    /// minimal one and write it as a scenario with its report; exit 1 when one is found.
    #[command(
        after_help = "Examples:\n  faultline explore scenarios/explore-canary.toml --budget 200\n  faultline explore scenarios/retry-storm.toml --time 10m --jobs 8 --out /tmp/found\n\nThe search draws each run's faults (kinds, targets, starts, lengths, intensities) within the\nscenario's [explore] table, or from its services, zones and registry when it has none:\n  [explore]\n  kinds = [\"crash\", \"latency\", \"partition\"]   # also error, slow, zone_outage, registry_outage\n  targets = [\"payment\", \"orders\"]             # default: every service\n  max_faults = 3                               # per schedule\n  from = \"30s\"                                  # default: the warmup\n  until = \"5m\"                                  # default: the run's end\n  longest = \"60s\"                               # default: a quarter of the window\n\nThe same seed gives the same runs, findings and files whatever --jobs is."
    )]
    Explore {
        /// The scenario file (TOML), with [[expect]] blocks.
        scenario: PathBuf,
        /// Schedules to draw and judge at most (default: [explore] budget, else 200).
        #[arg(long)]
        budget: Option<u32>,
        /// Stop drawing after this much wall time (e.g. `10m`), if the budget lasts longer.
        #[arg(long, value_name = "DURATION")]
        time: Option<String>,
        /// The search's seed (default: the scenario's); the expectations keep their seeds.
        #[arg(long)]
        seed: Option<u64>,
        /// Distinct findings to shrink violations into (in run order; the rest are counted).
        #[arg(long, default_value_t = 3)]
        shrink: u32,
        /// Threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Overrides applied to the scenario.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Output directory (default: reports/<scenario>-explore/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read mesh configuration into faultline policy tables: `import istio FILE...` prints a
    /// scenario fragment (or, with --into, the whole scenario with them applied).
    #[command(
        after_help = "Examples:\n  faultline import istio virtualservice.yaml destinationrule.yaml\n  faultline import istio mesh/*.yaml --into scenarios/quickstart.toml --out imported.toml\n\nVirtualService: timeouts, retries (attempts, perTryTimeout, retryOn), weighted subsets and\nheader matches (as a canary's weights and routes), fault injection (delay, abort).\nDestinationRule: loadBalancer (simple, consistentHash), outlierDetection, connectionPool\n(as Envoy limits and a connection pool). Envoy clusters in the same files: lb_policy,\ncircuit_breakers, outlier_detection, connection settings. Whatever cannot be mapped is\nlisted, with why."
    )]
    Import {
        /// What to read: `istio`.
        #[arg(value_parser = ["istio"])]
        what: String,
        /// YAML files (several documents each, `---`-separated).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A scenario to apply the imported tables to (every call to a host takes them);
        /// without it, a fragment to merge is printed.
        #[arg(long)]
        into: Option<PathBuf>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the [[expect]] blocks of scenarios (files, or directories searched recursively)
    /// and print a table; exit 1 if one fails, 2 on invalid input.
    #[command(
        after_help = "Examples:\n  faultline check scenarios/\n  faultline check scenarios/retry-storm.toml --seeds 5 --junit check.xml\n\nAn expectation in a scenario:\n  [[expect]]\n  metric = \"workloads.shoppers.latency_ms.p99\"   # a path in summary.json\n  below = 500.0                                   # or above = x, or between = [lo, hi]\n  seeds = 5                                       # optional: the scenario's seed, then derived ones\n  quantile = 0.8                                  # optional: judge this quantile, not every seed\n  why = \"the checkout SLO\"                        # optional: shown when it fails"
    )]
    Check {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Run every expectation over this many seeds (overrides each block's `seeds`).
        #[arg(long)]
        seeds: Option<u32>,
        /// Also write the results as JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Check a scenario and print its call graph and static analysis.
    #[command(
        after_help = "Example:\n  faultline validate scenarios/quickstart.toml --set sim.latency_budget=200ms"
    )]
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override any field: `path=value`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Print the call graph in Graphviz DOT.
    #[command(
        after_help = "Example:\n  faultline graph scenarios/quickstart.toml | dot -Tsvg > graph.svg"
    )]
    Graph {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override any field: `path=value`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
}

fn load(
    path: &std::path::Path,
    mut set: Vec<String>,
    seed: Option<u64>,
) -> Result<scenario::Scenario, ScenarioError> {
    if let Some(s) = seed {
        set.push(format!("sim.seed={s}"));
    }
    let scn = scenario::load(path, &set)?;
    faultline::check::unknown_metrics(&scn)?;
    for w in scn.warning_lines() {
        eprintln!("{w}");
    }
    Ok(scn)
}

/// Runs the parsed command; returns the process exit code. Messages go to stderr,
/// results to stdout and files.
pub fn execute(cli: Cli) -> i32 {
    match cli.command {
        Command::Run {
            scenario,
            seed,
            set,
            out,
            png,
        } => {
            let scn = match load(&scenario, set, seed) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_INVALID;
                }
            };
            let dir = out.unwrap_or_else(|| PathBuf::from("reports").join(&scn.spec.name));
            // The one allowed use of the wall clock: timing for the user, on stderr only.
            #[allow(clippy::disallowed_methods)]
            let started = std::time::Instant::now();
            let horizon_s = scn.spec.duration.as_secs_f64();
            let bar = progress_bar(horizon_s);
            let terminal = std::io::stderr().is_terminal();
            let mut last_line_s = 0.0;
            let name = scn.spec.name.clone();
            let mut progress = |t_s: f64| {
                #[allow(clippy::disallowed_methods)]
                let wall = started.elapsed();
                if wall >= std::time::Duration::from_secs(1) && bar.is_hidden() && terminal {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
                bar.set_position((t_s * 1000.0) as u64);
                // A pipe or a CI log gets a plain line every half minute instead of a bar.
                let wall_s = wall.as_secs_f64();
                if !terminal && wall_s - last_line_s >= PLAIN_PROGRESS_S {
                    last_line_s = wall_s;
                    eprintln!(
                        "faultline: {name}: {t_s:.1} of {horizon_s:.1} s simulated ({:.0}%) after {wall_s:.0} s wall",
                        100.0 * t_s / horizon_s.max(1e-9)
                    );
                }
            };
            let output = faultline::api::run_to_dir_observed(&scn, &dir, png, &mut progress);
            bar.finish_and_clear();
            let output = match output {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: cannot write the reports to {}: {e}", dir.display());
                    return EXIT_FAILED;
                }
            };
            let wall = started.elapsed().as_secs_f64();
            let r = &output.result;
            eprintln!(
                "faultline: {} simulated {:.1}s in {:.3}s wall: {} events, {:.2} M events/s",
                scn.spec.name,
                r.end.as_secs_f64(),
                wall,
                r.events,
                r.events as f64 / wall.max(1e-9) / 1e6
            );
            for w in &r.workloads {
                let c = &w.counts;
                eprintln!(
                    "  workload {}: sent {}, ok {}, failed {} (errors {}, rejected {}, timeouts {}), latency p50 {:.2} ms, p99 {:.2} ms",
                    w.name, c.requests, c.ok, c.failed(), c.errors, c.rejected, c.timeouts, w.latency.p50, w.latency.p99
                );
            }
            for line in recovery_lines(r, 8) {
                eprintln!("  {line}");
            }
            for line in insight_lines(&output.insights, 8) {
                eprintln!("  {line}");
            }
            eprintln!(
                "  wrote {}/report.html (open it in a browser), summary.json, timeseries.csv, events.csv, charts (*.svg), traces.json (Perfetto), traces.otlp.json",
                output.dir.display()
            );
            match r.stop {
                faultline::model::StopReason::Horizon => EXIT_OK,
                other => {
                    eprintln!(
                        "error: the run stopped early ({}) at {:.3}s; raise sim.max_events or sim.max_in_flight, or find the overload. Reproduce: faultline run {} --seed {}",
                        serde_json::to_value(other).expect("enum").as_str().unwrap_or("limit"),
                        r.end.as_secs_f64(),
                        scn.file,
                        scn.spec.seed
                    );
                    EXIT_FAILED
                }
            }
        }
        Command::Gallery {
            scenarios,
            out,
            check,
        } => gallery(&scenarios, &out, check),
        Command::Sweep(args) => sweep(args),
        Command::Compare {
            scenario,
            a,
            b,
            replications,
            jobs,
            seed,
            set,
            out,
        } => {
            if replications == 0 {
                eprintln!("error: --replications must be at least 1");
                return EXIT_INVALID;
            }
            let base = match load(&scenario, set, seed) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_INVALID;
                }
            };
            let variant = |sets: &[String]| {
                let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
                base.with(&refs)
            };
            let (va, vb) = match (variant(&a), variant(&b)) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("{e}");
                    return EXIT_INVALID;
                }
            };
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let labels = [
                faultline::sweep::compare::variant_label("A", &a),
                faultline::sweep::compare::variant_label("B", &b),
            ];
            let labels = [labels[0].as_str(), labels[1].as_str()];
            match faultline::sweep::compare::compare(&va, &vb, labels, replications, jobs) {
                Ok((rows, cdfs)) => {
                    let dir = out.unwrap_or_else(|| {
                        PathBuf::from("reports").join(format!("{}-compare", base.spec.name))
                    });
                    print!("{}", faultline::sweep::compare::table(&rows));
                    if let Err(e) = faultline::sweep::compare::write(&dir, &rows, cdfs) {
                        eprintln!("error: cannot write {}: {e}", dir.display());
                        return EXIT_FAILED;
                    }
                    eprintln!(
                        "faultline: A = {:?}, B = {:?}, {replications} paired replications; wrote {}/compare.csv, compare-cdf.svg",
                        a, b, dir.display()
                    );
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_FAILED
                }
            }
        }
        Command::Merge { dirs, out, wait } => merge(&dirs, &out, wait.as_deref()),
        Command::Import {
            what: _,
            files,
            into,
            out,
        } => import::istio(&files, into.as_deref(), out.as_deref()),
        Command::Explore {
            scenario,
            budget,
            time,
            seed,
            shrink,
            jobs,
            set,
            out,
        } => match load(&scenario, set, None) {
            Ok(scn) => explore::explore(
                &scn,
                explore::Args {
                    budget,
                    time: time.as_deref(),
                    seed,
                    shrink,
                    jobs,
                    out,
                },
            ),
            Err(e) => {
                eprintln!("{e}");
                EXIT_INVALID
            }
        },
        Command::Check {
            paths,
            seeds,
            junit,
        } => check(&paths, seeds, junit.as_deref()),
        Command::Report { dir, png } => match report::render(&dir, png) {
            Ok(files) => {
                eprintln!(
                    "faultline: rebuilt {} files in {}: {}",
                    files.len(),
                    dir.display(),
                    files.join(", ")
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_INVALID
            }
        },
        Command::Validate { scenario, set } => match load(&scenario, set, None) {
            Ok(scn) => {
                print!(
                    "{}",
                    analysis::report(&scn.spec, scn.raw.sim.latency_budget)
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_INVALID
            }
        },
        Command::Graph { scenario, set } => match load(&scenario, set, None) {
            Ok(scn) => {
                print!("{}", analysis::dot(&scn.spec));
                EXIT_OK
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_INVALID
            }
        },
    }
}

fn gallery(scenarios: &std::path::Path, out: &std::path::Path, check: bool) -> i32 {
    let list = match faultline::api::gallery::entries(scenarios) {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            eprintln!("error: no *.toml scenarios in {}", scenarios.display());
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", scenarios.display());
            return EXIT_INVALID;
        }
    };
    let target = if check {
        std::env::temp_dir().join(format!("faultline-gallery-{}", std::process::id()))
    } else {
        out.to_path_buf()
    };
    if let Err(e) = std::fs::create_dir_all(&target) {
        eprintln!("error: cannot create {}: {e}", target.display());
        return EXIT_FAILED;
    }
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut problems = match faultline::api::gallery::generate(scenarios, &target) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    problems.extend(explore::gallery(&list, &target));
    for p in &problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "faultline: {} scenarios into {} in {:.1}s wall",
        list.len(),
        target.display(),
        started.elapsed().as_secs_f64()
    );
    if !problems.is_empty() {
        return EXIT_FAILED;
    }
    if !check {
        return EXIT_OK;
    }
    let diffs = faultline::api::gallery::diff(&list, out, &target);
    let _ = std::fs::remove_dir_all(&target);
    if diffs.is_empty() {
        eprintln!(
            "gallery check: {} matches the code, byte for byte",
            out.display()
        );
        EXIT_OK
    } else {
        for d in &diffs {
            eprintln!("gallery check: {d}");
        }
        eprintln!(
            "gallery check failed: {} file(s) differ from what the code produces. If the change is intended, run `cargo run --release -- gallery` and commit {}.",
            diffs.len(),
            out.display()
        );
        EXIT_FAILED
    }
}

fn check(paths: &[PathBuf], seeds: Option<u32>, junit: Option<&std::path::Path>) -> i32 {
    if seeds == Some(0) {
        eprintln!("error: --seeds must be at least 1");
        return EXIT_INVALID;
    }
    let (verdicts, without) = match faultline::check::check_paths(paths, seeds) {
        Ok(v) => v,
        Err(faultline::check::Invalid(m)) => {
            eprintln!("{m}");
            return EXIT_INVALID;
        }
    };
    print!("{}", faultline::check::table(&verdicts));
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    let files: std::collections::BTreeSet<&str> =
        verdicts.iter().map(|v| v.file.as_str()).collect();
    println!(
        "{} expectation(s) in {} scenario(s): {} passed, {} failed ({} scenario file(s) without expectations)",
        verdicts.len(),
        files.len(),
        verdicts.len() - failed,
        failed,
        without
    );
    if let Some(path) = junit {
        if let Err(e) = std::fs::write(path, faultline::check::junit(&verdicts)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_FAILED;
        }
    }
    if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// `faultline sweep`'s options.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// A parameter to sweep in a grid: `path=a,b,c`, `path=lo..hi step s` or `path=lo..hi log n`.
    #[arg(long = "param", value_name = "PATH=VALUES")]
    param: Vec<String>,
    /// Parameters that move together (same number of values each).
    #[arg(long = "zip", value_name = "PATH=VALUES")]
    zip: Vec<String>,
    /// Replications per point (default: the [sweep] table's, or 1).
    #[arg(long)]
    replications: Option<u32>,
    /// Threads (default: every core).
    #[arg(long, conflicts_with = "emit")]
    jobs: Option<usize>,
    /// Output directory (default: reports/<scenario>-sweep/). With --emit, the bundle's
    /// directory (default: reports/<scenario>-<kind>/), or `-` to print the job alone.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the scenario's seed (the base of every replication's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Fixed overrides applied to every point.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Run only points K, K+N, ...: `K/N`.
    #[arg(long, conflicts_with = "emit")]
    shard: Option<String>,
    /// Write a cluster bundle instead of running: `slurm` (job array, merge job, submit
    /// script) or `k8s` (ConfigMap, PVC, Indexed Job, merge Job, Containerfile).
    #[arg(long, value_parser = ["k8s", "slurm"])]
    emit: Option<String>,
    /// Shards (array tasks, or pods) in the emitted bundle.
    #[arg(long, default_value_t = 4, requires = "emit")]
    shards: usize,
    /// Container image for --emit k8s (the bundle's Containerfile builds it).
    #[arg(long, requires = "emit", default_value = concat!("faultline:", env!("CARGO_PKG_VERSION")))]
    image: String,
}

fn sweep(a: SweepArgs) -> i32 {
    use faultline::sweep::{axes, Plan, Shard, SweepError};
    let invalid = |m: String| {
        eprintln!("error: {m}");
        EXIT_INVALID
    };
    let scn = match load(&a.scenario, a.set, a.seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let parse = |v: &[String]| {
        v.iter()
            .map(|p| axes::parse_axis(p))
            .collect::<Result<Vec<_>, _>>()
    };
    let (grid, zip) = match (parse(&a.param), parse(&a.zip)) {
        (Ok(g), Ok(z)) => (g, z),
        (Err(e), _) | (_, Err(e)) => return invalid(e),
    };
    let plan = match Plan::new(scn, grid, zip, a.replications) {
        Ok(p) => p,
        Err(e) => return invalid(e.to_string()),
    };
    if let Some(kind) = a.emit {
        return emit(&plan, &kind, a.shards, &a.image, &a.scenario, a.out);
    }
    let shard = match a.shard.as_deref().map(Shard::parse) {
        None => Shard::ALL,
        Some(Ok(s)) => s,
        Some(Err(e)) => return invalid(e),
    };
    let dir = a.out.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("{}-sweep", plan.scenario.spec.name))
    });
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let points = plan.points().map(|p| p.len()).unwrap_or(0);
    let mine = (0..points).filter(|p| p % shard.n == shard.k).count() * plan.replications as usize;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(mine as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs, {elapsed} wall, eta {eta}",
        )
        .expect("a valid template"),
    );
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let result = faultline::sweep::execute(&plan, &dir, shard, jobs, &|_| bar.inc(1));
    bar.finish_and_clear();
    match result {
        Ok(o) => {
            eprintln!(
                "faultline: sweep of {}: {} points x {} replications; ran {} runs, {} already done, on {} threads in {:.2}s wall",
                plan.scenario.spec.name,
                points,
                plan.replications,
                o.ran,
                o.skipped,
                jobs,
                started.elapsed().as_secs_f64()
            );
            if o.complete {
                eprintln!(
                    "  wrote {}/sweep.csv, sweep_summary.csv, sweep-*.svg",
                    dir.display()
                );
            } else {
                eprintln!(
                    "  shard {}/{} done; when every shard is, join them: faultline merge DIR... --out DIR",
                    shard.k, shard.n
                );
            }
            EXIT_OK
        }
        Err(SweepError::Invalid(m)) => invalid(m),
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// `sweep --emit`: writes a cluster bundle (or prints the job with `--out -`).
fn emit(
    plan: &faultline::sweep::Plan,
    kind: &str,
    shards: usize,
    image: &str,
    scenario: &std::path::Path,
    out: Option<PathBuf>,
) -> i32 {
    use faultline::sweep::emit;
    if shards == 0 {
        eprintln!("error: --shards must be at least 1");
        return EXIT_INVALID;
    }
    let fail = |e: faultline::sweep::SweepError| {
        eprintln!("error: {e}");
        EXIT_INVALID
    };
    if out.as_deref() == Some(std::path::Path::new("-")) {
        // The job alone, on stdout.
        let text = if kind == "k8s" {
            emit::k8s_manifests(plan, shards, image).map(|d| emit::yaml_stream(&d))
        } else {
            let path = std::fs::canonicalize(scenario).unwrap_or_else(|_| scenario.to_path_buf());
            emit::slurm_script(plan, shards, &path.display().to_string())
        };
        return match text {
            Ok(t) => {
                print!("{t}");
                EXIT_OK
            }
            Err(e) => fail(e),
        };
    }
    let made = if kind == "k8s" {
        emit::k8s(plan, shards, image)
    } else {
        emit::slurm(plan, shards)
    };
    let bundle = match made {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("{}-{kind}", plan.scenario.spec.name))
    });
    if let Err(e) = bundle.write(&dir) {
        eprintln!("error: cannot write the bundle into {}: {e}", dir.display());
        return EXIT_FAILED;
    }
    let files: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
    eprintln!(
        "faultline: wrote a {kind} bundle of {shards} shards into {}: {}",
        dir.display(),
        files.join(", ")
    );
    let shown = |p: PathBuf| {
        let p = p.display().to_string();
        shlex::try_quote(&p).map_or(p.clone(), |q| q.into_owned())
    };
    eprintln!(
        "  {}; see its README.md",
        if kind == "k8s" {
            format!(
                "build the image from its Containerfile, then: kubectl apply -f {}",
                shown(dir)
            )
        } else {
            format!("submit it with: {}", shown(dir.join("submit.sh")))
        }
    );
    EXIT_OK
}

/// `merge`: joins shard directories, waiting for them with `--wait`.
fn merge(dirs: &[PathBuf], out: &std::path::Path, wait: Option<&str>) -> i32 {
    use faultline::sweep::SweepError;
    let wait = match wait.map(faultline::time::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(std::time::Duration::from_nanos(d.as_nanos())),
        Some(Err(e)) => {
            eprintln!("error: --wait: {e}");
            return EXIT_INVALID;
        }
    };
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    loop {
        match faultline::sweep::merge(dirs, out) {
            Ok(o) => {
                eprintln!(
                    "faultline: merged {} runs from {} directories into {}",
                    o.total,
                    dirs.len(),
                    out.display()
                );
                return EXIT_OK;
            }
            Err(SweepError::Incomplete(m)) => match wait {
                Some(w) if started.elapsed() < w => {
                    std::thread::sleep(std::time::Duration::from_secs(5).min(w));
                }
                Some(w) => {
                    eprintln!("error: still incomplete after waiting {w:?}: {m}");
                    return EXIT_FAILED;
                }
                None => {
                    eprintln!("error: {m}");
                    return EXIT_INVALID;
                }
            },
            Err(SweepError::Invalid(m)) => {
                eprintln!("error: {m}");
                return EXIT_INVALID;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILED;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_simulated_time_in_the_horizons_unit() {
        assert_eq!(simulated_text(12_500, 60_000), "12.5 of 60.0 s");
        assert_eq!(simulated_text(90_000, 300_000), "1.5 of 5.0 min");
        assert_eq!(simulated_text(3_600_000, 86_400_000), "1.0 of 24.0 h");
    }

    #[test]
    fn the_eta_follows_the_pace_and_waits_for_enough_of_it() {
        // A quarter done in 10 s: 30 s left.
        assert_eq!(eta_text(25_000, 100_000, 10.0), "eta 30 s");
        // 10 % in 60 s: 9 minutes left.
        assert_eq!(eta_text(10_000, 100_000, 60.0), "eta 9 min");
        assert_eq!(eta_text(1_000, 100_000, 200.0), "eta 5.5 h");
        // Too early to tell: under a second of wall, or under 1 % of the run.
        assert_eq!(eta_text(50_000, 100_000, 0.5), "eta estimating");
        assert_eq!(eta_text(500, 100_000, 30.0), "eta estimating");
        assert_eq!(eta_text(100_000, 100_000, 30.0), "eta 0 s");
    }
}
