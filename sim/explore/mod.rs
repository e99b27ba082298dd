//! `faultline explore`: swarm testing of a scenario's `[[expect]]` blocks. Many runs, each
//! with a random schedule of faults drawn within `[explore]`'s bounds; a schedule that
//! breaks an expectation is shrunk to a minimal one (fewer faults, shorter, later, weaker),
//! as TigerBeetle's VOPR and FoundationDB's simulation search for the failure nobody wrote.
//!
//! Deterministic in its seed: run `i` draws its schedule from its own stream, each schedule
//! is judged on the expectations' own seeds, and shrinking tries candidates in a fixed
//! order; so the thread count changes only the wall time.

mod files;
pub mod space;

use crate::check::{check_scenario, Invalid, Verdict};
use crate::rng::SimRng;
use crate::scenario::raw::RawFault;
use crate::scenario::{self, Scenario};
pub use files::{summary, write_dir};
use rayon::prelude::*;
pub use space::Space;
use std::collections::BTreeMap;

/// Schedules drawn when neither `--budget` nor `[explore] budget` says.
pub const BUDGET: u32 = 200;
/// Candidates tried while shrinking one schedule, at most.
pub const SHRINK_TRIES: u32 = 200;

/// A run judged: its index, its schedule, the expectations it broke.
type Judged = (u32, Vec<RawFault>, Vec<Verdict>);

/// A schedule that breaks the scenario, drawn and shrunk.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The run that drew it.
    pub run: u32,
    /// The schedule drawn.
    pub drawn: Vec<RawFault>,
    /// The minimal schedule that still breaks an expectation.
    pub minimal: Vec<RawFault>,
    /// The expectations the minimal schedule breaks.
    pub failing: Vec<Verdict>,
    /// Candidates tried while shrinking.
    pub tries: u32,
}

/// What a search found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Runs made (schedules drawn and judged).
    pub runs: u32,
    /// The runs whose schedule broke an expectation.
    pub violating_runs: Vec<u32>,
    /// Distinct minimal schedules, in the order of the runs that found them.
    pub found: Vec<Violation>,
    /// Violations not shrunk, past `shrink_at_most`.
    pub unshrunk: u32,
}

/// The scenario with `faults` added to its own.
pub fn with_faults(scn: &Scenario, faults: &[RawFault]) -> Result<Scenario, Invalid> {
    with_faults_as(scn, faults, &scn.file)
}

/// [`with_faults`], as if read from `file` (where it will be written).
pub fn with_faults_as(
    scn: &Scenario,
    faults: &[RawFault],
    file: &str,
) -> Result<Scenario, Invalid> {
    scenario::parse(file, &text_with(scn, faults, ""), &scn.overrides).map_err(|e| {
        Invalid(format!(
            "{}: a drawn schedule does not validate (a fault of explore's own, please report it): {e}\n{}",
            scn.file,
            space::to_toml(faults)
        ))
    })
}

/// The scenario's text with `faults` appended as `[[fault]]` blocks after `comment`.
pub fn text_with(scn: &Scenario, faults: &[RawFault], comment: &str) -> String {
    let mut text = scn.text.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    for line in comment.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&space::to_toml(faults));
    text
}

/// The expectations `faults` break (none: the scenario holds under them).
pub fn judge(scn: &Scenario, faults: &[RawFault]) -> Result<Vec<Verdict>, Invalid> {
    let s = with_faults(scn, faults)?;
    Ok(check_scenario(&s, None)?
        .into_iter()
        .filter(|v| !v.passed)
        .collect())
}

/// The schedule of run `i` under explore seed `seed`.
pub fn draw(space: &Space, seed: u64, i: u32) -> Vec<RawFault> {
    let mut rng = SimRng::for_component(seed, &format!("explore/{i}"));
    space.draw(&mut rng)
}

