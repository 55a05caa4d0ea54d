//! The end-to-end scenarios across the three services: one test binary, a module per area (one
//! build and link instead of one per file). The trace tests (`../traces.rs`,
//! `../trace_propagation.rs`) stay binaries of their own: each installs the process's one global
//! tracing subscriber.

#[path = "../support/mod.rs"]
mod support;

mod campaign_api;
mod campaign_bounds;
mod campaigns;
mod k8s_manifests;
mod tiers_from_activity;
