//! Probability distributions of durations (service times, network latency, think times), sampled in nanoseconds.

use crate::rng::SimRng;
use crate::time::SimDuration;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};

/// z-score of the 99th percentile of the standard normal distribution.
pub const Z_P99: f64 = 2.326_347_874_040_841;

/// A distribution of non-negative durations. Built (and checked) by the scenario
/// layer through the constructors below; sampling never fails and never returns a
/// negative duration.
#[derive(Clone, Debug)]
pub enum Dist {
    /// Always the same value.
    Constant(SimDuration),
    /// Uniform on [lo, hi] nanoseconds.
    Uniform {
        /// Lower bound, ns.
        lo_ns: f64,
        /// Upper bound, ns.
        hi_ns: f64,
    },
    /// Exponential.
    Exp {
        /// Mean, ns.
        mean_ns: f64,
        /// Ziggurat sampler with rate 1/mean.
        sampler: Exp<f64>,
    },
    /// Normal, truncated at zero by resampling (so the shape stays normal above zero).
    Normal {
        /// Mean of the untruncated normal, ns.
        mu_ns: f64,
        /// Standard deviation, ns.
        sigma_ns: f64,
        /// Sampler.
        sampler: Normal<f64>,
    },
    /// Log-normal: ln(X in ns) is normal with mean `mu` and standard deviation `sigma`.
    LogNormal {
        /// Mean of ln(ns).
        mu: f64,
        /// Standard deviation of ln(ns).
        sigma: f64,
        /// Sampler.
        sampler: LogNormal<f64>,
    },
    /// Pareto (type I): minimum `scale_ns`, tail index `shape`.
    Pareto {
        /// Minimum value, ns.
        scale_ns: f64,
        /// Shape (tail index); the mean is finite only above 1.
        shape: f64,
        /// Sampler.
        sampler: Pareto<f64>,
    },
    /// A weighted mixture: `cumulative[i]` is the normalised cumulative weight of `parts[i]`.
    Mixture {
        /// Cumulative weights, the last one exactly 1.
        cumulative: Vec<f64>,
        /// The component distributions.
        parts: Vec<Dist>,
    },
    /// Each listed value equally likely.
    Empirical(Vec<SimDuration>),
}

/// Why distribution parameters were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct DistError(pub String);

/// Draws that still fall below zero after this many tries of a truncated normal return 0.
const NORMAL_RESAMPLE_LIMIT: u32 = 64;

fn positive(what: &str, x: f64) -> Result<f64, DistError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(DistError(format!(
            "{what} must be a positive finite number, got {x}"
        )))
    }
}

impl Dist {
    /// Uniform on [lo, hi].
    pub fn uniform(lo: SimDuration, hi: SimDuration) -> Result<Dist, DistError> {
        if lo > hi {
            return Err(DistError(format!(
                "uniform needs min <= max, got min {lo} > max {hi}"
            )));
        }
        Ok(Dist::Uniform {
            lo_ns: lo.0 as f64,
            hi_ns: hi.0 as f64,
        })
    }

    /// Exponential with the given mean.
    pub fn exp(mean: SimDuration) -> Result<Dist, DistError> {
        let mean_ns = positive("exp mean", mean.0 as f64)?;
        let sampler = Exp::new(1.0 / mean_ns).map_err(|e| DistError(e.to_string()))?;
        Ok(Dist::Exp { mean_ns, sampler })
    }

    /// Normal with mean and standard deviation, truncated at zero.
    pub fn normal(mean: SimDuration, std: SimDuration) -> Result<Dist, DistError> {
        let (mu_ns, sigma_ns) = (mean.0 as f64, std.0 as f64);
        let sampler = Normal::new(mu_ns, sigma_ns).map_err(|e| DistError(e.to_string()))?;
        Ok(Dist::Normal {
            mu_ns,
            sigma_ns,
            sampler,
        })
    }

