//! Outcome classification: how an attempt ended, what the call reports, which sets of outcomes a policy acts on.
//!
//! One table, used by every layer: the retry decision (`retry_on`), hedging (`non_fatal`),
//! breakers (`record`), outlier detection (5xx or gateway failure) and the call's final
//! outcome. Before this module the same mapping was written out five times.

use serde::Serialize;

/// How a request (or a whole call) ended, as its caller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered successfully.
    Ok,
    /// Answered with an error (its own, or a failed required call).
    Error,
    /// Refused at once because the queue was full.
    Rejected,
    /// The caller stopped waiting (the callee may still be working).
    Timeout,
}

impl Outcome {
    /// Its name in files: ok, error, rejected, timeout.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
            Outcome::Timeout => "timeout",
        }
    }
}

/// How one attempt ended, as its caller saw it: finer than [`Outcome`], because the
/// policies tell a 429 from a 503 and a reset from a refusal of the caller's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttemptOutcome {
    /// Answered successfully.
    Ok,
    /// The callee answered with an error.
    Error,
    /// The callee's queue was full (or a server-side layer dropped it).
    Rejected,
    /// The per-try timeout (or a deadline) fired.
    Timeout,
    /// The caller's own breaker refused it: nothing was sent.
    CircuitOpen,
    /// The connection was refused or reset.
    ConnectFailure,
    /// The callee's rate limiter answered 429.
    RateLimited,
    /// A layer of the caller's own refused it (throttle, concurrency limit, bulkhead, no
    /// usable instance): nothing was sent.
    Refused,
    /// The callee's sidecar denied it (403, an authorization policy).
    Forbidden,
}

impl AttemptOutcome {
    /// Every attempt outcome, in declaration order.
    pub const ALL: [AttemptOutcome; 9] = [
        AttemptOutcome::Ok,
        AttemptOutcome::Error,
        AttemptOutcome::Rejected,
        AttemptOutcome::Timeout,
        AttemptOutcome::CircuitOpen,
        AttemptOutcome::ConnectFailure,
        AttemptOutcome::RateLimited,
        AttemptOutcome::Refused,
        AttemptOutcome::Forbidden,
    ];

    /// Its name in scenario files (`retry_on`, `record`, `non_fatal`) and in traces.
    pub fn name(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Error => "error",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::CircuitOpen => "circuit_open",
            AttemptOutcome::ConnectFailure => "connect_failure",
            AttemptOutcome::RateLimited => "rate_limited",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Forbidden => "forbidden",
        }
    }

    /// The outcome named `name`, if any.
    pub fn from_name(name: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// What the call reports when this attempt is its last: a refusal (the callee's, a
    /// 429, or the caller's own layers) is `rejected`; the caller's open breaker and a
    /// failed connection are errors (the caller got no answer it could use).
    pub fn call_outcome(self) -> Outcome {
        match self {
            AttemptOutcome::Ok => Outcome::Ok,
            AttemptOutcome::Error
            | AttemptOutcome::CircuitOpen
            | AttemptOutcome::ConnectFailure => Outcome::Error,
            AttemptOutcome::Rejected
            | AttemptOutcome::RateLimited
            | AttemptOutcome::Refused
            | AttemptOutcome::Forbidden => Outcome::Rejected,
            AttemptOutcome::Timeout => Outcome::Timeout,
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl From<Outcome> for AttemptOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => AttemptOutcome::Ok,
            Outcome::Error => AttemptOutcome::Error,
            Outcome::Rejected => AttemptOutcome::Rejected,
            Outcome::Timeout => AttemptOutcome::Timeout,
        }
    }
}

/// A set of attempt outcomes: what a retry policy retries, what a breaker records as a
/// failure, what a hedging policy treats as non-fatal.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeSet(u16);

impl OutcomeSet {
    /// No outcome.
    pub const EMPTY: OutcomeSet = OutcomeSet(0);

    /// What a breaker counts as failures by default: every failure, as Resilience4j
    /// records every exception by default, the caller's own refusals below the breaker
    /// (`BulkheadFullException`, a limiter's or throttle's refusal) included. Only its own
    /// open state (`CallNotPermittedException`) is not a call it saw.
    pub const BREAKER_DEFAULT: OutcomeSet = OutcomeSet::of(&[
        AttemptOutcome::Error,
        AttemptOutcome::Timeout,
        AttemptOutcome::Rejected,
        AttemptOutcome::ConnectFailure,
        AttemptOutcome::RateLimited,
        AttemptOutcome::Refused,
        AttemptOutcome::Forbidden,
    ]);

