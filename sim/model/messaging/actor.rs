//! The messaging actor's own state: queue states, deliveries in flight, message ids, outboxes.
//!
//! Everything here reads only the scenario and its own fields; the model's handlers in
//! `messaging/mod.rs` ask it what happened and interpret the answer (schedule a redelivery,
//! cancel a visibility timer, log a message that left, carry a saga on).

use super::super::*;
use crate::policy::broker::{Exit, OnFailure, Queue, Receipt};
pub use crate::results::messaging::{EventCounts, QueueCounters, QueueResult};
use std::collections::BTreeMap;

/// The bit of a message id that marks a poison message (every consumer fails on it).
pub(in crate::model) const POISON: u64 = 1 << 63;

/// How long applied ids are remembered at least.
const EFFECT_WINDOW: SimDuration = SimDuration::from_secs(600);

/// A publish that failed is judged lost this long after (a late store still counts).
const LOST_AFTER: SimDuration = SimDuration::from_secs(60);

/// One broker queue: the queue machine, who holds what, applied effects, counters.
pub(in crate::model) struct QueueState {
    pub(in crate::model) q: Queue,
    /// Deliveries being handled, per instance (global index).
    pub(super) held: Vec<u32>,
    pub(super) rr: usize,
    pub(super) rng: SimRng,
    /// Applied ids: (times applied, last applied).
    pub(super) effects: BTreeMap<u64, (u32, SimTime)>,
    effect_order: VecDeque<(SimTime, u64)>,
    window: SimDuration,
    pub(in crate::model) counters: QueueCounters,
    latency: Latency,
    pub(super) bucket: Counts,
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
        let expired = match ttl {
            None => true,
            Some(ttl) => now.since(entry.1) > ttl,
        };
        if entry.0 == 0 || expired {
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
    pub(super) queue: u32,
    pub(super) receipt: Receipt,
    pub(super) instance: u32,
    pub(super) consumer: u32,
    pub(super) timer: Option<EventKey>,
    pub(super) handler_done: bool,
    /// How the handler ended, while its acknowledgement travels to the broker: ok, and
    /// whether a saga step's retry policy retries its failure.
    pub(super) acked_ok: bool,
    pub(super) acked_retry: bool,
    /// Its handler's request is alive (the record must outlive it).
    pub(super) running: bool,
    /// A choreographed saga step's timeout fired: the participant failed the step and no
    /// longer waits for this handling.
    pub(super) gave_up: bool,
    /// That timeout, while it is pending.
    pub(super) deadline: Option<EventKey>,
}

/// Outbox state of one service.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox {
    /// (message id, key, destination) written, not yet relayed.
    pub(super) entries: VecDeque<(u64, u64, Dest)>,
    /// Rows the relay published and has not marked sent yet, with the instance that runs
    /// it and that instance's crash epoch: a crash before the mark leaves them unmarked.
    pub(super) marking: Vec<(u64, u64, Dest)>,
    pub(super) relay: (u32, u32),
    /// Ids whose rows a crash left unmarked after they were published: their next publish
    /// is a re-publish, not a new event.
    pub(super) again: std::collections::BTreeSet<u64>,
    pub(super) counts: EventCounts,
}

/// How a consumer's handler ended.
#[derive(Clone, Copy, Debug)]
pub(super) struct HandlerEnd {
    /// It answered ok.
    pub(super) ok: bool,
    /// Its instance crashed under it.
    pub(super) crashed: bool,
    /// Some broker instance runs to hear the answer.
    pub(super) broker_up: bool,
    /// A choreographed saga step's failure that its retry policy retries: back to the queue
    /// (after the policy's back-off) instead of the step failing.
    pub(super) retry: bool,
}

