//! Model A with the bare loop's engine plus only what faultline's outputs for it require:
//! the floor under any program that writes the same figures.
//!
//! Issue 20 asks for A within 1.5× the bare loop "with every metric on". This loop keeps
//! the bare loop's heap and draws and adds, per customer, exactly what `summary.json`,
//! `timeseries.csv` and the traces say about A, and nothing for features A does not use:
//! one random stream per component (the customers' arrivals, the server's work), the
//! customer's record (its arrival time, in a slab whose slots are reused), counts for the
//! workload and the service, overall and per bucket, the time integrals behind utilisation
//! and Little's L, five latency histograms (workload and service, overall at 3 digits and
//! per bucket at 2, and the queue wait), the five slowest roots kept for their traces, and
//! a row per component at each bucket's end. Its ratio to the bare loop is what the
//! metrics cost; faultline's ratio to it is what the general model costs.

use faultline::metrics::Latency;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::N;

const ARRIVE: u8 = 0;
const DONE: u8 = 1;
const BUCKET: u8 = 2;
const WORKERS: u32 = 10;
const WARMUP_NS: u64 = 3_600_000_000_000;
const BUCKET_NS: u64 = 600_000_000_000;
const SLOWEST: usize = 5;

/// Counts of one component, overall (after warm-up) or for the current bucket.
#[derive(Default)]
struct Counts {
    requests: u64,
    ok: u64,
}

/// One component's figures: what its summary entry and its series rows need.
struct Figures {
    counts: Counts,
    bucket: Counts,
    latency: Latency,
    bucket_latency: Latency,
}

impl Figures {
    fn new() -> Self {
        Figures {
            counts: Counts::default(),
            bucket: Counts::default(),
            latency: Latency::new(3),
            bucket_latency: Latency::new(2),
        }
    }

    fn arrive(&mut self, measured: bool) {
        self.bucket.requests += 1;
        if measured {
            self.counts.requests += 1;
        }
    }

    fn answer(&mut self, measured: bool, latency_ns: u64) {
        self.bucket.ok += 1;
        self.bucket_latency.record(latency_ns);
        if measured {
            self.counts.ok += 1;
            self.latency.record(latency_ns);
        }
    }

    /// The bucket's series row (requests, ok, four percentiles; utilisation is the
    /// caller's), and a fresh bucket.
    fn close(&mut self) -> [f64; 7] {
        let [p50, p90, p99, p999] = self.bucket_latency.percentiles_ns([50.0, 90.0, 99.0, 99.9]);
        let row = [
            self.bucket.requests as f64,
            self.bucket.ok as f64,
            p50 as f64,
            p90 as f64,
            p99 as f64,
            p999 as f64,
            0.0,
        ];
        self.bucket = Counts::default();
        self.bucket_latency.reset();
        row
    }
}

/// A time integral of a level (busy workers, requests held), overall and per bucket.
#[derive(Default)]
struct Integral {
    level: u64,
    since: u64,
    total: u128,
    bucket: u128,
}

impl Integral {
    fn change(&mut self, now: u64, by: i64, measured: bool) {
        let area = u128::from(self.level) * u128::from(now - self.since);
        self.bucket += area;
        if measured {
            self.total += area;
        }
        self.level = self.level.wrapping_add_signed(by);
        self.since = now;
    }
}

/// The floor for model A: the same customers as [`super::bare_mmc`]; returns the mean
/// queue wait (to keep the work alive) after checking every figure was produced.
pub fn floor_mmc() -> f64 {
    let mut arrivals_rng = ChaCha8Rng::seed_from_u64(1);
    let mut work_rng = ChaCha8Rng::seed_from_u64(2);
    let arr = Exp::new(9.0 / 1e9).unwrap();
    let svc = Exp::new(1.0 / 1e9).unwrap();
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8, u32)>> = BinaryHeap::new();
    // Customers waiting for a worker: (slot, enqueued at).
    let mut queue: VecDeque<(u32, u64)> = VecDeque::new();
    // Each customer's arrival time, in slots reused once it leaves.
    let mut born: Vec<u64> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut workload = Figures::new();
    let mut service = Figures::new();
    let mut queue_wait = Latency::new(3);
    let (mut busy, mut held) = (Integral::default(), Integral::default());
    let mut slowest: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let mut rows: Vec<[f64; 7]> = Vec::new();
    let (mut seq, mut sent) = (0u64, 0u64);
    heap.push(Reverse((
        arr.sample(&mut arrivals_rng) as u64,
        0,
        ARRIVE,
        0,
    )));
    heap.push(Reverse((BUCKET_NS, 0, BUCKET, 0)));
    let mut start = |slot: u32, t: u64, heap: &mut BinaryHeap<_>, seq: &mut u64| {
        *seq += 1;
        heap.push(Reverse((
            t + svc.sample(&mut work_rng) as u64,
            *seq,
            DONE,
            slot,
        )));
    };
    while let Some(Reverse((t, _, kind, slot))) = heap.pop() {
        let measured = t >= WARMUP_NS;
        seq += 1;
        match kind {
            ARRIVE => {
                sent += 1;
                if sent < N {
                    heap.push(Reverse((
                        t + arr.sample(&mut arrivals_rng) as u64,
                        seq,
                        ARRIVE,
                        0,
                    )));
                }
                let slot = match free.pop() {
                    Some(s) => {
                        born[s as usize] = t;
                        s
                    }
                    None => {
                        born.push(t);
                        (born.len() - 1) as u32
                    }
                };
                workload.arrive(measured);
                service.arrive(measured);
                held.change(t, 1, measured);
                if busy.level < u64::from(WORKERS) {
                    busy.change(t, 1, measured);
                    if measured {
                        queue_wait.record(0);
                    }
                    start(slot, t, &mut heap, &mut seq);
                } else {
                    queue.push_back((slot, t));
                }
            }
            DONE => {
                let latency = t - born[slot as usize];
                free.push(slot);
                service.answer(measured, latency);
                workload.answer(measured, latency);
                held.change(t, -1, measured);
                if measured {
                    if slowest.len() < SLOWEST {
                        slowest.push(Reverse(latency));
                    } else if slowest.peek().is_some_and(|m| latency > m.0) {
                        slowest.pop();
                        slowest.push(Reverse(latency));
                    }
                }
                if let Some((next, enqueued)) = queue.pop_front() {
                    if measured {
                        queue_wait.record(t - enqueued);
                    }
                    start(next, t, &mut heap, &mut seq);
                } else {
                    busy.change(t, -1, measured);
                }
            }
            _ => {
                // The bucket's rows: the workload's and the service's, with utilisation.
                busy.change(t, 0, measured);
                held.change(t, 0, measured);
                let mut s = service.close();
                s[6] = busy.bucket as f64 / (BUCKET_NS as f64 * f64::from(WORKERS));
                rows.push(s);
                rows.push(workload.close());
                busy.bucket = 0;
                held.bucket = 0;
                if !heap.is_empty() {
                    heap.push(Reverse((t + BUCKET_NS, seq, BUCKET, 0)));
                }
            }
        }
    }
    assert!(
        !rows.is_empty() && slowest.len() == SLOWEST && service.latency.count() > 0,
        "every figure produced"
    );
    let _ = (
        workload.latency.percentiles_ns([50.0, 99.0]),
        held.total,
        busy.total,
    );
    queue_wait.mean_ns()
}
