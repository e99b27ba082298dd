//! What `faultline explore` writes: `explore.txt` (the search and what it found) and, per
//! minimal schedule, `found-K.toml` (the scenario with it added) and `found-K/` (its report).

use super::{Outcome, Space};
use crate::scenario::Scenario;
use std::fmt::Write as _;
use std::path::Path;

/// `explore.txt`: the search, and each minimal schedule with what it breaks and how to
/// reproduce it. No wall time and no paths outside the directory: the same seed gives the
/// same bytes.
pub fn summary(scn: &Scenario, space: &Space, seed: u64, o: &Outcome) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "faultline explore: {} (explore seed {seed})", scn.file);
    let _ = writeln!(
        t,
        "space: {} on {} (one instance or all); {} to {} faults a schedule, each within {} s to {} s and {} s long at most",
        space.kinds.join(", "),
        space.targets.join(", "),
        1,
        space.max_faults,
        space.from_ms / 1000,
        space.until_ms / 1000,
        space.longest_ms / 1000
    );
    let runs: Vec<String> = o.violating_runs.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(
        t,
        "runs: {}; breaking an expectation: {}{}; distinct minimal schedules: {}{}",
        o.runs,
        o.violating_runs.len(),
        if runs.is_empty() {
            String::new()
        } else {
            format!(" (runs {})", shorten(&runs, 20))
        },
        o.found.len(),
        if o.unshrunk > 0 {
            format!(
                " ({} more violations not shrunk: raise --shrink)",
                o.unshrunk
            )
        } else {
            String::new()
        }
    );
    if o.found.is_empty() {
        let _ = writeln!(
            t,
            "\nnothing broke: every expectation held under every schedule drawn."
        );
    }
    for (k, f) in o.found.iter().enumerate() {
        let n = k + 1;
        let _ = writeln!(
            t,
            "\nfound {n}: run {}, shrunk from {} to {} in {} tries",
            f.run,
            faults(f.drawn.len()),
            f.minimal.len(),
            f.tries
        );
        for v in &f.failing {
            let _ = writeln!(
                t,
                "  breaks: {} {} (measured {}, seed {})",
                v.metric,
                v.bound.text(),
                v.measured,
                v.worst_seed
            );
        }
        let _ = writeln!(t, "  schedule:");
        for line in super::space::to_toml(&f.minimal).lines() {
            let _ = writeln!(t, "    {line}");
        }
        // Names inside the output directory: the same bytes wherever it is written.
        let _ = writeln!(
            t,
            "  scenario: found-{n}.toml (the scenario with this schedule added)\n  report: found-{n}/report.html\n  reproduce: faultline check found-{n}.toml (in this directory)"
        );
    }
    t
}

fn shorten(items: &[String], most: usize) -> String {
    if items.len() <= most {
        items.join(", ")
    } else {
        format!(
            "{}, ... {} more",
            items[..most].join(", "),
            items.len() - most
        )
    }
}

/// Writes the directory whole: into a staging directory beside it, renamed over it at the
/// end, so an interrupted search leaves the last complete one (or none).
pub fn write_dir(scn: &Scenario, o: &Outcome, text: &str, dir: &Path) -> std::io::Result<()> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        std::fs::create_dir_all(p)?;
    }
    let name = dir
        .file_name()
        .map_or("explore".into(), |n| n.to_string_lossy().into_owned());
    let staging = parent
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    for (k, f) in o.found.iter().enumerate() {
        let n = k + 1;
        let comment = format!(
            "Added by faultline explore: the minimal schedule of run {} (found {n}), shrunk from\n{}; it breaks {}.",
            f.run,
            faults(f.drawn.len()),
            f.failing
                .iter()
                .map(|v| format!("{} {}", v.metric, v.bound.text()))
                .collect::<Vec<_>>()
                .join("; ")
        );
        std::fs::write(
            staging.join(format!("found-{n}.toml")),
            super::text_with(scn, &f.minimal, &comment),
        )?;
        let with = super::with_faults_as(scn, &f.minimal, &format!("found-{n}.toml"))
            .map_err(|e| std::io::Error::other(e.0))?;
        crate::api::run_to_dir(&with, &staging.join(format!("found-{n}")))?;
    }
    std::fs::write(staging.join("explore.txt"), text)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir)
}

/// "1 fault", "2 faults".
fn faults(n: usize) -> String {
    if n == 1 {
        "1 fault".into()
    } else {
        format!("{n} faults")
    }
}
