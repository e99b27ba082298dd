//! Trouble in the asynchronous parts and among a service's instances: messages delivered
//! again, applied twice or dead-lettered; read models behind their log; one bad instance;
//! hosts ejected by outlier detection.

use super::{Chart, Insight};
use crate::results::events::{Change, OutlierChange, StateEvent};
use serde_json::Value;

/// Share of deliveries that were redeliveries at or above which they are told.
pub const REDELIVERED_SHARE: f64 = 0.01;
/// Mean latency, as a multiple of its peers' median, at or above which an instance is slow.
pub const SLOW_INSTANCE: f64 = 3.0;
/// Events behind at or above which a projection's lag is told.
pub const PROJECTION_BEHIND: u64 = 100;

/// Per broker queue: redeliveries (1 % of deliveries or more), effects applied twice, and
/// messages dead-lettered, dropped or expired.
pub fn messaging(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(brokers) = summary["brokers"].as_object() else {
        return out;
    };
    for b in brokers.values() {
        let Some(queues) = b["queues"].as_object() else {
            continue;
        };
        for (name, q) in queues {
            let n = |k: &str| q[k].as_u64().unwrap_or(0);
            let (delivered, again) = (n("delivered"), n("redelivered"));
            if again > 0 && again as f64 >= REDELIVERED_SHARE * delivered as f64 {
                out.push(Insight {
                    kind: "messages_redelivered",
                    subject: name.clone(),
                    at_s: None,
                    text: format!(
                        "redeliveries: queue {name} handed out {again} messages again ({:.1} % of {delivered} deliveries: lost, unacknowledged in time or failed); the oldest waited {:.1} s",
                        100.0 * again as f64 / delivered as f64,
                        q["max_oldest_age_s"].as_f64().unwrap_or(0.0)
                    ),
                    chart: Chart::Brokers,
                });
            }
            if n("double_effects") > 0 {
                out.push(Insight {
                    kind: "duplicate_effects",
                    subject: name.clone(),
                    at_s: None,
                    text: format!(
                        "duplicate effects: {} messages of queue {name} took effect twice ({} copies arrived, {} skipped by an idempotency store): at-least-once delivery needs idempotent consumers",
                        n("double_effects"),
                        n("duplicates"),
                        n("duplicates_skipped")
                    ),
                    chart: Chart::Brokers,
                });
            }
            let lost: Vec<String> = [
                ("dead_lettered", "dead-lettered"),
                ("dropped", "dropped"),
                ("expired", "expired"),
            ]
            .into_iter()
            .filter(|(k, _)| n(k) > 0)
            .map(|(k, what)| format!("{} {what}", n(k)))
            .collect();
            if !lost.is_empty() {
                out.push(Insight {
                    kind: "messages_dead",
                    subject: name.clone(),
                    at_s: None,
                    text: format!(
                        "messages not handled: queue {name} gave up on messages: {}",
                        lost.join(", ")
                    ),
                    chart: Chart::Brokers,
                });
            }
        }
    }
    out
}

/// Per projection that fell `PROJECTION_BEHIND` events or more behind its log: how far,
/// how stale its reads were, and when a late joiner caught up.
pub fn projections(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(ps) = summary["projections"].as_object() else {
        return out;
    };
    for (name, p) in ps {
        let behind = p["max_behind"].as_u64().unwrap_or(0);
        if behind < PROJECTION_BEHIND {
            continue;
        }
        let s = |k: &str, q: &str| p[k][q].as_f64().unwrap_or(0.0) / 1e3;
        let stale = p["stale_reads"].as_u64().unwrap_or(0);
        let reads = if stale > 0 {
            format!(
                "; {stale} of its {} reads ({:.0} %) missed a committed write, up to {:.1} s stale",
                p["reads"].as_u64().unwrap_or(0),
                100.0 * p["stale_share"].as_f64().unwrap_or(0.0),
                s("staleness_ms", "max")
            )
        } else {
            String::new()
        };
        let start = p["started_at_s"].as_f64().unwrap_or(0.0);
        let joined = match p["caught_up_at_s"].as_f64() {
            Some(c) if start > 0.0 => {
                format!("; it joined at {start:.0} s and caught up at {c:.0} s")
            }
            _ => String::new(),
        };
        out.push(Insight {
            kind: "projection_behind",
            subject: name.clone(),
            at_s: None,
            text: format!(
                "read model behind: projection {name} fell up to {behind} events behind its log (lag p99 {:.1} s){reads}{joined}",
                s("lag_ms", "p99")
            ),
            chart: Chart::Projections,
        });
    }
    out
}

