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
}

impl Bound {
    /// Whether `x` satisfies it.
    pub fn holds(self, x: f64) -> bool {
        match self {
            Bound::Below(b) => x < b,
            Bound::Above(a) => x > a,
            Bound::Between(lo, hi) => (lo..=hi).contains(&x),
        }
    }

    /// How far outside `x` is (0 inside): picks the worst seed.
    pub fn miss(self, x: f64) -> f64 {
        match self {
            Bound::Below(b) => x - b,
            Bound::Above(a) => a - x,
            Bound::Between(lo, hi) => (lo - x).max(x - hi),
        }
    }

    /// How it reads: `below 250`, `between 0.9 and 1.1`.
    pub fn text(self) -> String {
        match self {
            Bound::Below(b) => format!("below {b}"),
            Bound::Above(a) => format!("above {a}"),
            Bound::Between(lo, hi) => format!("between {lo} and {hi}"),
        }
    }

    /// The bound of an `[[expect]]` entry as the manifest records it (`below`, `above` or
    /// `between = [lo, hi]`), if it has one.
    pub fn from_json(e: &Value) -> Option<Bound> {
        if let Some(b) = e["below"].as_f64() {
            return Some(Bound::Below(b));
        }
        if let Some(a) = e["above"].as_f64() {
            return Some(Bound::Above(a));
        }
        let v = e["between"].as_array()?;
        let (lo, hi) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        Some(Bound::Between(lo, hi))
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
}
