//! `weft build --target oci`: the image-layout tar parses (every digest and
//! size checked, the media types and annotations docs/oci.md names), holds
//! the manifest and every component the plan uses, is the same bytes when
//! built again (also with a cold cache and from another folder), refuses
//! bad input with exit 2 and writes nothing, and the real tools take it:
//! `skopeo inspect`/`copy`, and a containerd of our own (`ctr images import`,
//! `ctr images ls`, the unpacked root file system, from which `weft run`
//! runs the app on the image's precompiled code).

mod common;
use common::containerd::{Containerd, checked, tool};
use common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    weft_runtime::cache::hex(&weft_runtime::cache::sha256(bytes))
}

fn shipped(artifact: &str) -> Vec<u8> {
    let p = root().join("components/target/wasm32-wasip2/release").join(format!("{artifact}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `weft build --target oci` of `manifest` into `out`, with extra args.
fn build(manifest: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "--target", "oci", s(manifest), "-o", s(out)];
    args.extend_from_slice(extra);
    weft(&args)
}

/// One file (or folder) of a layer.
struct Entry {
    path: String,
    dir: bool,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    bytes: Vec<u8>,
}

fn entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            Entry {
                path: e.path().unwrap().to_str().unwrap().to_string(),
                dir: h.entry_type().is_dir(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                bytes,
            }
        })
        .collect()
}

/// An image, parsed and checked against the OCI image-layout rules.
struct Image {
    reference: String,
    manifest_digest: String,
    manifest: Value,
    config: Value,
    /// Each layer's descriptor and entries, bottom first.
    layers: Vec<(Value, Vec<Entry>)>,
    /// The root file system: path → bytes, layers applied in order.
    files: BTreeMap<String, Vec<u8>>,
}

impl Image {
    fn layer_titled(&self, title: &str) -> &Value {
        &self.layers.iter().find(|(d, _)| d["annotations"]["org.opencontainers.image.title"] == title).unwrap_or_else(|| panic!("no layer {title}")).0
    }
    fn paths(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }
}

