//! A sidecar proxy's CPU: a FIFO station of `workers` servers and a bounded queue, solved by recurrence at each arrival (arrivals come in time order), so a pass costs no events.
//!
//! Each pass (a request through the proxy, both directions of its exchange) takes a
//! service time; it starts when a worker is free and everything before it has started.
//! When `queue` passes already wait, the proxy is overloaded and answers 503 itself
//! (Envoy's local reply), as a real sidecar short of CPU would.

use crate::time::{SimDuration, SimTime};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// What a pass got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Through, done at this time.
    Through(SimTime),
    /// The queue was full: a local 503.
    Overloaded,
}

/// One proxy's CPU.
#[derive(Clone, Debug)]
pub struct Station {
    /// When each busy worker frees up (a min-heap; idle workers are absent).
    free_at: BinaryHeap<Reverse<SimTime>>,
    workers: u32,
    queue: u32,
    /// Start times of passes admitted but not yet started, in order.
    waiting: VecDeque<SimTime>,
    /// Worker time used, ns.
    pub busy_ns: u64,
    /// Passes made.
    pub passes: u64,
    /// Passes refused (overloaded).
    pub overloaded: u64,
}

impl Station {
    /// A proxy with `workers` workers and room for `queue` waiting passes.
    pub fn new(workers: u32, queue: u32) -> Station {
        Station {
            free_at: BinaryHeap::new(),
            workers: workers.max(1),
            queue,
            waiting: VecDeque::new(),
            busy_ns: 0,
            passes: 0,
            overloaded: 0,
        }
    }

    /// A pass arriving at `now` (not before any earlier arrival) needing `service`.
    pub fn arrive(&mut self, now: SimTime, service: SimDuration) -> Pass {
        while self.waiting.front().is_some_and(|&s| s <= now) {
            self.waiting.pop_front();
        }
        // Finished workers stay in the heap with their free time: a time at or before
        // `now` means free now.
        let start = if (self.free_at.len() as u32) < self.workers {
            now
        } else {
            let Reverse(first_free) = *self.free_at.peek().expect("workers >= 1");
            if first_free > now && self.waiting.len() as u32 >= self.queue {
                self.overloaded += 1;
                return Pass::Overloaded;
            }
            self.free_at.pop();
            first_free.max(now)
        };
        if start > now {
            self.waiting.push_back(start);
        }
        let end = start.after(service);
        self.free_at.push(Reverse(end));
        self.busy_ns += service.0;
        self.passes += 1;
        Pass::Through(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: u64 = 1_000_000;

    fn through(p: Pass) -> u64 {
        match p {
            Pass::Through(t) => t.0 / MS,
            Pass::Overloaded => panic!("overloaded"),
        }
    }

    #[test]
    fn one_worker_serves_in_arrival_order() {
        let mut s = Station::new(1, 10);
        let d = SimDuration(10 * MS);
        assert_eq!(through(s.arrive(SimTime(0), d)), 10);
        assert_eq!(through(s.arrive(SimTime(MS), d)), 20);
        assert_eq!(through(s.arrive(SimTime(2 * MS), d)), 30);
        assert_eq!(through(s.arrive(SimTime(40 * MS), d)), 50, "idle again");
    }

    #[test]
    fn two_workers_take_the_first_free() {
        let mut s = Station::new(2, 10);
        assert_eq!(through(s.arrive(SimTime(0), SimDuration(10 * MS))), 10);
        assert_eq!(through(s.arrive(SimTime(0), SimDuration(3 * MS))), 3);
        assert_eq!(through(s.arrive(SimTime(MS), SimDuration(MS))), 4);
        assert_eq!(through(s.arrive(SimTime(MS), SimDuration(MS))), 5);
    }

    #[test]
    fn a_full_queue_overloads_and_drains_with_time() {
        let mut s = Station::new(1, 2);
        let d = SimDuration(10 * MS);
        through(s.arrive(SimTime(0), d));
        through(s.arrive(SimTime(0), d));
        through(s.arrive(SimTime(0), d));
        assert_eq!(s.arrive(SimTime(0), d), Pass::Overloaded);
        assert_eq!(s.overloaded, 1);
        // By 10 ms the second pass has started: one waits, room for one more.
        assert_eq!(through(s.arrive(SimTime(10 * MS), d)), 40);
        assert_eq!(s.arrive(SimTime(10 * MS), d), Pass::Overloaded);
    }

    #[test]
    fn utilisation_matches_offered_load_below_saturation() {
        // 1 worker, 1 ms per pass, one pass every 2 ms: busy half the time, never waits.
        let mut s = Station::new(1, 0);
        for k in 0..1000 {
            through(s.arrive(SimTime(2 * MS * k), SimDuration(MS)));
        }
        assert_eq!(s.busy_ns, 1000 * MS);
        assert_eq!(s.overloaded, 0);
    }
}
