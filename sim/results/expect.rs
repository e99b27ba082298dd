//! The bound an `[[expect]]` block puts on a metric, and how a measured value is judged against it (used by `faultline check` and the HTML report).

use serde_json::Value;

/// What a metric must satisfy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Strictly below.
    Below(f64),
    /// Strictly above.
    Above(f64),
    /// Within [lo, hi].
    Between(f64, f64),
    /// The mean over the seeds is `target`, within a tolerance.
    Mean {
        /// The value expected.
        target: f64,
        /// How close the mean must come.
        tolerance: Tolerance,
    },
}

/// How close a mean over seeds must come to its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// Within this many standard errors of the mean (sd / sqrt(n)).
    StandardErrors(f64),
    /// Within this share of the target (0.1: 10 %).
    Relative(f64),
    /// Within this distance.
    Absolute(f64),
}

impl Bound {
    /// Whether one value `x` satisfies it. A mean judged in standard errors needs several
    /// seeds: one value never holds it (`faultline check` judges it over its seeds).
    pub fn holds(self, x: f64) -> bool {
        match self {
            Bound::Below(b) => x < b,
            Bound::Above(a) => x > a,
            Bound::Between(lo, hi) => (lo..=hi).contains(&x),
            Bound::Mean { target, tolerance } => match tolerance {
                Tolerance::StandardErrors(_) => false,
                Tolerance::Relative(r) => (x - target).abs() <= r * target.abs(),
                Tolerance::Absolute(a) => (x - target).abs() <= a,
            },
        }
    }

    /// Whether a mean over seeds with standard error `se` satisfies it (for the other bounds,
    /// whether the mean itself does).
    pub fn holds_mean(self, mean: f64, se: f64) -> bool {
        match self {
            Bound::Mean {
                target,
                tolerance: Tolerance::StandardErrors(k),
            } => se.is_finite() && (mean - target).abs() <= k * se,
            b => b.holds(mean),
        }
    }

    /// How far outside `x` is (0 inside): picks the worst seed.
    pub fn miss(self, x: f64) -> f64 {
        match self {
            Bound::Below(b) => x - b,
            Bound::Above(a) => a - x,
            Bound::Between(lo, hi) => (lo - x).max(x - hi),
            Bound::Mean { target, .. } => (x - target).abs(),
        }
    }

    /// How it reads: `below 250`, `between 0.9 and 1.1`, `mean 0.05 within 3 standard errors`.
    pub fn text(self) -> String {
        match self {
            Bound::Below(b) => format!("below {b}"),
            Bound::Above(a) => format!("above {a}"),
            Bound::Between(lo, hi) => format!("between {lo} and {hi}"),
            Bound::Mean { target, tolerance } => match tolerance {
                Tolerance::StandardErrors(k) => {
                    format!("mean {target} within {k} standard errors")
                }
                Tolerance::Relative(r) => format!("mean {target} within {} %", r * 100.0),
                Tolerance::Absolute(a) => format!("mean {target} within ± {a}"),
            },
        }
    }

    /// The bound of an `[[expect]]` entry as the manifest records it (`below`, `above`,
    /// `between = [lo, hi]`, or `mean` with one of `within_se`, `within_rel`, `within_abs`),
    /// if it has one.
    pub fn from_json(e: &Value) -> Option<Bound> {
        if let Some(b) = e["below"].as_f64() {
            return Some(Bound::Below(b));
        }
        if let Some(a) = e["above"].as_f64() {
            return Some(Bound::Above(a));
        }
        if let Some(target) = e["mean"].as_f64() {
            let tolerance = if let Some(k) = e["within_se"].as_f64() {
                Tolerance::StandardErrors(k)
            } else if let Some(r) = e["within_rel"].as_f64() {
                Tolerance::Relative(r)
            } else {
                Tolerance::Absolute(e["within_abs"].as_f64()?)
            };
            return Some(Bound::Mean { target, tolerance });
        }
        let v = e["between"].as_array()?;
        let (lo, hi) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        Some(Bound::Between(lo, hi))
    }
}

/// The metric an expectation judges: a path in `summary.json`, or arithmetic over paths and
/// numbers (`workloads.w.rejected / workloads.w.sent`): `+ - * /` and parentheses, each
/// operator between spaces, because names may hold `-` (`edges.front->api`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A path in summary.json.
    Path(String),
    /// Left, operator, right.
    Op(Box<Expr>, char, Box<Expr>),
}

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Op(char),
    Word(String),
}