/// Reads `path`, checking: `oci-layout` and `index.json` first, only blobs
/// besides; every descriptor's blob exists with that digest and size, and
/// every blob is referenced; the media types; the config's diff IDs; every
/// tar entry owned by root with fixed modes and mtime `epoch`.
fn open(path: &Path, epoch: u64) -> Image {
    let bytes = std::fs::read(path).unwrap();
    let outer = entries(&bytes);
    let names: Vec<&str> = outer.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(&names[..4], ["oci-layout", "index.json", "blobs/", "blobs/sha256/"], "{names:?}");
    let mut blobs = BTreeMap::new();
    for e in &outer {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, epoch), "{}", e.path);
        assert_eq!(e.mode, if e.dir { 0o755 } else { 0o644 }, "{}", e.path);
        if let Some(hex) = e.path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(sha256_hex(&e.bytes), hex, "blob {} is not what its name says", e.path);
            blobs.insert(format!("sha256:{hex}"), e.bytes.as_slice());
        }
    }
    let json = |b: &[u8]| -> Value { serde_json::from_slice(b).unwrap() };
    assert_eq!(json(&outer[0].bytes), serde_json::json!({ "imageLayoutVersion": "1.0.0" }));
    let mut used = std::collections::BTreeSet::new();
    let mut blob = |d: &Value, media: &str| -> Vec<u8> {
        assert_eq!(d["mediaType"], media, "{d}");
        let digest = d["digest"].as_str().unwrap();
        let b = blobs.get(digest).unwrap_or_else(|| panic!("{digest} is not in blobs/"));
        assert_eq!(d["size"].as_u64().unwrap(), b.len() as u64, "{digest}'s size");
        used.insert(digest.to_string());
        b.to_vec()
    };

    let index = json(&outer[1].bytes);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let ms = index["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    let reference = ms[0]["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string();
    let manifest = json(&blob(&ms[0], "application/vnd.oci.image.manifest.v1+json"));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["annotations"]["dev.weft.manifest"], "/weft.toml");
    let config = json(&blob(&manifest["config"], "application/vnd.oci.image.config.v1+json"));
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("wasm"), Some("wasip2")));
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/weft.toml"]));
    assert_eq!(config["config"]["Labels"]["dev.weft.manifest"], "/weft.toml");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["created"], manifest["annotations"]["org.opencontainers.image.created"]);

    let mut layers = Vec::new();
    let mut files = BTreeMap::new();
    let descriptors = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), descriptors.len());
    for (d, diff_id) in descriptors.iter().zip(diff_ids) {
        let layer = entries(&blob(d, "application/vnd.oci.image.layer.v1.tar"));
        // Uncompressed: the diff ID is the digest.
        assert_eq!(diff_id, &d["digest"]);
        let title = d["annotations"]["org.opencontainers.image.title"].as_str().unwrap();
        let regular: Vec<&Entry> = layer.iter().filter(|e| !e.dir).collect();
        assert_eq!(regular.len(), 1, "one file per layer");
        assert_eq!(regular[0].path, title, "the title names the layer's file");
        for e in &layer {
            assert_eq!((e.uid, e.gid, e.mtime), (0, 0, epoch), "{}", e.path);
            assert_eq!(e.mode, if e.dir { 0o755 } else { 0o644 }, "{}", e.path);
            if !e.dir {
                files.insert(e.path.clone(), e.bytes.clone());
            }
        }
        match d["annotations"]["dev.weft.content"].as_str().unwrap() {
            "component" => assert_eq!(d["annotations"]["dev.weft.component.sha256"], sha256_hex(&regular[0].bytes)),
            "precompiled" => assert!(title.starts_with(".weft/aot/") && title.ends_with(".cwasm")),
            "manifest" => assert_eq!(title, "weft.toml"),
            other => panic!("content {other}"),
        }
        layers.push((d.clone(), layer));
    }
    assert_eq!(descriptors.last().unwrap()["annotations"]["dev.weft.content"], "manifest", "the manifest is the top layer");
    assert_eq!(used.len(), blobs.len(), "a blob nothing refers to");
    let manifest_digest = ms[0]["digest"].as_str().unwrap().to_string();
    Image { reference, manifest_digest, manifest, config, layers, files }
}

#[test]
fn hello_is_an_image_of_its_manifest_and_component() {
    let out = scratch("oci-hello").join("hello.tar");
    let example = root().join("examples/hello");
    let r = build(&example, &out, &[]);
    r.ok().stderr_has("hello:latest");
    let img = open(&out, 0);
    assert_eq!(img.reference, "hello:latest", "the default tag is the manifest's folder");
    assert_eq!(img.paths(), [".weft/shipped/hello.wasm", "weft.toml"], "hello is small: no precompiled code by default");
    assert_eq!(img.files["weft.toml"], std::fs::read(example.join("weft.toml")).unwrap());
    assert_eq!(img.files[".weft/shipped/hello.wasm"], shipped("hello"));
    assert_eq!(img.layer_titled(".weft/shipped/hello.wasm")["annotations"]["dev.weft.component"], "hello");
    assert_eq!(img.config["created"], "1970-01-01T00:00:00Z");
    assert!(img.config["config"]["Labels"].get("dev.weft.aot").is_none());
}

