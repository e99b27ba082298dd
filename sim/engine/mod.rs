//! The generic event kernel: a queue of `(time, sequence)`-ordered events with lazy cancellation.
//!
//! The engine knows nothing of services or requests: it stores events of any type
//! `E`, hands them back in `(time, sequence)` order, and counts them. The sequence
//! number is assigned when an event is scheduled, so events at the same instant come
//! out in the order they were scheduled. That total order is what makes a run
//! reproducible.

use crate::time::{SimDuration, SimTime};
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

/// A handle to a scheduled event, used to cancel it (e.g. a timeout whose response came first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey(u64);

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
    processed: u64,
    horizon: SimTime,
    budget: u64,
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
            processed: 0,
            horizon,
            budget: event_budget,
        }
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
        self.heap.len()
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

    /// Cancels a scheduled event. Cancelling an event that was already delivered is
    /// a caller bug; it is caught in debug builds and harmless in release builds.
    #[inline]
    pub fn cancel(&mut self, key: EventKey) {
        debug_assert!(key.0 < self.next_seq, "cancelling an event never scheduled");
        self.cancelled.insert(key.0);
    }

    /// The next live event, advancing the clock to its time; or why there is none.
    #[inline]
    pub fn next_event(&mut self) -> Result<(SimTime, E), Stop> {
        loop {
            if self.processed >= self.budget {
                return Err(Stop::EventBudget);
            }
            match self.heap.peek() {
                None => return Err(Stop::Horizon),
                Some(top) if top.at > self.horizon => return Err(Stop::Horizon),
                Some(_) => {}
            }
            let Entry { at, seq, event } = self.heap.pop().expect("peeked");
            if !self.cancelled.is_empty() && self.cancelled.remove(&seq) {
                continue;
            }
            debug_assert!(at >= self.now, "time went backwards");
            self.now = at;
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
    }
}
