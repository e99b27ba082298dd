//! Models A and B with the bare loops' engine plus only what faultline's outputs for them require.
//!
//! The floor under any program that writes the same figures. Issue 20 asks for A and B
//! within 1.5× the bare loops "with every metric on". For A this loop keeps
//! the bare loop's heap and draws and adds, per customer, exactly what `summary.json`,
//! `timeseries.csv` and the traces say about A, and nothing for features A does not use:
//! one random stream per component (the customers' arrivals, the server's work), the
//! customer's record (its arrival time, in a slab whose slots are reused), counts for the
//! workload and the service, overall and per bucket, the time integrals behind utilisation
//! and Little's L, five latency histograms (workload and service, overall at 3 digits and
//! per bucket at 2, and the queue wait), the five slowest roots kept for their traces, and
//! a row per component at each bucket's end. B adds the same per service (three), the
//! per-edge call counts and the network's message count. Their ratios to the bare loops
//! are what the metrics cost; faultline's ratio to them is what the general model costs.

use faultline::metrics::Latency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::N;

/// Roots whose traces are kept (faultline's `trace.slowest` default).
const SLOWEST: usize = 5;

/// Keeps the `SLOWEST` largest latencies (the roots whose traces are written).
fn keep_slowest(slowest: &mut BinaryHeap<Reverse<u64>>, latency: u64) {
    if slowest.len() < SLOWEST {
        slowest.push(Reverse(latency));
    } else if slowest.peek().is_some_and(|m| latency > m.0) {
        slowest.pop();
        slowest.push(Reverse(latency));
    }
}

