//! The one engine configuration both hosts use. An artifact precompiled by
//! `weft` is only loadable by an engine built from the same settings, so
//! every setting that changes generated code lives here: `weft build`
//! compiles with `config(Target::BareMetal)` and the kernel loads with the
//! same call (it adds only hooks that do not change code: where code memory
//! comes from and how CPU features are probed).

use wasmtime::Config;

/// Where compiled code will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// This Linux process (`weft run`).
    Native,
    /// The `host-baremetal` kernel on x86_64 (`weft boot`), native code.
    BareMetal,
    /// The `host-baremetal` kernel built with its `pulley` feature: Pulley
    /// bytecode, interpreted (slower, but needs no executable memory).
    BareMetalPulley,
}

impl Target {
    /// Stable name, written into bundles.
    pub fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::BareMetal => "x86_64-unknown-none",
            Target::BareMetalPulley => "pulley64",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        [Target::Native, Target::BareMetal, Target::BareMetalPulley].into_iter().find(|t| t.name() == name)
    }
}

/// Bumped whenever a setting below changes for a bare-metal target, or the
/// bundle's layout changes (2: a file disk's `preallocate`), so a bundle built
/// by an older `weft` is refused with a clear message before wasmtime's own
/// (less friendly) compatibility check or a misread field.
pub const CONFIG_VERSION: u32 = 2;

/// The x86 features bare-metal code is compiled for: what `-cpu max` offers
/// under TCG (qemu64 lacks ssse3). The kernel checks them with cpuid.
pub const BAREMETAL_X86_FLAGS: [&str; 4] = ["has_sse3", "has_ssse3", "has_sse41", "has_sse42"];

/// How code is generated beyond its target. Each setting is part of the
/// engine's compatibility hash, so each combination is cached apart and a
/// debug or simulation build never disturbs the normal one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Codegen {
    /// A simulation: the settings wasmtime's determinism notes ask for
    /// (canonical NaNs, deterministic relaxed SIMD) and fuel, so a guest that
    /// never returns is stopped after the same instruction on every run and
    /// host.
    pub deterministic: bool,
    /// `--debug`: native DWARF for every component, registered with the GDB
    /// JIT interface, and no optimisation, so a debugger can break by
    /// function or `file:line` and print arguments.
    pub debug: bool,
    /// No DWARF symbolization of captured stacks: wasmtime builds an
    /// addr2line context for every frame it captures. For runs that capture
    /// many: `--profile`/`--flamegraph` (a thousand samples a second; 3×
    /// slower symbolized) and `weft explore` (thousands of runs, each power
    /// cut or trap a captured stack; 5× fewer runs a second symbolized). A
    /// trap then names functions without `file:line`.
    pub unsymbolized: bool,
}

impl Codegen {
    pub fn sim(deterministic: bool) -> Codegen {
        Codegen { deterministic, ..Codegen::default() }
    }
}

/// Engine settings for `target`.
pub fn config(target: Target) -> Config {
    config_with(target, Codegen::default())
}

/// Engine settings for `target`, generating code as `codegen` says.
pub fn config_with(target: Target, codegen: Codegen) -> Config {
    let mut c = Config::new();
    // Set either way: the default reads WASMTIME_BACKTRACE_DETAILS, and code
    // cached one way would be refused by an engine set the other. On Linux a
    // trap's frames get `file:line` from the component's DWARF; the kernel
    // has no addr2line and reports raw frames, which `weft boot` symbolizes.
    c.wasm_backtrace_details(match target {
        Target::Native if !codegen.unsymbolized => wasmtime::WasmBacktraceDetails::Enable,
        _ => wasmtime::WasmBacktraceDetails::Disable,
    });
    if codegen.debug {
        c.debug_info(true);
        #[cfg(feature = "std")]
        c.cranelift_opt_level(wasmtime::OptLevel::None);
    }
    if codegen.deterministic {
        // A code-generation setting: only the compiling side has it.
        #[cfg(feature = "std")]
        c.cranelift_nan_canonicalization(true);
        c.relaxed_simd_deterministic(true);
        c.consume_fuel(true);
    }
    // `component-model-async` is off at compile time; the rest of the
    // component model is what weft is made of.
    c.wasm_component_model(true);
    // The run's `timeout` interrupts guests that never return (on bare
    // metal the timer interrupt advances the epoch).
    c.epoch_interruption(true);
    match target {
        Target::Native => {}
        Target::BareMetal | Target::BareMetalPulley => {
            // No virtual memory tricks in the kernel: bounds checks are
            // explicit, memories are plain heap allocations.
            c.signals_based_traps(false);
            c.memory_init_cow(false);
            c.memory_reservation(0);
            c.memory_guard_size(0);
            c.memory_reservation_for_growth(1 << 20);
            // SAFETY: the kernel is soft-float; wasm code uses SSE. Host
            // calls pass no floats (weft's WIT has none).
            unsafe {
                c.x86_float_abi_ok(true);
            }
            // Pulley must be named on both sides (the kernel's default
            // target is its own x86_64); native code is the kernel's default.
            if target == Target::BareMetalPulley {
                c.target(target.name()).expect("wasmtime knows pulley64");
            }
            #[cfg(feature = "std")]
            {
                if target == Target::BareMetal {
                    c.target(target.name()).expect("a target cranelift knows");
                    for flag in BAREMETAL_X86_FLAGS {
                        // SAFETY: the kernel refuses code whose flags its CPU
                        // lacks (`Config::detect_host_feature`).
                        unsafe {
                            c.cranelift_flag_enable(flag);
                        }
                    }
                }
            }
        }
    }
    c
}
