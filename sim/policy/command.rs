//! The commands the call machines (retry, hedge, fallback) write for the model to carry out.
//!
//! As in stateright's actors, a machine does not act: it appends what should happen to a
//! small buffer, and one interpreter in the model performs it in order, dropping what is
//! left once the call has ended.

use crate::policy::outcome::Outcome;

/// One thing to do for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallCommand {
    /// Abandon every attempt still in flight (the losers of a hedge).
    CancelOutstanding,
    /// Disarm the pending hedge timer, if any.
    CancelHedgeTimer,
    /// Make the next attempt now, through the call's layers.
    SendAttempt,
    /// Arm the timer of the next hedge, if one is still due and none is armed.
    ArmHedge,
    /// End the call with this outcome.
    Finish(Outcome),
}

/// A buffer of at most [`Commands::CAPACITY`] commands, kept inline: a call decision never
/// needs more, and an event never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Commands {
    buf: [CallCommand; Commands::CAPACITY],
    len: u8,
}

impl Default for Commands {
    fn default() -> Self {
        Commands {
            buf: [CallCommand::CancelHedgeTimer; Commands::CAPACITY],
            len: 0,
        }
    }
}

impl Commands {
    /// The most commands one decision writes.
    pub const CAPACITY: usize = 4;

    /// Appends `c`. A machine that wrote more than [`Commands::CAPACITY`] commands is a
    /// bug in this crate, caught by the machines' unit tests.
    pub fn push(&mut self, c: CallCommand) {
        assert!(
            (self.len as usize) < Self::CAPACITY,
            "a call decision wrote more than {} commands",
            Self::CAPACITY
        );
        self.buf[self.len as usize] = c;
        self.len += 1;
    }

    /// The commands, in the order written.
    pub fn as_slice(&self) -> &[CallCommand] {
        &self.buf[..self.len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_written() {
        let mut c = Commands::default();
        c.push(CallCommand::CancelOutstanding);
        c.push(CallCommand::Finish(Outcome::Ok));
        assert_eq!(
            c.as_slice(),
            [
                CallCommand::CancelOutstanding,
                CallCommand::Finish(Outcome::Ok)
            ]
        );
    }
}
