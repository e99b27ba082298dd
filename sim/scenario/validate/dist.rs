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

/// Builds a distribution, reporting missing, unused and invalid parameters.
pub fn build_dist(cx_problems: &mut impl DistSink, d: &RawDist, path: TomlPath) -> Option<Dist> {
    let kinds = [
        "constant",
        "uniform",
        "exp",
        "normal",
        "lognormal",
        "pareto",
        "mixture",
        "empirical",
    ];
    let allowed: &[&str] = match d.dist.as_str() {
        "constant" => &["value"],
        "uniform" => &["min", "max"],
        "exp" | "exponential" => &["mean"],
        "normal" => &["mean", "std"],
        "lognormal" => {
            if d.median.is_some() || d.p99.is_some() {
                &["median", "p99"]
            } else {
                &["mean", "sigma"]
            }
        }
        "pareto" => &["scale", "shape"],
        "mixture" => &["parts"],
        "empirical" => &["values"],
        other => {
            cx_problems.push(
                path.key("dist"),
                unknown("distribution", other, &kinds, "valid", ""),
            );
            return None;
        }
    };
    let mut ok = true;
    for (field, set) in dist_fields(d) {
        if set && !allowed.contains(&field) {
            cx_problems.push(
                path.key(field),
                format!(
                    "`{field}` is not used by dist = {:?}; it takes: {}",
                    d.dist,
                    allowed.join(", ")
                ),
            );
            ok = false;
        }
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
