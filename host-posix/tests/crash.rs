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
    fn args(self, rng: &mut Rng) -> String {
        match self {
            // Batches of 1..=8 records: the kill can land between the records of one commit.
            Workload::Fill => format!(r#"["fill", "1000000", "{}"]"#, 1 + rng.below(8)),
            Workload::SetMany => format!(r#"["set-many", "1000000", "{KEYS}"]"#),
        }
    }
}

/// A manifest `<name>.toml` in `dir` running kvstore with `args` on `disk.img`.
fn manifest_file(dir: &Path, name: &str, args: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let m = format!(
        "[app]\ncomponent = \"kvstore\"\nargs = {args}\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"16MiB\"\n"
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

/// The child's stdout, line by line, as it arrives.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
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

fn draw_moment(rng: &mut Rng, startup_us: u64) -> Moment {
    if rng.below(5) == 0 {
        // Anywhere in start-up, opening and the roll-forward.
        Moment { after_commits: 0, delay_us: rng.below(startup_us) }
    } else {
        // Somewhere in a later commit: between its writes and flushes.
        Moment { after_commits: 1 + rng.below(12), delay_us: rng.below(3000) }
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

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for p in parts {
        for &b in *p {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
    }
    !c
}

/// Every record with a valid checksum on the image, by sequence number (the
/// last one in log order wins, as in kvstore), and the superblock's head.
fn read_image(img: &Path) -> (BTreeMap<u64, OnDisk>, u64) {
    let data = std::fs::read(img).unwrap();
    let sb = &data[..512];
    assert_eq!(&sb[..8], b"WEFTKVSB", "no superblock");
    assert_eq!(crc32(&[&sb[..32]]), u32::from_le_bytes(sb[32..36].try_into().unwrap()), "superblock checksum");
    let head = u64::from_le_bytes(sb[16..24].try_into().unwrap());
    let mut out = BTreeMap::new();
    let mut sector = 1;
    while sector * 512 < data.len() {
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
    (out, head)
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
        let m = manifest_file(&dir, "loop", &workload.args(rng));
        let (mut child, mut victim) = spawn(&m);
        let rx = lines(&mut child);
        let moment = draw_moment(rng, startup_us);
        let before = reported.records.len();
        if wait_for(&moment, &rx, &mut reported, Instant::now() + Duration::from_secs(60)) {
            sigkill(victim());
        }
        let status = child.wait().unwrap();
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
