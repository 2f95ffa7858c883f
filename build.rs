//! Compiles the gRPC contract with protox (a pure-Rust protobuf compiler), so building needs no
//! system `protoc`, and keeps the encoded descriptor set for server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/cardlookup/v1/card_lookup.proto",
    "proto/cardlookup/admin/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    fs::write(
        out_dir.join("card_lookup_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        // Requests carry card numbers: their Debug is written by hand to print them masked.
        .skip_debug([
            "cardlookup.v1.ValidateRequest",
            "cardlookup.v1.LookupBinRequest",
            "cardlookup.v1.MaskCardRequest",
        ])
        .compile_fds(descriptors)?;
    Ok(())
}
