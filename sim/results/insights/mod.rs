//! Insights: detectors over a run's summary, time series and events that name what
//! happened, when, and the evidence, in plain words (`summary.json` `insights`, the top of
//! `report.html`, a few lines on stderr). A healthy run raises none.

use super::events::{Change, StateEvent};
use crate::metrics::SeriesRow;
use crate::policy::breaker::State as Breaker;
use serde_json::Value;

mod flows;
mod growth;
mod lost_work;
pub use flows::{bad_instances, ejections, lost_events, messaging, projections};
pub use growth::growing_queues;
pub use lost_work::{inversions_that_bit, saga_inconsistency, Inversion};

/// One thing that happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Insight {
    /// Which detector: metastable_failure, goodput_collapse, cascading_failure, retry_storm,
    /// breaker_flapping, queue_saturated, queue_growing, timeout_inversion, stale_discovery,
    /// saga_inconsistent, messages_redelivered, duplicate_effects, messages_dead,
    /// events_lost, events_republished, projection_behind, bad_instance, slow_instance,
    /// host_ejected, canary_rolled_back.
    pub kind: &'static str,
    /// The component it is about.
    pub subject: String,
    /// When it started, seconds (None: over the whole run).
    pub at_s: Option<f64>,
    /// What happened and the evidence.
    pub text: String,
    /// The chart that shows it.
    pub chart: Chart,
}

/// The chart of a run's report that shows an insight's evidence (the report names the
/// file).
#[derive(Clone, Debug, PartialEq)]
pub enum Chart {
    /// A workload's throughput by outcome.
    Throughput(String),
    /// The services' utilisation, queues and latency.
    Services,
    /// Attempts per call on each edge.
    Amplification,
    /// State changes over time (breakers, faults, rollouts).
    Timeline,
    /// The brokers' queues.
    Brokers,
    /// The sagas' outcomes.
    Sagas,
    /// The projections' lag.
    Projections,
    /// A service's instances' shares of its arrivals.
    Share(String),
}

/// Utilisation at or above which a service counts as saturated.
pub const SATURATED: f64 = 0.9;
/// Attempts per call at or above which retries count as a storm.
pub const STORM_AMPLIFICATION: f64 = 1.5;
/// Breaker openings at or above which it counts as flapping.
pub const FLAPS: usize = 3;
/// A caller whose distress starts more than this long after its callee's is not counted
/// as part of a cascade from it.
pub const CASCADE_LAG_S: f64 = 20.0;
/// A workload whose goodput share after a disturbance stays below this share of its level
/// before is still failing.
pub const STILL_FAILING: f64 = 0.9;

/// Every detector, in a fixed order, over a run of `duration_s` whose scenario has the
/// timeout inversions `inversions`.
pub fn detect(
    summary: &Value,
    series: &[SeriesRow],
    events: &[StateEvent],
    inversions: &[Inversion],
    duration_s: f64,
) -> Vec<Insight> {
    let mut out = Vec::new();
    out.extend(metastable(summary, series, duration_s));
    out.extend(goodput_collapse(series));
    out.extend(cascades(summary, series, events));
    out.extend(retry_storms(summary, series));
    out.extend(flapping(events));
    out.extend(saturated_queues(series));
    out.extend(growing_queues(series));
    out.extend(inversions_that_bit(summary, series, inversions));
    out.extend(saga_inconsistency(summary));
    out.extend(messaging(summary));
    out.extend(lost_events(summary));
    out.extend(projections(summary));
    out.extend(bad_instances(summary));
    out.extend(ejections(events));
    out.extend(stale_discovery(summary));
    out.extend(rollbacks(events));
    out
}

pub(super) fn rows<'a>(
    series: &'a [SeriesRow],
    kind: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a SeriesRow> {
    series
        .iter()
        .filter(move |r| r.kind == kind && r.name == name)
}

