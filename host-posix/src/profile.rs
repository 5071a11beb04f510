//! `weft run --profile FILE` and `--flamegraph FILE.svg`: a sampling
//! profiler over the app and every filter. A ticker thread advances the
//! engine's epoch every [`INTERVAL`]; each time a guest passes an epoch
//! check, the store's epoch callback captures the wasm stack — every
//! component's frames, since they share one store — and adds it to a
//! Firefox Profiler profile (`fxprof-processed-profile`, one category, so
//! one colour, per component) and to folded stacks that `inferno` draws as
//! a flame graph. Frames are named `component!function`. (wasmtime's own
//! `GuestProfiler` takes one component, and weft runs several in a store.)
//!
//! The callback replaces the store's epoch trap, so it also keeps
//! `limits.timeout`: past the deadline it interrupts the guest, which is
//! reported as the usual timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use fxprof_processed_profile::{
    CategoryColor, CategoryHandle, CpuDelta, Frame, FrameFlags, FrameInfo, Profile, ReferenceTimestamp, SamplingInterval,
    ThreadHandle, Timestamp,
};
use wasmtime::{Store, UpdateDeadline, WasmBacktrace};
use weft_runtime::link::Host;
use weft_runtime::plan::Plan;

/// How often the stack is sampled.
pub const INTERVAL: Duration = Duration::from_millis(1);

/// Where `--profile` and `--flamegraph` write.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    pub profile: Option<PathBuf>,
    pub flamegraph: Option<PathBuf>,
}

impl Outputs {
    pub fn any(&self) -> bool {
        self.profile.is_some() || self.flamegraph.is_some()
    }
}

/// Samples of one run (all its boots).
pub struct Profiler {
    profile: Profile,
    thread: ThreadHandle,
    /// Each component's category, by name (created as frames meet them).
    categories: HashMap<String, CategoryHandle>,
    /// Folded stacks (`a;b;c`, root first) and how often each was seen.
    folded: HashMap<String, u64>,
    /// Each component's code (its image, which holds its core modules) and
    /// its name.
    owners: Vec<(std::ops::Range<usize>, String)>,
    start: Instant,
    last: Instant,
    samples: u64,
}

/// Colours for components, in link order (the app first).
const COLORS: [CategoryColor; 7] = [
    CategoryColor::Blue,
    CategoryColor::Orange,
    CategoryColor::Green,
    CategoryColor::Purple,
    CategoryColor::Yellow,
    CategoryColor::Red,
    CategoryColor::LightBlue,
];

impl Profiler {
    /// A profiler for the plan's components (the app, its filters, the
    /// stack).
    pub fn new(plan: &Plan) -> Profiler {
        let owners = plan
            .components()
            .map(|c| {
                let r = c.component.image_range();
                (r.start as usize..r.end as usize, c.name.clone())
            })
            .collect();
        let mut profile = Profile::new(&plan.app.name, ReferenceTimestamp::from_system_time(std::time::SystemTime::now()), SamplingInterval::from_nanos(INTERVAL.as_nanos() as u64));
        profile.set_product(&format!("weft run {}", plan.manifest.path.display()));
        let process = profile.add_process(&plan.app.name, std::process::id(), Timestamp::from_nanos_since_reference(0));
        let thread = profile.add_thread(process, std::process::id(), Timestamp::from_nanos_since_reference(0), true);
        profile.set_thread_name(thread, "guests");
        let now = Instant::now();
        Profiler { profile, thread, categories: HashMap::new(), folded: HashMap::new(), owners, start: now, last: now, samples: 0 }
    }

