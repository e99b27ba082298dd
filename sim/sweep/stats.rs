//! Mean, standard deviation and a 95 % confidence interval (Student's t) of replications.

/// The summary of one metric over a point's replications.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub sd: f64,
    /// Lower end of the 95 % interval of the mean (the mean itself for one value).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// The t quantile for a 95 % two-sided interval with `dof` degrees of freedom (Student's t
/// from `statrs`, exact for every `dof`; infinite for none).
pub fn t975(dof: usize) -> f64 {
    t_quantile(0.975, dof)
}

/// The `p` quantile of Student's t with `dof` degrees of freedom (infinite for none).
pub fn t_quantile(p: f64, dof: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
    if dof == 0 {
        return f64::INFINITY;
    }
    let v = dof as f64;
    if dof > 50_000 {
        // statrs' inverse loses digits here (t(10^6) came out below the normal's quantile):
        // the Cornish-Fisher expansion around the normal is exact to 1e-12 at this size.
        let z = Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.inverse_cdf(p));
        let (z3, z5) = (z.powi(3), z.powi(5));
        return z + (z3 + z) / (4.0 * v) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v);
    }
    StudentsT::new(0.0, 1.0, v).map_or(f64::INFINITY, |t| t.inverse_cdf(p))
}

impl Summary {
    /// Summarises values, summed in their given order (a fixed order makes fixed bytes).
    pub fn of(xs: &[f64]) -> Summary {
        let n = xs.len();
        if n == 0 {
            return Summary {
                mean: f64::NAN,
                sd: f64::NAN,
                lo: f64::NAN,
                hi: f64::NAN,
            };
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Summary {
                mean,
                sd: 0.0,
                lo: mean,
                hi: mean,
            };
        }
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let half = t975(n - 1) * sd / (n as f64).sqrt();
        Summary {
            mean,
            sd,
            lo: mean - half,
            hi: mean + half,
        }
    }
}

/// A number for CSV: rounded to 9 significant decimals' worth, trailing zeros dropped.
pub fn fmt(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let r = (x * 1e6).round() / 1e6;
    let s = format!("{r:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_and_interval() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.mean, 3.0);
        assert!((s.sd - 1.5811388).abs() < 1e-6);
        // t(4) = 2.776: half width 2.776 × 1.5811 / √5 = 1.963.
        assert!((s.hi - 4.963).abs() < 1e-3 && (s.lo - 1.037).abs() < 1e-3);
        assert_eq!(Summary::of(&[7.0]).lo, 7.0);
        assert_eq!(fmt(0.1 + 0.2), "0.3");
        assert_eq!(fmt(-0.0000001), "0");
    }
    #[test]
    fn t_quantiles_match_the_printed_tables_at_every_size() {
        // Two-sided 95 % critical values, as printed (3 decimals) in any table of Student's t;
        // 31..120 degrees of freedom used to fall back to 2.000 or 1.980 here.
        for (dof, t) in [
            (1, 12.706),
            (2, 4.303),
            (5, 2.571),
            (10, 2.228),
            (30, 2.042),
            (40, 2.021),
            (60, 2.000),
            (100, 1.984),
            (120, 1.980),
            (1000, 1.962),
        ] {
            assert!((t975(dof) - t).abs() < 5e-4, "{dof}: {}", t975(dof));
        }
        assert!(t975(0).is_infinite());
        // Many: towards the normal's 1.959964 (t(10^4) = 1.9602012, t(10^5) = 1.9599876,
        // t(10^6) = 1.9599663), on both sides of the switch to the expansion.
        for (dof, t) in [
            (10_000, 1.960_201_2),
            (50_000, 1.960_011_9),
            (50_001, 1.960_011_9),
            (100_000, 1.959_987_6),
            (1_000_000, 1.959_966_3),
        ] {
            assert!((t975(dof) - t).abs() < 2e-6, "{dof}: {}", t975(dof));
        }
    }
}
