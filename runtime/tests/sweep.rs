//! Every manifest key with a value of each wrong type, out-of-range numbers,
//! huge strings and odd Unicode: each is accepted or a clear problem naming
//! the file and the key — never a panic (issue 13). The same for cluster
//! manifests.

use std::path::Path;

use weft_runtime::cluster::Cluster;
use weft_runtime::manifest::Manifest;

/// A manifest using every section, one `KEY = VALUE` line per key; each is
/// replaced in turn.
const BASE: &[(&str, &[(&str, &str)])] = &[
    ("app", &[("component", "\"kvstore\""), ("args", "[\"fill\", \"10\"]")]),
    (
        "devices.storage",
        &[
            ("kind", "\"block\""),
            ("backend", "\"file\""),
            ("path", "\"disk.img\""),
            ("size", "\"16MiB\""),
            ("read-only", "false"),
            ("filters", "[{ component = \"block-fault\", config = { drop-every = 100, drop-chance = [0.0, 0.1] } }]"),
        ],
    ),
    ("devices.clock", &[("kind", "\"clock\""), ("backend", "\"virtual\""), ("filters", "[{ component = \"clock-skew\", config = { offset = \"-2h\" } }]")]),
    ("devices.random", &[("kind", "\"random\""), ("backend", "\"seeded\""), ("seed", "7")]),
    ("devices.net", &[("kind", "\"net\""), ("backend", "\"sim\""), ("filters", "[{ component = \"net-pcap\", capture = \"x.pcap\" }]")]),
    ("stack", &[("component", "\"tcpip\""), ("net", "\"net\""), ("ip", "\"10.0.0.2/24\"")]),
    ("wasi", &[("env", "{ A = \"b\" }"), ("cwd", "\"/data\""), ("preopens", "{ \"/data\" = \"memory\" }")]),
    ("components.kv", &[("component", "\"kv\""), ("config", "{ device = \"storage\" }")]),
    ("log", &[("backend", "\"git\""), ("path", "\"events.git\"")]),
    ("limits", &[("memory", "\"256MiB\""), ("timeout", "\"30s\"")]),
    (
        "sim",
        &[
            ("seed", "1"),
            ("start", "2026-01-01T00:00:00Z"),
            ("tick", "\"1us\""),
            ("fuel", "1_000_000"),
            ("expect-exit", "0"),
            ("restart", "{ args = [\"verify\"] }"),
        ],
    ),
];

/// Values of every TOML type and the awkward edges of each.
fn values() -> Vec<String> {
    let huge = format!("\"{}\"", "x".repeat(100_000));
    let mut v: Vec<String> = [
        "0", "-1", "1", "9223372036854775807", "-9223372036854775808", "0xff", "1e308", "-0.0", "nan", "inf", "true", "false",
        "\"\"", "\" \"", "\"../../etc/passwd\"", "\"/abs\"", "\"\\u202e\\u0000evil\"", "\"ünï©ødé ✓ 🦀\"", "\"900TiB\"",
        "\"99999999999999999999TiB\"", "\"-5s\"", "\"1h1h1h\"", "\"tap0\"", "\"host\"", "\"[1, 2]\"",
        "[]", "[1, 2]", "[\"a\", 1]", "[[1, 2]]", "[0.5, 0.1]", "[1, 99999999999]", "{}", "{ a = 1 }", "{ component = {} }",
        "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(huge);
    v
}

fn render(replace: Option<(usize, usize, &str)>, drop_section: Option<usize>) -> String {
    let mut out = String::new();
    for (si, (section, keys)) in BASE.iter().enumerate() {
        if drop_section == Some(si) {
            continue;
        }
        out.push_str(&format!("[{section}]\n"));
        for (ki, (k, v)) in keys.iter().enumerate() {
            let v = match replace {
                Some((s, key, with)) if s == si && key == ki => with,
                _ => v,
            };
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push('\n');
    }
    out
}

fn check(src: &str) {
    let path = Path::new("sweep/weft.toml");
    let result = std::panic::catch_unwind(|| Manifest::parse(path, src));
    match result {
        Err(_) => panic!("the manifest parser panicked on:\n{}", &src[..src.len().min(2000)]),
        Ok(Ok(_)) => {}
        Ok(Err(problems)) => {
            for p in &problems.0 {
                assert!(p.starts_with("sweep/weft.toml"), "a problem that names no file: {p}");
                assert!(p.len() < 4_000, "a problem message of {} bytes (an input echoed whole?): {}", p.len(), &p[..300]);
            }
        }
    }
}

#[test]
fn the_base_manifest_parses() {
    Manifest::parse(Path::new("sweep/weft.toml"), &render(None, None)).unwrap();
}

#[test]
fn every_key_with_every_kind_of_value_is_accepted_or_a_clear_problem() {
    let values = values();
    let mut n = 0;
    for (si, (_, keys)) in BASE.iter().enumerate() {
        for ki in 0..keys.len() {
            for v in &values {
                check(&render(Some((si, ki, v)), None));
                n += 1;
            }
        }
        // And each section missing, or replaced by a value.
        check(&render(None, Some(si)));
        for v in values.iter().take(12) {
            let src = render(None, Some(si)) + &format!("{} = {v}\n", BASE[si].0.split('.').next().unwrap());
            check(&src);
        }
    }
    assert!(n > 1000, "{n} manifests");
}

#[test]
fn garbage_text_is_a_clear_problem() {
    for src in ["", "\0\0\0", "[app", "[[app]]\ncomponent = 1", "a = \"\u{fffd}\"\n[app]\n", &"[app]\n".repeat(10_000), "= = =", "[app]\ncomponent = \"x\"\n[devices]\nstorage = 3\n"] {
        check(src);
    }
}

#[test]
fn cluster_manifests_with_every_kind_of_value_are_accepted_or_a_clear_problem() {
    let keys: &[(&str, &str)] = &[
        ("cluster", "seed"),
        ("cluster", "expect-exit"),
        ("nodes.a", "manifest"),
        ("links", "between"),
        ("links", "loss"),
        ("links", "delay"),
        ("links", "jitter"),
        ("links", "partitions"),
    ];
    for (section, key) in keys {
        for v in values() {
            let mut src = String::from("[cluster]\nseed = 1\n[nodes.a]\nmanifest = \"a.toml\"\n[nodes.b]\nmanifest = \"b.toml\"\n[[links]]\nbetween = [\"a.net\", \"b.net\"]\n");
            let line = format!("{key} = {v}\n");
            match *section {
                "links" => src.push_str(&line),
                s => src = src.replacen(&format!("[{s}]\n"), &format!("[{s}]\n{line}"), 1),
            }
            let path = Path::new("sweep/cluster.toml");
            let r = std::panic::catch_unwind(|| Cluster::parse(path, &src));
            match r {
                Err(_) => panic!("the cluster parser panicked on `{key} = {}`", &v[..v.len().min(80)]),
                Ok(Err(p)) => assert!(p.0.iter().all(|m| m.starts_with("sweep/cluster.toml")), "{p}"),
                Ok(Ok(_)) => {}
            }
        }
    }
}
