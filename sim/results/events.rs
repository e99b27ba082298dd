//! State changes as a typed enum: `Display` writes the `detail` column of `events.csv`, `parse` reads it back.

use crate::policy::{breaker, registry};
use crate::time::{parse_duration, SimDuration};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// Free text in a change: a reason or a name. Borrowed when the model writes it (no
/// allocation for the fixed phrases), owned when read back from a file.
pub type Text = Cow<'static, str>;

/// One row of `events.csv`: a state change of one component.
#[derive(Clone, Debug, PartialEq)]
pub struct StateEvent {
    /// When, seconds.
    pub t_s: f64,
    /// The component concerned (`svc`, `svc/2`, `a->b`, `a->b/1`, `saga#7`, a queue).
    pub subject: String,
    /// What changed.
    pub change: Change,
}

impl StateEvent {
    /// The `kind` column (run_start, instance_up, breaker, ...).
    pub fn kind(&self) -> &'static str {
        self.change.kind()
    }

    /// The `detail` column.
    pub fn detail(&self) -> String {
        self.change.to_string()
    }

    /// The row as `events.csv` writes it.
    pub fn row(&self) -> EventRow<'_> {
        EventRow {
            t_s: self.t_s,
            kind: self.kind(),
            subject: &self.subject,
            detail: self.detail(),
        }
    }

    /// An event read back from the columns of `events.csv`.
    pub fn from_columns(t_s: f64, kind: &str, subject: &str, detail: &str) -> Result<Self, String> {
        Ok(StateEvent {
            t_s,
            subject: subject.to_string(),
            change: Change::parse(kind, detail)?,
        })
    }
}

/// The columns of one `events.csv` row, in file order.
#[derive(Serialize)]
pub struct EventRow<'a> {
    /// When, seconds.
    pub t_s: f64,
    /// What kind of change.
    pub kind: &'static str,
    /// The component concerned.
    pub subject: &'a str,
    /// Details.
    pub detail: String,
}

/// Where an instance went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InstanceState {
    /// Serving (started, repaired, provisioned).
    Up,
    /// Gone (crashed, scaled in, stopped).
    Down,
    /// Deregistered, finishing what it holds.
    Draining,
}

/// A change of a host's ejection state (Envoy outlier detection).
#[derive(Clone, Debug, PartialEq)]
pub enum OutlierChange {
    /// Ejected by the named detector.
    Ejected {
        /// The detector (`consecutive_5xx`, `success_rate`, ...).
        reason: Text,
    },
    /// An ejection the named detector wanted, refused by `max_ejection_percent`.
    Refused {
        /// The detector.
        reason: Text,
    },
    /// Back in the pool.
    Unejected,
}

