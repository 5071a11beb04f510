//! `containerd-shim-weft-v1`: containerd's runtime `io.containerd.weft.v1`.
//!
//! runwasi's `containerd-shim-wasm` speaks the shim protocol and makes the
//! container (namespaces, cgroup, the image's root file system as `/`, stdio
//! on containerd's FIFOs), then calls [`WeftSandbox::run_wasi`] as the
//! container's PID 1. That runs the image's manifest through the same code as
//! `weft run` (`weft::container`), and its exit code is the container's.
//! docs/kubernetes.md is the user's side of it.
//!
//! The same program installed as `containerd-shim-weft-vm-v1` is runtime
//! `io.containerd.weft-vm.v1`: each container boots in a virtual machine
//! instead (src/vm.rs).

mod vm;

use std::path::Path;

use anyhow::Result;
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::RuntimeContext;
use containerd_shim_wasm::shim::{Cli, Shim, Version, version};

struct WeftShim;

#[derive(Default)]
struct WeftSandbox;

impl Shim for WeftShim {
    type Sandbox = WeftSandbox;

    fn name() -> &'static str {
        "weft"
    }

    fn version() -> Version {
        version!()
    }
}

impl Sandbox for WeftSandbox {
    /// Every container that is not a Linux executable is weft's: its
    /// entrypoint is a manifest, not a `.wasm` (the default check). A
    /// manifest that cannot run is reported by `run_wasi`, in the task's
    /// output, with `weft run`'s message and exit code.
    async fn can_handle(&self, _ctx: &impl RuntimeContext) -> Result<()> {
        Ok(())
    }

    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        stop_on_signals();
        let ran = weft::container::Request::new(ctx.args(), ctx.envs())
            .and_then(|request| weft::container::run(&request, Path::new("/")));
        Ok(i32::from(ran.unwrap_or_else(|e| weft::exit::report(&e))))
    }
}

/// `ctr task kill` and a pod's deletion send SIGTERM (SIGKILL after a grace
/// period). The container's PID 1 never gets a signal it has no handler for,
/// so without one SIGTERM would do nothing: the unikernel stops at once,
/// exit 128 + the signal, as a process killed by it (docs/kubernetes.md:
/// the app sees a power cut: nothing buffered in it reaches a disk).
fn stop_on_signals() {
    extern "C" fn stop(signal: libc::c_int) {
        let message: &[u8] = match signal {
            libc::SIGTERM => b"weft: stopped by SIGTERM\n",
            _ => b"weft: stopped by SIGINT\n",
        };
        // SAFETY: write and _exit are async-signal-safe; `message` is valid.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(128 + signal);
        }
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `stop` only calls async-signal-safe functions; the
        // sigaction is zeroed then filled in before use.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = stop as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Both binaries' `main`: the runtime their file name says.
pub fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == vm::BOOT) {
        let bundle = std::path::PathBuf::from(args.next().unwrap_or_default());
        std::process::exit(i32::from(vm::boot(&bundle)));
    }
    let exe = std::env::current_exe().unwrap_or_default();
    if exe.file_name().is_some_and(|n| n.to_string_lossy().contains("weft-vm")) {
        containerd_shimkit::sandbox::cli::shim_main::<vm::VmInstance>("weft-vm", version!(), None);
    } else {
        WeftShim::run(None);
    }
}
