//! A two-phase commit coordinator with presumed abort (Gray & Reuter, Transaction Processing, 1993, §10.3; Bernstein, Hadzilacos & Goodman, Concurrency Control and Recovery, 1987, ch. 7).
//!
//! Phase 1: PREPARE goes to every participant; a participant that can commit makes its part
//! durable, locks what it touched and votes YES, from then on *in doubt*: it may neither
//! commit nor release its locks until it hears the decision. Any NO (or a vote that never
//! comes: a timeout) decides abort at once; YES from all decides commit. The decision is
//! the commit point: it is logged, and only then is the client answered.
//!
//! Phase 2: the decision goes to every participant sent a PREPARE, resent until each
//! acknowledges. An abort goes to NO voters too: the coordinator cannot tell a refusal from
//! a YES whose answer was lost (a timeout), and a participant holding nothing for the
//! transaction just acknowledges.
//!
//! The coordinator's volatile state dies with it. If it is down when the decision is due,
//! nothing is decided: participants that voted YES stay blocked, in doubt, until it
//! recovers; a recovered coordinator that logged no decision aborts (presumed abort), and
//! one that did resends it. This is the blocking that sagas trade for compensations.

/// What the coordinator decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every participant voted YES.
    Commit,
    /// A NO, a lost vote, or a recovery without a logged decision.
    Abort,
}

/// A vote as the coordinator hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vote {
    Waiting,
    Yes,
    No,
}

/// One transaction's coordinator.
#[derive(Clone, Debug)]
pub struct Coordinator {
    votes: Vec<Vote>,
    decision: Option<Decision>,
    /// Participants that acknowledged the decision.
    acked: Vec<bool>,
    /// It was down when a decision was due: participants wait for its recovery.
    blocked: bool,
}

impl Coordinator {
    /// A transaction over `n` participants, PREPAREs sent.
    pub fn new(n: usize) -> Self {
        Coordinator {
            votes: vec![Vote::Waiting; n],
            decision: None,
            acked: vec![false; n],
            blocked: false,
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    /// Whether it waited for its own recovery before deciding.
    pub fn was_blocked(&self) -> bool {
        self.blocked
    }

    /// Participant `k` voted (`yes`; a timeout or an error is NO). `up`: the coordinator is
    /// running to hear it. Returns the decision when this vote makes it.
    pub fn on_vote(&mut self, k: usize, yes: bool, up: bool) -> Option<Decision> {
        if !up || (self.blocked && self.decision.is_none()) {
            // Nobody hears the vote (it is down, or it came back without the transaction's
            // votes): the coordinator learns nothing until its recovery decides.
            if self.decision.is_none() {
                self.blocked = true;
            }
            return None;
        }
        if self.votes[k] != Vote::Waiting {
            return None;
        }
        self.votes[k] = if yes { Vote::Yes } else { Vote::No };
        if self.decision.is_some() {
            return None;
        }
        let decision = if !yes {
            Decision::Abort
        } else if self.votes.iter().all(|v| *v == Vote::Yes) {
            Decision::Commit
        } else {
            return None;
        };
        self.decision = Some(decision);
        Some(decision)
    }

    /// The coordinator crashed: undecided, it has lost the votes it had (they were in memory)
    /// and can only abort once it recovers.
    pub fn on_crash(&mut self) {
        if self.decision.is_none() {
            self.blocked = true;
        }
    }

    /// The coordinator recovered after being down while a decision was due: presumed abort
    /// when none was logged. Returns the decision to (re)send.
    pub fn on_recover(&mut self) -> Decision {
        *self.decision.get_or_insert(Decision::Abort)
    }

    /// Whether participant `k` must hear the decision: decided, and `k` has not acknowledged.
    pub fn owes(&self, k: usize) -> bool {
        self.decision.is_some() && !self.acked[k]
    }

    /// Participant `k` acknowledged the decision.
    pub fn on_ack(&mut self, k: usize) {
        self.acked[k] = true;
    }

    /// Decided, and every participant that had to hear it did.
    pub fn done(&self) -> bool {
        self.decision.is_some() && (0..self.votes.len()).all(|k| !self.owes(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_yes_commits_and_every_participant_must_hear_it() {
        let mut c = Coordinator::new(3);
        assert_eq!(c.on_vote(0, true, true), None);
        assert_eq!(c.on_vote(2, true, true), None);
        assert_eq!(c.on_vote(1, true, true), Some(Decision::Commit));
        assert!((0..3).all(|k| c.owes(k)));
        c.on_ack(0);
        c.on_ack(1);
        assert!(!c.done());
        c.on_ack(2);
        assert!(c.done());
    }

    #[test]
    fn one_no_aborts_at_once_and_the_others_hear_it_even_before_they_vote() {
        let mut c = Coordinator::new(3);
        assert_eq!(c.on_vote(0, true, true), None);
        assert_eq!(c.on_vote(1, false, true), Some(Decision::Abort));
        // Everyone hears it: the NO may have been a lost YES, and the last may hold locks.
        assert!(c.owes(0) && c.owes(1) && c.owes(2));
        // A late YES changes nothing: it is told to abort.
        assert_eq!(c.on_vote(2, true, true), None);
        assert_eq!(c.decision(), Some(Decision::Abort));
        c.on_ack(0);
        c.on_ack(2);
        assert!(!c.done());
        c.on_ack(1);
        assert!(c.done());
    }

    #[test]
    fn a_coordinator_down_at_the_decision_blocks_then_presumes_abort() {
        let mut c = Coordinator::new(2);
        assert_eq!(c.on_vote(0, true, true), None);
        // The last YES arrives while the coordinator is down: nothing is decided.
        assert_eq!(c.on_vote(1, true, false), None);
        assert!(c.was_blocked());
        assert_eq!(c.decision(), None);
        assert!(
            !c.owes(0),
            "nothing to send before a decision: participant 0 is in doubt"
        );
        // No decision was logged: presumed abort, sent to both (1 voted YES, unheard).
        assert_eq!(c.on_recover(), Decision::Abort);
        assert!(c.owes(0) && c.owes(1));
    }

    #[test]
    fn a_crash_between_the_votes_loses_them_even_if_none_arrives_while_down() {
        let mut c = Coordinator::new(2);
        assert_eq!(c.on_vote(0, true, true), None);
        c.on_crash();
        // Back up before participant 1 answers: its YES finds a coordinator that forgot.
        assert_eq!(c.on_vote(1, true, true), None);
        assert_eq!(c.decision(), None);
        assert_eq!(c.on_recover(), Decision::Abort);
        assert!(c.was_blocked());
    }

    #[test]
    fn a_logged_decision_survives_the_coordinator() {
        let mut c = Coordinator::new(2);
        c.on_vote(0, true, true);
        assert_eq!(c.on_vote(1, true, true), Some(Decision::Commit));
        c.on_ack(0);
        // It crashes before participant 1 acknowledged; on recovery it resends the commit.
        assert_eq!(c.on_recover(), Decision::Commit);
        assert!(!c.owes(0) && c.owes(1));
        assert!(!c.was_blocked());
    }
}
