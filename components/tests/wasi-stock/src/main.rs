//! A stock WASI program: plain Rust std, built for wasm32-wasip2 like any
//! other. Nothing here knows about weft; under `weft run` its std calls reach
//! weft's devices through the `wasi` component.
//!
//! `wasi-stock [hello|time|env|exit N|panic|stdin|files PATH]`

use std::io::{Read, Write};
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
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(2);
        }
    }
}
