//! The retry decision after an attempt (Resilience4j Retry, Envoy's route retry policy, gRPC A6 retries).
//!
//! A sans-IO machine: given how the attempt ended, the call's deadline, the edge's
//! [`RetryBudget`] and a random stream for the back-off, it decides to retry at a time or
//! to finish the call with an outcome. The model only schedules what it is told.

use crate::policy::backoff::{Backoff, BackoffState};
use crate::policy::budget::{BudgetSpec, BudgetTicket, RetryBudget};
use crate::policy::outcome::{AttemptOutcome, Outcome};
use crate::policy::status::{RetryOn, Status};
use crate::time::{SimDuration, SimTime};
use rand::RngCore;

/// A named retry policy (`[policy.retry.NAME]`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Its name.
    pub name: String,
    /// Attempts in all, the first included (≥ 1).
    pub max_attempts: u32,
    /// Wait before each retry.
    pub backoff: Backoff,
    /// What is retried.
    pub retry_on: RetryOn,
    /// What limits retries across calls.
    pub budget: Option<BudgetSpec>,
    /// Deadline for all attempts together (each try keeps its own `timeout`).
    pub overall_timeout: Option<SimDuration>,
}

/// What one call keeps between attempts: its back-off memory and its budget ticket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryState {
    /// The decorrelated and Envoy back-offs remember their last wait.
    pub backoff: BackoffState,
    /// The call's standing with the edge's budget.
    pub ticket: BudgetTicket,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Make the next attempt at this time (after the back-off, never past the deadline).
    RetryAt(SimTime),
    /// End the call with this outcome.
    Finish {
        /// What the call reports.
        outcome: Outcome,
        /// A retry was wanted but the budget (or Envoy's `max_retries`) refused it.
        budget_denied: bool,
    },
}

impl RetryPolicy {
    /// The decision after attempt number `attempt` (1 = the first) ended with `outcome`
    /// (with `status`, when a fault chose the answer's status) at `now`. Retries stop at `deadline` (the call's overall timeout, or the request's
    /// propagated deadline): a back-off that outlasts it ends the call *at* the deadline
    /// with a timeout (Envoy's 504 on the route timeout, gRPC's DEADLINE_EXCEEDED); no
    /// attempt starts after it. `max_retries` is Envoy's cluster limit on concurrently
    /// active retries, on top of any budget.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        now: SimTime,
        attempt: u32,
        outcome: AttemptOutcome,
        status: Option<Status>,
        deadline: SimTime,
        state: &mut RetryState,
        budget: &mut RetryBudget,
        max_retries: Option<u32>,
        rng: &mut impl RngCore,
    ) -> RetryDecision {
        let finish = |budget_denied| RetryDecision::Finish {
            outcome: outcome.call_outcome(),
            budget_denied,
        };
        if outcome == AttemptOutcome::Ok
            || !self.retry_on.matches(outcome, status)
            || attempt >= self.max_attempts
            || now >= deadline
        {
            return finish(false);
        }
        let after_timeout = outcome == AttemptOutcome::Timeout;
        if !budget.try_begin_retry(now, after_timeout, max_retries, &mut state.ticket) {
            return finish(true);
        }
        let delay = self.backoff.delay(&mut state.backoff, attempt, rng);
        RetryDecision::RetryAt(now.after(delay).min(deadline))
    }
}

