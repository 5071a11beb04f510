//! `--stats` counts what crosses each hop: checked against a workload whose
//! calls are known — kvstore `fill 100` watched by `block-trace` (which logs
//! every operation it is handed; it only observes, so it sits in no path) and
//! `block-fault` dropping every 10th write — on Linux and in the unikernel.

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
    // block-trace only observes (`block-watch`): the app calls block-fault
    // itself, and what block-trace logged is what the app sent, call for call.
    let mut events = 0;
    for op in ["open", "info", "read", "write", "flush"] {
        let (calls, sectors) = traced(stderr, op);
        events += calls;
        if op == "info" {
            // block-fault does not handle `info` (`block-route`): kvstore's go
            // past it, counted on the hop below with block-fault's own.
            assert!(!t.contains_key(&("storage".into(), "kvstore -> block-fault".into(), op.into())), "{stderr}");
            assert!(calls == 0 || row("block-fault -> host", op).0 > calls, "{stderr}");
            continue;
        }
        let (n, bytes, errors) = row("kvstore -> block-fault", op);
        assert_eq!(n, calls, "{op}: the stats and block-trace's own log agree");
        assert_eq!(errors, 0);
        if op == "read" || op == "write" {
            let kib = sectors * 512 / 1024;
            assert!(bytes.starts_with(&format!("{kib}.0 KiB")), "{op}: {sectors} sectors moved, the table says {bytes}");
        }
        assert!(!t.contains_key(&("storage".into(), "kvstore -> block-trace".into(), op.into())), "{op}: a call went through block-trace:\n{stderr}");
        assert!(!t.keys().any(|k| k.0 == "storage" && k.1.starts_with("block-trace ->")), "block-trace called the device:\n{stderr}");
    }
    // One `seen` per operation it logged, and no sector data copied to it.
    let (seen, bytes, _) = row("kvstore -> block-trace", "seen");
    assert_eq!(seen, events, "one seen per traced operation:\n{stderr}");
    assert_eq!(bytes, "-");
    // 100 one-sector records, and the superblock twice (formatting the
    // blank disk, then the commit).
    assert_eq!(row("kvstore -> block-fault", "write").0, 102);
    // block-fault acknowledges and drops every 10th write: 10 never reach the disk.
    assert_eq!(row("block-fault -> host", "write").0, 92);
    assert!(stderr.contains("faults injected: block-fault 10"), "{stderr}");
    t
}

/// An observer is handed the operations it asked for and no others:
/// block-trace with `ops = ["flush"]` logs the flushes, gets a `seen` per
/// flush, and nothing else reaches it (not even a clock reading: the leaf
/// clock is read only for watched operations).
#[test]
fn a_block_observer_gets_only_the_operations_it_asked_for() {
    let dir = manifest("stats-watch-flush", &FILL.replace("{ component = \"block-trace\" }", "{ component = \"block-trace\", config = { ops = [\"flush\"] } }"));
    // (kvstore exits 1: it finds the 10 writes block-fault dropped.)
    let r = weft(&["run", "--stats", dir.to_str().unwrap()]);
    let t = table(&r.stderr);
    let row = |hop: &str, op: &str| t.get(&("storage".to_string(), hop.to_string(), op.to_string())).map(|v| v.0);
    let flushes = row("kvstore -> block-fault", "flush").unwrap_or_else(|| panic!("no flush row:\n{}", r.stderr));
    assert!(flushes >= 2, "{}", r.stderr);
    assert_eq!(traced(&r.stderr, "flush").0, flushes);
    for op in ["open", "info", "read", "write"] {
        assert_eq!(traced(&r.stderr, op).0, 0, "{op} was logged:\n{}", r.stderr);
    }
    assert_eq!(row("kvstore -> block-trace", "seen"), Some(flushes), "{}", r.stderr);
    assert_eq!(row("kvstore -> block-fault", "write"), Some(102));
    // Nothing asked for, nothing handed: no seen row at all.
    let none = manifest("stats-watch-none", &FILL.replace("{ component = \"block-trace\" }", "{ component = \"block-trace\", config = { ops = [] } }"));
    let r = weft(&["run", "--stats", none.to_str().unwrap()]);
    r.stdout_has("wrote 100 verified 90 lost 10");
    assert!(!r.stderr.contains("[block-trace]"), "{}", r.stderr);
    assert!(!r.stderr.lines().any(|l| l.contains("block-trace") && l.contains(" seen ")), "{}", r.stderr);
}

/// An observer watches its own hop: under block-fault (which drops every
/// 10th write before the device), block-trace is handed the 92 writes that
/// reach the device, not the app's 102.
#[test]
fn a_block_observer_below_a_filter_sees_what_the_filter_passes_down() {
    let inner = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"100\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-trace\", config = { ops = [\"write\"] } }, { component = \"block-fault\", config = { drop-every = 10 } }]\n";
    let r = weft(&["run", "--stats", manifest("stats-watch-inner", inner).to_str().unwrap()]);
    r.stdout_has("wrote 100 verified 90 lost 10");
    let t = table(&r.stderr);
    let row = |hop: &str, op: &str| t.get(&("storage".to_string(), hop.to_string(), op.to_string())).map(|v| v.0);
    assert_eq!(row("kvstore -> block-fault", "write"), Some(102), "{}", r.stderr);
    assert_eq!(row("block-fault -> host", "write"), Some(92), "{}", r.stderr);
    assert_eq!(row("block-fault -> block-trace", "seen"), Some(92), "{}", r.stderr);
    assert_eq!(traced(&r.stderr, "write").0, 92);
    assert_eq!(row("kvstore -> block-trace", "seen"), None, "{}", r.stderr);
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

/// A fault filter that handles only some operations (`block-fault` with
/// `ops = ["write"]`: the `block-router` world) is called for those alone:
/// the reads, flushes and `info` go past it to the device, counted on the
/// hop below only, and its drops number writes among writes.
#[test]
fn a_block_fault_handling_writes_only_is_never_called_for_the_rest() {
    let m = FILL.replace(", { component = \"block-trace\" }", "").replace("drop-every = 10 }", "drop-every = 10, ops = [\"write\"] }");
    let r = weft(&["run", "--stats", manifest("stats-route", &m).to_str().unwrap()]);
    r.stdout_has("wrote 100 verified 90 lost 10");
    let t = table(&r.stderr);
    let row = |hop: &str, op: &str| t.get(&("storage".to_string(), hop.to_string(), op.to_string())).map(|v| v.0);
    assert_eq!(row("kvstore -> block-fault", "write"), Some(102), "{}", r.stderr);
    assert_eq!(row("block-fault -> host", "write"), Some(92), "{}", r.stderr);
    for op in ["read", "flush", "info"] {
        assert_eq!(row("kvstore -> block-fault", op), None, "{op} reached block-fault:\n{}", r.stderr);
        assert!(row("block-fault -> host", op).is_some_and(|n| n > 0), "{op} missing below:\n{}", r.stderr);
    }
    // Every 10th write, numbered among the writes alone.
    r.stderr_has("n=10 op-n=10 cause=drop-every schedule=drop@10").stderr_has("schedule=drop@100");
    // The same run with every operation handled numbers them all together.
    let all = weft(&["run", "--stats", manifest("stats-noroute", &FILL.replace(", { component = \"block-trace\" }", "")).to_str().unwrap()]);
    assert!(!all.stderr.contains("op-n=10 "), "{}", all.stderr);
    assert_eq!(table(&all.stderr).get(&("storage".into(), "kvstore -> block-fault".into(), "read".into())).map(|v| v.0), row("block-fault -> host", "read"));
}
