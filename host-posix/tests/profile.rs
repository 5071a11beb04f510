//! `weft run --profile` and `--flamegraph`: the samples name the app's hot
//! function and each filter's frames by component, the profile is one the
//! Firefox Profiler reads, and the timeout still holds while sampling.

mod common;

use common::*;
use std::path::Path;

fn misbehave(name: &str, args: &str, limits: &str) -> std::path::PathBuf {
    let dir = manifest(name, &format!("[app]\ncomponent = \"misbehave.wasm\"\nargs = {args}\n\n[limits]\n{limits}\n"));
    test_component(&dir, "misbehave", "misbehave.wasm");
    dir
}

/// The flame graph's frames: (`component!function`, samples).
fn frames(svg: &Path) -> Vec<(String, u64)> {
    let svg = std::fs::read_to_string(svg).unwrap();
    svg.split("<title>")
        .skip(1)
        .filter_map(|t| {
            let t = &t[..t.find("</title>")?];
            let (name, rest) = t.rsplit_once(" (")?;
            let n = rest.split(' ').next()?.replace(',', "").parse().ok()?;
            Some((name.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), n))
        })
        .collect()
}

#[test]
fn the_hot_function_of_the_app_is_named_in_the_profile_and_the_flame_graph() {
    // `count_to` spins for most of the run (~0.3 s).
    let dir = misbehave("profile-hot", r#"["count", "300000000"]"#, "");
    let (json, svg) = (dir.join("run.json"), dir.join("run.svg"));
    let r = weft(&["run", "--profile", json.to_str().unwrap(), "--flamegraph", svg.to_str().unwrap(), dir.to_str().unwrap()]);
    r.ok().stdout_has("counted 300000000").stderr_has("weft: profile of ").stderr_has("weft: flame graph of ");

    let frames = frames(&svg);
    let all = frames.iter().find(|(n, _)| n == "all").expect("the root frame").1;
    assert!(all >= 50, "too few samples for ~0.3 s at 1 kHz: {all}");
    let hot = frames.iter().find(|(n, _)| n == "misbehave!misbehave::count_to").unwrap_or_else(|| panic!("{frames:?}")).1;
    assert!(hot * 10 >= all * 8, "count_to has {hot} of {all} samples");

    // The Firefox Profiler's processed format: the app's category and the
    // function's name among the profile's strings.
    let profile: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let categories: Vec<&str> = profile["meta"]["categories"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(categories.contains(&"misbehave"), "{categories:?}");
    assert!(profile.to_string().contains("misbehave!misbehave::count_to"));
    let samples = profile["threads"][0]["samples"]["length"].as_u64().unwrap();
    assert!(samples >= 50, "{samples} samples");
}

#[test]
fn a_filter_is_named_by_component_in_the_flame_graph() {
    let dir = manifest(
        "profile-filter",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"4000\"]\n\n\
         [devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"8MiB\"\n\
         filters = [{ component = \"block-trace\" }]\n",
    );
    let svg = dir.join("run.svg");
    let r = weft(&["run", "--flamegraph", svg.to_str().unwrap(), dir.to_str().unwrap()]);
    r.ok();
    let frames = frames(&svg);
    assert!(frames.iter().any(|(n, _)| n.starts_with("kvstore!")), "{frames:?}");
    assert!(frames.iter().any(|(n, _)| n.starts_with("block-trace!")), "{frames:?}");
    // Every frame is named by its component.
    for (n, _) in &frames {
        assert!(n == "all" || n.starts_with("kvstore!") || n.starts_with("block-trace!"), "{n}");
    }
}

#[test]
fn the_timeout_holds_while_sampling() {
    let dir = misbehave("profile-spin", r#"["spin"]"#, "timeout = \"300ms\"");
    let svg = dir.join("run.svg");
    let t = std::time::Instant::now();
    weft(&["run", "--flamegraph", svg.to_str().unwrap(), dir.to_str().unwrap()])
        .code(124)
        .stderr_has("error: misbehave (app) did not finish within the timeout (300ms");
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
    // What was sampled until then is kept.
    assert!(frames(&svg).iter().any(|(n, _)| n == "misbehave!run"), "{:?}", frames(&svg));
}
