//! The containerd shim, `containerd-shim-weft-v1` (runtime
//! `io.containerd.weft.v1`), with the real parts: images from `weft build
//! --target oci`, a containerd of the test's own, `ctr`, Debian's
//! `docker-registry` and `skopeo`. Every container's output is compared with
//! what `weft run` says of the same manifest.

mod common;
use common::containerd::{Containerd, WEFT_VM, checked, finish_within, tool};
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `weft build --target oci` of the manifest in `dir` tagged `tag`, imported.
fn image(c: &Containerd, dir: &Path, tag: &str) {
    let out = scratch("shim-image").join("image.tar");
    weft(&["build", "--target", "oci", s(dir), "-o", s(&out), "--tag", tag]).ok();
    c.import(&out);
}

/// A manifest running the test component `artifact` as its app.
fn app(name: &str, artifact: &str, rest: &str) -> PathBuf {
    let dir = manifest(name, &format!("[app]\ncomponent = \"bin/app.wasm\"\n{rest}"));
    std::fs::create_dir(dir.join("bin")).unwrap();
    test_component(&dir.join("bin"), artifact, "app.wasm");
    dir
}

#[test]
fn hello_prints_through_ctr_and_exit_codes_come_back() {
    let c = Containerd::start("shim-hello");
    image(&c, &example("hello"), "weft-test/hello:1");
    c.run(&[], "weft-test/hello:1", "hello", &[]).ok().stdout_has("Hello from weft!\nwall clock: 20");

    image(&c, &app("shim-misbehave", "misbehave", "args = [\"exit\", \"3\"]\n"), "weft-test/misbehave:1");
    c.run(&[], "weft-test/misbehave:1", "exit3", &[]).code(3);
    // A trap: weft run's exit code and its report, with the guest's lines,
    // in the task's stderr.
    let trapped = c.run(&[], "weft-test/misbehave:1", "trap", &["trap"]);
    let direct = weft(&["run", s(&app("shim-misbehave-run", "misbehave", "args = [\"trap\"]\n"))]);
    direct.code(70);
    trapped.code(70).stderr_has("misbehave").stderr_has("src/lib.rs:");
}

#[test]
fn args_and_env_reach_the_app() {
    let c = Containerd::start("shim-args");
    image(&c, &app("shim-args-stock", "wasi-stock", "[wasi]\nenv = { FROM_MANIFEST = \"m\", OVERRIDDEN = \"manifest\" }\n"), "weft-test/stock:1");
    // `ctr run IMAGE ID ARGS…` replaces the entrypoint with its args: they
    // are the app's. A stock program's environment is the container's, over
    // the manifest's.
    let r = c.run(&["--env", "GREETING=hi there", "--env", "OVERRIDDEN=container"], "weft-test/stock:1", "env", &["env", "x y"]);
    r.ok().stdout_has("args [\"env\", \"x y\"]").stdout_has("env GREETING=hi there\n").stdout_has("env FROM_MANIFEST=m\n");
    r.stdout_has("env OVERRIDDEN=container\n");
    assert!(!r.stdout.contains("OVERRIDDEN=manifest"), "{}", r.stdout);

    // A weft app: args replace `[app] args`, also after the entrypoint (as
    // Kubernetes passes `args:`); none keeps the manifest's.
    image(&c, &app("shim-args-native", "misbehave", "args = [\"exit\", \"3\"]\n"), "weft-test/misbehave:1");
    c.run(&[], "weft-test/misbehave:1", "exit5", &["exit", "5"]).code(5);
    c.run(&[], "weft-test/misbehave:1", "exit6", &["/weft.toml", "exit", "6"]).code(6);
    c.run(&[], "weft-test/misbehave:1", "exit3", &["/weft.toml"]).code(3);
}

/// Docker's registry (Debian's `docker-registry`) on a free loopback port,
/// storing under `dir`.
struct Registry(Child, u16);

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", s(&dir.join("store"))),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = tool("docker-registry").arg("serve").arg(&config).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        drop(connect_retry(&format!("127.0.0.1:{port}")));
        Registry(child, port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_image_pushed_to_a_registry_is_pulled_and_run() {
    let dir = scratch("shim-registry");
    let reg = Registry::start(&dir);
    let out = dir.join("hello.tar");
    weft(&["build", "--target", "oci", s(&example("hello")), "-o", s(&out), "--tag", "weft/hello:1"]).ok();
    let reference = format!("127.0.0.1:{}/weft/hello:1", reg.1);
    checked(tool("skopeo").args(["copy", "--quiet", "--dest-tls-verify=false", &format!("oci-archive:{}", s(&out)), &format!("docker://{reference}")]));
    let c = Containerd::start("shim-registry-containerd");
    checked(&mut c.ctr(&["images", "pull", "--plain-http", &reference]));
    c.run(&[], &reference, "pulled", &[]).ok().stdout_has("Hello from weft!");
}

/// A zero-filled 16 MiB disk image in a folder of its own, as `weft run`
/// creates one.
fn blank_disk(name: &str) -> PathBuf {
    let disk = scratch(name).join("disk.img");
    std::fs::File::create(&disk).unwrap().set_len(16 << 20).unwrap();
    disk
}

fn report_line(out: &str, prefix: &str) -> String {
    out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}")).to_string()
}

