//! Generates the pprof profile messages (`proto/profile.proto`) with a pure-Rust protobuf
//! compiler, so that building needs no `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/profile.proto");
    let files = protox::compile(["profile.proto"], ["proto"]).expect("proto/profile.proto parses");
    prost_build::Config::new()
        .compile_fds(files)
        .expect("the pprof messages generate");
}
