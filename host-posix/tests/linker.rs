//! The linker in-process: behaviour that the CLI tests cannot reach.

mod common;
use common::*;

use wasmtime::Store;
use weft::run;
use weft_runtime::link::{Host, Limits, Unikernel};

/// A run without a timeout must never be interrupted, however far the
/// engine's epoch has advanced (it is shared by every store of the engine).
#[test]
fn no_timeout_means_no_interrupt_at_any_epoch() {
    let dir = manifest("no-timeout", "[app]\ncomponent = \"misbehave.wasm\"\nargs = [\"ok\"]\n");
    test_component(&dir, "misbehave", "misbehave.wasm");
    let engine = run::engine().unwrap();
    for _ in 0..1000 {
        engine.increment_epoch();
    }
    let (plan, cap) = run::plan(&dir.join("weft.toml"), &engine).unwrap();
    let u = Unikernel::new(&engine, plan.wiring.clone(), &plan.app.component, &run::components(&plan)).unwrap();
    for _ in 0..3 {
        let limits = Limits { memory: 1 << 26, timeout: None, epoch_tick: 10_000_000, fuel: None };
        let mut store = Store::new(&engine, Host::new(run::leaves(&plan, &cap).unwrap().0, limits));
        let app = u.instantiate(&mut store).unwrap();
        for _ in 0..10 {
            engine.increment_epoch();
        }
        assert_eq!(app.run(&mut store, vec!["ok".into()]).unwrap(), 0);
    }
}
