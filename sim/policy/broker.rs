//! A broker queue with at-least-once delivery (POLICIES.md §16): visibility timeouts (SQS),
//! requeue on failure (RabbitMQ), redelivery delays, a delivery limit with a dead-letter queue,
//! retention, and optional partitions that keep per-key order.
//!
//! A message is ready, delayed (waiting to be redelivered), in flight (received, not yet
//! acknowledged), or it has left: acknowledged, dead-lettered, dropped (over the limit with no
//! dead-letter queue) or expired. Every receive hands out a receipt (the message's slot and its
//! delivery number); an acknowledgement or a timeout with an old receipt is ignored, as SQS
//! ignores a stale receipt handle, so a consumer that was too slow sees its message delivered
//! again. Timers are the caller's: `receive` says when the visibility timeout ends, `nack`
//! when a delayed message is due.

use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// What to do with a message whose consumer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// SQS: nothing; it becomes visible again when its visibility timeout ends.
    Visibility,
    /// RabbitMQ nack with requeue: ready again at once (after `redelivery_delay`, if any).
    Requeue,
}

/// A queue's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// SQS visibility timeout / RabbitMQ consumer ack timeout (30 s).
    pub visibility: SimDuration,
    /// Deliveries before a message is dead-lettered (SQS maxReceiveCount); 0: unlimited.
    pub max_deliveries: u32,
    /// Whether messages over the limit go to a dead-letter queue (else they are dropped).
    pub dead_letter: bool,
    /// Messages older than this are deleted (SQS default 4 days).
    pub retention: SimDuration,
    /// Partitions with per-key order (one message in flight per partition); 0: unordered.
    pub partitions: u32,
    /// What a consumer's failure does.
    pub on_failure: OnFailure,
    /// Delay before a requeued message is ready again, doubled per delivery up to
    /// `redelivery_cap` (0: at once).
    pub redelivery_delay: SimDuration,
    /// Longest redelivery delay.
    pub redelivery_cap: SimDuration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            visibility: SimDuration::from_secs(30),
            max_deliveries: 0,
            dead_letter: true,
            retention: SimDuration::from_secs(4 * 86_400),
            partitions: 0,
            on_failure: OnFailure::Visibility,
            redelivery_delay: SimDuration::ZERO,
            redelivery_cap: SimDuration::from_secs(900),
        }
    }
}

/// Where a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for a consumer.
    Ready,
    /// Waiting out a redelivery delay.
    Delayed,
    /// Received, not yet acknowledged.
    InFlight,
    /// Gone (the slot is free).
    Free,
}

/// Why a message left the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Acknowledged by a consumer.
    Acked,
    /// Moved to the dead-letter queue after `max_deliveries`.
    DeadLettered,
    /// Over the delivery limit with no dead-letter queue.
    Dropped,
    /// Older than the retention period.
    Expired,
}

/// A delivery: what a consumer receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The message's slot.
    pub slot: u32,
    /// Its delivery number (1 for the first), which makes the receipt unique.
    pub delivery: u32,
    /// The logical message id (copies published again by a retrying producer share it).
    pub id: u64,
    /// Its key (partitioning, idempotency).
    pub key: u64,
    /// When it was published.
    pub published: SimTime,
    /// When its visibility timeout ends.
    pub visible_at: SimTime,
}

#[derive(Clone, Debug)]
struct Msg {
    id: u64,
    key: u64,
    published: SimTime,
    deliveries: u32,
    state: State,
    partition: u32,
}

/// Counters since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Copies stored.
    pub published: u64,
    /// Receives (first deliveries and redeliveries).
    pub delivered: u64,
    /// Deliveries after the first of the same copy.
    pub redelivered: u64,
    /// Acknowledged (deleted) by a consumer.
    pub acked: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Over the delivery limit with no dead-letter queue.
    pub dropped: u64,
    /// Deleted by retention.
    pub expired: u64,
    /// Acknowledgements with a stale receipt (the message had been redelivered meanwhile).
    pub stale_acks: u64,
}

/// One queue.
#[derive(Clone, Debug)]
pub struct Queue {
    cfg: Config,
    msgs: Vec<Msg>,
    free: Vec<u32>,
    /// Ready slots in delivery order (one FIFO per partition, or a single one).
    ready: Vec<VecDeque<u32>>,
    /// Partitions with a message in flight or delayed (ordered queues only).
    busy: Vec<bool>,
    /// Rotates over partitions so that none starves.
    next_partition: usize,
    /// Messages present (ready, delayed or in flight), oldest first by publish time, for
    /// retention and the oldest-message age. Lazily cleaned: holds (published, slot, id).
    by_age: VecDeque<(SimTime, u32, u64)>,
    live: usize,
    in_flight: usize,
    /// Counters.
    pub stats: Stats,
}

