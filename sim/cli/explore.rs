//! `faultline explore` on the command line: the search with a progress bar, then its files
//! (explore.txt, each minimal schedule as a scenario with its report), written whole.

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use faultline::explore::{self, Space};
use faultline::scenario::Scenario;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The command's options.
pub struct Args<'a> {
    pub budget: Option<u32>,
    pub time: Option<&'a str>,
    pub seed: Option<u64>,
    pub shrink: u32,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
}

pub fn explore(scn: &Scenario, a: Args) -> i32 {
    if scn.raw.expect.is_empty() {
        eprintln!(
            "{}: error: explore searches for faults that break the scenario's [[expect]] blocks, and it has none; add one, e.g.\n  [[expect]]\n  metric = \"workloads.<name>.error_rate\"\n  below = 0.01",
            scn.file
        );
        return EXIT_INVALID;
    }
    let limit = match a.time.map(faultline::time::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(std::time::Duration::from_nanos(d.as_nanos())),
        Some(Err(e)) => {
            eprintln!("error: --time: {e}");
            return EXIT_INVALID;
        }
    };
    let budget = a
        .budget
        .or(scn.raw.explore.as_ref().and_then(|e| e.budget))
        .unwrap_or(explore::BUDGET);
    if budget == 0 {
        eprintln!("error: --budget: at least 1 run");
        return EXIT_INVALID;
    }
    // The scenario must hold without explore's faults, or every schedule "breaks" it.
    match faultline::check::check_scenario(scn, None) {
        Ok(v) if v.iter().all(|v| v.passed) => {}
        Ok(v) => {
            eprintln!(
                "{}: error: the scenario breaks its own expectations before any fault is added; run `faultline check {}`:\n{}",
                scn.file,
                scn.file,
                faultline::check::table(&v)
            );
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("error: {}", e.0);
            return EXIT_INVALID;
        }
    }
    let space = Space::of(scn);
    let seed = a.seed.unwrap_or(scn.spec.seed);
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(budget as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} schedules, {elapsed} wall, eta {eta}",
        )
        .expect("a valid template"),
    );
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let go_on = || limit.map_or(true, |l| started.elapsed() < l);
    let result = pool.install(|| {
        explore::search(scn, &space, seed, budget, a.shrink, &go_on, &|n| {
            bar.inc(n as u64)
        })
    });
    bar.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return EXIT_INVALID;
        }
    };
    let dir = a
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-explore", scn.spec.name)));
    let text = explore::summary(scn, &space, seed, &outcome);
    if let Err(e) = explore::write_dir(scn, &outcome, &text, &dir) {
        eprintln!("error: writing {}: {e}", dir.display());
        return EXIT_FAILED;
    }
    print!("{text}");
    eprintln!(
        "faultline: explored {} schedules of {} in {:.1}s wall; wrote {}",
        outcome.runs,
        scn.spec.name,
        started.elapsed().as_secs_f64(),
        dir.join("explore.txt").display()
    );
    if outcome.violating_runs.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// For `faultline gallery`: each gallery scenario with an `[explore]` table is explored
/// (its budget, its seed, 3 violations shrunk) into `<its report>/explore/`, so the gallery
/// shows a found, shrunk schedule and `gallery --check` holds it to the code. Returns the
/// problems, one line each.
pub fn gallery(list: &[faultline::api::gallery::Entry], target: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    for e in list {
        let run = || -> Result<(), String> {
            let scn = faultline::scenario::load(&e.file, &[]).map_err(|err| err.to_string())?;
            let Some(x) = &scn.raw.explore else {
                return Ok(());
            };
            let budget = x.budget.unwrap_or(explore::BUDGET);
            let space = Space::of(&scn);
            let o = explore::search(&scn, &space, scn.spec.seed, budget, 3, &|| true, &|_| {})
                .map_err(|err| err.0)?;
            let text = explore::summary(&scn, &space, scn.spec.seed, &o);
            explore::write_dir(&scn, &o, &text, &target.join(&e.name).join("explore"))
                .map_err(|err| err.to_string())
        };
        if let Err(m) = run() {
            problems.push(format!("{}: explore: {m}", e.file.display()));
        }
    }
    problems
}
