//! `containerd-shim-weft-v1`: runtime `io.containerd.weft.v1` (src/lib.rs).

fn main() {
    containerd_shim_weft::main();
}