/// A disturbance that ended well before the run did, after which a workload never came
/// back (summary `recovery`): the failure outlived its trigger.
pub fn metastable(summary: &Value, series: &[SeriesRow], duration_s: f64) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(windows) = summary["recovery"].as_object() else {
        return out;
    };
    for w in windows.values() {
        let to_s = w["to_s"].as_f64().unwrap_or(f64::INFINITY);
        // Ended with at least a tenth of the run left to recover in.
        if to_s > 0.9 * duration_s {
            continue;
        }
        let Some(per) = w["workloads"].as_object() else {
            continue;
        };
        for (name, r) in per {
            let (Some(before), false) = (r["goodput_before"].as_f64(), r["recovered"] == true)
            else {
                continue;
            };
            let (sent, ok) = rows(series, "workload", name)
                .filter(|r| r.t_s >= to_s)
                .fold((0u64, 0u64), |(s, o), r| (s + r.requests, o + r.ok));
            // Answers counted when they end can outnumber requests counted when sent.
            let after = if sent > 0 {
                (ok as f64 / sent as f64).min(1.0)
            } else {
                0.0
            };
            if after >= STILL_FAILING * before {
                // Not recovered by its bands (a longer tail, say), but not failing either.
                continue;
            }
            out.push(Insight {
                kind: "metastable_failure",
                chart: Chart::Throughput(name.clone()),
                subject: name.clone(),
                at_s: Some(to_s),
                text: format!(
                    "metastable failure: {} ended at {to_s:.0} s, but {name} never recovered: {:.0} % of its requests succeeded from then to the end, against {:.0} % before",
                    w["what"].as_str().unwrap_or("a disturbance"),
                    100.0 * after,
                    100.0 * before
                ),
            });
        }
    }
    out
}

/// Retries that multiplied the load on a callee while it was saturated.
pub fn retry_storms(summary: &Value, series: &[SeriesRow]) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(edges) = summary["edges"].as_object() else {
        return out;
    };
    for (name, e) in edges {
        let amp = e["amplification"].as_f64().unwrap_or(0.0);
        let Some((_, callee)) = name.split_once("->") else {
            continue;
        };
        if amp < STORM_AMPLIFICATION {
            continue;
        }
        let hot: Vec<f64> = rows(series, "service", callee)
            .filter(|r| r.utilization >= SATURATED)
            .map(|r| r.t_s)
            .collect();
        let Some(&first) = hot.first() else {
            continue;
        };
        out.push(Insight {
            kind: "retry_storm",
            chart: Chart::Amplification,
            subject: name.clone(),
            at_s: Some(first),
            text: format!(
                "retry storm: {name} made {amp:.2} attempts per call while {callee} was saturated (utilisation {:.0} % or more in {} buckets from {first:.0} s)",
                100.0 * SATURATED,
                hot.len()
            ),
        });
    }
    out
}

/// A circuit breaker that opened again and again; the breakers of one edge's caller
/// instances (`api/0->db`, `api/1->db`) are told together.
pub fn flapping(events: &[StateEvent]) -> Vec<Insight> {
    // Per breaker: its edge and its openings.
    let mut opens: Vec<(&str, String, Vec<f64>)> = Vec::new();
    for e in events {
        if let Change::Breaker {
            to: Breaker::Open, ..
        } = e.change
        {
            match opens.iter_mut().find(|(s, _, _)| *s == e.subject) {
                Some((_, _, t)) => t.push(e.t_s),
                None => opens.push((&e.subject, edge_of(&e.subject), vec![e.t_s])),
            }
        }
    }
    let mut edges: Vec<(String, Vec<&Vec<f64>>)> = Vec::new();
    for (_, edge, t) in opens.iter().filter(|(_, _, t)| t.len() >= FLAPS) {
        match edges.iter_mut().find(|(e, _)| e == edge) {
            Some((_, ts)) => ts.push(t),
            None => edges.push((edge.clone(), vec![t])),
        }
    }
    edges
        .into_iter()
        .map(|(edge, ts)| {
            let first = ts.iter().map(|t| t[0]).fold(f64::INFINITY, f64::min);
            let last = ts.iter().map(|t| t[t.len() - 1]).fold(0.0, f64::max);
            let most = ts.iter().map(|t| t.len()).max().unwrap_or(0);
            let who = if ts.len() == 1 {
                format!("{edge}'s breaker")
            } else {
                format!("{} callers' breakers on {edge}", ts.len())
            };
            Insight {
                kind: "breaker_flapping",
                chart: Chart::Timeline,
                subject: edge,
                at_s: Some(first),
                text: format!(
                    "breaker flapping: {who} opened up to {most} times between {first:.0} and {last:.0} s"
                ),
            }
        })
        .collect()
}

