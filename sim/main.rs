//! The `faultline` command (work in progress).
fn main() {}
