//! Traces (`weft run --record`): parsing (what `weft replay`, `weft boot
//! --replay` and `weft shrink` do first) and `weft trace show`, which
//! describes every record and summarises every received frame. Any bytes end
//! as an error naming what is wrong, or as a trace whose every record
//! prints; a trace never differs from itself.
//!
//! Traces end with a checksum; the target fixes it up for half the inputs,
//! so the fuzzer reaches the records behind it.
#![no_main]

use weft_runtime::bundle::checksum;
use weft_runtime::tape::Trace;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 18 && bytes[8] & 0x80 == 0 {
        let at = bytes.len() - 8;
        let sum = checksum(&bytes[..at]);
        bytes[at..].copy_from_slice(&sum.to_le_bytes());
    }
    let Ok(t) = Trace::parse(bytes.clone()) else { return };
    assert!(weft::trace::first_difference(&t, &t).is_none(), "a trace differs from itself");
    let _ = t.outcome();
    let mut r = t.replayer();
    while r.phase().is_ok() {}

    // `weft trace show` reads a file.
    let path = std::env::temp_dir().join(format!("weft-fuzz-trace-{}", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    weft::trace::show(&path, &mut std::io::sink()).expect("a parsed trace shows");
    let _ = std::fs::remove_file(&path);
});
