//! Links the shims as position-dependent executables. A shim runs once per
//! container; as a PIE its 1.3 MiB of `.data.rel.ro` and GOT get ~83,000
//! relocations at every start and become private memory in each (measured in
//! docs/benchmarks.md, "Containers"). Linked `-no-pie`, the linker resolves
//! them once and the pages stay clean, shared by every shim through the page
//! cache. The objects stay position-independent (nothing is rebuilt for it).
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
