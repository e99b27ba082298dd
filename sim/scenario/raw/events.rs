//! The serde mirror of `[[event_store]]` and `[[projection]]`: event sourcing and CQRS.

use super::*;

/// `[[event_store]]`: an append-only log of events, kept by a service. A step
/// `{ append = "NAME" }` is a call to that service; its handler's success commits one event
/// for the request's key (its stream).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventStore {
    /// Unique.
    pub name: String,
    /// The service that stores it (appends are calls to its first endpoint).
    pub service: String,
    /// Events it holds at most, up to 10,000,000; an append past it is refused (1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
}

/// `[[projection]]`: a projector that applies a store's events in order, one at a time, to
/// a read model kept by a service. A call with `reads = "NAME"` reads that read model.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjection {
    /// Unique.
    pub name: String,
    /// The `[[event_store]]` it follows.
    pub store: String,
    /// The service that runs the projector (on its first running instance) and keeps the
    /// read model.
    pub service: String,
    /// The endpoint that applies one event (default: the service's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When the projector starts (0s): a later start is a new consumer joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<SimDuration>,
    /// The offset it starts from: 0 replays the whole log (the default), "end" takes only
    /// events committed after it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<toml::Value>,
    /// An apply with no answer this long is sent again (30s): its instance may have died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
    /// Wait after a failed apply before trying the same event again (1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<SimDuration>,
}