    /// Installs the sampler on a boot's store (`session::run_with`), keeping
    /// the run's timeout (`timeout_ns` of wall time, from now) when it has one.
    pub fn install(this: &Arc<Mutex<Profiler>>, store: &mut Store<Host>, timeout_ns: Option<u64>) {
        let deadline = timeout_ns.map(|t| Instant::now() + Duration::from_nanos(t));
        let this = this.clone();
        store.epoch_deadline_callback(move |cx| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            this.lock().expect("one store samples").sample(cx);
            Ok(UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);
    }

    fn sample(&mut self, cx: impl wasmtime::AsContext<Data = Host>) {
        let now = Instant::now();
        let delta = now - self.last;
        self.last = now;
        self.samples += 1;
        let trace = WasmBacktrace::capture(&cx);
        // Frames come innermost first; both formats start at the root.
        let frames: Vec<(String, String)> = trace.frames().iter().rev().map(|f| (self.owner(f.module().image_range().start as usize), name(f))).collect();
        let mut folded = String::new();
        let mut infos = Vec::with_capacity(frames.len());
        for (owner, func) in frames {
            let n = self.categories.len();
            let label = format!("{owner}!{func}");
            let category = *self.categories.entry(owner).or_insert_with_key(|owner| self.profile.add_category(owner, COLORS[n % COLORS.len()]));
            let interned = self.profile.intern_string(&label);
            infos.push(FrameInfo { frame: Frame::Label(interned), category_pair: category.into(), flags: FrameFlags::empty() });
            if !folded.is_empty() {
                folded.push(';');
            }
            // `;` separates frames in the folded format.
            folded.push_str(&label.replace(';', ","));
        }
        let stack = self.profile.intern_stack_frames(self.thread, infos.into_iter());
        let at = Timestamp::from_nanos_since_reference((now - self.start).as_nanos() as u64);
        self.profile.add_sample(self.thread, at, stack, CpuDelta::from(delta), 1);
        if !folded.is_empty() {
            *self.folded.entry(folded).or_default() += 1;
        }
    }

    /// The component whose image holds the module starting at `start`.
    fn owner(&self, start: usize) -> String {
        self.owners.iter().find(|(r, _)| r.contains(&start)).map_or_else(|| "?".into(), |(_, n)| n.clone())
    }

    /// Writes what was asked for; says on stderr where it went.
    pub fn finish(self, out: &Outputs) -> Result<()> {
        if let Some(p) = &out.profile {
            let f = std::fs::File::create(p).with_context(|| format!("--profile: creating {}", p.display()))?;
            serde_json::to_writer(std::io::BufWriter::new(f), &self.profile).with_context(|| format!("--profile: writing {}", p.display()))?;
            eprintln!("weft: profile of {} samples written to {} (open it at https://profiler.firefox.com)", self.samples, p.display());
        }
        if let Some(p) = &out.flamegraph {
            write_flamegraph(&self.folded, p)?;
            eprintln!("weft: flame graph of {} samples written to {}", self.samples, p.display());
        }
        Ok(())
    }
}

/// A frame's function: its name-section name, demangled, without hashes
/// or crate disambiguators (`core[6d9e98711c484d2e]::fmt` is `core::fmt`).
fn name(f: &wasmtime::FrameInfo) -> String {
    match f.func_name() {
        Some(n) => crate::symbolize::demangle(n, true),
        None => format!("function[{}]", f.func_index()),
    }
}

/// Draws folded stacks as an SVG flame graph.
fn write_flamegraph(folded: &HashMap<String, u64>, path: &Path) -> Result<()> {
    let mut lines: Vec<String> = folded.iter().map(|(s, n)| format!("{s} {n}")).collect();
    lines.sort();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = "weft run".into();
    opts.count_name = "samples".into();
    let f = std::fs::File::create(path).with_context(|| format!("--flamegraph: creating {}", path.display()))?;
    if lines.is_empty() {
        // A run too short to be sampled still gets a (blank) picture.
        opts.subtitle = Some("no samples: the guests ran for less than one interval".into());
    }
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), std::io::BufWriter::new(f))
        .with_context(|| format!("--flamegraph: writing {}", path.display()))
}
