//! The benchmark models, shared by `engine.rs` (criterion) and `ratios.rs` (the README's
//! side-by-side table): A (M/M/c) and B (3-tier chain) as bare binary-heap loops, and a
//! faultline run of a scenario file with every metric on.

use faultline::metrics::NullSink;
use faultline::model::{RunOptions, World};
use faultline::scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

mod floor;
pub use floor::{floor_chain, floor_mmc};

/// Customers (A) and requests (B) per run.
pub const N: u64 = 1_000_000;

/// Bare M/M/c: events are (time ns, seq, kind); returns the mean wait (to keep the work alive).
pub fn bare_mmc() -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let arr = Exp::new(9.0 / 1e9).unwrap();
    let svc = Exp::new(1.0 / 1e9).unwrap();
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8)>> = BinaryHeap::new();
    let mut queue: VecDeque<u64> = VecDeque::new();
    let (mut busy, mut seq, mut sent, mut done, mut wait_sum) = (0u32, 0u64, 0u64, 0u64, 0u64);
    heap.push(Reverse((arr.sample(&mut rng) as u64, 0, 0)));
    while let Some(Reverse((t, _, kind))) = heap.pop() {
        seq += 1;
        if kind == 0 {
            sent += 1;
            if sent < N {
                heap.push(Reverse((t + arr.sample(&mut rng) as u64, seq, 0)));
            }
            if busy < 10 {
                busy += 1;
                heap.push(Reverse((t + svc.sample(&mut rng) as u64, seq, 1)));
            } else {
                queue.push_back(t);
            }
        } else {
            done += 1;
            if let Some(a) = queue.pop_front() {
                wait_sum += t - a;
                heap.push(Reverse((t + svc.sample(&mut rng) as u64, seq, 1)));
            } else {
                busy -= 1;
            }
        }
    }
    wait_sum as f64 / done as f64
}

/// Bare 3-tier chain. Event kinds: 0 arrival, 1..=3 arrive at tier k-1, 4..=6 work done at tier k-4,
/// 7..=8 response reaches tier k-7. Requests are indices into a start-time vector.
pub fn bare_chain() -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let arr = Exp::new(600.0 / 1e9).unwrap();
    let g = Exp::new(1.0 / 2e6).unwrap();
    let sigma: f64 = 0.5;
    let o = LogNormal::new((10e6f64).ln() - sigma * sigma / 2.0, sigma).unwrap();
    let p = Exp::new(1.0 / 5e6).unwrap();
    let workers = [4u32, 8, 4];
    let mut busy = [0u32; 3];
    let mut queues: [VecDeque<u32>; 3] = Default::default();
    let mut start: Vec<u64> = Vec::with_capacity(N as usize);
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8, u32)>> = BinaryHeap::new();
    let (mut seq, mut lat_sum, mut done) = (0u64, 0u64, 0u64);
    let net = |rng: &mut ChaCha8Rng| (500_000.0 + 1_000_000.0 * rng.random::<f64>()) as u64;
    heap.push(Reverse((arr.sample(&mut rng) as u64, 0, 0, 0)));
    macro_rules! work {
        ($tier:expr, $t:expr, $req:expr) => {{
            let d = match $tier {
                0 => g.sample(&mut rng),
                1 => o.sample(&mut rng),
                _ => p.sample(&mut rng),
            } as u64;
            seq += 1;
            heap.push(Reverse(($t + d, seq, 4 + $tier as u8, $req)));
        }};
    }
    while let Some(Reverse((t, _, kind, req))) = heap.pop() {
        match kind {
            0 => {
                let id = start.len() as u32;
                start.push(t);
                if (start.len() as u64) < N {
                    seq += 1;
                    heap.push(Reverse((t + arr.sample(&mut rng) as u64, seq, 0, 0)));
                }
                seq += 1;
                heap.push(Reverse((t, seq, 1, id)));
            }
            1..=3 => {
                let tier = (kind - 1) as usize;
                if busy[tier] < workers[tier] {
                    busy[tier] += 1;
                    work!(tier, t, req);
                } else {
                    queues[tier].push_back(req);
                }
            }
            4..=6 => {
                let tier = (kind - 4) as usize;
                if let Some(next) = queues[tier].pop_front() {
                    work!(tier, t, next);
                } else {
                    busy[tier] -= 1;
                }
                seq += 1;
                match tier {
                    0 => {
                        // Gateway work done: first pass forwards, the reply pass finishes.
                        let n = net(&mut rng);
                        heap.push(Reverse((t + n, seq, 2, req)));
                    }
                    1 => {
                        let n = net(&mut rng);
                        heap.push(Reverse((t + n, seq, 3, req)));
                    }
                    _ => {
                        let n = net(&mut rng);
                        heap.push(Reverse((t + n, seq, 8, req)));
                    }
                }
            }
            8 => {
                // Payment's reply reached orders; orders replies to the gateway.
                let n = net(&mut rng);
                seq += 1;
                heap.push(Reverse((t + n, seq, 7, req)));
            }
            _ => {
                lat_sum += t - start[req as usize];
                done += 1;
            }
        }
    }
    lat_sum as f64 / done as f64
}

pub fn faultline_run(file: &str, duration: &str) -> u64 {
    let scn = scenario::load(file.as_ref(), &[format!("sim.duration={duration}")])
        .expect("valid scenario");
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut NullSink);
    r.events
}
