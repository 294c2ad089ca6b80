fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg=-T{dir}/src/linker.ld");
    println!("cargo:rerun-if-changed=src/linker.ld");
    // The user programs embedded in the image (loader/files.rs): `cargo
    // xtask build` builds them first and names their folder; a plain cargo
    // build in os/ finds them where `cargo build -p user` leaves them.
    println!("cargo:rerun-if-env-changed=USER_BIN_DIR");
    let user = std::env::var("USER_BIN_DIR")
        .unwrap_or_else(|_| format!("{dir}/../target/riscv64gc-unknown-none-elf/release"));
    println!("cargo:rustc-env=USER_BIN_DIR={user}");
}
