//! Helpers for tests that drive the `weft` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod containerd;
mod netns;
// Only the tests that need root use it.
#[allow(unused_imports)]
pub use netns::Netns;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The 1-based line of `file` (relative to the repository root) holding
/// `text`: where a backtrace or a debugger must point.
pub fn line_in(file: &str, text: &str) -> usize {
    let src = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    1 + src.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("{text:?} not in {file}"))
}

/// A fresh folder under the target dir, unique per call.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = root()
        .join("target/test-scratch")
        .join(format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of `examples/<name>` in a scratch folder (so disk images never
/// land in the source tree).
pub fn example(name: &str) -> PathBuf {
    let dir = scratch(name);
    for e in std::fs::read_dir(root().join("examples").join(name)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.path().extension().is_none_or(|x| x != "img") {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    dir
}

/// A scratch folder holding `weft.toml` with `manifest`.
pub fn manifest(name: &str, manifest: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("weft.toml"), manifest).unwrap();
    dir
}

/// Copies a test component (built by the host crate's build script) into `dir`.
pub fn test_component(dir: &Path, artifact: &str, as_name: &str) {
    let src = root().join("components/target/wasm32-wasip2/release").join(format!("{artifact}.wasm"));
    std::fs::copy(&src, dir.join(as_name)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn cache_dir() -> PathBuf {
    root().join("target/test-scratch/cache")
}

pub fn weft_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    c.args(args).env("WEFT_CACHE_DIR", cache_dir()).env_remove("RUST_LOG");
    c
}

pub fn weft(args: &[&str]) -> Run {
    output(weft_cmd(args).output().unwrap())
}

pub fn output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Waits for a spawned `weft` and collects its output.
pub fn finish(child: Child) -> Run {
    output(child.wait_with_output().unwrap())
}

/// Kills a running `weft` (QEMU dies with `weft boot`) and collects its output.
pub fn kill(mut child: Child) -> Run {
    let _ = child.kill();
    finish(child)
}

pub fn run(dir: &Path) -> Run {
    weft(&["run", dir.to_str().unwrap()])
}

/// A TCP port free on loopback just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Connects to a server that is still starting, for up to 15 s.
pub fn connect_retry(addr: &str) -> std::net::TcpStream {
    let t = std::time::Instant::now();
    loop {
        match std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), std::time::Duration::from_secs(2)) {
            Ok(s) => return s,
            Err(_) if t.elapsed() < std::time::Duration::from_secs(15) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

/// `2026-11-26T21:41:57.767Z` (exactly that shape: milliseconds, `Z`) → seconds since
/// the epoch, by the runtime's RFC 3339 parser.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    weft_runtime::units::parse_rfc3339(s).map(|ns| ns.div_euclid(1_000_000_000))
}
