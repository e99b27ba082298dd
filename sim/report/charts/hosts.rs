//! Each host's CPU over time (the `host` rows of the series): utilisation of its cores and threads runnable on it, so a noisy neighbour shows where it hits.

use super::*;

/// Hosts drawn at most (the busiest).
const MAX_HOSTS: usize = 8;

/// The hosts chart, when the run has hosts.
pub(super) fn draw(
    d: &RunData,
    dir: &Path,
    png: bool,
    bands: &[Band],
    x_range: (f64, f64),
) -> io::Result<Option<ChartFile>> {
    let hosts = d.names("host");
    if hosts.is_empty() {
        return Ok(None);
    }
    let mut ranked: Vec<(f64, usize, String)> = hosts
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let peak = d.rows("host", h).map(|r| r.utilization).fold(0.0, f64::max);
            (peak, k, h.clone())
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.truncate(MAX_HOSTS);
    ranked.sort_by_key(|(_, k, _)| *k);
    let chosen: Vec<(usize, String)> = ranked.into_iter().map(|(_, k, h)| (k, h)).collect();
    let panel = |title: &str, y: &str, f: fn(&SeriesRow) -> f64| {
        series_panel(d, "host", &chosen, (title, y), f, bands, x_range)
    };
    let chart = Panels(vec![
        panel(
            "CPU utilisation per host",
            "share of its cores busy (%)",
            |r| 100.0 * r.utilization,
        ),
        panel(
            "Runnable threads per host (bucket end)",
            "threads wanting a core",
            |r| r.in_flight as f64,
        ),
    ]);
    emit(dir, "hosts", (W, 2 * H), png, &chart)?;
    Ok(Some(ChartFile {
        file: "hosts.svg".into(),
        caption: format!(
            "Each host's cores: the share busy per bucket, and the threads runnable at its end (more than its cores: work waits for a core, whoever it belongs to){}.",
            if hosts.len() > MAX_HOSTS { " (the 8 busiest hosts)" } else { "" }
        ),
    }))
}