    /// Log-normal with the given mean and shape `sigma` (of ln X): mu = ln(mean) − sigma²/2.
    pub fn lognormal_mean_sigma(mean: SimDuration, sigma: f64) -> Result<Dist, DistError> {
        let mean_ns = positive("lognormal mean", mean.0 as f64)?;
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(DistError(format!(
                "lognormal sigma must be >= 0 and finite, got {sigma}"
            )));
        }
        Self::lognormal(mean_ns.ln() - sigma * sigma / 2.0, sigma)
    }

    /// Log-normal with the given median and 99th percentile: mu = ln(median), sigma = ln(p99/median)/z₀.₉₉.
    pub fn lognormal_median_p99(median: SimDuration, p99: SimDuration) -> Result<Dist, DistError> {
        let m = positive("lognormal median", median.0 as f64)?;
        let p = positive("lognormal p99", p99.0 as f64)?;
        if p < m {
            return Err(DistError(format!(
                "lognormal needs p99 >= median, got p99 {p99} < median {median}"
            )));
        }
        Self::lognormal(m.ln(), (p / m).ln() / Z_P99)
    }

    fn lognormal(mu: f64, sigma: f64) -> Result<Dist, DistError> {
        let sampler = LogNormal::new(mu, sigma).map_err(|e| DistError(e.to_string()))?;
        Ok(Dist::LogNormal { mu, sigma, sampler })
    }

    /// Pareto with minimum `scale` and tail index `shape`.
    pub fn pareto(scale: SimDuration, shape: f64) -> Result<Dist, DistError> {
        let scale_ns = positive("pareto scale", scale.0 as f64)?;
        let shape = positive("pareto shape", shape)?;
        let sampler = Pareto::new(scale_ns, shape).map_err(|e| DistError(e.to_string()))?;
        Ok(Dist::Pareto {
            scale_ns,
            shape,
            sampler,
        })
    }

    /// A mixture of `(weight, dist)` parts; weights are normalised.
    pub fn mixture(parts: Vec<(f64, Dist)>) -> Result<Dist, DistError> {
        if parts.is_empty() {
            return Err(DistError("a mixture needs at least one part".into()));
        }
        let mut total = 0.0;
        for (w, _) in &parts {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(DistError(format!(
                    "mixture weights must be >= 0 and finite, got {w}"
                )));
            }
            total += w;
        }
        if total <= 0.0 {
            return Err(DistError("mixture weights add up to zero".into()));
        }
        let mut acc = 0.0;
        let mut cumulative = Vec::with_capacity(parts.len());
        let mut dists = Vec::with_capacity(parts.len());
        for (w, d) in parts {
            acc += w / total;
            cumulative.push(acc);
            dists.push(d);
        }
        *cumulative.last_mut().expect("non-empty") = 1.0;
        Ok(Dist::Mixture {
            cumulative,
            parts: dists,
        })
    }

    /// Equally likely values.
    pub fn empirical(values: Vec<SimDuration>) -> Result<Dist, DistError> {
        if values.is_empty() {
            return Err(DistError(
                "an empirical distribution needs at least one value".into(),
            ));
        }
        Ok(Dist::Empirical(values))
    }

    /// One draw.
    #[inline]
    pub fn sample(&self, rng: &mut SimRng) -> SimDuration {
        let ns = match self {
            Dist::Constant(d) => return *d,
            Dist::Uniform { lo_ns, hi_ns } => lo_ns + (hi_ns - lo_ns) * rng.unit(),
            Dist::Exp { sampler, .. } => sampler.sample(rng),
            Dist::Normal { sampler, .. } => {
                let mut x = sampler.sample(rng);
                let mut tries = 1;
                while x < 0.0 && tries < NORMAL_RESAMPLE_LIMIT {
                    x = sampler.sample(rng);
                    tries += 1;
                }
                x.max(0.0)
            }
            Dist::LogNormal { sampler, .. } => sampler.sample(rng),
            Dist::Pareto { sampler, .. } => sampler.sample(rng),
            Dist::Mixture { cumulative, parts } => {
                let u = rng.unit();
                let i = cumulative.partition_point(|&c| c <= u).min(parts.len() - 1);
                return parts[i].sample(rng);
            }
            Dist::Empirical(values) => return values[rng.index(values.len())],
        };
        to_duration(ns)
    }

    /// The mean in nanoseconds (analytic; for static analysis, never for the run).
    /// `None` when the mean is infinite (Pareto with shape ≤ 1).
    pub fn mean_ns(&self) -> Option<f64> {
        match self {
            Dist::Constant(d) => Some(d.0 as f64),
            Dist::Uniform { lo_ns, hi_ns } => Some((lo_ns + hi_ns) / 2.0),
            Dist::Exp { mean_ns, .. } => Some(*mean_ns),
            Dist::Normal {
                mu_ns, sigma_ns, ..
            } => {
                // Truncated at zero: mu + sigma * phi(a) / (1 - Phi(a)), with a = -mu/sigma.
                if *sigma_ns == 0.0 {
                    return Some(mu_ns.max(0.0));
                }
                let a = -mu_ns / sigma_ns;
                let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
                let upper_tail = 0.5 * erfc(a / std::f64::consts::SQRT_2);
                Some(mu_ns + sigma_ns * phi / upper_tail)
            }
            Dist::LogNormal { mu, sigma, .. } => Some((mu + sigma * sigma / 2.0).exp()),
            Dist::Pareto {
                scale_ns, shape, ..
            } => (*shape > 1.0).then(|| shape * scale_ns / (shape - 1.0)),
            Dist::Mixture { cumulative, parts } => {
                let mut prev = 0.0;
                let mut total = 0.0;
                for (c, p) in cumulative.iter().zip(parts) {
                    total += (c - prev) * p.mean_ns()?;
                    prev = *c;
                }
                Some(total)
            }
            Dist::Empirical(v) => Some(v.iter().map(|d| d.0 as f64).sum::<f64>() / v.len() as f64),
        }
    }

    /// The largest value a draw can take, ns; `None` when unbounded.
    pub fn max_ns(&self) -> Option<f64> {
        match self {
            Dist::Constant(d) => Some(d.0 as f64),
            Dist::Uniform { hi_ns, .. } => Some(*hi_ns),
            Dist::Empirical(v) => v.iter().map(|d| d.0 as f64).reduce(f64::max),
            Dist::Mixture { parts, .. } => parts
                .iter()
                .map(Dist::max_ns)
                .try_fold(0.0f64, |m, x| Some(m.max(x?))),
            _ => None,
        }
    }
}

