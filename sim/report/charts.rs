//! Charts drawn with plotters from a run directory's files: SVG always, PNG on request.
//!
//! Text is measured with DejaVu Sans compiled into the binary (never the system's fonts),
//! so a chart's bytes depend only on the data.

mod hosts;
mod projections;
mod share;

use super::data::{RunData, SeriesRow, StateEvent};
use super::plot::*;
use super::traces::outcome_colour;
use crate::policy::breaker::State as Breaker;
use crate::results::events::{Change, InstanceState, OutlierChange};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::path::Path;

/// A chart written to the run directory.
#[derive(Clone, Debug)]
pub struct ChartFile {
    /// File name (`latency-shoppers.svg`).
    pub file: String,
    /// What it shows, one line.
    pub caption: String,
}

/// A stacked layer: label, colour, per-bucket (t, rate).
type Layer = (String, RGBColor, Vec<(f64, f64)>);
/// A timeline row: label, spans (from, to, colour, text).
type TimelineRow = (String, Vec<(f64, f64, RGBColor, String)>);
/// A bar row: label, segments (value, colour), text after the bar.
type BarRow = (String, Vec<(f64, RGBColor)>, String);
/// Picks a value from a time-series row.
type Pick = fn(&SeriesRow) -> f64;

// ---- shaded periods --------------------------------------------------------------

/// What a shaded period is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BandKind {
    Fault,
    Breaker,
    Deploy,
    Load,
}

impl BandKind {
    fn colour(self) -> RGBAColor {
        match self {
            BandKind::Fault => RGBColor(214, 39, 40).mix(0.13),
            BandKind::Breaker => RGBColor(255, 127, 14).mix(0.16),
            BandKind::Deploy => RGBColor(31, 119, 180).mix(0.12),
            BandKind::Load => RGBColor(148, 103, 189).mix(0.14),
        }
    }
    fn name(self) -> &'static str {
        match self {
            BandKind::Fault => "fault",
            BandKind::Breaker => "breaker open",
            BandKind::Deploy => "deployment",
            BandKind::Load => "load shape",
        }
    }
}

#[derive(Clone, Debug)]
struct Band {
    from: f64,
    to: f64,
    kind: BandKind,
    label: String,
}

