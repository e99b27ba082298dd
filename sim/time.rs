//! Virtual time as integer nanoseconds, and exact parsing of "250ms"-style durations.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in virtual time: nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of virtual time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

/// Nanoseconds in one millisecond.
pub const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds in one second.
pub const NS_PER_S: u64 = 1_000_000_000;

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The end of time: never reached by a run (used as "no deadline").
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// `self + d`, saturating at [`SimTime::MAX`] so a huge timeout cannot wrap around.
    #[inline]
    pub fn after(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// Time elapsed since `earlier`; zero if `earlier` is later (never negative).
    #[inline]
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }

    /// Seconds as a float, for reports only (never for the clock itself).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * NS_PER_MS)
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * NS_PER_S)
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds as a float, for reports only.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / NS_PER_MS as f64
    }

    /// Seconds as a float, for reports and rate arithmetic only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (expected a number and a unit: ns, us, ms, s, m or h, e.g. \"250ms\", \"1.5s\", \"2m\")")]
pub struct DurationError {
    /// The text that was refused.
    pub input: String,
    /// What was wrong with it.
    pub why: &'static str,
}

/// Parses "250ms", "1.5s", "2m", "100us", "3h", "0s" into exact nanoseconds.
///
/// The decimal part is handled with integers, so "0.1s" is exactly 100,000,000 ns
/// (no float rounding). A fraction finer than one nanosecond is refused.
pub fn parse_duration(input: &str) -> Result<SimDuration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| err("missing unit"))?;
    let (num, unit) = s.split_at(split);
    let unit_ns: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => NS_PER_MS,
        "s" => NS_PER_S,
        "m" | "min" => 60 * NS_PER_S,
        "h" => 3_600 * NS_PER_S,
        "" => return Err(err("missing unit")),
        _ => return Err(err("unknown unit")),
    };
    if num.is_empty() {
        return Err(err("missing number"));
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(err("malformed number"));
    }
    let int: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| err("number too large"))?
    };
    let mut total = int
        .checked_mul(unit_ns)
        .ok_or_else(|| err("number too large"))?;
    // Fraction: digits d1 d2 ... contribute unit_ns * 0.d1d2..., computed exactly.
    let mut scale = unit_ns;
    for c in frac_part.chars() {
        let digit = c.to_digit(10).ok_or_else(|| err("malformed number"))? as u64;
        if scale % 10 != 0 {
            if digit != 0 {
                return Err(err("finer than one nanosecond"));
            }
            continue;
        }
        scale /= 10;
        total = total
            .checked_add(digit * scale)
            .ok_or_else(|| err("number too large"))?;
    }
    if total > MAX_DURATION.0 {
        return Err(err(
            "longer than 100 years (876000h), the longest duration faultline takes",
        ));
    }
    Ok(SimDuration(total))
}

/// The longest duration a scenario may give: 100 years. The clock is u64 nanoseconds (584
/// years); keeping every given duration far below that leaves room for sums (a time plus a
/// timeout plus a back-off) without overflow.
pub const MAX_DURATION: SimDuration = SimDuration(100 * 365 * 24 * 3_600 * NS_PER_S);

impl fmt::Display for SimDuration {
    /// Prints the shortest exact form: "250ms", "1.5s", "2m" stay as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [("h", 3_600 * NS_PER_S), ("m", 60 * NS_PER_S)] {
            if ns % size == 0 {
                return write!(f, "{}{}", ns / size, unit);
            }
        }
        for (unit, size) in [("s", NS_PER_S), ("ms", NS_PER_MS), ("us", 1_000)] {
            if ns >= size {
                let whole = ns / size;
                let rest = ns % size;
                if rest == 0 {
                    return write!(f, "{whole}{unit}");
                }
                let digits = size.ilog10() as usize;
                let frac = format!("{rest:0digits$}");
                return write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'));
            }
        }
        write!(f, "{ns}ns")
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SimDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, e.g. \"250ms\", \"1.5s\", \"2m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SimDuration, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SimDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}ms\" or \"{v}s\", not the bare number {v}"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SimDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\", not the bare number {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(
            parse_duration("250ms").unwrap(),
            SimDuration(250 * NS_PER_MS)
        );
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            SimDuration(1_500 * NS_PER_MS)
        );
        assert_eq!(
            parse_duration("0.1s").unwrap(),
            SimDuration(100 * NS_PER_MS)
        );
        assert_eq!(parse_duration("2m").unwrap(), SimDuration(120 * NS_PER_S));
        assert_eq!(
            parse_duration("3h").unwrap(),
            SimDuration(3 * 3_600 * NS_PER_S)
        );
        assert_eq!(parse_duration("100us").unwrap(), SimDuration(100_000));
        assert_eq!(parse_duration("7ns").unwrap(), SimDuration(7));
        assert_eq!(parse_duration(".5ms").unwrap(), SimDuration(500_000));
        assert_eq!(parse_duration("0s").unwrap(), SimDuration(0));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "ms",
            "5",
            "5x",
            "1.2.3s",
            "-1s",
            "1.5ns",
            "99999999999999999999s",
            "1e3ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "250ms",
            "1.5s",
            "2m",
            "3h",
            "100us",
            "7ns",
            "1.000001s",
            "0s",
            "90s",
        ] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&d.to_string()).unwrap(), d, "{s}");
        }
        assert_eq!(parse_duration("1.5s").unwrap().to_string(), "1.5s");
        assert_eq!(parse_duration("120s").unwrap().to_string(), "2m");
    }
}
