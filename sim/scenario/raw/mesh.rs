//! The serde mirror of `[mesh]` (sidecar proxies, mTLS, authorization), a service's `sidecar`, and `[policy.pool.NAME]` (connection pools).

use super::*;

/// `[mesh]`: a sidecar proxy beside every instance of the meshed services.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMesh {
    /// Off switch, so that `--set mesh.enabled=false` compares with and without.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The meshed services (default: every service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// Each proxy (outbound on the caller's instance, inbound on the callee's).
    #[serde(default)]
    pub proxy: RawProxy,
    /// Mutual TLS between sidecars: a handshake on each new connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<RawMtls>,
    /// An authorization check in each inbound proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz: Option<RawAuthz>,
    /// The outbound proxies' connection pool (`[policy.pool.NAME]`; default: Istio's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Retries the proxies make on meshed calls that name none (`[policy.retry.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    /// Outlier detection in the proxies, for meshed calls that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<String>,
    /// The route timeout in the proxies, for meshed calls that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<SimDuration>,
}

fn yes() -> bool {
    true
}

/// A proxy's cost: `{ latency = { dist = ... }, workers = 2, queue = 1024 }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// CPU time per request through the proxy (both directions), which is also the
    /// latency it adds when a worker is free (default 0.25 ms, exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<RawDist>,
    /// Proxy worker threads per instance (Envoy's --concurrency; default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Requests that may wait for a proxy worker before it answers 503 (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
}

/// `mtls = { handshake = { dist = ... } }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMtls {
    /// Cryptographic work of one handshake, beyond its round trip (default 1 ms constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<RawDist>,
}

/// `authz = { latency = ..., deny = [{ from = "a", to = "b" }] }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthz {
    /// Cost of the check per request (default 0.1 ms constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<RawDist>,
    /// Caller → callee pairs the policy denies (403).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<RawDeny>,
}

/// One denied pair.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeny {
    /// Caller service.
    pub from: String,
    /// Callee service.
    pub to: String,
}

/// A service's `sidecar`: `false` keeps it out of the mesh; a table overrides the proxy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "sidecar is false (no sidecar), true (the mesh's proxy) or a table overriding the proxy: { latency = { dist = ... }, workers = 2, queue = 1024 }"
)]
pub enum RawSidecar {
    /// `sidecar = false` (or `true`: the mesh's proxy).
    On(bool),
    /// `sidecar = { latency = ..., workers = 4 }`.
    Proxy(Box<RawProxy>),
}

/// `[policy.pool.NAME]`: a connection pool.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// "http1" (default) or "http2".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Requests per connection before it closes (0 = unlimited, the default; 1 = no keep-alive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    /// http2: streams per connection (default 2^31 − 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// A connection not made within this fails the attempt (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<SimDuration>,
    /// Idle connections close after this (default 1 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<SimDuration>,
    /// Whose pool: "instance" (each caller instance's, the default) or "service".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl RawPool {
    /// Whether nothing is set but (perhaps) the state scope: the defaults, not worth a table.
    pub fn is_empty(&self) -> bool {
        self.protocol.is_none()
            && self.max_requests_per_connection.is_none()
            && self.max_concurrent_streams.is_none()
            && self.connect_timeout.is_none()
            && self.idle_timeout.is_none()
    }
}