/// How a consumer's handler ending settles its message.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Settled {
    /// The message left the delivery (acked, requeued, dead-lettered): its visibility
    /// timer is cancelled.
    pub(super) settled: bool,
    /// A requeue with a delay: redeliver at this time.
    pub(super) redeliver_at: Option<SimTime>,
    /// The message left the queue for good (dead letter or dropped).
    pub(super) left: Option<Exit>,
    /// A saga step's effect applied (its code).
    pub(super) saga_effect: Option<u32>,
    /// A choreographed saga's event consumed: (message id, handled ok).
    pub(super) saga_reply: Option<(u64, bool)>,
}

/// The messaging actor.
pub(in crate::model) struct Messaging {
    pub(in crate::model) queues: Vec<QueueState>,
    deliveries: Vec<DeliveryRec>,
    free_deliveries: Vec<u32>,
    /// The last message id given out.
    next_msg: u64,
    /// Draws poison messages and fire-and-forget network delays.
    pub(super) rng: SimRng,
    /// Round robin of fire-and-forget publishes over broker instances.
    one_way_rr: u32,
    /// Per service: its outbox and the events its writes committed.
    pub(super) outboxes: Vec<Outbox>,
    /// Dual-write publishes not stored yet: message id -> (writer, when the publish failed).
    awaiting: BTreeMap<u64, (u32, Option<SimTime>)>,
}

impl Messaging {
    /// The state of `spec`'s queues, for a system of `instances` instances and `services`
    /// services.
    pub(in crate::model) fn new(spec: &SystemSpec, instances: usize, services: usize) -> Self {
        let queues = spec
            .queues
            .iter()
            .map(|q| {
                let ttl = q
                    .consumers
                    .iter()
                    .filter_map(|c| c.idempotency_ttl)
                    .max()
                    .unwrap_or(SimDuration::ZERO);
                QueueState {
                    q: Queue::new(q.config),
                    held: vec![0; instances],
                    rr: 0,
                    rng: SimRng::for_component(spec.seed, &format!("queue:{}", q.name)),
                    effects: BTreeMap::new(),
                    effect_order: VecDeque::new(),
                    window: EFFECT_WINDOW.max(ttl),
                    counters: QueueCounters::default(),
                    latency: Latency::new(2),
                    bucket: Counts::default(),
                    bucket_latency: Latency::new(2),
                    visible: vec![(0, 0); q.visible_within.len()],
                }
            })
            .collect();
        Messaging {
            queues,
            deliveries: Vec::new(),
            free_deliveries: Vec::new(),
            next_msg: 0,
            rng: SimRng::for_component(spec.seed, "messages"),
            one_way_rr: 0,
            outboxes: vec![Outbox::default(); services],
            awaiting: BTreeMap::new(),
        }
    }

    /// A new message id for a publish call (the poison bit drawn from the publisher's share).
    pub(in crate::model) fn new_message_id(&mut self, poison: f64) -> u64 {
        self.next_msg += 1;
        let poisoned = poison > 0.0 && self.rng.chance(poison);
        self.next_msg | if poisoned { POISON } else { 0 }
    }

    /// The next broker instance (of `n`) for a fire-and-forget publish.
    pub(super) fn next_one_way(&mut self, n: u32) -> u32 {
        self.one_way_rr = self.one_way_rr.wrapping_add(1);
        self.one_way_rr % n
    }

    /// Whether a publish to `queues` fits: the first full one counts a refusal.
    pub(super) fn refuses(&mut self, spec: &SystemSpec, queues: &[u32]) -> bool {
        let full = queues.iter().find(|&&q| {
            self.queues[q as usize].q.len() >= spec.queues[q as usize].max_messages as usize
        });
        if let Some(&q) = full {
            self.queues[q as usize].counters.refused += 1;
        }
        full.is_some()
    }

