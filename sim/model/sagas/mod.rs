//! Orchestrated sagas: a handler step starts one, and its orchestrator service runs it with the
//! [`crate::policy::saga::Saga`] state machine, each action and compensation a real call
//! (with its timeout, retries and breaker) to a participant.
//!
//! The orchestrator's state is durable (Temporal, Eventuate keep it in a database): a saga
//! runs on a carrier request of its own, which a crash of the orchestrator instance does not
//! kill, and the starting handler goes on at once (the API answers "pending").
//!
//! Choreography (`mode = "choreography"`): no orchestrator calls anyone. Each step is an
//! event on the broker, in a queue of its own that its participant consumes; a participant
//! that handles its event publishes the next one (the next step's, or on a business failure
//! the compensation events, in reverse order). The same state machine decides which event
//! comes next, but it learns only from the events: a redelivered event is handled again
//! (a double effect, unless the participant is idempotent) and its second "reply" is ignored
//! as a duplicate; nothing times out, so a slow participant delays the saga instead of
//! failing it.
//!
//! Consistency: every participant request that completes ok applies its effect (an action)
//! or undoes it (a compensation), counted per saga and step, whatever the orchestrator
//! learns (a timed-out action may still apply, later). Sixty seconds after a saga ends, its
//! effects are judged: a completed saga is consistent when every step with an effect applied
//! exactly once; a compensated one when every effect applied was undone as often; failed and
//! stuck sagas are inconsistent. How long participants disagreed is the time from the first
//! effect to the last.

mod actor;

use super::*;
use crate::policy::saga::{Next, Status};
pub(super) use actor::Sagas;
pub use actor::{SagaResult, StepEffects};

/// How long after a saga ends late effects are still attributed to it.
const SETTLE: SimDuration = SimDuration::from_secs(60);

/// Marks a choreographed saga's event id: bit 62, the saga reference in bits 24..56, the
/// command's sequence number below.
pub(super) const CHOREO: u64 = 1 << 62;