impl Queue {
    /// An empty queue.
    pub fn new(cfg: Config) -> Self {
        let parts = cfg.partitions.max(1) as usize;
        Queue {
            cfg,
            msgs: Vec::new(),
            free: Vec::new(),
            ready: vec![VecDeque::new(); parts],
            busy: vec![false; parts],
            next_partition: 0,
            by_age: VecDeque::new(),
            live: 0,
            in_flight: 0,
            stats: Stats::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Messages present: ready, delayed or in flight.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no message is present.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Messages received and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Messages waiting for a consumer (the backlog, or consumer lag).
    pub fn ready(&self) -> usize {
        self.ready.iter().map(|q| q.len()).sum()
    }

    /// The state of slot `slot`.
    pub fn state(&self, slot: u32) -> State {
        self.msgs[slot as usize].state
    }

    /// Age of the oldest message present.
    pub fn oldest_age(&mut self, now: SimTime) -> SimDuration {
        self.clean_front();
        self.by_age
            .front()
            .map_or(SimDuration::ZERO, |&(t, _, _)| now.since(t))
    }

    fn clean_front(&mut self) {
        while let Some(&(t, slot, id)) = self.by_age.front() {
            let m = &self.msgs[slot as usize];
            if m.state != State::Free && m.id == id && m.published == t {
                break;
            }
            self.by_age.pop_front();
        }
    }

    /// Stores a message published at `now` (ready at once); returns its slot.
    pub fn publish(&mut self, now: SimTime, id: u64, key: u64) -> u32 {
        let partition = match self.cfg.partitions {
            0 => 0,
            n => (mix(key) % n as u64) as u32,
        };
        let m = Msg {
            id,
            key,
            published: now,
            deliveries: 0,
            state: State::Ready,
            partition,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.msgs[s as usize] = m;
                s
            }
            None => {
                self.msgs.push(m);
                (self.msgs.len() - 1) as u32
            }
        };
        self.ready[partition as usize].push_back(slot);
        self.by_age.push_back((now, slot, id));
        self.live += 1;
        self.stats.published += 1;
        slot
    }

    /// Hands the next deliverable message to a consumer, or `None` when none is ready (or, in
    /// an ordered queue, every partition with ready messages has one in flight).
    pub fn receive(&mut self, now: SimTime) -> Option<Receipt> {
        let parts = self.ready.len();
        let ordered = self.cfg.partitions > 0;
        let mut slot = None;
        for k in 0..parts {
            let p = (self.next_partition + k) % parts;
            if ordered && self.busy[p] {
                continue;
            }
            if let Some(s) = self.ready[p].pop_front() {
                slot = Some(s);
                self.next_partition = (p + 1) % parts;
                if ordered {
                    self.busy[p] = true;
                }
                break;
            }
        }
        let slot = slot?;
        let m = &mut self.msgs[slot as usize];
        m.deliveries += 1;
        m.state = State::InFlight;
        self.in_flight += 1;
        self.stats.delivered += 1;
        if m.deliveries > 1 {
            self.stats.redelivered += 1;
        }
        Some(Receipt {
            slot,
            delivery: m.deliveries,
            id: m.id,
            key: m.key,
            published: m.published,
            visible_at: now.after(self.cfg.visibility),
        })
    }

    fn current(&self, r: &Receipt) -> bool {
        let m = &self.msgs[r.slot as usize];
        m.state == State::InFlight && m.deliveries == r.delivery && m.id == r.id
    }

    /// The consumer acknowledges (deletes) the message. False for a stale receipt: the message
    /// had already been redelivered (or had left), and stays where it is.
    pub fn ack(&mut self, r: &Receipt) -> bool {
        if !self.current(r) {
            self.stats.stale_acks += 1;
            return false;
        }
        self.in_flight -= 1;
        self.leave(r.slot, Exit::Acked);
        true
    }

    /// The consumer failed the message (or its visibility timeout ended: `timed_out`). Returns
    /// what happened: `Some(Ok(due))` back to ready (at once when `due` is `None`, else
    /// delayed until `due`: call [`Queue::due`] then), `Some(Err(exit))` out of the queue, or
    /// `None` when nothing changed (a stale receipt, or an SQS failure that waits for the
    /// visibility timeout).
    #[allow(clippy::type_complexity)]
    pub fn nack(
        &mut self,
        now: SimTime,
        r: &Receipt,
        timed_out: bool,
    ) -> Option<Result<Option<SimTime>, Exit>> {
        if !self.current(r) {
            return None;
        }
        if !timed_out && self.cfg.on_failure == OnFailure::Visibility {
            // SQS: the consumer just does not delete it.
            return None;
        }
        self.in_flight -= 1;
        let m = &self.msgs[r.slot as usize];
        if self.cfg.max_deliveries > 0 && m.deliveries >= self.cfg.max_deliveries {
            let exit = if self.cfg.dead_letter {
                Exit::DeadLettered
            } else {
                Exit::Dropped
            };
            self.leave(r.slot, exit);
            return Some(Err(exit));
        }
        let delay = if timed_out || self.cfg.redelivery_delay.0 == 0 {
            SimDuration::ZERO
        } else {
            let doubled = self
                .cfg
                .redelivery_delay
                .0
                .saturating_mul(1u64 << (m.deliveries - 1).min(40));
            SimDuration(doubled.min(self.cfg.redelivery_cap.0))
        };
        if delay.0 == 0 {
            self.requeue(r.slot);
            Some(Ok(None))
        } else {
            self.msgs[r.slot as usize].state = State::Delayed;
            Some(Ok(Some(now.after(delay))))
        }
    }

    /// A delayed message's redelivery delay is over: ready again (false if it had left).
    pub fn due(&mut self, slot: u32) -> bool {
        if self.msgs[slot as usize].state != State::Delayed {
            return false;
        }
        self.requeue(slot);
        true
    }

    /// Back to ready: at the head of its partition in an ordered queue (order is kept), at the
    /// tail otherwise.
    fn requeue(&mut self, slot: u32) {
        let m = &mut self.msgs[slot as usize];
        m.state = State::Ready;
        let p = m.partition as usize;
        if self.cfg.partitions > 0 {
            self.busy[p] = false;
            self.ready[p].push_front(slot);
        } else {
            self.ready[p].push_back(slot);
        }
    }

    /// Deletes messages older than the retention period (ready or delayed ones; a message in
    /// flight expires when it comes back). Returns how many.
    pub fn expire(&mut self, now: SimTime) -> u64 {
        let mut n = 0;
        loop {
            self.clean_front();
            let Some(&(t, slot, _)) = self.by_age.front() else {
                break;
            };
            if now.since(t) < self.cfg.retention {
                break;
            }
            match self.msgs[slot as usize].state {
                State::Ready => {
                    let p = self.msgs[slot as usize].partition as usize;
                    self.ready[p].retain(|&s| s != slot);
                    self.leave(slot, Exit::Expired);
                    n += 1;
                }
                State::Delayed => {
                    self.leave(slot, Exit::Expired);
                    n += 1;
                }
                // In flight: checked again later.
                _ => break,
            }
        }
        n
    }

    fn leave(&mut self, slot: u32, exit: Exit) {
        let m = &mut self.msgs[slot as usize];
        if self.cfg.partitions > 0 && m.state != State::Ready {
            self.busy[m.partition as usize] = false;
        }
        m.state = State::Free;
        self.free.push(slot);
        self.live -= 1;
        match exit {
            Exit::Acked => self.stats.acked += 1,
            Exit::DeadLettered => self.stats.dead_lettered += 1,
            Exit::Dropped => self.stats.dropped += 1,
            Exit::Expired => self.stats.expired += 1,
        }
    }
}

/// Spreads keys over partitions.
fn mix(x: u64) -> u64 {
    crate::rng::mix64(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(x))
    }

