//! `faultline import`: scenario tables from the configuration people already run (Istio's
//! `VirtualService` and `DestinationRule`).

pub mod istio;