impl World<'_> {
    /// Request `id` reached a `{ saga = ... }` step: start saga `def` on its instance; with
    /// `wait`, `id` waits for the saga's end (as for a call's answer). Whether it started.
    #[inline(never)]
    pub(super) fn start_saga(&mut self, now: SimTime, id: ReqId, def: u32, wait: bool) -> bool {
        let spec = self.spec;
        let sd = &spec.sagas[def as usize];
        let instance = self.reqs[id].instance;
        let Some((slot, reference)) = self.sagas.claim(now, def) else {
            return false;
        };
        let carrier = if sd.choreography.is_some() {
            None
        } else {
            let mut carrier = Req::new(
                now,
                sd.orchestrator.0,
                instance,
                sd.endpoint,
                Origin::SagaCarrier { saga: reference },
                State::Running,
                false,
            );
            carrier.key = self.reqs[id].key;
            carrier.crit = self.reqs[id].crit;
            let Some(cid) = self.alloc(carrier) else {
                self.sagas.unclaim(slot, def);
                return false;
            };
            Some(cid)
        };
        let waiter = wait.then(|| {
            self.reqs[id].pending = 1;
            id
        });
        let next = self.sagas.begin(spec, now, slot, def, carrier, waiter);
        self.saga_next(now, slot, next);
        true
    }

    /// Carries out the orchestrator's next command.
    fn saga_next(&mut self, now: SimTime, slot: usize, next: Next) {
        match next {
            Next::Run {
                step,
                compensation,
                delay,
                ..
            } => {
                self.sagas.note_step(self.spec, now, slot, &next);
                if delay.0 > 0 {
                    self.sagas.run(slot).pending = Some(next);
                    self.engine
                        .schedule_at(now.after(delay), Ev::SagaStep { saga: slot as u32 });
                } else {
                    self.saga_call(now, slot, step, compensation);
                }
            }
            Next::End(status) => self.saga_end(now, slot, status),
        }
    }

    /// A back-off is over: run the waiting command.
    pub(super) fn on_saga_step(&mut self, now: SimTime, slot: u32) {
        let slot = slot as usize;
        if let Some(Next::Run {
            step, compensation, ..
        }) = self.sagas.run(slot).pending.take()
        {
            self.saga_call(now, slot, step, compensation);
        }
    }

    fn saga_call(&mut self, now: SimTime, slot: usize, step: usize, compensation: bool) {
        let sd = &self.spec.sagas[self.sagas.run(slot).def as usize];
        if let Some(queues) = &sd.choreography {
            // The event goes on the step's queue; its participant will handle it.
            let q = queues[step][compensation as usize].expect("validated: the call exists");
            let (id, reference) = self.sagas.event_id(slot);
            let broker = self.spec.queues[q as usize].broker.0 as usize;
            if !self.service_runs(broker)
                || !self.store_message(now, Dest::Queue(q), id, reference as u64)
            {
                // The broker cannot take it now: publish again in a second.
                let run = self.sagas.run(slot);
                run.pending = Some(Next::Run {
                    step,
                    compensation,
                    attempt: 1,
                    delay: SimDuration::ZERO,
                    seq: run.seq,
                });
                self.engine.schedule_at(
                    now.after(SimDuration::from_secs(1)),
                    Ev::SagaStep { saga: slot as u32 },
                );
            }
            return;
        }
        let k = sd.call_steps[step][compensation as usize].expect("validated: the call exists");
        let carrier = self
            .sagas
            .run(slot)
            .carrier
            .expect("an orchestrated saga has a carrier");
        let (s, ep) = (sd.orchestrator.0 as usize, sd.endpoint as usize);
        let site = self.site_index[s][ep][k as usize];
        let r = &mut self.reqs[carrier];
        r.pending = 1;
        r.step = k;
        self.start_call(now, carrier, site);
    }

    /// The code of a participant request for the hidden endpoint's step `k` of saga
    /// `reference`: step << 1 | compensation.
    pub(super) fn saga_step_code(&self, reference: u32, k: u32) -> u32 {
        self.sagas.step_code(self.spec, reference, k)
    }

    /// A participant handled a choreographed saga's event `id` (ok, or a business failure):
    /// it publishes what comes next. A redelivered event's second reply is a duplicate.
    pub(super) fn saga_event_handled(&mut self, now: SimTime, id: u64, ok: bool) {
        if let Some((slot, next)) = self.sagas.event_handled(self.spec, id, ok) {
            self.saga_next(now, slot, next);
        }
    }

    /// The call a saga's carrier made has ended.
    pub(super) fn saga_reply(&mut self, now: SimTime, carrier: ReqId, outcome: Outcome) {
        let Origin::SagaCarrier { saga } = self.reqs[carrier].origin else {
            unreachable!("only a saga's carrier hears its calls' answers this way")
        };
        self.reqs[carrier].pending = 0;
        let ok = outcome == Outcome::Ok;
        if let Some((slot, next)) = self.sagas.call_ended(self.spec, saga, ok) {
            self.saga_next(now, slot, next);
        }
    }

    fn saga_end(&mut self, now: SimTime, slot: usize, status: Status) {
        let waiter = self.sagas.run(slot).waiter.take();
        if let Some(carrier) = self.sagas.end(self.spec, now, slot, status, &mut self.log) {
            self.release(carrier);
        }
        if let Some(w) = waiter {
            // The handler that waits hears the end as a call's answer: it goes on if the saga
            // completed, else it fails (compensated, failed or stuck alike: the order is off).
            let outcome = if status == Status::Completed {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            self.call_result(now, w, outcome, true, 0);
        }
        self.engine
            .schedule_at(now.after(SETTLE), Ev::SagaSettled { saga: slot as u32 });
    }

    /// A participant applied (or undid) the effect of saga step `code` (step << 1 | undo).
    pub(super) fn saga_effect(&mut self, now: SimTime, reference: u32, code: u32) {
        self.sagas.effect(now, reference, code);
    }

    /// Judges a saga's effects once it has settled, and frees its slot.
    pub(super) fn on_saga_settled(&mut self, slot: u32) {
        self.sagas.settled(self.spec, slot as usize);
    }
}