/// "api->db" for a breaker named "api/3->db" (one caller instance's) or "api->db".
fn edge_of(subject: &str) -> String {
    match subject.split_once("->") {
        Some((from, to)) => {
            let from = match from.rsplit_once('/') {
                Some((svc, k)) if k.chars().all(|c| c.is_ascii_digit()) => svc,
                _ => from,
            };
            format!("{from}->{to}")
        }
        None => subject.to_string(),
    }
}

/// A service that refused requests for want of room (its queue full, or shedding) in many
/// buckets.
pub fn saturated_queues(series: &[SeriesRow]) -> Vec<Insight> {
    let mut out = Vec::new();
    for (name, all) in grouped(series, "service") {
        let full: Vec<&SeriesRow> = all.iter().copied().filter(|r| r.rejected > 0).collect();
        // More than a tenth of the run, and at least 3 buckets.
        if full.len() < 3 || full.len() * 10 < all.len() {
            continue;
        }
        let refused: u64 = full.iter().map(|r| r.rejected).sum();
        out.push(Insight {
            kind: "queue_saturated",
            chart: Chart::Services,
            subject: name.to_string(),
            at_s: Some(full[0].t_s),
            text: format!(
                "queue saturated: {name} refused {refused} requests for want of room, in {} of {} buckets from {:.0} s",
                full.len(),
                all.len(),
                full[0].t_s
            ),
        });
    }
    out
}

/// A workload's successful requests per bucket falling below half their early level for 3
/// buckets or more while it kept sending: goodput collapsed.
pub fn goodput_collapse(series: &[SeriesRow]) -> Vec<Insight> {
    let mut out = Vec::new();
    for (name, all) in grouped(series, "workload") {
        // The level: the median over the first fifth of the run.
        let early = &all[..(all.len() / 5).max(1).min(all.len())];
        let (ok0, sent0) = (
            median(early.iter().map(|r| r.ok as f64)),
            median(early.iter().map(|r| r.requests as f64)),
        );
        if ok0 < 5.0 {
            // Too few to tell a collapse from noise.
            continue;
        }
        let low = |r: &&SeriesRow| (r.ok as f64) < 0.5 * ok0 && (r.requests as f64) >= 0.8 * sent0;
        let mut run: Vec<&SeriesRow> = Vec::new();
        let mut found: Option<Vec<&SeriesRow>> = None;
        for r in &all[early.len()..] {
            if low(r) {
                run.push(r);
            } else {
                if run.len() >= 3 && found.is_none() {
                    found = Some(run.clone());
                }
                run.clear();
            }
        }
        if run.len() >= 3 && found.is_none() {
            found = Some(run);
        }
        let Some(run) = found else { continue };
        let lowest = run.iter().map(|r| r.ok).min().unwrap_or(0);
        out.push(Insight {
            kind: "goodput_collapse",
            chart: Chart::Throughput(name.to_string()),
            subject: name.to_string(),
            at_s: Some(run[0].t_s),
            text: format!(
                "goodput collapse: successful requests of {name} fell from about {ok0:.0} to {lowest} a bucket at {:.0} s, for {} buckets, while it kept sending",
                run[0].t_s,
                run.len()
            ),
        });
    }
    out
}