/// Fault windows, breaker-open periods and deployments from `events.csv`.
fn bands(d: &RunData) -> Vec<Band> {
    let end = d.duration_s();
    let mut out = Vec::new();
    let mut open: Vec<(String, BandKind, f64, String)> = Vec::new();
    for e in &d.events {
        let (kind, starts) = match &e.change {
            Change::Fault { on, .. } => (BandKind::Fault, *on),
            Change::Breaker {
                from: Breaker::Closed,
                ..
            } => (BandKind::Breaker, true),
            Change::Breaker {
                to: Breaker::Closed,
                ..
            } => (BandKind::Breaker, false),
            Change::RolloutStarted { .. } => (BandKind::Deploy, true),
            Change::RolloutFinished { .. } => (BandKind::Deploy, false),
            Change::CanaryWeight { .. } | Change::CanaryRollback { .. } => {
                let what = match &e.change {
                    Change::CanaryRollback { .. } => "rolled back".to_string(),
                    weight => weight.to_string(),
                };
                // A migration's subject says so ("migration:NAME"); a canary's is its service.
                let label = match e.subject.strip_prefix("migration:") {
                    Some(name) => format!("migration {name} {what}"),
                    None => format!("canary {what}"),
                };
                out.push(Band {
                    from: e.t_s,
                    to: e.t_s,
                    kind: BandKind::Deploy,
                    label,
                });
                continue;
            }
            _ => continue,
        };
        if starts {
            let label = match (&e.change, kind) {
                (Change::Fault { what, .. }, _) => {
                    format!("{} {}", Change::fault_label(what), e.subject)
                }
                (_, BandKind::Fault | BandKind::Load) => {
                    unreachable!(
                        "a fault band starts with a fault event; loads come from the summary"
                    )
                }
                (_, BandKind::Breaker) => format!("breaker {}", e.subject),
                (_, BandKind::Deploy) => format!("rollout {}", e.subject),
            };
            open.push((e.subject.clone(), kind, e.t_s, label));
        } else if let Some(k) = open
            .iter()
            .position(|(s, k, _, _)| *s == e.subject && *k == kind)
        {
            let (_, kind, from, label) = open.remove(k);
            out.push(Band {
                from,
                to: e.t_s,
                kind,
                label,
            });
        }
    }
    for (_, kind, from, label) in open {
        out.push(Band {
            from,
            to: end,
            kind,
            label,
        });
    }
    // Load spikes and steps, as the summary's recovery section lists them.
    if let Some(windows) = d.summary["recovery"].as_object() {
        for w in windows.values().filter(|w| w["kind"] == "load") {
            out.push(Band {
                from: w["from_s"].as_f64().unwrap_or(0.0),
                to: w["to_s"].as_f64().unwrap_or(0.0),
                kind: BandKind::Load,
                label: w["what"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.from.total_cmp(&b.from).then(a.label.cmp(&b.label)));
    out
}

// ---- line charts ---------------------------------------------------------------------

struct Line {
    label: String,
    colour: RGBColor,
    /// NaN y: a gap.
    points: Vec<(f64, f64)>,
}

struct LineChart {
    title: String,
    x_desc: String,
    y_desc: String,
    x_log: bool,
    y_log: bool,
    lines: Vec<Line>,
    bands: Vec<Band>,
    x_range: (f64, f64),
}

fn finite_range(lines: &[Line], positive: bool) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines {
        for &(_, y) in &l.points {
            if y.is_finite() && (!positive || y > 0.0) {
                lo = lo.min(y);
                hi = hi.max(y);
            }
        }
    }
    if !lo.is_finite() {
        return if positive { (0.1, 1.0) } else { (0.0, 1.0) };
    }
    (lo, hi)
}

impl LineChart {
    fn y_range(&self) -> (f64, f64) {
        let (lo, hi) = finite_range(&self.lines, self.y_log);
        if self.y_log {
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf((hi * 1.05).log10().ceil()).max(lo * 10.0);
            (lo, hi)
        } else {
            (0.0, if hi > 0.0 { hi * 1.08 } else { 1.0 })
        }
    }

    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res {
        let (y0, y1) = self.y_range();
        let (x0, x1) = self.x_range;
        let mut b = ChartBuilder::on(area);
        b.caption(
            &self.title,
            ("sans-serif", 17).into_font().style(FontStyle::Bold),
        )
        .margin(8)
        // Room on the right for the last x tick label, which is centred on the edge.
        .margin_right(26)
        .x_label_area_size(36)
        .y_label_area_size(64);
        match (self.x_log, self.y_log) {
            (false, false) => self.body(b.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
            (false, true) => self.body(
                b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(err)?,
            ),
            (true, false) => self.body(
                b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                    .map_err(err)?,
            ),
            (true, true) => self.body(
                b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                    .map_err(err)?,
            ),
        }
    }

    fn body<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        mut c: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    ) -> Res
    where
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (y0, y1) = {
            let r = c.y_range();
            (r.start, r.end)
        };
        c.configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        // Shaded periods under the lines, each kind once in the legend.
        let mut seen: Vec<BandKind> = Vec::new();
        let mut labelled = 0;
        for band in &self.bands {
            let colour = band.kind.colour();
            let to = if band.to - band.from < 1e-9 {
                band.from
            } else {
                band.to
            };
            let s = if to == band.from {
                c.draw_series(std::iter::once(PathElement::new(
                    vec![(band.from, y0), (band.from, y1)],
                    colour.mix(3.0).stroke_width(1),
                )))
                .map_err(err)?
            } else {
                c.draw_series(std::iter::once(Rectangle::new(
                    [(band.from, y0), (to, y1)],
                    colour.filled(),
                )))
                .map_err(err)?
            };
            if !seen.contains(&band.kind) {
                seen.push(band.kind);
                s.label(band.kind.name()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(2.5).filled())
                });
            }
            // Label the first few bands, staggered so labels do not overlap.
            if labelled < 6 {
                let pos = c.backend_coord(&(band.from, y1));
                let dy = 14 * (labelled % 3) + 4;
                // A label that would run past the plot's right edge ends at it instead.
                let font = ("sans-serif", 11).into_font();
                let w = c
                    .plotting_area()
                    .estimate_text_size(&band.label, &font.clone().into())
                    .map_or(0, |(w, _)| w as i32);
                let right = c.plotting_area().get_pixel_range().0.end;
                let x = (pos.0 + 3).min(right - w - 2);
                text_px(
                    c.plotting_area(),
                    (x, pos.1 + dy),
                    band.label.clone(),
                    ("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90)),
                )?;
                labelled += 1;
            }
        }
        for line in &self.lines {
            let colour = line.colour;
            let mut first = true;
            for seg in line
                .points
                .split(|p| !p.1.is_finite() || (self.y_log && p.1 <= 0.0))
                .filter(|s| !s.is_empty())
            {
                let s = c
                    .draw_series(LineSeries::new(seg.iter().copied(), colour.stroke_width(2)))
                    .map_err(err)?;
                if first {
                    first = false;
                    s.label(line.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
                    });
                }
            }
        }
        legend(&mut c)?;
        Ok(())
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        self.draw_on(root)
    }
}

