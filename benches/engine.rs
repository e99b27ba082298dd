//! Engine benchmarks: (A) M/M/c and (B) a 3-tier chain, each as a bare binary-heap
//! loop (the floor: no abstractions, no metrics) and as a full faultline run with
//! all metrics on, so the overhead ratio is measured in one run.
//!
//! A: lambda = 9/s, c = 10, mu = 1/s, ~1,000,000 customers.
//! B: gateway (4 workers, exp 2 ms) -> orders (8, lognormal mean 10 ms sigma 0.5)
//!    -> payment (4, exp 5 ms), network uniform 0.5-1.5 ms per hop, Poisson 600/s,
//!    ~1,000,000 requests.
//! C: scenarios/mesh.toml, 20 services with every policy layer on (no bare-loop twin):
//!    retries behind budgets, breakers, balancers, outlier detection, connection pools,
//!    adaptive throttling and concurrency limits, rate limits, CoDel, deadlines, and
//!    slow, crashing and pausing leaves.

mod models;

use criterion::{criterion_group, criterion_main, Criterion};
use models::{bare_chain, bare_mmc, faultline_run, floor_chain, floor_mmc};
use std::hint::black_box;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("A_mmc_bare_loop", |b| b.iter(|| black_box(bare_mmc())));
    // The bare loop plus only what faultline's outputs for A need (models/floor.rs).
    g.bench_function("A_mmc_floor", |b| b.iter(|| black_box(floor_mmc())));
    // 111,111 s at 9/s is 1,000,000 customers on average.
    g.bench_function("A_mmc_faultline", |b| {
        b.iter(|| black_box(faultline_run("scenarios/mmc.toml", "111111s")))
    });
    g.bench_function("B_chain_bare_loop", |b| b.iter(|| black_box(bare_chain())));
    g.bench_function("B_chain_floor", |b| b.iter(|| black_box(floor_chain())));
    // 1,667 s at 600/s is 1,000,200 requests on average.
    g.bench_function("B_chain_faultline", |b| {
        b.iter(|| black_box(faultline_run("scenarios/chain.toml", "1667s")))
    });
    // C: a 20-service mesh with every layer on and three kinds of fault.
    // Events per iteration / time = events per second.
    let events = faultline_run("scenarios/mesh.toml", "60s");
    eprintln!("C_mesh_faultline processes {events} events per iteration");
    g.bench_function("C_mesh_faultline", |b| {
        b.iter(|| black_box(faultline_run("scenarios/mesh.toml", "60s")))
    });
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
