//! `faultline check`: the `[[expect]]` blocks of scenarios, run over one or several seeds,
//! reported as a table and as JUnit XML; exit 1 when one fails.

use crate::api::{lookup, replication_seed, run, Summary};
use crate::scenario::{self, Scenario};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::results::expect::{Bound, Expr, Tolerance};

/// One expectation's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Scenario file.
    pub file: String,
    /// Scenario name.
    pub scenario: String,
    /// The metric's path.
    pub metric: String,
    /// Its bound.
    pub bound: Bound,
    /// Over seeds: None = every seed, Some(q) = the q-quantile.
    pub quantile: Option<f64>,
    /// (seed, value) per seed.
    pub values: Vec<(u64, f64)>,
    /// The value judged: the worst seed's, or the quantile.
    pub measured: f64,
    /// It holds.
    pub passed: bool,
    /// A seed whose run misses the bound most (to reproduce a failure).
    pub worst_seed: u64,
    /// Why it matters (from the scenario).
    pub why: Option<String>,
    /// The overrides the scenario was loaded with.
    pub overrides: Vec<String>,
    /// Over two seeds or more: the mean, its standard error and 95 % interval (Student's t).
    pub spread: Option<Spread>,
}

/// A mean over seeds and how sure it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The mean.
    pub mean: f64,
    /// Its standard error, sd / sqrt(n).
    pub se: f64,
    /// The 95 % interval of the mean.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Spread {
    /// Over `values` (at least two).
    pub fn of(values: &[f64]) -> Spread {
        let s = crate::sweep::stats::Summary::of(values);
        Spread {
            mean: s.mean,
            se: s.sd / (values.len() as f64).sqrt(),
            lo: s.lo,
            hi: s.hi,
        }
    }
}

impl Verdict {
    /// `expect: metric below x (over N seeds)`.
    pub fn title(&self) -> String {
        let over = match (self.values.len(), self.quantile) {
            (1, _) => String::new(),
            (n, _) if matches!(self.bound, Bound::Mean { .. }) => format!(" over {n} seeds"),
            (n, None) => format!(" on all {n} seeds"),
            (n, Some(q)) => format!(" at the {q} quantile of {n} seeds"),
        };
        format!("{} {}{over}", self.metric, self.bound.text())
    }

    /// " (mean 0.051, standard error 0.0012, 95 % interval 0.0486 to 0.0538)" over several
    /// seeds (without the mean when the mean is what was measured); empty over one.
    pub fn interval_text(&self) -> String {
        self.spread.map_or(String::new(), |s| {
            // The mean form measures the mean itself: no need to say it twice.
            let mean = match self.bound {
                Bound::Mean { .. } => String::new(),
                _ => format!("mean {}, ", fmt(s.mean)),
            };
            format!(
                " ({mean}standard error {}, 95 % interval {} to {})",
                fmt(s.se),
                fmt(s.lo),
                fmt(s.hi)
            )
        })
    }

    /// The command that reproduces the worst run.
    pub fn reproduce(&self) -> String {
        let sets: String = self
            .overrides
            .iter()
            .filter(|o| !o.starts_with("sim.seed="))
            .map(|o| format!(" --set '{o}'"))
            .collect();
        format!(
            "faultline run {} --seed {}{sets}",
            self.file, self.worst_seed
        )
    }
}

/// A problem that makes the check's input invalid (exit 2).
#[derive(Debug)]
pub struct Invalid(pub String);

