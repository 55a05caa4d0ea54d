//! The customer domain: records, rules and the operations on them, free of gRPC and SQL.

pub mod activity;
pub mod consent;
pub mod customer;
pub mod feed;
pub mod import;
pub mod onboarding;
pub mod paging;
pub mod ports;
pub mod purchase_batch;
pub mod rules;
pub mod service;
pub mod validate;

pub use service::Customers;
