//! A Linux network namespace with a TAP device, for the tests that serve
//! real clients over TAP (root only, as in CI).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Run, cache_dir, kill};

/// A network namespace with a TAP device `tap0` at 10.0.0.1/24 (what the
/// examples expect) with a fixed MAC, removed on drop.
pub struct Netns(String);

impl Netns {
    /// The namespace `weft-<tag>-<pid>`; `None` (and a note) without root.
    pub fn new(tag: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: TAP tests need root (CI runs them as root)");
            return None;
        }
        let name = format!("weft-{tag}-{}", std::process::id());
        let ns = Netns(name.clone());
        let sh = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("iproute2 is installed by setup.sh");
            assert!(st.success(), "ip {args:?}");
        };
        sh(&["netns", "add", &name]);
        sh(&["-n", &name, "link", "set", "lo", "up"]);
        sh(&["-n", &name, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        // A fixed MAC, so two namespaces see the same ARP history.
        sh(&["-n", &name, "link", "set", "tap0", "address", "02:00:00:00:00:01"]);
        sh(&["-n", &name, "addr", "add", "10.0.0.1/24", "dev", "tap0"]);
        sh(&["-n", &name, "link", "set", "tap0", "up"]);
        Some(ns)
    }

    /// `program` run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    /// `weft <verb> dir …` inside the namespace, its output piped.
    pub fn weft(&self, verb: &str, dir: &Path, extra: &[&str]) -> Child {
        self.cmd(env!("CARGO_BIN_EXE_weft"))
            .args([verb, dir.to_str().unwrap()])
            .args(extra)
            .env("WEFT_CACHE_DIR", cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Pings `addr` from the namespace until it answers (30 s at most).
    pub fn ping(&self, addr: &str) {
        let t = Instant::now();
        loop {
            let ping = self.cmd("ping").args(["-c", "1", "-W", "1", addr]).output().unwrap();
            if ping.status.success() {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no ping reply from {addr}: {}", String::from_utf8_lossy(&ping.stdout));
        }
    }

    /// curl inside the namespace; returns the body.
    pub fn curl(&self, args: &[&str]) -> String {
        let o = self.cmd("curl").args(["-sS", "--max-time", "20", "--retry", "3", "--retry-connrefused"]).args(args).output().unwrap();
        assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Stops `weft` and waits until nothing holds tap0 any more (QEMU exits
    /// shortly after `weft boot`: it gets SIGKILL when its parent dies).
    pub fn stop(&self, child: Child) -> Run {
        let r = kill(child);
        let t = Instant::now();
        loop {
            let o = Command::new("ip").args(["-n", &self.0, "link", "show", "tap0"]).output().unwrap();
            if String::from_utf8_lossy(&o.stdout).contains("NO-CARRIER") {
                return r;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "tap0 is still attached: {}", String::from_utf8_lossy(&o.stdout));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