/// Scenario files named by `paths`: files as given, directories searched recursively
/// for `*.toml`, in sorted order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Invalid> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| Invalid(format!("{}: {e}", p.display())))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Invalid(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    // Nearest rank: the smallest value with at least q of the values at or below it.
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// Runs the expectations of one scenario; `seeds` overrides each block's own count.
pub fn check_scenario(scn: &Scenario, seeds: Option<u32>) -> Result<Vec<Verdict>, Invalid> {
    let expects = &scn.raw.expect;
    if expects.is_empty() {
        return Ok(Vec::new());
    }
    let n = |e: &crate::scenario::raw::RawExpect| seeds.or(e.seeds).unwrap_or(1);
    let most = expects.iter().map(n).max().unwrap_or(1);
    let runs: Vec<(u64, Summary)> = (0..most)
        .into_par_iter()
        .map(|r| {
            let seed = replication_seed(scn.spec.seed, r);
            (seed, run(scn, seed))
        })
        .collect();
    let mut out = Vec::new();
    for e in expects {
        let bound = match (e.below, e.above, e.between, e.mean) {
            (Some(b), None, None, None) => Bound::Below(b),
            (None, Some(a), None, None) => Bound::Above(a),
            (None, None, Some([lo, hi]), None) => Bound::Between(lo, hi),
            (None, None, None, Some(target)) => Bound::Mean {
                target,
                tolerance: match (e.within_se, e.within_rel, e.within_abs) {
                    (Some(k), _, _) => Tolerance::StandardErrors(k),
                    (_, Some(r), _) => Tolerance::Relative(r),
                    (_, _, Some(d)) => Tolerance::Absolute(d),
                    _ => unreachable!("validated: one tolerance"),
                },
            },
            _ => unreachable!("validated: exactly one bound"),
        };
        let expr = Expr::parse(&e.metric).map_err(|why| {
            Invalid(format!(
                "{}: expect: metric {:?}: {why}",
                scn.file, e.metric
            ))
        })?;
        let mut values = Vec::new();
        for (seed, s) in runs.iter().take(n(e) as usize) {
            // true/false count as 1/0, so a verdict in the summary can be expected.
            let v = expr.eval(&s.json).map_err(|path| {
                let paths: Vec<String> = s.metrics().into_iter().map(|m| m.0).collect();
                let near = paths
                    .iter()
                    .min_by(|a, b| {
                        strsim::levenshtein(a, &path).cmp(&strsim::levenshtein(b, &path))
                    })
                    .cloned()
                    .unwrap_or_default();
                Invalid(format!(
                    "{}: expect: no number at {path:?} in summary.json; did you mean {near:?}? (`faultline run` shows every path in summary.json)",
                    scn.file
                ))
            })?;
            values.push((*seed, v));
        }
        let numbers: Vec<f64> = values.iter().map(|v| v.1).collect();
        let spread = (values.len() > 1).then(|| Spread::of(&numbers));
        let worst = values
            .iter()
            .copied()
            .max_by(|a, b| bound.miss(a.1).total_cmp(&bound.miss(b.1)))
            .expect("at least one seed");
        let (measured, passed) = match (bound, e.quantile) {
            (Bound::Mean { .. }, _) => {
                let (mean, se) = spread.map_or((numbers[0], f64::NAN), |s| (s.mean, s.se));
                (mean, bound.holds_mean(mean, se))
            }
            (_, None) => (worst.1, values.iter().all(|v| bound.holds(v.1))),
            (_, Some(q)) => {
                // The quantile of the values in the bound's favourable order.
                let mut misses: Vec<f64> = values.iter().map(|v| bound.miss(v.1)).collect();
                misses.sort_by(f64::total_cmp);
                let m = quantile(&misses, q);
                let at = values
                    .iter()
                    .find(|v| bound.miss(v.1) == m)
                    .expect("a value")
                    .1;
                (at, bound.holds(at))
            }
        };
        out.push(Verdict {
            file: scn.file.clone(),
            scenario: scn.spec.name.clone(),
            metric: e.metric.clone(),
            bound,
            quantile: e.quantile,
            values,
            measured,
            passed,
            worst_seed: worst.0,
            why: e.why.clone(),
            overrides: scn.overrides.clone(),
            spread,
        });
    }
    Ok(out)
}

/// Loads and checks every scenario among `paths`.
pub fn check_paths(
    paths: &[PathBuf],
    seeds: Option<u32>,
) -> Result<(Vec<Verdict>, usize), Invalid> {
    let files = collect(paths)?;
    let mut loaded = Vec::new();
    for f in &files {
        let scn = scenario::load(f, &[]).map_err(|e| Invalid(e.to_string()))?;
        unknown_metrics(&scn).map_err(|e| Invalid(e.to_string()))?;
        loaded.push(scn);
    }
    let with: Vec<&Scenario> = loaded.iter().filter(|s| !s.raw.expect.is_empty()).collect();
    let results: Vec<Result<Vec<Verdict>, Invalid>> =
        with.par_iter().map(|s| check_scenario(s, seeds)).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok((out, files.len() - with.len()))
}

