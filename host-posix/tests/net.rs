//! Networking end to end: the same echo app on the host's TCP/IP (no
//! privileges) and on the smoltcp `tcpip` component over a real TAP device in
//! a network namespace the test creates (root only, as in CI).

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sends `msg`, half-closes, reads until EOF.
fn echo_roundtrip(mut s: TcpStream, msg: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
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

#[test]
fn echo_on_tcpip_over_tap_answers_ping_and_tcp() {
    let Some(ns) = Netns::new("echo") else { return };
    let dir = manifest(
        "echo-tap",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\ngateway = \"10.0.0.1\"\n\n[limits]\ntimeout = \"60s\"\n",
    );
    let child = ns.weft("run", &dir, &[]);
    // ICMP echo from the namespace: answered by smoltcp inside the component.
    ns.ping("10.0.0.2");
    // TCP echo from the namespace (python's socket module, run inside it).
    let client = ns
        .cmd("python3")
        .args([
            "-c",
            "import socket;s=socket.create_connection(('10.0.0.2',7),timeout=10);s.sendall(b'hello over tap\\n');s.shutdown(socket.SHUT_WR);d=b''\nwhile True:\n  x=s.recv(100)\n  if not x: break\n  d+=x\nprint(d.decode(),end='')",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&client.stdout), "hello over tap\n", "{}", String::from_utf8_lossy(&client.stderr));
    let r = finish(child);
    r.ok().stdout_has("served 1 connections").stderr_has("[tcpip] address 10.0.0.2/24");
}

/// Sends `bytes` of a pattern to the echo app at 10.0.0.2:7 from inside `ns`
/// while reading the echo back (connecting as soon as it listens); prints how
/// many bytes came back and whether they are the ones sent ("4194304 True").
fn echo_intact(ns: &Netns, bytes: usize) -> std::process::Output {
    let script = format!(
        "import socket,hashlib,threading,time\ndata=bytes((i*7+i//251)%256 for i in range({bytes}))\nfor _ in range(50):\n  try:\n    s=socket.create_connection(('10.0.0.2',7),timeout=30);break\n  except OSError: time.sleep(0.1)\ndef send():\n  s.sendall(data);s.shutdown(socket.SHUT_WR)\nt=threading.Thread(target=send);t.start()\nd=bytearray()\nwhile True:\n  x=s.recv(1<<16)\n  if not x: break\n  d+=x\nt.join()\nprint(len(d), hashlib.sha256(d).hexdigest()==hashlib.sha256(data).hexdigest())"
    );
    ns.cmd("python3").args(["-c", &script]).output().unwrap()
}

/// `offload = true`: 4 MiB echoed over a 1500-byte TAP link arrive intact, and
/// both directions moved super-frames (the host's counters for tap0 average far
/// more than a 1514-byte frame per packet: Linux handed weft unsegmented TCP, and
/// took weft's merged segments in one write each).
#[test]
fn echo_with_tap_offload_moves_super_frames_intact() {
    let Some(ns) = Netns::new("offload") else { return };
    let dir = manifest(
        "echo-offload",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\noffload = true\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\ntcp-rx-buffer = 262144\ntcp-tx-buffer = 262144\n\n[limits]\ntimeout = \"60s\"\n",
    );
    let stats = |what: &str| -> u64 {
        let o = ns.cmd("cat").arg(format!("/sys/class/net/tap0/statistics/{what}")).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let before = [stats("rx_bytes"), stats("rx_packets"), stats("tx_bytes"), stats("tx_packets")];
    let child = ns.weft("run", &dir, &[]);
    let client = echo_intact(&ns, 4 << 20);
    assert_eq!(String::from_utf8_lossy(&client.stdout).trim(), "4194304 True", "{}", String::from_utf8_lossy(&client.stderr));
    let r = finish(child);
    r.ok().stdout_has("served 1 connections").stderr_has("mtu 65521");
    let after = [stats("rx_bytes"), stats("rx_packets"), stats("tx_bytes"), stats("tx_packets")];
    // tap0's rx is what weft wrote, its tx what weft read.
    let from_weft = (after[0] - before[0]) / (after[1] - before[1]).max(1);
    let to_weft = (after[2] - before[2]) / (after[3] - before[3]).max(1);
    eprintln!("bytes per packet: from weft {from_weft}, to weft {to_weft}");
    assert!(from_weft > 3000, "weft wrote {from_weft} bytes per packet on average: no merged segments");
    assert!(to_weft > 3000, "weft read {to_weft} bytes per packet on average: no super-frames");

    // Offloads outlive the process that set them: the same TAP device without
    // `offload` gets plain frames again.
    let plain = manifest(
        "echo-after-offload",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\n\n[limits]\ntimeout = \"60s\"\n",
    );
    let child = ns.weft("run", &plain, &[]);
    let client = ns
        .cmd("python3")
        .args([
            "-c",
            "import socket\ns=socket.create_connection(('10.0.0.2',7),timeout=10)\ns.sendall(bytes(200000));s.shutdown(socket.SHUT_WR)\nn=0\nwhile True:\n  x=s.recv(1<<16)\n  if not x: break\n  n+=len(x)\nprint(n)",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&client.stdout).trim(), "200000", "{}", String::from_utf8_lossy(&client.stderr));
    finish(child).ok().stderr_has("mtu 1500");
}

/// Checksum offload leaves TCP checksums to the device, so damage a filter does
/// would pass unseen: `net-fault` corrupting 5 % of frames each way over an
/// offloading TAP still delivers 1 MiB echoed intact, its corruptions logged. Runs
/// go on (at most five) until corruptions have been seen both ways: ~40 frames
/// each way a run, and whether one is hit is chance. Without `net-fault`'s mending
/// (its info passing offload up, or zero checksums passed down) corrupted bytes
/// reach the app or the client and the digest differs.
#[test]
fn corruption_stays_detectable_under_checksum_offload() {
    let Some(ns) = Netns::new("csum") else { return };
    let (mut inbound, mut outbound) = (0, 0);
    for seed in 1..=5 {
        let dir = manifest(
            &format!("echo-offload-corrupt-{seed}"),
            &format!("[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\noffload = true\nfilters = [{{ component = \"net-fault\", config = {{ corrupt-chance = 0.05, seed = {seed} }} }}]\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\n\n[limits]\ntimeout = \"60s\"\n"),
        );
        let child = ns.weft("run", &dir, &[]);
        let client = echo_intact(&ns, 1 << 20);
        let r = finish(child);
        assert_eq!(String::from_utf8_lossy(&client.stdout).trim(), "1048576 True", "{}\n{}", String::from_utf8_lossy(&client.stderr), r.stderr);
        let corrupted = |dir: &str| r.stderr.lines().filter(|l| l.contains("[net-fault] corrupted") && l.contains(dir)).count();
        inbound += corrupted("inbound");
        outbound += corrupted("outbound");
        r.ok().stdout_has("served 1 connections");
        if inbound > 0 && outbound > 0 {
            break;
        }
    }
    eprintln!("corrupted frames: {inbound} inbound, {outbound} outbound");
    assert!(inbound > 0 && outbound > 0, "five runs and no corruption in one direction: {inbound} inbound, {outbound} outbound");
}

#[test]
fn httpd_example_serves_curl_over_tap() {
    let Some(ns) = Netns::new("httpd") else { return };
    let dir = example("httpd");
    let child = ns.weft("run", &dir, &[]);
    ns.ping("10.0.0.2");
    let page = ns.curl(&["http://10.0.0.2/"]);
    assert!(page.contains("<html"), "{page}");
    assert_eq!(ns.curl(&["-X", "PUT", "--data", "blue", "http://10.0.0.2/kv/colour"]).trim().is_empty(), false);
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    let missing = ns.cmd("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://10.0.0.2/kv/nothing"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");
    let r = kill(child);
    assert!(r.stderr.contains("[tcpip] address 10.0.0.2/24"), "{}", r.stderr);
    // The value is on the disk image: a fresh run serves it again.
    let child = ns.weft("run", &dir, &[]);
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    kill(child);
}

#[test]
fn httpd_on_the_host_stack_answers_on_loopback() {
    let port = free_port();
    let dir = manifest(
        "httpd-host",
        &format!("[app]\ncomponent = \"httpd\"\nargs = [\"{port}\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n\n[stack]\nbackend = \"host\"\n"),
    );
    let child = weft_cmd(&["run", dir.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut s = connect_retry(&format!("127.0.0.1:{port}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    kill(child);
}

#[test]
fn arp_git_example_records_ping_in_git() {
    let Some(ns) = Netns::new("arp") else { return };
    let dir = example("arp-git");
    let child = ns.weft("run", &dir, &[]);
    ns.ping("10.0.0.2");
    // Events reach git within the log's batching window, while the unikernel
    // keeps running (the user's flow: ping, then git log).
    let repo = dir.join("events.git");
    let t = Instant::now();
    let log = loop {
        let o = Command::new("git").arg("-C").arg(&repo).args(["log", "-p", "arp"]).output().unwrap();
        let log = String::from_utf8_lossy(&o.stdout).into_owned();
        if log.contains("is-at") || t.elapsed() > Duration::from_secs(10) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let r = kill(child);
    assert!(log.contains("who-has 10.0.0.2 tell 10.0.0.1"), "{log}\n{}", r.stderr);
    assert!(log.contains("10.0.0.2 is-at 52:54:00:"), "{log}");
    // The table file changed in a commit: 10.0.0.1 learned with its MAC.
    assert!(log.lines().any(|l| l.starts_with("+10.0.0.1 ")), "{log}");
    weft(&["log", dir.to_str().unwrap(), "arp"]).ok().stdout_has("who-has 10.0.0.2 tell 10.0.0.1");
}

#[test]
fn lossy_net_example_still_serves_and_captures() {
    let Some(ns) = Netns::new("lossy") else { return };
    let dir = example("lossy-net");
    let child = ns.weft("run", &dir, &[]);
    ns.ping("10.0.0.2");
    // On a link that loses one frame in ten, a connection attempt can fail for
    // more reasons than a refusal (the ping is answered before httpd listens):
    // curl retries on any error, and a failure shows what weft logged.
    let mut child = Some(child);
    for _ in 0..5 {
        let o = ns
            .cmd("curl")
            .args(["-sS", "--max-time", "20", "--retry", "5", "--retry-all-errors", "http://10.0.0.2/"])
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&o.stdout);
        if !page.contains("<html") {
            let r = kill(child.take().unwrap());
            panic!("curl: {}{page}\nweft's stderr:\n{}", String::from_utf8_lossy(&o.stderr), r.stderr);
        }
    }
    let r = kill(child.take().unwrap());
    assert!(r.stderr.contains("[net-fault] dropped"), "{}", r.stderr);
    let pcap = std::fs::read(dir.join("lossy.pcap")).unwrap();
    assert_eq!(&pcap[..4], &0xa1b2c3d4u32.to_le_bytes(), "pcap magic");
    // Every record header is consistent with the file length.
    let (mut at, mut frames) = (24, 0);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + len;
        frames += 1;
    }
    assert_eq!(at, pcap.len());
    assert!(frames > 10, "{frames} frames captured");
    if let Ok(o) = Command::new("tshark").args(["-r"]).arg(dir.join("lossy.pcap")).arg("-c").arg("3").output() {
        assert!(o.status.success(), "tshark reads the capture: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = manifest(
        "port-in-use",
        &format!("[app]\ncomponent = \"echo\"\nargs = [\"{port}\"]\n\n[stack]\nbackend = \"host\"\n"),
    );
    run(&dir)
        .code(1)
        .stdout_has(&format!("echo: cannot listen on port {port}: address-in-use (The port is taken.)"));
}

/// The manifest gives the stack the address the host's tap0 already has: the
/// tcpip component's ARP probe is answered by the host, and the run stops
/// before the app starts, naming the device, the address and the host's MAC.
/// `probe-wait` is a second, not the default 20 ms: the answer comes from the
/// host kernel, which a CI machine running tests on every core may be slow to
/// schedule (the wait ends as soon as the answer is in).
#[test]
fn an_address_clash_is_a_clear_error_naming_the_device() {
    let Some(ns) = Netns::new("clash") else { return };
    let host_mac = ns.cmd("cat").arg("/sys/class/net/tap0/address").output().unwrap();
    let host_mac = String::from_utf8_lossy(&host_mac.stdout).trim().to_string();
    assert_eq!(host_mac.len(), 17, "{host_mac:?}");
    let dir = manifest(
        "clash",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.1/24\"\nprobe-wait = \"1s\"\n\n[limits]\ntimeout = \"20s\"\n",
    );
    let r = finish(ns.weft("run", &dir, &[]));
    assert_ne!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r.stderr_has(&format!(
        "address clash on net device `service`: 10.0.0.1 is already used by {host_mac} (seen in an ARP reply from it); choose another `ip` in [stack]"
    ));
    assert!(!r.stdout.contains("listening"), "the app never ran: {}", r.stdout);
}

/// A TAP device's MTU is the stack's: with tap0 at 9000, the stack says so
/// and answers a 8,000-byte ping that may not be fragmented.
#[test]
fn the_tap_devices_mtu_is_the_stacks() {
    let Some(ns) = Netns::new("mtu") else { return };
    let st = ns.cmd("ip").args(["link", "set", "tap0", "mtu", "9000"]).status().unwrap();
    assert!(st.success());
    let dir = manifest(
        "mtu",
        "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nip = \"10.0.0.2/24\"\n\n[limits]\ntimeout = \"30s\"\n",
    );
    let child = ns.weft("run", &dir, &[]);
    ns.ping("10.0.0.2");
    let big = ns.cmd("ping").args(["-c", "1", "-W", "2", "-M", "do", "-s", "8000", "10.0.0.2"]).output().unwrap();
    let r = kill(child);
    assert!(big.status.success(), "{}\n{}", String::from_utf8_lossy(&big.stdout), r.stderr);
    r.stderr_has("[tcpip] address 10.0.0.2/24 gateway none mac 52:54:00:").stderr_has(" mtu 9000 |");
}

/// A real networked run — httpd on `tcpip` over a TAP device, a file disk,
/// curl from the namespace — recorded, then replayed with neither the TAP
/// device nor the disk: every received frame and block read comes from the
/// trace, and the replay prints what the run printed.
#[test]
fn a_recorded_tap_run_replays_without_the_network() {
    let Some(ns) = Netns::new("record") else { return };
    let dir = manifest(
        "record-tap",
        "[app]\ncomponent = \"httpd\"\nargs = [\"80\", \"3\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"kv.img\"\nsize = \"1MiB\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\n\n[limits]\ntimeout = \"60s\"\n",
    );
    let t = dir.join("httpd.trace");
    let child = ns.weft("run", &dir, &["--record", t.to_str().unwrap()]);
    ns.ping("10.0.0.2");
    assert!(ns.curl(&["-X", "PUT", "--data", "blue", "http://10.0.0.2/kv/colour"]).contains("stored"));
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    assert!(ns.curl(&["http://10.0.0.2/"]).contains("<html"));
    let run = finish(child);
    run.ok();
    std::fs::remove_file(dir.join("kv.img")).unwrap();
    drop(ns); // the TAP device and its namespace are gone
    let replay = weft(&["replay", t.to_str().unwrap()]);
    replay.ok().stderr_has("the run ended as recorded (exit 0)");
    assert_eq!(replay.stdout, run.stdout);
    let show = weft(&["trace", "show", t.to_str().unwrap()]);
    show.ok().stdout_has("service   receive max").stdout_has("service   send ").stdout_has("storage   write sector");
}

/// An echo server (3 connections, `--stats`, `filters` on its net device)
/// and netclient, two unikernels on a `udp` link (no privileges) in subnet
/// `net` (`10.0.1`): the server's run.
fn udp_echo(name: &str, net: &str, filters: &str) -> Run {
    let udp = || std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (a, b) = (udp(), udp());
    let link = |app: &str, args: &str, local: u16, remote: u16, ip: &str, filters: &str| {
        format!(
            "[app]\ncomponent = \"{app}\"\nargs = {args}\n\n[devices.link]\nkind = \"net\"\nbackend = \"udp\"\nlocal = \"127.0.0.1:{local}\"\nremote = \"127.0.0.1:{remote}\"\n{filters}\n[stack]\nnet = \"link\"\nip = \"{ip}\"\n\n[limits]\ntimeout = \"40s\"\n"
        )
    };
    let server = manifest(&format!("{name}-echo"), &link("echo", r#"["7", "3"]"#, a, b, &format!("{net}.1/24"), filters));
    let args = format!(r#"["{net}.1", "7", "{name}", "3"]"#);
    let client = manifest(&format!("{name}-client"), &link("netclient.wasm", &args, b, a, &format!("{net}.2/24"), ""));
    test_component(&client, "netclient", "netclient.wasm");
    let echo = weft_cmd(&["run", "--stats", server.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    weft(&["run", client.to_str().unwrap()]).ok();
    let r = finish(echo);
    r.ok().stdout_has("echo: served 3 connections");
    r
}

/// `--stats` rows of device `link` as words: `device consumer -> provider op calls bytes…`.
fn link_rows(stderr: &str) -> Vec<Vec<&str>> {
    stderr.lines().skip_while(|l| !l.starts_with("weft: stats")).map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|w| w.len() > 5 && w[0] == "link").collect()
}

/// The calls column of `hop` (`tcpip -> host`), `op`.
fn calls(rows: &[Vec<&str>], hop: &str, op: &str) -> Option<u64> {
    rows.iter().find(|w| format!("{} {} {}", w[1], w[2], w[3]) == hop && w[4] == op).map(|w| w[5].parse().unwrap())
}

/// A net filter that only observes (`arp-log`: the `net-observer` world,
/// wit/watch.wit) is taken out of the path: the stack's frames go straight to
/// the device, and the filter is handed only the ARP frames, after they
/// passed. Two unikernels on a `udp` link (no privileges), echo and client;
/// the server's `--stats` shows the hops.
#[test]
fn an_observing_filter_sees_only_what_it_watches_and_sits_in_no_path() {
    let r = udp_echo("watched", "10.0.1", "filters = [{ component = \"arp-log\" }]\n");
    // arp-log saw the ARP exchange: the client's request and the server's reply.
    r.stderr_has("who-has 10.0.1.1 tell 10.0.1.2").stderr_has("10.0.1.1 is-at ");
    let rows = link_rows(&r.stderr);
    let row = |hop: &str, op: &str| calls(&rows, hop, op);
    let (sends, receives) = (row("tcpip -> host", "send"), row("tcpip -> host", "receive"));
    assert!(sends.is_some_and(|n| n >= 10) && receives.is_some_and(|n| n >= 10), "the stack calls the device itself:\n{}", r.stderr);
    assert_eq!((row("tcpip -> arp-log", "send"), row("tcpip -> arp-log", "receive")), (None, None), "nothing passes through arp-log:\n{}", r.stderr);
    // A call per batch holding ARP — the probes at start-up, the client's
    // request, the reply: 4 — however many TCP frames passed.
    let arp_frames = r.stderr.lines().filter(|l| l.starts_with("[arp] ") && !l.starts_with("[arp] table")).count() as u64;
    let seen = row("tcpip -> arp-log", "seen").unwrap_or_else(|| panic!("no seen row:\n{}", r.stderr));
    assert!((1..=arp_frames).contains(&seen), "{seen} calls for {arp_frames} ARP frames:\n{}", r.stderr);
    // And only the ARP frames were copied to it: 42 bytes each.
    let seen_bytes = rows.iter().find(|w| w.len() > 7 && w[1] == "tcpip" && w[3] == "arp-log" && w[4] == "seen").map(|w| format!("{} {}", w[6], w[7]));
    assert_eq!(seen_bytes, Some(format!("{} B", 42 * arp_frames)), "{}", r.stderr);
    assert!(arp_frames < sends.unwrap() + receives.unwrap());
}

/// A fault filter that handles only part of the traffic (`net-fault` with
/// `ethertypes` and `directions`: the `net-router` world, wit/watch.wit) has
/// the rest routed past it: here it drops the first ARP frame the echo
/// server receives, and never sees the TCP frames, nor anything sent —
/// `--stats` has no `send` through it at all, while the stack's frames
/// reach the device on the hop below.
#[test]
fn a_fault_filter_handles_only_its_frames_and_the_rest_go_past_it() {
    let fault = "filters = [{ component = \"net-fault\", config = { ethertypes = [0x0806], directions = [\"inbound\"], schedule = [\"drop@1\"] } }]\n";
    let r = udp_echo("routed", "10.0.2", fault);
    // The one fault: the first frame it handled, an inbound ARP request.
    r.stderr_has("dropped inbound frame #1 (42 bytes, ethertype 0x0806)").stderr_has("faults injected: net-fault 1");
    let rows = link_rows(&r.stderr);
    let row = |hop: &str, op: &str| calls(&rows, hop, op);
    assert_eq!(row("tcpip -> net-fault", "send"), None, "nothing sent reached net-fault:\n{}", r.stderr);
    let sends = row("net-fault -> host", "send").unwrap_or_else(|| panic!("no send below net-fault:\n{}", r.stderr));
    assert!(sends >= 10, "{}", r.stderr);
    // Receiving still calls it (it may hold ARP frames), once per call below.
    assert_eq!(row("tcpip -> net-fault", "receive"), row("net-fault -> host", "receive"), "{}", r.stderr);
}
