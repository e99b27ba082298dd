//! Hedging (gRPC A6): parallel attempts spaced by a delay; the first success wins, a fatal failure ends the call.
//!
//! A sans-IO machine: after each attempt it writes [`Commands`] (cancel the others,
//! finish, send the next hedge now, re-arm the timer), and it says when the next hedge
//! is due. The model keeps the attempts and the timer.

use crate::policy::command::{CallCommand, Commands};
use crate::policy::outcome::{AttemptOutcome, OutcomeSet};
use crate::time::SimDuration;

/// A named hedging policy (`[policy.hedge.NAME]`), gRPC A6 semantics.
#[derive(Clone, Debug)]
pub struct HedgePolicy {
    /// Its name.
    pub name: String,
    /// Attempts in all, the first included (2..=5).
    pub max_attempts: u32,
    /// Wait before each further attempt (also the fallback for `percentile`).
    pub delay: SimDuration,
    /// When set, wait this percentile of the edge's observed attempt latency instead
    /// (once 100 attempts have been observed).
    pub percentile: Option<f64>,
    /// Failures that send the next attempt at once instead of ending the call
    /// (a per-try timeout always counts as non-fatal).
    pub non_fatal: OutcomeSet,
}

/// Observed attempts needed before a percentile delay replaces the fixed one.
pub const PERCENTILE_MIN_SAMPLES: u64 = 100;

impl HedgePolicy {
    /// Whether a hedge timer should be armed for a call that made `attempts` attempts and
    /// has a timer armed or not.
    pub fn next_due(&self, attempts: u32, armed: bool) -> bool {
        attempts < self.max_attempts && !armed
    }

    /// The wait before the next hedge: the fixed delay, or the percentile of the edge's
    /// attempt latency once `samples` reach [`PERCENTILE_MIN_SAMPLES`] (`percentile` reads it).
    pub fn delay(&self, samples: u64, percentile: impl FnOnce(f64) -> SimDuration) -> SimDuration {
        match self.percentile {
            Some(q) if samples >= PERCENTILE_MIN_SAMPLES => percentile(q),
            _ => self.delay,
        }
    }

