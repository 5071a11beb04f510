//! SQLite (its amalgamation, in C, unmodified) as a stock WASI program on a
//! `fat:` disk: examples/sqlite and examples/sqlite-faulty-disk run the same
//! binary, built by `components/polyglot/build.sh c`; only their manifests
//! differ. What SQLite notices on a disk that drops every 100th write, and
//! what it cannot, is asserted exactly: the faults are deterministic.

mod common;
use common::*;

use std::path::{Path, PathBuf};

/// A scratch copy of `examples/<name>` with its built program.
fn sqlite_example(name: &str) -> PathBuf {
    let wasm = root().join("examples").join(name).join("sqlite-faults.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run components/polyglot/build.sh c (./setup.sh --polyglot installs its toolchain; test.sh does both)",
        wasm.display()
    );
    example(name)
}

/// Sets the app's args in `dir`'s manifest.
fn set_args(dir: &Path, args: &str) {
    let m = std::fs::read_to_string(dir.join("weft.toml")).unwrap();
    let line = m.lines().find(|l| l.starts_with("args = ")).expect("an args line");
    std::fs::write(dir.join("weft.toml"), m.replace(line, &format!("args = {args}"))).unwrap();
}

/// Runs the example in `dir` with `args` instead of its manifest's.
fn run_with(dir: &Path, args: &str) -> Run {
    set_args(dir, args);
    run(dir)
}

/// The same under `--sim`: virtual time and seeded random bytes.
fn sim_with(dir: &Path, args: &str) -> Run {
    set_args(dir, args);
    weft(&["run", "--sim", dir.to_str().unwrap()])
}

/// The lines of `out` starting with `prefix`, without it.
fn values<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter_map(|l| l.strip_prefix(prefix)).collect()
}

