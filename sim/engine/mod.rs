//! The generic event kernel: a queue of `(time, sequence)`-ordered events with lazy cancellation.
//!
//! The engine knows nothing of services or requests: it stores events of any type
//! `E`, hands them back in `(time, sequence)` order, and counts them. The sequence
//! number is assigned when an event is scheduled, so events at the same instant come
//! out in the order they were scheduled. That total order is what makes a run
//! reproducible.
//!
//! Timers that are usually cancelled (a call's timeout, which its answer beats) go into
//! *timer lanes* instead of the heap: FIFO queues whose items were scheduled in time
//! order, so each lane is already sorted and only its head competes in a small heap of
//! lane heads. A cancelled timer is flagged in place and dropped when it reaches its
//! lane's head, without a heap operation; before lanes, nine in ten entries of the
//! mesh's heap were cancelled timeouts waiting for their time. Lanes change where an
//! event waits, never the `(time, sequence)` order it is delivered in.
//!
//! Cancelled entries are compacted away once they are more than half of a lane or of
//! the heap, so the queue's memory follows the live events, not the rate of
//! cancellations times the timeout (a 1 h timeout at 10^5 calls a second would otherwise
//! hold 3.6 × 10^8 dead timers).

use crate::time::{SimDuration, SimTime};
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

/// A handle to a scheduled event, used to cancel it (e.g. a timeout whose response came first).
///
/// A heap event's key is its sequence number; a lane item's key has the top bit set,
/// the lane in bits 48..63 and the item's sequence number in bits 0..48 (found by binary
/// search: a lane is sorted by sequence, and compaction moves items).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey(u64);

const LANE_BIT: u64 = 1 << 63;
const POS_BITS: u32 = 48;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
/// Lanes beyond this index are not created: their timers go to the heap.
pub const MAX_LANES: u32 = 1 << 15;

/// A timer waiting in a lane.
struct LaneItem<E> {
    at: SimTime,
    seq: u64,
    cancelled: bool,
    event: E,
}

/// A FIFO of timers scheduled in `(time, sequence)` order.
struct Lane<E> {
    items: VecDeque<LaneItem<E>>,
    /// Items flagged cancelled and still in `items`.
    cancelled: usize,
}

/// Compaction starts when more than this many cancelled entries wait (and they are more
/// than half of their lane or of the heap): small queues are never compacted. (Unit
/// tests compact almost at once, so that the proptests below exercise it.)
#[cfg(not(test))]
const COMPACT_MIN: usize = 1024;
#[cfg(test)]
const COMPACT_MIN: usize = 4;

