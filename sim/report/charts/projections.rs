//! Each projection's distance from its event log over time (the `projection` rows of the series): events behind and the age of the oldest one not applied.

use super::*;

/// The projections chart, when the run has projections.
pub(super) fn draw(
    d: &RunData,
    dir: &Path,
    png: bool,
    bands: &[Band],
    x_range: (f64, f64),
) -> io::Result<Option<ChartFile>> {
    let names = d.names("projection");
    if names.is_empty() {
        return Ok(None);
    }
    let chosen: Vec<(usize, String)> = names.iter().cloned().enumerate().collect();
    let panel = |title: &str, y: &str, f: fn(&SeriesRow) -> f64| {
        series_panel(d, "projection", &chosen, (title, y), f, bands, x_range)
    };
    let chart = Panels(vec![
        panel(
            "Events committed and not yet applied (bucket end)",
            "events behind",
            |r| r.queue_depth as f64,
        ),
        panel(
            "Age of the oldest event not yet applied (bucket end)",
            "seconds stale",
            |r| r.oldest_age_s,
        ),
    ]);
    emit(dir, "projections", (W, 2 * H), png, &chart)?;
    Ok(Some(ChartFile {
        file: "projections.svg".into(),
        caption: "Each projection's read model against its event log: the events it has not applied yet, and how old the oldest of them is (how stale a read of it can be).".into(),
    }))
}
