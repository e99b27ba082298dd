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

mod actor;

use super::*;
use crate::policy::broker::{Exit, Receipt};
use actor::{DeliveryRec, HandlerEnd, Settled};
pub use actor::{EventCounts, QueueCounters, QueueResult};
pub(super) use actor::{Messaging, POISON};

/// How often each queue expires old messages and retries deliveries (consumers long-poll).
const POLL: SimDuration = SimDuration::from_secs(1);

impl World<'_> {
    /// Schedules every queue's first poll.
    pub(super) fn start_messaging(&mut self) {
        for k in 0..self.spec.queues.len() {
            self.engine
                .schedule_at(SimTime::ZERO.after(POLL), Ev::QueuePoll { queue: k as u32 });
        }
    }

    /// Schedules the outbox relays of services that write through an outbox.
    pub(super) fn start_outboxes(&mut self) {
        for (s, spec) in self.spec.services.iter().enumerate() {
            let uses = spec.endpoints.iter().any(|e| {
                e.steps
                    .iter()
                    .any(|st| matches!(st, Step::Call(c) if matches!(c.write, Some((_, true)))))
            });
            if uses {
                self.engine.schedule_at(
                    SimTime::ZERO.after(RELAY),
                    Ev::OutboxRelay { svc: s as u32 },
                );
            }
        }
    }

    /// A fire-and-forget publish from request `id`: one message to a broker instance, sent
    /// and forgotten (no timeout, no retry, no answer awaited): if the broker is down or the
    /// message is lost, nobody knows.
    pub(super) fn fire_and_forget(&mut self, now: SimTime, id: ReqId, c: &CallSpec) {
        let p = c.publish.expect("a publish");
        let msg = self.msg.new_message_id(p.poison);
        let b = c.to.0 as usize;
        let (first, n) = (self.svcs[b].first_instance, self.svcs[b].instances);
        let instance = first + self.msg.next_one_way(n);
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
            None => self.spec.network.latency.sample(&mut self.msg.rng),
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
        if self.msg.refuses(spec, queues) {
            return false;
        }
        let measured = now >= self.warmup;
        for &q in queues {
            self.msg.store(spec, now, measured, q, id, key);
            self.hand_out(now, q);
        }
        self.msg.event_stored(id);
        true
    }

    /// Whether some instance of service `s` runs (a broker, a relay's service).
    pub(super) fn service_runs(&self, s: usize) -> bool {
        self.first_running(s).is_some()
    }

    /// The first instance of service `s` that runs (present, up, not paused): where a broker
    /// sends from, and where a relay or a projector runs.
    pub(super) fn first_running(&self, s: usize) -> Option<usize> {
        let first = self.svcs[s].first_instance as usize;
        (first..first + self.svcs[s].instances as usize).find(|&k| {
            let x = &self.insts[k];
            x.present && !x.fault.down && x.paused_at.is_none()
        })
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
        while idle < n && self.msg.queues[qi as usize].q.ready() > 0 {
            let st = &mut self.msg.queues[qi as usize];
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
        let di = self.msg.add_delivery(DeliveryRec {
            queue: qi,
            receipt,
            instance: inst,
            consumer: c,
            timer: None,
            handler_done: false,
            acked_ok: false,
            acked_retry: false,
            running: false,
            gave_up: false,
            deadline: None,
        });
        req.origin = Origin::Delivery { delivery: di };
        // The delivery crosses the broker -> consumer link (from the broker's running
        // instance): latency, loss, zones and partitions. A lost one is never received; the
        // visibility timeout brings the message back.
        let b = self.spec.queues[qi as usize].broker.0 as usize;
        let up = self.first_running(b);
        let hop = self.broker_hop(b, up, s as usize, inst as usize, true);
        let sent = match hop {
            Some(delay) => self.alloc(req).map(|id| (id, delay)),
            None => None,
        };
        let Some((id, mut delay)) = sent else {
            // Lost on the way, or the run's request limit: the message waits for its
            // visibility timeout.
            self.msg.delivery(di).handler_done = true;
            let t = self.engine.schedule_timer(
                lane,
                receipt.visible_at,
                Ev::Visibility { delivery: di },
            );
            self.msg.delivery(di).timer = Some(t);
            return;
        };
        self.msg.queues[qi as usize].held[inst as usize] += 1;
        let t =
            self.engine
                .schedule_timer(lane, receipt.visible_at, Ev::Visibility { delivery: di });
        self.msg.delivery(di).timer = Some(t);
        // A slow broker (a latency fault on it) is slow to deliver too.
        if let Some((add, p)) = up.and_then(|k| self.insts[k].fault.delay) {
            let st = &mut self.msg.queues[qi as usize];
            if st.rng.chance(p) {
                delay = SimDuration(delay.0.saturating_add(add.0));
            }
        }
        self.engine
            .schedule_at(now.after(delay), Ev::Deliver { req: id });
        self.msg.delivery(di).running = true;
        // A choreographed saga step with a timeout: the participant waits that long for its
        // handler, from the event's arrival.
        if let Some(t) = step_call(self.spec, qi).and_then(|c| c.timeout) {
            let key = self.engine.schedule_at(
                now.after(delay).after(t),
                Ev::HandlerTimeout { delivery: di },
            );
            self.msg.delivery(di).deadline = Some(key);
        }
    }

    /// One message between broker service `b` (its running instance `up`, if any) and
    /// consumer instance `inst` of service `s`, to the consumer (a delivery) or back (an
    /// acknowledgement): its delay, or `None` when it is lost (loss, a partition, a cut
    /// between zones). A broker that consumes its own queue hands the message over
    /// in-process.
    fn broker_hop(
        &mut self,
        b: usize,
        up: Option<usize>,
        s: usize,
        inst: usize,
        to_consumer: bool,
    ) -> Option<SimDuration> {
        if b == s {
            return Some(SimDuration::ZERO);
        }
        let bz = up.map_or(u32::MAX, |k| self.insts[k].zone);
        let cz = self.insts[inst].zone;
        let (hop, _) = if to_consumer {
            self.net.transmit(b, s, bz, cz, false)
        } else {
            self.net.transmit(s, b, cz, bz, false)
        };
        match hop {
            network::Hop::Arrives(d) => Some(d),
            network::Hop::Lost | network::Hop::Reset => None,
        }
    }

    /// A consumer's handler ended (or its instance crashed under it: `crashed`). Its
    /// acknowledgement (or nack) crosses the consumer -> broker link and settles the
    /// message when it arrives; lost, it settles nothing (the visibility timeout brings the
    /// message back, and an effect already applied is then applied again). A crash drops
    /// the connection, which the broker sees at once.
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
        let ok = outcome == Outcome::Ok;
        let d = self.msg.delivery(di);
        d.running = false;
        if d.gave_up {
            // The participant stopped waiting for this handling (its step's timeout) and
            // failed the step; the work went on and ended now. If it succeeded, its effect
            // took place all the same: a leaked effect, as an orchestrator's timeout leaves.
            let key = d.receipt.key;
            if !crashed {
                self.release(id);
            }
            if let Some(code) = ok
                .then(|| self.msg.late_effect(self.spec, now, di))
                .flatten()
            {
                self.saga_effect(now, key as u32, code);
            }
            self.msg.free_delivery(di);
            return;
        }
        if let Some(t) = d.deadline.take() {
            self.engine.cancel(t);
        }
        if crashed {
            self.settle_delivery(now, di, ok, false, true, false);
            return;
        }
        self.release(id);
        self.answer_broker(now, di, outcome);
    }

    /// A choreographed saga step's handler ran past the step's timeout: the participant
    /// gives up on it (the work goes on) and fails the step, retried by its policy or
    /// compensated, like an orchestrator's timed-out call.
    pub(super) fn on_handler_timeout(&mut self, now: SimTime, di: u32) {
        let d = self.msg.delivery(di);
        d.deadline = None;
        d.gave_up = true;
        self.answer_broker(now, di, Outcome::Timeout);
    }

    /// The consumer's answer for delivery `di` (an acknowledgement when `outcome` is ok, else
    /// a nack) crosses the consumer -> broker link.
    fn answer_broker(&mut self, now: SimTime, di: u32, outcome: Outcome) {
        let ok = outcome == Outcome::Ok;
        let retry = !ok && self.saga_step_retries(di, outcome);
        let d = self.msg.delivery(di);
        let (qi, inst) = (d.queue, d.instance as usize);
        let b = self.spec.queues[qi as usize].broker.0 as usize;
        let s = self.insts[inst].service as usize;
        let up = self.first_running(b);
        match self.broker_hop(b, up, s, inst, false) {
            Some(delay) if delay.0 > 0 => {
                let d = self.msg.delivery(di);
                d.acked_ok = ok;
                d.acked_retry = retry;
                self.engine
                    .schedule_at(now.after(delay), Ev::Ack { delivery: di });
            }
            Some(_) => self.settle_delivery(now, di, ok, retry, false, false),
            None => self.settle_delivery(now, di, ok, retry, false, true),
        }
    }

    /// Whether the retry policy of the choreographed saga step that delivery `di` carries
    /// retries a handling that ended with `outcome`: it matches the policy's `retry_on` and
    /// the event has been delivered fewer times than the policy's attempts.
    fn saga_step_retries(&self, di: u32, outcome: Outcome) -> bool {
        let spec = self.spec;
        let d = self.msg.delivery_ref(di);
        let Some(r) = step_call(spec, d.queue).and_then(|c| c.retry) else {
            return false;
        };
        let policy = &spec.retries[r as usize];
        d.receipt.delivery < policy.max_attempts
            && policy.retry_on.matches(AttemptOutcome::from(outcome), None)
    }

    /// A consumer's acknowledgement (or nack) of delivery `di` reached the broker.
    pub(super) fn on_ack(&mut self, now: SimTime, di: u32) {
        let d = self.msg.delivery(di);
        let (ok, retry) = (d.acked_ok, d.acked_retry);
        self.settle_delivery(now, di, ok, retry, false, false);
    }

    /// The broker learns how delivery `di`'s handler ended (`lost`: it learns nothing, the
    /// answer was lost on the way): acknowledge, nack, or leave the message to its
    /// visibility timeout; free the consumer's slot.
    fn settle_delivery(
        &mut self,
        now: SimTime,
        di: u32,
        ok: bool,
        retry: bool,
        crashed: bool,
        lost: bool,
    ) {
        let d = self.msg.delivery(di);
        let (qi, receipt, inst) = (d.queue, d.receipt, d.instance);
        self.msg.queues[qi as usize].held[inst as usize] -= 1;
        let spec = self.spec;
        let broker_up = !lost && self.service_runs(spec.queues[qi as usize].broker.0 as usize);
        let how = HandlerEnd {
            ok,
            crashed,
            broker_up,
            retry,
        };
        let Settled {
            settled,
            redeliver_at,
            left,
            saga_effect,
            saga_reply,
        } = self.msg.handler_ended(spec, now, self.warmup, di, how);
        if let Some(due) = redeliver_at {
            self.engine.schedule_at(
                due,
                Ev::Redeliver {
                    queue: qi as u16,
                    slot: receipt.slot,
                },
            );
        }
        if let Some(exit) = left {
            self.message_left(now, qi, &receipt, exit);
        }
        if settled {
            if let Some(t) = self.msg.delivery(di).timer.take() {
                self.engine.cancel(t);
            }
        }
        self.msg.free_delivery(di);
        if let Some(code) = saga_effect {
            self.saga_effect(now, receipt.key as u32, code);
        }
        if let Some((id, ok)) = saga_reply {
            self.saga_event_handled(now, id, ok);
        }
        self.hand_out(now, qi);
    }

    /// Logs a message that left queue `qi` for good.
    fn message_left(&mut self, now: SimTime, qi: u32, r: &Receipt, exit: Exit) {
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
        let d = self.msg.delivery(di);
        let (qi, receipt) = (d.queue, d.receipt);
        if let Some(exit) = self.msg.visibility_ended(now, di) {
            self.message_left(now, qi, &receipt, exit);
        }
        self.hand_out(now, qi);
    }

    /// A requeued message's redelivery delay is over.
    pub(super) fn on_redeliver(&mut self, now: SimTime, qi: u16, slot: u32) {
        if self.msg.queues[qi as usize].q.due(slot) {
            self.hand_out(now, qi as u32);
        }
    }

    /// A queue's periodic tick: retention, forgetting old effects, and deliveries (a broker
    /// that came back, a consumer that restarted).
    pub(super) fn on_queue_poll(&mut self, now: SimTime, qi: u32) {
        self.engine
            .schedule_at(now.after(POLL), Ev::QueuePoll { queue: qi });
        self.msg.poll(now, qi);
        self.hand_out(now, qi);
    }
}