    /// What a retry policy retries by default: errors, timeouts, full queues and failed
    /// connections; not a 429 (as Envoy) nor a local refusal (Envoy never retries local
    /// overflows) nor the caller's own open breaker.
    pub const RETRY_DEFAULT: OutcomeSet = OutcomeSet::of(&[
        AttemptOutcome::Error,
        AttemptOutcome::Timeout,
        AttemptOutcome::Rejected,
        AttemptOutcome::ConnectFailure,
    ]);

    /// The set of `outcomes`.
    pub const fn of(outcomes: &[AttemptOutcome]) -> OutcomeSet {
        let mut bits = 0u16;
        let mut i = 0;
        while i < outcomes.len() {
            bits |= 1 << outcomes[i] as u16;
            i += 1;
        }
        OutcomeSet(bits)
    }

    /// Whether `o` is in the set.
    #[inline]
    pub fn contains(self, o: AttemptOutcome) -> bool {
        self.0 & o.bit() != 0
    }

    /// The set with `o` added.
    pub fn with(self, o: AttemptOutcome) -> OutcomeSet {
        OutcomeSet(self.0 | o.bit())
    }

    /// Whether a whole call that ended with `o` is in the set (a call-scoped breaker
    /// sees one result per call).
    pub fn contains_call(self, o: Outcome) -> bool {
        o != Outcome::Ok && self.contains(AttemptOutcome::from(o))
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = AttemptOutcome> {
        AttemptOutcome::ALL
            .into_iter()
            .filter(move |o| self.contains(*o))
    }
}

impl std::fmt::Debug for OutcomeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|o| o.name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::from_name(o.name()), Some(o));
        }
        assert_eq!(AttemptOutcome::from_name("503"), None);
    }

    #[test]
    fn a_set_holds_exactly_its_members() {
        let s = OutcomeSet::of(&[AttemptOutcome::Error, AttemptOutcome::Refused]);
        for o in AttemptOutcome::ALL {
            let member = matches!(o, AttemptOutcome::Error | AttemptOutcome::Refused);
            assert_eq!(s.contains(o), member, "{o:?}");
        }
        assert_eq!(
            s.with(AttemptOutcome::Timeout).iter().collect::<Vec<_>>(),
            [
                AttemptOutcome::Error,
                AttemptOutcome::Timeout,
                AttemptOutcome::Refused
            ]
        );
        assert_eq!(format!("{s:?}"), r#"{"error", "refused"}"#);
        assert_eq!(OutcomeSet::EMPTY.iter().count(), 0);
    }

    #[test]
    fn s1_breaker_records_callee_failures_not_local_refusals() {
        // Resilience4j records every exception by default, BulkheadFullException included;
        // CallNotPermitted (our circuit_open) is the breaker's own refusal, never recorded.
        let d = OutcomeSet::BREAKER_DEFAULT;
        assert!(d.contains(AttemptOutcome::Error) && d.contains(AttemptOutcome::Timeout));
        assert!(d.contains(AttemptOutcome::RateLimited) && d.contains(AttemptOutcome::Refused));
        assert!(!d.contains(AttemptOutcome::CircuitOpen));
        assert!(!d.contains(AttemptOutcome::Ok));
        // A call-scoped breaker sees call outcomes; ok is never a failure.
        assert!(d.contains_call(Outcome::Timeout) && !d.contains_call(Outcome::Ok));
    }

    #[test]
    fn s5_retry_default_leaves_429_and_local_overflow_alone() {
        // POLICIES.md §5: never retried: local overflow resets; rate-limited responses unless
        // envoy-ratelimited is enabled.
        let d = OutcomeSet::RETRY_DEFAULT;
        assert!(!d.contains(AttemptOutcome::RateLimited));
        assert!(!d.contains(AttemptOutcome::Refused));
        assert!(d.contains(AttemptOutcome::ConnectFailure));
    }

    #[test]
    fn the_call_reports_one_of_four_outcomes() {
        use AttemptOutcome as A;
        let table = [
            (A::Ok, Outcome::Ok),
            (A::Error, Outcome::Error),
            (A::CircuitOpen, Outcome::Error),
            (A::ConnectFailure, Outcome::Error),
            (A::Rejected, Outcome::Rejected),
            (A::RateLimited, Outcome::Rejected),
            (A::Refused, Outcome::Rejected),
            (A::Timeout, Outcome::Timeout),
        ];
        for (a, o) in table {
            assert_eq!(a.call_outcome(), o, "{a:?}");
            // An outcome seen at the callee maps back to itself.
            assert_eq!(AttemptOutcome::from(o).call_outcome(), o);
        }
    }
}