/// The table printed on stdout.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut o = String::new();
    for v in verdicts {
        let _ = writeln!(
            o,
            "{}  {}  {}  measured {}{}",
            if v.passed { "PASS" } else { "FAIL" },
            v.file,
            v.title(),
            fmt(v.measured),
            v.interval_text()
        );
        if !v.passed {
            if let Some(why) = &v.why {
                let _ = writeln!(o, "      why: {why}");
            }
            let _ = writeln!(o, "      reproduce: {}", v.reproduce());
        }
    }
    o
}

fn fmt(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a test suite per scenario file, a test case per expectation.
pub fn junit(verdicts: &[Verdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.passed).count();
    let mut o = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faultline check\" tests=\"{}\" failures=\"{failures}\">\n",
        verdicts.len()
    );
    let mut files: Vec<&str> = verdicts.iter().map(|v| v.file.as_str()).collect();
    files.dedup();
    for f in files {
        let cases: Vec<&Verdict> = verdicts.iter().filter(|v| v.file == f).collect();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml(f),
            cases.len(),
            cases.iter().filter(|v| !v.passed).count()
        );
        for v in cases {
            let _ = write!(
                o,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&v.scenario),
                xml(&v.title())
            );
            if v.passed {
                o.push_str("/>\n");
            } else {
                let _ = writeln!(
                    o,
                    ">\n      <failure message=\"{} measured {}{}\">{}reproduce: {}</failure>\n    </testcase>",
                    xml(&v.title()),
                    fmt(v.measured),
                    xml(&v.interval_text()),
                    v.why.as_deref().map(|w| format!("{}\n", xml(w))).unwrap_or_default(),
                    xml(&v.reproduce())
                );
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// The `[[expect]]` metrics that name nothing in this scenario's `summary.json`, as
/// placed errors: found before anything long runs. The summary's shape comes from a run
/// of one nanosecond (every service, workload, edge and broker is in it whatever the
/// traffic).
pub fn unknown_metrics(scn: &Scenario) -> Result<(), scenario::diag::ScenarioError> {
    use scenario::diag::{place, Diagnostic, ScenarioError, TomlPath};
    if scn.raw.expect.is_empty() {
        return Ok(());
    }
    let mut spec = scn.spec.clone();
    spec.duration = crate::time::SimDuration(1);
    spec.warmup = crate::time::SimDuration::ZERO;
    let shape = Scenario {
        spec,
        ..scn.clone()
    };
    let summary = run(&shape, scn.spec.seed);
    let paths: Vec<String> = summary.metrics().into_iter().map(|m| m.0).collect();
    let mut diagnostics = Vec::new();
    for (i, e) in scn.raw.expect.iter().enumerate() {
        // Validated when loaded: the metric parses.
        let Ok(expr) = Expr::parse(&e.metric) else {
            continue;
        };
        let Some(missing) = expr
            .paths()
            .into_iter()
            .find(|p| lookup(&summary.json, p).is_none())
        else {
            continue;
        };
        let path = TomlPath::default().key("expect").index(i).key("metric");
        let (line, column) = place(&scn.text, &path);
        let near = paths
            .iter()
            .min_by_key(|p| strsim::levenshtein(p, missing))
            .cloned()
            .unwrap_or_default();
        diagnostics.push(Diagnostic {
            path: path.to_string(),
            line,
            column,
            message: format!(
                "summary.json has no metric {missing:?} (did you mean {near:?}?); `faultline run` writes every path there is"
            ),
        });
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ScenarioError {
            file: scn.file.clone(),
            diagnostics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_quantiles() {
        assert!(Bound::Below(1.0).holds(0.5) && !Bound::Below(1.0).holds(1.0));
        assert!(Bound::Between(1.0, 2.0).holds(2.0) && !Bound::Between(1.0, 2.0).holds(2.1));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 1.0), 4.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.01), 1.0);
    }
}
