//! `io.containerd.weft-vm.v1`: a container as a bare-metal unikernel in its
//! own QEMU, for isolation by a virtual machine (like Kata) rather than by
//! Linux namespaces.
//!
//! This runtime implements containerd-shimkit's `Instance` directly (the layer
//! under containerd-shim-wasm): shimkit speaks the shim protocol and mounts
//! the image's root file system in the bundle; there is no Linux container.
//! `start` runs this binary again as a child, [`BOOT`], which reads the
//! bundle's OCI spec, applies its bind mounts in a mount namespace of its own
//! and boots the manifest exactly as `weft boot` would (`weft::container::boot`),
//! with stdout and stderr on containerd's FIFOs. Its exit code is the
//! container's; a signal to the container goes to it, and QEMU dies with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use containerd_shim::monitor::{ExitEvent, Subject, Topic, monitor_subscribe};
use containerd_shimkit::sandbox::sync::WaitableCell;
use containerd_shimkit::sandbox::{Error, Instance, InstanceConfig};
use serde_json::Value;

/// The first argument of the child that boots a bundle.
pub const BOOT: &str = "boot-bundle";

pub struct VmInstance {
    id: String,
    bundle: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    pid: Mutex<Option<i32>>,
    exit: WaitableCell<(u32, DateTime<Utc>)>,
}

impl Instance for VmInstance {
    async fn new(id: String, cfg: &InstanceConfig) -> Result<Self, Error> {
        Ok(VmInstance {
            id,
            bundle: cfg.bundle.clone(),
            stdout: cfg.stdout.clone(),
            stderr: cfg.stderr.clone(),
            pid: Mutex::new(None),
            exit: WaitableCell::new(),
        })
    }

    async fn start(&self) -> Result<u32, Error> {
        // Subscribed before the child exists: the shim's reaper may collect
        // it before anyone waits.
        let exits = monitor_subscribe(Topic::Pid)?;
        let fifo = |p: &Path| -> Result<Stdio, Error> {
            if p.as_os_str().is_empty() {
                return Ok(Stdio::null());
            }
            Ok(std::fs::OpenOptions::new().write(true).open(p)?.into())
        };
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg(BOOT)
            .arg(&self.bundle)
            .stdin(Stdio::null())
            .stdout(fifo(&self.stdout)?)
            .stderr(fifo(&self.stderr)?)
            .spawn()?;
        let pid = child.id() as i32;
        *self.pid.lock().unwrap() = Some(pid);
        let exit = self.exit.clone();
        std::thread::spawn(move || {
            let code = wait_for(pid, &exits.rx);
            let _ = exit.set((code, Utc::now()));
        });
        Ok(pid as u32)
    }

    async fn kill(&self, signal: u32) -> Result<(), Error> {
        let pid = self.pid.lock().unwrap().ok_or_else(|| Error::FailedPrecondition(format!("{} is not running", self.id)))?;
        // SAFETY: kill has no memory preconditions.
        if unsafe { libc::kill(pid, signal as i32) } != 0 {
            return Err(Error::NotFound(format!("{}: {}", self.id, std::io::Error::last_os_error())));
        }
        Ok(())
    }

    async fn delete(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn wait(&self) -> (u32, DateTime<Utc>) {
        *self.exit.wait().await
    }
}

/// The exit code of child `pid`: from the shim's reaper, or from our own
/// `waitpid` if the reaper has not run.
fn wait_for(pid: i32, exits: &std::sync::mpsc::Receiver<ExitEvent>) -> u32 {
    loop {
        match exits.recv_timeout(Duration::from_millis(200)) {
            Ok(ExitEvent { subject: Subject::Pid(p), exit_code }) if p == pid => return exit_code as u32,
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let mut status = 0;
                // SAFETY: waitpid writes only `status`.
                if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                    return if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) as u32 } else { libc::WEXITSTATUS(status) as u32 };
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return 137,
        }
    }
}

/// The child: boots the bundle at `bundle`; returns its exit code.
pub fn boot(bundle: &Path) -> u8 {
    let booted = spec(bundle).and_then(|(args, envs, root, binds)| {
        mount_binds(&root, &binds)?;
        let request = weft::container::Request::new(&args, &envs)?;
        weft::container::boot(&request, &root)
    });
    booted.unwrap_or_else(|e| weft::exit::report(&e))
}

/// A bind mount the spec asks for: source, destination in the container,
/// read-only.
type Bind = (PathBuf, PathBuf, bool);

/// The process's args and env, the root file system and the bind mounts of
/// the bundle's OCI runtime spec.
fn spec(bundle: &Path) -> Result<(Vec<String>, Vec<String>, PathBuf, Vec<Bind>)> {
    let path = bundle.join("config.json");
    let spec: Value = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("parsing {}", path.display()))?;
    let strings = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect() };
    let args = strings(&spec["process"]["args"]);
    let envs = strings(&spec["process"]["env"]);
    let root = bundle.join(spec["root"]["path"].as_str().unwrap_or("rootfs"));
    let binds = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let options = strings(&m["options"]);
            let bind = m["type"] == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let (source, destination) = (m["source"].as_str()?, m["destination"].as_str()?);
            bind.then(|| (PathBuf::from(source), PathBuf::from(destination), options.iter().any(|o| o == "ro")))
        })
        .collect();
    Ok((args, envs, root, binds))
}

/// Mounts the spec's bind mounts (volumes, a manifest from a ConfigMap) into
/// `root`, in a mount namespace of this process's own: gone with it.
fn mount_binds(root: &Path, binds: &[Bind]) -> Result<()> {
    if binds.is_empty() {
        return Ok(());
    }
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: unshare and mount take valid C strings or nulls.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
        {
            bail!("a mount namespace for the container's mounts: {}", std::io::Error::last_os_error());
        }
    }
    for (source, destination, ro) in binds {
        let target = root.join(destination.strip_prefix("/").unwrap_or(destination));
        if source.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if !target.exists() {
            std::fs::create_dir_all(target.parent().unwrap())?;
            std::fs::File::create(&target)?;
        }
        let (s, t) = (c(source), c(&target));
        // SAFETY: as above.
        let mounted = unsafe {
            libc::mount(s.as_ptr(), t.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) == 0
                && (!ro || libc::mount(std::ptr::null(), t.as_ptr(), std::ptr::null(), libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY, std::ptr::null()) == 0)
        };
        if !mounted {
            bail!("mounting {} at {}: {}", source.display(), destination.display(), std::io::Error::last_os_error());
        }
    }
    Ok(())
}
