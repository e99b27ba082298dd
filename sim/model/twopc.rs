//! Two-phase commits (`[[transaction]]`): a handler step runs one at its coordinator, which drives the [`Coordinator`] machine with one carrier request per participant, each making that participant's PREPARE, then COMMIT or ABORT, as real calls.
//!
//! Participants: a PREPARE that succeeds locks the request's key at the participant (the
//! lock table is per participant service and key) and votes YES; from then on the
//! participant is *in doubt* until the decision reaches it, and another transaction's
//! PREPARE on the same key there votes NO (a lock conflict: no waiting, so no deadlock). The
//! decision releases the lock; the in-doubt window is measured from the YES to the decision's
//! arrival. A PREPARE arriving after its transaction was decided votes NO and locks nothing.
//!
//! The coordinator: its decision log is durable (the carriers survive a crash of its
//! instance), its volatile state is not: a crash before the decision loses the votes heard,
//! and an answer that arrives while its instance is down is lost. Such a transaction waits
//! for the coordinator's recovery, checked every `resend`; then presumed abort. An unacknowledged decision is sent again every `resend`.

use super::*;
use crate::policy::twopc::{Coordinator, Decision};
pub use crate::results::saga::TxResult;

/// Marks a participant request's `saga_step` code as a transaction's (step index below).
pub(super) const TX: u32 = 1 << 31;
/// Transactions in flight at once at most (the reference keeps the slot in its low bits).
const SLOT_BITS: u32 = 20;
const MAX_TXS: usize = 1 << SLOT_BITS;

/// One transaction in flight.
struct TxRun {
    def: u32,
    coord: Coordinator,
    /// The handler waiting for the decision (answered at the decision, once).
    waiter: Option<ReqId>,
    /// One carrier per participant, and whether its call is in flight.
    carriers: Vec<ReqId>,
    busy: Vec<bool>,
    /// When each participant voted YES (locked), until the decision reached it.
    yes_at: Vec<Option<SimTime>>,
    /// The coordinator's instance.
    instance: u32,
    started: SimTime,
    generation: u32,
    live: bool,
    /// A recovery check is scheduled.
    recovering: bool,
}

/// Per definition, after warm-up for the counts of ends.
struct TxStats {
    started: u64,
    committed: u64,
    aborted: u64,
    /// Decided only after the coordinator recovered (participants blocked meanwhile).
    blocked: u64,
    /// PREPAREs that voted NO because another transaction held the key there.
    conflicts: u64,
    /// Not started: too many in flight, or no room for the carriers.
    refused: u64,
    /// Decisions sent again (unacknowledged, or after a recovery).
    resends: u64,
    /// Participants' YES to the decision's arrival; start to decision.
    in_doubt: Latency,
    duration: Latency,
}

/// The transactions actor: runs, their slots, and the participants' locks.
pub(super) struct Txs {
    runs: Vec<TxRun>,
    free: Vec<u32>,
    stats: Vec<TxStats>,
    /// (participant service, key) → the holding transaction's reference.
    locks: std::collections::BTreeMap<(u32, u64), u32>,
}

impl Txs {
    pub(super) fn new(spec: &SystemSpec) -> Txs {
        Txs {
            runs: Vec::new(),
            free: Vec::new(),
            stats: spec
                .transactions
                .iter()
                .map(|_| TxStats {
                    started: 0,
                    committed: 0,
                    aborted: 0,
                    blocked: 0,
                    conflicts: 0,
                    refused: 0,
                    resends: 0,
                    in_doubt: Latency::new(2),
                    duration: Latency::new(2),
                })
                .collect(),
            locks: std::collections::BTreeMap::new(),
        }
    }

    fn reference(&self, slot: usize) -> u32 {
        self.runs[slot].generation << SLOT_BITS | slot as u32
    }

    /// The live run a reference names (None: it ended, its slot moved on).
    fn slot_of(&self, reference: u32) -> Option<usize> {
        let slot = (reference & (MAX_TXS as u32 - 1)) as usize;
        let run = self.runs.get(slot)?;
        (run.live && self.reference(slot) == reference).then_some(slot)
    }

