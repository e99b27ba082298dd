//! Resilience policies as sans-IO state machines: `now` and randomness are arguments, decisions are return values.
//!
//! Nothing here touches the event queue or the clock. The model drives these
//! machines; their semantics follow ../shared/docs/POLICIES.md, whose numbered
//! behaviours are the unit tests (named `s<section>_b<number>_...`).

pub mod backoff;
pub mod balancer;
pub mod breaker;
pub mod broker;
pub mod budget;
pub mod bulkhead;
pub mod cache;
pub mod command;
pub mod concurrency;
pub mod cpu;
pub mod criticality;
pub mod deadline;
pub mod fallback;
pub mod hedge;
pub mod outcome;
pub mod outlier;
pub mod pool;
pub mod proxy;
pub mod ratelimit;
pub mod registry;
pub mod retry;
pub mod saga;
pub mod shed;
pub mod status;
pub mod twopc;
