//! The serde mirror of `[[host]]` (machines whose cores co-located instances share) and a service's `placement`.

use super::*;

/// `[[host]]`: a machine (a Kubernetes node) with `cores` cores shared by the instances placed
/// on it. With `count`, that many alike, named `NAME-1` … `NAME-count`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Unique name (a prefix when `count` is set).
    pub name: String,
    /// Cores shared by the threads runnable on it.
    pub cores: u32,
    /// Hosts alike (default 1: just this one, named `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Its zone: only instances in that zone are placed on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A service's `placement = { strategy, cpu, hosts }`: where its instances go.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    /// `spread` (the default: fewest of this service's instances, then least requested) or
    /// `pack` (the most requested host that still fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Cores each instance requests (placement only; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Only these hosts (node affinity); default any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
}
