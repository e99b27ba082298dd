//! Messaging: queues and topics held by broker services, publish steps, and consumers.
//!
//! A broker is a service like any other (replicas, workers, faults): publishing is a call to
//! it, and a message is stored when the broker's handler completes (so a publish whose answer
//! is lost or late, then retried, stores a second copy with the same id). Each queue runs the
//! [`crate::policy::broker::Queue`] state machine. While some broker instance is up, ready
//! messages go to consumer instances with a free slot (their `concurrency`, RabbitMQ's
//! prefetch), across the network, and become requests that run the consumer's endpoint. An
//! answer ok acknowledges; a failure nacks (SQS: nothing, the visibility timeout will bring it
//! back; RabbitMQ: requeued); a consumer crash loses the connection (RabbitMQ requeues, SQS
//! waits). A handler slower than the visibility timeout sees its message delivered again.
//!
//! Effects: a consumer's successful handling applies the message's effect. A second
//! application of the same id is a double effect, unless the consumer keeps an idempotency
//! store, which skips ids it has handled within its TTL (checked on arrival and again at
//! commit, as a unique key in the same transaction would). Ids are remembered for
//! max(10 min, TTL): duplicates further apart than that are not detected.

use super::*;
use crate::policy::broker::{Exit, Queue, Receipt};
pub use crate::results::messaging::{EventCounts, QueueCounters, QueueResult};
use std::collections::BTreeMap;

/// The bit of a message id that marks a poison message (every consumer fails on it).
pub(super) const POISON: u64 = 1 << 63;

/// How long applied ids are remembered at least.
const EFFECT_WINDOW: SimDuration = SimDuration::from_secs(600);

/// How often each queue expires old messages and retries deliveries (consumers long-poll).
const POLL: SimDuration = SimDuration::from_secs(1);

pub(super) struct QueueState {
    pub(super) q: Queue,
    /// Deliveries being handled, per instance (global index).
    held: Vec<u32>,
    rr: usize,
    rng: SimRng,
    /// Applied ids: (times applied, last applied).
    effects: BTreeMap<u64, (u32, SimTime)>,
    effect_order: VecDeque<(SimTime, u64)>,
    window: SimDuration,
    pub(super) counters: QueueCounters,
    latency: Latency,
    bucket: Counts,
    bucket_latency: Latency,
    /// Per `visible_within` probe: (messages that count, of them visible in time).
    visible: Vec<(u64, u64)>,
}

impl QueueState {
    /// A consumer handled message `id` successfully: its effect applies, unless an
    /// idempotency store (`ttl`) has seen the id (checked at commit, like a unique key).
    fn apply_effect(&mut self, now: SimTime, id: u64, ttl: Option<SimDuration>) -> bool {
        let key = id & !POISON;
        let entry = self.effects.entry(key).or_insert((0, now));
        if entry.0 > 0 {
            self.counters.duplicates += 1;
        }
        if entry.0 == 0 || ttl.is_none_or_expired(now, entry.1) {
            entry.0 += 1;
            entry.1 = now;
            if entry.0 > 1 {
                self.counters.double_effects += 1;
            } else {
                self.counters.applied += 1;
            }
            self.effect_order.push_back((now, key));
            true
        } else {
            self.counters.skipped += 1;
            false
        }
    }
}

/// A message handed to a consumer.
pub(super) struct DeliveryRec {
    queue: u32,
    receipt: Receipt,
    instance: u32,
    consumer: u32,
    timer: Option<EventKey>,
    handler_done: bool,
}

