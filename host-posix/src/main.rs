//! `weft`: run WebAssembly-component unikernels as Linux processes.

use weft::{boot, run};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
    /// Validate the manifest and print the resolved plan.
    Check { manifest: PathBuf },
    /// Print the wiring as Graphviz DOT.
    Graph { manifest: PathBuf },
    /// Print the event history kept by a `git` log device (no git needed).
    Log {
        manifest: PathBuf,
        /// Only this topic (`arp`, `block-fault` …); all topics when omitted.
        topic: Option<String>,
    },
    /// Build a bundle: the plan plus every component precompiled for a target.
    Build {
        manifest: PathBuf,
        /// `baremetal` (the weft kernel under QEMU, native code) or
        /// `baremetal-pulley` (the kernel built with `--features pulley`).
        #[arg(long, value_parser = ["baremetal", "baremetal-pulley"])]
        target: String,
        /// Where to write the bundle.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Boot a manifest or bundle as a bare-metal unikernel under QEMU.
    Boot {
        /// A manifest (or its folder) or a bundle from `weft build`.
        input: PathBuf,
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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RUST_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => match e.downcast_ref::<run::Exit>() {
            Some(x) => {
                eprintln!("{}", x.message);
                ExitCode::from(x.code)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Build { manifest, target, output } => {
            let t = if target == "baremetal-pulley" {
                weft_runtime::engine::Target::BareMetalPulley
            } else {
                weft_runtime::engine::Target::BareMetal
            };
            let bytes = boot::build_for(&manifest, t)?;
            std::fs::write(&output, &bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", output.display()))?;
            return Ok(0);
        }
        Command::Boot { input, machine, kvm, qemu_timeout, pulley } => {
            let opts = boot::BootOptions { machine, kvm, pulley, qemu_timeout: qemu_timeout.map(std::time::Duration::from_secs) };
            return boot::boot(&input, &opts);
        }
        _ => {}
    }
    let engine = run::engine()?;
    match command {
        Command::Run { manifest } => {
            let (plan, dir) = run::plan(&run::manifest_path(&manifest), &engine)?;
            run::run(&plan, &dir, &engine)
        }
        Command::Check { manifest } => {
            let (plan, dir) = run::plan(&run::manifest_path(&manifest), &engine)?;
            let exists = |p: &std::path::Path| {
                p.strip_prefix(&plan.manifest.dir).is_ok_and(|rel| dir.exists(rel))
            };
            print!("{}", plan.describe(&exists));
            Ok(0)
        }
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
        Command::Graph { manifest } => {
            let (plan, _) = run::plan(&run::manifest_path(&manifest), &engine)?;
            print!("{}", plan.graph());
            Ok(0)
        }
        Command::Build { .. } | Command::Boot { .. } => unreachable!("dispatched above"),
    }
}