    pub(super) fn results(&self, spec: &SystemSpec) -> Vec<TxResult> {
        spec.transactions
            .iter()
            .enumerate()
            .map(|(d, t)| {
                let st = &self.stats[d];
                // This definition's live transactions, by reference.
                let refs: Vec<u32> = (0..self.runs.len())
                    .filter(|&k| self.runs[k].live && self.runs[k].def as usize == d)
                    .map(|k| self.reference(k))
                    .collect();
                TxResult {
                    name: t.name.clone(),
                    started: st.started,
                    committed: st.committed,
                    aborted: st.aborted,
                    blocked: st.blocked,
                    lock_conflicts: st.conflicts,
                    refused: st.refused,
                    resends: st.resends,
                    running_at_end: refs.len() as u64,
                    locks_at_end: self.locks.values().filter(|r| refs.contains(r)).count() as u64,
                    in_doubt: st.in_doubt.summary(),
                    duration: st.duration.summary(),
                }
            })
            .collect()
    }
}

impl World<'_> {
    /// Request `id` reached a `{ transaction = ... }` step: run transaction `def` from its
    /// instance, `id` waiting for the decision. Whether it started.
    #[inline(never)]
    pub(super) fn start_tx(&mut self, now: SimTime, id: ReqId, def: u32) -> bool {
        let spec = self.spec;
        let td = &spec.transactions[def as usize];
        let n = td.participants.len();
        let measured = now >= self.warmup;
        let slot = match self.txs.free.pop() {
            Some(s) => s as usize,
            None if self.txs.runs.len() < MAX_TXS => {
                self.txs.runs.push(TxRun {
                    def,
                    coord: Coordinator::new(0),
                    waiter: None,
                    carriers: Vec::new(),
                    busy: Vec::new(),
                    yes_at: Vec::new(),
                    instance: 0,
                    started: now,
                    generation: 0,
                    live: false,
                    recovering: false,
                });
                self.txs.runs.len() - 1
            }
            None => {
                self.txs.stats[def as usize].refused += measured as u64;
                return false;
            }
        };
        let reference = self.txs.reference(slot);
        let (instance, key, crit) = (
            self.reqs[id].instance,
            self.reqs[id].key,
            self.reqs[id].crit,
        );
        let mut carriers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = Req::new(
                now,
                td.coordinator.0,
                instance,
                td.endpoint,
                Origin::TxCarrier { tx: reference },
                State::Running,
                false,
            );
            c.key = key;
            c.crit = crit;
            match self.alloc(c) {
                Some(cid) => carriers.push(cid),
                None => {
                    for c in carriers {
                        self.release(c);
                    }
                    self.txs.free.push(slot as u32);
                    self.txs.stats[def as usize].refused += measured as u64;
                    return false;
                }
            }
        }
        self.reqs[id].pending = 1;
        let run = &mut self.txs.runs[slot];
        run.def = def;
        run.coord = Coordinator::new(n);
        run.waiter = Some(id);
        run.carriers = carriers.clone();
        run.busy = vec![true; n];
        run.yes_at = vec![None; n];
        run.instance = instance;
        run.started = now;
        run.live = true;
        run.recovering = false;
        self.txs.stats[def as usize].started += measured as u64;
        let (s, ep) = (td.coordinator.0 as usize, td.endpoint as usize);
        for (k, c) in carriers.into_iter().enumerate() {
            let r = &mut self.reqs[c];
            r.pending = 1;
            r.step = k as u32;
            let site = self.site_index[s][ep][k];
            self.start_call(now, c, site);
        }
        true
    }

    /// Coordinator instance `i` crashed: its undecided transactions lost their votes and wait
    /// for its recovery (presumed abort then).
    pub(super) fn tx_coordinator_crashed(&mut self, now: SimTime, i: usize) {
        for slot in 0..self.txs.runs.len() {
            let run = &mut self.txs.runs[slot];
            if run.live && run.instance as usize == i && run.coord.decision().is_none() {
                run.coord.on_crash();
                self.tx_await_recovery(now, slot);
            }
        }
    }

    /// Whether transaction run `slot`'s coordinator instance is up to hear answers.
    fn tx_coordinator_up(&self, slot: usize) -> bool {
        let i = self.txs.runs[slot].instance as usize;
        !self.insts[i].fault.down && self.insts[i].booting.is_none()
    }

    /// A carrier's call (a PREPARE, COMMIT or ABORT) ended.
    pub(super) fn tx_reply(&mut self, now: SimTime, carrier: ReqId, outcome: Outcome) {
        let Origin::TxCarrier { tx } = self.reqs[carrier].origin else {
            unreachable!("only a transaction's carrier hears its calls' answers this way")
        };
        self.reqs[carrier].pending = 0;
        let Some(slot) = self.txs.slot_of(tx) else {
            return;
        };
        let n = self.txs.runs[slot].carriers.len();
        let step = self.reqs[carrier].step as usize;
        let (k, phase) = (step % n, step / n);
        self.txs.runs[slot].busy[k] = false;
        let up = self.tx_coordinator_up(slot);
        let ok = outcome == Outcome::Ok;
        if phase == 0 {
            let decided = self.txs.runs[slot].coord.on_vote(k, ok, up);
            if let Some(d) = decided {
                self.tx_decide(now, slot, d);
            } else if self.txs.runs[slot].coord.decision().is_some() {
                // A late vote: the decision was made without it; tell this participant too.
                self.tx_send(now, slot, k);
            }
        } else if up && ok {
            self.txs.runs[slot].coord.on_ack(k);
        } else if up {
            self.engine.schedule_at(
                now.after(self.spec.transactions[self.txs.runs[slot].def as usize].resend),
                Ev::TxResend { req: carrier },
            );
        }
        if !up {
            self.tx_await_recovery(now, slot);
        }
        self.tx_maybe_done(slot);
    }

    /// The decision is made (and logged): the waiting handler hears it, and phase 2 starts
    /// for every participant whose carrier is free.
    fn tx_decide(&mut self, now: SimTime, slot: usize, d: Decision) {
        let run = &mut self.txs.runs[slot];
        let st = &mut self.txs.stats[run.def as usize];
        if now >= self.warmup {
            match d {
                Decision::Commit => st.committed += 1,
                Decision::Abort => st.aborted += 1,
            }
            st.blocked += run.coord.was_blocked() as u64;
            st.duration.record(now.since(run.started).0);
        }
        if let Some(w) = run.waiter.take() {
            let outcome = if d == Decision::Commit {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            self.call_result(now, w, outcome, true, 0);
        }
        for k in 0..self.txs.runs[slot].carriers.len() {
            self.tx_send(now, slot, k);
        }
    }

    /// Sends the decision to participant `k` if it is owed and its carrier is free.
    fn tx_send(&mut self, now: SimTime, slot: usize, k: usize) {
        let run = &mut self.txs.runs[slot];
        let Some(d) = run.coord.decision() else {
            return;
        };
        if run.busy[k] || !run.coord.owes(k) {
            return;
        }
        run.busy[k] = true;
        let n = run.carriers.len();
        let step = k + n * if d == Decision::Commit { 1 } else { 2 };
        let c = run.carriers[k];
        let td = &self.spec.transactions[run.def as usize];
        let site = self.site_index[td.coordinator.0 as usize][td.endpoint as usize][step];
        let r = &mut self.reqs[c];
        r.pending = 1;
        r.step = step as u32;
        self.start_call(now, c, site);
    }

    /// An unacknowledged decision's resend is due.
    pub(super) fn on_tx_resend(&mut self, now: SimTime, carrier: ReqId) {
        let Origin::TxCarrier { tx } = self.reqs[carrier].origin else {
            return;
        };
        let Some(slot) = self.txs.slot_of(tx) else {
            return;
        };
        let k = self.reqs[carrier].step as usize % self.txs.runs[slot].carriers.len();
        if !self.txs.runs[slot].busy[k] && self.txs.runs[slot].coord.owes(k) {
            if now >= self.warmup {
                self.txs.stats[self.txs.runs[slot].def as usize].resends += 1;
            }
            self.tx_send(now, slot, k);
        }
    }

    /// Schedules a check for the coordinator's recovery (once).
    fn tx_await_recovery(&mut self, now: SimTime, slot: usize) {
        let run = &mut self.txs.runs[slot];
        if !run.recovering {
            run.recovering = true;
            let resend = self.spec.transactions[run.def as usize].resend;
            self.engine
                .schedule_at(now.after(resend), Ev::TxRecover { tx: slot as u32 });
        }
    }

    /// Is the coordinator back? Then it reads its log: decides (presumed abort) or resends.
    pub(super) fn on_tx_recover(&mut self, now: SimTime, slot: u32) {
        let slot = slot as usize;
        self.txs.runs[slot].recovering = false;
        if !self.txs.runs[slot].live {
            return;
        }
        if !self.tx_coordinator_up(slot) {
            self.tx_await_recovery(now, slot);
            return;
        }
        let was = self.txs.runs[slot].coord.decision();
        let d = self.txs.runs[slot].coord.on_recover();
        if was.is_none() {
            self.tx_decide(now, slot, d);
        } else {
            for k in 0..self.txs.runs[slot].carriers.len() {
                self.tx_send(now, slot, k);
            }
        }
        self.tx_maybe_done(slot);
    }

    /// Every participant acknowledged: free the carriers and the slot.
    fn tx_maybe_done(&mut self, slot: usize) {
        let run = &self.txs.runs[slot];
        if !run.live || !run.coord.done() || run.busy.iter().any(|&b| b) {
            return;
        }
        for c in std::mem::take(&mut self.txs.runs[slot].carriers) {
            self.release(c);
        }
        let run = &mut self.txs.runs[slot];
        run.live = false;
        run.generation = run.generation.wrapping_add(1) & ((1 << (32 - SLOT_BITS)) - 1);
        self.txs.free.push(slot as u32);
    }

    /// The code a participant request of carrier step `step` carries: `TX`, the phase
    /// (0 PREPARE, 1 COMMIT, 2 ABORT) in bits 24..31, the participant below.
    #[inline(never)]
    pub(super) fn tx_code(&self, tx: u32, step: u32) -> u32 {
        let n = self
            .txs
            .slot_of(tx)
            .map_or(1, |slot| self.txs.runs[slot].carriers.len().max(1)) as u32;
        TX | ((step / n) << 24) | (step % n)
    }

    /// Participant request `id` (a PREPARE, COMMIT or ABORT of transaction `tx`, as `code`
    /// says) succeeded at its service: lock or release its key. Whether it stays a success
    /// (a PREPARE that finds the key locked by another transaction votes NO).
    #[cold]
    #[inline(never)]
    pub(super) fn tx_participant(&mut self, now: SimTime, id: ReqId, tx: u32, code: u32) -> bool {
        let (s, key) = (self.reqs[id].service, self.reqs[id].key);
        let (phase, k) = ((code & !TX) >> 24, (code & 0xff_ffff) as usize);
        let measured = now >= self.warmup;
        let Some(slot) = self.txs.slot_of(tx) else {
            // Its transaction is over: a late PREPARE votes NO; a late decision is
            // acknowledged (it holds nothing).
            return phase != 0;
        };
        if phase == 0 {
            if self.txs.runs[slot].coord.decision().is_some() {
                // Decided without this vote: lock nothing.
                return false;
            }
            match self.txs.locks.get(&(s, key)) {
                Some(&holder) if holder != tx => {
                    if measured {
                        self.txs.stats[self.txs.runs[slot].def as usize].conflicts += 1;
                    }
                    false
                }
                _ => {
                    self.txs.locks.insert((s, key), tx);
                    self.txs.runs[slot].yes_at[k].get_or_insert(now);
                    true
                }
            }
        } else {
            if self.txs.locks.get(&(s, key)) == Some(&tx) {
                self.txs.locks.remove(&(s, key));
            }
            if let Some(t) = self.txs.runs[slot].yes_at[k].take() {
                if measured {
                    let def = self.txs.runs[slot].def as usize;
                    self.txs.stats[def].in_doubt.record(now.since(t).0);
                }
            }
            true
        }
    }

    pub(super) fn tx_results(&self) -> Vec<TxResult> {
        self.txs.results(self.spec)
    }
}