/// How often an outbox relay publishes what its service's transactions wrote.
const RELAY: SimDuration = SimDuration::from_millis(500);
/// How long after publishing a batch the relay's `UPDATE ... SET sent` commits: a crash of
/// the relay's instance in between leaves the rows unsent, to be published again.
const MARK: SimDuration = SimDuration::from_millis(5);

impl World<'_> {
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
        if outbox {
            self.msg.outbox_write(writer, key, dest);
            return;
        }
        self.msg.outboxes[writer].counts.committed += 1;
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
            _ => self.msg.outboxes[writer].counts.lost += 1,
        }
    }

    /// The publish half of a dual write starts with message `id`.
    pub(super) fn dual_publish(&mut self, caller: ReqId, id: u64) {
        let r = &mut self.reqs[caller];
        if std::mem::take(&mut r.event_due) {
            self.msg.dual_publish(id, r.service);
        }
    }

    /// A request that owed a publish died.
    pub(super) fn writer_died(&mut self, id: ReqId) {
        let r = &mut self.reqs[id];
        if std::mem::take(&mut r.event_due) {
            self.msg.outboxes[r.service as usize].counts.lost += 1;
        }
    }

    /// A service's outbox relay: while the service and the broker run, everything its
    /// transactions wrote is published.
    pub(super) fn on_outbox_relay(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        self.engine
            .schedule_at(now.after(RELAY), Ev::OutboxRelay { svc });
        let ob = &mut self.msg.outboxes[s];
        ob.counts.outbox_max = ob.counts.outbox_max.max(ob.entries.len() as u64);
        if !self.service_runs(s) {
            // The relay runs in the service.
            return;
        }
        if !self.msg.outboxes[s].marking.is_empty() {
            return; // the last batch is not marked yet
        }
        // The relay runs on the service's first running instance.
        let relay = self.first_running(s).expect("the service runs");
        while let Some(&(id, key, dest)) = self.msg.outboxes[s].entries.front() {
            let broker = self.dest_broker(dest);
            if !self.service_runs(broker) || !self.store_message(now, dest, id, key) {
                break;
            }
            let ob = &mut self.msg.outboxes[s];
            ob.entries.pop_front();
            if ob.again.remove(&id) {
                ob.counts.republished += 1;
            } else {
                ob.counts.published += 1;
            }
            ob.marking.push((id, key, dest));
        }
        if !self.msg.outboxes[s].marking.is_empty() {
            self.msg.outboxes[s].relay = (relay as u32, self.insts[relay].epoch);
            self.engine
                .schedule_at(now.after(MARK), Ev::OutboxMark { svc });
        }
    }

    /// The relay's mark of the batch it published commits, if its instance is still the
    /// process that published it; otherwise the rows are still unsent and go again.
    pub(super) fn on_outbox_mark(&mut self, svc: u32) {
        let s = svc as usize;
        let (inst, epoch) = self.msg.outboxes[s].relay;
        let x = &self.insts[inst as usize];
        let same = !x.fault.down && x.epoch == epoch;
        let ob = &mut self.msg.outboxes[s];
        let batch = std::mem::take(&mut ob.marking);
        if !same {
            for e in batch.into_iter().rev() {
                ob.again.insert(e.0);
                ob.entries.push_front(e);
            }
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
        self.msg.sweep_awaiting(end, true);
        (0..self.svcs.len())
            .map(|s| {
                let writes = self.spec.services[s].endpoints.iter().any(|e| {
                    e.steps
                        .iter()
                        .any(|st| matches!(st, Step::Call(c) if c.write.is_some()))
                });
                writes.then_some(self.msg.outboxes[s].counts)
            })
            .collect()
    }
}

/// The call of the choreographed saga step whose events queue `qi` carries (its action,
/// or its compensation for an `.undo` queue); `None` for other queues.
fn step_call(spec: &SystemSpec, qi: u32) -> Option<&CallSpec> {
    let (saga, code) = spec.queues[qi as usize].saga?;
    let (action, undo) = &spec.sagas[saga as usize].calls[(code >> 1) as usize];
    if code & 1 == 0 { action } else { undo }.as_ref()
}
