//! A containerd of the test's own, from Debian's package (setup.sh): its
//! root, state, sockets and plugin folders under a scratch folder, in a
//! private mount namespace whose tmpfs hides `/run/containerd` (containerd
//! 1.6 puts its shims' sockets and their containers' state there, whatever
//! its config says), with weft's shim on its PATH. Killed when dropped, with
//! its shims and their containers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Run, output, scratch};

/// `name` from PATH, or a failed assertion naming the package to install.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(found, "`{name}` is not installed: ./setup.sh --deps installs it (Debian package {name})");
    Command::new(name)
}

/// Runs `cmd`; its stdout, or a failed assertion with everything it said.
pub fn checked(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Where cargo put the shims (`containerd-shim-weft-v1`, `…-weft-vm-v1`):
/// beside `weft`.
pub fn shim_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_weft")).parent().unwrap().to_path_buf();
    for shim in ["containerd-shim-weft-v1", "containerd-shim-weft-vm-v1"] {
        let shim = dir.join(shim);
        assert!(shim.is_file(), "{} is missing: `cargo test` at the workspace root builds it (cargo build -p containerd-shim-weft)", shim.display());
    }
    dir
}

/// weft's runtimes: a container, and a bare-metal unikernel in QEMU.
pub const WEFT: &str = "io.containerd.weft.v1";
pub const WEFT_VM: &str = "io.containerd.weft-vm.v1";

pub struct Containerd {
    child: Child,
    pub sock: PathBuf,
    pub dir: PathBuf,
}

/// What a containerd is started with beyond its own folders.
#[derive(Default)]
pub struct Options<'a> {
    /// Keep the CRI plugin (the kubelet's API): off unless asked for.
    pub cri: bool,
    /// TOML appended to the config (a node's runtime snippet).
    pub config: &'a str,
}

impl Containerd {
    pub fn start(name: &str) -> Containerd {
        Containerd::start_with(name, Options::default())
    }

    pub fn start_with(name: &str, options: Options) -> Containerd {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "containerd needs root (CI runs as root)");
        let dir = scratch(name);
        let sock = dir.join("c.sock");
        let d = dir.to_str().unwrap();
        let disabled = if options.cri { "" } else { "\"io.containerd.grpc.v1.cri\"" };
        // The CRI plugin creates its CNI folders: here, not /etc/cni.
        let cni = if options.cri {
            format!("[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{d}/cni/bin\"\n  conf_dir = \"{d}/cni/net.d\"\n")
        } else {
            String::new()
        };
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [{disabled}]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n{cni}{}",
            options.config
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        std::fs::create_dir_all("/run/containerd").unwrap();
        std::fs::create_dir_all(dir.join("fifo")).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let path = format!("{}:{}", shim_dir().display(), std::env::var("PATH").unwrap_or_default());
        tool("containerd");
        let child = tool("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount -t tmpfs tmpfs /run/containerd && exec containerd --config {d}/config.toml"))
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut c = Containerd { child, sock, dir };
        let t = Instant::now();
        while !c.ctr(&["version"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("containerd exited ({status}):\n{}", std::fs::read_to_string(c.dir.join("containerd.log")).unwrap());
            }
            assert!(t.elapsed() < Duration::from_secs(20), "containerd did not answer in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// Its config file (`containerd --config FILE config dump` reads it).
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// `ctr` against this containerd.
    /// In a containerd namespace of this containerd's own (its scratch folder's
    /// name): a container's cgroup is `<namespace>/<id>` on the one host
    /// hierarchy, so two test containerds running a container of the same id
    /// in `default` collided there (`could not delete` its cgroup).
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = tool("ctr");
        let namespace = self.dir.file_name().unwrap().to_str().unwrap();
        c.arg("--address").arg(&self.sock).args(["--namespace", namespace]).args(args).stdin(Stdio::null());
        c
    }

    /// `ctr images import` of an image-layout tar.
    pub fn import(&self, image: &Path) {
        let said = checked(&mut self.ctr(&["images", "import", image.to_str().unwrap()]));
        assert!(said.contains("done"), "{said}");
    }

    /// `ctr run --rm` with weft's runtime: `flags` before the image (`--env`,
    /// `--mount`), then the image, a container id and the process's args.
    pub fn run_cmd(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
        self.run_on(WEFT, flags, image, id, args)
    }

    /// [`Containerd::run_cmd`] with another runtime ([`WEFT_VM`]).
    pub fn run_on(&self, runtime: &str, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
        let fifo = self.dir.join("fifo");
        let mut c = self.ctr(&["run", "--rm", "--runtime", runtime, "--fifo-dir", fifo.to_str().unwrap()]);
        c.args(flags).args([image, id]).args(args);
        c
    }

    pub fn run(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Run {
        output(self.run_cmd(flags, image, id, args).output().unwrap())
    }

    /// The pid (in this host's namespace) of a running container's task.
    pub fn pid(&self, id: &str) -> u32 {
        let t = Instant::now();
        loop {
            let ls = checked(&mut self.ctr(&["tasks", "ls"]));
            let line = ls.lines().find(|l| l.split_whitespace().next() == Some(id));
            if let Some(pid) = line.and_then(|l| l.split_whitespace().nth(1)).and_then(|p| p.parse().ok()).filter(|&p| p > 0) {
                return pid;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "task {id} did not start:\n{ls}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks still running (a failed test's), then containerd, then its
        // shims (which outlive it by design).
        if let Ok(o) = self.ctr(&["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let needle = self.sock.to_str().unwrap().as_bytes().to_vec();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if cmdline.windows(needle.len()).any(|w| w == needle) {
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Its content store and snapshots; kept when the test failed (and
        // perhaps left a mount behind) for a look.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits at most `limit` for `child` (a `ctr run` whose task was killed) and
/// collects its output.
pub fn finish_within(mut child: Child, limit: Duration) -> Run {
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            let ran = output(child.wait_with_output().unwrap());
            panic!("still running after {limit:?}\nstdout:\n{}\nstderr:\n{}", ran.stdout, ran.stderr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    output(child.wait_with_output().unwrap())
}