impl World<'_> {
    pub(super) fn start_messaging(&mut self) {
        for (k, q) in self.spec.queues.iter().enumerate() {
            let ttl = q
                .consumers
                .iter()
                .filter_map(|c| c.idempotency_ttl)
                .max()
                .unwrap_or(SimDuration::ZERO);
            self.queues.push(QueueState {
                q: Queue::new(q.config),
                held: vec![0; self.insts.len()],
                rr: 0,
                rng: SimRng::for_component(self.spec.seed, &format!("queue:{}", q.name)),
                effects: BTreeMap::new(),
                effect_order: VecDeque::new(),
                window: EFFECT_WINDOW.max(ttl),
                counters: QueueCounters::default(),
                latency: Latency::new(2),
                bucket: Counts::default(),
                bucket_latency: Latency::new(2),
                visible: vec![(0, 0); q.visible_within.len()],
            });
            self.engine
                .schedule_at(SimTime::ZERO.after(POLL), Ev::QueuePoll { queue: k as u32 });
        }
    }

    /// A new message id for a publish call (the poison bit drawn from the publisher's share).
    pub(super) fn new_message_id(&mut self, poison: f64) -> u64 {
        self.next_msg += 1;
        let poisoned = poison > 0.0 && self.msg_rng.chance(poison);
        self.next_msg | if poisoned { POISON } else { 0 }
    }

    /// A fire-and-forget publish from request `id`: one message to a broker instance, sent
    /// and forgotten (no timeout, no retry, no answer awaited): if the broker is down or the
    /// message is lost, nobody knows.
    pub(super) fn fire_and_forget(&mut self, now: SimTime, id: ReqId, c: &CallSpec) {
        let p = c.publish.expect("a publish");
        let msg = self.new_message_id(p.poison);
        let b = c.to.0 as usize;
        let (first, n) = (self.svcs[b].first_instance, self.svcs[b].instances);
        self.one_way_rr = self.one_way_rr.wrapping_add(1);
        let instance = first + self.one_way_rr % n;
        let r = &self.reqs[id];
        let (key, from) = (r.key, r.service as usize);
        let mut req = Req::new(
            now,
            b as u32,
            instance,
            0,
            Origin::OneWay,
            State::Sent,
            now >= self.warmup,
        );
        req.key = key;
        req.cargo = Cargo::Publish { dest: p.dest, msg };
        let Some(m) = self.alloc(req) else { return };
        let delay = match self.net.broker_delay(from, b) {
            Some(d) => d,
            None => self.spec.network.latency.sample(&mut self.msg_rng),
        };
        self.engine
            .schedule_at(now.after(delay), Ev::Deliver { req: m });
    }

    /// The broker's handler for a publish completed: store the message in its queue (or in
    /// every subscriber queue of its topic). False when a queue is full: nothing is stored.
    pub(super) fn store_message(&mut self, now: SimTime, dest: Dest, id: u64, key: u64) -> bool {
        let spec = self.spec;
        let queues: &[u32] = match &dest {
            Dest::Topic(t) => &spec.topics[*t as usize].queues,
            Dest::Queue(q) => std::slice::from_ref(q),
        };
        if let Some(&full) = queues.iter().find(|&&q| {
            self.queues[q as usize].q.len() >= self.spec.queues[q as usize].max_messages as usize
        }) {
            self.queues[full as usize].counters.refused += 1;
            return false;
        }
        let horizon = SimTime::ZERO.after(self.spec.duration);
        for &q in queues {
            let st = &mut self.queues[q as usize];
            if now >= self.warmup {
                // A probe t counts the messages whose fate within t the run will see.
                for (t, counts) in self.spec.queues[q as usize]
                    .visible_within
                    .iter()
                    .zip(&mut st.visible)
                {
                    if now.after(*t) <= horizon {
                        counts.0 += 1;
                    }
                }
            }
            st.q.publish(now, id, key);
            st.bucket.requests += 1;
            self.hand_out(now, q);
        }
        self.event_stored(id);
        true
    }

    /// Whether some instance of service `s` runs (a broker, a relay's service).
    pub(super) fn service_runs(&self, s: usize) -> bool {
        let first = self.svcs[s].first_instance as usize;
        self.insts[first..first + self.svcs[s].instances as usize]
            .iter()
            .any(|x| x.present && !x.fault.down && x.paused_at.is_none())
    }

    /// Hands ready messages of queue `qi` to consumer instances with a free slot.
    fn hand_out(&mut self, now: SimTime, qi: u32) {
        let spec = self.spec;
        let qs = &spec.queues[qi as usize];
        if qs.consumers.is_empty() || !self.service_runs(qs.broker.0 as usize) {
            return;
        }
        // Every (consumer, instance) pair, in a fixed order; the rotation spreads messages.
        let mut slots: Vec<(u32, u32)> = Vec::new();
        for (c, cs) in qs.consumers.iter().enumerate() {
            let s = cs.service.0 as usize;
            let first = self.svcs[s].first_instance;
            for k in 0..self.svcs[s].instances {
                slots.push((c as u32, first + k));
            }
        }
        let n = slots.len();
        let mut idle = 0;
        while idle < n && self.queues[qi as usize].q.ready() > 0 {
            let st = &mut self.queues[qi as usize];
            let (c, inst) = slots[st.rr % n];
            st.rr = st.rr.wrapping_add(1);
            let x = &self.insts[inst as usize];
            let cs = &qs.consumers[c as usize];
            let usable = x.present && !x.draining && !x.fault.down && x.booting.is_none();
            if !usable || st.held[inst as usize] >= cs.concurrency {
                idle += 1;
                continue;
            }
            idle = 0;
            let Some(receipt) = st.q.receive(now) else {
                break;
            };
            if receipt.delivery > 1 {
                st.bucket.timeouts += 1;
            }
            // An idempotent consumer skips an id it has handled within its TTL.
            if let (Some(ttl), Some(&(count, last))) =
                (cs.idempotency_ttl, st.effects.get(&(receipt.id & !POISON)))
            {
                if count > 0 && now.since(last) <= ttl {
                    st.counters.duplicates += 1;
                    st.counters.skipped += 1;
                    st.q.ack(&receipt);
                    st.bucket.ok += 1;
                    continue;
                }
            }
            self.deliver_message(now, qi, c, inst, receipt);
        }
    }

    /// Sends a received message to consumer instance `inst` as a request.
    fn deliver_message(&mut self, now: SimTime, qi: u32, c: u32, inst: u32, receipt: Receipt) {
        let cs = &self.spec.queues[qi as usize].consumers[c as usize];
        let s = cs.service.0;
        let measured = now >= self.warmup;
        let lane = self.lane(Lane::Visibility(qi));
        let mut req = Req::new(
            now,
            s,
            inst,
            cs.endpoint,
            Origin::OneWay,
            State::Sent,
            measured,
        );
        req.key = receipt.key;
        req.cargo = Cargo::Delivery { msg: receipt.id };
        if let Some((_, code)) = self.spec.queues[qi as usize].saga {
            // A choreographed saga's event: the participant's request is that saga step.
            req.saga_step = Some(SagaStepRef {
                saga: receipt.key as u32,
                code,
            });
        }
        let d = DeliveryRec {
            queue: qi,
            receipt,
            instance: inst,
            consumer: c,
            timer: None,
            handler_done: false,
        };
        let di = match self.free_deliveries.pop() {
            Some(k) => {
                self.deliveries[k as usize] = d;
                k
            }
            None => {
                self.deliveries.push(d);
                (self.deliveries.len() - 1) as u32
            }
        };
        req.origin = Origin::Delivery { delivery: di };
        let Some(id) = self.alloc(req) else {
            // The run's request limit: the message waits for its visibility timeout.
            self.deliveries[di as usize].handler_done = true;
            let t = self.engine.schedule_timer(
                lane,
                receipt.visible_at,
                Ev::Visibility { delivery: di },
            );
            self.deliveries[di as usize].timer = Some(t);
            return;
        };
        let st = &mut self.queues[qi as usize];
        st.held[inst as usize] += 1;
        let t =
            self.engine
                .schedule_timer(lane, receipt.visible_at, Ev::Visibility { delivery: di });
        self.deliveries[di as usize].timer = Some(t);
        let mut delay = self.spec.network.latency.sample(&mut st.rng);
        // A slow broker (a latency fault on it) is slow to deliver too.
        let b = self.spec.queues[qi as usize].broker.0 as usize;
        let first = self.svcs[b].first_instance as usize;
        let up = self.insts[first..first + self.svcs[b].instances as usize]
            .iter()
            .find(|x| x.present && !x.fault.down && x.paused_at.is_none());
        if let Some((add, p)) = up.and_then(|x| x.fault.delay) {
            if st.rng.chance(p) {
                delay = SimDuration(delay.0.saturating_add(add.0));
            }
        }
        self.engine
            .schedule_at(now.after(delay), Ev::Deliver { req: id });
    }

    /// A consumer's handler ended (or its instance crashed under it: `crashed`).
    pub(super) fn delivery_done(
        &mut self,
        now: SimTime,
        id: ReqId,
        outcome: Outcome,
        crashed: bool,
    ) {
        let Origin::Delivery { delivery: di } = self.reqs[id].origin else {
            unreachable!("a delivery's request")
        };
        let d = &mut self.deliveries[di as usize];
        d.handler_done = true;
        let (qi, receipt, inst, c) = (d.queue, d.receipt, d.instance, d.consumer);
        let spec = self.spec;
        let cs = &spec.queues[qi as usize].consumers[c as usize];
        let st = &mut self.queues[qi as usize];
        st.held[inst as usize] -= 1;
        if !crashed {
            self.release(id);
        }
        let broker_up = self.service_runs(spec.queues[qi as usize].broker.0 as usize);
        let st = &mut self.queues[qi as usize];
        let mut settled = false;
        let mut saga_reply = None;
        let mut saga_effect = None;
        if !broker_up {
            // The broker is down: the acknowledgement (or the nack) is lost, and the visibility
            // timeout will bring the message back once it returns. An effect was still
            // applied: its redelivery is a duplicate.
            if outcome == Outcome::Ok && st.apply_effect(now, receipt.id, cs.idempotency_ttl) {
                if let Some((_, code)) = spec.queues[qi as usize].saga {
                    // Nothing can be published either; the redelivery will carry the saga on.
                    saga_effect = Some(code);
                }
            }
        } else if let (Some((_, code)), false) = (spec.queues[qi as usize].saga, crashed) {
            // A saga step's participant: handled (ok), or failed for business reasons (its
            // failure event is what it publishes): either way the event is consumed.
            let ok = outcome == Outcome::Ok;
            let applied = ok && st.apply_effect(now, receipt.id, cs.idempotency_ttl);
            if st.q.ack(&receipt) {
                st.bucket.ok += 1;
            }
            settled = true;
            saga_reply = Some((receipt.id, ok, applied.then_some(code)));
        } else if outcome == Outcome::Ok {
            st.apply_effect(now, receipt.id, cs.idempotency_ttl);
            if st.q.ack(&receipt) {
                let age = now.since(receipt.published).0;
                if receipt.published >= self.warmup {
                    let horizon = SimTime::ZERO.after(spec.duration);
                    for (t, counts) in spec.queues[qi as usize]
                        .visible_within
                        .iter()
                        .zip(&mut st.visible)
                    {
                        if age <= t.0 && receipt.published.after(*t) <= horizon {
                            counts.1 += 1;
                        }
                    }
                }
                st.latency.record(age);
                st.bucket_latency.record(age);
                st.bucket.ok += 1;
            }
            settled = true;
        } else {
            let requeue_on_crash =
                crashed && st.q.config().on_failure == crate::policy::broker::OnFailure::Requeue;
            match st.q.nack(now, &receipt, requeue_on_crash) {
                Some(Ok(None)) => settled = true,
                Some(Ok(Some(due))) => {
                    settled = true;
                    self.engine.schedule_at(
                        due,
                        Ev::Redeliver {
                            queue: qi as u16,
                            slot: receipt.slot,
                        },
                    );
                }
                Some(Err(exit)) => {
                    settled = true;
                    self.message_left(now, qi, &receipt, exit);
                }
                // SQS: the visibility timeout will bring it back (or a stale receipt).
                None => {}
            }
        }
        if settled {
            if let Some(t) = self.deliveries[di as usize].timer.take() {
                self.engine.cancel(t);
            }
        }
        self.free_delivery(di);
        if let Some(code) = saga_effect {
            self.saga_effect(now, receipt.key as u32, code);
        }
        if let Some((id, ok, applied)) = saga_reply {
            if let Some(code) = applied {
                self.saga_effect(now, receipt.key as u32, code);
            }
            self.saga_event_handled(now, id, ok);
        }
        self.hand_out(now, qi);
    }

    fn free_delivery(&mut self, di: u32) {
        let d = &self.deliveries[di as usize];
        if d.handler_done && d.timer.is_none() {
            self.free_deliveries.push(di);
        }
    }

    fn message_left(&mut self, now: SimTime, qi: u32, r: &Receipt, exit: Exit) {
        let st = &mut self.queues[qi as usize];
        st.bucket.errors += 1;
        self.log.push(StateEvent {
            t_s: secs(now),
            subject: self.spec.queues[qi as usize].name.clone(),
            change: Change::MessageLeft {
                dead_letter: exit == Exit::DeadLettered,
                message: r.id & !POISON,
                poison: r.id & POISON != 0,
                deliveries: r.delivery,
            },
        });
    }

    /// A delivery's visibility timeout ended.
    pub(super) fn on_visibility(&mut self, now: SimTime, di: u32) {
        let d = &mut self.deliveries[di as usize];
        d.timer = None;
        let (qi, receipt) = (d.queue, d.receipt);
        let st = &mut self.queues[qi as usize];
        match st.q.nack(now, &receipt, true) {
            Some(Ok(_)) => {}
            Some(Err(exit)) => self.message_left(now, qi, &receipt, exit),
            None => {}
        }
        self.free_delivery(di);
        self.hand_out(now, qi);
    }

    /// A requeued message's redelivery delay is over.
    pub(super) fn on_redeliver(&mut self, now: SimTime, qi: u16, slot: u32) {
        if self.queues[qi as usize].q.due(slot) {
            self.hand_out(now, qi as u32);
        }
    }

    /// A queue's periodic tick: retention, forgetting old effects, and deliveries (a broker
    /// that came back, a consumer that restarted).
    pub(super) fn on_queue_poll(&mut self, now: SimTime, qi: u32) {
        self.engine
            .schedule_at(now.after(POLL), Ev::QueuePoll { queue: qi });
        let st = &mut self.queues[qi as usize];
        st.q.expire(now);
        let age = st.q.oldest_age(now).0 / 1_000_000;
        st.counters.max_age_ms = st.counters.max_age_ms.max(age);
        st.counters.max_ready = st.counters.max_ready.max(st.q.ready() as u64);
        while let Some(&(t, id)) = st.effect_order.front() {
            if now.since(t) < st.window {
                break;
            }
            st.effect_order.pop_front();
            if st.effects.get(&id).is_some_and(|e| e.1 == t) {
                st.effects.remove(&id);
            }
        }
        self.hand_out(now, qi);
    }

    /// Closes a time-series bucket for every queue.
    pub(super) fn queue_rows(&mut self, now: SimTime, t_s: f64, sink: &mut dyn Sink) {
        for (k, st) in self.queues.iter_mut().enumerate() {
            let mut r = row(
                t_s,
                "queue",
                &self.spec.queues[k].name,
                &st.bucket,
                &st.bucket_latency,
                st.q.in_flight() as u64,
                st.q.ready() as u64,
                0.0,
            );
            r.oldest_age_s = st.q.oldest_age(now).as_secs_f64();
            sink.series(&r);
            st.bucket = Counts::default();
            st.bucket_latency.reset();
        }
    }

    pub(super) fn queue_results(&self) -> Vec<QueueResult> {
        self.queues
            .iter()
            .zip(&self.spec.queues)
            .map(|(st, spec)| QueueResult {
                name: spec.name.clone(),
                stats: st.q.stats,
                counters: st.counters,
                ready_at_end: st.q.ready() as u64,
                in_flight_at_end: st.q.in_flight() as u64,
                present_at_end: st.q.len() as u64,
                latency: st.latency.summary(),
                visible_within: spec
                    .visible_within
                    .iter()
                    .zip(&st.visible)
                    .map(|(t, c)| (*t, c.0, c.1))
                    .collect(),
            })
            .collect()
    }
}

