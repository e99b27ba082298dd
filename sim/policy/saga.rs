//! A saga orchestrator (POLICIES.md §17): forward steps in order; on a failure before or at
//! the pivot, compensations of the completed steps in reverse order (the failed step itself
//! is not compensated unless `compensate_failed`, steps without a compensation are skipped);
//! after the pivot, only forward retries. Replies carry the sequence number of the command they answer, so a
//! duplicate or late reply never advances the saga twice.
//!
//! Ends: completed (every step done), compensated (rolled back), failed (a compensation
//! failed and compensations are not retried: Eventuate's FAILED), stuck (a compensation, or a
//! step after the pivot, failed every attempt allowed: someone has to step in).

use crate::time::SimDuration;

/// One step of a saga definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepDef {
    /// It has a forward action (read-only verification steps may have none).
    pub action: bool,
    /// It has a compensating action.
    pub compensation: bool,
}

/// A saga definition's control parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The steps, in forward order.
    pub steps: Vec<StepDef>,
    /// Index of the pivot step (the last that may fail for good); steps after it are
    /// retriable. `None`: every step is compensatable.
    pub pivot: Option<usize>,
    /// Attempts of a step before the pivot (or at it) before it counts as failed (1).
    pub action_attempts: u32,
    /// Attempts of a step after the pivot before the saga is stuck (10).
    pub retriable_attempts: u32,
    /// Attempts of a compensation (5); 1 means no retry: a failure ends the saga failed.
    pub compensation_attempts: u32,
    /// Temporal's continueWithError: go on compensating past a compensation that gave up.
    pub continue_with_error: bool,
    /// Compensate the failed step too. Temporal's saga samples register a step's compensation
    /// before running it, because a step that failed (a timeout above all) may still have
    /// taken effect: its compensation must be safe to run when it did not.
    pub compensate_failed: bool,
    /// Back-off before the second attempt (Temporal: 1 s), times `multiplier` per attempt, at
    /// most `max_backoff` (100 s).
    pub backoff: SimDuration,
    /// Back-off growth.
    pub multiplier: f64,
    /// Longest back-off.
    pub max_backoff: SimDuration,
}

impl Config {
    /// A definition with Temporal's retry defaults.
    pub fn new(steps: Vec<StepDef>, pivot: Option<usize>) -> Self {
        Config {
            steps,
            pivot,
            action_attempts: 1,
            retriable_attempts: 10,
            compensation_attempts: 5,
            continue_with_error: false,
            compensate_failed: false,
            backoff: SimDuration::from_secs(1),
            multiplier: 2.0,
            max_backoff: SimDuration::from_secs(100),
        }
    }
}

/// Where a saga is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Not started.
    Pending,
    /// Going forward.
    Running,
    /// Undoing.
    Compensating,
    /// Every step done.
    Completed,
    /// Rolled back.
    Compensated,
    /// A compensation failed with no retry.
    Failed,
    /// A compensation or a post-pivot step gave up after its attempts.
    Stuck,
}

impl Status {
    /// Whether the saga is over.
    pub fn is_final(self) -> bool {
        self >= Status::Completed
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Compensated => "compensated",
            Status::Failed => "failed",
            Status::Stuck => "stuck",
        }
    }
}

/// What the orchestrator asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run step `step`'s action (or its compensation), attempt `attempt`, after `delay`; its
    /// reply must carry `seq`.
    Run {
        /// Step index.
        step: usize,
        /// The compensation rather than the action.
        compensation: bool,
        /// 1 for the first.
        attempt: u32,
        /// Back-off before it.
        delay: SimDuration,
        /// Sequence number of this command.
        seq: u64,
    },
    /// The saga ended.
    End(Status),
}

/// One saga's orchestration state.
#[derive(Clone, Debug)]
pub struct Saga {
    status: Status,
    /// The step being run (forward or compensation); -1 before the first.
    pos: isize,
    attempt: u32,
    seq: u64,
    /// A compensation gave up and `continue_with_error` went on.
    gave_up: Option<Status>,
    /// Duplicate or late replies ignored.
    pub ignored_replies: u64,
}

impl Default for Saga {
    fn default() -> Self {
        Self::new()
    }
}

impl Saga {
    /// A saga not started yet.
    pub fn new() -> Self {
        Saga {
            status: Status::Pending,
            pos: -1,
            attempt: 0,
            seq: 0,
            gave_up: None,
            ignored_replies: 0,
        }
    }

    /// Its status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Starts it: the first forward step.
    pub fn start(&mut self, cfg: &Config) -> Next {
        self.status = Status::Running;
        self.forward(cfg)
    }

    fn run(&mut self, step: usize, compensation: bool, attempt: u32, cfg: &Config) -> Next {
        self.pos = step as isize;
        self.attempt = attempt;
        self.seq += 1;
        let delay = if attempt <= 1 {
            SimDuration::ZERO
        } else {
            let f = cfg.multiplier.powi(attempt as i32 - 2);
            let d = (cfg.backoff.0 as f64 * f).min(cfg.max_backoff.0 as f64);
            SimDuration(d as u64)
        };
        Next::Run {
            step,
            compensation,
            attempt,
            delay,
            seq: self.seq,
        }
    }

