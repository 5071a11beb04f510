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

/// `weft graph --format svg` draws the wiring itself (layout-rs): every box
/// of the DOT is in the picture, with both lines of its label. The README's
/// picture of lossy-net is this output (docs/lossy-net.svg).
#[test]
fn graph_draws_svg_without_graphviz() {
    let dir = common::example("lossy-net");
    let r = weft(&["graph", "--format", "svg", dir.to_str().unwrap()]);
    r.ok().stdout_has("<svg ").stdout_has("</svg>");
    for label in ["httpd (app)", "net-fault", "net-pcap", "service filter 1", "tcpip", "tap &quot;tap0&quot;"] {
        assert!(r.stdout.contains(&format!(">{label}</tspan>")), "{label} is drawn:\n{}", r.stdout);
    }
    let boxes = r.stdout.matches("<tspan").count();
    let dot = weft(&["graph", dir.to_str().unwrap()]);
    let lines: usize = dot.stdout.lines().filter(|l| l.contains("label=") && !l.contains("->")).map(|l| l.matches("\\n").count() + 1).sum();
    assert!(boxes >= lines, "every label line of the DOT is drawn ({boxes} < {lines})");
    // layout-rs places equal-rank boxes in no fixed order, so the picture in
    // docs/ is compared by what it draws.
    let shipped = std::fs::read_to_string(common::root().join("docs/lossy-net.svg")).unwrap();
    let drawn = |svg: &str| {
        let mut t: Vec<String> = svg.split("<tspan").skip(1).filter_map(|s| Some(s.split_once('>')?.1.split('<').next()?.to_string())).collect();
        t.sort();
        t
    };
    assert_eq!(drawn(&shipped), drawn(&r.stdout), "docs/lossy-net.svg is `weft graph --format svg examples/lossy-net`; regenerate it");
}
