//! Distributions (`{ dist = "exp", mean = "10ms" }` and the rest).

use super::*;

/// Fields of `RawDist` by name, with whether each is set.
pub(super) fn dist_fields(d: &RawDist) -> [(&'static str, bool); 12] {
    [
        ("value", d.value.is_some()),
        ("min", d.min.is_some()),
        ("max", d.max.is_some()),
        ("mean", d.mean.is_some()),
        ("std", d.std.is_some()),
        ("sigma", d.sigma.is_some()),
        ("median", d.median.is_some()),
        ("p99", d.p99.is_some()),
        ("scale", d.scale.is_some()),
        ("shape", d.shape.is_some()),
        ("parts", d.parts.is_some()),
        ("values", d.values.is_some()),
    ]
}

/// The distributions and the parameters each takes (`exponential` is another name for `exp`).
const DISTS: KindTable = KindTable {
    key: "dist",
    kinds: &[
        ("constant", &["value"]),
        ("uniform", &["min", "max"]),
        ("exp", &["mean"]),
        ("normal", &["mean", "std"]),
        ("lognormal", &["mean", "sigma"]),
        ("pareto", &["scale", "shape"]),
        ("mixture", &["parts"]),
        ("empirical", &["values"]),
    ],
};

/// A lognormal's other parametrisation.
const LOGNORMAL_BY_QUANTILES: &[&str] = &["median", "p99"];

/// Builds a distribution, reporting missing, unused and invalid parameters.
pub fn build_dist(cx_problems: &mut impl DistSink, d: &RawDist, path: TomlPath) -> Option<Dist> {
    let kind = match d.dist.as_str() {
        "exponential" => "exp",
        other => other,
    };
    let allowed = match DISTS.takes(kind) {
        // A lognormal is given by its median and p99 or by the mean and sigma of its log.
        Some(_) if kind == "lognormal" && (d.median.is_some() || d.p99.is_some()) => {
            LOGNORMAL_BY_QUANTILES
        }
        Some(fields) => fields,
        None => {
            cx_problems.push(
                path.key("dist"),
                unknown("distribution", &d.dist, &DISTS.names(), "valid", ""),
            );
            return None;
        }
    };
    let mut ok = true;
    for (field, message) in DISTS.unused(&d.dist, allowed, &dist_fields(d)) {
        cx_problems.push(path.key(field), message);
        ok = false;
    }
    for field in allowed {
        let set = dist_fields(d).iter().any(|(f, s)| f == field && *s);
        if !set {
            cx_problems.push(
                path.key(field),
                format!(
                    "missing `{field}` for dist = {:?} (it takes: {})",
                    d.dist,
                    allowed.join(", ")
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let built = match d.dist.as_str() {
        "constant" => Ok(Dist::Constant(d.value.expect("checked"))),
        "uniform" => Dist::uniform(d.min.expect("checked"), d.max.expect("checked")),
        "exp" | "exponential" => Dist::exp(d.mean.expect("checked")),
        "normal" => Dist::normal(d.mean.expect("checked"), d.std.expect("checked")),
        "lognormal" if d.median.is_some() => {
            Dist::lognormal_median_p99(d.median.expect("checked"), d.p99.expect("checked"))
        }
        "lognormal" => {
            Dist::lognormal_mean_sigma(d.mean.expect("checked"), d.sigma.expect("checked"))
        }
        "pareto" => Dist::pareto(d.scale.expect("checked"), d.shape.expect("checked")),
        "mixture" => {
            let mut parts = Vec::new();
            for (i, p) in d.parts.as_deref().expect("checked").iter().enumerate() {
                parts.push((
                    p.weight,
                    build_dist(cx_problems, &p.of, path.key("parts").index(i).key("of"))?,
                ));
            }
            Dist::mixture(parts)
        }
        "empirical" => Dist::empirical(d.values.clone().expect("checked")),
        _ => unreachable!("kind checked above"),
    };
    match built {
        Ok(dist) => Some(dist),
        Err(e) => {
            cx_problems.push(path, e.0);
            None
        }
    }
}

/// Where `build_dist` reports problems (lets it serve both validation and tests).
pub trait DistSink {
    /// Records one problem.
    fn push(&mut self, path: TomlPath, message: String);
}

impl DistSink for Ctx {
    fn push(&mut self, path: TomlPath, message: String) {
        self.err(path, message);
    }
}

impl DistSink for Vec<Problem> {
    fn push(&mut self, path: TomlPath, message: String) {
        Vec::push(self, Problem { path, message });
    }
}
