//! Compiles the gRPC contracts with protox (a pure-Rust protobuf compiler), so building needs
//! no system `protoc`, and keeps each service's encoded descriptors for server reflection
//! (separately, so that each port lists only the services it serves), and generates the proto3
//! JSON mapping of the public API's messages (pbjson-build) for the HTTP/JSON port.

use std::{env, fs, path::PathBuf};

/// (proto file, descriptor set file name)
const PROTOS: &[(&str, &str)] = &[
    (
        "proto/cardlookup/v1/card_lookup.proto",
        "card_lookup_descriptor.bin",
    ),
    (
        "proto/cardlookup/admin/v1/admin.proto",
        "admin_descriptor.bin",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    for (proto, descriptor_file) in PROTOS {
        let mut compiler = protox::Compiler::new(["proto"])?;
        compiler.include_source_info(true).include_imports(true);
        compiler.open_files([proto])?;
        // Encoded by protox itself, which keeps the options' extensions (the google.api.http
        // annotations) that prost's FileDescriptorSet drops: reflection serves them.
        let encoded = compiler.encode_file_descriptor_set();
        fs::write(out_dir.join(descriptor_file), &encoded)?;
        tonic_prost_build::configure()
            // Requests carry card numbers: their Debug is written by hand to print them masked.
            .skip_debug([
                "cardlookup.v1.ValidateRequest",
                "cardlookup.v1.LookupBinRequest",
                "cardlookup.v1.MaskCardRequest",
                "cardlookup.v1.InspectItem",
            ])
            // Boxed: an answer's BIN part is most of its size, and an Inspect batch builds and
            // moves a thousand results (with shared BIN answers, `bin` is unset in all of them).
            .boxed(".cardlookup.v1.InspectResult.bin")
            .compile_fds(compiler.file_descriptor_set())?;
        if *proto == PROTOS[0].0 {
            // The proto3 JSON mapping (serde) of the public API's messages, for the HTTP/JSON
            // face.
            pbjson_build::Builder::new()
                .register_descriptors(&encoded)?
                .build(&[".cardlookup.v1"])?;
        }
    }
    Ok(())
}
