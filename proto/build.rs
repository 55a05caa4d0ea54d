//! Generates the Rust types, clients and servers of every Tierline `.proto`, plus the descriptor set
//! that gRPC server reflection serves. protoc comes from the `protoc-bin-vendored` crate so a fresh
//! machine needs nothing installed by hand; set `PROTOC` to use another protoc.

use std::{env, error::Error, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/tierline/common/v1/common.proto",
    "proto/tierline/customer/v1/customer.proto",
    "proto/tierline/scoring/v1/scoring.proto",
    "proto/tierline/campaign/v1/campaign.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let protoc = match env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let well_known_includes = protoc_bin_vendored::include_path()?;

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // `prost::Name` on every message: clients (the CLI) find a message's descriptor by its type.
    config.enable_type_names();

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tierline_descriptor.bin"))
        .compile_with_config(
            config,
            PROTOS,
            &[
                "proto",
                well_known_includes
                    .to_str()
                    .ok_or("non-UTF-8 include path")?,
            ],
        )?;

    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