/// A slab of per-request records whose slots are reused (memory flat in duration).
struct Slab<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, x: T) -> u32 {
        match self.free.pop() {
            Some(s) => {
                self.items[s as usize] = x;
                s
            }
            None => {
                self.items.push(x);
                (self.items.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, s: u32) {
        self.free.push(s);
    }
}

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
    const ARRIVE: u8 = 0;
    const DONE: u8 = 1;
    const BUCKET: u8 = 2;
    const WORKERS: u32 = 10;
    const WARMUP_NS: u64 = 3_600_000_000_000;
    const BUCKET_NS: u64 = 600_000_000_000;
    let mut arrivals_rng = ChaCha8Rng::seed_from_u64(1);
    let mut work_rng = ChaCha8Rng::seed_from_u64(2);
    let arr = Exp::new(9.0 / 1e9).unwrap();
    let svc = Exp::new(1.0 / 1e9).unwrap();
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8, u32)>> = BinaryHeap::new();
    // Customers waiting for a worker: (slot, enqueued at).
    let mut queue: VecDeque<(u32, u64)> = VecDeque::new();
    // Each customer's arrival time, in slots reused once it leaves.
    let mut born: Slab<u64> = Slab::new();
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
                let slot = born.insert(t);
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
                let latency = t - born.items[slot as usize];
                born.remove(slot);
                service.answer(measured, latency);
                workload.answer(measured, latency);
                held.change(t, -1, measured);
                if measured {
                    keep_slowest(&mut slowest, latency);
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

/// One request of B: when it reached each tier (for that service's latency) and the root.
#[derive(Clone, Copy)]
struct Hop {
    born: u64,
    reached: [u64; 3],
}

/// The floor for model B: the same requests as [`super::bare_chain`] (gateway, orders,
/// payment; a call to the next tier after each one's work; uniform 0.5–1.5 ms a message);
/// returns the mean latency.
pub fn floor_chain() -> f64 {
    const WARMUP_NS: u64 = 10_000_000_000;
    const BUCKET_NS: u64 = 10_000_000_000;
    const ROOT: u8 = 0;
    const REPLY_AT_GATEWAY: u8 = 7;
    const REPLY_AT_ORDERS: u8 = 8;
    const BUCKET: u8 = 9;
    let mut arrivals_rng = ChaCha8Rng::seed_from_u64(1);
    let mut work_rng = [2, 3, 4].map(ChaCha8Rng::seed_from_u64);
    let mut net_rng = ChaCha8Rng::seed_from_u64(5);
    let arr = Exp::new(600.0 / 1e9).unwrap();
    let g = Exp::new(1.0 / 2e6).unwrap();
    let sigma: f64 = 0.5;
    let o = LogNormal::new((10e6f64).ln() - sigma * sigma / 2.0, sigma).unwrap();
    let p = Exp::new(1.0 / 5e6).unwrap();
    let workers = [4u64, 8, 4];
    let mut queues: [VecDeque<(u32, u64)>; 3] = Default::default();
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8, u32)>> = BinaryHeap::new();
    let mut reqs: Slab<Hop> = Slab::new();
    let mut workload = Figures::new();
    let mut services = [Figures::new(), Figures::new(), Figures::new()];
    let mut queue_wait = [Latency::new(3), Latency::new(3), Latency::new(3)];
    let mut busy: [Integral; 3] = Default::default();
    let mut held: [Integral; 3] = Default::default();
    // Per edge (gateway->orders, orders->payment): calls, attempts, ok.
    let mut edges = [[0u64; 3]; 2];
    let mut messages = 0u64;
    let mut slowest: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let mut rows: Vec<[f64; 7]> = Vec::new();
    let (mut seq, mut sent, mut lat_sum, mut done) = (0u64, 0u64, 0u64, 0u64);
    heap.push(Reverse((arr.sample(&mut arrivals_rng) as u64, 0, ROOT, 0)));
    heap.push(Reverse((BUCKET_NS, 0, BUCKET, 0)));
    while let Some(Reverse((t, _, kind, req))) = heap.pop() {
        let measured = t >= WARMUP_NS;
        seq += 1;
        let mut net = |messages: &mut u64| {
            *messages += 1;
            (500_000.0 + 1_000_000.0 * net_rng.random::<f64>()) as u64
        };
        // Work at `tier` for `req`, now (its worker is taken).
        let mut work = |tier: usize, req: u32, heap: &mut BinaryHeap<_>, seq: &mut u64| {
            let d = match tier {
                0 => g.sample(&mut work_rng[0]),
                1 => o.sample(&mut work_rng[1]),
                _ => p.sample(&mut work_rng[2]),
            } as u64;
            *seq += 1;
            heap.push(Reverse((t + d, *seq, 4 + tier as u8, req)));
        };
        match kind {
            ROOT => {
                sent += 1;
                if sent < N {
                    heap.push(Reverse((
                        t + arr.sample(&mut arrivals_rng) as u64,
                        seq,
                        ROOT,
                        0,
                    )));
                }
                let id = reqs.insert(Hop {
                    born: t,
                    reached: [0; 3],
                });
                workload.arrive(measured);
                heap.push(Reverse((t, seq, 1, id)));
            }
            1..=3 => {
                let tier = usize::from(kind - 1);
                reqs.items[req as usize].reached[tier] = t;
                services[tier].arrive(measured);
                held[tier].change(t, 1, measured);
                if busy[tier].level < workers[tier] {
                    busy[tier].change(t, 1, measured);
                    if measured {
                        queue_wait[tier].record(0);
                    }
                    work(tier, req, &mut heap, &mut seq);
                } else {
                    queues[tier].push_back((req, t));
                }
            }
            4..=6 => {
                let tier = usize::from(kind - 4);
                if let Some((next, enqueued)) = queues[tier].pop_front() {
                    if measured {
                        queue_wait[tier].record(t - enqueued);
                    }
                    work(tier, next, &mut heap, &mut seq);
                } else {
                    busy[tier].change(t, -1, measured);
                }
                seq += 1;
                if tier < 2 {
                    // The call to the next tier: one attempt, one message.
                    edges[tier][0] += 1;
                    edges[tier][1] += 1;
                    let n = net(&mut messages);
                    heap.push(Reverse((t + n, seq, 2 + tier as u8, req)));
                } else {
                    // Payment answers orders.
                    let reached = reqs.items[req as usize].reached[2];
                    services[2].answer(measured, t - reached);
                    held[2].change(t, -1, measured);
                    let n = net(&mut messages);
                    heap.push(Reverse((t + n, seq, REPLY_AT_ORDERS, req)));
                }
            }
            REPLY_AT_ORDERS => {
                edges[1][2] += 1;
                let reached = reqs.items[req as usize].reached[1];
                services[1].answer(measured, t - reached);
                held[1].change(t, -1, measured);
                let n = net(&mut messages);
                heap.push(Reverse((t + n, seq, REPLY_AT_GATEWAY, req)));
            }
            REPLY_AT_GATEWAY => {
                edges[0][2] += 1;
                let hop = reqs.items[req as usize];
                reqs.remove(req);
                services[0].answer(measured, t - hop.reached[0]);
                held[0].change(t, -1, measured);
                let latency = t - hop.born;
                workload.answer(measured, latency);
                if measured {
                    keep_slowest(&mut slowest, latency);
                }
                lat_sum += latency;
                done += 1;
            }
            _ => {
                for tier in 0..3 {
                    busy[tier].change(t, 0, measured);
                    held[tier].change(t, 0, measured);
                    let mut row = services[tier].close();
                    row[6] = busy[tier].bucket as f64 / (BUCKET_NS as f64 * workers[tier] as f64);
                    rows.push(row);
                    busy[tier].bucket = 0;
                    held[tier].bucket = 0;
                }
                rows.push(workload.close());
                if !heap.is_empty() {
                    heap.push(Reverse((t + BUCKET_NS, seq, BUCKET, 0)));
                }
            }
        }
    }
    assert!(
        !rows.is_empty()
            && slowest.len() == SLOWEST
            && edges[1][2] > 0
            && messages > 0
            && queue_wait.iter().all(|q| q.count() > 0),
        "every figure produced"
    );
    lat_sum as f64 / done as f64
}
