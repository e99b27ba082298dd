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

use super::*;
use crate::policy::saga::{Next, Saga, Status};
pub use crate::results::saga::{SagaResult, StepEffects};

/// How long after a saga ends late effects are still attributed to it.
const SETTLE: SimDuration = SimDuration::from_secs(60);

/// Marks a choreographed saga's event id: bit 62, the saga reference in bits 24..56, the
/// command's sequence number below.
pub(super) const CHOREO: u64 = 1 << 62;

/// Saga references pack a slot index (low 20 bits) and its generation.
const SLOT_BITS: u32 = 20;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Most sagas alive (running or settling) at once.
const MAX_SAGAS: usize = 1 << SLOT_BITS;

/// One saga instance.
pub(super) struct SagaRun {
    def: u32,
    state: Saga,
    generation: u32,
    carrier: Option<ReqId>,
    /// Its number, for the event log.
    number: u64,
    started: SimTime,
    ended: Option<SimTime>,
    /// Per step: (effects applied, effects undone).
    effects: Vec<(u32, u32)>,
    first_effect: Option<SimTime>,
    last_effect: SimTime,
    /// The command waiting for its back-off, and the sequence number of the one in flight.
    pending: Option<Next>,
    seq: u64,
    live: bool,
    /// Its log lines, written to the sink when it ends if it is worth showing.
    log: Vec<StateEvent>,
    /// It retried or compensated a step.
    unusual: bool,
}

/// Sagas that simply completed get their log lines written for the first this many of
/// each definition only: events.csv shows the normal path, then the ones that went wrong.
const PLAIN_SAGAS_LOGGED: u64 = 10;

pub(super) struct SagaStats {
    started: u64,
    ends: [u64; 4],
    /// Sagas that simply completed whose log was written.
    plain_logged: u64,
    refused: u64,
    consistent: u64,
    inconsistent: u64,
    steps: Vec<StepEffects>,
    disagreement: Latency,
    duration: Latency,
}

