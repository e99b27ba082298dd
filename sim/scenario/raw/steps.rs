//! The serde mirror of a handler's steps: endpoints, calls, publishes, groups and work.

use super::*;

/// `[[service.endpoint]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique within the service.
    pub name: String,
    /// Share of traffic when the caller names no endpoint.
    #[serde(default = "one_f")]
    pub weight: f64,
    /// Leading local work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
    /// Further steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<RawStep>,
}

/// A step: exactly one of `to` (a call), `parallel` (a group of calls) or `work`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Callee service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Callee endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Caller-side timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// Probability the call is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Whether a failed call fails the request (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Retry policy name (`[policy.retry.NAME]`); "none" turns off the service default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    /// Breaker name (`[policy.breaker.NAME]`); "none" turns off the service default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// Hedging policy name (`[policy.hedge.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<String>,
    /// A cache in front of the call (`[policy.cache.NAME]`), keyed by the request's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The call updates the request's key in this cache's data: it is invalidated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<String>,
    /// Balancer name (`[policy.balancer.NAME]`); "none" turns off the service default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<String>,
    /// Outlier detector name (`[policy.outlier.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<String>,
    /// Bulkhead name (`[policy.bulkhead.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<String>,
    /// Connection pool name (`[policy.pool.NAME]`): connections are modelled, opened and reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Client-side adaptive concurrency limit (`[policy.concurrency.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<String>,
    /// Client-side adaptive throttling (`[policy.throttle.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<String>,
    /// Start this saga (the handler goes on at once; the orchestrator runs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saga: Option<String>,
    /// Run this two-phase commit and wait for its decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Publish a message to this queue or topic: a call to its broker, answered once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// Append an event for the request's key to this `[[event_store]]`: a call to its
    /// service, committed when the service's handler succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<String>,
    /// The call reads this `[[projection]]`'s read model (its callee keeps it): the read is
    /// judged stale when the model has not applied a committed event of its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<String>,
    /// With `publish`: first write this database service (a call), then publish the event
    /// (a dual write), or, with `outbox = true`, write the event in the same transaction and
    /// let a relay publish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<String>,
    /// With `write`: the transactional outbox instead of a dual write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<bool>,
    /// publish: wait for the broker's acknowledgement (true), or fire and forget: one
    /// message sent, no timeout, no retry, and the handler goes on at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// publish: share of messages that are poison (every consumer fails on them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poison: Option<f64>,
    /// The criticality of the call's requests, instead of the caller's request's
    /// (`sheddable`, `sheddable_plus`, `critical`, `critical_plus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    /// A call to a service being replaced: `[[migration]]` NAME sends it to the old service
    /// or to the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<String>,
    /// Calls made together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<RawStep>>,
    /// Local work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<RawDist>,
}
