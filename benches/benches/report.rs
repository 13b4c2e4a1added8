//! `cargo bench -p benches` prints the whole report (`-- --test` or
//! `-- --quick`: smoke mode).
fn main() {
    benches::main();
}
