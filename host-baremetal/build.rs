//! Links the kernel at 1 MiB with `link.ld`. The path is absolute: in a
//! workspace the linker runs in another directory.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rerun-if-changed={dir}/link.ld");
    if target == "x86_64-unknown-none" {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // The target defaults to a static PIE; the boot stub runs before
        // anything could relocate it, so link a plain executable.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-znoexecstack");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        // QEMU reads the whole ELF; DWARF would make it 15x larger and the
        // kernel never reads it (symbols stay for a debugger: gdb breaks in
        // kernel functions by name). WEFT_KERNEL_DWARF=1 keeps the line
        // tables, for gdb to show the kernel's source (docs/debugging.md).
        println!("cargo:rerun-if-env-changed=WEFT_KERNEL_DWARF");
        if std::env::var_os("WEFT_KERNEL_DWARF").is_none_or(|v| v != "1") {
            println!("cargo:rustc-link-arg-bins=--strip-debug");
        }
    }
}
