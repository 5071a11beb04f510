//! Networking end to end: the same echo app on the host's TCP/IP (no
//! privileges) and on the smoltcp `tcpip` component over a real TAP device in
//! a network namespace the test creates (root only, as in CI).

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `msg`, half-closes, reads until EOF.
fn echo_roundtrip(mut s: TcpStream, msg: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

fn connect_retry(addr: &str) -> TcpStream {
    let t = Instant::now();
    loop {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) {
            Ok(s) => return s,
            Err(e) if t.elapsed() < Duration::from_secs(15) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

fn finish(child: Child) -> Run {
    output(child.wait_with_output().unwrap())
}

#[test]
fn echo_on_the_host_stack() {
    let port = free_port();
    let dir = manifest(
        "echo-host",
        &format!("[app]\ncomponent = \"echo\"\nargs = [\"{port}\", \"2\"]\n\n[stack]\nbackend = \"host\"\n\n[limits]\ntimeout = \"30s\"\n"),
    );
    let child = weft_cmd(&["run", dir.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    for i in 0..2 {
        let msg = format!("hello {i} over the host stack\n");
        assert_eq!(echo_roundtrip(connect_retry(&format!("127.0.0.1:{port}")), msg.as_bytes()), msg.as_bytes());
    }
    finish(child).ok().stdout_has("served 2 connections");
}

#[test]
fn sockets_without_a_stack_is_an_error() {
    let dir = manifest("no-stack", "[app]\ncomponent = \"echo\"\n");
    run(&dir).code(2).stderr_has("echo imports `weft:devices/sockets@0.1.0` but the manifest has no [stack]; add one:");
}

#[test]
fn a_missing_tap_device_is_named() {
    let dir = manifest(
        "no-tap",
        "[app]\ncomponent = \"echo\"\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"weftnope0\"\n\n[stack]\nip = \"10.0.0.2/24\"\n",
    );
    run(&dir).code(2).stderr_has("device `service`: TAP device weftnope0 does not exist; create it with `ip tuntap add dev weftnope0 mode tap");
}

/// A network namespace with a TAP device `tap0` at 10.77.0.1/24, removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc_geteuid() } != 0 {
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
        sh(&["-n", &name, "addr", "add", "10.77.0.1/24", "dev", "tap0"]);
        sh(&["-n", &name, "link", "set", "tap0", "up"]);
        Some(ns)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn echo_on_tcpip_over_tap_answers_ping_and_tcp() {
    let Some(ns) = Netns::new("echo") else { return };
    let dir = manifest(
        "echo-tap",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nnet = \"service\"\nip = \"10.77.0.2/24\"\ngateway = \"10.77.0.1\"\n\n[limits]\ntimeout = \"60s\"\n",
    );
    let weft = env!("CARGO_BIN_EXE_weft");
    let child = ns
        .cmd(weft)
        .args(["run", dir.to_str().unwrap()])
        .env("WEFT_CACHE_DIR", root().join("target/test-scratch/cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // ICMP echo from the namespace: answered by smoltcp inside the component.
    let t = Instant::now();
    loop {
        let ping = ns.cmd("ping").args(["-c", "1", "-W", "1", "10.77.0.2"]).output().unwrap();
        if ping.status.success() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no ping reply: {}", String::from_utf8_lossy(&ping.stdout));
    }
    // TCP echo from the namespace (python's socket module, run inside it).
    let client = ns
        .cmd("python3")
        .args([
            "-c",
            "import socket;s=socket.create_connection(('10.77.0.2',7),timeout=10);s.sendall(b'hello over tap\\n');s.shutdown(socket.SHUT_WR);d=b''\nwhile True:\n  x=s.recv(100)\n  if not x: break\n  d+=x\nprint(d.decode(),end='')",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&client.stdout), "hello over tap\n", "{}", String::from_utf8_lossy(&client.stderr));
    let r = finish(child);
    r.ok().stdout_has("served 1 connections").stderr_has("[tcpip] address 10.77.0.2/24");
}
