//! Traffic shifts (a canary's, a strangler-fig migration's): weight steps, routes, rollback.

use super::*;

/// The fields a shift is built from, wherever they sit in the file.
pub(super) struct RawShift<'a> {
    pub(super) weights: &'a [RawWeightStep],
    pub(super) switch_at: Option<SimDuration>,
    pub(super) routes: &'a [RawRoute],
    pub(super) rollback: Option<&'a RawRollback>,
}

/// What the two sides are called in routes, and what the shift is called in messages.
#[derive(Clone, Copy)]
pub(super) struct Sides {
    old: &'static str,
    new: &'static str,
    what: &'static str,
}

impl Sides {
    pub(super) const CANARY: Sides = Sides {
        old: "stable",
        new: "canary",
        what: "a canary",
    };
    pub(super) const MIGRATION: Sides = Sides {
        old: "old",
        new: "new",
        what: "a migration",
    };
}

/// Builds a shift, reporting what is wrong at `at` (the table holding its fields).
pub(super) fn build_shift(
    cx: &mut Ctx,
    at: &TomlPath,
    raw: RawShift,
    header_names: &[String],
    sides: Sides,
) -> ShiftSpec {
    let mut weights = Vec::new();
    if let Some(t) = raw.switch_at {
        if !raw.weights.is_empty() {
            cx.err(
                at.key("switch_at"),
                "give either switch_at (blue-green) or weights, not both",
            );
        }
        weights.push((SimTime::ZERO, 0.0));
        weights.push((SimTime::ZERO.after(t), 100.0));
    }
    for (k, w) in raw.weights.iter().enumerate() {
        if !(0.0..=100.0).contains(&w.weight) {
            cx.err(
                at.key("weights").index(k).key("weight"),
                format!("a weight is a percent in [0, 100], got {}", w.weight),
            );
        }
        if k > 0 && w.at <= raw.weights[k - 1].at {
            cx.err(
                at.key("weights").index(k).key("at"),
                "weight steps must be in increasing time",
            );
        }
        weights.push((SimTime::ZERO.after(w.at), w.weight));
    }
    if weights.is_empty() {
        cx.err(
            at.key("weights"),
            format!(
                "{} needs at least one weight step, e.g. [{{ at = \"0s\", weight = 5 }}], or switch_at",
                sides.what
            ),
        );
    } else if weights[0].0 != SimTime::ZERO {
        // Before the first step the new side takes no traffic.
        weights.insert(0, (SimTime::ZERO, 0.0));
    }
    let mut routes = Vec::new();
    for (k, r) in raw.routes.iter().enumerate() {
        let rp = at.key("routes").index(k);
        let canary = match r.to.as_str() {
            t if t == sides.new => true,
            t if t == sides.old => false,
            other => {
                cx.err(
                    rp.key("to"),
                    format!(
                        "a route goes to \"{}\" or \"{}\", got {other:?}",
                        sides.new, sides.old
                    ),
                );
                continue;
            }
        };
        let matches = match (&r.header, r.keys) {
            (Some(h), None) => match header_names.iter().position(|n| n == h) {
                Some(bit) => RouteMatch::Header(bit as u8),
                None => {
                    let known = if header_names.is_empty() {
                        "none: set headers = { NAME = share } on a workload".to_string()
                    } else {
                        header_names.join(", ")
                    };
                    cx.err(
                        rp.key("header"),
                        format!("no workload sends header {h:?}; headers sent: {known}"),
                    );
                    continue;
                }
            },
            (None, Some([lo, hi])) if lo <= hi => RouteMatch::Keys(lo, hi),
            (None, Some([lo, hi])) => {
                cx.err(
                    rp.key("keys"),
                    format!("keys = [lo, hi] needs lo <= hi, got [{lo}, {hi}]"),
                );
                continue;
            }
            _ => {
                cx.err(
                    rp.clone(),
                    "a route matches exactly one of header = \"NAME\" or keys = [lo, hi]",
                );
                continue;
            }
        };
        routes.push(RouteSpec { matches, canary });
    }
    let rollback = raw.rollback.map(|r| {
        if r.error_rate.is_none() && r.p99.is_none() {
            cx.err(at.key("rollback"), "a rollback needs error_rate and/or p99");
        }
        if r.window.0 == 0 {
            cx.err(
                at.key("rollback").key("window"),
                "window must be longer than 0s",
            );
        }
        RollbackSpec {
            error_rate: r.error_rate,
            p99: r.p99,
            window: r.window,
            min_requests: r.min_requests,
        }
    });
    ShiftSpec {
        weights,
        rollback,
        routes,
    }
}

/// The `[[migration]]` tables, resolved (`services` by name).
pub(super) fn build_migrations(
    cx: &mut Ctx,
    raw: &RawScenario,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
    header_names: &[String],
) -> Vec<MigrationSpec> {
    let mut out = Vec::new();
    for (i, m) in raw.migration.iter().enumerate() {
        let p = root().key("migration").index(i);
        if raw.migration[..i].iter().any(|o| o.name == m.name) {
            cx.err(
                p.key("name"),
                format!("migration {:?} is named twice", m.name),
            );
        }
        let from = resolve(cx, &m.from, p.key("from"));
        let to = resolve(cx, &m.to, p.key("to"));
        if from.is_some() && from == to {
            cx.err(
                p.key("to"),
                "a migration moves calls to another service than `from`",
            );
        }
        let shift = build_shift(
            cx,
            &p,
            RawShift {
                weights: &m.weights,
                switch_at: m.switch_at,
                routes: &m.routes,
                rollback: m.rollback.as_ref(),
            },
            header_names,
            Sides::MIGRATION,
        );
        if let (Some(from), Some(to)) = (from, to) {
            out.push(MigrationSpec {
                name: m.name.clone(),
                label: format!("migration:{}", m.name),
                from,
                to,
                shift,
            });
        }
    }
    out
}

/// A call step naming a migration: the call as written goes to the old service; a copy with
/// the same options goes to the replacement.
pub(super) fn migrated_call(
    cx: &mut Ctx,
    raw: &RawScenario,
    name: &str,
    old: CallSpec,
    path: TomlPath,
    resolve: &dyn Fn(&mut Ctx, &str, TomlPath) -> Option<ServiceId>,
) -> Option<Step> {
    let Some(k) = raw.migration.iter().position(|m| m.name == name) else {
        let known: Vec<&str> = raw.migration.iter().map(|m| m.name.as_str()).collect();
        cx.err(
            path.key("migrate"),
            unknown(
                "migration",
                name,
                &known,
                "migrations",
                "migrations: none (add a [[migration]])",
            ),
        );
        return None;
    };
    let m = &raw.migration[k];
    let mp = root().key("migration").index(k);
    let from = resolve(cx, &m.from, mp.key("from"))?;
    if old.to != from {
        cx.err(
            path.key("to"),
            format!(
                "migration {name:?} moves calls to {:?}: this call goes to {:?}",
                m.from, raw.service[old.to.0 as usize].name
            ),
        );
        return None;
    }
    if old.publish.is_some() || old.write.is_some() {
        cx.err(
            path.key("migrate"),
            "a migration moves calls, not publishes",
        );
        return None;
    }
    let to = resolve(cx, &m.to, mp.key("to"))?;
    let endpoint = resolve_endpoint(cx, raw, to, m.endpoint.as_deref(), mp.key("endpoint"))?;
    let new = CallSpec {
        to,
        endpoint,
        ..old.clone()
    };
    Some(Step::Migrate(k as u32, Box::new([old, new])))
}