/// What changed. Each variant is one `kind` of `events.csv`, except where a field says
/// which of two kinds it writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The run began.
    RunStart {
        /// The scenario seed.
        seed: u64,
    },
    /// Statistics start.
    WarmupEnd,
    /// The run ended, and why.
    RunEnd {
        /// The stop reason in words.
        why: Text,
    },
    /// An instance came up, went down or began draining.
    Instance {
        /// Where it went.
        to: InstanceState,
        /// Why, in words.
        why: Text,
    },
    /// A fault window opened (`fault_start`) or closed (`fault_end`).
    Fault {
        /// Opened.
        on: bool,
        /// What the fault does, in words (its first word up to `:` or `(` is its label).
        what: Text,
    },
    /// A circuit breaker's transition.
    Breaker {
        /// The state left.
        from: breaker::State,
        /// The state entered.
        to: breaker::State,
    },
    /// An outlier detector's decision about one host.
    Outlier(OutlierChange),
    /// A caller's discovery cache changed.
    Discovery {
        /// The instances it lists now, by index.
        sees: Vec<u32>,
        /// The instances there are.
        of: u32,
    },
    /// The registry's view of an instance changed.
    Registry {
        /// The status left.
        from: registry::Status,
        /// The status entered.
        to: registry::Status,
        /// Why, in words.
        why: Text,
    },
    /// The autoscaler changed the desired replicas.
    Autoscale {
        /// Replicas before.
        from: u32,
        /// Replicas wanted.
        to: u32,
        /// The metric it acts on, in words.
        metric: Text,
        /// The metric's value (as printed: two decimals).
        value: f64,
        /// The metric's target.
        target: f64,
    },
    /// A canary's traffic weight moved.
    CanaryWeight {
        /// Percent before.
        from_pct: f64,
        /// Percent after.
        to_pct: f64,
    },
    /// A canary was rolled back.
    CanaryRollback {
        /// The failed check, in words.
        why: Text,
        /// Requests in the window judged.
        requests: u64,
    },
    /// A rolling update began.
    RolloutStarted {
        /// Instances allowed above the replicas.
        max_surge: u32,
        /// Instances allowed below the replicas.
        max_unavailable: u32,
        /// How long old instances drain (None: they stop at once).
        drain: Option<SimDuration>,
    },
    /// A rolling update finished.
    RolloutFinished {
        /// Instances on the new version.
        replicas: u32,
        /// How long it took.
        took: SimDuration,
    },
    /// A message left its queue unprocessed: dead-lettered (`dead_letter`) or dropped
    /// (`message_dropped`).
    MessageLeft {
        /// Dead-lettered rather than dropped.
        dead_letter: bool,
        /// The message's number.
        message: u64,
        /// Whether it was a poison message.
        poison: bool,
        /// Deliveries it had.
        deliveries: u32,
    },
    /// A saga began a step's action or compensation.
    SagaStep {
        /// The step's name.
        step: Text,
        /// The compensation rather than the action.
        compensation: bool,
        /// Which attempt (1: the first).
        attempt: u32,
    },
    /// A saga ended.
    SagaEnd {
        /// Its final status (`completed`, `compensated`, `failed`, `stuck`).
        status: Text,
    },
}

/// A breaker state's name in `events.csv`.
pub fn breaker_state_name(s: breaker::State) -> &'static str {
    match s {
        breaker::State::Closed => "closed",
        breaker::State::Open => "open",
        breaker::State::HalfOpen => "half_open",
        breaker::State::Disabled => "disabled",
        breaker::State::ForcedOpen => "forced_open",
        breaker::State::MetricsOnly => "metrics_only",
    }
}

const BREAKER_STATES: [breaker::State; 6] = [
    breaker::State::Closed,
    breaker::State::Open,
    breaker::State::HalfOpen,
    breaker::State::Disabled,
    breaker::State::ForcedOpen,
    breaker::State::MetricsOnly,
];

const REGISTRY_STATES: [registry::Status; 5] = [
    registry::Status::Gone,
    registry::Status::Starting,
    registry::Status::Healthy,
    registry::Status::Unhealthy,
    registry::Status::Draining,
];

