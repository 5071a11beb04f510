//! `weft`: run WebAssembly-component unikernels as Linux processes.

use weft::{boot, run, sim, trace};
use weft_runtime::manifest::SimOverride;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "weft", version, about = "Run WebAssembly-component unikernels", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the app; its console goes to stdout, the exit code is the app's.
    Run {
        /// The manifest (`weft.toml`) or the folder holding it.
        manifest: PathBuf,
        #[command(flatten)]
        sim: SimArgs,
        /// Write a trace of every device call to FILE (`weft replay FILE`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Run twice (a simulation) and compare the traces call by call.
        #[arg(long)]
        check_determinism: bool,
        /// At exit, print per device and hop: calls by operation, bytes,
        /// errors, faults injected, time (p50, p99).
        #[arg(long)]
        stats: bool,
        /// Compile every component with native debug info and without
        /// optimisation, for gdb or lldb (cached apart from normal builds).
        #[arg(long)]
        debug: bool,
        /// Sample the app's and filters' stacks every millisecond; write a
        /// profile the Firefox Profiler opens (profiler.firefox.com).
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
        /// Sample as --profile does; write an SVG flame graph.
        #[arg(long, value_name = "FILE.svg")]
        flamegraph: Option<PathBuf>,
    },
    /// Validate the manifest and print the resolved plan.
    Check {
        manifest: PathBuf,
        #[command(flatten)]
        sim: SimArgs,
    },
    /// Run a recorded trace again: every device answered from the trace.
    Replay {
        /// A trace from `weft run --record` or `weft explore`.
        file: PathBuf,
        /// Replay even when components changed since the recording (to see
        /// where the new build diverges).
        #[arg(long)]
        allow_changed: bool,
    },
    /// Read traces.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Run a simulation with many seeds; keep a trace of every failing run.
    Explore {
        manifest: PathBuf,
        /// How many seeds (from the manifest's `[sim] seed` on).
        #[arg(long, default_value_t = 100)]
        runs: u64,
        /// Runs at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where failing runs' traces go.
        #[arg(long, default_value = "weft-explore")]
        out: PathBuf,
        /// Shrink the first failure of each kind to its necessary faults.
        #[arg(long)]
        shrink: bool,
    },
    /// Reduce a failing simulation's trace to the fewest faults that still fail.
    Shrink {
        file: PathBuf,
        /// Where the shrunk manifest goes (default: beside the original).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the wiring: Graphviz DOT, or an SVG drawn without graphviz.
    Graph {
        manifest: PathBuf,
        /// `dot` (feed it to graphviz) or `svg` (drawn by weft itself).
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Print the event history kept by a `git` log device (no git needed).
    Log {
        manifest: PathBuf,
        /// Only this topic (`arp`, `block-fault` …); all topics when omitted.
        topic: Option<String>,
    },
    /// Create a project in ./NAME: an app or a filter, its WIT, a weft.toml
    /// that runs it and a build.sh (docs/new-component.md).
    New(weft::new::Args),
    /// Disk images from host folders: `weft image create --from DIR -o IMAGE
    /// [--size S] [--format fat|tar]`, `weft image ls|cat IMAGE PATH`.
    Image(weft::image::Args),
    /// Build a bundle (the plan plus every component precompiled for a
    /// target) or an OCI image (docs/oci.md).
    Build {
        manifest: PathBuf,
        #[command(flatten)]
        sim: SimArgs,
        /// `baremetal` (the weft kernel under QEMU, native code),
        /// `baremetal-pulley` (the kernel built with `--features pulley`) or
        /// `oci` (an OCI image-layout tar for `ctr images import`, skopeo,
        /// registries).
        #[arg(long, value_parser = ["baremetal", "baremetal-pulley", "oci"])]
        target: String,
        /// Where to write the bundle or image.
        #[arg(short, long)]
        output: PathBuf,
        /// `oci`: the image's name, `NAME[:TAG]` (default: the manifest's
        /// folder, `:latest`).
        #[arg(long, value_name = "NAME:TAG")]
        tag: Option<String>,
        /// `oci`: which components' precompiled code the image carries
        /// (`auto`: those of 1 MiB or more, whose compile takes seconds).
        #[arg(long, value_enum)]
        precompile: Option<weft::oci::Precompile>,
    },
    /// Boot a manifest or bundle as a bare-metal unikernel under QEMU.
    Boot {
        /// A manifest (or its folder) or a bundle from `weft build` (not
        /// with --replay).
        #[arg(required_unless_present = "replay")]
        input: Option<PathBuf>,
        #[command(flatten)]
        sim: SimArgs,
        /// Replay a trace (from `weft run --record`, on Linux or here) inside
        /// the kernel: every device call answered from it.
        #[arg(long, value_name = "FILE", conflicts_with = "input")]
        replay: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        machine: boot::Machine,
        /// Use KVM instead of TCG (nested KVM without EPT is slower than TCG).
        #[arg(long)]
        kvm: bool,
        /// Kill QEMU after this many seconds (default: the timeout limit + 30).
        #[arg(long)]
        qemu_timeout: Option<u64>,
        /// Interpret Pulley bytecode instead of running native code (a
        /// manifest is built for Pulley; needs the Pulley kernel).
        #[arg(long)]
        pulley: bool,
        /// At exit, print per device and hop: calls by operation, bytes,
        /// errors, faults injected, time (p50, p99), as counted in the kernel.
        #[arg(long)]
        stats: bool,
        /// Start QEMU's gdb stub on PORT (default 1234) and wait for gdb;
        /// components are compiled for the debugger (docs/debugging.md).
        #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "1234", require_equals = true)]
        gdb: Option<u16>,
    },
}

/// Simulation switches shared by `run` and `check`.
#[derive(clap::Args)]
struct SimArgs {
    /// Run as a deterministic simulation ([sim] with its defaults).
    #[arg(long)]
    sim: bool,
    /// The simulation's seed (implies --sim).
    #[arg(long)]
    seed: Option<u64>,
}

impl SimArgs {
    fn over(&self) -> SimOverride {
        SimOverride { enable: self.sim || self.seed.is_some(), seed: self.seed }
    }
}

/// What `weft graph` prints.
#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Svg,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Print a trace: call number, virtual time, device, operation, result.
    Show { file: PathBuf },
    /// The first call where two traces differ (exit 1), or that they do not.
    Diff { a: PathBuf, b: PathBuf },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RUST_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => ExitCode::from(weft::exit::report(&e)),
    }
}

