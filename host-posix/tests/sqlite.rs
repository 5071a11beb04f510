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

/// examples/sqlite-faulty-disk: `create` then `check` in a second boot,
/// both under `--sim`. In real time the outcome varies from run to run: FAT
/// stamps a file's directory entry with the wall clock in 2-second steps, so
/// how many writes a run makes, and so which ones are every 100th, depends
/// on when the seconds turn (seen here: 14 rows silently gone with
/// integrity_check `ok`, or the damage below). The virtual clock fixes that.
fn faulty_disk_runs() -> (Run, Run) {
    let dir = sqlite_example("sqlite-faulty-disk");
    let created = sim_with(&dir, r#"["/data/test.db", "create", "1000", "100"]"#);
    let checked = sim_with(&dir, r#"["/data/test.db", "check"]"#);
    (created, checked)
}

#[test]
fn sqlite_on_a_disk_that_drops_every_100th_write() {
    let (created, checked) = faulty_disk_runs();
    // In the run that wrote them SQLite notices nothing: every write was
    // acknowledged, and the pages it reads back come from its own cache and
    // the FAT layer's, not from the disk.
    created.ok();
    let dropped = created.stderr.matches("[block-fault] dropped write #").count();
    assert_eq!(dropped, 43, "dropped writes\n{}", created.stderr);
    created.stdout_has("committed 1000\n").stdout_has("integrity_check: ok\nrows 1000\n");
    // Booted again on what the disk really holds, integrity_check finds the
    // damage (exit 3, which WASI's exit(err) makes 1)…
    checked.code(1);
    let problems: usize = values(&checked.stdout, "integrity_problems ")
        .first()
        .unwrap_or_else(|| panic!("no integrity_problems line\n{}", checked.stdout))
        .parse()
        .unwrap();
    assert_eq!(problems, 16, "{}", checked.stdout);
    // Parts of a leaf page of the table never reached the disk: cells read
    // back as rowid 0 out of order, 15 rows have no value — yet the count
    // of rows and their ids look whole: without integrity_check, nothing
    // would tell.
    checked
        .stdout_has("integrity_check: *** in database main ***\n")
        .stdout_has("integrity_check: Tree 2 page 18 cell 29: Rowid 902 out of order\n")
        .stdout_has("rows 1000\nlast 1000\ngaps 0\n");
    assert_eq!(values(&checked.stdout, "integrity_check: NULL value in t.v").len(), 15, "{}", checked.stdout);
    // …and the same damage every time: the faults hit the same writes.
    let (_, again) = faulty_disk_runs();
    assert_eq!(checked.stdout, again.stdout, "two runs of the faulty disk differ");
}