impl Change {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::RunStart { .. } => "run_start",
            Change::WarmupEnd => "warmup_end",
            Change::RunEnd { .. } => "run_end",
            Change::Instance { to, .. } => match to {
                InstanceState::Up => "instance_up",
                InstanceState::Down => "instance_down",
                InstanceState::Draining => "instance_draining",
            },
            Change::Fault { on: true, .. } => "fault_start",
            Change::Fault { on: false, .. } => "fault_end",
            Change::Breaker { .. } => "breaker",
            Change::Outlier(_) => "outlier",
            Change::Discovery { .. } => "discovery",
            Change::Registry { .. } => "registry",
            Change::Autoscale { .. } => "autoscale",
            Change::CanaryWeight { .. } | Change::CanaryRollback { .. } => "canary",
            Change::RolloutStarted { .. } | Change::RolloutFinished { .. } => "rollout",
            Change::MessageLeft {
                dead_letter: true, ..
            } => "dead_letter",
            Change::MessageLeft { .. } => "message_dropped",
            Change::SagaStep { .. } | Change::SagaEnd { .. } => "saga",
        }
    }

    /// A fault's short label: its description up to the first `:` or `(`.
    pub fn fault_label(what: &str) -> &str {
        what.split([':', '(']).next().unwrap_or("").trim()
    }

    /// Reads a change back from its `kind` and `detail` columns: the inverse of `kind()`
    /// and `Display`.
    pub fn parse(kind: &str, detail: &str) -> Result<Change, String> {
        let bad = || format!("events.csv: cannot read a {kind} event from {detail:?}");
        let owned = |s: &str| -> Text { Cow::Owned(s.to_string()) };
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let float = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
        let dur = |s: &str| parse_duration(s).map_err(|_| bad());
        Ok(match kind {
            "run_start" => Change::RunStart {
                seed: num(detail.strip_prefix("seed ").ok_or_else(bad)?)?,
            },
            "warmup_end" if detail == "statistics start" => Change::WarmupEnd,
            "run_end" => Change::RunEnd { why: owned(detail) },
            "instance_up" | "instance_down" | "instance_draining" => Change::Instance {
                to: match kind {
                    "instance_up" => InstanceState::Up,
                    "instance_down" => InstanceState::Down,
                    _ => InstanceState::Draining,
                },
                why: owned(detail),
            },
            "fault_start" | "fault_end" => Change::Fault {
                on: kind == "fault_start",
                what: owned(detail),
            },
            "breaker" => {
                let (from, to) = detail.split_once(" -> ").ok_or_else(bad)?;
                let state = |name: &str| {
                    BREAKER_STATES
                        .into_iter()
                        .find(|&s| breaker_state_name(s) == name)
                        .ok_or_else(bad)
                };
                Change::Breaker {
                    from: state(from)?,
                    to: state(to)?,
                }
            }
            "outlier" => Change::Outlier(if detail == "unejected" {
                OutlierChange::Unejected
            } else if let Some(r) = detail.strip_prefix("ejected (") {
                OutlierChange::Ejected {
                    reason: owned(r.strip_suffix(')').ok_or_else(bad)?),
                }
            } else {
                let r = detail
                    .strip_prefix("ejection refused by max_ejection_percent (")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                OutlierChange::Refused { reason: owned(r) }
            }),
            "discovery" => {
                let rest = detail.strip_prefix("sees [").ok_or_else(bad)?;
                let (list, of) = rest.split_once("] of ").ok_or_else(bad)?;
                let sees = list
                    .split_whitespace()
                    .map(|k| k.parse::<u32>().map_err(|_| bad()))
                    .collect::<Result<Vec<u32>, String>>()?;
                Change::Discovery {
                    sees,
                    of: num(of)? as u32,
                }
            }
            "registry" => {
                let (from, rest) = detail.split_once(" -> ").ok_or_else(bad)?;
                let (to, why) = rest.split_once(" (").ok_or_else(bad)?;
                let status = |name: &str| {
                    REGISTRY_STATES
                        .into_iter()
                        .find(|s| s.name() == name)
                        .ok_or_else(bad)
                };
                Change::Registry {
                    from: status(from)?,
                    to: status(to)?,
                    why: owned(why.strip_suffix(')').ok_or_else(bad)?),
                }
            }
            "autoscale" => {
                let (from, rest) = detail.split_once(" -> ").ok_or_else(bad)?;
                let (to, rest) = rest.split_once(" (").ok_or_else(bad)?;
                let rest = rest.strip_suffix(')').ok_or_else(bad)?;
                let (metric, target) = rest.rsplit_once(", target ").ok_or_else(bad)?;
                let (metric, value) = metric.rsplit_once(' ').ok_or_else(bad)?;
                Change::Autoscale {
                    from: num(from)? as u32,
                    to: num(to)? as u32,
                    metric: owned(metric),
                    value: float(value)?,
                    target: float(target)?,
                }
            }
            "canary" => {
                if let Some(w) = detail.strip_prefix("weight ") {
                    let (from, to) = w.split_once("% -> ").ok_or_else(bad)?;
                    Change::CanaryWeight {
                        from_pct: float(from)?,
                        to_pct: float(to.strip_suffix('%').ok_or_else(bad)?)?,
                    }
                } else {
                    let rest = detail.strip_prefix("rolled back: ").ok_or_else(bad)?;
                    let (why, n) = rest.rsplit_once(" (").ok_or_else(bad)?;
                    Change::CanaryRollback {
                        why: owned(why),
                        requests: num(n.strip_suffix(" requests)").ok_or_else(bad)?)?,
                    }
                }
            }
            "rollout" => {
                if let Some(rest) = detail.strip_prefix("started: max surge ") {
                    let (surge, rest) = rest.split_once(", max unavailable ").ok_or_else(bad)?;
                    let (unavailable, drain) = rest.split_once(", ").ok_or_else(bad)?;
                    Change::RolloutStarted {
                        max_surge: num(surge)? as u32,
                        max_unavailable: num(unavailable)? as u32,
                        drain: match drain.strip_prefix("old instances drain for ") {
                            Some(g) => Some(dur(g)?),
                            None if drain == NO_DRAIN => None,
                            None => return Err(bad()),
                        },
                    }
                } else {
                    let rest = detail.strip_prefix("finished: ").ok_or_else(bad)?;
                    let (n, took) = rest
                        .split_once(" instances on the new version after ")
                        .ok_or_else(bad)?;
                    Change::RolloutFinished {
                        replicas: num(n)? as u32,
                        took: dur(took)?,
                    }
                }
            }
            "dead_letter" | "message_dropped" => {
                let rest = detail.strip_prefix("message ").ok_or_else(bad)?;
                let (id, n) = rest.split_once(" after ").ok_or_else(bad)?;
                let (id, poison) = match id.strip_suffix(" (poison)") {
                    Some(id) => (id, true),
                    None => (id, false),
                };
                Change::MessageLeft {
                    dead_letter: kind == "dead_letter",
                    message: num(id)?,
                    poison,
                    deliveries: num(n.strip_suffix(" deliveries").ok_or_else(bad)?)? as u32,
                }
            }
            "saga" => {
                if let Some(status) = detail.strip_prefix("ended ") {
                    Change::SagaEnd {
                        status: owned(status),
                    }
                } else {
                    let (what, attempt) = match detail.rsplit_once(", attempt ") {
                        Some((w, a)) => (w, num(a)? as u32),
                        None => (detail, 1),
                    };
                    let (step, which) = what.rsplit_once(' ').ok_or_else(bad)?;
                    Change::SagaStep {
                        step: owned(step),
                        compensation: match which {
                            "compensation" => true,
                            "action" => false,
                            _ => return Err(bad()),
                        },
                        attempt,
                    }
                }
            }
            _ => return Err(bad()),
        })
    }
}