/// Several line charts stacked vertically.
struct Panels(Vec<LineChart>);

impl Chart for Panels {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let areas = root.split_evenly((self.0.len(), 1));
        for (p, a) in self.0.iter().zip(areas.iter()) {
            p.draw_on(a)?;
        }
        Ok(())
    }
}

// ---- stacked outcomes ------------------------------------------------------------------

struct Stacked {
    title: String,
    x_range: (f64, f64),
    /// (label, colour, per-bucket (t, rate)) bottom first.
    layers: Vec<Layer>,
    bands: Vec<Band>,
}

impl Chart for Stacked {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let n = self.layers.first().map_or(0, |l| l.2.len());
        let mut cum: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut acc = vec![0.0; n];
        for (_, _, pts) in &self.layers {
            for (k, p) in pts.iter().enumerate() {
                acc[k] += p.1;
            }
            cum.push(pts.iter().zip(&acc).map(|(p, a)| (p.0, *a)).collect());
        }
        let top = acc.iter().copied().fold(0.0, f64::max).max(1.0) * 1.1;
        let (x0, x1) = self.x_range;
        let mut c = ChartBuilder::on(root)
            .caption(
                &self.title,
                ("sans-serif", 17).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            // Room on the right for the last x tick label, which is centred on the edge.
            .margin_right(26)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("time (s)")
            .y_desc("requests/s")
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for band in &self.bands {
            if band.to > band.from {
                c.draw_series(std::iter::once(Rectangle::new(
                    [(band.from, 0.0), (band.to, top)],
                    band.kind.colour().filled(),
                )))
                .map_err(err)?;
            }
        }
        // Top layer first: each cumulative area hides the part of the one above it.
        for ((label, colour, _), pts) in self.layers.iter().zip(&cum).rev() {
            let colour = *colour;
            // Steps: each bucket's rate holds until the next bucket.
            let mut steps = Vec::with_capacity(pts.len() * 2);
            let width = pts.get(1).map_or(1.0, |p| p.0 - pts[0].0);
            for &(t, y) in pts {
                steps.push((t, y));
                steps.push((t + width, y));
            }
            c.draw_series(AreaSeries::new(steps, 0.0, colour.mix(0.85).filled()))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        legend(&mut c)?;
        Ok(())
    }
}

// ---- rows: timelines and horizontal bars ------------------------------------------------

/// A state timeline: one row per component, coloured spans.
struct Timeline {
    title: String,
    x_range: (f64, f64),
    /// (row label, spans (from, to, colour, text)).
    rows: Vec<TimelineRow>,
    legend: Vec<(String, RGBColor)>,
}

const ROW_PX: u32 = 22;

impl Timeline {
    fn height(&self) -> u32 {
        138 + ROW_PX * self.rows.len() as u32
    }
}

impl Chart for Timeline {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let n = self.rows.len() as f64;
        let (x0, x1) = self.x_range;
        let (main, foot) = root.split_vertically(root.dim_in_pixel().1.saturating_sub(28));
        let mut c = ChartBuilder::on(&main)
            .caption(
                &self.title,
                ("sans-serif", 17).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            // Room on the right for the last x tick label, which is centred on the edge.
            .margin_right(26)
            .x_label_area_size(36)
            .y_label_area_size(230)
            .build_cartesian_2d(x0..x1, 0.0..n)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("time (s)")
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, (label, spans)) in self.rows.iter().enumerate() {
            let y = n - k as f64 - 1.0;
            for (from, to, colour, text) in spans {
                let to = if to - from < (x1 - x0) * 0.002 {
                    from + (x1 - x0) * 0.002
                } else {
                    *to
                };
                c.draw_series(std::iter::once(Rectangle::new(
                    [(*from, y + 0.15), (to, y + 0.85)],
                    colour.filled(),
                )))
                .map_err(err)?;
                if !text.is_empty() {
                    let p = c.backend_coord(&(*from, y + 0.5));
                    text_px(
                        c.plotting_area(),
                        (p.0 + 2, p.1 - 6),
                        text.clone(),
                        ("sans-serif", 11).into_font().color(&BLACK),
                    )?;
                }
            }
            let p = c.backend_coord(&(x0, y + 0.5));
            let mut label = label.clone();
            if label.chars().count() > 32 {
                label = label.chars().take(31).collect::<String>() + "…";
            }
            text_px(
                root,
                (p.0 - 222, p.1 - 7),
                label,
                ("sans-serif", 12).into_font(),
            )?;
        }
        legend_row(&foot, &self.legend)?;
        Ok(())
    }
}