/// Distress that spread up the call graph: a callee in distress (under a fault, saturated,
/// refusing, or its p99 five times its early level; not from the start of the run) and then
/// its callers, in that order, each within `CASCADE_LAG_S` of the one it calls.
pub fn cascades(summary: &Value, series: &[SeriesRow], events: &[StateEvent]) -> Vec<Insight> {
    let Some(edges) = summary["edges"].as_object() else {
        return Vec::new();
    };
    // When each service first showed distress: a fault on it (a delay at its door does not
    // show in its own series), or its series.
    let mut onset: Vec<(&str, f64)> = Vec::new();
    for e in events {
        if let (Change::Fault { on: true, .. }, true) = (&e.change, e.t_s > 0.0) {
            // (A fault in force from t = 0 is the run's background, not an onset.)
            let svc = e.subject.split('/').next().unwrap_or("");
            if !onset.iter().any(|o| o.0 == svc) {
                onset.push((svc, e.t_s));
            }
        }
    }
    for (name, all) in grouped(series, "service") {
        let early = &all[..(all.len() / 5).max(1).min(all.len())];
        let p99 = median(early.iter().filter(|r| r.ok > 0).map(|r| r.latency_p99_ms));
        let in_distress = |r: &&&SeriesRow| {
            r.utilization >= SATURATED
                || r.rejected > 0
                || (p99 > 0.0 && r.ok > 0 && r.latency_p99_ms >= 5.0 * p99)
        };
        // Distress from the start is how it runs, not something that spread to it.
        if early.iter().any(|r| in_distress(&r)) {
            continue;
        }
        if let Some(r) = all[early.len()..].iter().find(in_distress) {
            match onset.iter_mut().find(|o| o.0 == name) {
                Some(o) => o.1 = o.1.min(r.t_s),
                None => onset.push((name, r.t_s)),
            }
        }
    }
    let at = |s: &str| onset.iter().find(|o| o.0 == s).map(|o| o.1);
    // The longest chain callee <- caller <- ... with onsets in order.
    let calls: Vec<(&str, &str)> = edges.keys().filter_map(|k| k.split_once("->")).collect();
    let mut best: Vec<&str> = Vec::new();
    for &(start, _) in &onset {
        let mut chain = vec![start];
        while let Some(&(caller, _)) = calls.iter().find(|(caller, callee)| {
            *callee == chain[chain.len() - 1]
                && !chain.contains(caller)
                && at(caller).is_some_and(|t| {
                    let from = at(callee).unwrap_or(f64::INFINITY);
                    t >= from && t - from <= CASCADE_LAG_S
                })
        }) {
            chain.push(caller);
        }
        if chain.len() > best.len() {
            best = chain;
        }
    }
    if best.len() < 2 {
        return Vec::new();
    }
    let steps: Vec<String> = best
        .iter()
        .map(|s| format!("{s} ({:.0} s)", at(s).unwrap_or(0.0)))
        .collect();
    vec![Insight {
        kind: "cascading_failure",
        chart: Chart::Services,
        subject: best[0].to_string(),
        at_s: at(best[0]),
        text: format!(
            "cascading failure: distress spread up the call graph: {}",
            steps.join(" -> ")
        ),
    }]
}

/// Each component of `kind` with its rows, in the order the series first names them. One
/// pass: a run of 2,000 services is not scanned once per service (that made insights half
/// of such a run's instructions).
pub(super) fn grouped<'a>(
    series: &'a [SeriesRow],
    kind: &str,
) -> Vec<(&'a str, Vec<&'a SeriesRow>)> {
    let mut at: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut out: Vec<(&str, Vec<&SeriesRow>)> = Vec::new();
    for r in series.iter().filter(|r| r.kind == kind) {
        let i = *at.entry(r.name.as_str()).or_insert_with(|| {
            out.push((r.name.as_str(), Vec::new()));
            out.len() - 1
        });
        out[i].1.push(r);
    }
    out
}

