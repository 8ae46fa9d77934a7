fn main() {
    println!("pyroscope-relay {}", env!("CARGO_PKG_VERSION"));
}
