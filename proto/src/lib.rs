//! Tierline's protobuf contracts: the one crate that runs code generation.
//!
//! Every service and client depends on this crate for the generated messages, clients and servers,
//! and for the encoded descriptor set that gRPC server reflection serves. `tonic`, `prost` and
//! `tonic-types` are re-exported so that users agree on one version of each.
//!
//! The `.proto` files under `proto/` are the API documentation; `docs/API.md` explains how to read
//! them.

pub use prost;
pub use prost_types;
pub use tonic;
pub use tonic_health;
pub use tonic_types;

#[cfg(feature = "json")]
pub mod json;
pub mod time;

/// Encoded `FileDescriptorSet` of every Tierline package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tierline_descriptor.bin"));

/// Types shared by every Tierline API (`tierline.common.v1`).
pub mod common {
    /// Version 1 of the shared types.
    pub mod v1 {
        #![allow(missing_docs, unreachable_pub, clippy::all)]
        tonic::include_proto!("tierline.common.v1");
    }
}

/// The customer service API (`tierline.customer.v1`).
pub mod customer {
    /// Version 1 of the customer service API.
    pub mod v1 {
        #![allow(missing_docs, unreachable_pub, clippy::all)]
        tonic::include_proto!("tierline.customer.v1");
    }
}

/// The scoring service API (`tierline.scoring.v1`).
pub mod scoring {
    /// Version 1 of the scoring service API.
    pub mod v1 {
        #![allow(missing_docs, unreachable_pub, clippy::all)]
        tonic::include_proto!("tierline.scoring.v1");
    }
}

/// The campaign service API (`tierline.campaign.v1`).
pub mod campaign {
    /// Version 1 of the campaign service API.
    pub mod v1 {
        #![allow(missing_docs, unreachable_pub, clippy::all)]
        tonic::include_proto!("tierline.campaign.v1");
    }
}
