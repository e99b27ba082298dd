//! faultline: a deterministic discrete-event simulator for microservice systems.
//!
//! # Architecture
//!
//! ```text
//!  time, rng, dist          integer-ns clock, per-component ChaCha streams, distributions
//!        ^
//!  engine                   generic (time, seq)-ordered event queue with cancellation
//!        ^
//!  model, metrics           services, instances, network, workloads; counters and histograms
//!        ^
//!  scenario                 TOML schema, validation with file:line:column, static analysis
//!        ^
//!  report                   summary.json, timeseries.csv, events.csv, manifest.json
//!        ^
//!  cli / main               the `faultline` command
//! ```
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
pub mod metrics;
pub mod model;
pub mod policy;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod sweep;
pub mod time;
