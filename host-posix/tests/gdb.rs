//! `weft boot --gdb` under Debian's gdb, on TCG: QEMU's gdb stub holds the
//! vCPU until gdb continues; a breakpoint in the kernel is hit, then one in
//! the app, whose code the kernel registered with the GDB JIT interface as
//! it loaded, with its parameter printed; the run then finishes as usual.
//! Needs `qemu-system-x86_64`, `gdb` and the kernel (see baremetal.rs).

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `cargo build` (dev profile: full DWARF, no optimisation) of misbehave,
/// as a user debugging a component builds it; the component's path.
fn dev_misbehave() -> PathBuf {
    let components = root().join("components");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--target", "wasm32-wasip2", "-p", "misbehave", "--manifest-path"])
        .arg(components.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", components.join("target"));
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "building misbehave: {}", String::from_utf8_lossy(&out.stderr));
    components.join("target/wasm32-wasip2/debug/misbehave.wasm")
}

/// Kills the process on drop (a failed assertion must not leave QEMU
/// waiting for a debugger).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn gdb_breaks_in_the_kernel_and_in_the_app() {
    let dir = manifest("gdb-boot", "[app]\ncomponent = \"misbehave.wasm\"\nargs = [\"count\", \"7\"]\n");
    std::fs::copy(dev_misbehave(), dir.join("misbehave.wasm")).unwrap();
    let port = free_port();
    let t = Instant::now();
    let mut weft = weft_cmd(&["boot", &format!("--gdb={port}"), dir.to_str().unwrap()]);
    weft.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Killed(weft.spawn().unwrap());

    // weft's stderr, line by line, until it says gdb can attach.
    let (tx, rx) = mpsc::channel();
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut err = Vec::new();
    let attach = loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.trim_start().starts_with("gdb ") => break line,
            Ok(line) => err.push(line),
            Err(e) => panic!("weft boot --gdb never said how to attach ({e}):\n{}", err.join("\n")),
        }
    };
    assert!(err.iter().any(|l| l.contains(&format!("QEMU waits for gdb on 127.0.0.1:{port}"))), "{err:?}");
    let kernel = weft::boot::kernel_path();
    assert_eq!(attach.trim(), weft::boot::gdb_command(port, &kernel));

    // The session the docs show, in batch mode.
    let mut gdb = Command::new("gdb");
    gdb.args(["-batch", "-nx"]).arg(&kernel);
    for cmd in [
        &format!("target remote :{port}"),
        "set breakpoint pending on",
        "break kmain",
        "break misbehave::count_to",
        "continue",
        "continue",
        "print n",
        "bt 2",
        "continue",
    ] {
        gdb.args(["-ex", cmd]);
    }
    let gdb = output(gdb.output().expect("gdb (Debian's gdb; ./setup.sh installs it)"));
    gdb.stdout_has("Breakpoint 1, 0x")
        .stdout_has(" in kmain ()")
        .stdout_has("Breakpoint 2, misbehave::count_to (n=7) at tests/misbehave/src/lib.rs:")
        .stdout_has("$1 = 7")
        .stdout_has(" in misbehave::{impl#0}::run (");
    let kmain = gdb.stdout.find("Breakpoint 1, ").unwrap();
    assert!(kmain < gdb.stdout.find("Breakpoint 2, ").unwrap(), "the kernel's breakpoint comes first:\n{}", gdb.stdout);

    // gdb's last `continue` let the app finish: the run ends as without it.
    let Killed(c) = &mut child;
    let status = c.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}\n{}", err.join("\n"), rest.join("\n"));
    assert_eq!(stdout, "counted 7\n");
    assert!(rest.iter().any(|l| l.starts_with("weft kernel: misbehave code at 0x") && l.ends_with("registered with the GDB JIT interface")), "{rest:?}");
    eprintln!("gdb session: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn gdb_refuses_pulley_and_warns_about_a_bundle_without_debug_info() {
    let dir = manifest("gdb-pulley", "[app]\ncomponent = \"hello\"\n");
    weft(&["boot", "--gdb", "--pulley", dir.to_str().unwrap()])
        .code(2)
        .stderr_has("error: --gdb debugs native code, and Pulley bytecode is interpreted");
    // A bundle built without --gdb: only the kernel can be debugged. Nobody
    // attaches here, so the explicit QEMU timeout ends it.
    let bundle = dir.join("app.bundle");
    weft(&["build", "--target", "baremetal", dir.to_str().unwrap(), "-o", bundle.to_str().unwrap()]).ok();
    let port = free_port().to_string();
    weft(&["boot", &format!("--gdb={port}"), bundle.to_str().unwrap(), "--qemu-timeout", "2"])
        .code(124)
        .stderr_has("was built without debug info: gdb can break in the kernel, not in components")
        .stderr_has(&format!("QEMU waits for gdb on 127.0.0.1:{port}"));
}
