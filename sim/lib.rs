//! faultline: a deterministic discrete-event simulator for microservice systems.
//!
//! # Architecture
//!
//! ```text
//!  time, rng, dist        integer-ns clock, per-component ChaCha streams, distributions
//!        ^
//!  engine                 generic (time, seq)-ordered event queue, timer lanes, cancellation
//!  policy                 sans-IO machines: breaker, retry + budget, hedge, deadline,
//!                         fallback, outcome, balancer, outlier, bulkhead, limits, registry...
//!  metrics                counters and histograms
//!        ^
//!  model                  the world: arenas, the run loop, one file per actor; the only
//!                         place where the engine and the policies meet
//!        ^
//!  results                what a run produced: RunResult, traces, summary paths
//!  scenario               TOML schema, validation with file:line:column, static analysis
//!        ^
//!  report                 summary.json, CSVs, charts, traces, HTML (reads results only)
//!  api, check, sweep      the one run entry point; [[expect]]; grids, shards, compare
//!        ^
//!  sim/main.rs + cli.rs   the `faultline` binary (clap, progress bars, exit codes)
//! ```
//!
//! `tests/architecture.rs` fails when an import runs up these layers.
//!
//! # A request's path, file by file
//!
//! 1. A workload's arrival ([`engine`] delivers `Arrive`) reaches `model/client.rs`,
//!    which sends a root request straight to an instance of its target service.
//! 2. `model/instance.rs` admits it (`on_deliver`: faults, rate limits, concurrency
//!    limits, the bounded queue), then runs its endpoint's steps (`advance`): work
//!    holds a worker for a drawn time; a call step starts a call.
//! 3. `model/call.rs` starts the call (`start_call`): its deadlines come from
//!    [`policy::deadline`], and each attempt passes the caller's layers (`attempt`:
//!    breaker, throttle, concurrency limit, bulkhead) before `model/edge.rs` picks an
//!    instance through the balancer ([`policy::balancer`]).
//! 4. `model/network.rs` carries the attempt (`Network::transmit`: loss, resets,
//!    partitions, zones) to the callee, which runs it as in step 2 and answers; the
//!    answer crosses the network back the same way.
//! 5. Back in `model/call.rs`, `attempt_done` feeds the result to the edge's breaker,
//!    balancer and outlier detector, then asks the machines what next:
//!    [`policy::retry::RetryPolicy::decide`] (retry at a time, or finish) or, for a
//!    hedged call, [`policy::hedge::HedgePolicy::on_attempt_done`], which writes
//!    [`policy::command::CallCommand`]s that `run_commands` carries out. A finished call
//!    may be answered by its breaker's [`policy::fallback`] instead.
//! 6. The calling request resumes its steps; when its handler ends, `complete` answers
//!    its own caller, and at the root `model/client.rs` counts the outcome.
//! 7. `model/accounting.rs` closes time-series buckets into the [`metrics::Sink`]; at
//!    the end `World::run` returns a [`results::RunResult`], which [`report`] turns
//!    into files and [`api::run`] into a [`api::Summary`].
//!
//! # Ordering contract
//!
//! Time is a `u64` count of nanoseconds ([`time::SimTime`]). Every event carries
//! the sequence number it was given when scheduled; the engine delivers events by
//! `(time, sequence)`, so simultaneous events run in the order they were scheduled.
//! Each random component draws from its own stream ([`rng::SimRng`]), keyed by the
//! scenario seed and the component's name. Together these make a run a pure
//! function of (scenario, seed, crate version).
//!
//! # Example
//!
//! ```
//! use faultline::{metrics::MemorySink, model::{RunOptions, World}, scenario};
//!
//! let text = r#"
//! [sim]
//! name = "hello"
//! duration = "60s"
//! [[service]]
//! name = "api"
//! workers = 2
//! work = { dist = "exp", mean = "10ms" }
//! [[workload]]
//! name = "users"
//! target = "api"
//! arrivals = { kind = "poisson", rate = 50 }
//! "#;
//! let scn = scenario::parse("hello.toml", text, &[]).expect("valid");
//! let result = World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default());
//! let api = &result.services[0];
//! assert!(api.counts.ok > 2_500);
//! assert!((api.utilization - 0.25).abs() < 0.05); // 50/s x 10 ms / 2 workers
//!
//! // Invalid input is an error with its place, never a panic.
//! let err = scenario::parse("bad.toml", &text.replace("workers", "wokers"), &[]).unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:7:1: error: unknown field `wokers`"));
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod check;
pub mod dist;
pub mod engine;
pub mod explore;
pub mod ids;
pub mod import;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod sweep;
pub mod time;