fn median(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Calls sent to instances that were down, because the caller's list was stale.
pub fn stale_discovery(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(edges) = summary["edges"].as_object() else {
        return out;
    };
    for (name, e) in edges {
        let dead = e["calls_to_dead"].as_u64().unwrap_or(0);
        if dead > 0 {
            out.push(Insight {
                kind: "stale_discovery",
                chart: Chart::Services,
                subject: name.clone(),
                at_s: None,
                text: format!(
                    "stale discovery: {name} sent {dead} calls to instances that were down, still on the caller's list"
                ),
            });
        }
    }
    out
}

/// Canaries rolled back on their own.
pub fn rollbacks(events: &[StateEvent]) -> Vec<Insight> {
    events
        .iter()
        .filter_map(|e| match &e.change {
            Change::CanaryRollback { why, .. } => Some(Insight {
                kind: "canary_rolled_back",
                chart: Chart::Timeline,
                subject: e.subject.clone(),
                at_s: Some(e.t_s),
                text: format!(
                    "canary rolled back: {} at {:.0} s ({why})",
                    e.subject, e.t_s
                ),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_grouped_by_name_in_the_order_first_named() {
        let series: Vec<SeriesRow> = [
            ("service", "b", 0.0),
            ("service", "a", 0.0),
            ("workload", "w", 0.0),
            ("service", "b", 1.0),
            ("service", "a", 1.0),
        ]
        .iter()
        .map(|&(k, n, t)| row(k, n, t, 1, 1, 0, 0.1))
        .collect();
        let g = grouped(&series, "service");
        let seen: Vec<(&str, Vec<f64>)> = g
            .iter()
            .map(|(n, rs)| (*n, rs.iter().map(|r| r.t_s).collect()))
            .collect();
        assert_eq!(seen, vec![("b", vec![0.0, 1.0]), ("a", vec![0.0, 1.0])]);
        assert_eq!(grouped(&series, "workload").len(), 1);
        assert!(grouped(&series, "queue").is_empty());
    }

    fn row(
        kind: &'static str,
        name: &str,
        t_s: f64,
        requests: u64,
        ok: u64,
        rejected: u64,
        util: f64,
    ) -> SeriesRow {
        SeriesRow {
            t_s,
            kind: kind.into(),
            name: name.into(),
            requests,
            ok,
            errors: requests - ok - rejected,
            rejected,
            timeouts: 0,
            latency_p50_ms: 1.0,
            latency_p90_ms: 1.0,
            latency_p99_ms: 1.0,
            latency_p999_ms: 1.0,
            in_flight: 0,
            queue_depth: 0,
            utilization: util,
            oldest_age_s: 0.0,
        }
    }

    fn event(t_s: f64, subject: &str, change: Change) -> StateEvent {
        StateEvent {
            t_s,
            subject: subject.into(),
            change,
        }
    }

    fn recovery(to_s: f64, recovered: bool) -> Value {
        json!({"recovery": {"w-spike": {"kind": "load", "what": "w spike to 600/s",
            "from_s": 30.0, "to_s": to_s,
            "workloads": {"w": {"goodput_before": 0.99, "recovered": recovered}}}}})
    }

    #[test]
    fn a_failure_that_outlives_its_trigger_is_metastable() {
        let series: Vec<SeriesRow> = (0..100)
            .map(|t| {
                row(
                    "workload",
                    "w",
                    t as f64,
                    100,
                    if t < 30 { 99 } else { 40 },
                    0,
                    0.0,
                )
            })
            .collect();
        let found = metastable(&recovery(40.0, false), &series, 100.0);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].text.contains("never recovered: 40 %"),
            "{}",
            found[0].text
        );
        assert_eq!(found[0].at_s, Some(40.0));
        // Recovered, or the trigger lasted nearly to the end: nothing to say.
        assert!(metastable(&recovery(40.0, true), &series, 100.0).is_empty());
        assert!(metastable(&recovery(95.0, false), &series, 100.0).is_empty());
        // Not recovered by its bands, but succeeding as before (a longer tail): not failing.
        let fine: Vec<SeriesRow> = (0..100)
            .map(|t| row("workload", "w", t as f64, 100, 99, 0, 0.0))
            .collect();
        assert!(metastable(&recovery(40.0, false), &fine, 100.0).is_empty());
    }

    #[test]
    fn retries_against_a_saturated_callee_are_a_storm() {
        let summary = |amp: f64| json!({"edges": {"api->db": {"amplification": amp}}});
        let hot: Vec<SeriesRow> = (0..10)
            .map(|t| {
                row(
                    "service",
                    "db",
                    t as f64,
                    10,
                    10,
                    0,
                    if t >= 4 { 0.97 } else { 0.5 },
                )
            })
            .collect();
        let found = retry_storms(&summary(2.4), &hot);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at_s, Some(4.0));
        assert!(
            found[0].text.contains("2.40 attempts per call"),
            "{}",
            found[0].text
        );
        // Few retries, or a callee with room: no storm.
        assert!(retry_storms(&summary(1.1), &hot).is_empty());
        let cool: Vec<SeriesRow> = (0..10)
            .map(|t| row("service", "db", t as f64, 10, 10, 0, 0.5))
            .collect();
        assert!(retry_storms(&summary(2.4), &cool).is_empty());
    }

    #[test]
    fn a_breaker_that_keeps_opening_flaps() {
        let open = |t: f64| {
            event(
                t,
                "a->b",
                Change::Breaker {
                    from: Breaker::HalfOpen,
                    to: Breaker::Open,
                },
            )
        };
        let close = |t: f64| {
            event(
                t,
                "a->b",
                Change::Breaker {
                    from: Breaker::HalfOpen,
                    to: Breaker::Closed,
                },
            )
        };
        let ev = vec![open(10.0), close(15.0), open(20.0), close(25.0), open(30.0)];
        let found = flapping(&ev);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .text
                .contains("a->b's breaker opened up to 3 times between 10 and 30 s"),
            "{}",
            found[0].text
        );
        // Two caller instances' breakers on one edge: one insight.
        let pod = |k: u32, e: &StateEvent| StateEvent {
            subject: format!("a/{k}->b"),
            ..e.clone()
        };
        let mut pods: Vec<StateEvent> = ev.iter().map(|e| pod(0, e)).collect();
        pods.extend(ev.iter().map(|e| pod(1, e)));
        let found = flapping(&pods);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "a->b");
        assert!(
            found[0].text.contains("2 callers' breakers on a->b"),
            "{}",
            found[0].text
        );
        assert!(
            flapping(&ev[..3]).is_empty(),
            "two openings are not flapping"
        );
    }

    #[test]
    fn refusals_in_many_buckets_are_a_saturated_queue() {
        let series: Vec<SeriesRow> = (0..20)
            .map(|t| {
                row(
                    "service",
                    "s",
                    t as f64,
                    100,
                    if t >= 10 { 80 } else { 100 },
                    if t >= 10 { 20 } else { 0 },
                    1.0,
                )
            })
            .collect();
        let found = saturated_queues(&series);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].text.contains("refused 200 requests"),
            "{}",
            found[0].text
        );
        assert_eq!(found[0].at_s, Some(10.0));
        // A blip of two buckets is not saturation.
        assert!(saturated_queues(&series[..12]).is_empty());
    }

    #[test]
    fn a_collapse_of_goodput_under_steady_sending_is_named() {
        let series: Vec<SeriesRow> = (0..50)
            .map(|t| {
                let ok = if (20..26).contains(&t) { 10 } else { 100 };
                row("workload", "w", t as f64, 100, ok, 0, 0.0)
            })
            .collect();
        let found = goodput_collapse(&series);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at_s, Some(20.0));
        assert!(
            found[0]
                .text
                .contains("from about 100 to 10 a bucket at 20 s, for 6 buckets"),
            "{}",
            found[0].text
        );
        // Less traffic sent is not a collapse; two bad buckets are a blip.
        let quiet: Vec<SeriesRow> = (0..50)
            .map(|t| {
                let n = if (20..26).contains(&t) { 10 } else { 100 };
                row("workload", "w", t as f64, n, n, 0, 0.0)
            })
            .collect();
        assert!(goodput_collapse(&quiet).is_empty());
        assert!(goodput_collapse(&series[..22]).is_empty());
    }

    #[test]
    fn distress_that_climbs_the_call_graph_is_a_cascade() {
        let summary = json!({"edges": {"front->mid": {}, "mid->db": {}, "front->other": {}}});
        // db slows at 30 s, mid saturates at 33 s, front refuses from 35 s; other is fine.
        let mut series = Vec::new();
        for t in 0..60 {
            let t_f = t as f64;
            let mut db = row("service", "db", t_f, 100, 100, 0, 0.3);
            if t >= 30 {
                db.latency_p99_ms = 50.0;
            }
            let mid = row(
                "service",
                "mid",
                t_f,
                100,
                100,
                0,
                if t >= 33 { 0.95 } else { 0.4 },
            );
            let front = row(
                "service",
                "front",
                t_f,
                100,
                if t >= 35 { 95 } else { 100 },
                if t >= 35 { 5 } else { 0 },
                0.4,
            );
            series.extend([
                db,
                mid,
                front,
                row("service", "other", t_f, 100, 100, 0, 0.2),
            ]);
        }
        let found = cascades(&summary, &series, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].text,
            "cascading failure: distress spread up the call graph: db (30 s) -> mid (33 s) -> front (35 s)"
        );
        // A delay fault at db's door shows only in the event, not in db's own series.
        let quiet_db: Vec<SeriesRow> = series
            .iter()
            .cloned()
            .map(|mut r| {
                r.latency_p99_ms = 1.0;
                r
            })
            .collect();
        let delay = event(
            28.0,
            "db",
            Change::Fault {
                on: true,
                what: "latency +2s".into(),
            },
        );
        let found = cascades(&summary, &quiet_db, &[delay]);
        assert!(
            found[0].text.contains("db (28 s) -> mid (33 s)"),
            "{found:?}"
        );
        // A caller in distress long after its callee is not counted as its cascade.
        let late: Vec<SeriesRow> = series
            .iter()
            .cloned()
            .map(|mut r| {
                if r.name == "front" && r.t_s < 55.0 {
                    (r.ok, r.rejected) = (100, 0);
                }
                r
            })
            .collect();
        let found = cascades(&summary, &late, &[]);
        assert!(found[0].text.ends_with("mid (33 s)"), "{found:?}");
        // A caller in distress before its callee is not a cascade from it.
        let early: Vec<SeriesRow> = series
            .iter()
            .cloned()
            .map(|mut r| {
                if r.name == "front" {
                    (r.ok, r.rejected) = (95, 5);
                }
                r
            })
            .collect();
        let found = cascades(&summary, &early, &[]);
        assert!(
            found.iter().all(|i| !i.text.contains("-> front")),
            "{found:?}"
        );
    }

    #[test]
    fn stale_calls_and_rollbacks_are_reported_and_a_healthy_run_raises_nothing() {
        let s = json!({"edges": {"a->b": {"calls_to_dead": 12, "amplification": 1.0}}});
        assert_eq!(stale_discovery(&s)[0].kind, "stale_discovery");
        let ev = vec![event(
            50.0,
            "api",
            Change::CanaryRollback {
                why: "error rate 0.2 > 0.05".into(),
                requests: 100,
            },
        )];
        assert!(rollbacks(&ev)[0]
            .text
            .contains("at 50 s (error rate 0.2 > 0.05)"));
        let healthy: Vec<SeriesRow> = (0..50)
            .flat_map(|t| {
                [
                    row("workload", "w", t as f64, 100, 100, 0, 0.0),
                    row("service", "s", t as f64, 100, 100, 0, 0.5),
                ]
            })
            .collect();
        let summary = json!({"edges": {"w->s": {"amplification": 1.0, "calls_to_dead": 0}}});
        assert!(detect(&summary, &healthy, &[], &[], 50.0).is_empty());
    }
}
