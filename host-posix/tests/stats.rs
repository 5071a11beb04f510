//! `--stats` counts what crosses each hop: checked against a workload whose
//! calls are known — kvstore `fill 100` under `block-trace` (which logs every
//! call it passes on) and `block-fault` dropping every 10th write — on Linux
//! and in the unikernel.

mod common;
use common::*;

use std::collections::BTreeMap;

const FILL: &str = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"100\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { drop-every = 10 } }, { component = \"block-trace\" }]\n";

/// The table's rows: (device, hop, op) → (calls, bytes column, errors).
fn table(stderr: &str) -> BTreeMap<(String, String, String), (u64, String, u64)> {
    let mut rows = BTreeMap::new();
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("weft: stats"));
    lines.next().expect("a stats table");
    for l in lines.skip(1).take_while(|l| !l.trim_start().starts_with("faults")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 9 {
            continue;
        }
        // device, hop (`a -> b`: three words), op, calls, bytes (one or two words), errors, p50, p99
        let bytes = w[6..w.len() - 3].join(" ");
        rows.insert((w[0].into(), format!("{} {} {}", w[1], w[2], w[3]), w[4].into()), (w[5].parse().unwrap(), bytes, w[w.len() - 3].parse().unwrap()));
    }
    rows
}

/// block-trace's events for `op`: (count, sectors).
fn traced(stderr: &str, op: &str) -> (u64, u64) {
    let prefix = format!("[block-trace] {op} storage");
    let events: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
    let sectors = events.iter().filter_map(|l| l.split(" count ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok()).sum();
    (events.len() as u64, sectors)
}

fn check(stderr: &str) -> BTreeMap<(String, String, String), (u64, String, u64)> {
    let t = table(stderr);
    let row = |hop: &str, op: &str| t.get(&("storage".to_string(), hop.to_string(), op.to_string())).unwrap_or_else(|| panic!("no row {hop} {op}:\n{stderr}")).clone();
    // What block-trace saw pass is what the app sent it, call for call.
    for op in ["read", "write", "flush"] {
        let (calls, sectors) = traced(stderr, op);
        let (n, bytes, errors) = row("kvstore -> block-trace", op);
        assert_eq!(n, calls, "{op}: the stats and block-trace's own log agree");
        assert_eq!(errors, 0);
        if op != "flush" {
            let kib = sectors * 512 / 1024;
            assert!(bytes.starts_with(&format!("{kib}.0 KiB")), "{op}: {sectors} sectors moved, the table says {bytes}");
        }
        assert_eq!(row("block-trace -> block-fault", op).0, n, "{op}: block-trace passes every call on");
    }
    // 100 one-sector records, and the superblock twice (formatting the
    // blank disk, then the commit).
    assert_eq!(row("kvstore -> block-trace", "write").0, 102);
    // block-fault acknowledges and drops every 10th write: 10 never reach the disk.
    assert_eq!(row("block-fault -> host", "write").0, 92);
    assert!(stderr.contains("faults injected: block-fault 10"), "{stderr}");
    t
}

#[test]
fn stats_count_a_known_workload_exactly() {
    let dir = manifest("stats-fill", FILL);
    let r = weft(&["run", "--stats", dir.to_str().unwrap()]);
    check(&r.stderr);
    // Without --stats there is no table.
    let plain = run(&dir);
    assert!(!plain.stderr.contains("weft: stats"));
}

#[test]
fn stats_under_weft_boot_count_the_same() {
    let dir = manifest("stats-boot", FILL);
    let linux = check(&weft(&["run", "--stats", dir.to_str().unwrap()]).stderr);
    let r = weft(&["boot", "--stats", dir.to_str().unwrap()]);
    let kernel = check(&r.stderr);
    let counts = |t: &BTreeMap<(String, String, String), (u64, String, u64)>| -> Vec<(String, u64)> {
        t.iter().filter(|(k, _)| k.0 == "storage").map(|(k, v)| (format!("{} {}", k.1, k.2), v.0)).collect()
    };
    assert_eq!(counts(&linux), counts(&kernel), "the same calls over every hop on both hosts");
}