/// Horizontal bars: one row per item, segments stacked left to right.
struct Bars {
    title: String,
    x_desc: String,
    /// (row label, segments (value, colour), text after the bar).
    rows: Vec<BarRow>,
    legend: Vec<(String, RGBColor)>,
}

impl Bars {
    fn height(&self) -> u32 {
        148 + ROW_PX * self.rows.len() as u32
    }
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let n = self.rows.len() as f64;
        let max = self
            .rows
            .iter()
            .map(|r| r.1.iter().map(|s| s.0).sum::<f64>())
            .fold(0.0, f64::max);
        // Room on the right for the text after the longest bar.
        let top = if max > 0.0 { max * 1.6 } else { 1.0 };
        let (main, foot) = root.split_vertically(root.dim_in_pixel().1.saturating_sub(28));
        let mut c = ChartBuilder::on(&main)
            .caption(
                &self.title,
                ("sans-serif", 17).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            // Room on the right for the last x tick label, which is centred on the edge.
            .margin_right(26)
            .x_label_area_size(36)
            .y_label_area_size(230)
            .build_cartesian_2d(0.0..top, 0.0..n)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc(self.x_desc.as_str())
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, (label, segs, text)) in self.rows.iter().enumerate() {
            let y = n - k as f64 - 1.0;
            let mut x = 0.0;
            for (v, colour) in segs {
                if *v > 0.0 {
                    c.draw_series(std::iter::once(Rectangle::new(
                        [(x, y + 0.2), (x + v, y + 0.8)],
                        colour.filled(),
                    )))
                    .map_err(err)?;
                }
                x += v;
            }
            let p = c.backend_coord(&(x, y + 0.5));
            text_px(
                c.plotting_area(),
                (p.0 + 4, p.1 - 6),
                text.clone(),
                ("sans-serif", 11).into_font(),
            )?;
            let p = c.backend_coord(&(0.0, y + 0.5));
            let mut label = label.clone();
            if label.chars().count() > 32 {
                label = label.chars().take(31).collect::<String>() + "…";
            }
            text_px(
                root,
                (p.0 - 222, p.1 - 7),
                label,
                ("sans-serif", 12).into_font(),
            )?;
        }
        legend_row(&foot, &self.legend)?;
        Ok(())
    }
}

// ---- the charts of a run ----------------------------------------------------------------

fn percentile_lines(rows: &[&SeriesRow]) -> Vec<Line> {
    let pick: [(&str, Pick); 4] = [
        ("p50", |r| r.latency_p50_ms),
        ("p90", |r| r.latency_p90_ms),
        ("p99", |r| r.latency_p99_ms),
        ("p99.9", |r| r.latency_p999_ms),
    ];
    pick.iter()
        .enumerate()
        .map(|(k, (label, f))| Line {
            label: label.to_string(),
            colour: palette([0, 2, 1, 3][k]),
            points: rows
                .iter()
                .map(|r| {
                    let done = r.ok + r.errors;
                    (r.t_s, if done > 0 { f(r) } else { f64::NAN })
                })
                .collect(),
        })
        .collect()
}

