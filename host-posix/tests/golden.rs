//! Golden tests of `weft check` and `weft graph` (MirageOS's cram tests of
//! `mirage configure`): the resolved plan of every example, pinned.
//! Component hashes and sizes change with every guest build, so they are
//! masked; everything else must match `tests/golden/<example>.{check,dot}`.
//! Regenerate with `WEFT_BLESS=1 cargo test --test golden`.

mod common;
use common::*;

const EXAMPLES: &[&str] = &["hello", "kvstore", "faulty-disk", "slow-disk", "hung-disk", "time-warp"];

fn mask(s: &str) -> String {
    s.lines()
        .map(|l| match l.find("sha256:") {
            Some(i) => {
                let hash = &l[i + 7..i + 23];
                assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{l}");
                let rest = l[i + 23..].trim_start();
                let from = rest.split_once("  ").map_or(rest, |(_, f)| f.trim_start());
                format!("{}sha256:<hash>  <size>  {from}", &l[..i])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn golden(example: &str, cmd: &str, ext: &str) {
    let dir = common::example(example);
    let out = weft_cmd(&[cmd, "weft.toml"]).current_dir(&dir).output().unwrap();
    let r = output(out);
    r.ok();
    let got = mask(&r.stdout);
    let path = root().join("host-posix/tests/golden").join(format!("{example}.{ext}"));
    if std::env::var_os("WEFT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (WEFT_BLESS=1 writes it)", path.display()));
    assert_eq!(got, want, "`weft {cmd}` of examples/{example} changed; if intended, rerun with WEFT_BLESS=1");
}

#[test]
fn check_output_of_every_example() {
    for e in EXAMPLES {
        golden(e, "check", "check");
    }
}

#[test]
fn graph_output_of_every_example() {
    for e in EXAMPLES {
        golden(e, "graph", "dot");
    }
}

#[test]
fn check_names_what_a_run_will_create() {
    let dir = common::example("kvstore");
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("creates   disk.img (16 MiB, zero-filled)");
    run(&dir).ok();
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("creates   nothing");
}