/// Converts a float number of nanoseconds to a duration, clamping at the u64 range.
#[inline]
fn to_duration(ns: f64) -> SimDuration {
    if ns.is_nan() || ns <= 0.0 {
        SimDuration(0)
    } else if ns >= u64::MAX as f64 {
        SimDuration(u64::MAX)
    } else {
        // Rounds half up; cheaper than f64::round on the hot path.
        SimDuration((ns + 0.5) as u64)
    }
}

/// The complementary error function (`statrs`; relative error about 5e-11).
pub fn erfc(x: f64) -> f64 {
    statrs::function::erf::erfc(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NS_PER_MS;

    fn sample_mean(d: &Dist, n: usize) -> f64 {
        let mut rng = SimRng::for_component(1, "test");
        (0..n).map(|_| d.sample(&mut rng).0 as f64).sum::<f64>() / n as f64
    }

    /// Each distribution's sample mean over 200,000 draws lies within 2 % of its
    /// analytic mean (the standard error is below 0.5 % for all of these shapes).
    #[test]
    fn sample_means_match_analytic_means() {
        let ms = |x| SimDuration(x * NS_PER_MS);
        let cases = vec![
            Dist::Constant(ms(5)),
            Dist::uniform(ms(1), ms(3)).unwrap(),
            Dist::exp(ms(10)).unwrap(),
            Dist::normal(ms(10), ms(2)).unwrap(),
            Dist::normal(ms(1), ms(2)).unwrap(), // heavily truncated
            Dist::lognormal_mean_sigma(ms(10), 0.5).unwrap(),
            Dist::lognormal_median_p99(ms(10), ms(50)).unwrap(),
            Dist::pareto(ms(1), 3.0).unwrap(),
            Dist::mixture(vec![
                (0.95, Dist::Constant(ms(5))),
                (0.05, Dist::Constant(ms(200))),
            ])
            .unwrap(),
            Dist::empirical(vec![ms(1), ms(2), ms(6)]).unwrap(),
        ];
        for d in cases {
            let want = d.mean_ns().unwrap();
            let got = sample_mean(&d, 200_000);
            assert!(
                (got - want).abs() / want < 0.02,
                "{d:?}: sample mean {got} vs analytic {want}"
            );
        }
    }

    #[test]
    fn median_p99_lognormal_has_that_p99() {
        let d =
            Dist::lognormal_median_p99(SimDuration(10 * NS_PER_MS), SimDuration(50 * NS_PER_MS))
                .unwrap();
        let mut rng = SimRng::for_component(3, "p99");
        let mut xs: Vec<u64> = (0..100_000).map(|_| d.sample(&mut rng).0).collect();
        xs.sort_unstable();
        let p50 = xs[50_000] as f64 / NS_PER_MS as f64;
        let p99 = xs[99_000] as f64 / NS_PER_MS as f64;
        assert!((p50 - 10.0).abs() < 0.3, "median {p50}");
        assert!((p99 - 50.0).abs() < 2.5, "p99 {p99}");
    }

    #[test]
    fn invalid_parameters_are_errors() {
        assert!(Dist::exp(SimDuration(0)).is_err());
        assert!(Dist::uniform(SimDuration(5), SimDuration(1)).is_err());
        assert!(Dist::lognormal_mean_sigma(SimDuration(5), -1.0).is_err());
        assert!(Dist::lognormal_median_p99(SimDuration(5), SimDuration(1)).is_err());
        assert!(Dist::pareto(SimDuration(5), 0.0).is_err());
        assert!(Dist::mixture(vec![]).is_err());
        assert!(Dist::mixture(vec![(0.0, Dist::Constant(SimDuration(1)))]).is_err());
        assert!(Dist::empirical(vec![]).is_err());
    }

    #[test]
    fn erfc_known_values() {
        // erfc(1) = 0.157299207050285..., erfc(3) = 2.209049699858544e-5, to 1e-10 relative
        // (statrs is good to about 5e-11 here; the old polynomial to 1.2e-7).
        assert_eq!(erfc(0.0), 1.0);
        let rel = |x: f64, want: f64| (erfc(x) / want - 1.0).abs();
        assert!(rel(1.0, 0.157_299_207_050_285) < 1e-10);
        assert!(rel(-1.0, 1.842_700_792_949_715) < 1e-10);
        assert!(rel(3.0, 2.209_049_699_858_544e-5) < 1e-10);
    }
}
