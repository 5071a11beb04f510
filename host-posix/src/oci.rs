//! `weft build --target oci`: a manifest as an OCI image, written as an
//! image-layout tar (`oci-layout`, `index.json`, `blobs/sha256/…`) that
//! `ctr images import`, `skopeo copy oci-archive:…` and registries take.
//!
//! The image's root file system is the manifest's folder as a run needs
//! it: `/weft.toml` byte for byte, every component file the manifest names
//! at the same relative path, the shipped components it uses (the app,
//! filters, the stack, and parts composed into the app such as `wasi` and
//! `kv`) under `/.weft/shipped/<name>.wasm`, and — where it helps start-up —
//! their precompiled code under `/.weft/aot/<cache key>.cwasm`, a directory
//! laid out as weft's AOT cache, so a node running the same weft build on
//! the same kind of CPU finds it under the key it computes and any other
//! node computes another key and compiles. Disk images are not baked in:
//! a `file` disk's path is relative to `/`, where a container mounts a
//! volume. docs/oci.md has the layout, the media types and annotations, and
//! how it compares with runwasi's and SpinKube's wasm images.
//!
//! Every file is a layer of its own (an uncompressed tar holding it and its
//! folders), so a component shared by many images — `wasi` — is one blob in
//! a registry or a node's content store. Nothing depends on the clock or the
//! file system's order: tar headers carry fixed owners, modes and the time
//! from `SOURCE_DATE_EPOCH` (else 0), entries and layers are sorted, and the
//! JSON is written from fixed structures, so an image built twice from the
//! same inputs is the same bytes.

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path};

use anyhow::Result;
use serde_json::{json, Value};
use weft_runtime::cache::{hex, sha256, Cache};
use weft_runtime::manifest::{Backend, SimOverride, Source};
use weft_runtime::plan::{Loader, Plan, Resolved};
use weft_runtime::units::format_size;

use crate::run::{self, DirLoader};

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed tar layers: what every containerd unpacks (the wasm layer
/// media types need containerd ≥ 1.6.25 / 1.7.7; docs/oci.md).
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where the manifest is in the image; also the image's entrypoint.
pub const MANIFEST: &str = "weft.toml";
/// Shipped components, by the name a manifest gives them.
pub const SHIPPED_DIR: &str = ".weft/shipped";
/// Precompiled code, laid out as weft's AOT cache (`<key>.cwasm`).
pub const AOT_DIR: &str = ".weft/aot";

/// The standard annotations weft sets.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const CREATED: &str = "org.opencontainers.image.created";
/// weft's own keys (layer descriptors, the image manifest, config labels).
pub const KEY_MANIFEST: &str = "dev.weft.manifest";
pub const KEY_CONTENT: &str = "dev.weft.content";
pub const KEY_COMPONENT: &str = "dev.weft.component";
pub const KEY_SHA256: &str = "dev.weft.component.sha256";
pub const KEY_PRECOMPILED_FOR: &str = "dev.weft.precompiled.for";
pub const KEY_PRECOMPILED_TARGET: &str = "dev.weft.precompiled.target";
pub const KEY_AOT: &str = "dev.weft.aot";
pub const KEY_VERSION: &str = "dev.weft.version";

/// Components at least this big take seconds to compile (Python, JS, a
/// stock program composed with `wasi`): `--precompile auto` ships their code.
const AUTO_MIN: usize = 1 << 20;

/// Which components' precompiled code goes into the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precompile {
    /// Components of 1 MiB or more, whose compile takes seconds.
    #[default]
    Auto,
    /// Every component.
    All,
    /// None: the image is the same on any build machine.
    None,
}

/// `weft build --target oci`'s options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `NAME[:TAG]`; default `<manifest folder>:latest`.
    pub tag: Option<String>,
    pub precompile: Precompile,
}

/// A built image: the tar's bytes, and what a user should know about it.
pub struct Image {
    pub bytes: Vec<u8>,
    /// The image's name (`org.opencontainers.image.ref.name`).
    pub reference: String,
    /// Lines for stderr: the disks a container should mount.
    pub notes: Vec<String>,
}

use crate::exit::invalid;

/// One file of the image's root file system, and its layer's annotations.
struct File {
    bytes: Vec<u8>,
    annotations: BTreeMap<&'static str, String>,
}

