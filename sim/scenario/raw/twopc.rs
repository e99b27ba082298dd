//! The serde mirror of `[[transaction]]`: a two-phase commit over participant services.

use super::*;

/// `[[transaction]]`: a distributed transaction by two-phase commit (presumed abort). A
/// handler step `{ transaction = "NAME" }` of the coordinator runs one and waits for its
/// decision.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransaction {
    /// Unique.
    pub name: String,
    /// The service whose handlers run it (the coordinator, with its durable decision log).
    pub coordinator: String,
    /// Each participant: a call (`{ to = "orders", timeout = "1s", ... }`) that carries its
    /// PREPARE, then its COMMIT or ABORT.
    pub participants: Vec<RawStep>,
    /// How long the coordinator waits before sending an unacknowledged decision again (1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend: Option<SimDuration>,
}
