//! The saga actor's own state: saga instances in their slots, per-definition counts, and the
//! consistency judgement sixty seconds after each saga ends.
//!
//! It reads only the scenario and its own fields; the model's handlers in `sagas/mod.rs`
//! carry out what it decides (a step's call or event, a back-off timer, the settle timer,
//! the carrier request's release).

use super::super::*;
use super::CHOREO;
use crate::policy::saga::{Next, Saga, Status};
pub use crate::results::saga::{SagaResult, StepEffects};

/// Saga references pack a slot index (low 20 bits) and its generation.
const SLOT_BITS: u32 = 20;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Most sagas alive (running or settling) at once.
const MAX_SAGAS: usize = 1 << SLOT_BITS;

/// Sagas that simply completed get their log lines written for the first this many of
/// each definition only: events.csv shows the normal path, then the ones that went wrong.
const PLAIN_SAGAS_LOGGED: u64 = 10;

/// One saga instance.
pub(super) struct SagaRun {
    pub(super) def: u32,
    pub(super) state: Saga,
    generation: u32,
    pub(super) carrier: Option<ReqId>,
    /// The handler waiting for its end (`{ saga = ..., wait = true }`), if any.
    pub(super) waiter: Option<ReqId>,
    /// Its number, for the event log.
    number: u64,
    started: SimTime,
    ended: Option<SimTime>,
    /// Per step: (effects applied, effects undone).
    effects: Vec<(u32, u32)>,
    first_effect: Option<SimTime>,
    last_effect: SimTime,
    /// The command waiting for its back-off, and the sequence number of the one in flight.
    pub(super) pending: Option<Next>,
    pub(super) seq: u64,
    live: bool,
    /// Its log lines, written to the sink when it ends if it is worth showing.
    log: Vec<StateEvent>,
    /// It retried or compensated a step.
    unusual: bool,
}

struct SagaStats {
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

/// The saga actor.
pub(in crate::model) struct Sagas {
    runs: Vec<SagaRun>,
    free: Vec<u32>,
    stats: Vec<SagaStats>,
    /// The last saga number given out.
    next: u64,
    /// Per definition: participants deduplicate its actions and compensations.
    idempotent: Vec<bool>,
}

impl Sagas {
    pub(in crate::model) fn new(spec: &SystemSpec) -> Self {
        let stats = spec
            .sagas
            .iter()
            .map(|s| SagaStats {
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
            })
            .collect();
        Sagas {
            runs: Vec::new(),
            free: Vec::new(),
            stats,
            next: 0,
            idempotent: spec.sagas.iter().map(|s| s.idempotent).collect(),
        }
    }

    pub(super) fn run(&mut self, slot: usize) -> &mut SagaRun {
        &mut self.runs[slot]
    }

