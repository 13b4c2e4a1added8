//! The benchmark report: `cargo run -p benches --release --bin report [-- --quick] [sections]`.
fn main() {
    benches::main();
}