/// Builds the image for `manifest` (a `weft.toml` or its folder). The
/// manifest is planned as `weft run` plans it — every component read,
/// compiled and checked — so an image that builds is one that links.
pub fn build(manifest: &Path, opts: &Options) -> Result<Image> {
    let path = run::manifest_path(manifest);
    let text = std::fs::read(&path).map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", path.display())))?;
    if weft_runtime::cluster::is_cluster(&String::from_utf8_lossy(&text)) {
        return Err(invalid(format!(
            "error: {}: a cluster manifest runs several unikernels in one simulation; an image holds one: build each node's manifest (its `[nodes.<name>] manifest`) on its own",
            path.display()
        )));
    }
    let epoch = source_date_epoch()?;
    let (plan, dir, engine) = run::plan_with(&path, SimOverride::default())?;
    let reference = match &opts.tag {
        Some(t) => reference(t)?,
        None => default_reference(&plan.manifest.dir)?,
    };
    let loader = DirLoader::new(dir);

    let mut files: BTreeMap<String, File> = BTreeMap::new();
    let mut add = |path: String, file: File, what: &str| -> Result<()> {
        if let Some(old) = files.get(&path) {
            if old.bytes != file.bytes {
                return Err(invalid(format!("error: {what} would be /{path} in the image, which already holds another file; rename it")));
            }
            return Ok(());
        }
        files.insert(path, file);
        Ok(())
    };

    // Every component the plan uses, and what the app is composed with.
    let parts = plan.app.parts.iter().map(|p| (&p.name, &p.source));
    let used = plan.components().map(|c| (&c.name, &c.source)).chain(parts);
    for (name, source) in used {
        let (at, bytes) = match source {
            Source::Shipped(n) => (format!("{SHIPPED_DIR}/{n}.wasm"), loader.shipped(n).expect("planned").to_vec()),
            Source::File(p) => {
                let at = image_path(p)
                    .ok_or_else(|| invalid(format!("error: component {}: not a path inside the manifest's folder", p.display())))?;
                if at == MANIFEST || at.starts_with(".weft/") {
                    return Err(invalid(format!(
                        "error: component {}: /{at} is where the image keeps weft's own files; move the component elsewhere in the manifest's folder",
                        p.display()
                    )));
                }
                let bytes = loader.read(p).map_err(|e| invalid(format!("error: cannot read {}: {e}", p.display())))?;
                (at, bytes)
            }
        };
        let annotations = BTreeMap::from([
            (KEY_CONTENT, "component".to_string()),
            (KEY_COMPONENT, source.to_string()),
            (KEY_SHA256, hex(&sha256(&bytes))),
        ]);
        let what = format!("component {name}");
        add(at, File { bytes, annotations }, &what)?;
    }

    for c in plan.components() {
        let size = c.size + plan.app.parts.iter().filter(|_| std::ptr::eq(c, &plan.app)).map(|p| p.size).sum::<usize>();
        let wanted = match opts.precompile {
            Precompile::All => true,
            Precompile::Auto => size >= AUTO_MIN,
            Precompile::None => false,
        };
        if !wanted {
            continue;
        }
        let key = c.cache_key(&engine);
        let bytes = precompiled(&engine, &loader, &plan, c, &key)?;
        let annotations = BTreeMap::from([
            (KEY_CONTENT, "precompiled".to_string()),
            (KEY_PRECOMPILED_FOR, c.source.to_string()),
            (KEY_PRECOMPILED_TARGET, format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)),
        ]);
        add(format!("{AOT_DIR}/{key}.cwasm"), File { bytes, annotations }, &format!("precompiled {}", c.name))?;
    }

    let aot = files.keys().any(|p| p.starts_with(AOT_DIR));
    // The manifest is the top layer: an edit of it changes only that layer.
    let mut layers: Vec<(String, File)> = files.into_iter().collect();
    layers.push((MANIFEST.to_string(), File { bytes: text, annotations: BTreeMap::from([(KEY_CONTENT, "manifest".to_string())]) }));

    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut blob = |bytes: Vec<u8>| -> (String, usize) {
        let digest = format!("sha256:{}", hex(&sha256(&bytes)));
        let size = bytes.len();
        blobs.insert(digest.clone(), bytes);
        (digest, size)
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (path, file) in layers {
        let (digest, size) = blob(layer_tar(&path, &file.bytes, epoch)?);
        let mut annotations: BTreeMap<&str, String> = file.annotations;
        annotations.insert(TITLE, path);
        descriptors.push(json!({ "mediaType": MEDIA_LAYER, "digest": digest, "size": size, "annotations": annotations }));
        // Uncompressed: a layer's diff ID is its digest.
        diff_ids.push(digest);
    }

    let created = rfc3339(epoch);
    let manifest_at = format!("/{MANIFEST}");
    let mut labels = BTreeMap::from([(KEY_MANIFEST, manifest_at.clone()), (KEY_VERSION, env!("CARGO_PKG_VERSION").to_string())]);
    if aot {
        labels.insert(KEY_AOT, format!("/{AOT_DIR}"));
    }
    let config = json!({
        "created": created,
        "architecture": "wasm",
        "os": "wasip2",
        "config": { "Entrypoint": [manifest_at], "WorkingDir": "/", "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let (config_digest, config_size) = blob(to_json(&config));
    let image_manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size },
        "layers": descriptors,
        "annotations": { CREATED: created, KEY_MANIFEST: manifest_at },
    });
    let (manifest_digest, manifest_size) = blob(to_json(&image_manifest));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { REF_NAME: reference },
        }],
    });

    let bytes = layout_tar(&to_json(&index), &blobs, epoch)?;
    Ok(Image { bytes, reference, notes: disk_notes(&plan) })
}

