//! Manifests and cluster manifests: parsing and planning, the path of
//! `weft check`. Any text ends as a plan whose description and graph render,
//! or as a list of problems; never a panic, never a file read outside the
//! manifest's folder.
//!
//! The manifest sits in an empty folder of its own, so component and disk
//! paths in the input resolve to nothing (a "cannot read" problem) unless they
//! name shipped components, which compile once into the fuzzer's AOT cache and
//! load from it afterwards.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use weft_runtime::cluster::{self, Cluster};
use weft_runtime::manifest::{Manifest, SimOverride};
use weft_runtime::sim::{self, Draw};

struct Setup {
    dir: PathBuf,
    engine: wasmtime::Engine,
    sim_engine: wasmtime::Engine,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let base = std::env::temp_dir().join("weft-fuzz-manifest");
        let dir = base.join("app");
        std::fs::create_dir_all(&dir).unwrap();
        // An AOT cache of its own unless given one (the tests share theirs,
        // warm by then).
        // SAFETY: set once, before the fuzzer runs anything on other threads.
        unsafe {
            if std::env::var_os("WEFT_CACHE_DIR").is_none() {
                std::env::set_var("WEFT_CACHE_DIR", base.join("cache"));
            }
            std::env::set_var("WEFT_CACHE_QUIET", "1");
        }
        let engine = weft::run::engine_for(weft_runtime::engine::Codegen::default()).unwrap();
        let sim_engine = weft::run::engine_for(weft_runtime::engine::Codegen::sim(true)).unwrap();
        Setup { dir, engine, sim_engine }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let s = setup();
    let path = s.dir.join("weft.toml");
    if cluster::is_cluster(src) {
        if let Ok(c) = Cluster::parse(&path, src) {
            let _ = c.node_manifests();
        }
        return;
    }
    // The command line's `--seed` joins the text: half the inputs take one.
    let over = SimOverride { enable: data.len() % 3 == 0, seed: (data.len() % 2 == 0).then_some(data.len() as u64) };
    let Ok(m) = Manifest::parse_with(&path, src, over) else { return };
    let engine = if m.sim.is_some() { &s.sim_engine } else { &s.engine };
    let Ok((plan, dir)) = weft::run::plan_manifest(m, engine) else { return };
    let exists = |p: &std::path::Path| p.strip_prefix(&plan.manifest.dir).is_ok_and(|rel| dir.exists(rel));
    let _ = plan.describe(&exists);
    let _ = plan.graph();
    if let Some(sim) = &plan.manifest.sim {
        let swarm: Vec<_> = plan.filter_specs_in_link_order().map(|f| f.map(|f| f.swarm.clone()).unwrap_or_default()).collect();
        for phase in [1, 2] {
            let _ = sim::configs(&plan.wiring, &Draw { seed: sim.seed, phase, swarm: &swarm, schedules: &[] });
        }
    }
});