#[test]
fn faulty_disk_carries_its_filter_and_precompiled_code_but_no_disk() {
    let out = scratch("oci-faulty").join("fd.tar");
    let r = build(&root().join("examples/faulty-disk"), &out, &["--tag", "weft/faulty-disk:1", "--precompile", "all"]);
    r.ok().stderr_has("note: block device `storage` is /disk.img in the container (created 16 MiB when missing");
    let img = open(&out, 0);
    assert_eq!(img.reference, "weft/faulty-disk:1");
    let paths = img.paths();
    assert!(!paths.iter().any(|p| p.ends_with(".img")), "disk images stay out: {paths:?}");
    let aot: Vec<&&str> = paths.iter().filter(|p| p.starts_with(".weft/aot/")).collect();
    assert_eq!(aot.len(), 2, "kvstore's and block-fault's code: {paths:?}");
    for p in aot {
        assert!(img.files[*p].starts_with(b"\x7fELF"), "{p} is wasmtime's ELF artifact");
    }
    assert_eq!(img.files[".weft/shipped/kvstore.wasm"], shipped("kvstore"));
    assert_eq!(img.files[".weft/shipped/block-fault.wasm"], shipped("block_fault"));
    let for_ = |c: &str| img.layers.iter().any(|(d, _)| d["annotations"]["dev.weft.precompiled.for"] == c);
    assert!(for_("kvstore") && for_("block-fault"));
    assert_eq!(img.config["config"]["Labels"]["dev.weft.aot"], "/.weft/aot");
    assert_eq!(img.manifest["layers"].as_array().unwrap().len(), 5);
}

/// A stock WASI program: composed with the shipped `wasi`, 3 MiB together,
/// so `auto` ships its precompiled code.
fn wasi_app(name: &str) -> PathBuf {
    let dir = manifest(name, "# a stock WASI program\n[app]\ncomponent = \"bin/app.wasm\"\n");
    std::fs::create_dir(dir.join("bin")).unwrap();
    test_component(&dir.join("bin"), "wasi-stock", "app.wasm");
    dir
}

/// Writes the image's root file system into `dir`.
fn unpack(img: &Image, dir: &Path) {
    for (p, b) in &img.files {
        let at = dir.join(p);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, b).unwrap();
    }
}

/// `weft run` of the image's manifest in `rootfs`, with the image's AOT
/// folder as the cache: the app must load from it, not compile.
fn run_from(rootfs: &Path) {
    let aot = rootfs.join(".weft/aot");
    let before: Vec<_> = std::fs::read_dir(&aot).unwrap().map(|e| e.unwrap().file_name()).collect();
    let o = weft_cmd(&["run", s(&rootfs.join("weft.toml"))]).env("WEFT_CACHE_DIR", &aot).env("RUST_LOG", "weft=debug").output().unwrap();
    let r = output(o);
    r.ok().stdout_has("hello from a stock WASI program").stderr_has("cache hit");
    assert!(!r.stderr.contains("compiled"), "the image's code was not used:\n{}", r.stderr);
    let after: Vec<_> = std::fs::read_dir(&aot).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "nothing was compiled into the image's folder");
}

#[test]
fn a_wasi_app_ships_wasi_and_its_precompiled_code_which_a_run_uses() {
    let dir = wasi_app("oci-wasi");
    let out = dir.join("app.tar");
    build(&dir, &out, &["--tag", "stock:1"]).ok();
    let img = open(&out, 0);
    assert_eq!(img.files["bin/app.wasm"], std::fs::read(dir.join("bin/app.wasm")).unwrap(), "a file component keeps its path");
    assert_eq!(img.files[".weft/shipped/wasi.wasm"], shipped("wasi_on_weft"));
    assert_eq!(img.layer_titled("bin/app.wasm")["annotations"]["dev.weft.component"], "bin/app.wasm");
    assert_eq!(img.paths().iter().filter(|p| p.starts_with(".weft/aot/")).count(), 1, "the composed app's code: {:?}", img.paths());
    let rootfs = dir.join("rootfs");
    unpack(&img, &rootfs);
    run_from(&rootfs);
}

