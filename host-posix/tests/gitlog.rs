//! The git-backed event log: events become commits in a real git repository,
//! readable with `weft log` and with git itself, valid even after a kill.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

fn git(repo: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new("git").arg("-C").arg(repo).args(args).output().expect("git is installed by setup.sh");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FAULTY: &str = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"250\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { drop-every = 100 } }]\n\n[log]\nbackend = \"git\"\npath = \"events.git\"\n";

#[test]
fn fault_events_become_commits() {
    let dir = manifest("gitlog", FAULTY);
    run(&dir).code(1).stdout_has("wrote 250 verified 248 lost 2 corrupt 0");
    let repo = dir.join("events.git");
    git(&repo, &["fsck", "--strict"]);
    let events = git(&repo, &["show", "block-fault:events"]);
    assert_eq!(events.lines().filter(|l| l.starts_with("dropped write #")).count(), 2, "{events}");
    weft(&["log", dir.to_str().unwrap(), "block-fault"])
        .ok()
        .stdout_has("== topic block-fault")
        .stdout_has("dropped write #200 sector 199");
    // A second run continues the same history.
    run(&dir).code(1);
    let events = git(&repo, &["show", "block-fault:events"]);
    assert_eq!(events.lines().count(), 4, "{events}");
    assert_eq!(git(&repo, &["rev-list", "--count", "block-fault"]).trim(), "2");
}

#[test]
fn weft_log_without_a_git_log_says_how_to_add_one() {
    let dir = example("hello");
    weft(&["log", dir.to_str().unwrap()]).code(1).stderr_has("has no git log; add:\n  [log]\n  backend = \"git\"");
}

#[test]
fn a_killed_run_leaves_a_valid_repository() {
    // 10 ms per write: the run commits batches as it goes; kill it mid-way.
    let m = FAULTY
        .replace("[\"fill\", \"250\"]", "[\"fill\", \"100000\"]")
        .replace("drop-every = 100", "drop-every = 2, latency = \"1ms\"")
        .replace("size = \"1MiB\"", "size = \"64MiB\"");
    let dir = manifest("gitlog-kill", &m);
    let mut child = weft_cmd(&["run", dir.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let repo = dir.join("events.git");
    git(&repo, &["fsck", "--strict"]);
    let events = git(&repo, &["show", "block-fault:events"]);
    let n = events.lines().count();
    assert!(n >= 32, "at least one batch committed before the kill: {n}");
    // Every committed event is whole: the numbering has no gaps.
    for (i, line) in events.lines().enumerate() {
        assert!(line.starts_with(&format!("dropped write #{} ", 2 * (i + 1))), "{line}");
    }
}
