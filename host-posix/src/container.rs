//! A container's process, run as `weft run` runs the manifest it names: what
//! `containerd-shim-weft-v1` (../shim) does as the container's PID 1, inside
//! the namespaces and root file system containerd set up for it. It lives
//! here, apart from the shim protocol, so that it is tested without one.
//!
//! What a container asks for (docs/kubernetes.md):
//! - its process arguments: an image's entrypoint is its manifest
//!   (`/weft.toml`); a first argument ending in `.toml` names the manifest,
//!   the rest (if any) replace `[app] args`;
//! - `WEFT_MANIFEST` in its environment: another manifest (a ConfigMap
//!   mounted into the container), planned as if it were the image's own, so
//!   its paths name the image's files; the deploy-time device swap;
//! - its environment: a stock WASI program's environment, over `[wasi] env`;
//! - `WEFT_AOT=ignore`: compile instead of loading the image's precompiled
//!   code (`/.weft/aot`, which is native code from the image).

use std::path::{Path, PathBuf};

use anyhow::Result;
use weft_runtime::cache::Cache;
use weft_runtime::engine::Codegen;
use weft_runtime::manifest::{Manifest, SimOverride};

use crate::run;

/// Where `weft build --target oci` puts the manifest.
pub const IMAGE_MANIFEST: &str = "/weft.toml";
/// Where it puts precompiled code.
pub const IMAGE_AOT: &str = "/.weft/aot";

/// What a container's arguments and environment ask of weft.
#[derive(Debug, PartialEq)]
pub struct Request {
    /// The manifest, as a path in the container.
    pub manifest: PathBuf,
    /// Named by `WEFT_MANIFEST` (not the image's entrypoint).
    pub mounted: bool,
    /// Replaces `[app] args` when the container was given any.
    pub args: Option<Vec<String>>,
    /// The container's environment, in its order.
    pub env: Vec<(String, String)>,
    /// Load the image's precompiled code.
    pub aot: bool,
}

impl Request {
    /// `args`: the OCI process arguments; `envs`: its `NAME=value` entries.
    pub fn new(args: &[String], envs: &[String]) -> Result<Request> {
        let env: Vec<(String, String)> = envs
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let (entry, rest) = match args.split_first() {
            Some((first, rest)) if first.ends_with(".toml") => (Some(first.as_str()), rest),
            _ => (None, args),
        };
        let (manifest, mounted) = match var("WEFT_MANIFEST") {
            Some(m) => (PathBuf::from(m), true),
            None => (PathBuf::from(entry.unwrap_or(IMAGE_MANIFEST)), false),
        };
        let aot = match var("WEFT_AOT") {
            None | Some("image") => true,
            Some("ignore") => false,
            Some(other) => {
                return Err(invalid(format!("error: WEFT_AOT={other}: expected `image` (load the image's precompiled code, the default) or `ignore` (compile)")));
            }
        };
        let args = (!rest.is_empty()).then(|| rest.to_vec());
        Ok(Request { manifest, mounted, args, env, aot })
    }
}

use crate::exit::invalid;

/// `path` in a container whose root file system is `root` on this host.
fn host_path(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The manifest `request` names, read from the root file system `root` (`/`
/// in a container) and changed as the container asks.
pub fn manifest(request: &Request, root: &Path) -> Result<Manifest> {
    let file = host_path(root, &request.manifest);
    let named_by = if request.mounted { " (named by WEFT_MANIFEST)" } else { "" };
    let src = std::fs::read_to_string(&file)
        .map_err(|e| invalid(format!("error: cannot read manifest {}{named_by}: {e}", request.manifest.display())))?;
    let mut m = Manifest::parse_with(&request.manifest, &src, SimOverride::default()).map_err(|p| invalid(p.to_string()))?;
    // Every path in the manifest names a file of the image (or a volume),
    // wherever the manifest itself was mounted.
    m.dir = root.to_path_buf();
    if let Some(args) = &request.args {
        m.app.args = args.clone();
    }
    for (name, value) in &request.env {
        let prefix = format!("{name}=");
        m.wasi.retain(|(k, v)| !(k == "env" && v.starts_with(&prefix)));
        m.wasi.push(("env".into(), format!("{name}={value}")));
    }
    Ok(m)
}

/// Runs what `request` asks for on the root file system `root`; returns the
/// exit code, as `weft run` would exit.
pub fn run(request: &Request, root: &Path) -> Result<u8> {
    let m = manifest(request, root)?;
    let engine = run::engine_of(&m, Codegen::default())?;
    let aot = host_path(root, Path::new(IMAGE_AOT));
    let cache = Cache::new((request.aot && aot.is_dir()).then_some(aot));
    let (plan, dir) = run::plan_manifest_with(m, &engine, &cache, true)?;
    run::run(&plan, &dir, &engine, &run::Observe::default())
}

/// Boots what `request` asks for as a bare-metal unikernel under QEMU (the
/// `io.containerd.weft-vm.v1` runtime), as `weft boot` would.
pub fn boot(request: &Request, root: &Path) -> Result<u8> {
    crate::boot::boot_manifest(manifest(request, root)?, &crate::boot::BootOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use crate::run::Exit;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_entrypoint_is_the_manifest_and_the_rest_are_the_apps_args() {
        let r = Request::new(&strings(&["/weft.toml", "a", "b"]), &[]).unwrap();
        assert_eq!((r.manifest, r.args), (PathBuf::from("/weft.toml"), Some(strings(&["a", "b"]))));
        // `ctr run IMAGE ID a b` replaces the entrypoint with its arguments.
        let r = Request::new(&strings(&["a", "b"]), &[]).unwrap();
        assert_eq!((r.manifest, r.args), (PathBuf::from(IMAGE_MANIFEST), Some(strings(&["a", "b"]))));
        // No arguments but the entrypoint: the manifest's own.
        let r = Request::new(&strings(&["/other.toml"]), &[]).unwrap();
        assert_eq!((r.manifest, r.args, r.mounted), (PathBuf::from("/other.toml"), None, false));
    }

    #[test]
    fn weft_manifest_names_a_mounted_manifest() {
        let env = strings(&["PATH=/bin", "WEFT_MANIFEST=/config/weft.toml", "X=1=2"]);
        let r = Request::new(&strings(&["/weft.toml"]), &env).unwrap();
        assert_eq!((r.manifest, r.mounted, r.args), (PathBuf::from("/config/weft.toml"), true, None));
        assert_eq!(r.env[2], ("X".to_string(), "1=2".to_string()));
        assert!(r.aot);
    }

    #[test]
    fn a_bad_weft_aot_is_refused_by_name() {
        let e = Request::new(&[], &strings(&["WEFT_AOT=yes"])).unwrap_err();
        let x = e.downcast_ref::<Exit>().unwrap();
        assert_eq!(x.code, exit::INVALID);
        assert!(x.message.contains("WEFT_AOT=yes") && x.message.contains("ignore"), "{}", x.message);
        assert!(!Request::new(&[], &strings(&["WEFT_AOT=ignore"])).unwrap().aot);
    }
}
