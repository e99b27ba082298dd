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

/// Two-sided 97.5 % quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The t quantile for a 95 % two-sided interval with `dof` degrees of freedom.
pub fn t975(dof: usize) -> f64 {
    match dof {
        0 => f64::INFINITY,
        1..=30 => T975[dof - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
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
}
