//! Compiles `proto/caravan/v1/*.proto` with protox (pure Rust), so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    // The directory too, so an added .proto rebuilds.
    println!(
        "cargo:rerun-if-changed={}",
        root.join("caravan/v1").display()
    );
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("caravan/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    files.sort();
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Documents are shared, not copied, between the cache, the stream and the gateway.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
