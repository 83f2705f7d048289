//! Release builds for Linux link with their DWARF line tables compressed
//! (zlib, which the standard library's backtraces read; not zstd, which
//! they do not): `cargo install` and `cargo build --release` then leave a
//! binary a fraction of the size whose panics still name files and lines
//! (docs/DEPLOYMENT.md "Binary size"). A linker flag, so a build script:
//! Cargo's profiles cannot pass one.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
