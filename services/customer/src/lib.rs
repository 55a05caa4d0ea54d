//! The customer service: Tierline's integrated customer record.
//!
//! It owns customer profiles, channel consents, purchase and refund activity (idempotent by a
//! client key), bulk ingestion, GDPR-style erase and export, and the activity feed that the
//! scoring and campaign services follow (`WatchActivities`, served by [`feed_server`]).
//!
//! Layers: [`grpc`] converts messages and maps errors → [`domain`] validates and applies the
//! rules → [`storage`] implements the domain's ports ([`domain::ports`]; [`storage::postgres`]
//! is the record of truth). [`app`] wires them into a running server; `main.rs` only loads
//! configuration and runs it.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod feed_server;
pub mod grpc;
pub mod storage;

pub use app::Application;
pub use config::CustomerConfig;
pub use error::CustomerError;