    #[test]
    fn s16_b1_always_failing_consumer_dead_letters_after_max_receive_count() {
        let mut q = Queue::new(Config {
            max_deliveries: 3,
            ..Config::default()
        });
        q.publish(s(0), 7, 0);
        let mut t = 0;
        let mut deliveries = 0;
        // The consumer never deletes: each visibility timeout (30 s) makes it visible again.
        while let Some(r) = q.receive(s(t)) {
            deliveries += 1;
            assert_eq!(q.nack(s(t), &r, false), None, "SQS waits for the timeout");
            t += 30;
            match q.nack(s(t), &r, true) {
                Some(Ok(None)) => {}
                Some(Err(exit)) => {
                    assert_eq!(exit, Exit::DeadLettered);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(deliveries, 3);
        assert_eq!(q.stats.dead_lettered, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn s16_b2_slow_handler_is_redelivered_and_processed_twice() {
        let mut q = Queue::new(Config::default());
        q.publish(s(0), 1, 0);
        let first = q.receive(s(0)).unwrap();
        assert_eq!(first.visible_at, s(30));
        // The handler takes 40 s; at 30 s the message is visible again and another consumer
        // receives it.
        assert_eq!(q.nack(s(30), &first, true), Some(Ok(None)));
        let second = q.receive(s(30)).unwrap();
        assert_eq!((second.id, second.delivery), (1, 2));
        // The first consumer's delete at 40 s carries a stale receipt: ignored.
        assert!(!q.ack(&first));
        assert!(q.ack(&second));
        assert_eq!(
            (q.stats.delivered, q.stats.redelivered, q.stats.stale_acks),
            (2, 1, 1)
        );
        assert!(q.is_empty());
    }

    #[test]
    fn s16_2_requeue_on_failure_with_doubling_delay() {
        let mut q = Queue::new(Config {
            on_failure: OnFailure::Requeue,
            redelivery_delay: SimDuration::from_secs(1),
            redelivery_cap: SimDuration::from_secs(3),
            max_deliveries: 4,
            ..Config::default()
        });
        q.publish(s(0), 1, 0);
        let mut dues = Vec::new();
        let mut t = s(0);
        for _ in 0..3 {
            let r = q.receive(t).unwrap();
            let due = q.nack(t, &r, false).unwrap().unwrap().unwrap();
            dues.push(due.since(t).as_secs_f64());
            assert!(q.receive(t).is_none(), "delayed, not ready");
            assert!(q.due(r.slot));
            t = due;
        }
        // 1 s, 2 s, then capped at 3 s.
        assert_eq!(dues, vec![1.0, 2.0, 3.0]);
        let r = q.receive(t).unwrap();
        assert_eq!(q.nack(t, &r, false), Some(Err(Exit::DeadLettered)));
    }

    #[test]
    fn partitions_keep_per_key_order_one_in_flight_each() {
        let mut q = Queue::new(Config {
            partitions: 4,
            on_failure: OnFailure::Requeue,
            ..Config::default()
        });
        // Two keys, three messages each, interleaved.
        for i in 0..6 {
            q.publish(s(0), i, i % 2);
        }
        let a = q.receive(s(0)).unwrap();
        let b = q.receive(s(0)).unwrap();
        assert_ne!(a.key, b.key, "one in flight per partition");
        assert!(q.receive(s(0)).is_none());
        // A failure puts the message back at the head: it is the next one of its key again.
        q.nack(s(0), &a, false).unwrap().unwrap();
        let again = q.receive(s(0)).unwrap();
        assert_eq!(again.id, a.id);
        // Acks release the partition in publish order.
        let mut order = vec![];
        let mut pending = vec![again, b];
        while let Some(r) = pending.pop() {
            order.push(r.id);
            assert!(q.ack(&r));
            if let Some(n) = q.receive(s(0)) {
                pending.push(n);
            }
            if let Some(n) = q.receive(s(0)) {
                pending.push(n);
            }
        }
        let evens: Vec<u64> = order.iter().copied().filter(|i| i % 2 == 0).collect();
        let odds: Vec<u64> = order.iter().copied().filter(|i| i % 2 == 1).collect();
        assert_eq!((evens, odds), (vec![0, 2, 4], vec![1, 3, 5]));
    }

    #[test]
    fn retention_expires_waiting_messages_and_ages_follow() {
        let mut q = Queue::new(Config {
            retention: SimDuration::from_secs(60),
            ..Config::default()
        });
        q.publish(s(0), 1, 0);
        q.publish(s(30), 2, 0);
        assert_eq!(q.oldest_age(s(50)), SimDuration::from_secs(50));
        assert_eq!(q.expire(s(59)), 0);
        assert_eq!(q.expire(s(60)), 1);
        assert_eq!(q.oldest_age(s(60)), SimDuration::from_secs(30));
        assert_eq!(q.receive(s(60)).unwrap().id, 2);
        assert_eq!(q.stats.expired, 1);
    }

    proptest::proptest! {
        /// Whatever consumers do, every published message is acknowledged, dead-lettered,
        /// dropped, expired, or still present: none is lost silently.
        #[test]
        fn no_message_is_lost(ops in proptest::collection::vec((0u8..6, 0u64..4), 1..300)) {
            let mut q = Queue::new(Config {
                max_deliveries: 3,
                partitions: 2,
                on_failure: OnFailure::Requeue,
                retention: SimDuration::from_secs(50),
                redelivery_delay: SimDuration::from_secs(1),
                ..Config::default()
            });
            let mut receipts: Vec<Receipt> = Vec::new();
            let mut delayed: Vec<u32> = Vec::new();
            let mut t = 0;
            for (i, (op, key)) in ops.into_iter().enumerate() {
                t += 1;
                match op {
                    0 | 1 => { q.publish(s(t), i as u64, key); }
                    2 => { if let Some(r) = q.receive(s(t)) { receipts.push(r); } }
                    3 => { if let Some(r) = receipts.pop() { q.ack(&r); } }
                    4 => {
                        if let Some(r) = receipts.pop() {
                            if let Some(Ok(Some(_))) = q.nack(s(t), &r, false) { delayed.push(r.slot); }
                        }
                    }
                    _ => {
                        if let Some(slot) = delayed.pop() { q.due(slot); }
                        q.expire(s(t));
                    }
                }
                let st = q.stats;
                proptest::prop_assert_eq!(
                    st.published,
                    st.acked + st.dead_lettered + st.dropped + st.expired + q.len() as u64
                );
                proptest::prop_assert!(q.in_flight() + q.ready() <= q.len());
            }
        }
    }
}
