//! Crash consistency on the real disk path: `weft run` (and QEMU under `weft
//! boot`) is killed with SIGKILL at seeded random moments while kvstore
//! commits records to a `file` disk (`fill N BATCH` and `set-many N KEYS`,
//! which print `committed SEQ KEY` once a commit's last flush returned). After
//! each kill the image must open, `kvstore verify` must find nothing lost or
//! corrupt, every reported record must be on the image as written, and `get`
//! must return the last reported value of a key (or a later one). The kills
//! accumulate on one image per loop, so every run also recovers the previous
//! crash. `WEFT_CRASH_SEED=<n>` reruns a seed; the kill moments drawn, the
//! commits seen and the records verified are printed (`--nocapture`).

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// xorshift64*: small, seeded, printed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed(test: &str) -> u64 {
    let seed = match std::env::var("WEFT_CRASH_SEED") {
        Ok(s) => s.parse().expect("WEFT_CRASH_SEED must be an integer"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    println!("{test}: seed {seed} (rerun with WEFT_CRASH_SEED={seed})");
    seed
}

/// Which loop runs, and what its records hold.
#[derive(Clone, Copy, PartialEq)]
enum Workload {
    /// `fill N BATCH`: keys `key-NNNNNN`, 100 value bytes.
    Fill,
    /// `set-many N KEYS`: record S sets `k<S % KEYS>` to `v<S>`.
    SetMany,
}

const KEYS: u64 = 7;

impl Workload {
    /// The app's arguments, and how many commits to let by at most before the kill.
    fn args(self, rng: &mut Rng) -> (String, u64) {
        match self {
            // Mostly 1..=8 records a commit (the kill can land between the
            // records of one); one run in six commits 513..=1024 records,
            // more than one 256 KiB virtio-blk request, several in flight.
            Workload::Fill if rng.below(6) == 0 => (format!(r#"["fill", "1000000", "{}"]"#, 513 + rng.below(512)), 2),
            Workload::Fill => (format!(r#"["fill", "1000000", "{}"]"#, 1 + rng.below(8)), 12),
            Workload::SetMany => (format!(r#"["set-many", "1000000", "{KEYS}"]"#), 12),
        }
    }
}

/// A manifest `<name>.toml` in `dir` running kvstore with `args` on `disk.img`.
fn manifest_file(dir: &Path, name: &str, args: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let m = format!(
        "[app]\ncomponent = \"kvstore\"\nargs = {args}\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"64MiB\"\n"
    );
    std::fs::write(&p, m).unwrap();
    p
}

/// What the killed runs reported, over a whole loop.
#[derive(Default)]
struct Reported {
    /// seq → key, from every `committed SEQ KEY` line.
    records: BTreeMap<u64, String>,
    /// Kills that landed (the child died of SIGKILL).
    kills: u32,
    /// Kills before the first commit of their run.
    early: u32,
}

/// The child's stdout, line by line, as it arrives. A line the kill cut
/// short was not reported.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut l = String::new();
        while matches!(out.read_line(&mut l), Ok(n) if n > 0) {
            let Some(line) = l.strip_suffix('\n') else { break };
            if tx.send(line.to_string()).is_err() {
                break;
            }
            l.clear();
        }
    });
    rx
}

/// Records `committed SEQ KEY` lines; any other line (an error, a final
/// report: the run should have been killed long before) fails the test.
fn note(line: &str, reported: &mut Reported) -> bool {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["committed", seq, key] => {
            let seq: u64 = seq.parse().unwrap_or_else(|_| panic!("bad commit line {line:?}"));
            assert!(reported.records.insert(seq, key.to_string()).is_none(), "sequence number {seq} reported twice");
            true
        }
        _ => panic!("unexpected output from the loop: {line:?}"),
    }
}

/// Where to kill: before the first commit (`None`: after a delay from the
/// start, in microseconds) or after the `k`-th commit line and a delay.
struct Moment {
    after_commits: u64,
    delay_us: u64,
}

fn draw_moment(rng: &mut Rng, startup_us: u64, max_commits: u64) -> Moment {
    if rng.below(5) == 0 {
        // Anywhere in start-up, opening and the roll-forward.
        Moment { after_commits: 0, delay_us: rng.below(startup_us) }
    } else {
        // Somewhere in a later commit: between its writes and flushes.
        Moment { after_commits: 1 + rng.below(max_commits), delay_us: rng.below(3000) }
    }
}

/// Waits for the moment; returns false if the child ended first.
fn wait_for(moment: &Moment, rx: &mpsc::Receiver<String>, reported: &mut Reported, deadline: Instant) -> bool {
    let mut seen = 0;
    while seen < moment.after_commits {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => {
                note(&l, reported);
                seen += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no commit line within the deadline"),
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
    std::thread::sleep(Duration::from_micros(moment.delay_us));
    true
}

/// The lines still in the pipe after the kill were reported too.
fn drain(rx: mpsc::Receiver<String>, reported: &mut Reported) {
    for l in rx {
        note(&l, reported);
    }
}

fn sigkill(pid: u32) {
    // SAFETY: plain kill(2) of a process this test started.
    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert!(r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH), "kill {pid}");
}

fn killed_by_sigkill(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

/// One record as it is on the image (the layout of
/// components/apps/kvstore/src/format.rs, read independently of kvstore).
struct OnDisk {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// CRC-32 (IEEE), the record checksum.
fn crc32(parts: &[&[u8]]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        std::array::from_fn(|i| (0..8).fold(i as u32, |c, _| if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 }))
    });
    let mut c = 0xFFFF_FFFFu32;
    for p in parts {
        for &b in *p {
            c = t[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
    }
    !c
}

/// Every record with a valid checksum on the image up to the superblock's
/// head, by sequence number (the last one in log order wins, as in kvstore),
/// and the head.
fn read_image(img: &Path) -> (BTreeMap<u64, OnDisk>, u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).unwrap();
    let mut sb = [0u8; 512];
    f.read_exact_at(&mut sb, 0).unwrap();
    assert_eq!(&sb[..8], b"WEFTKVSB", "no superblock");
    assert_eq!(crc32(&[&sb[..32]]), u32::from_le_bytes(sb[32..36].try_into().unwrap()), "superblock checksum");
    let head = u64::from_le_bytes(sb[16..24].try_into().unwrap()) as usize;
    let mut data = vec![0u8; head * 512];
    f.read_exact_at(&mut data, 0).unwrap();
    let mut out = BTreeMap::new();
    let mut sector = 1;
    while sector < head {
        let r = &data[sector * 512..];
        if r[..8] != *b"WEFTKVRC" {
            sector += 1;
            continue;
        }
        let seq = u64::from_le_bytes(r[8..16].try_into().unwrap());
        let kl = u32::from_le_bytes(r[16..20].try_into().unwrap()) as usize;
        let vl = u32::from_le_bytes(r[20..24].try_into().unwrap()) as usize;
        let end = 28 + kl + vl;
        if end > r.len() || crc32(&[&r[..24], &r[28..end]]) != u32::from_le_bytes(r[24..28].try_into().unwrap()) {
            sector += 1;
            continue;
        }
        out.insert(seq, OnDisk { key: r[28..28 + kl].to_vec(), value: r[28 + kl..end].to_vec() });
        sector += end.div_ceil(512);
    }
    (out, head as u64)
}

/// A `weft run` of kvstore with `args` on the image; stdout and the exit code.
fn kvstore(dir: &Path, args: &str) -> Run {
    let m = manifest_file(dir, "check", args);
    weft(&["run", m.to_str().unwrap()])
}

/// The image after a kill: it opens, verify finds nothing lost or corrupt and
/// at least every reported record, each reported record is there as written,
/// and a key drawn at random reads back its last reported value or a later one.
/// Returns how many reported records were checked.
fn check_image(dir: &Path, workload: Workload, reported: &Reported, rng: &mut Rng) -> usize {
    let v = kvstore(dir, r#"["verify"]"#);
    let counts: Vec<u64> = v.stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(
        v.code == 0 && v.stdout.starts_with("records ") && counts.len() == 4,
        "verify after a kill failed\nstdout:\n{}\nstderr:\n{}",
        v.stdout,
        v.stderr
    );
    let (records, valid, lost, corrupt) = (counts[0], counts[1], counts[2], counts[3]);
    assert_eq!((records, lost, corrupt), (valid, 0, 0), "{}", v.stdout);
    let last = reported.records.keys().next_back().copied().unwrap_or(0);
    assert!(valid >= last, "verify found {valid} valid records but seq {last} was reported: {}", v.stdout);

    let (on_disk, head) = read_image(&dir.join("disk.img"));
    for (seq, key) in &reported.records {
        let r = on_disk.get(seq).unwrap_or_else(|| panic!("reported record {seq} ({key}) is not on the image"));
        assert_eq!(r.key, key.as_bytes(), "record {seq}: key");
        match workload {
            Workload::Fill => assert_eq!(r.value.len(), 100, "record {seq}: value length"),
            Workload::SetMany => assert_eq!(r.value, format!("v{seq}").as_bytes(), "record {seq}: value"),
        }
    }
    // Reported records are below the superblock's head (its write is flushed
    // before the report), so no later open can write over them.
    assert!(head > last, "superblock head {head} but seq {last} was reported");

    if workload == Workload::SetMany && !reported.records.is_empty() {
        let k = rng.below(KEYS);
        let key = format!("k{k}");
        let got = kvstore(dir, &format!(r#"["get", "{key}"]"#));
        let newest = reported.records.iter().rev().find(|(_, v)| **v == key).map(|(s, _)| *s);
        if let Some(newest) = newest {
            got.ok();
            let seq: u64 = got.stdout.trim().strip_prefix('v').and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("get {key}: {:?}", got.stdout));
            assert!(seq >= newest && seq % KEYS == k, "get {key} gave v{seq}; v{newest} was reported");
        }
    }
    reported.records.len()
}

/// Kills `kills` runs of `workload`, each at a drawn moment, checking the
/// image after each. `spawn` starts a run and returns the process to kill.
fn crash_loop(
    name: &str,
    workload: Workload,
    kills: u32,
    startup_us: u64,
    rng: &mut Rng,
    mut spawn: impl FnMut(&Path) -> (Child, Box<dyn FnMut() -> u32>),
) -> Reported {
    let dir = scratch(&format!("crash-{name}"));
    let mut reported = Reported::default();
    let mut checked = 0;
    let mut runs = 0;
    while reported.kills < kills {
        runs += 1;
        assert!(runs < 3 * kills, "{name}: only {} of {runs} runs were killed", reported.kills);
        let (args, max_commits) = workload.args(rng);
        let m = manifest_file(&dir, "loop", &args);
        let (mut child, mut victim) = spawn(&m);
        let rx = lines(&mut child);
        let moment = draw_moment(rng, startup_us, max_commits);
        let before = reported.records.len();
        let mut killed = None;
        if wait_for(&moment, &rx, &mut reported, Instant::now() + Duration::from_secs(60)) {
            let pid = victim();
            sigkill(pid);
            killed = Some(pid);
        }
        let status = child.wait().unwrap();
        // Nothing is left running: with `weft boot`, its QEMU was reaped.
        if let Some(pid) = killed {
            assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{name}: process {pid} outlived the kill");
        }
        drain(rx, &mut reported);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        if killed_by_sigkill(status) || status.code() == Some(71) && err.contains("killed by a signal") {
            reported.kills += 1;
            if reported.records.len() == before {
                reported.early += 1;
            }
        } else {
            panic!("{name}: the loop was not killed: {status}\nstderr:\n{err}");
        }
        checked = check_image(&dir, workload, &reported, rng);
    }
    let last = reported.records.keys().next_back().copied().unwrap_or(0);
    println!(
        "{name}: {} kills ({} before the run's first commit), {} commits reported, highest seq {last}, {checked} reported records verified on the image",
        reported.kills,
        reported.early,
        reported.records.len()
    );
    reported
}

/// `weft run`, killed directly.
fn spawn_run(m: &Path) -> (Child, Box<dyn FnMut() -> u32>) {
    let child = weft_cmd(&["run", m.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    (child, Box::new(move || pid))
}

#[test]
fn sigkill_of_weft_run_loses_no_reported_commit() {
    let t = Instant::now();
    let mut rng = Rng::new(seed("weft run"));
    // Warm the AOT cache, and time a start-up up to the first commit.
    let warm = scratch("crash-warm");
    let m = manifest_file(&warm, "w", r#"["fill", "1", "1"]"#);
    weft(&["run", m.to_str().unwrap()]).ok();
    let s = Instant::now();
    weft(&["run", m.to_str().unwrap()]).ok().stdout_has("committed 2 key-000000");
    let startup_us = s.elapsed().as_micros() as u64;
    println!("weft run: a run up to its first commit takes {} ms", startup_us / 1000);

    let fill = crash_loop("weft-run-fill", Workload::Fill, 100, startup_us, &mut rng, spawn_run);
    let set = crash_loop("weft-run-set", Workload::SetMany, 100, startup_us, &mut rng, spawn_run);
    println!(
        "weft run: {} kills in all, {} commits reported and verified, {:.1} s",
        fill.kills + set.kills,
        fill.records.len() + set.records.len(),
        t.elapsed().as_secs_f64()
    );
}

/// The children of `pid` (every thread's), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// `weft boot`; what is killed is its QEMU (the machine dies, not weft).
fn spawn_boot(m: &Path) -> (Child, Box<dyn FnMut() -> u32>) {
    let child = weft_cmd(&["boot", m.to_str().unwrap(), "--qemu-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let victim = move || {
        let t = Instant::now();
        loop {
            if let Some(&q) = children(pid).first() {
                return q;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "weft boot started no QEMU");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    (child, Box::new(victim))
}

#[test]
fn sigkill_of_qemu_under_weft_boot_loses_no_reported_commit() {
    let t = Instant::now();
    let mut rng = Rng::new(seed("weft boot"));
    // Time a boot up to its first commit (it also warms the cache).
    let warm = scratch("crash-warm-boot");
    let m = manifest_file(&warm, "w", r#"["fill", "1", "1"]"#);
    let s = Instant::now();
    weft(&["boot", m.to_str().unwrap()]).ok().stdout_has("committed 1 key-000000");
    let startup_us = s.elapsed().as_micros() as u64;
    println!("weft boot: a boot up to its first commit takes {} ms", startup_us / 1000);

    let fill = crash_loop("qemu-fill", Workload::Fill, 20, startup_us, &mut rng, spawn_boot);
    let set = crash_loop("qemu-set", Workload::SetMany, 20, startup_us, &mut rng, spawn_boot);
    println!(
        "weft boot: {} QEMU kills in all, {} commits reported and verified, {:.1} s",
        fill.kills + set.kills,
        fill.records.len() + set.records.len(),
        t.elapsed().as_secs_f64()
    );
}

/// One system call of interest in an strace log, at its completion.
#[derive(Debug, PartialEq)]
enum Call {
    /// A positioned write (`pwrite64`, `pwritev`) to `fd` at byte `offset`.
    Write { fd: String, offset: u64 },
    /// `fdatasync` or `fsync`.
    Sync { fd: String },
    /// Console bytes.
    Out(String),
}

/// Undoes strace's quoting of the (ASCII) console text.
fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// The calls in `strace -f -qq -s 64` output, in completion order. `console`
/// is the call that carries the console to stdout: `write` from weft, or
/// `writev` from QEMU's serial port (then weft's own copy is not counted).
fn calls(log: &str, console: &str) -> Vec<Call> {
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let rest = rest.trim_start();
        let full = if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), start.to_string());
            continue;
        } else if let Some(r) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = r.split_once(" resumed>") else { continue };
            format!("{}{tail}", pending.remove(pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        let Some((name, args)) = full.split_once('(') else { continue };
        // strace pads short calls: `fdatasync(5)          = 0`.
        let Some((args, ret)) = args.rsplit_once(" = ") else { continue };
        let Some(args) = args.trim_end().strip_suffix(')') else { continue };
        if ret.starts_with('-') {
            continue;
        }
        let fd = args.split(',').next().unwrap_or("").to_string();
        match name {
            "pwrite64" | "pwritev" | "pwritev2" => {
                let offset = args.rsplit(',').find_map(|a| a.trim().parse().ok()).unwrap_or(u64::MAX);
                out.push(Call::Write { fd, offset });
            }
            "fdatasync" | "fsync" => out.push(Call::Sync { fd }),
            n if n == console && fd == "1" => {
                let text = args.split('"').skip(1).step_by(2).map(unquote).collect();
                out.push(Call::Out(text));
            }
            _ => {}
        }
    }
    out
}

/// Runs `cmd` under strace; `None` when strace cannot trace here.
fn strace(cmd: std::process::Command, log: &Path) -> Option<()> {
    let mut s = std::process::Command::new("strace");
    s.args(["-f", "-qq", "-s", "64", "-e", "trace=pwrite64,pwritev,pwritev2,fdatasync,fsync,write,writev", "-o"]).arg(log);
    s.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => s.env(k, v),
            None => s.env_remove(k),
        };
    }
    let o = s.output().ok()?;
    if !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("ptrace") {
        return None;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(())
}

/// The durability contract, as system calls: before a commit is reported,
/// its records were written, the image was `fdatasync`ed, the superblock
/// (offset 0) was written and the image was `fdatasync`ed again. Returns the
/// commits checked.
fn check_flush_order(calls: &[Call]) -> usize {
    let image = calls
        .iter()
        .find_map(|c| match c {
            Call::Write { fd, offset: 0 } => Some(fd.clone()),
            _ => None,
        })
        .expect("no superblock write");
    let mut since: Vec<&Call> = Vec::new();
    let (mut text, mut reported) = (String::new(), 0);
    for c in calls {
        match c {
            Call::Write { fd, .. } | Call::Sync { fd } if *fd == image => since.push(c),
            Call::Write { .. } | Call::Sync { .. } => {}
            Call::Out(s) => {
                text.push_str(s);
                while let Some(i) = text.find('\n') {
                    let line: String = text.drain(..=i).collect();
                    if !line.starts_with("committed ") {
                        continue;
                    }
                    reported += 1;
                    if since.is_empty() {
                        continue; // another record of the commit just checked
                    }
                    let n = since.len();
                    assert!(
                        n >= 4
                            && matches!(since[n - 1], Call::Sync { .. })
                            && matches!(since[n - 2], Call::Write { offset: 0, .. })
                            && matches!(since[n - 3], Call::Sync { .. })
                            && matches!(since[n - 4], Call::Write { offset, .. } if *offset != 0),
                        "{line:?} was reported after {since:?}, not after records, fdatasync, superblock, fdatasync"
                    );
                    since.clear();
                }
            }
        }
    }
    reported
}

#[test]
fn a_commit_is_reported_after_its_fdatasyncs_on_both_hosts() {
    for host in ["run", "boot"] {
        for args in [r#"["fill", "6", "2"]"#, r#"["set-many", "4", "3"]"#] {
            let dir = scratch(&format!("crash-strace-{host}"));
            let m = manifest_file(&dir, "m", args);
            let log = dir.join("strace.log");
            if strace(weft_cmd(&[host, m.to_str().unwrap()]), &log).is_none() {
                println!("strace cannot trace here; skipped");
                return;
            }
            let calls = calls(&std::fs::read_to_string(&log).unwrap(), if host == "run" { "write" } else { "writev" });
            let reported = check_flush_order(&calls);
            assert_eq!(reported, if args.contains("fill") { 6 } else { 4 }, "weft {host} {args}: {calls:?}");
            println!("weft {host} {args}: {reported} commits reported, each after its fdatasyncs");
        }
    }
}
