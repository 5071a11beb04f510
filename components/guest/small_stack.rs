//! The build script of the small filter components (`build = "../../guest/small_stack.rs"`
//! in their Cargo.toml): a 64 KiB shadow stack instead of Rust's 1 MiB default.
//!
//! Rust lays a wasm memory out as stack (growing down from its top), then data, then
//! heap, so with the default a filter's first call touches pages a megabyte into its
//! memory. With 64 KiB everything such a component touches sits in its first few pages,
//! which the host's pooling allocator keeps resident between instances: instantiating
//! and configuring a filter takes no page faults (docs/benchmarks.md, "Start-up").
//! These filters keep their state on the heap and recurse nowhere.

fn main() {
    // Only for the component: the crates' unit tests build for the host.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
