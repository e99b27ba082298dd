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
#![deny(missing_docs)]

pub mod cli;
pub mod dist;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod time;