#[test]
fn sqlite_creates_checks_and_reopens_its_rows_on_a_fat_disk() {
    let dir = sqlite_example("sqlite");
    let r = run(&dir);
    r.ok();
    // Ten transactions of 100 rows, each reported once COMMIT returned.
    let committed: Vec<&str> = values(&r.stdout, "committed ");
    assert_eq!(committed, ["100", "200", "300", "400", "500", "600", "700", "800", "900", "1000"], "{}", r.stdout);
    r.stdout_has("created 1000 rows in ")
        .stdout_has("integrity_check: ok\nrows 1000\nlast 1000\ngaps 0\nintegrity_problems 0\n");
    // A second boot reads the database back from the image.
    run_with(&dir, r#"["/data/test.db", "count"]"#).ok().stdout_has("rows 1000\n");
    // It is an ordinary FAT image holding an ordinary SQLite file.
    weft(&["image", "ls", dir.join("disk.img").to_str().unwrap()]).ok().stdout_has("test.db");
    // And a run of the manifest as shipped adds 1000 more after them.
    let again = run_with(&dir, r#"["/data/test.db", "create", "1000", "100"]"#);
    again.ok().stdout_has("committed 1100\n").stdout_has("integrity_check: ok\nrows 2000\n");
}

/// examples/sqlite-faulty-disk with `drop-every = n`: `create` then `check`
/// in a second boot on a fresh image, both under `--sim` (the virtual clock
/// fixes the FAT timestamps, so which writes are every n-th is the same
/// every run).
fn faulty_disk_runs(n: u32) -> (Run, Run) {
    let dir = sqlite_example("sqlite-faulty-disk");
    let m = std::fs::read_to_string(dir.join("weft.toml")).unwrap();
    assert!(m.contains("drop-every = 100"), "the example drops every 100th write");
    std::fs::write(dir.join("weft.toml"), m.replace("drop-every = 100", &format!("drop-every = {n}"))).unwrap();
    let created = sim_with(&dir, r#"["/data/test.db", "create", "1000", "100"]"#);
    let checked = sim_with(&dir, r#"["/data/test.db", "check"]"#);
    (created, checked)
}

fn dropped(created: &Run) -> usize {
    created.stderr.matches("[block-fault] dropped write #").count()
}

/// The example as shipped: every 100th block write dropped. The `fat:` disk
/// sends each sync's changes as runs of sectors (1000 rows in 10
/// transactions are ~126 block writes), so one write is dropped: two pages of
/// the database (16 sectors). SQLite cannot tell: `integrity_check` is ok, and
/// 56 rows are gone.
#[test]
fn sqlite_on_a_disk_that_drops_every_100th_write() {
    let (created, checked) = faulty_disk_runs(100);
    created.ok().stdout_has("committed 1000\n");
    assert_eq!(dropped(&created), 1, "{}", created.stderr);
    created.stderr_has("[block-fault] dropped write #100 sector 293 count 16");
    checked.ok().stdout_has("integrity_check: ok\nrows 944\nlast 1000\ngaps 56\nintegrity_problems 0\n");
}

/// Other rates do other damage, or none: every 5th write leaves a database
/// SQLite reports as malformed, and every 7th (18 writes) happens to drop only
/// writes a later sync sends again. In the run that wrote them SQLite notices
/// nothing: every write was acknowledged.
#[test]
fn sqlite_on_disks_that_drop_more_sees_some_damage_and_not_all() {
    let (created, checked) = faulty_disk_runs(5);
    created.ok().stdout_has("committed 1000\n").stdout_has("integrity_check: ok\nrows 1000\n");
    assert_eq!(dropped(&created), 25);
    checked.code(1).stdout_has("error: integrity_check: database disk image is malformed (11)");
    // The same damage every time: the faults hit the same writes.
    let (_, again) = faulty_disk_runs(5);
    assert_eq!(checked.stdout, again.stdout, "two runs of the faulty disk differ");
    let (created, checked) = faulty_disk_runs(7);
    created.ok().stdout_has("committed 1000\n");
    assert_eq!(dropped(&created), 18);
    checked.ok().stdout_has("integrity_check: ok\nrows 1000\nlast 1000\ngaps 0\nintegrity_problems 0\n");
}

/// One seed of examples/sqlite-power-cut with synchronous `mode`: the last
/// `committed K` the first boot printed before the cut, and what the boot
/// after it found: `Ok(rows)` or `Err(the error line)`; `None` when the power
/// was never cut (the run ended first).
fn power_cut(dir: &Path, mode: &str, seed: u32) -> Option<(u64, Result<u64, String>)> {
    set_args(dir, &format!(r#"["/data/test.db", "create", "300", "50", "{mode}"]"#));
    let r = weft(&["run", "--seed", &seed.to_string(), dir.to_str().unwrap()]);
    if !r.stderr.contains("power cut") {
        r.ok();
        return None;
    }
    let committed = values(&r.stdout, "committed ").last().map_or(0, |k| k.parse().unwrap());
    let after = match r.stdout.lines().find(|l| l.starts_with("error: ")) {
        Some(e) => Err(e.to_string()),
        // A trap (an unusable FAT), or integrity problems (exit 3 → 1).
        None if r.code != 0 => Err(format!("exit {}: {}", r.code, r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or(""))),
        None => {
            assert!(r.stdout.contains("integrity_check: ok\n"), "seed {seed} ({mode}):\n{}", r.stdout);
            Ok(values(&r.stdout, "rows ").last().expect("a rows line").parse().unwrap())
        }
    };
    Some((committed, after))
}

/// synchronous=FULL under 20 power cuts, each somewhere in the run (the
/// example draws the cut from the ~121 block operations a whole run makes):
/// every transaction whose COMMIT returned is there after the restart (and
/// at most the one in flight besides), with integrity_check `ok`. The `fat:`
/// disk makes that true: a file's entry never names clusters the device may
/// not have, and the removal of the journal — SQLite's commit — is durable
/// when it returns.
#[test]
fn sqlite_full_keeps_every_committed_transaction_across_power_cuts() {
    let dir = sqlite_example("sqlite-power-cut");
    for seed in 0..20 {
        let (committed, after) = power_cut(&dir, "full", seed).unwrap_or_else(|| panic!("seed {seed}: no power cut"));
        let rows = after.unwrap_or_else(|e| panic!("seed {seed}: {committed} rows committed, then {e}"));
        assert!(rows == committed || rows == committed + 50, "seed {seed}: {committed} rows committed, {rows} after the power cut");
    }
}

/// synchronous=OFF under power cuts drawn the same way from the ~71 block
/// operations its run makes: SQLite never syncs, but the `fat:` disk makes
/// each journal removal durable, which syncs what came before it. The
/// outcome of each seed is printed; what is asserted is the count, which the
/// simulation makes the same every run.
#[test]
fn sqlite_off_under_power_cuts_is_reported() {
    let dir = sqlite_example("sqlite-power-cut");
    let m = std::fs::read_to_string(dir.join("weft.toml")).unwrap();
    assert!(m.contains("power-cut-after = [1, 121]"), "the example's cut range");
    std::fs::write(dir.join("weft.toml"), m.replace("power-cut-after = [1, 121]", "power-cut-after = [1, 71]")).unwrap();
    let (mut kept, mut lost, mut uncut) = (0, 0, 0);
    for seed in 0..20 {
        let outcome = power_cut(&dir, "off", seed);
        eprintln!("synchronous=OFF seed {seed}: {outcome:?}");
        match outcome {
            None => uncut += 1,
            Some((committed, Ok(rows))) if rows >= committed => kept += 1,
            Some(_) => lost += 1,
        }
    }
    eprintln!("synchronous=OFF: {kept} seeds kept every committed row, {lost} did not, {uncut} ended before the cut");
    assert_eq!((kept, lost, uncut), (15, 5, 0), "seeds that kept / lost committed rows / were not cut under synchronous=OFF");
}

/// A `fat:` disk that is not FAT (here: what a power cut under
/// synchronous=OFF can leave) is an I/O error SQLite reports, not a trap: the
/// preview1 adapter C programs are linked with asks each preopen's type first.
#[test]
fn sqlite_on_a_disk_that_is_not_fat_gets_an_error_it_can_report() {
    let dir = sqlite_example("sqlite");
    let garbage: Vec<u8> = (0..16u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1).collect();
    std::fs::write(dir.join("disk.img"), &garbage).unwrap();
    let r = run_with(&dir, r#"["/data/test.db", "check"]"#);
    r.code(1).stdout_has("error: open: unable to open database file (14)").stderr_has("not a usable FAT file system");
    assert!(std::fs::read(dir.join("disk.img")).unwrap() == garbage, "a disk that is not FAT is never written");
}