/// A command line that cannot work: exit 2, nothing done.
fn usage(message: &str) -> anyhow::Error {
    anyhow::Error::new(run::Exit { code: weft::exit::INVALID, message: format!("error: {message}") })
}

/// Writes `bytes` to `path` through a temporary file beside it, so a failed
/// build never leaves half an image under the name asked for.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().ok_or_else(|| usage(&format!("-o {}: not a file name", path.display())))?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !folder.is_dir() {
        return Err(usage(&format!("-o {}: the folder {} does not exist; create it first", path.display(), folder.display())));
    }
    let tmp = path.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            usage(&format!("writing {}: {e}", path.display()))
        })
}

fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Build { manifest, sim, target, output, tag, precompile } => {
            if target == "oci" {
                if sim.sim || sim.seed.is_some() {
                    return Err(usage("--sim and --seed do not go into an image: the image holds the manifest as written; put a [sim] table in it"));
                }
                let opts = weft::oci::Options { tag, precompile: precompile.unwrap_or_default() };
                let image = weft::oci::build(&manifest, &opts)?;
                write_atomically(&output, &image.bytes)?;
                for note in &image.notes {
                    eprintln!("{note}");
                }
                eprintln!("wrote {} ({}, {})", output.display(), image.reference, weft_runtime::units::format_size_approx(image.bytes.len() as u64));
                return Ok(0);
            }
            if tag.is_some() || precompile.is_some() {
                return Err(usage("--tag and --precompile are options of --target oci"));
            }
            let t = if target == "baremetal-pulley" {
                weft_runtime::engine::Target::BareMetalPulley
            } else {
                weft_runtime::engine::Target::BareMetal
            };
            let bytes = boot::build_with(&manifest, t, sim.over())?;
            std::fs::write(&output, &bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", output.display()))?;
            return Ok(0);
        }
        Command::Boot { input, sim, replay, machine, kvm, qemu_timeout, pulley, stats, gdb } => {
            let input = input.or_else(|| replay.clone()).expect("clap requires one");
            let opts = boot::BootOptions {
                machine,
                kvm,
                pulley,
                qemu_timeout: qemu_timeout.map(std::time::Duration::from_secs),
                sim: sim.over(),
                replay,
                stats,
                gdb,
            };
            return boot::boot(&input, &opts);
        }
        Command::Run { manifest, sim, record, check_determinism, stats, debug, profile, flamegraph } => {
            let path = run::manifest_path(&manifest);
            if let Ok(src) = std::fs::read_to_string(&path) {
                if weft_runtime::cluster::is_cluster(&src) {
                    return weft::cluster::run(&path, &src, sim.seed, record.as_deref());
                }
            }
            if check_determinism {
                return sim::check_determinism(&path, sim.over());
            }
            if let Some(out) = record {
                return trace::record(&path, sim.over(), &out);
            }
            if debug {
                if let Some(hint) = run::debugger_hint(&manifest) {
                    eprintln!("{hint}");
                }
            }
            let observe = run::Observe { stats, profile: weft::profile::Outputs { profile, flamegraph } };
            let codegen = weft_runtime::engine::Codegen { debug, unsymbolized: observe.profile.any(), ..Default::default() };
            let (plan, dir, engine) = run::plan_for(&path, sim.over(), codegen)?;
            return run::run(&plan, &dir, &engine, &observe);
        }
        Command::Check { manifest, sim } => {
            let (plan, dir, _) = run::plan_with(&run::manifest_path(&manifest), sim.over())?;
            let exists = |p: &std::path::Path| {
                p.strip_prefix(&plan.manifest.dir).is_ok_and(|rel| dir.exists(rel))
            };
            print!("{}", plan.describe(&exists));
            return Ok(0);
        }
        Command::New(args) => return weft::new::run(&args, std::path::Path::new(".")),
        Command::Image(args) => return weft::image::run(&args),
        Command::Replay { file, allow_changed } => return trace::replay(&file, allow_changed),
        Command::Trace { command: TraceCommand::Show { file } } => {
            trace::show(&file, &mut std::io::stdout().lock())?;
            return Ok(0);
        }
        Command::Trace { command: TraceCommand::Diff { a, b } } => return trace::diff(&a, &b),
        Command::Explore { manifest, runs, jobs, out, shrink } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            return sim::explore(&run::manifest_path(&manifest), &sim::ExploreOptions { runs, jobs, out, shrink });
        }
        Command::Shrink { file, output } => return sim::shrink(&file, output.as_deref()),
        _ => {}
    }
    let engine = run::engine()?;
    match command {
        Command::Log { manifest, topic } => {
            let path = run::manifest_path(&manifest);
            let src = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read manifest {}: {e}", path.display()))?;
            let m = weft_runtime::manifest::Manifest::parse(&path, &src).map_err(|p| anyhow::anyhow!("{p}"))?;
            let Some(repo) = run::git_log_path(&m) else {
                anyhow::bail!("{} has no git log; add:\n  [log]\n  backend = \"git\"\n  path = \"events.git\"", path.display());
            };
            weft::gitlog::print_history(&repo, topic.as_deref(), &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Graph { manifest, format } => {
            let (plan, _) = run::plan(&run::manifest_path(&manifest), &engine)?;
            match format {
                GraphFormat::Dot => print!("{}", plan.graph()),
                GraphFormat::Svg => print!("{}", weft::graph::svg(&plan.graph())?),
            }
            Ok(0)
        }
        _ => unreachable!("dispatched above"),
    }
}
