//! Bundles, the file `weft boot` hands the kernel: decoding (what the kernel
//! and the host both do) and the QEMU command line the host derives from it.
//! A bundle that decodes re-encodes to bytes that decode to the same bundle,
//! and its disk images never leave the folder its manifest names.
//!
//! Bundles carry a checksum; the target fixes it up for half the inputs, so
//! the fuzzer reaches the decoder behind it.
#![no_main]

use std::path::Path;

use weft::boot::{BootOptions, Machine};
use weft::symbolize::{RawFrame, Symbols, format_frame};
use weft_runtime::bundle::{Bundle, checksum};

/// Magic (8), format (4), payload length (8), checksum (8).
const HEADER: usize = 28;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= HEADER && bytes[HEADER - 1] & 1 == 0 {
        let len = (bytes.len() - HEADER) as u64;
        let sum = checksum(&bytes[HEADER..]);
        bytes[12..20].copy_from_slice(&len.to_le_bytes());
        bytes[20..28].copy_from_slice(&sum.to_le_bytes());
    }
    let Ok(b) = Bundle::decode(&bytes, None) else { return };
    let again = b.encode();
    let b2 = Bundle::decode(&again, None).expect("a re-encoded bundle decodes");
    assert_eq!(b2.encode(), again, "decode and encode are inverses");

    // `weft boot` reads each component's symbols and symbolizes the frames
    // the kernel reports against them (DWARF from the bundle: outside input).
    for (i, c) in b2.components.iter().enumerate() {
        let Some(s) = Symbols::decode(c.symbols) else { continue };
        assert_eq!(s.encode(), c.symbols, "symbols decode and encode are inverses");
        for module in 0..4 {
            let (range, name) = s.module(module as usize).unwrap_or((0..0, None));
            let frame = RawFrame {
                index: i,
                component: Some(i),
                module: Some(module),
                offset: Some(range.start.wrapping_add(c.bytes.len() as u64 % range.end.saturating_sub(range.start).max(1))),
                func_index: module,
                module_name: name.map(String::from),
                func_name: Some("_ZN4weft4main17h0123456789abcdefE".into()),
            };
            let _ = format_frame(&frame, Some(&s));
        }
    }

    // The host side of `weft boot`: the QEMU command line. Disk images are
    // created relative to the bundle's manifest folder, so point that at a
    // scratch folder, and check nothing escaped it.
    let scratch = std::env::temp_dir().join("weft-fuzz-bundle");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let manifest = scratch.join("app").join("weft.toml");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    let mut b = b2;
    b.manifest = manifest.display().to_string();
    let opts = BootOptions {
        machine: if data.len() % 2 == 0 { Machine::Microvm } else { Machine::Q35 },
        kvm: false,
        pulley: false,
        qemu_timeout: None,
        sim: Default::default(),
        replay: None,
        stats: false,
        gdb: None,
    };
    if let Ok(cmd) = weft::boot::qemu_command(Path::new("kernel"), Path::new("bundle"), &b, &opts) {
        for arg in cmd.get_args() {
            let arg = arg.to_string_lossy();
            if let Some(file) = arg.strip_prefix("file=") {
                let file = file.split(",format=").next().unwrap().replace(",,", ",");
                let canon = Path::new(&file).canonicalize().unwrap();
                assert!(canon.starts_with(scratch.join("app").canonicalize().unwrap()), "disk {file} is outside the manifest's folder");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
});
