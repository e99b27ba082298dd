//! Deadlines: a call's overall timeout, each attempt's per-try timeout, and the caller's deadline propagated downstream (POLICIES.md §5, §8).
//!
//! Every deadline is an absolute instant (`SimTime::MAX`: none), as gRPC sends it: the
//! remaining time shrinks as the request travels, and each hop's effective timeout is
//! the earliest of its own and what it inherited.

use crate::time::{SimDuration, SimTime};

/// The deadlines in force for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// The call's own end: its retry policy's overall timeout (Envoy's route timeout).
    pub call: SimTime,
    /// The calling request's deadline when its service propagates deadlines (gRPC), else
    /// `SimTime::MAX`.
    pub inherited: SimTime,
}

impl Deadlines {
    /// The deadlines of a call started at `now` with overall timeout `overall`, made by a
    /// request whose own deadline is `parent` (propagated only when `propagate`).
    pub fn start(
        now: SimTime,
        overall: Option<SimDuration>,
        propagate: bool,
        parent: SimTime,
    ) -> Self {
        Deadlines {
            call: overall.map_or(SimTime::MAX, |t| now.after(t)),
            inherited: if propagate { parent } else { SimTime::MAX },
        }
    }

    /// When the call as a whole must end: no attempt starts after it, and a back-off that
    /// outlasts it ends the call there.
    pub fn call_end(&self) -> SimTime {
        self.call.min(self.inherited)
    }

    /// When an attempt sent at `now` times out: its per-try timeout, within the call's end.
    pub fn attempt_end(&self, now: SimTime, per_try: Option<SimDuration>) -> SimTime {
        per_try
            .map_or(self.call, |t| now.after(t).min(self.call))
            .min(self.inherited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn s8_3_b1_the_callee_inherits_what_is_left() {
        // Client deadline 1 s; A spends 200 ms, then calls B with a 900 ms per-try timeout of
        // its own: B's attempt ends at 1 s, not at 1.1 s.
        let d = Deadlines::start(SimTime(200 * MS), None, true, SimTime(1_000 * MS));
        let per_try = Some(SimDuration::from_millis(900));
        assert_eq!(
            d.attempt_end(SimTime(200 * MS), per_try),
            SimTime(1_000 * MS)
        );
        assert_eq!(d.call_end(), SimTime(1_000 * MS));
        // Without propagation the per-try timeout alone applies.
        let d = Deadlines::start(SimTime(200 * MS), None, false, SimTime(1_000 * MS));
        assert_eq!(
            d.attempt_end(SimTime(200 * MS), per_try),
            SimTime(1_100 * MS)
        );
        assert_eq!(d.call_end(), SimTime::MAX);
    }

    #[test]
    fn s5_the_route_timeout_covers_every_attempt() {
        // Route timeout 3 s from the call's start; per-try 1 s. An attempt sent at 2.5 s has
        // only 0.5 s.
        let d = Deadlines::start(
            SimTime::ZERO,
            Some(SimDuration::from_secs(3)),
            false,
            SimTime::ZERO,
        );
        let per_try = Some(SimDuration::from_secs(1));
        assert_eq!(d.attempt_end(SimTime::ZERO, per_try), SimTime(1_000 * MS));
        assert_eq!(
            d.attempt_end(SimTime(2_500 * MS), per_try),
            SimTime(3_000 * MS)
        );
        // No per-try timeout: each attempt is bounded by the route timeout only.
        assert_eq!(
            d.attempt_end(SimTime(2_500 * MS), None),
            SimTime(3_000 * MS)
        );
    }

    #[test]
    fn s8_3_no_deadline_waits_forever() {
        let d = Deadlines::start(SimTime(5), None, true, SimTime::MAX);
        assert_eq!(d.call_end(), SimTime::MAX);
        assert_eq!(d.attempt_end(SimTime(5), None), SimTime::MAX);
    }
}