    /// Stores message `id` in queue `q` at `now` (`measured` after the warm-up).
    pub(super) fn store(
        &mut self,
        spec: &SystemSpec,
        now: SimTime,
        measured: bool,
        q: u32,
        id: u64,
        key: u64,
    ) {
        let st = &mut self.queues[q as usize];
        if measured {
            // A probe t counts the messages whose fate within t the run will see.
            let horizon = SimTime::ZERO.after(spec.duration);
            for (t, counts) in spec.queues[q as usize]
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
    }

    /// Keeps `d`, returning its index.
    pub(super) fn add_delivery(&mut self, d: DeliveryRec) -> u32 {
        match self.free_deliveries.pop() {
            Some(k) => {
                self.deliveries[k as usize] = d;
                k
            }
            None => {
                self.deliveries.push(d);
                (self.deliveries.len() - 1) as u32
            }
        }
    }

    pub(super) fn delivery_ref(&self, di: u32) -> &DeliveryRec {
        &self.deliveries[di as usize]
    }

    pub(super) fn delivery(&mut self, di: u32) -> &mut DeliveryRec {
        &mut self.deliveries[di as usize]
    }

    /// Frees delivery `di` once its handler ended and its timer is gone.
    pub(super) fn free_delivery(&mut self, di: u32) {
        let d = &self.deliveries[di as usize];
        if d.handler_done && d.timer.is_none() && !d.running {
            self.free_deliveries.push(di);
        }
    }

    /// A consumer's handler for delivery `di` ended (`how`): acknowledge, nack or leave it
    /// to the visibility timeout, and apply its effect.
    pub(super) fn handler_ended(
        &mut self,
        spec: &SystemSpec,
        now: SimTime,
        warmup: SimTime,
        di: u32,
        how: HandlerEnd,
    ) -> Settled {
        let HandlerEnd {
            ok,
            crashed,
            broker_up,
            retry,
        } = how;
        let d = &mut self.deliveries[di as usize];
        d.handler_done = true;
        let (qi, receipt, c) = (d.queue, d.receipt, d.consumer);
        let qs = &spec.queues[qi as usize];
        let ttl = qs.consumers[c as usize].idempotency_ttl;
        let st = &mut self.queues[qi as usize];
        let mut out = Settled::default();
        if !broker_up {
            // The broker is down: the acknowledgement (or the nack) is lost, and the visibility
            // timeout will bring the message back once it returns. An effect was still
            // applied: its redelivery is a duplicate.
            if ok && st.apply_effect(now, receipt.id, ttl) {
                // Nothing can be published either; the redelivery will carry the saga on.
                out.saga_effect = qs.saga.map(|(_, code)| code);
            }
        } else if let (Some(_), false, false, true) = (qs.saga, crashed, ok, retry) {
            // A choreographed step's retry policy retries this failure: the event goes back to
            // its queue after the policy's back-off (the queue requeues with that delay).
            if let Some(Ok(due)) = st.q.nack(now, &receipt, false) {
                out.settled = true;
                out.redeliver_at = due;
            }
        } else if let (Some((_, code)), false) = (qs.saga, crashed) {
            // A saga step's participant: handled (ok), or failed for business reasons (its
            // failure event is what it publishes): either way the event is consumed.
            let applied = ok && st.apply_effect(now, receipt.id, ttl);
            if st.q.ack(&receipt) {
                st.bucket.ok += 1;
            }
            out.settled = true;
            out.saga_effect = applied.then_some(code);
            out.saga_reply = Some((receipt.id, ok));
        } else if ok {
            st.apply_effect(now, receipt.id, ttl);
            if st.q.ack(&receipt) {
                let age = now.since(receipt.published).0;
                if receipt.published >= warmup {
                    let horizon = SimTime::ZERO.after(spec.duration);
                    for (t, counts) in qs.visible_within.iter().zip(&mut st.visible) {
                        if age <= t.0 && receipt.published.after(*t) <= horizon {
                            counts.1 += 1;
                        }
                    }
                }
                st.latency.record(age);
                st.bucket_latency.record(age);
                st.bucket.ok += 1;
            }
            out.settled = true;
        } else {
            let requeue_on_crash = crashed && st.q.config().on_failure == OnFailure::Requeue;
            match st.q.nack(now, &receipt, requeue_on_crash) {
                Some(Ok(due)) => {
                    out.settled = true;
                    out.redeliver_at = due;
                }
                Some(Err(exit)) => {
                    out.settled = true;
                    out.left = Some(exit);
                    st.bucket.errors += 1;
                }
                // SQS: the visibility timeout will bring it back (or a stale receipt).
                None => {}
            }
        }
        out
    }

    /// A handling the participant had given up on (its saga step's timeout) succeeded after
    /// all: its effect took place, unless the consumer's idempotency store already holds the
    /// event. Returns the saga step's code when it did.
    pub(super) fn late_effect(&mut self, spec: &SystemSpec, now: SimTime, di: u32) -> Option<u32> {
        let d = &self.deliveries[di as usize];
        let (qi, receipt, c) = (d.queue, d.receipt, d.consumer);
        let qs = &spec.queues[qi as usize];
        let ttl = qs.consumers[c as usize].idempotency_ttl;
        let (_, code) = qs.saga?;
        self.queues[qi as usize]
            .apply_effect(now, receipt.id, ttl)
            .then_some(code)
    }

    /// Delivery `di`'s visibility timeout ended: the message is ready again, or it left.
    pub(super) fn visibility_ended(&mut self, now: SimTime, di: u32) -> Option<Exit> {
        let d = &mut self.deliveries[di as usize];
        d.timer = None;
        let (qi, receipt) = (d.queue, d.receipt);
        let st = &mut self.queues[qi as usize];
        let left = match st.q.nack(now, &receipt, true) {
            Some(Err(exit)) => {
                st.bucket.errors += 1;
                Some(exit)
            }
            _ => None,
        };
        self.free_delivery(di);
        left
    }

    /// Queue `qi`'s periodic tick: retention, the oldest age, forgetting old effects.
    pub(super) fn poll(&mut self, now: SimTime, qi: u32) {
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
    }

    /// A write with an outbox committed its event (key, destination): the event is in the
    /// outbox, under a new id.
    pub(super) fn outbox_write(&mut self, writer: usize, key: u64, dest: Dest) {
        self.outboxes[writer].counts.committed += 1;
        self.next_msg += 1;
        let id = self.next_msg;
        self.outboxes[writer].entries.push_back((id, key, dest));
    }

    /// The publish half of a dual write by service `writer` starts with message `id`.
    pub(super) fn dual_publish(&mut self, id: u64, writer: u32) {
        self.awaiting.insert(id, (writer, None));
    }

    /// The publish half of a dual write ended without an answer ok: lost, unless the broker
    /// still stores it within a minute.
    pub(in crate::model) fn dual_publish_failed(&mut self, now: SimTime, id: u64) {
        if let Some(e) = self.awaiting.get_mut(&id) {
            e.1 = Some(now);
        }
    }

    /// A message was stored: if a dual write was waiting for it, its event is published.
    pub(super) fn event_stored(&mut self, id: u64) {
        if let Some((s, _)) = self.awaiting.remove(&id) {
            self.outboxes[s as usize].counts.published += 1;
        }
    }

    /// Judges failed dual-write publishes older than a minute lost (all of them at the end).
    pub(in crate::model) fn sweep_awaiting(&mut self, now: SimTime, all: bool) {
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

    /// Closes a time-series bucket for every queue.
    pub(in crate::model) fn queue_rows(
        &mut self,
        spec: &SystemSpec,
        now: SimTime,
        t_s: f64,
        sink: &mut dyn Sink,
    ) {
        for (k, st) in self.queues.iter_mut().enumerate() {
            let mut r = row(
                t_s,
                "queue",
                &spec.queues[k].name,
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

    pub(in crate::model) fn queue_results(&self, spec: &SystemSpec) -> Vec<QueueResult> {
        self.queues
            .iter()
            .zip(&spec.queues)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A system with one queue "q" on broker "bus", consumed by "c" (`consumes` extra keys).
    fn spec(queue: &str, consumes: &str) -> SystemSpec {
        let text = format!(
            "[sim]\nname = \"m\"\nduration = \"10s\"\n\
             [[service]]\nname = \"p\"\ncalls = [{{ publish = \"q\", timeout = \"1s\" }}]\n\
             [[service]]\nname = \"bus\"\n\
             [[service]]\nname = \"c\"\nconsumes = [{{ queue = \"q\"{consumes} }}]\n\
             [[queue]]\nname = \"q\"\nbroker = \"bus\"\n{queue}\n\
             [[workload]]\nname = \"w\"\ntarget = \"p\"\narrivals = {{ kind = \"constant\", rate = 1 }}\n"
        );
        crate::scenario::parse("m.toml", &text, &[])
            .expect("valid")
            .spec
    }

    const S: u64 = 1_000_000_000;

    /// Publishes one message and hands it to consumer 0 on instance 0: its delivery index.
    fn deliver(m: &mut Messaging, spec: &SystemSpec, now: SimTime, id: u64) -> u32 {
        m.store(spec, now, true, 0, id, 7);
        let receipt = m.queues[0].q.receive(now).expect("ready");
        hold(m, receipt)
    }

    fn end(ok: bool, crashed: bool, broker_up: bool) -> HandlerEnd {
        HandlerEnd {
            ok,
            crashed,
            broker_up,
            retry: false,
        }
    }

    /// Hands `receipt` to consumer 0 on instance 0.
    fn hold(m: &mut Messaging, receipt: Receipt) -> u32 {
        m.add_delivery(DeliveryRec {
            queue: 0,
            receipt,
            instance: 0,
            consumer: 0,
            timer: None,
            handler_done: false,
            acked_ok: false,
            acked_retry: false,
            running: false,
            gave_up: false,
            deadline: None,
        })
    }

    #[test]
    fn an_ok_handler_acks_and_applies_the_effect_once() {
        let spec = spec("", "");
        let mut m = Messaging::new(&spec, 3, 3);
        let di = deliver(&mut m, &spec, SimTime(S), 1);
        let s = m.handler_ended(
            &spec,
            SimTime(2 * S),
            SimTime::ZERO,
            di,
            end(true, false, true),
        );
        assert_eq!(
            s,
            Settled {
                settled: true,
                ..Settled::default()
            }
        );
        let c = m.queues[0].counters;
        assert_eq!((c.applied, c.double_effects, c.duplicates), (1, 0, 0));
        assert_eq!(m.queues[0].q.len(), 0, "acked: gone from the queue");
        // The same id delivered again (a publish retried) is a double effect.
        let di = deliver(&mut m, &spec, SimTime(3 * S), 1);
        m.handler_ended(
            &spec,
            SimTime(4 * S),
            SimTime::ZERO,
            di,
            end(true, false, true),
        );
        let c = m.queues[0].counters;
        assert_eq!((c.applied, c.double_effects, c.duplicates), (1, 1, 1));
    }

    #[test]
    fn an_idempotency_store_skips_an_id_seen_within_its_ttl() {
        let spec = spec("", ", idempotency_ttl = \"5s\"");
        let mut m = Messaging::new(&spec, 3, 3);
        let di = deliver(&mut m, &spec, SimTime(S), 1);
        m.handler_ended(&spec, SimTime(S), SimTime::ZERO, di, end(true, false, true));
        let di = deliver(&mut m, &spec, SimTime(2 * S), 1);
        m.handler_ended(
            &spec,
            SimTime(2 * S),
            SimTime::ZERO,
            di,
            end(true, false, true),
        );
        let c = m.queues[0].counters;
        assert_eq!((c.applied, c.skipped, c.double_effects), (1, 1, 0));
        // Past the TTL the store has forgotten it: a double effect.
        let di = deliver(&mut m, &spec, SimTime(9 * S), 1);
        m.handler_ended(
            &spec,
            SimTime(9 * S),
            SimTime::ZERO,
            di,
            end(true, false, true),
        );
        assert_eq!(m.queues[0].counters.double_effects, 1);
    }

    #[test]
    fn a_failure_waits_for_the_visibility_timeout_then_dead_letters() {
        // SQS: a failed handler changes nothing; the visibility timeout brings it back, and
        // after max_deliveries it goes to the dead-letter queue.
        let spec = spec("max_deliveries = 2", "");
        let mut m = Messaging::new(&spec, 3, 3);
        let di = deliver(&mut m, &spec, SimTime(S), 1);
        let s = m.handler_ended(
            &spec,
            SimTime(S),
            SimTime::ZERO,
            di,
            end(false, false, true),
        );
        assert_eq!(s, Settled::default(), "nothing settles: the timer will");
        assert_eq!(m.visibility_ended(SimTime(31 * S), di), None);
        assert_eq!(m.queues[0].q.ready(), 1, "visible again");
        let receipt = m.queues[0].q.receive(SimTime(31 * S)).expect("ready");
        assert_eq!(receipt.delivery, 2);
        let di = hold(&mut m, receipt);
        assert_eq!(
            m.visibility_ended(SimTime(61 * S), di),
            Some(Exit::DeadLettered)
        );
        assert_eq!(m.queues[0].bucket.errors, 1);
    }

    #[test]
    fn requeue_on_failure_settles_at_once_and_the_broker_down_loses_the_ack() {
        let spec = spec("on_failure = \"requeue\"", "");
        let mut m = Messaging::new(&spec, 3, 3);
        let di = deliver(&mut m, &spec, SimTime(S), 1);
        let s = m.handler_ended(
            &spec,
            SimTime(S),
            SimTime::ZERO,
            di,
            end(false, false, true),
        );
        assert!(
            s.settled && s.left.is_none() && s.redeliver_at.is_none(),
            "{s:?}"
        );
        assert_eq!(m.queues[0].q.ready(), 1);
        // With the broker down the ack is lost: applied, but not settled.
        let receipt = m.queues[0].q.receive(SimTime(2 * S)).expect("ready");
        let di = hold(&mut m, receipt);
        let s = m.handler_ended(
            &spec,
            SimTime(2 * S),
            SimTime::ZERO,
            di,
            end(true, false, false),
        );
        assert!(!s.settled);
        assert_eq!(m.queues[0].counters.applied, 1);
        assert_eq!(
            m.queues[0].q.in_flight(),
            1,
            "still held by the lost delivery"
        );
    }

    #[test]
    fn deliveries_are_reused_only_when_handler_and_timer_are_both_done() {
        let spec = spec("", "");
        let mut m = Messaging::new(&spec, 3, 3);
        let a = deliver(&mut m, &spec, SimTime(S), 1);
        let mut engine: Engine<u8> = Engine::new(SimTime(100 * S), 100);
        m.delivery(a).timer = Some(engine.schedule_timer(0, SimTime(S), 0));
        m.delivery(a).handler_done = true;
        m.free_delivery(a);
        let b = deliver(&mut m, &spec, SimTime(S), 2);
        assert_ne!(a, b, "a timer still refers to it");
        m.delivery(a).timer = None;
        m.free_delivery(a);
        assert_eq!(deliver(&mut m, &spec, SimTime(S), 3), a);
    }

    #[test]
    fn a_failed_dual_write_publish_is_lost_after_a_minute_unless_stored() {
        let spec = spec("", "");
        let mut m = Messaging::new(&spec, 3, 3);
        m.dual_publish(10, 0);
        m.dual_publish(11, 0);
        m.dual_publish_failed(SimTime(S), 10);
        m.dual_publish_failed(SimTime(S), 11);
        m.event_stored(11);
        m.sweep_awaiting(SimTime(30 * S), false);
        assert_eq!(m.outboxes[0].counts.lost, 0, "not a minute yet");
        m.sweep_awaiting(SimTime(61 * S), false);
        assert_eq!(
            (m.outboxes[0].counts.lost, m.outboxes[0].counts.published),
            (1, 1)
        );
    }
}
