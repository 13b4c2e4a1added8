//! Sets `cfg(virtnet_postgres)` when `VIRTNET_POSTGRES_URL` is set at build
//! time, so that the conformance suite (`tests/conformance.rs`, whose
//! tests a macro generates and cannot skip one by one) is built only when a
//! server was given; `cargo test` builds and runs in the same environment.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(virtnet_postgres)");
    println!("cargo::rerun-if-env-changed=VIRTNET_POSTGRES_URL");
    if std::env::var_os("VIRTNET_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=virtnet_postgres");
    }
}
