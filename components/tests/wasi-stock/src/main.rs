//! A stock WASI program: plain Rust std, built for wasm32-wasip2 like any
//! other. Nothing here knows about weft; under `weft run` its std calls reach
//! weft's devices through the `wasi` component.
//!
//! `wasi-stock [hello|time|env|exit N|panic|stdin|files PATH|fs OP:PATH...|serve PORT N]`
//!
//! `fs` runs file operations in order, one or more lines of output each:
//! `ls:DIR` (the tree under DIR), `read:FILE` (length, FNV-1a hash, and the
//! content if it is short text, else its first bytes in hex), `write:FILE`
//! (writes a line), `scratch:DIR` (write, read back, rename and remove in a
//! writable DIR), `put:FILE=TEXT` (create or truncate, write TEXT, `sync_all`),
//! `putnosync:FILE=TEXT` (the same without the sync), `mkdir:DIR`, `rm:FILE`,
//! `mv:FROM=TO` and `ln:FROM=TO` (a hard link), `panic:TEXT` (a trap), `seq:FILE=MIB` (writes MIB MiB in 1 MiB
//! writes and `sync_all`s, then reads the file back in 1 MiB reads; prints both rates:
//! the sequential-throughput benchmark, built natively too). Failures print the error's
//! kind and text; nothing panics.
//! `serve PORT N` is a TCP echo server on `0.0.0.0:PORT` for N connections
//! (each echoed until the peer half-closes); a failed bind prints the error and
//! exits with 1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str).unwrap_or("hello") {
        "hello" => {
            println!("hello from a stock WASI program");
            eprintln!("and this went to stderr");
        }
        "time" => {
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let t = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            println!("wall {wall}");
            println!("slept-ms {}", t.elapsed().as_millis());
        }
        "env" => {
            println!("args {:?}", &args[1..]);
            let mut vars: Vec<(String, String)> = std::env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("env {k}={v}");
            }
            println!("cwd {:?}", std::env::current_dir().map(|p| p.display().to_string()).ok());
        }
        "exit" => {
            let code: i32 = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(0);
            std::io::stdout().flush().ok();
            std::process::exit(code);
        }
        "panic" => panic!("a stock program panicked"),
        "stdin" => {
            let mut buf = Vec::new();
            let n = std::io::stdin().read_to_end(&mut buf).map_err(|e| e.kind());
            println!("stdin {n:?}");
        }
        "files" => {
            let path = args.get(2).map_or("/etc/passwd", String::as_str);
            match std::fs::read_to_string(path) {
                Ok(s) => println!("read {} bytes from {path}", s.len()),
                Err(e) => println!("cannot read {path}: {:?}", e.kind()),
            }
        }
        "fs" => {
            for op in &args[2..] {
                fs_op(op);
            }
        }
        "serve" => {
            let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(7);
            let conns: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
            serve(port, conns);
        }
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(2);
        }
    }
}

/// One error as the tests match it: its kind, then its text.
fn err(e: &std::io::Error) -> String {
    format!("err {:?} ({e})", e.kind())
}

fn fs_op(op: &str) {
    let (what, path) = op.split_once(':').unwrap_or((op, ""));
    match what {
        "ls" => {
            println!("ls {path}");
            tree(Path::new(path), 1);
        }
        "read" => match std::fs::read(path) {
            Ok(bytes) => {
                // Short text in full; otherwise its first bytes in hex.
                let shown = match std::str::from_utf8(&bytes) {
                    Ok(text) if text.len() <= 256 => format!("{text:?}"),
                    _ => bytes.iter().take(8).map(|b| format!("{b:02x}")).collect(),
                };
                println!("read {path}: {} bytes, fnv {:016x}, {shown}", bytes.len(), fnv(&bytes));
            }
            Err(e) => println!("read {path}: {}", err(&e)),
        },
        "write" => match std::fs::write(path, b"written by wasi-stock\n") {
            Ok(()) => println!("write {path}: ok"),
            Err(e) => println!("write {path}: {}", err(&e)),
        },
        "scratch" => scratch(Path::new(path)),
        "panic" => panic!("{path}"),
        "put" | "putnosync" => {
            let (file, text) = path.split_once('=').unwrap_or((path, ""));
            let r = std::fs::File::create(file).and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                if what == "put" { f.sync_all() } else { Ok(()) }
            });
            match r {
                Ok(()) => println!("{what} {file}: ok"),
                Err(e) => println!("{what} {file}: {}", err(&e)),
            }
        }
        "seq" => {
            let (file, mib) = path.split_once('=').unwrap_or((path, "64"));
            let mib: usize = mib.parse().unwrap_or(64);
            match sequential(Path::new(file), mib) {
                Ok((w, r)) => println!("seq {file}: {mib} MiB, write {w:.1} MiB/s, read {r:.1} MiB/s"),
                Err(e) => println!("seq {file}: {}", err(&e)),
            }
        }
        "mkdir" => match std::fs::create_dir(path) {
            Ok(()) => println!("mkdir {path}: ok"),
            Err(e) => println!("mkdir {path}: {}", err(&e)),
        },
        "rm" => match std::fs::remove_file(path) {
            Ok(()) => println!("rm {path}: ok"),
            Err(e) => println!("rm {path}: {}", err(&e)),
        },
        "ln" => {
            let (from, to) = path.split_once('=').unwrap_or((path, ""));
            match std::fs::hard_link(from, to) {
                Ok(()) => println!("ln {from} {to}: ok"),
                Err(e) => println!("ln {from} {to}: {}", err(&e)),
            }
        }
        "mv" => {
            let (from, to) = path.split_once('=').unwrap_or((path, ""));
            match std::fs::rename(from, to) {
                Ok(()) => println!("mv {from} {to}: ok"),
                Err(e) => println!("mv {from} {to}: {}", err(&e)),
            }
        }
        other => println!("unknown fs op {other}"),
    }
}