/// One line per chosen subject of `kind` ((colour index, name)) over time: `f` of its rows.
fn series_panel(
    d: &RunData,
    kind: &str,
    chosen: &[(usize, String)],
    (title, y): (&str, &str),
    f: fn(&SeriesRow) -> f64,
    bands: &[Band],
    x_range: (f64, f64),
) -> LineChart {
    LineChart {
        title: title.into(),
        x_desc: "time (s)".into(),
        y_desc: y.into(),
        x_log: false,
        y_log: false,
        lines: chosen
            .iter()
            .map(|(k, name)| Line {
                label: name.clone(),
                colour: palette(*k),
                points: d.rows(kind, name).map(|r| (r.t_s, f(r))).collect(),
            })
            .collect(),
        bands: bands.to_vec(),
        x_range,
    }
}

/// Draws every chart that applies to the run in `dir`; returns them in report order.
pub fn draw_all(d: &RunData, dir: &Path, png: bool) -> io::Result<Vec<ChartFile>> {
    let mut out = Vec::new();
    let x_range = (0.0, d.duration_s().max(d.bucket_s()));
    let bucket = d.bucket_s();
    let bands = bands(d);
    let mut put = |file: String, caption: String| {
        out.push(ChartFile { file, caption });
    };
    // Latency percentiles per workload, then per chosen service.
    let chosen: Vec<String> = d.manifest.report_services().unwrap_or_default();
    let mut subjects: Vec<(&str, String)> = d
        .names("workload")
        .into_iter()
        .map(|n| ("workload", n))
        .collect();
    subjects.extend(chosen.into_iter().map(|n| ("service", n)));
    for (kind, name) in &subjects {
        let rows: Vec<&SeriesRow> = d.rows(kind, name).collect();
        let chart = LineChart {
            title: format!("Latency percentiles: {kind} {name}"),
            x_desc: "time (s)".into(),
            y_desc: "latency (ms, log)".into(),
            x_log: false,
            y_log: true,
            lines: percentile_lines(&rows),
            bands: bands.clone(),
            x_range,
        };
        let file = format!("latency-{kind}-{}", slug(name));
        emit(dir, &file, (W, H), png, &chart)?;
        put(
            format!("{file}.svg"),
            format!("Latency percentiles of {kind} {name} per {bucket} s bucket (answered requests), with faults, open breakers and deployments shaded."),
        );
    }
    // Throughput by outcome per workload.
    for name in d.names("workload") {
        let rows: Vec<&SeriesRow> = d.rows("workload", &name).collect();
        let layer = |label: &str, outcome: &str, f: fn(&SeriesRow) -> u64| {
            (
                label.to_string(),
                rgb(outcome_colour(outcome)),
                rows.iter()
                    .map(|r| (r.t_s, f(r) as f64 / bucket))
                    .collect::<Vec<_>>(),
            )
        };
        let chart = Stacked {
            title: format!("Throughput by outcome: workload {name}"),
            x_range,
            layers: vec![
                layer("ok (goodput)", "ok", |r| r.ok),
                layer("error", "error", |r| r.errors),
                layer("timeout", "timeout", |r| r.timeouts),
                layer("rejected", "rejected", |r| r.rejected),
            ],
            bands: bands.clone(),
        };
        let file = format!("throughput-{}", slug(&name));
        emit(dir, &file, (W, H), png, &chart)?;
        put(
            format!("{file}.svg"),
            format!("Requests of workload {name} ending per second, stacked by outcome: the top edge is throughput, the green layer goodput."),
        );
    }
    // Latency CDF per workload.
    let mut cdf_lines = Vec::new();
    for (k, name) in d.names("workload").iter().enumerate() {
        let points: Vec<(f64, f64)> = d
            .cdf
            .iter()
            .filter(|r| &r.workload == name && r.latency_ms > 0.0)
            .map(|r| (r.latency_ms, r.fraction))
            .collect();
        if !points.is_empty() {
            cdf_lines.push(Line {
                label: name.clone(),
                colour: palette(k),
                points,
            });
        }
    }
    if !cdf_lines.is_empty() {
        let lo = cdf_lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(f64::INFINITY, f64::min);
        let hi = cdf_lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(0.0, f64::max);
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
        let chart = LineChart {
            title: "Latency distribution (CDF)".into(),
            x_desc: "latency (ms, log)".into(),
            y_desc: "fraction of requests at or below".into(),
            x_log: true,
            y_log: false,
            lines: cdf_lines,
            bands: Vec::new(),
            x_range: (lo, hi),
        };
        emit(dir, "latency-cdf", (W, H), png, &FixedY(chart, 0.0, 1.0))?;
        put(
            "latency-cdf.svg".into(),
            "End-to-end latency distribution of each workload after warmup (answered requests)."
                .into(),
        );
    }
    // In flight and queue depth per service.
    let services = d.names("service");
    if !services.is_empty() {
        let mut ranked: Vec<(u64, usize, String)> = services
            .iter()
            .enumerate()
            .map(|(k, s)| {
                (
                    d.rows("service", s).map(|r| r.in_flight).max().unwrap_or(0),
                    k,
                    s.clone(),
                )
            })
            .collect();
        ranked.sort_by_key(|(m, k, _)| (std::cmp::Reverse(*m), *k));
        ranked.truncate(8);
        ranked.sort_by_key(|(_, k, _)| *k);
        let chosen: Vec<(usize, String)> = ranked.into_iter().map(|(_, k, s)| (k, s)).collect();
        let panel = |title: &str, y: &str, f: fn(&SeriesRow) -> f64| {
            series_panel(d, "service", &chosen, (title, y), f, &bands, x_range)
        };
        let chart = Panels(vec![
            panel("In flight per service (bucket end)", "requests", |r| {
                r.in_flight as f64
            }),
            panel(
                "Queue depth per service (bucket end)",
                "waiting for a worker",
                |r| r.queue_depth as f64,
            ),
        ]);
        emit(dir, "services", (W, 2 * H), png, &chart)?;
        put(
            "services.svg".into(),
            format!(
                "Requests inside each service and requests waiting for a worker, at each bucket's end{}.",
                if services.len() > 8 { " (the 8 services with the most in flight)" } else { "" }
            ),
        );
    }
    // Each instance's share of its service's load.
    for c in share::draw(d, dir, png, &bands, x_range)? {
        put(c.file, c.caption);
    }
    if let Some(c) = hosts::draw(d, dir, png, &bands, x_range)? {
        put(c.file, c.caption);
    }
    if let Some(c) = projections::draw(d, dir, png, &bands, x_range)? {
        put(c.file, c.caption);
    }
    // State timeline.
    if let Some(t) = timeline(d, x_range) {
        emit(dir, "timeline", (W, t.height()), png, &t)?;
        put(
            "timeline.svg".into(),
            "State over time: faults, instances down or draining, breakers open or half-open, outlier ejections, deployments and replica counts.".into(),
        );
    }
    // Retry amplification per edge.
    if let Some(edges) = d.summary["edges"].as_object().filter(|e| !e.is_empty()) {
        let mut rows = Vec::new();
        for (name, e) in edges {
            let calls = e["calls"].as_u64().unwrap_or(0);
            if calls == 0 {
                continue;
            }
            let amp = e["amplification"].as_f64().unwrap_or(1.0);
            let (retries, hedges) = (
                e["retries"].as_u64().unwrap_or(0),
                e["hedges"].as_u64().unwrap_or(0),
            );
            let extra = (amp - 1.0).max(0.0);
            rows.push((
                name.clone(),
                vec![
                    (amp.min(1.0), palette(0)),
                    (extra, rgb(outcome_colour("timeout"))),
                ],
                format!("{amp:.3}×: {calls} calls, {retries} retries, {hedges} hedges"),
            ));
        }
        if !rows.is_empty() {
            let chart = Bars {
                title: "Retry amplification per edge (attempts per call)".into(),
                x_desc: "attempts per call".into(),
                rows,
                legend: vec![
                    ("first attempts".into(), palette(0)),
                    ("retries and hedges".into(), rgb(outcome_colour("timeout"))),
                ],
            };
            emit(dir, "amplification", (W, chart.height()), png, &chart)?;
            put(
                "amplification.svg".into(),
                "Attempts per logical call on each caller→callee edge after warmup: 1 means no retries or hedges.".into(),
            );
        }
    }
    // Broker outcomes.
    if let Some(brokers) = d.summary["brokers"].as_object() {
        let mut rows = Vec::new();
        let metrics = [
            ("published", 0usize),
            ("acked", 2),
            ("redelivered", 1),
            ("dead_lettered", 3),
            ("duplicates", 4),
            ("double_effects", 5),
        ];
        for (broker, b) in brokers {
            if let Some(qs) = b["queues"].as_object() {
                for (q, v) in qs {
                    for (m, k) in metrics {
                        let n = v[m].as_u64().unwrap_or(0);
                        rows.push((
                            format!("{broker}/{q} {m}"),
                            vec![(n as f64, palette(k))],
                            n.to_string(),
                        ));
                    }
                }
            }
        }
        if !rows.is_empty() {
            let chart = Bars {
                title: "Broker queues: what became of the messages".into(),
                x_desc: "messages".into(),
                rows,
                legend: Vec::new(),
            };
            emit(dir, "brokers", (W, chart.height()), png, &chart)?;
            put(
                "brokers.svg".into(),
                "Per queue: messages published, acknowledged, redelivered, dead-lettered, handled twice, and applied twice (double effects).".into(),
            );
        }
    }
    // Saga outcomes.
    if let Some(sagas) = d.summary["sagas"].as_object() {
        let parts = [
            ("completed", (44u8, 160u8, 44u8)),
            ("compensated", (31, 119, 180)),
            ("failed", (214, 39, 40)),
            ("stuck", (255, 127, 14)),
            ("running_at_end", (127, 127, 127)),
        ];
        let rows: Vec<_> = sagas
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    parts
                        .iter()
                        .map(|(k, c)| (s[k].as_u64().unwrap_or(0) as f64, rgb(*c)))
                        .collect(),
                    format!(
                        "{} started, {} inconsistent",
                        s["started"].as_u64().unwrap_or(0),
                        s["inconsistent"].as_u64().unwrap_or(0)
                    ),
                )
            })
            .collect();
        if !rows.is_empty() {
            let chart = Bars {
                title: "Sagas: how they ended".into(),
                x_desc: "sagas".into(),
                rows,
                legend: parts
                    .iter()
                    .map(|(k, c)| (k.to_string(), rgb(*c)))
                    .collect(),
            };
            emit(dir, "sagas", (W, chart.height()), png, &chart)?;
            put(
                "sagas.svg".into(),
                "Sagas by final status; inconsistent ones left an effect applied twice, leaked or missing.".into(),
            );
        }
    }
    Ok(out)
}

