//! `containerd-shim-weft-vm-v1`: runtime `io.containerd.weft-vm.v1` (src/vm.rs).

fn main() {
    containerd_shim_weft::main();
}