#[test]
fn an_image_built_again_is_the_same_bytes() {
    let dir = wasi_app("oci-again");
    let a = dir.join("a.tar");
    build(&dir, &a, &["--tag", "stock:1", "--precompile", "all"]).ok();
    // A cold cache: the code is compiled again, not copied from the first build.
    let b = dir.join("b.tar");
    let o = weft_cmd(&["build", "--target", "oci", s(&dir), "-o", s(&b), "--tag", "stock:1", "--precompile", "all"])
        .env("WEFT_CACHE_DIR", "off")
        .output()
        .unwrap();
    output(o).ok();
    // The same inputs in another folder.
    let other = wasi_app("oci-again-elsewhere");
    let c = other.join("c.tar");
    build(&other, &c, &["--tag", "stock:1", "--precompile", "all"]).ok();
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert!(bytes(&a) == bytes(&b), "a rebuild with a cold cache differs");
    assert!(bytes(&a) == bytes(&c), "a build from another folder differs");

    // SOURCE_DATE_EPOCH is the only time in an image.
    let d = dir.join("d.tar");
    let o = weft_cmd(&["build", "--target", "oci", s(&dir), "-o", s(&d), "--tag", "stock:1", "--precompile", "all"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    output(o).ok();
    let img = open(&d, 1_700_000_000);
    assert_eq!(img.config["created"], "2023-11-14T22:13:20Z");
    assert!(bytes(&a) != bytes(&d));
    assert_eq!(open(&a, 0).files, img.files, "only the times differ");
}

#[test]
fn bad_input_is_exit_2_naming_the_problem_and_writes_nothing() {
    let dir = manifest("oci-bad", "[app]\ncomponent = \"hello\"\n\n[limits]\nmemroy = \"1MiB\"\n");
    let out = dir.join("img.tar");
    build(&dir, &out, &[]).code(2).stderr_has("weft.toml:5: `limits.memroy`: unknown key");
    let cases: &[(&str, &[&str], &str)] = &[
        ("[app]\ncomponent = \"missing.wasm\"\n", &[], "`app.component`: cannot read missing.wasm"),
        ("[app]\ncomponent = \"hello\"\n", &["--tag", "Hello:1"], "--tag \"Hello:1\": the name is not valid"),
        ("[app]\ncomponent = \"hello\"\n", &["--tag", "hello@sha256:00"], "a digest names content"),
        ("[app]\ncomponent = \"hello\"\n", &["--sim"], "put a [sim] table in it"),
        ("[cluster]\nseed = 1\n", &[], "build each node's manifest"),
    ];
    for (text, extra, message) in cases {
        std::fs::write(dir.join("weft.toml"), text).unwrap();
        build(&dir, &out, extra).code(2).stderr_has(message);
    }
    std::fs::write(dir.join("weft.toml"), "[app]\ncomponent = \"hello\"\n").unwrap();
    let o = weft_cmd(&["build", "--target", "oci", s(&dir), "-o", s(&out)]).env("SOURCE_DATE_EPOCH", "yesterday").output().unwrap();
    output(o).code(2).stderr_has("SOURCE_DATE_EPOCH=\"yesterday\" is not a whole number of seconds");
    weft(&["build", "--target", "baremetal", s(&dir), "-o", s(&out), "--tag", "a:1"]).code(2).stderr_has("options of --target oci");
    let nowhere = dir.join("no/such/folder/img.tar");
    build(&dir, &nowhere, &[]).code(2).stderr_has("/no/such/folder does not exist; create it first");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["weft.toml"], "nothing written, no temporary file left");
    build(&dir, &out, &[]).ok();
}

#[test]
fn skopeo_inspects_and_copies_the_image() {
    let dir = scratch("oci-skopeo");
    let out = dir.join("fd.tar");
    build(&root().join("examples/faulty-disk"), &out, &["--tag", "weft/faulty-disk:1"]).ok();
    let img = open(&out, 0);
    let archive = format!("oci-archive:{}", s(&out));
    let inspect: Value = serde_json::from_str(&checked(tool("skopeo").args(["inspect", &archive]))).unwrap();
    assert_eq!(inspect["Digest"], img.manifest_digest.as_str());
    assert_eq!((inspect["Architecture"].as_str(), inspect["Os"].as_str()), (Some("wasm"), Some("wasip2")));
    assert_eq!(inspect["Labels"]["dev.weft.manifest"], "/weft.toml");
    assert_eq!(inspect["Layers"], img.config["rootfs"]["diff_ids"]);
    // By the name in index.json.
    let raw = checked(tool("skopeo").args(["inspect", "--raw", &format!("{archive}:weft/faulty-disk:1")]));
    assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), img.manifest);

    // As built, with --preserve-digests; by default skopeo gzips the layers
    // (a new manifest, without the layers' annotations) and keeps the config.
    let copied = |flags: &[&str]| -> (Value, Value) {
        let copy = dir.join(format!("copy{}", flags.len()));
        checked(tool("skopeo").arg("copy").arg("--quiet").args(flags).args([&archive, &format!("oci:{}:fd", s(&copy))]));
        let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
        let index = read(&copy.join("index.json"));
        assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "fd");
        let digest = index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
        (index, read(&copy.join("blobs/sha256").join(digest)))
    };
    let (index, _) = copied(&["--preserve-digests"]);
    assert_eq!(index["manifests"][0]["digest"], img.manifest_digest.as_str(), "skopeo kept the manifest as it is");
    let (_, manifest) = copied(&[]);
    assert_eq!(manifest["config"], img.manifest["config"], "the config is kept");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), img.layers.len());
    assert!(layers.iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{manifest}");
}