/// The precompiled code of `c`: the AOT cache's entry when the plan left
/// one there (the same bytes a compile gives), else compiled now.
fn precompiled(engine: &wasmtime::Engine, loader: &DirLoader, plan: &Plan, c: &Resolved, key: &str) -> Result<Vec<u8>> {
    if let Some(dir) = Cache::from_env().dir() {
        if let Ok(b) = std::fs::read(dir.join(format!("{key}.cwasm"))) {
            return Ok(b);
        }
    }
    let bytes = if std::ptr::eq(c, &plan.app) {
        weft_runtime::plan::app_bytes(loader, c).map_err(anyhow::Error::msg)?
    } else {
        match &c.source {
            Source::Shipped(n) => loader.shipped(n).expect("planned").to_vec(),
            Source::File(p) => loader.read(p)?,
        }
    };
    let code = weft_runtime::cache::with_progress(&c.name, bytes.len(), "native code for the image", || engine.precompile_component(&bytes))?;
    Ok(code)
}

/// What a container must provide: each `file` disk, at its path under `/`.
fn disk_notes(plan: &Plan) -> Vec<String> {
    plan.block_devices()
        .filter_map(|d| match &d.backend {
            Backend::File { path, size, .. } => {
                let at = image_path(path).map_or_else(|| path.display().to_string(), |p| format!("/{p}"));
                // The image holds no folder but `/.weft`: a disk in a folder
                // needs a volume there even to be created.
                let folder = Path::new(&at).parent().filter(|f| *f != Path::new("/"));
                let note = match (size, folder) {
                    (Some(s), None) => format!("created {} when missing, gone with the container): mount a volume or file there to keep it", format_size(*s)),
                    (Some(s), Some(f)) => format!("created {} in {} when missing): mount a volume at {}: the image has no such folder", format_size(*s), f.display(), f.display()),
                    (None, _) => "it has no `size`, so it must exist): mount a volume or file there".to_string(),
                };
                Some(format!("note: block device `{}` is {at} in the container ({note}", d.role))
            }
            _ => None,
        })
        .collect()
}

/// `p` (relative to the manifest's folder) as a path in the image, without
/// `.` parts; `None` when it is absolute or leaves the folder.
fn image_path(p: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.components() {
        match part {
            PathPart::Normal(s) => parts.push(s.to_str()?),
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                parts.pop()?;
            }
            PathPart::RootDir | PathPart::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `SOURCE_DATE_EPOCH` (seconds since 1970), else 0: the only time in an image.
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            invalid(format!(
                "error: SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds since 1970-01-01 (reproducible-builds.org); set it to e.g. $(git log -1 --format=%ct), or unset it for 0"
            ))
        }),
    }
}