/// A line chart with a fixed y range.
struct FixedY(LineChart, f64, f64);

impl Chart for FixedY {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let c = &self.0;
        let mut b = ChartBuilder::on(root);
        b.caption(
            &c.title,
            ("sans-serif", 17).into_font().style(FontStyle::Bold),
        )
        .margin(8)
        // Room on the right for the last x tick label, which is centred on the edge.
        .margin_right(26)
        .x_label_area_size(36)
        .y_label_area_size(64);
        let (x0, x1) = c.x_range;
        if c.x_log {
            c.body(
                b.build_cartesian_2d((x0..x1).log_scale(), self.1..self.2)
                    .map_err(err)?,
            )
        } else {
            c.body(b.build_cartesian_2d(x0..x1, self.1..self.2).map_err(err)?)
        }
    }
}

/// The state timeline, or None when nothing changed state.
fn timeline(d: &RunData, x_range: (f64, f64)) -> Option<Timeline> {
    let end = x_range.1;
    let red = rgb((214, 39, 40));
    let amber = rgb((255, 187, 60));
    let grey = rgb((160, 160, 160));
    let purple = rgb((148, 103, 189));
    let blue = rgb((31, 119, 180));
    let light_blue = rgb((160, 200, 230));
    let mut rows: Vec<TimelineRow> = Vec::new();
    let row = |rows: &mut Vec<TimelineRow>, name: String| -> usize {
        match rows.iter().position(|r| r.0 == name) {
            Some(k) => k,
            None => {
                rows.push((name, Vec::new()));
                rows.len() - 1
            }
        }
    };
    // Open spans per (row, colour): closed by the next state change of the row.
    let mut open: Vec<(usize, f64, RGBColor, String)> = Vec::new();
    let close = |open: &mut Vec<(usize, f64, RGBColor, String)>,
                 rows: &mut Vec<TimelineRow>,
                 r: usize,
                 t: f64| {
        if let Some(k) = open.iter().position(|o| o.0 == r) {
            let (_, from, c, text) = open.remove(k);
            rows[r].1.push((from, t, c, text));
        }
    };
    let started = |e: &StateEvent| e.t_s > 0.0;
    for e in &d.events {
        let subject = &e.subject;
        match &e.change {
            Change::Fault { on, what } => {
                let r = row(&mut rows, format!("fault {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                if *on {
                    let label = Change::fault_label(what).to_string();
                    open.push((r, e.t_s, rgb((240, 150, 150)), label));
                }
            }
            Change::Instance {
                to: to @ (InstanceState::Down | InstanceState::Draining),
                ..
            } => {
                let r = row(&mut rows, format!("instance {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                let c = if *to == InstanceState::Down {
                    red
                } else {
                    grey
                };
                open.push((r, e.t_s, c, String::new()));
            }
            Change::Instance {
                to: InstanceState::Up,
                ..
            } if started(e) => {
                let r = row(&mut rows, format!("instance {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
            }
            Change::Breaker { to, .. } => {
                let r = row(&mut rows, format!("breaker {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                match to {
                    Breaker::Open | Breaker::ForcedOpen => {
                        open.push((r, e.t_s, red, String::new()))
                    }
                    Breaker::HalfOpen => open.push((r, e.t_s, amber, String::new())),
                    _ => {}
                }
            }
            Change::Outlier(OutlierChange::Ejected { .. }) => {
                let r = row(&mut rows, format!("ejected {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                open.push((r, e.t_s, purple, String::new()));
            }
            Change::Outlier(OutlierChange::Unejected) => {
                let r = row(&mut rows, format!("ejected {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
            }
            Change::CanaryWeight { .. } | Change::CanaryRollback { .. } => {
                let lane = match subject.strip_prefix("migration:") {
                    Some(name) => format!("migration {name}"),
                    None => format!("canary {subject}"),
                };
                let r = row(&mut rows, lane);
                close(&mut open, &mut rows, r, e.t_s);
                let text = match &e.change {
                    Change::CanaryWeight { to_pct, .. } => format!("{to_pct}%"),
                    _ => "rolled back".to_string(),
                };
                open.push((r, e.t_s, light_blue, text));
            }
            Change::RolloutStarted { .. } | Change::RolloutFinished { .. } => {
                let r = row(&mut rows, format!("rollout {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                if let Change::RolloutStarted { .. } = e.change {
                    open.push((r, e.t_s, light_blue, "rolling".into()));
                }
            }
            Change::Autoscale { to, .. } => {
                let r = row(&mut rows, format!("replicas {subject}"));
                close(&mut open, &mut rows, r, e.t_s);
                open.push((r, e.t_s, rgb((200, 220, 240)), to.to_string()));
            }
            _ => {}
        }
    }
    for (r, from, c, text) in open {
        rows[r].1.push((from, end, c, text));
    }
    rows.retain(|r| !r.1.is_empty());
    if rows.is_empty() {
        return None;
    }
    // Keep the chart readable: at most 40 rows, the busiest first in their original order.
    if rows.len() > 40 {
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.sort_by_key(|&k| (std::cmp::Reverse(rows[k].1.len()), k));
        idx.truncate(40);
        idx.sort_unstable();
        rows = idx.into_iter().map(|k| rows[k].clone()).collect();
    }
    Some(Timeline {
        title: "State timeline".into(),
        x_range,
        rows,
        legend: vec![
            ("down / open / fault".into(), red),
            ("half-open".into(), amber),
            ("draining".into(), grey),
            ("ejected".into(), purple),
            ("deployment / replicas".into(), blue),
        ],
    })
}

/// Latency CDFs of two variants overlaid (`faultline compare`): `(label, (ms, fraction))`.
pub fn cdf_overlay(
    dir: &Path,
    file: &str,
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> io::Result<()> {
    let lines: Vec<Line> = lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| !l.1.is_empty())
        .map(|(k, (label, points))| Line {
            label,
            colour: palette(k),
            points: points.into_iter().filter(|p| p.0 > 0.0).collect(),
        })
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    let chart = LineChart {
        title: "Latency distribution: A against B (first replication)".into(),
        x_desc: "latency (ms, log)".into(),
        y_desc: "fraction of requests at or below".into(),
        x_log: true,
        y_log: false,
        lines,
        bands: Vec::new(),
        x_range: (lo, hi),
    };
    emit(dir, file, (W, H), false, &FixedY(chart, 0.0, 1.0))
}