#[test]
fn containerd_imports_the_image_by_its_tag_and_unpacks_a_root_a_run_works_from() {
    let dir = wasi_app("oci-ctr");
    let out = dir.join("app.tar");
    build(&dir, &out, &["--tag", "weft-test/stock:1"]).ok();
    let img = open(&out, 0);

    let c = Containerd::start("oci-containerd");
    let said = checked(&mut c.ctr(&["images", "import", s(&out)]));
    assert!(said.contains("unpacking weft-test/stock:1") && said.contains("done"), "{said}");
    let names = checked(&mut c.ctr(&["images", "ls", "-q"]));
    assert_eq!(names.lines().collect::<Vec<_>>(), ["weft-test/stock:1"]);
    let listed = checked(&mut c.ctr(&["images", "ls"]));
    assert!(listed.contains(&img.manifest_digest) && listed.contains("wasip2/wasm"), "{listed}");
    let check = checked(&mut c.ctr(&["images", "check"]));
    let line = check.lines().find(|l| l.starts_with("weft-test/stock:1")).unwrap();
    assert!(line.contains("complete") && line.trim_end().ends_with("true"), "not complete and unpacked: {line}");

    // The root file system containerd unpacked is the image's, and runs.
    let rootfs = c.dir.join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    checked(&mut c.ctr(&["images", "mount", "--rw", "weft-test/stock:1", s(&rootfs)]));
    let mounted: BTreeMap<String, Vec<u8>> = img.files.keys().map(|p| (p.clone(), std::fs::read(rootfs.join(p)).unwrap_or_default())).collect();
    let ran = std::panic::catch_unwind(|| run_from(&rootfs));
    checked(&mut c.ctr(&["images", "unmount", "--rm", s(&rootfs)]));
    assert!(mounted == img.files, "the unpacked files differ from the image's");
    if let Err(e) = ran {
        std::panic::resume_unwind(e);
    }
}

/// The shims run what the image was built with: a shipped component's name
/// resolves to the image's `/.weft/shipped/<name>.wasm` before the node's own
/// (docs/oci.md). Here the image's `hello` is swapped for `misbehave`, which
/// exits with the code its args give; the node's `hello` would print a greeting
/// and exit 0.
#[test]
fn a_container_runs_the_images_shipped_components_not_the_nodes() {
    let dir = scratch("oci-image-shipped");
    let out = dir.join("hello.tar");
    build(&example("hello"), &out, &[]).ok();
    let rootfs = dir.join("rootfs");
    unpack(&open(&out, 0), &rootfs);
    let request = |args: &[&str]| weft::container::Request::new(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), &[]).unwrap();
    assert_eq!(weft::container::run(&request(&["/weft.toml"]), &rootfs).unwrap(), 0);
    test_component(&rootfs.join(".weft/shipped"), "misbehave", "hello.wasm");
    assert_eq!(weft::container::run(&request(&["/weft.toml", "exit", "9"]), &rootfs).unwrap(), 9);
}
