//! Each instance's share of its service's arrivals over time (from `instances.csv`): how evenly a balancer spreads load, and how that changes under a fault.

use super::*;

/// One chart per service in `d.instances` (see `data::instances` for which).
pub(super) fn draw(
    d: &RunData,
    dir: &Path,
    png: bool,
    bands: &[Band],
    x_range: (f64, f64),
) -> io::Result<Vec<ChartFile>> {
    let mut services: Vec<&str> = Vec::new();
    for r in &d.instances {
        if !services.contains(&r.service.as_str()) {
            services.push(&r.service);
        }
    }
    let mut out = Vec::new();
    for svc in services {
        let rows: Vec<&super::super::data::InstanceRow> =
            d.instances.iter().filter(|r| r.service == svc).collect();
        let n = rows.iter().map(|r| r.instance + 1).max().unwrap_or(0);
        // Bucket totals, in time order (rows are sorted by time).
        let mut totals: Vec<(f64, u64)> = Vec::new();
        for r in &rows {
            match totals.last_mut() {
                Some((t, sum)) if *t == r.t_s => *sum += r.requests,
                _ => totals.push((r.t_s, r.requests)),
            }
        }
        let total_at = |t: f64| {
            totals
                .binary_search_by(|(x, _)| x.total_cmp(&t))
                .map_or(0, |i| totals[i].1)
        };
        let mut lines: Vec<Line> = (0..n)
            .map(|k| Line {
                label: format!("{svc}/{k}"),
                colour: palette(k as usize),
                points: rows
                    .iter()
                    .filter(|r| r.instance == k)
                    .map(|r| {
                        let total = total_at(r.t_s);
                        let share = if total > 0 {
                            100.0 * r.requests as f64 / total as f64
                        } else {
                            f64::NAN
                        };
                        (r.t_s, share)
                    })
                    .collect(),
            })
            .collect();
        lines.push(Line {
            label: "even share".into(),
            colour: RGBColor(150, 150, 150),
            points: totals.iter().map(|&(t, _)| (t, 100.0 / n as f64)).collect(),
        });
        let chart = LineChart {
            title: format!("Load share per instance: service {svc}"),
            x_desc: "time (s)".into(),
            y_desc: "share of the service's arrivals (%)".into(),
            x_log: false,
            y_log: false,
            lines,
            bands: bands.to_vec(),
            x_range,
        };
        let file = format!("share-{}", slug(svc));
        emit(dir, &file, (W, H), png, &FixedY(chart, 0.0, 100.0))?;
        out.push(ChartFile {
            file: format!("{file}.svg"),
            caption: format!("Each instance's share of service {svc}'s arrivals per bucket (instances.csv): an even spread keeps every line near the grey 100/{n} %; faults are shaded."),
        });
    }
    Ok(out)
}