impl World<'_> {
    pub(super) fn start_sagas(&mut self) {
        for s in &self.spec.sagas {
            self.saga_stats.push(SagaStats {
                started: 0,
                ends: [0; 4],
                plain_logged: 0,
                refused: 0,
                consistent: 0,
                inconsistent: 0,
                steps: s
                    .step_names
                    .iter()
                    .map(|n| StepEffects {
                        name: n.clone(),
                        ..StepEffects::default()
                    })
                    .collect(),
                disagreement: Latency::new(2),
                duration: Latency::new(2),
            });
        }
    }

    /// Request `id` reached a `{ saga = ... }` step: start saga `def` on its instance.
    pub(super) fn start_saga(&mut self, now: SimTime, id: ReqId, def: u32) {
        let spec = self.spec;
        let sd = &spec.sagas[def as usize];
        let instance = self.reqs[id].instance;
        let slot = match self.free_sagas.pop() {
            Some(k) => k as usize,
            None if self.sagas.len() < MAX_SAGAS => {
                self.sagas.push(SagaRun {
                    def,
                    state: Saga::new(),
                    generation: 0,
                    carrier: None,
                    number: 0,
                    started: now,
                    ended: None,
                    effects: Vec::new(),
                    first_effect: None,
                    last_effect: now,
                    pending: None,
                    seq: 0,
                    live: false,
                    log: Vec::new(),
                    unusual: false,
                });
                self.sagas.len() - 1
            }
            None => {
                self.saga_stats[def as usize].refused += 1;
                return;
            }
        };
        let generation = self.sagas[slot].generation;
        let reference = (generation << SLOT_BITS) | slot as u32;
        let cid = if sd.choreography.is_some() {
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
            let Some(cid) = self.alloc(carrier) else {
                self.free_sagas.push(slot as u32);
                self.saga_stats[def as usize].refused += 1;
                return;
            };
            Some(cid)
        };
        self.next_saga += 1;
        let steps = sd.step_names.len();
        let run = &mut self.sagas[slot];
        run.def = def;
        run.state = Saga::new();
        run.carrier = cid;
        run.number = self.next_saga;
        run.started = now;
        run.ended = None;
        run.effects.clear();
        run.effects.resize(steps, (0, 0));
        run.first_effect = None;
        run.pending = None;
        run.live = true;
        run.log.clear();
        run.unusual = false;
        self.saga_stats[def as usize].started += 1;
        let next = run.state.start(&sd.config);
        self.saga_next(now, slot, next);
    }

    fn saga_subject(&self, slot: usize) -> String {
        let run = &self.sagas[slot];
        format!("{}#{}", self.spec.sagas[run.def as usize].name, run.number)
    }

    /// Carries out the orchestrator's next command.
    fn saga_next(&mut self, now: SimTime, slot: usize, next: Next) {
        match next {
            Next::Run {
                step,
                compensation,
                attempt,
                delay,
                seq,
            } => {
                self.sagas[slot].seq = seq;
                self.sagas[slot].unusual |= compensation || attempt > 1;
                let sd = &self.spec.sagas[self.sagas[slot].def as usize];
                let subject = self.saga_subject(slot);
                self.sagas[slot].log.push(StateEvent {
                    t_s: secs(now.after(delay)),
                    subject,
                    change: Change::SagaStep {
                        step: sd.step_names[step].clone().into(),
                        compensation,
                        attempt,
                    },
                });
                if delay.0 > 0 {
                    self.sagas[slot].pending = Some(next);
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
        }) = self.sagas[slot].pending.take()
        {
            self.saga_call(now, slot, step, compensation);
        }
    }

    fn saga_call(&mut self, now: SimTime, slot: usize, step: usize, compensation: bool) {
        let sd = &self.spec.sagas[self.sagas[slot].def as usize];
        if let Some(queues) = &sd.choreography {
            // The event goes on the step's queue; its participant will handle it.
            let q = queues[step][compensation as usize].expect("validated: the call exists");
            let run = &self.sagas[slot];
            let reference = (run.generation << SLOT_BITS) | slot as u32;
            let id = CHOREO | (reference as u64) << 24 | (run.seq & 0xff_ffff);
            let broker = self.spec.queues[q as usize].broker.0 as usize;
            if !self.service_runs(broker)
                || !self.store_message(now, Dest::Queue(q), id, reference as u64)
            {
                // The broker cannot take it now: publish again in a second.
                self.sagas[slot].pending = Some(Next::Run {
                    step,
                    compensation,
                    attempt: 1,
                    delay: SimDuration::ZERO,
                    seq: self.sagas[slot].seq,
                });
                self.engine.schedule_at(
                    now.after(SimDuration::from_secs(1)),
                    Ev::SagaStep { saga: slot as u32 },
                );
            }
            return;
        }
        let k = sd.call_steps[step][compensation as usize].expect("validated: the call exists");
        let carrier = self.sagas[slot]
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
        let run = &self.sagas[(reference & SLOT_MASK) as usize];
        let sd = &self.spec.sagas[run.def as usize];
        for (j, at) in sd.call_steps.iter().enumerate() {
            for (c, s) in at.iter().enumerate() {
                if *s == Some(k) {
                    return (j as u32) << 1 | c as u32;
                }
            }
        }
        unreachable!("a saga's carrier only runs its saga's calls")
    }

    /// A participant handled a choreographed saga's event `id` (ok, or a business failure):
    /// it publishes what comes next. A redelivered event's second reply is a duplicate.
    pub(super) fn saga_event_handled(&mut self, now: SimTime, id: u64, ok: bool) {
        let reference = (id >> 24) as u32;
        let seq = id & 0xff_ffff;
        let slot = (reference & SLOT_MASK) as usize;
        let run = &mut self.sagas[slot];
        if !run.live || run.generation != reference >> SLOT_BITS || run.ended.is_some() {
            return;
        }
        let cfg = &self.spec.sagas[run.def as usize].config;
        if let Some(next) = run.state.on_reply(cfg, seq, ok) {
            self.saga_next(now, slot, next);
        }
    }

    /// The call a saga's carrier made has ended.
    pub(super) fn saga_reply(&mut self, now: SimTime, carrier: ReqId, outcome: Outcome) {
        let Origin::SagaCarrier { saga } = self.reqs[carrier].origin else {
            unreachable!("only a saga's carrier hears its calls' answers this way")
        };
        let slot = (saga & SLOT_MASK) as usize;
        self.reqs[carrier].pending = 0;
        let run = &mut self.sagas[slot];
        let cfg = &self.spec.sagas[run.def as usize].config;
        if let Some(next) = run.state.on_reply(cfg, run.seq, outcome == Outcome::Ok) {
            self.saga_next(now, slot, next);
        }
    }

    fn saga_end(&mut self, now: SimTime, slot: usize, status: Status) {
        let run = &mut self.sagas[slot];
        run.ended = Some(now);
        let (def, carrier, started) = (run.def as usize, run.carrier, run.started);
        let st = &mut self.saga_stats[def];
        let k = match status {
            Status::Completed => 0,
            Status::Compensated => 1,
            Status::Failed => 2,
            _ => 3,
        };
        st.ends[k] += 1;
        st.duration.record(now.since(started).0);
        let subject = self.saga_subject(slot);
        let st = &mut self.saga_stats[def];
        let run = &mut self.sagas[slot];
        let plain = status == Status::Completed && !run.unusual;
        if !plain || st.plain_logged < PLAIN_SAGAS_LOGGED {
            st.plain_logged += plain as u64;
            self.log.append(&mut run.log);
            self.log.push(StateEvent {
                t_s: secs(now),
                subject,
                change: Change::SagaEnd {
                    status: status.name().into(),
                },
            });
        }
        run.log.clear();
        if let Some(carrier) = carrier {
            self.release(carrier);
        }
        self.engine
            .schedule_at(now.after(SETTLE), Ev::SagaSettled { saga: slot as u32 });
    }

    /// A participant applied (or undid) the effect of saga step `code` (step << 1 | undo).
    pub(super) fn saga_effect(&mut self, now: SimTime, reference: u32, code: u32) {
        let slot = (reference & SLOT_MASK) as usize;
        let run = &mut self.sagas[slot];
        if !run.live || run.generation != reference >> SLOT_BITS {
            return; // too late: the saga was already judged
        }
        let (step, undo) = ((code >> 1) as usize, code & 1 == 1);
        if undo {
            run.effects[step].1 += 1;
        } else {
            run.effects[step].0 += 1;
        }
        run.first_effect.get_or_insert(now);
        run.last_effect = now;
    }

    /// Judges a saga's effects once it has settled, and frees its slot.
    pub(super) fn on_saga_settled(&mut self, slot: u32) {
        let slot = slot as usize;
        self.judge(slot);
        let run = &mut self.sagas[slot];
        run.live = false;
        run.generation = run.generation.wrapping_add(1) & ((1 << (32 - SLOT_BITS)) - 1);
        self.free_sagas.push(slot as u32);
    }

    fn judge(&mut self, slot: usize) {
        let run = &self.sagas[slot];
        let sd = &self.spec.sagas[run.def as usize];
        let st = &mut self.saga_stats[run.def as usize];
        let status = run.state.status();
        let mut ok = matches!(status, Status::Completed | Status::Compensated);
        for (k, &(applied, undone)) in run.effects.iter().enumerate() {
            let def = sd.config.steps[k];
            // A step with neither compensation nor a place at or after the pivot is read-only.
            let matters =
                def.action && (def.compensation || sd.config.pivot.is_some_and(|p| k >= p));
            if !matters {
                continue;
            }
            let e = &mut st.steps[k];
            match status {
                Status::Completed => match applied {
                    0 => {
                        e.missing += 1;
                        ok = false;
                    }
                    1 if undone == 0 => e.applied += 1,
                    _ => {
                        e.applied_twice += 1;
                        ok = false;
                    }
                },
                _ if applied == 0 => {}
                _ if applied == undone && applied == 1 => e.compensated += 1,
                _ if applied > undone + 1 || (applied >= 2 && applied == undone) => {
                    e.applied_twice += 1;
                    ok = false;
                }
                _ if applied > undone => {
                    e.leaked += 1;
                    ok = false;
                }
                _ => {}
            }
        }
        if ok {
            st.consistent += 1;
            if let Some(first) = run.first_effect {
                st.disagreement.record(run.last_effect.since(first).0);
            }
        } else if status.is_final() {
            st.inconsistent += 1;
        }
    }

    pub(super) fn saga_results(&mut self) -> Vec<SagaResult> {
        // Sagas that ended and have not settled yet are judged now; running ones are not.
        for slot in 0..self.sagas.len() {
            if self.sagas[slot].live && self.sagas[slot].ended.is_some() {
                self.judge(slot);
            }
        }
        let running: Vec<u64> = (0..self.spec.sagas.len())
            .map(|d| {
                self.sagas
                    .iter()
                    .filter(|r| r.live && r.ended.is_none() && r.def as usize == d)
                    .count() as u64
            })
            .collect();
        self.saga_stats
            .iter()
            .zip(&self.spec.sagas)
            .zip(running)
            .map(|((st, sd), running_at_end)| SagaResult {
                name: sd.name.clone(),
                started: st.started,
                completed: st.ends[0],
                compensated: st.ends[1],
                failed: st.ends[2],
                stuck: st.ends[3],
                running_at_end,
                refused: st.refused,
                consistent: st.consistent,
                inconsistent: st.inconsistent,
                steps: st.steps.clone(),
                disagreement: st.disagreement.summary(),
                duration: st.duration.summary(),
            })
            .collect()
    }
}