/// The decision for a call without a retry policy: its only attempt's outcome.
pub fn no_retry(outcome: AttemptOutcome) -> RetryDecision {
    RetryDecision::Finish {
        outcome: outcome.call_outcome(),
        budget_denied: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::backoff::Jitter;
    use crate::rng::SimRng;

    fn policy(max_attempts: u32, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            name: "t".into(),
            max_attempts,
            backoff,
            retry_on: RetryOn::outcomes(crate::policy::outcome::OutcomeSet::RETRY_DEFAULT),
            budget: None,
            overall_timeout: None,
        }
    }

    /// Drives a call whose every attempt fails with `outcome` after `attempt_ns`; returns
    /// the start time of each attempt and how the call ended.
    fn run(
        p: &RetryPolicy,
        outcome: AttemptOutcome,
        attempt_ns: u64,
        deadline: SimTime,
    ) -> (Vec<u64>, Outcome) {
        let mut rng = SimRng::for_component(1, "t");
        let mut budget = RetryBudget::new(p.budget.as_ref());
        let mut state = RetryState::default();
        budget.on_call_start(SimTime::ZERO);
        let (mut starts, mut t, mut attempt) = (vec![0], SimTime::ZERO, 1);
        loop {
            // An attempt still running at the deadline is cut there: a timeout.
            let (end, seen) = match t.after(SimDuration(attempt_ns)) {
                end if end >= deadline => (deadline, AttemptOutcome::Timeout),
                end => (end, outcome),
            };
            budget.end_retry(&mut state.ticket);
            match p.decide(
                end,
                attempt,
                seen,
                None,
                deadline,
                &mut state,
                &mut budget,
                None,
                &mut rng,
            ) {
                RetryDecision::RetryAt(at) if at >= deadline => {
                    budget.end_retry(&mut state.ticket);
                    return (starts, Outcome::Timeout);
                }
                RetryDecision::RetryAt(at) => {
                    starts.push(at.0);
                    t = at;
                    attempt += 1;
                }
                RetryDecision::Finish { outcome, .. } => return (starts, outcome),
            }
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn s2_b1_defaults_call_three_times_and_wait_a_second() {
        // Resilience4j defaults: maxAttempts 3, waitDuration 500 ms fixed; an always failing
        // callee (answering at once) is called 3 times with 1000 ms of waiting in all.
        let p = policy(3, Backoff::Fixed(SimDuration::from_millis(500)));
        let (starts, end) = run(&p, AttemptOutcome::Error, 0, SimTime::MAX);
        assert_eq!(starts, [0, 500 * MS, 1000 * MS]);
        assert_eq!(end, Outcome::Error, "the last error surfaces");
    }

    #[test]
    fn s2_b2_one_attempt_means_no_retry() {
        let p = policy(1, Backoff::Fixed(SimDuration::from_millis(500)));
        let (starts, end) = run(&p, AttemptOutcome::Timeout, 5 * MS, SimTime::MAX);
        assert_eq!((starts, end), (vec![0], Outcome::Timeout));
    }

    #[test]
    fn s2_b4_an_outcome_not_retried_ends_the_call_at_once() {
        // A 429 is not in the default retry_on: one call, the rejection surfaces.
        let p = policy(5, Backoff::None);
        let (starts, end) = run(&p, AttemptOutcome::RateLimited, MS, SimTime::MAX);
        assert_eq!((starts, end), (vec![0], Outcome::Rejected));
        // Nor is the caller's own refusal, which reports `rejected` as well.
        let (starts, _) = run(&p, AttemptOutcome::Refused, 0, SimTime::MAX);
        assert_eq!(starts.len(), 1);
    }

    #[test]
    fn s5_b2_the_route_timeout_bounds_retries_and_back_off() {
        // Route timeout 3 s; the first attempt fails at 2.7 s; a 1 s back-off would start the
        // retry after the deadline: the call ends at the deadline with a timeout instead.
        let p = policy(3, Backoff::Fixed(SimDuration::from_secs(1)));
        let deadline = SimTime(3_000 * MS);
        let (starts, end) = run(&p, AttemptOutcome::Error, 2_700 * MS, deadline);
        assert_eq!((starts, end), (vec![0], Outcome::Timeout));
        // With a 100 ms back-off the retry goes at 2.8 s and its failure at 3 s is final.
        let p = policy(3, Backoff::Fixed(SimDuration::from_millis(100)));
        let (starts, _) = run(&p, AttemptOutcome::Error, 2_700 * MS, deadline);
        assert_eq!(starts, [0, 2_800 * MS]);
    }

    #[test]
    fn s5_b5_per_try_timeouts_with_back_off_between_attempts() {
        // per_try_timeout 1 s, retry on timeouts, 2 retries, a hanging callee: attempts at 0,
        // 1 s + bo1, 2 s + bo1 + bo2, then the third timeout ends the call. Envoy's back-off
        // (25 ms base) draws from [0, 25 ms) and then [0, 50 ms).
        let p = policy(
            3,
            Backoff::Envoy {
                base: SimDuration::from_millis(25),
                max: SimDuration::from_millis(250),
            },
        );
        let (starts, end) = run(&p, AttemptOutcome::Timeout, 1_000 * MS, SimTime::MAX);
        assert_eq!(starts.len(), 3);
        let bo1 = starts[1] - 1_000 * MS;
        let bo2 = starts[2] - starts[1] - 1_000 * MS;
        assert!(bo1 < 25 * MS && bo2 < 50 * MS, "{bo1} {bo2}");
        assert_eq!(end, Outcome::Timeout);
    }

    #[test]
    fn s6_b4_no_attempt_starts_after_the_deadline() {
        // gRPC: deadline 1 s, back-off larger than the time left: DEADLINE_EXCEEDED.
        let p = policy(
            5,
            Backoff::Exponential {
                base: SimDuration::from_millis(400),
                cap: SimDuration::from_secs(10),
                jitter: Jitter::None,
            },
        );
        let deadline = SimTime(1_000 * MS);
        let (starts, end) = run(&p, AttemptOutcome::Error, 100 * MS, deadline);
        assert!(starts.iter().all(|&s| s < deadline.0), "{starts:?}");
        assert_eq!(end, Outcome::Timeout);
        // An attempt failing exactly at the deadline is not retried either.
        let mut state = RetryState::default();
        let mut budget = RetryBudget::default();
        let d = p.decide(
            deadline,
            1,
            AttemptOutcome::Error,
            None,
            deadline,
            &mut state,
            &mut budget,
            None,
            &mut SimRng::for_component(1, "t"),
        );
        let finish = RetryDecision::Finish {
            outcome: Outcome::Error,
            budget_denied: false,
        };
        assert_eq!(d, finish);
    }

    #[test]
    fn s4_a_refused_retry_reports_the_denial_and_the_failure() {
        // A token bucket with one token: the first failure is retried, the second is denied
        // and the call ends with the second attempt's failure.
        let mut p = policy(5, Backoff::None);
        p.budget = Some(BudgetSpec::TokenBucket {
            max_tokens: 1,
            deposit: 0.1,
        });
        let mut budget = RetryBudget::new(p.budget.as_ref());
        let mut state = RetryState::default();
        let mut rng = SimRng::for_component(1, "t");
        budget.on_call_start(SimTime::ZERO);
        let first = p.decide(
            SimTime::ZERO,
            1,
            AttemptOutcome::Error,
            None,
            SimTime::MAX,
            &mut state,
            &mut budget,
            None,
            &mut rng,
        );
        assert_eq!(first, RetryDecision::RetryAt(SimTime::ZERO));
        assert_eq!(budget.active(), (1, 1));
        budget.end_retry(&mut state.ticket);
        let second = p.decide(
            SimTime::ZERO,
            2,
            AttemptOutcome::Timeout,
            None,
            SimTime::MAX,
            &mut state,
            &mut budget,
            None,
            &mut rng,
        );
        let denied = RetryDecision::Finish {
            outcome: Outcome::Timeout,
            budget_denied: true,
        };
        assert_eq!(second, denied);
    }

    #[test]
    fn s5_b1_retries_are_counted_once_per_attempt() {
        // Two 503s with num_retries 1 (max_attempts 2): exactly two attempts, the second 503
        // is what the caller sees.
        let p = policy(2, Backoff::None);
        let (starts, end) = run(&p, AttemptOutcome::Error, MS, SimTime::MAX);
        assert_eq!((starts.len(), end), (2, Outcome::Error));
    }
}