const NO_DRAIN: &str = "old instances stop at once (no drain)";

impl fmt::Display for Change {
    /// The `detail` column, exactly as `events.csv` has always written it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::RunStart { seed } => write!(f, "seed {seed}"),
            Change::WarmupEnd => f.write_str("statistics start"),
            Change::RunEnd { why } | Change::Instance { why, .. } => f.write_str(why),
            Change::Fault { what, .. } => f.write_str(what),
            Change::Breaker { from, to } => write!(
                f,
                "{} -> {}",
                breaker_state_name(*from),
                breaker_state_name(*to)
            ),
            Change::Outlier(OutlierChange::Ejected { reason }) => write!(f, "ejected ({reason})"),
            Change::Outlier(OutlierChange::Refused { reason }) => {
                write!(f, "ejection refused by max_ejection_percent ({reason})")
            }
            Change::Outlier(OutlierChange::Unejected) => f.write_str("unejected"),
            Change::Discovery { sees, of } => {
                f.write_str("sees [")?;
                for (k, i) in sees.iter().enumerate() {
                    if k > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{i}")?;
                }
                write!(f, "] of {of}")
            }
            Change::Registry { from, to, why } => {
                write!(f, "{} -> {} ({why})", from.name(), to.name())
            }
            Change::Autoscale {
                from,
                to,
                metric,
                value,
                target,
            } => write!(f, "{from} -> {to} ({metric} {value:.2}, target {target})"),
            Change::CanaryWeight { from_pct, to_pct } => {
                write!(f, "weight {from_pct}% -> {to_pct}%")
            }
            Change::CanaryRollback { why, requests } => {
                write!(f, "rolled back: {why} ({requests} requests)")
            }
            Change::RolloutStarted {
                max_surge,
                max_unavailable,
                drain,
            } => {
                write!(
                    f,
                    "started: max surge {max_surge}, max unavailable {max_unavailable}, "
                )?;
                match drain {
                    Some(grace) => write!(f, "old instances drain for {grace}"),
                    None => f.write_str(NO_DRAIN),
                }
            }
            Change::RolloutFinished { replicas, took } => write!(
                f,
                "finished: {replicas} instances on the new version after {took}"
            ),
            Change::MessageLeft {
                message,
                poison,
                deliveries,
                ..
            } => write!(
                f,
                "message {message}{} after {deliveries} deliveries",
                if *poison { " (poison)" } else { "" }
            ),
            Change::SagaStep {
                step,
                compensation,
                attempt,
            } => {
                let which = if *compensation {
                    "compensation"
                } else {
                    "action"
                };
                write!(f, "{step} {which}")?;
                if *attempt > 1 {
                    write!(f, ", attempt {attempt}")?;
                }
                Ok(())
            }
            Change::SagaEnd { status } => write!(f, "ended {status}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Change) {
        let text = c.to_string();
        let back = Change::parse(c.kind(), &text).unwrap();
        assert_eq!(back.to_string(), text);
        assert_eq!(back.kind(), c.kind());
        assert_eq!(back, c, "{text}");
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let b = Cow::Borrowed;
        for c in [
            Change::RunStart { seed: 42 },
            Change::WarmupEnd,
            Change::RunEnd {
                why: b("reached the scenario duration"),
            },
            Change::Instance {
                to: InstanceState::Draining,
                why: b("replaced by the rollout"),
            },
            Change::Fault {
                on: false,
                what: b("crash: in-flight work lost"),
            },
            Change::Breaker {
                from: breaker::State::HalfOpen,
                to: breaker::State::ForcedOpen,
            },
            Change::Outlier(OutlierChange::Ejected {
                reason: b("consecutive_5xx"),
            }),
            Change::Outlier(OutlierChange::Refused {
                reason: b("success_rate"),
            }),
            Change::Outlier(OutlierChange::Unejected),
            Change::Discovery {
                sees: vec![0, 2, 3],
                of: 4,
            },
            Change::Discovery {
                sees: vec![],
                of: 2,
            },
            Change::Registry {
                from: registry::Status::Healthy,
                to: registry::Status::Unhealthy,
                why: b("checks failing"),
            },
            Change::Autoscale {
                from: 2,
                to: 5,
                metric: b("in flight per instance"),
                value: 12.25,
                target: 4.5,
            },
            Change::CanaryWeight {
                from_pct: 5.0,
                to_pct: 12.5,
            },
            Change::CanaryRollback {
                why: b("error rate 0.120 > 0.05 over 30s"),
                requests: 811,
            },
            Change::RolloutStarted {
                max_surge: 1,
                max_unavailable: 0,
                drain: Some(SimDuration::from_millis(1500)),
            },
            Change::RolloutStarted {
                max_surge: 2,
                max_unavailable: 1,
                drain: None,
            },
            Change::RolloutFinished {
                replicas: 4,
                took: SimDuration::from_secs(95),
            },
            Change::MessageLeft {
                dead_letter: true,
                message: 17,
                poison: true,
                deliveries: 5,
            },
            Change::SagaStep {
                step: b("reserve stock"),
                compensation: true,
                attempt: 3,
            },
            Change::SagaEnd {
                status: b("compensated"),
            },
        ] {
            round_trip(c);
        }
    }

    #[test]
    fn a_detail_that_does_not_fit_its_kind_is_an_error() {
        assert!(Change::parse("breaker", "closed to open").is_err());
        assert!(Change::parse("breaker", "closed -> ajar").is_err());
        assert!(Change::parse("nonsense", "x").is_err());
        assert!(Change::parse("saga", "step sideways").is_err());
    }
}