/// A lane's head in the heads heap, reversed like [`Entry`] to pop the earliest first.
#[derive(PartialEq, Eq)]
struct Head {
    at: SimTime,
    seq: u64,
    lane: u32,
}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Entry<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the earliest `(at, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Why [`Engine::next_event`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The next event lies beyond the horizon (or there is none): the run is complete.
    Horizon,
    /// The event budget is spent: the run was cut short, which must be reported.
    EventBudget,
}

/// The event queue and virtual clock.
pub struct Engine<E> {
    now: SimTime,
    next_seq: u64,
    heap: BinaryHeap<Entry<E>>,
    /// Sequence numbers of cancelled events still in the heap; skipped when popped.
    cancelled: BTreeSet<u64>,
    lanes: Vec<Lane<E>>,
    /// The head of every non-empty lane.
    heads: BinaryHeap<Head>,
    processed: u64,
    horizon: SimTime,
    budget: u64,
    /// The sequence number of the event being handled.
    current_seq: u64,
}

/// The index of the lane item with sequence `seq`, searched from the back: a timer is
/// usually cancelled soon after it was scheduled (the answer beats the timeout), so it
/// lies near the back; a galloping search finds it in O(log distance from the back).
#[inline]
fn find_from_back<E>(items: &VecDeque<LaneItem<E>>, seq: u64) -> Option<usize> {
    let n = items.len();
    let (mut lo, mut hi) = (0, n);
    let mut step = 1;
    while step <= n {
        let probe = n - step;
        if items[probe].seq <= seq {
            lo = probe;
            break;
        }
        hi = probe;
        step *= 2;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match items[mid].seq.cmp(&seq) {
            Ordering::Equal => return Some(mid),
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
        }
    }
    None
}

/// Drops a lane's cancelled items, except its front: the heads heap refers to the front
/// by its time and sequence, and a cancelled front is skipped when it comes up.
fn compact_lane<E>(q: &mut Lane<E>) {
    let front = q.items.pop_front();
    q.items.retain(|item| !item.cancelled);
    q.cancelled = 0;
    if let Some(f) = front {
        q.cancelled += f.cancelled as usize;
        q.items.push_front(f);
    }
}

impl<E> Engine<E> {
    /// An engine that runs until `horizon` (events strictly after it are never
    /// delivered) or until `event_budget` events have been delivered.
    pub fn new(horizon: SimTime, event_budget: u64) -> Self {
        Engine {
            now: SimTime::ZERO,
            next_seq: 0,
            heap: BinaryHeap::with_capacity(1024),
            cancelled: BTreeSet::new(),
            lanes: Vec::new(),
            heads: BinaryHeap::new(),
            processed: 0,
            horizon,
            budget: event_budget,
            current_seq: 0,
        }
    }

    /// The sequence number of the event being handled (its place in scheduling order).
    #[inline]
    pub fn current_seq(&self) -> u64 {
        self.current_seq
    }

    /// The current virtual time: the time of the event being handled.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events delivered so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Events waiting in the queue, cancelled ones included until they are skipped.
    pub fn pending(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(|l| l.items.len()).sum::<usize>()
    }

    /// Schedules `event` at absolute time `at`, which must not be in the past.
    #[inline]
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> EventKey {
        debug_assert!(
            at >= self.now,
            "event scheduled in the past: {at:?} < {:?}",
            self.now
        );
        let at = at.max(self.now);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, event });
        EventKey(seq)
    }

    /// Schedules `event` after `delay` from now.
    #[inline]
    pub fn schedule_in(&mut self, delay: SimDuration, event: E) -> EventKey {
        self.schedule_at(self.now.after(delay), event)
    }

    /// Schedules a timer that will probably be cancelled at `at`, in timer lane `lane`.
    ///
    /// A lane pays off when its timers come in time order (the same timeout after each
    /// send); one scheduled earlier than the lane's last, or in a lane past
    /// [`MAX_LANES`], goes to the heap. Either way it is delivered exactly as
    /// [`Engine::schedule_at`] would deliver it.
    #[inline]
    pub fn schedule_timer(&mut self, lane: u32, at: SimTime, event: E) -> EventKey {
        let at = at.max(self.now);
        if lane >= MAX_LANES {
            return self.schedule_at(at, event);
        }
        let l = lane as usize;
        if l >= self.lanes.len() {
            self.lanes.resize_with(l + 1, || Lane {
                items: VecDeque::new(),
                cancelled: 0,
            });
        }
        let q = &self.lanes[l];
        if q.items.back().is_some_and(|b| b.at > at) {
            return self.schedule_at(at, event);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let q = &mut self.lanes[l];
        debug_assert!(seq <= POS_MASK, "sequence numbers past 2^48");
        if q.items.is_empty() {
            self.heads.push(Head { at, seq, lane });
        }
        q.items.push_back(LaneItem {
            at,
            seq,
            cancelled: false,
            event,
        });
        EventKey(LANE_BIT | (u64::from(lane) << POS_BITS) | (seq & POS_MASK))
    }

    /// Cancels a scheduled event. Cancelling an event that was already delivered is
    /// a caller bug; it is caught in debug builds and harmless in release builds.
    #[inline]
    pub fn cancel(&mut self, key: EventKey) {
        if key.0 & LANE_BIT != 0 {
            let lane = ((key.0 & !LANE_BIT) >> POS_BITS) as usize;
            let q = &mut self.lanes[lane];
            let seq = key.0 & POS_MASK;
            let found = find_from_back(&q.items, seq);
            debug_assert!(found.is_some(), "cancelling a timer already delivered");
            if let Some(i) = found {
                let item = &mut q.items[i];
                if !item.cancelled {
                    item.cancelled = true;
                    q.cancelled += 1;
                    if q.cancelled > COMPACT_MIN && 2 * q.cancelled > q.items.len() {
                        compact_lane(q);
                    }
                }
            }
            return;
        }
        debug_assert!(key.0 < self.next_seq, "cancelling an event never scheduled");
        self.cancelled.insert(key.0);
        if self.cancelled.len() > COMPACT_MIN && 2 * self.cancelled.len() > self.heap.len() {
            let cancelled = std::mem::take(&mut self.cancelled);
            self.heap.retain(|e| !cancelled.contains(&e.seq));
        }
    }

    /// The next live event, advancing the clock to its time; or why there is none.
    #[inline]
    pub fn next_event(&mut self) -> Result<(SimTime, E), Stop> {
        loop {
            if self.processed >= self.budget {
                return Err(Stop::EventBudget);
            }
            let heap_top = self.heap.peek().map(|e| (e.at, e.seq));
            let lane_top = self.heads.peek().map(|h| (h.at, h.seq));
            let from_lane = match (heap_top, lane_top) {
                (None, None) => return Err(Stop::Horizon),
                (Some(h), Some(l)) => l < h,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            let next_at = if from_lane { lane_top } else { heap_top };
            if next_at.is_some_and(|(at, _)| at > self.horizon) {
                return Err(Stop::Horizon);
            }
            if from_lane {
                let Head { at, lane, seq } = self.heads.pop().expect("peeked");
                let q = &mut self.lanes[lane as usize];
                let item = q.items.pop_front().expect("a head's lane is not empty");
                q.cancelled -= item.cancelled as usize;
                // Drop the cancelled timers behind it now: they never cost a heap operation.
                while q.items.front().is_some_and(|f| f.cancelled) {
                    q.items.pop_front();
                    q.cancelled -= 1;
                }
                if let Some(f) = q.items.front() {
                    self.heads.push(Head {
                        at: f.at,
                        seq: f.seq,
                        lane,
                    });
                }
                if item.cancelled {
                    continue;
                }
                debug_assert!(at >= self.now, "time went backwards");
                self.now = at;
                self.current_seq = seq;
                self.processed += 1;
                return Ok((at, item.event));
            }
            let Entry { at, seq, event } = self.heap.pop().expect("peeked");
            if !self.cancelled.is_empty() && self.cancelled.remove(&seq) {
                continue;
            }
            debug_assert!(at >= self.now, "time went backwards");
            self.now = at;
            self.current_seq = seq;
            self.processed += 1;
            return Ok((at, event));
        }
    }

    /// Moves the clock to the horizon once the run is over (so end-of-run
    /// accounting integrates up to the horizon, not to the last event).
    pub fn finish(&mut self, stop: Stop) {
        if stop == Stop::Horizon && self.horizon > self.now && self.horizon != SimTime::MAX {
            self.now = self.horizon;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut e = Engine::new(SimTime::MAX, u64::MAX);
        e.schedule_at(SimTime(5), "b");
        e.schedule_at(SimTime(1), "a");
        e.schedule_at(SimTime(5), "c");
        e.schedule_at(SimTime(9), "d");
        let order: Vec<_> = std::iter::from_fn(|| e.next_event().ok()).collect();
        assert_eq!(
            order,
            vec![
                (SimTime(1), "a"),
                (SimTime(5), "b"),
                (SimTime(5), "c"),
                (SimTime(9), "d")
            ]
        );
        assert_eq!(e.processed(), 4);
    }

    #[test]
    fn cancelled_events_are_skipped_and_not_counted() {
        let mut e = Engine::new(SimTime::MAX, u64::MAX);
        let k = e.schedule_at(SimTime(2), 2);
        e.schedule_at(SimTime(3), 3);
        e.cancel(k);
        assert_eq!(e.next_event(), Ok((SimTime(3), 3)));
        assert_eq!(e.next_event(), Err(Stop::Horizon));
        assert_eq!(e.processed(), 1);
    }

    #[test]
    fn stops_at_horizon_and_budget() {
        let mut e = Engine::new(SimTime(10), u64::MAX);
        e.schedule_at(SimTime(10), 1);
        e.schedule_at(SimTime(11), 2);
        assert_eq!(e.next_event(), Ok((SimTime(10), 1)));
        assert_eq!(e.next_event(), Err(Stop::Horizon));
        e.finish(Stop::Horizon);
        assert_eq!(e.now(), SimTime(10));

        let mut e = Engine::new(SimTime::MAX, 2);
        for t in 0..5 {
            e.schedule_at(SimTime(t), t);
        }
        assert!(e.next_event().is_ok() && e.next_event().is_ok());
        assert_eq!(e.next_event(), Err(Stop::EventBudget));
    }

    #[test]
    fn schedule_in_is_relative_to_now() {
        let mut e = Engine::new(SimTime::MAX, u64::MAX);
        e.schedule_at(SimTime(100), 0);
        e.next_event().unwrap();
        e.schedule_in(SimDuration(5), 1);
        assert_eq!(e.next_event(), Ok((SimTime(105), 1)));
    }

    proptest::proptest! {
        /// Whatever is scheduled and cancelled, delivery is sorted by (time, seq)
        /// and delivers exactly the uncancelled events.
        #[test]
        fn delivery_is_sorted_and_complete(
            times in proptest::collection::vec(0u64..50, 0..200),
            cancel_mask in proptest::collection::vec(proptest::bool::ANY, 200),
        ) {
            let mut e = Engine::new(SimTime::MAX, u64::MAX);
            let keys: Vec<_> = times.iter().enumerate().map(|(i, &t)| e.schedule_at(SimTime(t), i)).collect();
            let mut want: Vec<(u64, usize)> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                if cancel_mask[i] { e.cancel(*k); } else { want.push((times[i], i)); }
            }
            want.sort();
            let got: Vec<(u64, usize)> = std::iter::from_fn(|| e.next_event().ok()).map(|(t, i)| (t.0, i)).collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// Timer lanes deliver exactly what one heap would, in the same order: a run of
        /// schedules (heap or lane, in or out of a lane's time order), cancellations of
        /// pending events and deliveries, checked against a plain list of pending events.
        #[test]
        fn lanes_deliver_as_the_heap_would(
            ops in proptest::collection::vec((0u8..6, 0u64..40, 0u32..4), 0..300),
        ) {
            let mut e = Engine::new(SimTime::MAX, u64::MAX);
            // The reference: pending (at, seq, id) and their keys.
            let mut pending: Vec<(u64, u64, usize, EventKey)> = Vec::new();
            let mut seq = 0u64;
            for (i, &(op, x, lane)) in ops.iter().enumerate() {
                let at = e.now().0 + x;
                match op {
                    0 => {
                        let k = e.schedule_at(SimTime(at), i);
                        pending.push((at, seq, i, k));
                        seq += 1;
                    }
                    1 | 2 => {
                        let k = e.schedule_timer(lane, SimTime(at), i);
                        pending.push((at, seq, i, k));
                        seq += 1;
                    }
                    3 if !pending.is_empty() => {
                        let (.., k) = pending.remove(x as usize % pending.len());
                        e.cancel(k);
                    }
                    _ => {
                        let want = pending.iter().enumerate().min_by_key(|(_, p)| (p.0, p.1)).map(|(j, p)| (j, p.0, p.2));
                        let got = e.next_event().ok().map(|(t, id)| (t.0, id));
                        proptest::prop_assert_eq!(got, want.map(|(_, at, id)| (at, id)));
                        if let Some((j, ..)) = want { pending.remove(j); }
                    }
                }
            }
            pending.sort_by_key(|p| (p.0, p.1));
            let want: Vec<_> = pending.iter().map(|p| (p.0, p.2)).collect();
            let got: Vec<_> = std::iter::from_fn(|| e.next_event().ok()).map(|(t, i)| (t.0, i)).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// Memory follows the live events: timers and heap events cancelled by the hundred
    /// thousand leave at most twice the live ones (plus the compaction threshold) queued,
    /// and the survivors come out in order.
    #[test]
    fn cancelled_entries_do_not_accumulate() {
        let mut e = Engine::new(SimTime::MAX, u64::MAX);
        let mut live = Vec::new();
        for i in 0..100_000u64 {
            let t = e.schedule_timer(0, SimTime(1_000 + i), i);
            let h = e.schedule_at(SimTime(500_000 - i), i + 1_000_000);
            if i % 1000 == 0 {
                live.push((1_000 + i, i));
                live.push((500_000 - i, i + 1_000_000));
            } else {
                e.cancel(t);
                e.cancel(h);
            }
            assert!(
                e.pending() <= 2 * live.len() + 4 * COMPACT_MIN + 4,
                "{} queued for {} live",
                e.pending(),
                live.len()
            );
        }
        live.sort();
        let got: Vec<(u64, u64)> = std::iter::from_fn(|| e.next_event().ok())
            .map(|(t, i)| (t.0, i))
            .collect();
        assert_eq!(got, live);
    }

    #[test]
    fn out_of_order_timers_and_far_lanes_fall_back_to_the_heap() {
        let mut e = Engine::new(SimTime::MAX, u64::MAX);
        e.schedule_timer(0, SimTime(10), "late");
        e.schedule_timer(0, SimTime(5), "early, out of lane order");
        e.schedule_timer(MAX_LANES, SimTime(7), "far lane");
        let a = e.schedule_timer(1, SimTime(6), "cancelled");
        e.schedule_timer(1, SimTime(6), "same time, later seq");
        e.cancel(a);
        assert_eq!(e.pending(), 5);
        let order: Vec<_> = std::iter::from_fn(|| e.next_event().ok()).collect();
        assert_eq!(
            order,
            vec![
                (SimTime(5), "early, out of lane order"),
                (SimTime(6), "same time, later seq"),
                (SimTime(7), "far lane"),
                (SimTime(10), "late"),
            ]
        );
        assert_eq!(e.processed(), 4);
    }
}
