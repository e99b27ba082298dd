//! Plotting primitives shared by the run charts and the sweep charts: fonts, colours, legends, the `Chart` trait and SVG/PNG output.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::io;
use std::path::Path;
use std::sync::Once;

pub(crate) const W: u32 = 960;
pub(crate) const H: u32 = 420;

pub(crate) static FONTS: Once = Once::new();

pub(crate) fn fonts() {
    FONTS.call_once(|| {
        // Both calls only fail on a malformed font, and these are compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

pub(crate) fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Colours for lines that are not outcomes (services, workloads, percentiles).
pub(crate) const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

pub(crate) fn palette(k: usize) -> RGBColor {
    rgb(PALETTE[k % PALETTE.len()])
}

pub(crate) type Res = Result<(), String>;
/// A sweep line: label, points (x, mean, lo, hi).
pub(crate) type BandLine = (String, Vec<(f64, f64, f64, f64)>);
pub(crate) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Something that draws itself on any plotters backend.
pub(crate) trait Chart {
    /// Draws the chart on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res;
}

/// Writes `chart` as `name.svg` (and `name.png` when asked) in `dir`.
pub(crate) fn emit<C: Chart>(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    png: bool,
    chart: &C,
) -> io::Result<()> {
    fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(io::Error::other)?;
        chart.draw(&root).map_err(io::Error::other)?;
        root.present().map_err(io::Error::other)?;
    }
    svg.push('\n');
    std::fs::write(dir.join(format!("{name}.svg")), svg)?;
    if png {
        let path = dir.join(format!("{name}.png"));
        let root = BitMapBackend::new(&path, size).into_drawing_area();
        root.fill(&WHITE).map_err(io::Error::other)?;
        chart.draw(&root).map_err(io::Error::other)?;
        root.present().map_err(io::Error::other)?;
    }
    Ok(())
}

/// Writes an SVG drawn by hand (not through plotters: the call graph, the trace waterfall)
/// as a PNG of the same size, text in the same compiled-in DejaVu Sans the charts use.
pub(crate) fn svg_to_png(svg: &str, path: &Path) -> io::Result<()> {
    use resvg::{tiny_skia, usvg};
    static DB: std::sync::OnceLock<std::sync::Arc<usvg::fontdb::Database>> =
        std::sync::OnceLock::new();
    let db = DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        std::sync::Arc::new(db)
    });
    let options = usvg::Options {
        fontdb: db.clone(),
        font_family: "DejaVu Sans".into(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(io::Error::other)?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| io::Error::other("an SVG of zero size"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let bytes = pixmap.encode_png().map_err(io::Error::other)?;
    std::fs::write(path, bytes)
}

/// A legend on one line: a swatch and a name per item.
pub(crate) fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor)],
) -> Res {
    let mut x = 240;
    for (name, colour) in items {
        area.draw(&Rectangle::new([(x, 6), (x + 14, 18)], colour.filled()))
            .map_err(err)?;
        area.draw(&Text::new(
            name.clone(),
            (x + 19, 6),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(err)?;
        let w = area
            .estimate_text_size(name, &("sans-serif", 12).into_font().into())
            .map_or(80, |(w, _)| w as i32);
        x += 19 + w + 18;
    }
    Ok(())
}

/// The series legend, top right, the same in every chart.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    c: &mut ChartContext<'a, DB, CT>,
) -> Res {
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)
}

/// Draws text at absolute backend pixel `at` on `area` (whatever its coordinates).
pub(crate) fn text_px<'s, DB: DrawingBackend, CT: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: (i32, i32),
    text: String,
    style: impl Into<TextStyle<'s>>,
) -> Res {
    let a = area.strip_coord_spec();
    let (bx, by) = a.get_base_pixel();
    a.draw(&Text::new(text, (at.0 - bx, at.1 - by), style))
        .map_err(err)
}

// ---- sweeps --------------------------------------------------------------------------------

/// Means against a parameter, one line per combination of the other parameters, with
/// their 95 % intervals shaded.
pub(crate) struct BandLines {
    pub(crate) title: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    /// Categorical x: tick labels at 0, 1, 2...
    pub(crate) x_labels: Option<Vec<String>>,
    /// (label, points (x, mean, lo, hi)).
    pub(crate) lines: Vec<BandLine>,
}