#[test]
fn a_faulty_disk_on_a_bind_mount_loses_what_weft_run_loses_and_keeps_the_rest() {
    let c = Containerd::start("shim-disk");
    let example_dir = example("faulty-disk");
    image(&c, &example_dir, "weft-test/faulty-disk:1");
    // The same manifest under `weft run`, on its own disk.
    let direct = run(&example_dir);
    let direct_fill = report_line(&direct.stdout, "wrote ");
    std::fs::write(example_dir.join("weft.toml"), std::fs::read_to_string(example_dir.join("weft.toml")).unwrap().replace("[\"fill\", \"1000\"]", "[\"verify\"]")).unwrap();
    let direct_verify = report_line(&run(&example_dir).stdout, "records ");

    let disk = blank_disk("shim-disk-volume");
    let mount = format!("type=bind,src={},dst=/disk.img,options=rbind:rw", s(&disk));
    let first = c.run(&["--mount", &mount], "weft-test/faulty-disk:1", "fill", &[]);
    first.code(direct.code);
    assert_eq!(report_line(&first.stdout, "wrote "), direct_fill);
    assert!(direct_fill.contains("lost 10"), "{direct_fill}");
    // block-fault's trace of the dropped writes, on the task's stderr.
    assert_eq!(first.stderr.matches("dropped").count(), direct.stderr.matches("dropped").count(), "{}", first.stderr);
    // A second container on the same volume reads what the first wrote.
    let second = c.run(&["--mount", &mount], "weft-test/faulty-disk:1", "verify", &["verify"]);
    assert_eq!(report_line(&second.stdout, "records "), direct_verify);
    assert!(std::fs::read(&disk).unwrap().iter().any(|&b| b != 0), "the volume was written");
}

#[test]
fn a_mounted_manifest_swaps_the_disk_for_a_faulty_one_without_a_rebuild() {
    let c = Containerd::start("shim-swap");
    let clean = manifest(
        "shim-swap-clean",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"1000\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"16MiB\"\n",
    );
    image(&c, &clean, "weft-test/kvstore:1");
    c.run(&[], "weft-test/kvstore:1", "clean", &[]).ok().stdout_has("wrote 1000 verified 1000 lost 0");

    // Staging: the same image, the faulty-disk example's manifest mounted in
    // (a ConfigMap in Kubernetes) and named by WEFT_MANIFEST.
    let config = scratch("shim-swap-config");
    std::fs::copy(root().join("examples/faulty-disk/weft.toml"), config.join("weft.toml")).unwrap();
    let mount = format!("type=bind,src={},dst=/config,options=rbind:ro", s(&config));
    let staged = c.run(&["--mount", &mount, "--env", "WEFT_MANIFEST=/config/weft.toml"], "weft-test/kvstore:1", "staged", &[]);
    staged.code(1).stdout_has("wrote 1000 verified 990 lost 10").stderr_has("block-fault");

    // A bad mounted manifest: `weft check`'s message, naming the mounted
    // file and the key, in the task's output; exit 2.
    std::fs::write(config.join("weft.toml"), "[app]\ncomponent = \"kvstore\"\nargz = [\"fill\"]\n").unwrap();
    let bad = c.run(&["--mount", &mount, "--env", "WEFT_MANIFEST=/config/weft.toml"], "weft-test/kvstore:1", "bad", &[]);
    bad.code(2).stderr_has("/config/weft.toml").stderr_has("argz");
    let missing = c.run(&["--env", "WEFT_MANIFEST=/config/nothing.toml"], "weft-test/kvstore:1", "missing", &[]);
    missing.code(2).stderr_has("cannot read manifest /config/nothing.toml (named by WEFT_MANIFEST)");
}

