//! The registry's part of the system description: leases, checks, and the registry as a
//! service with its clients' request policy.

use super::{ServiceId, Step};
use crate::time::SimDuration;

/// `[registry]`: how instances register and callers discover them.
#[derive(Clone, Debug)]
pub struct RegistrySpec {
    /// Lease semantics.
    pub leases: crate::policy::registry::Leases,
    /// Heartbeat period of every instance.
    pub heartbeat: SimDuration,
    /// The health loop's period.
    pub tick: SimDuration,
    /// Callers' cache refresh period.
    pub cache_ttl: SimDuration,
    /// Boot time of a restarted instance.
    pub startup: SimDuration,
    /// Active checks.
    pub checks: Option<HealthCheckSpec>,
    /// The service the registry runs as (none: it has no capacity and never fails).
    pub server: Option<RegistryServerSpec>,
}

/// `[registry] service = ...`: the registry as a service, and its clients' request policy.
#[derive(Clone, Debug)]
pub struct RegistryServerSpec {
    /// The service.
    pub service: ServiceId,
    /// Its endpoint per operation, indexed by [`RegistryOp::index`].
    pub endpoints: [u32; 4],
    /// A request's timeout.
    pub timeout: SimDuration,
    /// The wait after a failed heartbeat or refresh (none: the period).
    pub retry: Option<SimDuration>,
    /// Consecutive timeouts double the wait up to this many times its base (1: no backoff).
    pub backoff_bound: u32,
}

/// What a request to the registry service asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryOp {
    /// An instance registers (on boot).
    Register,
    /// An instance renews its registration.
    Heartbeat,
    /// A health check's result reaches the registry.
    Report,
    /// A caller refreshes its cached instance list.
    Lookup,
}

impl RegistryOp {
    /// Every operation, in index order.
    pub const ALL: [RegistryOp; 4] = [
        RegistryOp::Register,
        RegistryOp::Heartbeat,
        RegistryOp::Report,
        RegistryOp::Lookup,
    ];

    /// Its position in [`RegistryOp::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name, which is also the endpoint it uses when the service has one so named.
    pub fn name(self) -> &'static str {
        match self {
            RegistryOp::Register => "register",
            RegistryOp::Heartbeat => "heartbeat",
            RegistryOp::Report => "report",
            RegistryOp::Lookup => "lookup",
        }
    }
}

/// Active health checks.
#[derive(Clone, Debug)]
pub struct HealthCheckSpec {
    /// Period.
    pub interval: SimDuration,
    /// Timeout of one check.
    pub timeout: SimDuration,
    /// Thresholds.
    pub thresholds: crate::policy::registry::Thresholds,
    /// What a check does at the instance (one work step).
    pub steps: Vec<Step>,
}