impl Chart for BandLines {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let all = self.lines.iter().flat_map(|l| l.1.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, m, _, hi) in all {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(if hi.is_finite() { hi } else { m });
        }
        if x0 >= x1 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        let pad = (x1 - x0) * 0.04;
        let mut c = ChartBuilder::on(root)
            .caption(
                &self.title,
                ("sans-serif", 17).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            // Room on the right for the last x tick label, which is centred on the edge.
            .margin_right(26)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..(y1.max(1e-9) * 1.1))
            .map_err(err)?;
        let labels = self.x_labels.clone();
        let fmt_x = move |x: &f64| match &labels {
            Some(l) => {
                let k = x.round();
                if (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < l.len() {
                    l[k as usize].clone()
                } else {
                    String::new()
                }
            }
            None => format!("{x}"),
        };
        let mut mesh = c.configure_mesh();
        mesh.x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&fmt_x)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13));
        if let Some(l) = &self.x_labels {
            mesh.x_labels(l.len() * 2 + 1);
        }
        mesh.draw().map_err(err)?;
        for (k, (label, pts)) in self.lines.iter().enumerate() {
            let colour = palette(k);
            let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.3)).collect();
            band.extend(pts.iter().rev().map(|p| (p.0, p.2)));
            if band.iter().all(|p| p.1.is_finite()) {
                c.draw_series(std::iter::once(Polygon::new(
                    band,
                    colour.mix(0.18).filled(),
                )))
                .map_err(err)?;
            }
            c.draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
            });
            c.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), 3, colour.filled())),
            )
            .map_err(err)?;
        }
        legend(&mut c)?;
        Ok(())
    }
}

/// A heatmap of a metric's mean over two parameters, each cell labelled.
pub(crate) struct Heat {
    pub(crate) title: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    pub(crate) x_labels: Vec<String>,
    pub(crate) y_labels: Vec<String>,
    /// values[y][x].
    pub(crate) values: Vec<Vec<f64>>,
}

impl Chart for Heat {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let (nx, ny) = (self.x_labels.len(), self.y_labels.len());
        let finite = self
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let colour = |t: f64| RGBColor(255, (245.0 - 200.0 * t) as u8, (235.0 - 215.0 * t) as u8);
        // The colour scale on the right: white (lowest) to red (highest), labelled.
        let (w, h) = root.dim_in_pixel();
        let (root, scale) = root.split_horizontally(w as i32 - 110);
        if lo.is_finite() && hi.is_finite() {
            let (top, bottom) = (60, h as i32 - 60);
            let steps = 40;
            for k in 0..steps {
                let y0 = bottom - (bottom - top) * (k + 1) / steps;
                let y1 = bottom - (bottom - top) * k / steps;
                scale
                    .draw(&Rectangle::new(
                        [(20, y0), (40, y1)],
                        colour(k as f64 / (steps - 1) as f64).filled(),
                    ))
                    .map_err(err)?;
            }
            scale
                .draw(&Rectangle::new(
                    [(20, top), (40, bottom)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            let font = ("sans-serif", 11).into_font();
            let fmt = |v: f64| {
                if v.abs() >= 100.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.4}")
                }
            };
            scale
                .draw(&Text::new(fmt(hi), (44, top - 6), font.clone()))
                .map_err(err)?;
            scale
                .draw(&Text::new(fmt(lo), (44, bottom - 6), font.clone()))
                .map_err(err)?;
            scale
                .draw(&Text::new("mean", (14, top - 24), font))
                .map_err(err)?;
        }
        let mut c = ChartBuilder::on(&root)
            .caption(
                &self.title,
                ("sans-serif", 17).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            // Room on the right for the last x tick label, which is centred on the edge.
            .margin_right(26)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5..(nx as f64 - 0.5), -0.5..(ny as f64 - 0.5))
            .map_err(err)?;
        let (xl, yl) = (self.x_labels.clone(), self.y_labels.clone());
        let pick = |l: &Vec<String>, v: f64| {
            let k = v.round();
            if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < l.len() {
                l[k as usize].clone()
            } else {
                String::new()
            }
        };
        c.configure_mesh()
            .disable_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&|v| pick(&xl, *v))
            .y_label_formatter(&|v| pick(&yl, *v))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (y, row) in self.values.iter().enumerate() {
            for (x, v) in row.iter().enumerate() {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                let t = if t.is_finite() { t } else { 0.0 };
                let (x, yf) = (x as f64, y as f64);
                c.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.5, yf - 0.5), (x + 0.5, yf + 0.5)],
                    colour(t).filled(),
                )))
                .map_err(err)?;
                let p = c.backend_coord(&(x, yf));
                text_px(
                    c.plotting_area(),
                    (p.0 - 18, p.1 - 6),
                    if v.abs() >= 100.0 {
                        format!("{v:.1}")
                    } else {
                        format!("{v:.4}")
                    },
                    ("sans-serif", 11).into_font(),
                )?;
            }
        }
        Ok(())
    }
}

/// A file-name-safe form of a component name.
pub(crate) fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
