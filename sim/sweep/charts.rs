//! A sweep's charts: each headline metric against each swept parameter with 95 % intervals, and a heatmap for two parameters.

use crate::report::plot::{emit, slug, BandLine, BandLines, Heat, H, W};
use std::io;
use std::path::Path;

/// A parameter value as a number for a chart axis: numbers as they are, durations in ms.
fn axis_value(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().or_else(|| {
        crate::time::parse_duration(v)
            .ok()
            .map(|d| d.0 as f64 / 1e6)
    })
}

/// The charts of a sweep: each headline metric (every workload's p99 and error rate)
/// against each swept parameter, and a heatmap when two are swept.
pub fn sweep_charts(
    dir: &Path,
    grid: &[super::axes::Axis],
    zip: &[super::axes::Axis],
    points: &[Vec<(String, String)>],
    columns: &[String],
    summaries: &[Vec<super::stats::Summary>],
) -> io::Result<()> {
    let headline: Vec<(usize, &String)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.starts_with("workloads.")
                && (c.ends_with(".latency_ms.p99") || c.ends_with(".error_rate"))
        })
        .collect();
    let axes: Vec<&super::axes::Axis> = grid.iter().chain(zip).collect();
    for (ai, axis) in axes.iter().enumerate() {
        let numeric = axis.values.iter().all(|v| axis_value(v).is_some());
        let xpos = |v: &str| -> f64 {
            if numeric {
                axis_value(v).unwrap_or(0.0)
            } else {
                axis.values.iter().position(|x| x == v).unwrap_or(0) as f64
            }
        };
        for (ci, col) in &headline {
            // Group points by the values of the other parameters.
            let mut groups: Vec<BandLine> = Vec::new();
            for (p, sets) in points.iter().enumerate() {
                let others: Vec<String> = sets
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != ai)
                    .map(|(_, (path, v))| {
                        format!("{}={v}", path.rsplit('.').next().unwrap_or(path))
                    })
                    .collect();
                let label = if others.is_empty() {
                    "mean, 95 % interval".to_string()
                } else {
                    others.join(", ")
                };
                let s = summaries[p][*ci];
                let pt = (xpos(&sets[ai].1), s.mean, s.lo, s.hi);
                match groups.iter_mut().find(|g| g.0 == label) {
                    Some(g) => g.1.push(pt),
                    None => groups.push((label, vec![pt])),
                }
            }
            groups.truncate(8);
            for g in &mut groups {
                g.1.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let chart = BandLines {
                title: format!("{col} against {}", axis.path),
                x_desc: format!(
                    "{}{}",
                    axis.path,
                    if numeric && axis.values.iter().any(|v| v.parse::<f64>().is_err()) {
                        " (ms)"
                    } else {
                        ""
                    }
                ),
                y_desc: metric_desc(col),
                x_labels: (!numeric).then(|| axis.values.clone()),
                lines: groups,
            };
            let file = format!("sweep-{}-vs-{}", slug(col), slug(&axis.path));
            emit(dir, &file, (W, H), false, &chart)?;
        }
    }
    if axes.len() == 2 && zip.is_empty() {
        let (ax, ay) = (axes[0], axes[1]);
        for (ci, col) in &headline {
            let mut values = vec![vec![f64::NAN; ax.values.len()]; ay.values.len()];
            for (p, sets) in points.iter().enumerate() {
                let x = ax.values.iter().position(|v| *v == sets[0].1).unwrap_or(0);
                let y = ay.values.iter().position(|v| *v == sets[1].1).unwrap_or(0);
                values[y][x] = summaries[p][*ci].mean;
            }
            let chart = Heat {
                title: format!("{}: mean over replications", metric_desc(col)),
                x_desc: ax.path.clone(),
                y_desc: ay.path.clone(),
                x_labels: ax.values.clone(),
                y_labels: ay.values.clone(),
                values,
            };
            emit(
                dir,
                &format!("sweep-heatmap-{}", slug(col)),
                (W, H),
                false,
                &chart,
            )?;
        }
    }
    Ok(())
}

/// A headline metric's axis title, with its unit.
fn metric_desc(col: &str) -> String {
    // (Names may hold dots: the suffix is cut, not the first segment taken.)
    let workload = |suffix: &str| {
        col.strip_prefix("workloads.")
            .and_then(|r| r.strip_suffix(suffix))
            .unwrap_or("")
            .to_string()
    };
    if col.ends_with(".latency_ms.p99") {
        format!("{} p99 latency (ms)", workload(".latency_ms.p99"))
    } else if col.ends_with(".error_rate") {
        format!("{} error rate (share of requests)", workload(".error_rate"))
    } else {
        col.to_string()
    }
}