/// `secs` since the epoch as RFC 3339 UTC (`2023-11-14T22:13:20Z`).
fn rfc3339(secs: u64) -> String {
    weft_runtime::units::format_rfc3339(secs as i64)
}

/// A JSON document's bytes. serde_json writes a map's keys in one fixed
/// order (sorted, or as inserted with `preserve_order`), so equal values
/// give equal bytes.
fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values serialize")
}

/// A tar header with nothing from the build machine in it.
fn header(kind: tar::EntryType, mode: u32, size: usize, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size as u64);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// One layer: `path`'s folders, then the file.
fn layer_tar(path: &str, bytes: &[u8], mtime: u64) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut folder = String::new();
    for part in path.split('/').collect::<Vec<_>>().split_last().expect("a path has a name").1 {
        folder.push_str(part);
        folder.push('/');
        b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0, mtime), &folder, std::io::empty())?;
    }
    b.append_data(&mut header(tar::EntryType::Regular, 0o644, bytes.len(), mtime), path, bytes)?;
    Ok(b.into_inner()?)
}

/// The image-layout tar: `oci-layout`, `index.json`, then every blob by digest.
fn layout_tar(index: &[u8], blobs: &BTreeMap<String, Vec<u8>>, mtime: u64) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]| {
        b.append_data(&mut header(tar::EntryType::Regular, 0o644, bytes.len(), mtime), path, bytes)
    };
    file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    file(&mut b, "index.json", index)?;
    for folder in ["blobs/", "blobs/sha256/"] {
        b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0, mtime), folder, std::io::empty())?;
    }
    for (digest, bytes) in blobs {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digests");
        file(&mut b, &format!("blobs/sha256/{hex}"), bytes)?;
    }
    Ok(b.into_inner()?)
}

/// `NAME[:TAG]` checked against the OCI distribution reference grammar,
/// `:latest` added when no tag is given.
pub fn reference(given: &str) -> Result<String> {
    let bad = |why: &str| {
        invalid(format!(
            "error: --tag {given:?}: {why}; give NAME:TAG, e.g. --tag hello:1.0 or --tag registry.example:5000/team/hello:1.0 (lowercase name parts of letters, digits and . _ -, separated by /; a tag of up to 128 letters, digits, _ . -)"
        ))
    };
    if given.contains('@') {
        return Err(bad("a digest names content, not a tag to give it"));
    }
    let last_slash = given.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match given[last_slash..].rfind(':') {
        Some(i) => (&given[..last_slash + i], &given[last_slash + i + 1..]),
        None => (given, "latest"),
    };
    let tag_ok = tag.len() <= 128
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !tag_ok {
        return Err(bad("the tag is not valid"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot or a port, or `localhost`, is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, "0"));
        let host_ok = !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) && port.parse::<u16>().is_ok();
        if !host_ok {
            return Err(bad("the registry host is not valid"));
        }
    }
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    };
    if parts.iter().any(|p| !part_ok(p)) {
        return Err(bad("the name is not valid"));
    }
    Ok(format!("{name}:{tag}"))
}

/// `<manifest folder>:latest`, the folder's name made a valid image name.
fn default_reference(dir: &Path) -> Result<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    reference(if name.is_empty() { "weft" } else { name })
        .map_err(|_| invalid(format!("error: {} gives no image name; give one with --tag NAME:TAG", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(reference("hello").unwrap(), "hello:latest");
        assert_eq!(reference("hello:1.0").unwrap(), "hello:1.0");
        assert_eq!(reference("localhost:5000/team/hello").unwrap(), "localhost:5000/team/hello:latest");
        assert_eq!(reference("registry.example/a_b/c-d:v1.2_3").unwrap(), "registry.example/a_b/c-d:v1.2_3");
        for bad in ["Hello:1", "hello:", "hello:-x", "hello@sha256:00", "/hello", "a//b", "host:x/y:1", "hello:1:2"] {
            assert!(reference(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn image_paths() {
        assert_eq!(image_path(Path::new("./a/b.wasm")).as_deref(), Some("a/b.wasm"));
        assert_eq!(image_path(Path::new("a/../b.wasm")).as_deref(), Some("b.wasm"));
        assert_eq!(image_path(Path::new("../b.wasm")), None);
        assert_eq!(image_path(Path::new("/b.wasm")), None);
    }
}
