//! `faultline import`: scenario tables from the configuration people already run (Istio's
//! `VirtualService` and `DestinationRule`, and Envoy clusters where they map cleanly).

pub mod envoy;
pub mod istio;
