//! Compiles the public API in `proto/topom/v1` and emits the descriptor set that the
//! reflection service serves (so grpcurl can list and describe every RPC).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `.cargo/config.toml` points PROTOC at tools/protoc; this fallback covers cargo
    // runs that skip that file (e.g. `--manifest-path` from outside the repo).
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // The .proto files stay at the repository root, where the Go and Python
    // generators read them too.
    let protos = [
        "../../proto/topom/v1/model.proto",
        "../../proto/topom/v1/stats.proto",
        "../../proto/topom/v1/topom.proto",
        "../../proto/topom/v1/proxy.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("topom_descriptor.bin"))
        .compile_protos(&protos, &["../../proto"])?;
    // A second generation of the Topom *server* only, identical except that
    // ListSlots, GetStats, WatchStats and RefreshRedisStats answer with pre-encoded messages: the slot
    // table is encoded once per revision and a stats round once for all unfiltered
    // callers and watchers,
    // instead of once per call (see `pb::encoded`). Messages come from the first
    // generation (this crate's root).
    let fast = out.join("fast");
    std::fs::create_dir_all(&fast)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&fast)
        .extern_path(".topom.v1.ListSlotsResponse", "crate::encoded::Encoded")
        .extern_path(".topom.v1.WatchStatsResponse", "crate::encoded::Encoded")
        .extern_path(".topom.v1.GetStatsResponse", "crate::encoded::Encoded")
        .extern_path(
            ".topom.v1.RefreshRedisStatsResponse",
            "crate::encoded::Encoded",
        )
        .extern_path(".topom.v1", "crate")
        .compile_protos(&["../../proto/topom/v1/topom.proto"], &["../../proto"])?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
