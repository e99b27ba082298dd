//! Bulkheads and connection pools (POLICIES.md §7): the Resilience4j semaphore bulkhead with a
//! bounded FIFO wait, and Envoy's cluster resource limits (max connections, pending requests,
//! requests and retries) with HTTP/1.1 semantics (one request per connection).
//!
//! Waiters are identified by an opaque `u32` chosen by the caller; the bulkhead says when to
//! wake whom, and the caller arms the wait timers (this module never sees the event queue).

use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Parameters of one bulkhead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Config {
    /// Resilience4j SemaphoreBulkhead: `max_concurrent` permits, waiting up to `max_wait`
    /// (0 = reject at once), FIFO among waiters.
    Semaphore {
        /// maxConcurrentCalls (default 25).
        max_concurrent: u32,
        /// maxWaitDuration (default 0).
        max_wait: SimDuration,
    },
    /// Envoy cluster circuit breakers (HTTP/1.1 pool): a request needs a connection; when
    /// `max_connections` are busy it waits as pending, if fewer than `max_pending` already
    /// wait, else it overflows (503). `max_requests` bounds active requests; `max_retries`
    /// bounds concurrent retries.
    Envoy {
        /// max_connections (default 1024).
        max_connections: u32,
        /// max_pending_requests (default 1024).
        max_pending: u32,
        /// max_requests (default 1024).
        max_requests: u32,
        /// max_retries (default 3).
        max_retries: u32,
    },
}

/// The answer to an acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Go ahead; call [`Bulkhead::release`] when the call ends.
    Granted,
    /// Queued; the caller is woken by a later `release`, or must call [`Bulkhead::give_up`]
    /// at `until` (None: no own timer; Envoy pending waits only for the caller's timeouts).
    Wait {
        /// When the wait ends in a rejection.
        until: Option<SimTime>,
    },
    /// Full: reject at once.
    Rejected,
}

/// One bulkhead's state.
#[derive(Clone, Debug)]
pub struct Bulkhead {
    cfg: Config,
    in_use: u32,
    waiters: VecDeque<u32>,
    /// Rejections (full, or wait expired).
    pub rejected: u64,
}

impl Bulkhead {
    /// An empty bulkhead.
    pub fn new(cfg: Config) -> Self {
        Bulkhead {
            cfg,
            in_use: 0,
            waiters: VecDeque::new(),
            rejected: 0,
        }
    }

    /// Calls holding a permit (a connection).
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Calls waiting.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Envoy's concurrent-retry limit, if any.
    pub fn max_retries(&self) -> Option<u32> {
        match self.cfg {
            Config::Envoy { max_retries, .. } => Some(max_retries),
            Config::Semaphore { .. } => None,
        }
    }

    /// Asks for a permit for waiter `id` at `now`.
    pub fn acquire(&mut self, now: SimTime, id: u32) -> Acquire {
        match self.cfg {
            Config::Semaphore {
                max_concurrent,
                max_wait,
            } => {
                if self.in_use < max_concurrent && self.waiters.is_empty() {
                    self.in_use += 1;
                    Acquire::Granted
                } else if max_wait.0 == 0 {
                    self.rejected += 1;
                    Acquire::Rejected
                } else {
                    self.waiters.push_back(id);
                    Acquire::Wait {
                        until: Some(now.after(max_wait)),
                    }
                }
            }
            Config::Envoy {
                max_connections,
                max_pending,
                max_requests,
                ..
            } => {
                // HTTP/1.1: active requests = busy connections, so max_requests caps them too.
                let cap = max_connections.min(max_requests);
                if self.in_use < cap && self.waiters.is_empty() {
                    self.in_use += 1;
                    Acquire::Granted
                } else if (self.waiters.len() as u32) < max_pending && max_requests > self.in_use {
                    self.waiters.push_back(id);
                    Acquire::Wait { until: None }
                } else {
                    self.rejected += 1;
                    Acquire::Rejected
                }
            }
        }
    }

    /// A call holding a permit ended; returns the waiter that now holds it, if any.
    pub fn release(&mut self) -> Option<u32> {
        debug_assert!(self.in_use > 0);
        match self.waiters.pop_front() {
            Some(w) => Some(w),
            None => {
                self.in_use -= 1;
                None
            }
        }
    }

    /// Waiter `id` stops waiting (its wait expired or its caller gave up). Returns whether it
    /// was still waiting; if so and the wait expired, it counts as a rejection.
    pub fn give_up(&mut self, id: u32, expired: bool) -> bool {
        match self.waiters.iter().position(|&w| w == id) {
            Some(i) => {
                self.waiters.remove(i);
                if expired {
                    self.rejected += 1;
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_millis(x))
    }

    #[test]
    fn s7_1_b1_twenty_sixth_rejected_then_admitted_after_a_completion() {
        let mut b = Bulkhead::new(Config::Semaphore {
            max_concurrent: 25,
            max_wait: SimDuration::ZERO,
        });
        for i in 0..25 {
            assert_eq!(b.acquire(ms(0), i), Acquire::Granted);
        }
        assert_eq!(b.acquire(ms(0), 25), Acquire::Rejected);
        assert_eq!(b.release(), None);
        assert_eq!(b.acquire(ms(1), 26), Acquire::Granted);
    }

    #[test]
    fn s7_1_b2_wait_admits_within_max_wait_else_rejects_at_its_end() {
        let mut b = Bulkhead::new(Config::Semaphore {
            max_concurrent: 1,
            max_wait: SimDuration::from_millis(100),
        });
        assert_eq!(b.acquire(ms(0), 1), Acquire::Granted);
        assert_eq!(
            b.acquire(ms(0), 2),
            Acquire::Wait {
                until: Some(ms(100))
            }
        );
        // The first finishes at 60 ms: the waiter gets the permit.
        assert_eq!(b.release(), Some(2));
        assert_eq!(b.in_use(), 1);
        // A third waits from 70 ms; nobody finishes: at 170 ms the caller gives up.
        assert_eq!(
            b.acquire(ms(70), 3),
            Acquire::Wait {
                until: Some(ms(170))
            }
        );
        assert!(b.give_up(3, true));
        assert_eq!(b.rejected, 1);
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn s7_4_b1_istio_one_connection_one_pending_third_overflows() {
        let mut b = Bulkhead::new(Config::Envoy {
            max_connections: 1,
            max_pending: 1,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
        });
        assert_eq!(b.acquire(ms(0), 1), Acquire::Granted);
        assert_eq!(b.acquire(ms(0), 2), Acquire::Wait { until: None });
        assert_eq!(b.acquire(ms(0), 3), Acquire::Rejected);
        assert_eq!(b.release(), Some(2));
        assert_eq!(b.release(), None);
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn s7_3_limits_never_touch_in_flight_work() {
        // Releasing never fails and never wakes more waiters than permits freed.
        let mut b = Bulkhead::new(Config::Envoy {
            max_connections: 2,
            max_pending: 10,
            max_requests: 1024,
            max_retries: 3,
        });
        for i in 0..6 {
            b.acquire(ms(0), i);
        }
        assert_eq!((b.in_use(), b.waiting()), (2, 4));
        let woken: Vec<_> = (0..6).filter_map(|_| b.release()).collect();
        assert_eq!(woken, vec![2, 3, 4, 5]);
        assert_eq!(b.in_use(), 0);
    }
}