    fn end(&mut self, status: Status) -> Next {
        self.status = status;
        Next::End(status)
    }

    fn forward(&mut self, cfg: &Config) -> Next {
        let from = (self.pos + 1) as usize;
        match (from..cfg.steps.len()).find(|&i| cfg.steps[i].action) {
            Some(i) => self.run(i, false, 1, cfg),
            None => self.end(Status::Completed),
        }
    }

    /// The next compensation below the current step.
    fn backward(&mut self, cfg: &Config) -> Next {
        let below = self.pos.max(0) as usize;
        match (0..below).rev().find(|&i| cfg.steps[i].compensation) {
            Some(i) => self.run(i, true, 1, cfg),
            None => {
                let end = self.gave_up.unwrap_or(Status::Compensated);
                self.end(end)
            }
        }
    }

    /// The reply to command `seq`: `ok` when the step (or compensation) succeeded. `None`
    /// when the reply is a duplicate or late (ignored).
    pub fn on_reply(&mut self, cfg: &Config, seq: u64, ok: bool) -> Option<Next> {
        if seq != self.seq || self.status.is_final() || self.status == Status::Pending {
            self.ignored_replies += 1;
            return None;
        }
        let step = self.pos as usize;
        let after_pivot = cfg.pivot.is_some_and(|p| step > p);
        let next = match (self.status, ok) {
            (Status::Running, true) => self.forward(cfg),
            (Status::Running, false) if after_pivot => {
                if cfg.retriable_attempts > 0 && self.attempt >= cfg.retriable_attempts {
                    self.end(Status::Stuck)
                } else {
                    self.run(step, false, self.attempt + 1, cfg)
                }
            }
            (Status::Running, false) => {
                if self.attempt < cfg.action_attempts {
                    self.run(step, false, self.attempt + 1, cfg)
                } else if cfg.compensate_failed && cfg.steps[step].compensation {
                    // It may have taken effect (its answer was lost): undo it first.
                    self.status = Status::Compensating;
                    self.run(step, true, 1, cfg)
                } else {
                    // The failed step is not compensated: its transaction did not commit.
                    self.status = Status::Compensating;
                    self.backward(cfg)
                }
            }
            (Status::Compensating, true) => self.backward(cfg),
            (Status::Compensating, false) => {
                if self.attempt < cfg.compensation_attempts {
                    self.run(step, true, self.attempt + 1, cfg)
                } else {
                    let end = if cfg.compensation_attempts <= 1 {
                        Status::Failed
                    } else {
                        Status::Stuck
                    };
                    if cfg.continue_with_error {
                        self.gave_up = Some(self.gave_up.unwrap_or(end).max(end));
                        self.backward(cfg)
                    } else {
                        self.end(end)
                    }
                }
            }
            _ => unreachable!("final statuses returned above"),
        };
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B1's definition: Create(comp), Verify(no comp), Reserve(comp), Authorize = pivot,
    /// Approve (retriable).
    fn order() -> Config {
        let c = |compensation| StepDef {
            action: true,
            compensation,
        };
        Config::new(
            vec![c(true), c(false), c(true), c(false), c(false)],
            Some(3),
        )
    }

    /// Runs a saga, answering each command with `reply(step, compensation, attempt)`;
    /// returns the commands and the end.
    fn drive(
        cfg: &Config,
        mut reply: impl FnMut(usize, bool, u32) -> bool,
    ) -> (Vec<(usize, bool, u32)>, Status) {
        let mut s = Saga::new();
        let mut next = s.start(cfg);
        let mut log = Vec::new();
        for _ in 0..1000 {
            match next {
                Next::Run {
                    step,
                    compensation,
                    attempt,
                    seq,
                    ..
                } => {
                    log.push((step, compensation, attempt));
                    next = s
                        .on_reply(cfg, seq, reply(step, compensation, attempt))
                        .unwrap();
                }
                Next::End(st) => return (log, st),
            }
        }
        panic!("no end")
    }

    #[test]
    fn s17_b1_pivot_failure_compensates_in_reverse_skipping_verify() {
        let (log, end) = drive(&order(), |step, _, _| step != 3);
        assert_eq!(
            log,
            vec![
                (0, false, 1),
                (1, false, 1),
                (2, false, 1),
                (3, false, 1),
                (2, true, 1),
                (0, true, 1)
            ]
        );
        assert_eq!(end, Status::Compensated);
    }

    #[test]
    fn s17_b2_failed_step_itself_is_not_compensated() {
        let (log, end) = drive(&order(), |step, comp, _| comp || step != 2);
        assert_eq!(
            log,
            vec![(0, false, 1), (1, false, 1), (2, false, 1), (0, true, 1)]
        );
        assert_eq!(end, Status::Compensated);
    }

    #[test]
    fn compensate_failed_undoes_the_failed_step_first_then_the_rest_in_reverse() {
        let mut cfg = order();
        cfg.compensate_failed = true;
        let (log, end) = drive(&cfg, |step, comp, _| comp || step != 2);
        assert_eq!(
            log,
            vec![
                (0, false, 1),
                (1, false, 1),
                (2, false, 1),
                (2, true, 1),
                (0, true, 1)
            ]
        );
        assert_eq!(end, Status::Compensated);
        // A failed step without a compensation (verify) has nothing to undo.
        let (log, _) = drive(&cfg, |step, comp, _| comp || step != 1);
        assert_eq!(log, vec![(0, false, 1), (1, false, 1), (0, true, 1)]);
    }

    #[test]
    fn s17_b3_retriable_step_after_pivot_retries_until_success() {
        let (log, end) = drive(&order(), |step, _, attempt| step != 4 || attempt > 2);
        assert_eq!(&log[4..], &[(4, false, 1), (4, false, 2), (4, false, 3)]);
        assert!(log.iter().all(|l| !l.1), "no compensation");
        assert_eq!(end, Status::Completed);
        // Back-off between attempts: 1 s, then 2 s (Temporal's defaults).
        let cfg = order();
        let mut s = Saga::new();
        let mut next = s.start(&cfg);
        let mut delays = vec![];
        while let Next::Run {
            step,
            seq,
            delay,
            attempt,
            ..
        } = next
        {
            if step == 4 {
                delays.push(delay.as_secs_f64());
            }
            next = s.on_reply(&cfg, seq, step != 4 || attempt > 2).unwrap();
        }
        assert_eq!(delays, vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn s17_b4_failing_compensation_eventuate_and_temporal() {
        // Eventuate: no compensation retry; Reserve's compensation fails: FAILED, Create's
        // compensation never runs.
        let mut cfg = order();
        cfg.compensation_attempts = 1;
        let (log, end) = drive(&cfg, |step, comp, _| step != 3 && !(comp && step == 2));
        assert_eq!(end, Status::Failed);
        assert_eq!(log.last(), Some(&(2, true, 1)));
        // Temporal continueWithError: Create's compensation still runs; the error is reported.
        cfg.continue_with_error = true;
        let (log, end) = drive(&cfg, |step, comp, _| step != 3 && !(comp && step == 2));
        assert_eq!(log.last(), Some(&(0, true, 1)));
        assert_eq!(end, Status::Failed);
        // With retries, a compensation that never succeeds leaves the saga stuck.
        let cfg = order();
        let (log, end) = drive(&cfg, |step, comp, _| step != 3 && !(comp && step == 2));
        assert_eq!(end, Status::Stuck);
        assert_eq!(log.iter().filter(|l| l.1 && l.0 == 2).count(), 5);
    }

    #[test]
    fn s17_b5_duplicate_reply_does_not_advance_twice() {
        let cfg = order();
        let mut s = Saga::new();
        let Next::Run { seq, .. } = s.start(&cfg) else {
            panic!()
        };
        let next = s.on_reply(&cfg, seq, true).unwrap();
        assert!(matches!(next, Next::Run { step: 1, .. }));
        // The same reply again: ignored.
        assert_eq!(s.on_reply(&cfg, seq, true), None);
        assert_eq!(s.ignored_replies, 1);
        assert!(matches!(s.status(), Status::Running));
    }

    #[test]
    fn post_pivot_step_that_never_succeeds_is_stuck() {
        let (log, end) = drive(&order(), |step, _, _| step != 4);
        assert_eq!(end, Status::Stuck);
        assert_eq!(log.iter().filter(|l| l.0 == 4).count(), 10);
    }

    proptest::proptest! {
        /// Whatever the replies, a saga ends completed, compensated, failed or stuck, never
        /// half way; compensations run only for steps that completed, in reverse order.
        #[test]
        fn every_saga_ends(replies in proptest::collection::vec(proptest::bool::ANY, 64),
                           pivot in proptest::option::of(0usize..5),
                           cwe in proptest::bool::ANY) {
            let mut cfg = order();
            cfg.pivot = pivot;
            cfg.continue_with_error = cwe;
            cfg.retriable_attempts = 3;
            let mut k = 0;
            let (log, end) = drive(&cfg, |_, _, _| {
                k += 1;
                replies.get(k).copied().unwrap_or(true)
            });
            proptest::prop_assert!(end.is_final());
            let done: Vec<usize> = log.iter().filter(|l| !l.1).map(|l| l.0).collect();
            let comps: Vec<usize> = log.iter().filter(|l| l.1 && l.2 == 1).map(|l| l.0).collect();
            for w in comps.windows(2) {
                proptest::prop_assert!(w[0] > w[1]);
            }
            for c in &comps {
                proptest::prop_assert!(done.contains(c));
            }
            if end == Status::Completed {
                proptest::prop_assert!(comps.is_empty());
            }
        }
    }
}
