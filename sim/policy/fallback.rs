//! A breaker's fallback: a fixed answer after a delay instead of the failure (Resilience4j's `fallbackMethod`).

use crate::policy::outcome::Outcome;
use crate::time::{SimDuration, SimTime};

/// A breaker's fallback: a fixed answer after `latency` instead of the failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fallback {
    /// How long the fallback takes.
    pub latency: SimDuration,
    /// Also on failures of calls the breaker let through (not only when it refuses).
    pub on_failure: bool,
}

impl Fallback {
    /// When the fallback answers a call that ended at `now` with `outcome`, or `None` when
    /// the failure stands: a call answers at most once by fallback (`already`), only a
    /// failed one, and, unless `on_failure`, only when the breaker refused its last attempt
    /// (`refused_by_breaker`: Resilience4j's CallNotPermittedException).
    pub fn answer_at(
        &self,
        now: SimTime,
        outcome: Outcome,
        refused_by_breaker: bool,
        already: bool,
    ) -> Option<SimTime> {
        let applies = outcome != Outcome::Ok && !already && (self.on_failure || refused_by_breaker);
        applies.then(|| now.after(self.latency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_open_breaker_falls_back_unless_asked_for_every_failure() {
        let f = Fallback {
            latency: SimDuration(5),
            on_failure: false,
        };
        let now = SimTime(100);
        assert_eq!(
            f.answer_at(now, Outcome::Error, true, false),
            Some(SimTime(105))
        );
        assert_eq!(f.answer_at(now, Outcome::Timeout, false, false), None);
        assert_eq!(f.answer_at(now, Outcome::Ok, true, false), None);
        let every = Fallback {
            on_failure: true,
            ..f
        };
        assert_eq!(
            every.answer_at(now, Outcome::Timeout, false, false),
            Some(SimTime(105))
        );
    }

    #[test]
    fn a_call_falls_back_once() {
        let f = Fallback {
            latency: SimDuration::ZERO,
            on_failure: true,
        };
        assert_eq!(f.answer_at(SimTime(1), Outcome::Error, true, true), None);
    }
}
