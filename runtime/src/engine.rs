//! The one engine configuration both hosts use. An artifact precompiled by
//! `weft` is only loadable by an engine built from the same settings, so
//! every setting that changes generated code lives here.

use wasmtime::Config;

/// Where compiled code will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// This Linux process (`weft run`).
    Native,
}

/// Engine settings for `target`.
pub fn config(target: Target) -> Config {
    let mut c = Config::new();
    // `component-model-async` is off at compile time; the rest of the
    // component model is what weft is made of.
    c.wasm_component_model(true);
    // The run's `timeout` interrupts guests that never return.
    c.epoch_interruption(true);
    match target {
        Target::Native => {}
    }
    c
}