    /// A slot for a new saga of definition `def` and its reference (slot and generation),
    /// or `None` (counted refused) when too many are alive.
    pub(super) fn claim(&mut self, now: SimTime, def: u32) -> Option<(usize, u32)> {
        let slot = match self.free.pop() {
            Some(k) => k as usize,
            None if self.runs.len() < MAX_SAGAS => {
                self.runs.push(SagaRun {
                    def,
                    state: Saga::new(),
                    generation: 0,
                    carrier: None,
                    waiter: None,
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
                self.runs.len() - 1
            }
            None => {
                self.stats[def as usize].refused += 1;
                return None;
            }
        };
        Some((
            slot,
            (self.runs[slot].generation << SLOT_BITS) | slot as u32,
        ))
    }

    /// Gives back a claimed slot whose saga could not start (counted refused).
    pub(super) fn unclaim(&mut self, slot: usize, def: u32) {
        self.free.push(slot as u32);
        self.stats[def as usize].refused += 1;
    }

    /// Starts saga `def` in claimed `slot` (on `carrier`, when orchestrated): its first
    /// command.
    pub(super) fn begin(
        &mut self,
        spec: &SystemSpec,
        now: SimTime,
        slot: usize,
        def: u32,
        carrier: Option<ReqId>,
        waiter: Option<ReqId>,
    ) -> Next {
        let sd = &spec.sagas[def as usize];
        self.next += 1;
        let run = &mut self.runs[slot];
        run.def = def;
        run.state = Saga::new();
        run.carrier = carrier;
        run.waiter = waiter;
        run.number = self.next;
        run.started = now;
        run.ended = None;
        run.effects.clear();
        run.effects.resize(sd.step_names.len(), (0, 0));
        run.first_effect = None;
        run.pending = None;
        run.live = true;
        run.log.clear();
        run.unusual = false;
        self.stats[def as usize].started += 1;
        run.state.start(&sd.config)
    }

    /// The subject of saga `slot`'s log lines: "definition#number".
    fn subject(&self, spec: &SystemSpec, slot: usize) -> String {
        let run = &self.runs[slot];
        format!("{}#{}", spec.sagas[run.def as usize].name, run.number)
    }

    /// Saga `slot` runs a step at `now` plus its back-off (`next`, a `Next::Run`): noted
    /// in its log.
    pub(super) fn note_step(&mut self, spec: &SystemSpec, now: SimTime, slot: usize, next: &Next) {
        let Next::Run {
            step,
            compensation,
            attempt,
            delay,
            seq,
        } = *next
        else {
            return;
        };
        let at = now.after(delay);
        let subject = self.subject(spec, slot);
        let run = &mut self.runs[slot];
        run.seq = seq;
        run.unusual |= compensation || attempt > 1;
        run.log.push(StateEvent {
            t_s: secs(at),
            subject,
            change: Change::SagaStep {
                step: spec.sagas[run.def as usize].step_names[step].clone().into(),
                compensation,
                attempt,
            },
        });
    }

    /// The id of saga `slot`'s current choreography event, and its reference.
    pub(super) fn event_id(&self, slot: usize) -> (u64, u32) {
        let run = &self.runs[slot];
        let reference = (run.generation << SLOT_BITS) | slot as u32;
        (
            CHOREO | (reference as u64) << 24 | (run.seq & 0xff_ffff),
            reference,
        )
    }

    /// The code of a participant request for the hidden endpoint's step `k` of saga
    /// `reference`: step << 1 | compensation.
    pub(super) fn step_code(&self, spec: &SystemSpec, reference: u32, k: u32) -> u32 {
        let run = &self.runs[(reference & SLOT_MASK) as usize];
        let sd = &spec.sagas[run.def as usize];
        for (j, at) in sd.call_steps.iter().enumerate() {
            for (c, s) in at.iter().enumerate() {
                if *s == Some(k) {
                    return (j as u32) << 1 | c as u32;
                }
            }
        }
        unreachable!("a saga's carrier only runs its saga's calls")
    }

    /// A participant handled choreography event `id` (ok, or a business failure): the saga's
    /// next command, unless the reply is a duplicate or the saga is over.
    pub(super) fn event_handled(
        &mut self,
        spec: &SystemSpec,
        id: u64,
        ok: bool,
    ) -> Option<(usize, Next)> {
        let reference = (id >> 24) as u32;
        let seq = id & 0xff_ffff;
        let slot = (reference & SLOT_MASK) as usize;
        let run = &mut self.runs[slot];
        if !run.live || run.generation != reference >> SLOT_BITS || run.ended.is_some() {
            return None;
        }
        let cfg = &spec.sagas[run.def as usize].config;
        run.state.on_reply(cfg, seq, ok).map(|n| (slot, n))
    }

    /// The call of orchestrated saga `reference` ended: its next command.
    pub(super) fn call_ended(
        &mut self,
        spec: &SystemSpec,
        reference: u32,
        ok: bool,
    ) -> Option<(usize, Next)> {
        let slot = (reference & SLOT_MASK) as usize;
        let run = &mut self.runs[slot];
        let cfg = &spec.sagas[run.def as usize].config;
        run.state.on_reply(cfg, run.seq, ok).map(|n| (slot, n))
    }

    /// Saga `slot` ended with `status`: counted, its log written to `log` if worth showing.
    /// Returns its carrier, to release.
    pub(super) fn end(
        &mut self,
        spec: &SystemSpec,
        now: SimTime,
        slot: usize,
        status: Status,
        log: &mut Vec<StateEvent>,
    ) -> Option<ReqId> {
        let subject = self.subject(spec, slot);
        let run = &mut self.runs[slot];
        run.ended = Some(now);
        let st = &mut self.stats[run.def as usize];
        let k = match status {
            Status::Completed => 0,
            Status::Compensated => 1,
            Status::Failed => 2,
            _ => 3,
        };
        st.ends[k] += 1;
        st.duration.record(now.since(run.started).0);
        let plain = status == Status::Completed && !run.unusual;
        if !plain || st.plain_logged < PLAIN_SAGAS_LOGGED {
            st.plain_logged += plain as u64;
            log.append(&mut run.log);
            log.push(StateEvent {
                t_s: secs(now),
                subject,
                change: Change::SagaEnd {
                    status: status.name().into(),
                },
            });
        }
        run.log.clear();
        run.carrier
    }

    /// A participant applied (or undid) the effect of saga step `code` (step << 1 | undo).
    pub(in crate::model) fn effect(&mut self, now: SimTime, reference: u32, code: u32) {
        let slot = (reference & SLOT_MASK) as usize;
        let run = &mut self.runs[slot];
        if !run.live || run.generation != reference >> SLOT_BITS {
            return; // too late: the saga was already judged
        }
        let (step, undo) = ((code >> 1) as usize, code & 1 == 1);
        let e = &mut run.effects[step];
        let count = if undo { &mut e.1 } else { &mut e.0 };
        if *count > 0 && self.idempotent[run.def as usize] {
            // The participant has seen this saga's step (its idempotency key): a no-op.
            return;
        }
        *count += 1;
        run.first_effect.get_or_insert(now);
        run.last_effect = now;
    }

    /// Judges saga `slot`'s effects once it has settled, and frees its slot.
    pub(super) fn settled(&mut self, spec: &SystemSpec, slot: usize) {
        self.judge(spec, slot);
        let run = &mut self.runs[slot];
        run.live = false;
        run.generation = run.generation.wrapping_add(1) & ((1 << (32 - SLOT_BITS)) - 1);
        self.free.push(slot as u32);
    }

    fn judge(&mut self, spec: &SystemSpec, slot: usize) {
        let run = &self.runs[slot];
        let sd = &spec.sagas[run.def as usize];
        let st = &mut self.stats[run.def as usize];
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
                _ => {
                    // Undone more often than done: a compensation whose first run was only
                    // slow ran again (a refund paid twice).
                    e.undone_twice += 1;
                    ok = false;
                }
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

    /// The results at the end: sagas that ended and have not settled yet are judged now;
    /// running ones are counted as running.
    pub(in crate::model) fn results(&mut self, spec: &SystemSpec) -> Vec<SagaResult> {
        for slot in 0..self.runs.len() {
            if self.runs[slot].live && self.runs[slot].ended.is_some() {
                self.judge(spec, slot);
            }
        }
        let running: Vec<u64> = (0..spec.sagas.len())
            .map(|d| {
                self.runs
                    .iter()
                    .filter(|r| r.live && r.ended.is_none() && r.def as usize == d)
                    .count() as u64
            })
            .collect();
        self.stats
            .iter()
            .zip(&spec.sagas)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A system with saga "order" (create, compensable; charge, the pivot), orchestrated.
    fn spec() -> SystemSpec {
        let text = "[sim]\nname = \"s\"\nduration = \"10s\"\n\
             [[service]]\nname = \"a\"\ncalls = [{ saga = \"order\" }]\n\
             [[service]]\nname = \"orders\"\n\
             [[service]]\nname = \"payment\"\n\
             [[saga]]\nname = \"order\"\norchestrator = \"a\"\npivot = \"charge\"\nsteps = [\n\
               { name = \"create\", action = { to = \"orders\" }, compensation = { to = \"orders\" } },\n\
               { name = \"charge\", action = { to = \"payment\" } },\n]\n\
             [[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = { kind = \"constant\", rate = 1 }\n";
        crate::scenario::parse("s.toml", text, &[])
            .expect("valid")
            .spec
    }

    const S: u64 = 1_000_000_000;
    /// Effect codes: step << 1 | undo.
    const CREATE: u32 = 0;
    const UNDO_CREATE: u32 = 1;
    const CHARGE: u32 = 2;

    /// Starts a saga and answers its calls with `replies` until it ends: its reference.
    fn run(s: &mut Sagas, spec: &SystemSpec, replies: &[bool]) -> (usize, u32, Status) {
        let (slot, reference) = s.claim(SimTime(S), 0).expect("room");
        let mut next = s.begin(spec, SimTime(S), slot, 0, None, None);
        let mut replies = replies.iter();
        loop {
            match next {
                Next::Run { seq, .. } => {
                    s.runs[slot].seq = seq;
                    let ok = *replies.next().expect("a reply for every call");
                    next = s.call_ended(spec, reference, ok).expect("a next command").1;
                }
                Next::End(status) => {
                    let mut log = Vec::new();
                    s.end(spec, SimTime(2 * S), slot, status, &mut log);
                    assert!(!log.is_empty(), "the first sagas are logged");
                    return (slot, reference, status);
                }
            }
        }
    }

    fn result(s: &mut Sagas, spec: &SystemSpec) -> SagaResult {
        s.results(spec).remove(0)
    }

    #[test]
    fn a_completed_saga_whose_effects_applied_once_is_consistent() {
        let spec = spec();
        let mut s = Sagas::new(&spec);
        let (slot, reference, status) = run(&mut s, &spec, &[true, true]);
        assert_eq!(status, Status::Completed);
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S + S / 2), reference, CHARGE);
        s.settled(&spec, slot);
        let r = result(&mut s, &spec);
        assert_eq!(
            (r.started, r.completed, r.consistent, r.inconsistent),
            (1, 1, 1, 0)
        );
        // Participants disagreed from the first effect to the last: 500 ms.
        assert_eq!(r.disagreement.mean, 500.0);
        // Judged and freed: a late effect no longer counts, and the slot is reused under a
        // new generation.
        s.effect(SimTime(3 * S), reference, CREATE);
        let (again, reference2) = s.claim(SimTime(3 * S), 0).expect("room");
        assert_eq!((again, reference2 == reference), (slot, false));
    }

    #[test]
    fn a_compensated_saga_that_undid_its_effect_is_consistent_and_one_that_leaked_is_not() {
        let spec = spec();
        let mut s = Sagas::new(&spec);
        // create ok, charge fails: create is compensated.
        let (slot, reference, status) = run(&mut s, &spec, &[true, false, true]);
        assert_eq!(status, Status::Compensated);
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S), reference, UNDO_CREATE);
        s.settled(&spec, slot);
        let (slot, reference, _) = run(&mut s, &spec, &[true, false, true]);
        // The compensation answered ok but its effect never applied: the order leaked.
        s.effect(SimTime(S), reference, CREATE);
        s.settled(&spec, slot);
        let r = result(&mut s, &spec);
        assert_eq!((r.compensated, r.consistent, r.inconsistent), (2, 1, 1));
        assert_eq!((r.steps[0].compensated, r.steps[0].leaked), (1, 1));
    }