#[test]
fn httpd_on_the_host_stack_serves_in_the_containers_network_namespace() {
    let c = Containerd::start("shim-httpd");
    let dir = manifest(
        "shim-httpd",
        "[app]\ncomponent = \"httpd\"\nargs = [\"8080\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"kv.img\"\nsize = \"16MiB\"\n\n[stack]\nbackend = \"host\"\n",
    );
    image(&c, &dir, "weft-test/httpd:1");
    let ctr = c.run_cmd(&[], "weft-test/httpd:1", "httpd", &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = c.pid("httpd").to_string();
    // The container's namespace has a loopback only, down (as CNI finds it).
    checked(tool("nsenter").args(["-t", &pid, "-n", "ip", "link", "set", "lo", "up"]));
    let curl = |args: &[&str]| checked(tool("nsenter").args(["-t", &pid, "-n", "curl", "-sS", "--retry", "30", "--retry-connrefused", "--retry-delay", "1"]).args(args));
    assert!(curl(&["http://127.0.0.1:8080/"]).contains("weft"), "the page");
    assert_eq!(curl(&["-X", "PUT", "--data", "blue", "http://127.0.0.1:8080/kv/colour"]).trim(), "stored");
    assert_eq!(curl(&["http://127.0.0.1:8080/kv/colour"]), "blue");
    // Not on this host's network.
    assert!(std::net::TcpStream::connect_timeout(&"127.0.0.1:8080".parse().unwrap(), Duration::from_millis(500)).is_err());
    checked(&mut c.ctr(&["tasks", "kill", "httpd"]));
    let ran = finish_within(ctr, Duration::from_secs(10));
    ran.code(143).stdout_has("httpd: listening on port 8080").stderr_has("weft: stopped by SIGTERM");
}

#[test]
fn a_hanging_app_stops_at_sigterm_and_at_sigkill() {
    let c = Containerd::start("shim-kill");
    image(&c, &app("shim-spin", "misbehave", "args = [\"spin\"]\n"), "weft-test/spin:1");
    for (signal, code) in [("SIGTERM", 143), ("SIGKILL", 137)] {
        let id = format!("spin-{signal}");
        let ctr = c.run_cmd(&[], "weft-test/spin:1", &id, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        c.pid(&id);
        let t = Instant::now();
        checked(&mut c.ctr(&["tasks", "kill", "-s", signal, &id]));
        let ran = finish_within(ctr, Duration::from_secs(10));
        ran.code(code);
        if signal == "SIGTERM" {
            ran.stderr_has("weft: stopped by SIGTERM");
        }
        eprintln!("{signal}: stopped in {:?}", t.elapsed());
    }
    // `[limits] timeout` ends it as under `weft run`: exit 124, naming it.
    let dir = app("shim-timeout", "misbehave", "args = [\"spin\"]\n\n[limits]\ntimeout = \"1s\"\n");
    let direct = weft(&["run", s(&dir)]);
    image(&c, &dir, "weft-test/timeout:1");
    let ran = c.run(&[], "weft-test/timeout:1", "timeout", &[]);
    ran.code(124).code(direct.code);
    let report = direct.stderr.replace(s(&dir.join("weft.toml")), "/weft.toml");
    assert_eq!(ran.stderr.lines().last(), report.lines().last(), "the same report, naming the image's manifest");
}

#[test]
fn twenty_containers_started_at_once_all_finish() {
    let c = Containerd::start("shim-twenty");
    image(&c, &example("hello"), "weft-test/hello:1");
    let children: Vec<Child> = (0..20)
        .map(|i| c.run_cmd(&[], "weft-test/hello:1", &format!("hello-{i}"), &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for child in children {
        finish(child).ok().stdout_has("Hello from weft!");
    }
}

/// `io.containerd.weft-vm.v1`: the same images, each container a bare-metal
/// unikernel under QEMU (`weft boot`), its volumes mounted for QEMU's disks.
#[test]
fn the_vm_runtime_boots_images_under_qemu_with_volumes_and_signals() {
    let c = Containerd::start("shim-vm");
    image(&c, &example("hello"), "weft-test/hello:1");
    let vm = output(c.run_on(WEFT_VM, &[], "weft-test/hello:1", "vm-hello", &[]).output().unwrap());
    vm.ok().stdout_has("Hello from weft!\nwall clock: 20");

    // The faulty disk, as `weft boot` reports it, on a volume a second VM reads.
    let example_dir = example("faulty-disk");
    image(&c, &example_dir, "weft-test/faulty-disk:1");
    let direct = weft(&["boot", s(&example_dir)]);
    let disk = blank_disk("shim-vm-volume");
    let mount = format!("type=bind,src={},dst=/disk.img,options=rbind:rw", s(&disk));
    let first = output(c.run_on(WEFT_VM, &["--mount", &mount], "weft-test/faulty-disk:1", "vm-fill", &[]).output().unwrap());
    first.code(direct.code);
    assert_eq!(report_line(&first.stdout, "wrote "), report_line(&direct.stdout, "wrote "));
    let second = output(c.run_on(WEFT_VM, &["--mount", &mount], "weft-test/faulty-disk:1", "vm-verify", &["verify"]).output().unwrap());
    std::fs::write(example_dir.join("weft.toml"), std::fs::read_to_string(example_dir.join("weft.toml")).unwrap().replace("[\"fill\", \"1000\"]", "[\"verify\"]")).unwrap();
    let direct_verify = weft(&["boot", s(&example_dir)]);
    assert_eq!(report_line(&second.stdout, "records "), report_line(&direct_verify.stdout, "records "));

    // Args replace [app] args; SIGTERM stops the VM.
    image(&c, &app("shim-vm-spin", "misbehave", "args = [\"exit\", \"3\"]\n"), "weft-test/misbehave:1");
    output(c.run_on(WEFT_VM, &[], "weft-test/misbehave:1", "vm-exit", &["exit", "4"]).output().unwrap()).code(4);
    let ctr = c.run_on(WEFT_VM, &[], "weft-test/misbehave:1", "vm-spin", &["spin"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    c.pid("vm-spin");
    std::thread::sleep(Duration::from_millis(500));
    checked(&mut c.ctr(&["tasks", "kill", "vm-spin"]));
    finish_within(ctr, Duration::from_secs(10)).code(143);
}