    /// An attempt ended with `outcome`; the call has made `attempts` attempts and
    /// `outstanding` are still in flight. Any success wins (the others are cancelled); a
    /// fatal failure cancels all and ends the call; a non-fatal one sends the next hedge at
    /// once (later ones resume the normal spacing), or, with every attempt made, waits for
    /// the ones in flight and fails when none is left.
    pub fn on_attempt_done(
        &self,
        outcome: AttemptOutcome,
        attempts: u32,
        outstanding: usize,
        out: &mut Commands,
    ) {
        let failure = outcome.call_outcome();
        let fatal = match outcome {
            AttemptOutcome::Ok => {
                out.push(CallCommand::CancelOutstanding);
                out.push(CallCommand::Finish(failure));
                return;
            }
            // The caller's own open breaker refused this hedge: the others may still win.
            AttemptOutcome::CircuitOpen | AttemptOutcome::Timeout => false,
            o => !self.non_fatal.contains(o),
        };
        if fatal {
            out.push(CallCommand::CancelOutstanding);
            out.push(CallCommand::Finish(failure));
        } else if attempts < self.max_attempts {
            out.push(CallCommand::CancelHedgeTimer);
            out.push(CallCommand::SendAttempt);
            out.push(CallCommand::ArmHedge);
        } else if outstanding == 0 {
            out.push(CallCommand::Finish(failure));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::outcome::Outcome;

    const MS: u64 = 1_000_000;

    fn policy() -> HedgePolicy {
        HedgePolicy {
            name: "h".into(),
            max_attempts: 4,
            delay: SimDuration::from_millis(500),
            percentile: None,
            non_fatal: OutcomeSet::of(&[AttemptOutcome::Timeout, AttemptOutcome::ConnectFailure]),
        }
    }

    /// Event-driven replay of a hedged call: `answers[k]` is when attempt k+1 would end
    /// (relative to its send) and how; returns the send times and the call's end.
    fn replay(
        p: &HedgePolicy,
        answers: &[(u64, AttemptOutcome)],
    ) -> (Vec<u64>, Option<(u64, Outcome)>) {
        let mut sends = vec![0u64];
        let mut timer = Some(p.delay.0);
        let mut ends: Vec<(u64, usize)> = vec![(answers[0].0, 0)];
        loop {
            let next_end = ends.iter().copied().min();
            let take_timer = match (timer, next_end) {
                (Some(t), Some((e, _))) => t < e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return (sends, None),
            };
            let mut out = Commands::default();
            let now = if take_timer {
                let t = timer.take().expect("armed");
                out.push(CallCommand::SendAttempt);
                out.push(CallCommand::ArmHedge);
                t
            } else {
                let (t, k) = next_end.expect("an attempt");
                ends.retain(|&(_, j)| j != k);
                p.on_attempt_done(answers[k].1, sends.len() as u32, ends.len(), &mut out);
                t
            };
            for c in out.as_slice() {
                match *c {
                    CallCommand::CancelOutstanding => ends.clear(),
                    CallCommand::CancelHedgeTimer => timer = None,
                    CallCommand::SendAttempt => {
                        let k = sends.len();
                        sends.push(now);
                        ends.push((now + answers[k].0, k));
                    }
                    CallCommand::ArmHedge => {
                        if p.next_due(sends.len() as u32, timer.is_some()) {
                            timer = Some(now + p.delay.0);
                        }
                    }
                    CallCommand::Finish(o) => return (sends, Some((now, o))),
                }
            }
        }
    }

    const NEVER: u64 = u64::MAX / 4;

    #[test]
    fn s6_b1_attempts_every_delay_while_nothing_answers() {
        let answers = [(NEVER, AttemptOutcome::Ok); 4];
        let (sends, end) = replay(&policy(), &answers);
        assert_eq!(sends, [0, 500 * MS, 1_000 * MS, 1_500 * MS]);
        assert_eq!(
            end.map(|e| e.1),
            Some(Outcome::Ok),
            "the first answer wins, however late"
        );
    }

    #[test]
    fn s6_b2_a_non_fatal_failure_sends_the_next_hedge_at_once() {
        // Attempt 1 fails non-fatally at 100 ms: attempt 2 goes at 100 ms, attempt 3 at 600 ms.
        let mut answers = [(NEVER, AttemptOutcome::Ok); 4];
        answers[0] = (100 * MS, AttemptOutcome::ConnectFailure);
        let (sends, _) = replay(&policy(), &answers);
        assert_eq!(sends, [0, 100 * MS, 600 * MS, 1_100 * MS]);
    }

    #[test]
    fn s6_a_fatal_failure_ends_the_call_and_cancels_the_rest() {
        let mut answers = [(NEVER, AttemptOutcome::Ok); 4];
        answers[0] = (700 * MS, AttemptOutcome::Error); // error is fatal unless listed
        let (sends, end) = replay(&policy(), &answers);
        assert_eq!(sends, [0, 500 * MS]);
        assert_eq!(end, Some((700 * MS, Outcome::Error)));
    }

    #[test]
    fn s6_every_attempt_failing_fails_the_call_after_the_last() {
        let answers = [
            (900 * MS, AttemptOutcome::Timeout),
            (900 * MS, AttemptOutcome::Timeout),
            (900 * MS, AttemptOutcome::Timeout),
            (900 * MS, AttemptOutcome::Timeout),
        ];
        let (sends, end) = replay(&policy(), &answers);
        assert_eq!(sends.len(), 4);
        // The fourth went at 1.4 s (attempt 2's failure at 1.4 s sent it at once) and is the
        // last to fail, at 2.3 s.
        assert_eq!(end, Some((2_300 * MS, Outcome::Timeout)));
    }

    #[test]
    fn s11_percentile_delay_waits_for_enough_samples() {
        let mut p = policy();
        p.percentile = Some(95.0);
        let observed = |_| SimDuration::from_millis(80);
        assert_eq!(p.delay(PERCENTILE_MIN_SAMPLES - 1, observed), p.delay);
        assert_eq!(
            p.delay(PERCENTILE_MIN_SAMPLES, observed),
            SimDuration::from_millis(80)
        );
        assert!(!p.next_due(4, false) && !p.next_due(1, true) && p.next_due(3, false));
    }
}