/// One instance among three or more that failed where its peers succeeded (its share of
/// requests answered ok below half the median of the others'), or was slow where they were
/// not (its mean latency `SLOW_INSTANCE` times their median or more).
pub fn bad_instances(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(services) = summary["services"].as_object() else {
        return out;
    };
    for (svc, s) in services {
        let Some(each) = s["instances"]["each"].as_object() else {
            continue;
        };
        let shares: Vec<(&String, u64, u64)> = each
            .iter()
            .map(|(i, v)| {
                (
                    i,
                    v["ok"].as_u64().unwrap_or(0),
                    v["requests"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        if shares.len() < 3 {
            continue;
        }
        let mut found: Vec<Insight> = Vec::new();
        for (k, &(inst, ok, n)) in shares.iter().enumerate() {
            if n < 20 {
                continue;
            }
            let share = ok as f64 / n as f64;
            let mut peers: Vec<f64> = shares
                .iter()
                .enumerate()
                .filter(|&(j, p)| j != k && p.2 > 0)
                .map(|(_, p)| p.1 as f64 / p.2 as f64)
                .collect();
            peers.sort_by(f64::total_cmp);
            let Some(&median) = peers.get(peers.len() / 2) else {
                continue;
            };
            // Slow where its peers are not: its mean latency 3 times their median or more.
            let latency = |v: &Value| v["latency_mean_ms"].as_f64().unwrap_or(0.0);
            let mut peer_ms: Vec<f64> = each
                .iter()
                .filter(|(i, _)| *i != inst)
                .map(|(_, v)| latency(v))
                .collect();
            peer_ms.sort_by(f64::total_cmp);
            let mine = latency(&each[inst.as_str()]);
            let typical = peer_ms[peer_ms.len() / 2];
            if typical > 0.0 && mine >= SLOW_INSTANCE * typical {
                found.push(Insight {
                    kind: "slow_instance",
                    subject: inst.clone(),
                    at_s: None,
                    text: format!(
                        "one slow instance: {inst} took {mine:.1} ms a request on average, {:.1} times the {typical:.1} ms of {svc}'s other {} instances (median)",
                        mine / typical,
                        peer_ms.len()
                    ),
                    chart: Chart::Share(svc.clone()),
                });
            }
            if share < 0.5 * median {
                found.push(Insight {
                    kind: "bad_instance",
                    subject: inst.clone(),
                    at_s: None,
                    text: format!(
                        "one bad instance: {inst} answered {ok} of its {n} requests ok ({:.0} %) while {svc}'s other {} instances answered {:.0} % (median)",
                        100.0 * share,
                        peers.len(),
                        100.0 * median
                    ),
                    chart: Chart::Services,
                });
            }
        }
        // Told only of one instance, or a quarter of them at most: when more stand apart
        // (the first instances of a service that scaled out after a spike), it is not one
        // instance's trouble.
        for kind in ["slow_instance", "bad_instance"] {
            let count = found.iter().filter(|i| i.kind == kind).count();
            if count == 1 || count * 4 <= shares.len() {
                out.extend(found.iter().filter(|i| i.kind == kind).cloned());
            }
        }
    }
    out
}

/// Writes committed whose events never reached the broker (a dual write), or were
/// published twice (an outbox relay that crashed between publishing and marking).
pub fn lost_events(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(services) = summary["services"].as_object() else {
        return out;
    };
    for (name, s) in services {
        let e = &s["events"];
        let n = |k: &str| e[k].as_u64().unwrap_or(0);
        if n("lost") > 0 {
            out.push(Insight {
                kind: "events_lost",
                subject: name.clone(),
                at_s: None,
                text: format!(
                    "events lost: {name} committed {} writes but published {} events: {} committed writes never reached the broker (a crash or a timeout between the database and the publish)",
                    n("committed"),
                    n("published"),
                    n("lost")
                ),
                chart: Chart::Brokers,
            });
        }
        if n("republished") > 0 {
            out.push(Insight {
                kind: "events_republished",
                subject: name.clone(),
                at_s: None,
                text: format!(
                    "events published twice: {name}'s outbox relay published {} events again after a crash between publishing and marking them sent",
                    n("republished")
                ),
                chart: Chart::Brokers,
            });
        }
    }
    out
}

/// Hosts that outlier detection ejected, told per service: which hosts, how often, by how
/// many callers, first when.
pub fn ejections(events: &[StateEvent]) -> Vec<Insight> {
    struct Service<'a> {
        name: &'a str,
        first: f64,
        times: usize,
        hosts: Vec<&'a str>,
        callers: Vec<&'a str>,
        reasons: Vec<&'a str>,
    }
    let mut services: Vec<Service> = Vec::new();
    for e in events {
        let Change::Outlier(OutlierChange::Ejected { reason }) = &e.change else {
            continue;
        };
        let Some((caller, host)) = e.subject.split_once("->") else {
            continue;
        };
        let name = host.split('/').next().unwrap_or(host);
        let k = match services.iter().position(|s| s.name == name) {
            Some(k) => k,
            None => {
                services.push(Service {
                    name,
                    first: e.t_s,
                    times: 0,
                    hosts: Vec::new(),
                    callers: Vec::new(),
                    reasons: Vec::new(),
                });
                services.len() - 1
            }
        };
        let s = &mut services[k];
        s.times += 1;
        for (list, x) in [
            (&mut s.hosts, host),
            (&mut s.callers, caller),
            (&mut s.reasons, reason.as_ref()),
        ] {
            if !list.contains(&x) {
                list.push(x);
            }
        }
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    services
        .into_iter()
        .map(|s| {
            let mut hosts = s.hosts.clone();
            hosts.sort_unstable();
            Insight {
                kind: "host_ejected",
                subject: s.name.to_string(),
                at_s: Some(s.first),
                text: format!(
                    "outlier ejection: {} {} ejected {} by {} ({}), first at {:.1} s",
                    hosts.join(", "),
                    if hosts.len() == 1 { "was" } else { "were" },
                    plural(s.times, "time", "times"),
                    plural(s.callers.len(), "caller", "callers"),
                    s.reasons.join(", "),
                    s.first
                ),
                chart: Chart::Timeline,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queues_tell_redeliveries_double_effects_and_dead_letters() {
        let s = json!({"brokers": {"bus": {"queues": {"q": {"delivered": 1000, "redelivered": 50,
            "double_effects": 7, "duplicates": 9, "duplicates_skipped": 2, "dead_lettered": 3,
            "dropped": 0, "expired": 0, "max_oldest_age_s": 12.5}}}}});
        let kinds: Vec<&str> = messaging(&s).iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            ["messages_redelivered", "duplicate_effects", "messages_dead"]
        );
        let text: Vec<String> = messaging(&s).into_iter().map(|i| i.text).collect();
        assert!(
            text[0].contains("50 messages again (5.0 % of 1000"),
            "{}",
            text[0]
        );
        assert!(text[2].ends_with("3 dead-lettered"), "{}", text[2]);
        // A clean queue, and redeliveries under 1 %: nothing.
        let clean = json!({"brokers": {"bus": {"queues": {"q": {"delivered": 1000,
            "redelivered": 9}}}}});
        assert!(messaging(&clean).is_empty());
    }

    #[test]
    fn a_projection_far_behind_is_told_with_its_stale_reads() {
        let s = |behind: u64| {
            json!({"projections": {"view": {"max_behind": behind, "started_at_s": 0.0,
            "caught_up_at_s": 0.0, "lag_ms": {"p99": 18000.0}, "reads": 100,
            "stale_reads": 40, "stale_share": 0.4, "staleness_ms": {"max": 18200.0}}}})
        };
        let found = projections(&s(4558));
        assert_eq!(
            found[0].text,
            "read model behind: projection view fell up to 4558 events behind its log (lag p99 18.0 s); 40 of its 100 reads (40 %) missed a committed write, up to 18.2 s stale"
        );
        assert!(projections(&s(99)).is_empty());
    }

    #[test]
    fn an_instance_failing_among_healthy_peers_is_bad() {
        let s = |bad_ok: u64| {
            json!({"services": {"inv": {"instances": {"each": {
            "inv/0": {"ok": 100, "requests": 100}, "inv/1": {"ok": 99, "requests": 100},
            "inv/2": {"ok": bad_ok, "requests": 100}, "inv/3": {"ok": 100, "requests": 100}}}}}})
        };
        let found = bad_instances(&s(6));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "inv/2");
        assert!(
            found[0].text.contains("6 of its 100 requests ok (6 %)"),
            "{}",
            found[0].text
        );
        // Worse than its peers but not by half: not told.
        assert!(bad_instances(&s(60)).is_empty());
    }

    #[test]
    fn an_instance_slow_among_quick_peers_is_told() {
        let s = |ms: f64| {
            json!({"services": {"cat": {"instances": {"each": {
            "cat/0": {"ok": 100, "requests": 100, "latency_mean_ms": 8.0},
            "cat/1": {"ok": 100, "requests": 100, "latency_mean_ms": ms},
            "cat/2": {"ok": 100, "requests": 100, "latency_mean_ms": 9.0}}}}}})
        };
        let found = bad_instances(&s(40.0));
        assert_eq!((found.len(), found[0].kind), (1, "slow_instance"));
        assert!(
            found[0]
                .text
                .contains("40.0 ms a request on average, 4.4 times the 9.0 ms"),
            "{}",
            found[0].text
        );
        assert!(bad_instances(&s(20.0)).is_empty());
    }

    #[test]
    fn committed_writes_without_their_events_are_lost() {
        let s = |lost: u64| {
            json!({"services": {"orders": {"events": {"committed": 100, "published": 100 - lost,
            "lost": lost, "republished": 0}}}})
        };
        let found = lost_events(&s(3));
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .text
                .contains("committed 100 writes but published 97 events: 3 committed"),
            "{}",
            found[0].text
        );
        assert!(lost_events(&s(0)).is_empty());
    }

    #[test]
    fn ejections_are_told_per_host_with_their_callers() {
        let ej = |t: f64, subject: &str| StateEvent {
            t_s: t,
            subject: subject.into(),
            change: Change::Outlier(OutlierChange::Ejected {
                reason: "consecutive_5xx".into(),
            }),
        };
        let events = [
            ej(20.3, "web/0->cat/2"),
            ej(20.4, "web/1->cat/2"),
            ej(80.0, "web/0->cat/2"),
        ];
        let found = ejections(&events);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].text,
            "outlier ejection: cat/2 was ejected 3 times by 2 callers (consecutive_5xx), first at 20.3 s"
        );
    }
}