/// The entries under `dir`, sorted, with kind and size, indented by depth.
/// Writes `mib` MiB to `file` (1 MiB writes, then `sync_all`) and reads it back
/// (1 MiB reads), checking every byte read: the two rates in MiB/s. The read rate
/// times the reads alone, not the check.
fn sequential(file: &Path, mib: usize) -> std::io::Result<(f64, f64)> {
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let t = Instant::now();
    let mut f = std::fs::File::create(file)?;
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    drop(f);
    let write = mib as f64 / t.elapsed().as_secs_f64();
    let mut reading = std::time::Duration::ZERO;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let t = Instant::now();
        let n = f.read(&mut buf)?;
        reading += t.elapsed();
        if n == 0 {
            break;
        }
        // The file is `chunk` over and over: byte k of it is chunk[k % 1 MiB].
        let at = total % chunk.len();
        let want = chunk[at..].iter().chain(chunk.iter()).take(n);
        if let Some(k) = buf[..n].iter().zip(want).position(|(a, b)| a != b) {
            return Err(std::io::Error::other(format!("byte {} read back differs from what was written", total + k)));
        }
        total += n;
    }
    let read = mib as f64 / reading.as_secs_f64();
    if total != mib << 20 {
        return Err(std::io::Error::other(format!("read back {total} bytes of {}", mib << 20)));
    }
    Ok((write, read))
}

fn tree(dir: &Path, depth: usize) {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>(),
        Err(e) => Err(e),
    };
    if let Ok(entries) = &mut entries {
        entries.sort_by_key(|e| e.file_name());
    }
    let entries = match entries {
        Ok(entries) => entries,
        Err(e) => return println!("{}{}", "  ".repeat(depth), err(&e)),
    };
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let indent = "  ".repeat(depth);
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                println!("{indent}dir {name}");
                tree(&e.path(), depth + 1);
            }
            Ok(t) if t.is_symlink() => println!("{indent}link {name}"),
            Ok(_) => println!("{indent}file {name} {}", e.metadata().map_or(0, |m| m.len())),
            Err(e) => println!("{indent}{name}: {}", err(&e)),
        }
    }
}

/// Write, read back, rename and remove a file in the writable `dir`.
fn scratch(dir: &Path) {
    let a = dir.join("a.txt");
    let b = dir.join("b.txt");
    let show = |step: &str, r: std::io::Result<String>| match r {
        Ok(v) if v.is_empty() => println!("scratch {step}: ok"),
        Ok(v) => println!("scratch {step}: ok {v}"),
        Err(e) => println!("scratch {step}: {}", err(&e)),
    };
    show("write", std::fs::write(&a, b"hello scratch").map(|()| String::new()));
    show("read", std::fs::read_to_string(&a).map(|s| format!("{s:?}")));
    show("rename", std::fs::rename(&a, &b).map(|()| String::new()));
    show("read renamed", std::fs::read_to_string(&b).map(|s| format!("{s:?}")));
    show("read old", std::fs::read_to_string(&a).map(|s| format!("{s:?}")));
    show("remove", std::fs::remove_file(&b).map(|()| String::new()));
    show("read removed", std::fs::read_to_string(&b).map(|s| format!("{s:?}")));
    show("list", std::fs::read_dir(dir).map(|rd| format!("{} entries", rd.count())));
}

/// 64-bit FNV-1a.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Echo `conns` TCP connections on `0.0.0.0:port`, one after another.
fn serve(port: u16, conns: usize) {
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            println!("bind port {port}: {}", err(&e));
            std::io::stdout().flush().ok();
            std::process::exit(1);
        }
    };
    println!("listening on port {port}");
    for i in 0..conns {
        let (mut s, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) => return println!("accept: {}", err(&e)),
        };
        let mut buf = [0u8; 16384];
        let mut total = 0usize;
        let result = loop {
            match s.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    total += n;
                    if let Err(e) = s.write_all(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => println!("connection {i}: echoed {total} bytes"),
            Err(e) => println!("connection {i}: {} after {total} bytes", err(&e)),
        }
    }
}