/// An idempotency TTL, if any, against the last time an id was applied.
trait TtlExt {
    fn is_none_or_expired(&self, now: SimTime, last: SimTime) -> bool;
}

impl TtlExt for Option<SimDuration> {
    fn is_none_or_expired(&self, now: SimTime, last: SimTime) -> bool {
        match self {
            None => true,
            Some(ttl) => now.since(last) > *ttl,
        }
    }
}

/// How often an outbox relay publishes what its service's transactions wrote.
const RELAY: SimDuration = SimDuration::from_millis(500);

/// A publish that failed is judged lost this long after (a late store still counts).
const LOST_AFTER: SimDuration = SimDuration::from_secs(60);

/// Outbox state of one service.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox {
    /// (message id, key, destination) written, not yet relayed.
    entries: VecDeque<(u64, u64, Dest)>,
    pub(super) counts: EventCounts,
    used: bool,
}

impl World<'_> {
    /// Schedules the outbox relays of services that write through an outbox.
    pub(super) fn start_outboxes(&mut self) {
        self.outboxes = vec![Outbox::default(); self.svcs.len()];
        for (s, spec) in self.spec.services.iter().enumerate() {
            let uses = spec.endpoints.iter().any(|e| {
                e.steps
                    .iter()
                    .any(|st| matches!(st, Step::Call(c) if matches!(c.write, Some((_, true)))))
            });
            if uses {
                self.outboxes[s].used = true;
                self.engine.schedule_at(
                    SimTime::ZERO.after(RELAY),
                    Ev::OutboxRelay { svc: s as u32 },
                );
            }
        }
    }

    /// A database write that carries an event committed (its handler at the database answered
    /// ok). With an outbox the event is in the same transaction; in a dual write the writer
    /// must still publish it, if it is still there to do so.
    pub(super) fn write_committed(&mut self, child: ReqId) {
        let r = &self.reqs[child];
        let Cargo::Write {
            dest,
            outbox,
            writer,
        } = r.cargo
        else {
            unreachable!("only a write that carries an event commits one")
        };
        let (writer, key) = (writer as usize, r.key);
        self.outboxes[writer].counts.committed += 1;
        if outbox {
            self.next_msg += 1;
            let id = self.next_msg;
            self.outboxes[writer].entries.push_back((id, key, dest));
            return;
        }
        let caller = match r.origin {
            Origin::Call { call } if !r.abandoned && self.calls[call].live => {
                Some(self.calls[call].parent)
            }
            _ => None,
        };
        match caller {
            Some(c) if !self.reqs[c].killed => {
                self.reqs[c].event_due = true;
            }
            // The writer stopped waiting (a timeout) or died: nobody will publish.
            _ => self.outboxes[writer].counts.lost += 1,
        }
    }

    /// The publish half of a dual write starts with message `id`.
    pub(super) fn dual_publish(&mut self, caller: ReqId, id: u64) {
        let r = &mut self.reqs[caller];
        if std::mem::take(&mut r.event_due) {
            self.awaiting.insert(id, (r.service, None));
        }
    }

    /// The publish half of a dual write ended without an answer ok: lost, unless the broker
    /// still stores it within a minute.
    pub(super) fn dual_publish_failed(&mut self, now: SimTime, id: u64) {
        if let Some(e) = self.awaiting.get_mut(&id) {
            e.1 = Some(now);
        }
    }

    /// A request that owed a publish died.
    pub(super) fn writer_died(&mut self, id: ReqId) {
        let r = &mut self.reqs[id];
        if std::mem::take(&mut r.event_due) {
            self.outboxes[r.service as usize].counts.lost += 1;
        }
    }

    /// A message was stored: if a dual write was waiting for it, its event is published.
    pub(super) fn event_stored(&mut self, id: u64) {
        if let Some((s, _)) = self.awaiting.remove(&id) {
            self.outboxes[s as usize].counts.published += 1;
        }
    }

    /// Judges failed dual-write publishes older than a minute lost (all of them at the end).
    pub(super) fn sweep_awaiting(&mut self, now: SimTime, all: bool) {
        let lost: Vec<u64> = self
            .awaiting
            .iter()
            .filter(|(_, &(_, failed))| failed.is_some_and(|t| all || now.since(t) >= LOST_AFTER))
            .map(|(&id, _)| id)
            .collect();
        for id in lost {
            let (s, _) = self.awaiting.remove(&id).expect("listed");
            self.outboxes[s as usize].counts.lost += 1;
        }
    }

    /// A service's outbox relay: while the service and the broker run, everything its
    /// transactions wrote is published.
    pub(super) fn on_outbox_relay(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        self.engine
            .schedule_at(now.after(RELAY), Ev::OutboxRelay { svc });
        let ob = &mut self.outboxes[s];
        ob.counts.outbox_max = ob.counts.outbox_max.max(ob.entries.len() as u64);
        if !self.service_runs(s) {
            // The relay runs in the service.
            return;
        }
        while let Some(&(id, key, dest)) = self.outboxes[s].entries.front() {
            let broker = self.dest_broker(dest);
            if !self.service_runs(broker) || !self.store_message(now, dest, id, key) {
                break;
            }
            self.outboxes[s].entries.pop_front();
            self.outboxes[s].counts.published += 1;
        }
    }

    fn dest_broker(&self, dest: Dest) -> usize {
        match dest {
            Dest::Topic(t) => self.spec.topics[t as usize].broker.0 as usize,
            Dest::Queue(q) => self.spec.queues[q as usize].broker.0 as usize,
        }
    }

    /// Per service with writes that carry events: its counts (pending dual-write publishes
    /// are neither published nor lost yet).
    pub(super) fn event_results(&mut self, end: SimTime) -> Vec<Option<EventCounts>> {
        self.sweep_awaiting(end, true);
        (0..self.svcs.len())
            .map(|s| {
                let writes = self.spec.services[s].endpoints.iter().any(|e| {
                    e.steps
                        .iter()
                        .any(|st| matches!(st, Step::Call(c) if c.write.is_some()))
                });
                writes.then_some(self.outboxes[s].counts)
            })
            .collect()
    }
}
