//! Every example, run through the `weft` binary as a user would.

mod common;
use common::*;

#[test]
fn hello_greets_with_time_and_randomness() {
    let r = run(&example("hello"));
    r.ok().stdout_has("Hello from weft!\nwall clock: 20");
    let random: Vec<&str> = r.stdout.lines().filter_map(|l| l.strip_prefix("random: ")).collect();
    assert_eq!(random.len(), 1);
    assert_eq!(random[0].len(), 16);
    assert!(random[0].chars().all(|c| c.is_ascii_hexdigit()));
    // Two runs draw different bytes from the OS source.
    let again = run(&example("hello"));
    assert_ne!(r.stdout.lines().last(), again.stdout.lines().last());
}

/// `weft run` reserves address space for its instance pool; where a limit
/// (`ulimit -v`) refuses that, it allocates instances one by one and runs all the same.
#[test]
fn hello_runs_under_an_address_space_limit() {
    let weft = env!("CARGO_BIN_EXE_weft");
    let dir = example("hello");
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v 8000000 && exec {weft} run {}", dir.display()))
        .env("WEFT_CACHE_DIR", cache_dir())
        .env("RUST_LOG", "weft=debug");
    let r = output(c.output().unwrap());
    r.ok().stdout_has("Hello from weft!");
    r.stderr_has("allocating instances on demand");
}

#[test]
fn kvstore_persists_on_a_real_file() {
    let dir = example("kvstore");
    run(&dir).ok().stdout_has("wrote 1000 verified 1000 lost 0 corrupt 0");
    let img = std::fs::metadata(dir.join("disk.img")).unwrap();
    assert_eq!(img.len(), 16 << 20);
    let set_args = |args: &str| {
        let m = std::fs::read_to_string(dir.join("weft.toml")).unwrap();
        let m: String = m
            .lines()
            .map(|l| if l.starts_with("args") { format!("args = {args}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("weft.toml"), m).unwrap();
    };
    set_args(r#"["set", "colour", "blue"]"#);
    run(&dir).ok().stdout_has("ok");
    set_args(r#"["get", "colour"]"#);
    run(&dir).ok().stdout_has("blue");
    set_args(r#"["verify"]"#);
    run(&dir).ok().stdout_has("records 1001 valid 1001 lost 0 corrupt 0");
    set_args(r#"["get", "shape"]"#);
    run(&dir).code(1).stdout_has("not found: shape");
}

#[test]
fn faulty_disk_loses_every_hundredth_write_and_says_so() {
    let r = run(&example("faulty-disk"));
    r.code(1).stdout_has("wrote 1000 verified 990 lost 10 corrupt 0");
    let drops: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("[block-fault] dropped write #")).collect();
    assert_eq!(drops.len(), 10, "{}", r.stderr);
    assert!(drops[0].starts_with("[block-fault] dropped write #100 "), "{}", drops[0]);
}

#[test]
fn slow_disk_traces_latency() {
    let r = run(&example("slow-disk"));
    r.ok().stdout_has("wrote 50 verified 50 lost 0 corrupt 0");
    let writes: Vec<u64> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("[block-trace] write"))
        .map(|l| l.rsplit("duration-ns=").next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(writes.len(), 52, "format, 50 records, commit\n{}", r.stderr);
    assert!(writes.iter().all(|&ns| ns >= 2_000_000), "{writes:?}");
}

#[test]
fn hung_disk_is_stopped_by_the_timeout() {
    let t = std::time::Instant::now();
    let r = run(&example("hung-disk"));
    r.code(124)
        .stderr_has("[block-fault] hanging write #21")
        .stderr_has("error: block-fault (filter of device `storage`) did not finish within the timeout (2s");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn time_warp_runs_the_clock_back() {
    let r = run(&example("time-warp"));
    r.ok().stdout_has("Hello from weft!");
    let wall = r.stdout.lines().find_map(|l| l.strip_prefix("wall clock: ")).unwrap();
    // 2026-11-26T21:41:57.767Z: compare hours with the host's clock, two hours on.
    let hour: i64 = wall[11..13].parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let host_hour = (now / 3600) % 24;
    assert_eq!((hour + 2) % 24, host_hour, "{wall}");
}

#[test]
fn swapping_a_device_rebuilds_nothing() {
    // The kvstore in `kvstore` and in `faulty-disk` is byte-for-byte the same
    // component: only the manifest differs.
    let hash = |name: &str| {
        let r = weft(&["check", example(name).to_str().unwrap()]);
        r.ok();
        r.stdout.lines().find(|l| l.trim_start().starts_with("kvstore ")).unwrap().to_string()
    };
    assert_eq!(hash("kvstore"), hash("faulty-disk"));
}

#[test]
fn block_and_clock_chains_together() {
    // Both kinds of chain in one manifest (the linker instantiates block chains
    // before the clock chain whatever the manifest's order), and a filter's
    // clock is the host's: block-trace times real time under a frozen clock.
    let dir = manifest(
        "both-chains",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"3\"]\n\n[devices.clock]\nkind = \"clock\"\nfilters = [{ component = \"clock-skew\", config = { rate = 0 } }]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { latency = \"1ms\" } }, { component = \"block-trace\" }]\n",
    );
    let r = run(&dir);
    r.ok().stdout_has("wrote 3 verified 3 lost 0 corrupt 0").stderr_has("[clock-skew]");
    let durations: Vec<u64> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("[block-trace] write"))
        .map(|l| l.rsplit("duration-ns=").next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(durations.len(), 5, "{}", r.stderr);
    assert!(durations.iter().all(|&d| d >= 1_000_000), "{durations:?}");
}