/// Searches: runs `0..budget` in batches on the current rayon pool, while `go_on()` says so
/// between batches (a wall-clock limit); `progress` hears of each batch's runs. Shrinks
/// violations in run order until `shrink_at_most` distinct findings are made: minimal
/// schedules of a different shape (see [`shape`]), so that a second partition of the same
/// two services at another time does not take the place of a different weakness.
pub fn search(
    scn: &Scenario,
    space: &Space,
    seed: u64,
    budget: u32,
    shrink_at_most: u32,
    go_on: &dyn Fn() -> bool,
    progress: &(dyn Fn(u32) + Sync),
) -> Result<Outcome, Invalid> {
    if space.kinds.is_empty() || space.targets.is_empty() {
        return Err(Invalid(format!(
            "{}: explore: no fault can be drawn: [explore] kinds leave none this scenario can have (a partition needs a call between two of the targets)",
            scn.file
        )));
    }
    let mut out = Outcome::default();
    let batch = (rayon::current_num_threads() as u32 * 2).max(2);
    let mut violations: Vec<(u32, Vec<RawFault>)> = Vec::new();
    // Verdicts by schedule, as written (fault order can matter: faults at the same instant
    // are scheduled in order): shrinking meets schedules judged before (the drawn one, the
    // minimal one, another violation's candidates), and a verdict is a function of the
    // schedule's text, so each is run once.
    let mut judged_before: BTreeMap<String, Vec<Verdict>> = BTreeMap::new();
    while out.runs < budget && go_on() {
        let end = (out.runs + batch).min(budget);
        let judged: Vec<Result<Judged, Invalid>> = (out.runs..end)
            .into_par_iter()
            .map(|i| {
                let faults = draw(space, seed, i);
                let broke = judge(scn, &faults)?;
                progress(1);
                Ok((i, faults, broke))
            })
            .collect();
        for j in judged {
            let (i, faults, broke) = j?;
            if !broke.is_empty() {
                out.violating_runs.push(i);
                judged_before.insert(space::to_toml(&faults), broke);
                violations.push((i, faults));
            }
        }
        out.runs = end;
    }
    let mut keys: Vec<String> = Vec::new();
    for (run, drawn) in violations {
        if out.found.len() as u32 >= shrink_at_most {
            out.unshrunk += 1;
            continue;
        }
        let mut judge_once = |f: &[RawFault]| -> Result<Vec<Verdict>, Invalid> {
            let key = space::to_toml(f);
            if let Some(v) = judged_before.get(&key) {
                return Ok(v.clone());
            }
            let v = judge(scn, f)?;
            judged_before.insert(key, v.clone());
            Ok(v)
        };
        let (minimal, tries) = shrink(drawn.clone(), &mut |f| Ok(!judge_once(f)?.is_empty()))?;
        let failing = judge_once(&minimal)?;
        let key = shape(&minimal);
        if keys.contains(&key) {
            continue;
        }
        keys.push(key);
        out.found.push(Violation {
            run,
            drawn,
            minimal,
            failing,
            tries,
        });
    }
    Ok(out)
}

/// A schedule's text with its faults in a fixed order: equal schedules, equal keys.
pub fn canonical(faults: &[RawFault]) -> String {
    let mut f = faults.to_vec();
    f.sort_by_key(space::to_toml_one);
    space::to_toml(&f)
}

/// What a schedule does, whatever its times, lengths and intensities: each fault's kind,
/// what it hits (service, peer, zone) and whether it hits one instance or all, in a fixed
/// order. Two minimal schedules of one shape are one finding.
pub fn shape(faults: &[RawFault]) -> String {
    let mut parts: Vec<String> = faults
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f.kind,
                f.target.as_deref().unwrap_or("-"),
                f.peer.as_deref().unwrap_or("-"),
                f.zone.as_deref().unwrap_or("-"),
                if f.instance.is_some() { "one" } else { "all" }
            )
        })
        .collect();
    parts.sort();
    parts.join("; ")
}

/// Shrinks `faults` while `fails` holds (delta debugging, greedy to a fixed point): drop a
/// fault; then per fault, halve its length, keep only its second half, weaken it (half the
/// added latency, half the error share, half the extra work, one instance instead of all).
/// Each step is kept only if the schedule still fails; at most `SHRINK_TRIES` candidates.
/// Returns the minimal schedule and the candidates tried.
pub fn shrink(
    mut faults: Vec<RawFault>,
    fails: &mut dyn FnMut(&[RawFault]) -> Result<bool, Invalid>,
) -> Result<(Vec<RawFault>, u32), Invalid> {
    let mut tries = 0;
    'outer: loop {
        // Fewer faults.
        if faults.len() > 1 {
            for i in 0..faults.len() {
                let mut c = faults.clone();
                c.remove(i);
                tries += 1;
                if fails(&c)? {
                    faults = c;
                    continue 'outer;
                }
                if tries >= SHRINK_TRIES {
                    break 'outer;
                }
            }
        }
        // Shorter, later, weaker.
        for i in 0..faults.len() {
            for c in smaller(&faults[i]) {
                let mut s = faults.clone();
                s[i] = c;
                tries += 1;
                if fails(&s)? {
                    faults = s;
                    continue 'outer;
                }
                if tries >= SHRINK_TRIES {
                    break 'outer;
                }
            }
        }
        break;
    }
    Ok((faults, tries))
}

/// The one-step smaller versions of a fault, in the order tried.
fn smaller(f: &RawFault) -> Vec<RawFault> {
    use crate::time::SimDuration;
    let mut out = Vec::new();
    let secs = f.length.map_or(0, |l| l.0 / 1_000_000_000);
    if secs >= 2 {
        let half = secs / 2;
        let mut shorter = f.clone();
        shorter.length = Some(SimDuration::from_secs(half));
        out.push(shorter);
        let mut later = f.clone();
        later.at = SimDuration(f.at.0 + SimDuration::from_secs(secs - half).0);
        later.length = Some(SimDuration::from_secs(half));
        out.push(later);
    }
    let mut weaker = f.clone();
    let changed = match f.kind.as_str() {
        "latency" => f.add.filter(|a| a.0 >= 2_000_000).map(|a| {
            weaker.add = Some(SimDuration::from_millis(a.0 / 2_000_000));
        }),
        "error" => f.p.filter(|&p| p >= 0.02).map(|p| {
            weaker.p = Some((p * 50.0).round() / 100.0);
        }),
        "slow" => f.multiply.filter(|&m| m >= 1.2).map(|m| {
            weaker.multiply = Some(((1.0 + (m - 1.0) / 2.0) * 10.0).round() / 10.0);
        }),
        "crash" => f.instance.is_none().then(|| weaker.instance = Some(0)),
        _ => None,
    };
    if changed.is_some() {
        out.push(weaker);
    }
    out
}