    #[test]
    fn an_effect_undone_twice_is_inconsistent() {
        let spec = spec();
        let mut s = Sagas::new(&spec);
        let (slot, reference, status) = run(&mut s, &spec, &[true, false, true]);
        assert_eq!(status, Status::Compensated);
        // The order was created once and cancelled twice (a retried compensation whose
        // first attempt was only slow).
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S), reference, UNDO_CREATE);
        s.effect(SimTime(S), reference, UNDO_CREATE);
        s.settled(&spec, slot);
        let r = result(&mut s, &spec);
        assert_eq!((r.consistent, r.inconsistent), (0, 1));
        assert_eq!((r.steps[0].compensated, r.steps[0].undone_twice), (0, 1));
    }

    #[test]
    fn an_effect_applied_twice_is_inconsistent_even_when_the_saga_completed() {
        let spec = spec();
        let mut s = Sagas::new(&spec);
        let (slot, reference, _) = run(&mut s, &spec, &[true, true]);
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S), reference, CHARGE);
        s.settled(&spec, slot);
        let r = result(&mut s, &spec);
        assert_eq!(
            (r.consistent, r.inconsistent, r.steps[0].applied_twice),
            (0, 1, 1)
        );
    }

    #[test]
    fn a_saga_ended_but_not_settled_is_judged_at_the_end_and_a_running_one_is_counted() {
        let spec = spec();
        let mut s = Sagas::new(&spec);
        let (_, reference, _) = run(&mut s, &spec, &[true, true]);
        s.effect(SimTime(S), reference, CREATE);
        s.effect(SimTime(S), reference, CHARGE);
        let (slot, _) = s.claim(SimTime(S), 0).expect("room");
        s.begin(&spec, SimTime(S), slot, 0, None, None);
        let r = result(&mut s, &spec);
        assert_eq!((r.started, r.consistent, r.running_at_end), (2, 1, 1));
    }
}
