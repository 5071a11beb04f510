//! Network benchmarks, side by side in one run (ratios against the native
//! server measured in the same run; needs root for the TAP namespace).
//!
//!     cargo build --release -p weft && cargo bench -p weft --bench net
//!
//! TCP echo throughput (client sends 16 MiB in 64 KiB writes while reading the
//! echo back) and request latency (1-byte-ish request/response round trips on
//! one connection, p50/p99), against:
//!   - a native Rust echo server (thread per connection) on loopback: baseline;
//!   - weft `echo` with `[stack] backend = "host"` on loopback;
//!   - weft `echo` on the smoltcp `tcpip` component over a TAP device in a
//!     network namespace, with 0 and 1 passthrough net filter (`arp-log`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BYTES: usize = 16 << 20;
const ROUNDTRIPS: usize = 2000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn weft() -> PathBuf {
    let w = root().join("target/release/weft");
    assert!(w.exists(), "build it first: cargo build --release -p weft");
    w
}

/// Runs `f` on a thread that has entered network namespace `ns` (if any).
fn in_ns<T: Send + 'static>(ns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.map(|n| format!("/var/run/netns/{n}"));
    std::thread::spawn(move || {
        if let Some(path) = ns {
            let f = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only; the fd is valid for the call.
            let r = unsafe { libc_setns(f.as_raw_fd(), 0x4000_0000) };
            assert_eq!(r, 0, "setns {path}");
        }
        f()
    })
    .join()
    .unwrap()
}

unsafe extern "C" {
    #[link_name = "setns"]
    fn libc_setns(fd: i32, nstype: i32) -> i32;
}

fn connect(addr: &str) -> TcpStream {
    let t = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            return s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "cannot connect to {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// MiB/s of echoed data.
fn throughput(addr: &str) -> f64 {
    let s = connect(addr);
    let mut r = s.try_clone().unwrap();
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut s = s;
        let chunk = vec![0x5a; 64 << 10];
        let mut sent = 0;
        while sent < BYTES {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        s
    });
    let mut buf = vec![0; 64 << 10];
    let mut got = 0;
    while got < BYTES {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "echo closed early after {got} bytes");
        got += n;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(writer.join().unwrap());
    BYTES as f64 / (1 << 20) as f64 / secs
}

/// (p50, p99) round-trip latency in µs of a 64-byte message.
fn latency(addr: &str) -> (f64, f64) {
    let mut s = connect(addr);
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut v = Vec::with_capacity(ROUNDTRIPS);
    for _ in 0..ROUNDTRIPS {
        let t = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut buf).unwrap();
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn measure(ns: Option<&str>, addr: &'static str) -> (f64, (f64, f64)) {
    let ns = ns.map(str::to_string);
    in_ns(ns.as_deref().map(|s| Box::leak(s.to_string().into_boxed_str()) as &str), move || (throughput(addr), latency(addr)))
}

fn native_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0; 64 << 10];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

fn spawn_weft(dir: &Path, manifest: &str, ns: Option<&str>) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("weft.toml"), manifest).unwrap();
    let mut c = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n]).arg(weft());
            c
        }
        None => Command::new(weft()),
    };
    c.arg("run").arg(dir).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn sh(args: &[&str]) {
    assert!(Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scratch = root().join("target/bench-scratch/net");
    let _ = std::fs::remove_dir_all(&scratch);
    println!("### TCP echo: throughput and 64-byte round-trip latency\n");
    println!("| server | MiB/s | ratio | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, (mb, (p50, p99)): (f64, (f64, f64)), base: f64| {
        println!("| {name} | {mb:.1} | {:.2}x | {p50:.0} | {p99:.0} |", mb / base);
    };
    let port = native_server();
    let native_addr: &'static str = Box::leak(format!("127.0.0.1:{port}").into_boxed_str());
    let native = measure(None, native_addr);
    row("native Rust echo, loopback (baseline)", native, native.0);

    let hport = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = spawn_weft(
        &scratch.join("host"),
        &format!("[app]\ncomponent = \"echo\"\nargs = [\"{hport}\"]\n\n[stack]\nbackend = \"host\"\n"),
        None,
    );
    let haddr: &'static str = Box::leak(format!("127.0.0.1:{hport}").into_boxed_str());
    row("weft echo, `backend = \"host\"`, loopback", measure(None, haddr), native.0);
    let _ = child.kill();
    let _ = child.wait();

    let ns = format!("weft-bench-{}", std::process::id());
    sh(&["netns", "add", &ns]);
    sh(&["-n", &ns, "link", "set", "lo", "up"]);
    sh(&["-n", &ns, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    sh(&["-n", &ns, "addr", "add", "10.0.0.1/24", "dev", "tap0"]);
    sh(&["-n", &ns, "link", "set", "tap0", "up"]);
    for (name, filters) in [("weft echo on `tcpip` over TAP", ""), ("... + 1 net filter (`arp-log`)", "filters = [{ component = \"arp-log\" }]\n")] {
        let m = format!(
            "[app]\ncomponent = \"echo\"\nargs = [\"7\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n{filters}\n[stack]\nip = \"10.0.0.2/24\"\n"
        );
        let mut child = spawn_weft(&scratch.join("tap"), &m, Some(&ns));
        row(name, measure(Some(Box::leak(ns.clone().into_boxed_str())), "10.0.0.2:7"), native.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    sh(&["netns", "del", &ns]);
}