impl Expr {
    /// Parses `text`; the error says what is wrong and what would be valid.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut tokens = Vec::new();
        for piece in text.split_whitespace() {
            let mut word = piece;
            while let Some(rest) = word.strip_prefix('(') {
                tokens.push(Token::Open);
                word = rest;
            }
            let closes = word.len() - word.trim_end_matches(')').len();
            word = &word[..word.len() - closes];
            match word {
                "" => {}
                "+" | "-" | "*" | "/" => tokens.push(Token::Op(word.chars().next().unwrap_or('+'))),
                w => tokens.push(Token::Word(w.to_string())),
            }
            tokens.extend((0..closes).map(|_| Token::Close));
        }
        if tokens.is_empty() {
            return Err("an empty metric: name a path in summary.json, e.g. \"workloads.shoppers.latency_ms.p99\"".into());
        }
        let mut at = 0;
        let e = sum(&tokens, &mut at)?;
        if at < tokens.len() {
            return Err(format!(
                "unexpected {:?} after a complete metric; write operators between spaces: \"a / b\"",
                tokens[at]
            ));
        }
        Ok(e)
    }

    /// The summary paths it reads, in order.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Expr::Num(_) => Vec::new(),
            Expr::Path(p) => vec![p.as_str()],
            Expr::Op(a, _, b) => {
                let mut v = a.paths();
                v.extend(b.paths());
                v
            }
        }
    }

    /// Its value in `summary` (booleans count 1 or 0); the error names a path with no number.
    /// A division by zero is NaN, which no bound holds.
    pub fn eval(&self, summary: &Value) -> Result<f64, String> {
        Ok(match self {
            Expr::Num(x) => *x,
            Expr::Path(p) => {
                let v = super::summary::lookup(summary, p).ok_or_else(|| p.clone())?;
                if v.is_null() {
                    // A value that does not exist in this run ("did not recover"): no bound
                    // holds it, rather than an invalid metric.
                    return Ok(f64::NAN);
                }
                v.as_f64()
                    .or(v.as_bool().map(f64::from))
                    .ok_or_else(|| p.clone())?
            }
            Expr::Op(a, op, b) => {
                let (x, y) = (a.eval(summary)?, b.eval(summary)?);
                match op {
                    '+' => x + y,
                    '-' => x - y,
                    '*' => x * y,
                    _ if y == 0.0 => f64::NAN,
                    _ => x / y,
                }
            }
        })
    }
}

fn sum(t: &[Token], at: &mut usize) -> Result<Expr, String> {
    let mut e = product(t, at)?;
    while let Some(Token::Op(op @ ('+' | '-'))) = t.get(*at) {
        *at += 1;
        e = Expr::Op(Box::new(e), *op, Box::new(product(t, at)?));
    }
    Ok(e)
}

fn product(t: &[Token], at: &mut usize) -> Result<Expr, String> {
    let mut e = atom(t, at)?;
    while let Some(Token::Op(op @ ('*' | '/'))) = t.get(*at) {
        *at += 1;
        e = Expr::Op(Box::new(e), *op, Box::new(atom(t, at)?));
    }
    Ok(e)
}

fn atom(t: &[Token], at: &mut usize) -> Result<Expr, String> {
    let tok = t
        .get(*at)
        .ok_or("the metric ends where a path or a number should be")?;
    *at += 1;
    match tok {
        Token::Word(w) => Ok(w
            .parse::<f64>()
            .map_or_else(|_| Expr::Path(w.clone()), Expr::Num)),
        Token::Open => {
            let e = sum(t, at)?;
            if t.get(*at) != Some(&Token::Close) {
                return Err("a \"(\" without its \")\"".into());
            }
            *at += 1;
            Ok(e)
        }
        Token::Close => Err("a \")\" where a path or a number should be".into()),
        Token::Op(o) => Err(format!(
            "{o:?} where a path or a number should be (operators go between two operands)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_manifest_form_and_judges_as_check_does() {
        let b = Bound::from_json(&json!({"metric": "m", "between": [1.0, 2.0]})).unwrap();
        assert_eq!(b, Bound::Between(1.0, 2.0));
        assert!(b.holds(1.0) && b.holds(2.0) && !b.holds(2.5));
        assert_eq!(b.miss(2.5), 0.5);
        let below = Bound::from_json(&json!({"below": 3})).unwrap();
        assert!(!below.holds(3.0), "below is strict");
        assert_eq!(below.text(), "below 3");
        assert_eq!(Bound::from_json(&json!({"metric": "m"})), None);
    }

    #[test]
    fn means_are_judged_by_their_tolerance() {
        let se = Bound::from_json(&json!({"mean": 10.0, "within_se": 2.0})).unwrap();
        // Mean 10.5 with standard error 0.3: 1.7 standard errors away, inside 2.
        assert!(se.holds_mean(10.5, 0.3) && !se.holds_mean(10.7, 0.3));
        assert!(
            !se.holds_mean(10.0, f64::NAN),
            "one seed has no standard error"
        );
        assert!(!se.holds(10.0), "one value cannot judge standard errors");
        let rel = Bound::from_json(&json!({"mean": 10.0, "within_rel": 0.05})).unwrap();
        assert!(rel.holds_mean(10.5, 9.0) && !rel.holds_mean(10.6, 0.0));
        let abs = Bound::from_json(&json!({"mean": -2.0, "within_abs": 0.5})).unwrap();
        assert!(abs.holds(-1.5) && !abs.holds(-1.4));
        assert_eq!(se.text(), "mean 10 within 2 standard errors");
        assert_eq!(rel.text(), "mean 10 within 5 %");
    }

    #[test]
    fn derived_metrics_are_arithmetic_over_paths() {
        let s = json!({"workloads": {"w": {"sent": 200, "rejected": 50, "ok": true}},
                       "edges": {"front->api": {"calls": 8}}});
        let v = |t: &str| Expr::parse(t).unwrap().eval(&s);
        assert_eq!(v("workloads.w.rejected / workloads.w.sent"), Ok(0.25));
        // Precedence, parentheses, numbers, booleans, names holding "-" and ">".
        assert_eq!(v("1 + 2 * 3"), Ok(7.0));
        assert_eq!(v("(1 + 2) * 3"), Ok(9.0));
        assert_eq!(v("edges.front->api.calls - 10 / (4 - 2)"), Ok(3.0));
        assert_eq!(v("workloads.w.ok * 100"), Ok(100.0));
        assert!(v("workloads.w.sent / 0").unwrap().is_nan());
        assert_eq!(v("workloads.w.lost / 2"), Err("workloads.w.lost".into()));
        assert_eq!(Expr::parse("(a + b) / c").unwrap().paths(), ["a", "b", "c"]);
        for bad in ["", "a /", "/ a", "(a + b", "a + b)", "a b"] {
            assert!(Expr::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
