//! A queue that keeps growing: arrivals outran service for a sustained stretch, with room
//! to spare (a full queue that refuses is `queue_saturated`).

use super::{grouped, Chart, Insight};
use crate::metrics::SeriesRow;

/// Waiting work at the peak below which growth is not worth telling.
pub const GROWTH_PEAK: u64 = 100;
/// Buckets of growth at the least before the peak.
pub const GROWTH_BUCKETS: usize = 10;
/// Share of the buckets of a growth in which the queue grew (the rest held or dipped).
pub const GROWTH_STEADY: f64 = 0.7;

/// Per service and broker queue, its longest climb to its peak: from the last bucket at a
/// tenth of the peak or less, at least `GROWTH_BUCKETS` long, rising in most buckets,
/// without a refusal (a full queue is told as saturated), to a peak of `GROWTH_PEAK` or
/// more; and whether it drained before the run ended.
pub fn growing_queues(series: &[SeriesRow]) -> Vec<Insight> {
    let mut out = Vec::new();
    for (kind, unit) in [("service", "requests"), ("queue", "messages")] {
        for (_, all) in grouped(series, kind) {
            if let Some(i) = growth(&all, kind, unit) {
                out.push(i);
            }
        }
    }
    out
}

fn growth(all: &[&SeriesRow], kind: &str, unit: &str) -> Option<Insight> {
    let (peak_at, peak) = all
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.queue_depth))
        .max_by_key(|&(i, d)| (d, std::cmp::Reverse(i)))?;
    if peak < GROWTH_PEAK {
        return None;
    }
    let low = |r: &&SeriesRow| r.queue_depth * 10 <= peak;
    let start = all[..peak_at].iter().rposition(low)?;
    let climb = &all[start..=peak_at];
    let steps = climb.len() - 1;
    let rising = climb
        .windows(2)
        .filter(|w| w[1].queue_depth > w[0].queue_depth)
        .count();
    // A refusal on the way up means the queue was full, not growing.
    let refused = climb.iter().any(|r| r.rejected > 0);
    if steps < GROWTH_BUCKETS || (rising as f64) < GROWTH_STEADY * steps as f64 || refused {
        return None;
    }
    let (from, to) = (climb[0], climb[steps]);
    let rate = (to.queue_depth - from.queue_depth) as f64 / (to.t_s - from.t_s);
    let name = &to.name;
    let after = match all[peak_at..].iter().position(low) {
        Some(k) => format!("it drained by {:.0} s", all[peak_at + k].t_s),
        None => format!(
            "{} were still waiting when the run ended",
            all[all.len() - 1].queue_depth
        ),
    };
    let whose = if kind == "queue" {
        format!("queue {name}")
    } else {
        format!("{name}'s queue")
    };
    Some(Insight {
        kind: "queue_growing",
        subject: name.clone(),
        at_s: Some(from.t_s),
        text: format!(
            "queue growing: {whose} grew from {} to {peak} {unit} between {:.0} and {:.0} s, about {rate:.0} a second, as arrivals outran service; {after}",
            from.queue_depth, from.t_s, to.t_s
        ),
        chart: if kind == "queue" {
            Chart::Brokers
        } else {
            Chart::Services
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(name: &str, t_s: f64, queue_depth: u64, rejected: u64) -> SeriesRow {
        SeriesRow {
            t_s,
            kind: "service".into(),
            name: name.into(),
            requests: 10,
            ok: 10 - rejected.min(10),
            errors: 0,
            rejected,
            timeouts: 0,
            latency_p50_ms: 1.0,
            latency_p90_ms: 1.0,
            latency_p99_ms: 1.0,
            latency_p999_ms: 1.0,
            in_flight: 0,
            queue_depth,
            utilization: 1.0,
            oldest_age_s: 0.0,
        }
    }

    /// Depths 0 for 10 buckets, a climb of `len` buckets by `step`, then `tail`.
    fn climb(len: u64, step: u64, rejected: u64, tail: &[u64]) -> Vec<SeriesRow> {
        let mut v: Vec<SeriesRow> = (0..10).map(|t| depth("q", t as f64, 0, 0)).collect();
        for k in 1..=len {
            v.push(depth("q", (9 + k) as f64, k * step, rejected));
        }
        for (k, &d) in tail.iter().enumerate() {
            v.push(depth("q", (10 + len) as f64 + k as f64, d, 0));
        }
        v
    }

    #[test]
    fn a_steady_climb_that_drains_is_told_with_its_rate_and_its_end() {
        let found = growing_queues(&climb(20, 50, 0, &[500, 0, 0]));
        assert_eq!(found.len(), 1, "{found:?}");
        let i = &found[0];
        // From the last bucket at a tenth of the peak or less (100 at 11 s).
        assert_eq!((i.kind, i.at_s), ("queue_growing", Some(11.0)));
        assert!(
            i.text.contains(
                "q's queue grew from 100 to 1000 requests between 11 and 29 s, about 50 a second"
            ),
            "{}",
            i.text
        );
        assert!(i.text.contains("it drained by 31 s"), "{}", i.text);
    }

    #[test]
    fn a_climb_to_the_end_is_still_waiting() {
        let found = growing_queues(&climb(20, 50, 0, &[]));
        assert!(
            found[0]
                .text
                .contains("1000 were still waiting when the run ended"),
            "{}",
            found[0].text
        );
    }

    #[test]
    fn short_small_refused_or_ragged_climbs_are_not_growth() {
        // Too short: 9 buckets.
        assert!(growing_queues(&climb(9, 100, 0, &[])).is_empty());
        // Too small: a peak of 80.
        assert!(growing_queues(&climb(20, 4, 0, &[])).is_empty());
        // Full and refusing on the way: saturation, not growth.
        assert!(growing_queues(&climb(20, 50, 3, &[])).is_empty());
        // Up and down: rising in only half the buckets.
        let mut v: Vec<SeriesRow> = (0..10).map(|t| depth("q", t as f64, 0, 0)).collect();
        for k in 0..30u64 {
            let d = if k % 2 == 0 {
                50 + k * 10
            } else {
                40 + k * 10 - 20
            };
            v.push(depth("q", (10 + k) as f64, d, 0));
        }
        assert!(growing_queues(&v).is_empty(), "{:?}", growing_queues(&v));
    }
}
