//! Work that went wrong without failing loudly: a timeout inversion that bit (a caller gave
//! up while its callee went on working for it) and sagas left inconsistent.

use super::{rows, Chart, Insight};
use crate::metrics::SeriesRow;
use serde_json::Value;

/// A timeout inversion of the scenario, by name (the static analysis finds them; the run
/// tells whether they bit).
#[derive(Clone, Debug, PartialEq)]
pub struct Inversion {
    /// The service that gives up.
    pub caller: String,
    /// The service it gives up on.
    pub callee: String,
    /// The service the callee goes on calling.
    pub downstream: String,
    /// The caller's timeout on the callee, ms.
    pub timeout_ms: f64,
    /// What the callee may spend on the downstream with its retries, ms.
    pub may_take_ms: f64,
    /// The callee propagates deadlines, so its own calls end when its caller stops waiting.
    pub bounded: bool,
}

/// Timeout inversions that bit: the caller timed out on its callee, and the callee and the
/// service it calls did work for requests nobody was waiting for any more.
pub fn inversions_that_bit(
    summary: &Value,
    series: &[SeriesRow],
    inversions: &[Inversion],
) -> Vec<Insight> {
    let mut out = Vec::new();
    for v in inversions.iter().filter(|v| !v.bounded) {
        let edge = format!("{}->{}", v.caller, v.callee);
        let gave_up = summary["edges"][&edge]["responses"]["timeout"]
            .as_u64()
            .unwrap_or(0);
        let wasted = |s: &str| {
            summary["services"][s]["wasted_work_ms"]
                .as_f64()
                .unwrap_or(0.0)
        };
        let (w_callee, w_down) = (wasted(&v.callee), wasted(&v.downstream));
        if gave_up == 0
            || w_callee + w_down <= 0.0
            || out.iter().any(|i: &Insight| i.subject == edge)
        {
            continue;
        }
        // When the callee first saw its caller give up.
        let at_s = rows(series, "service", &v.callee)
            .find(|r| r.timeouts > 0)
            .map(|r| r.t_s);
        out.push(Insight {
            kind: "timeout_inversion",
            subject: edge.clone(),
            at_s,
            text: format!(
                "timeout inversion bit: {} gave up on {} after {:.0} ms {gave_up} times{}, while {} may spend {:.0} ms on {} with its retries; the work done for requests nobody waited for was wasted: {:.1} s of {}'s worker time and {:.1} s of {}'s",
                v.caller,
                v.callee,
                v.timeout_ms,
                at_s.map(|t| format!(" from {t:.0} s")).unwrap_or_default(),
                v.callee,
                v.may_take_ms,
                v.downstream,
                w_callee / 1e3,
                v.callee,
                w_down / 1e3,
                v.downstream
            ),
            chart: Chart::Services,
        });
    }
    out
}

/// Sagas that ended inconsistent (an effect applied and never undone, undone twice,
/// applied twice, or missing) or stuck, with how long their participants disagreed.
pub fn saga_inconsistency(summary: &Value) -> Vec<Insight> {
    let mut out = Vec::new();
    let Some(sagas) = summary["sagas"].as_object() else {
        return out;
    };
    for (name, g) in sagas {
        let n = |k: &str| g[k].as_u64().unwrap_or(0);
        let (bad, stuck) = (n("inconsistent"), n("stuck"));
        if bad == 0 && stuck == 0 {
            continue;
        }
        // What was wrong, per step's effect, in the summary's order.
        let mut wrong = Vec::new();
        if let Some(effects) = g["effects"].as_object() {
            for (step, e) in effects {
                for (key, what) in [
                    ("leaked", "applied and never undone"),
                    ("undone_twice", "undone twice"),
                    ("applied_twice", "applied twice"),
                    ("missing", "undone but never applied"),
                ] {
                    let k = e[key].as_u64().unwrap_or(0);
                    if k > 0 {
                        wrong.push(format!("{step} {what} {k} times"));
                    }
                }
            }
        }
        let ms = |k: &str| g["disagreement_ms"][k].as_f64();
        let window = match (ms("p99"), ms("max")) {
            (Some(p99), Some(max)) => format!(
                "; the consistent ones' participants disagreed for up to {:.1} s (p99 {:.1} s) before agreeing",
                max / 1e3,
                p99 / 1e3
            ),
            _ => String::new(),
        };
        out.push(Insight {
            kind: "saga_inconsistent",
            subject: name.clone(),
            at_s: None,
            text: format!(
                "saga inconsistency: {bad} of {} {name} sagas ended inconsistent{}{}{window}",
                n("started"),
                if stuck > 0 {
                    format!(", {stuck} stuck in compensation")
                } else {
                    String::new()
                },
                if wrong.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", wrong.join(", "))
                },
            ),
            chart: Chart::Sagas,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inversion(bounded: bool) -> Inversion {
        Inversion {
            caller: "front".into(),
            callee: "mid".into(),
            downstream: "backend".into(),
            timeout_ms: 250.0,
            may_take_ms: 1200.0,
            bounded,
        }
    }

    fn summary(timeouts: u64, wasted_ms: f64) -> Value {
        json!({
            "edges": {"front->mid": {"responses": {"200": 10, "timeout": timeouts}}},
            "services": {"mid": {"wasted_work_ms": wasted_ms}, "backend": {"wasted_work_ms": 2.0 * wasted_ms}}
        })
    }

    #[test]
    fn an_inversion_bites_when_the_caller_gave_up_and_work_was_wasted() {
        let found = inversions_that_bit(&summary(12, 1500.0), &[], &[inversion(false)]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].kind, found[0].subject.as_str()),
            ("timeout_inversion", "front->mid")
        );
        assert!(
            found[0]
                .text
                .contains("front gave up on mid after 250 ms 12 times")
                && found[0]
                    .text
                    .contains("1.5 s of mid's worker time and 3.0 s of backend's"),
            "{}",
            found[0].text
        );
        // No timeouts, no wasted work, or deadlines propagated: it did not bite.
        assert!(inversions_that_bit(&summary(0, 1500.0), &[], &[inversion(false)]).is_empty());
        assert!(inversions_that_bit(&summary(12, 0.0), &[], &[inversion(false)]).is_empty());
        assert!(inversions_that_bit(&summary(12, 1500.0), &[], &[inversion(true)]).is_empty());
    }

    #[test]
    fn sagas_left_inconsistent_are_told_with_what_and_for_how_long() {
        let s = json!({"sagas": {"order": {"started": 100, "inconsistent": 3, "stuck": 1,
            "effects": {"create": {"leaked": 1}, "charge": {"undone_twice": 2, "leaked": 0}},
            "disagreement_ms": {"p99": 1500.0, "max": 9200.0}}}});
        let found = saga_inconsistency(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].text,
            "saga inconsistency: 3 of 100 order sagas ended inconsistent, 1 stuck in compensation (create applied and never undone 1 times, charge undone twice 2 times); the consistent ones' participants disagreed for up to 9.2 s (p99 1.5 s) before agreeing"
        );
        let fine = json!({"sagas": {"order": {"started": 100, "inconsistent": 0, "stuck": 0}}});
        assert!(saga_inconsistency(&fine).is_empty());
    }
}
