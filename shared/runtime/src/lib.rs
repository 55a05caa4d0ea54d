//! The runtime every Tierline service shares.
//!
//! A service's `main` reads its typed configuration ([`config`]), starts telemetry
//! ([`telemetry`]), opens its database ([`db`]) and serves its gRPC routes with
//! [`server::GrpcServer`], which adds health, reflection, auth ([`auth`]), tracing and
//! [`metrics`] around them. Errors of invalid input are built with [`status`]; calls to other
//! services go through [`client::channel`] (TLS and trace context).

pub mod allocator;
pub mod app;
pub mod auth;
pub mod client;
pub mod config;
pub mod currency;
pub mod db;
pub mod embedded;
pub mod follower;
pub mod instant;
pub mod lock;
pub mod metrics;
pub mod notify;
pub mod paging;
pub mod server;
pub mod service;
pub mod sqlite;
pub mod status;
pub mod telemetry;
pub mod xid_feed;
