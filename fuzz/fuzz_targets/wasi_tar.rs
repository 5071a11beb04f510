//! Tar images, the read-only trees the `wasi` component serves to stock
//! programs (`[wasi] preopens = { "/" = "tar:<role>" }`): indexing and
//! then reading every node the way a program walking the tree would. Any
//! bytes end as an error naming the offset, or as a tree whose every file
//! reads within the image.
//!
//! Tar headers carry checksums; the target fixes up every block's for half
//! the inputs, so the fuzzer reaches the parser behind them.
#![no_main]

extern crate alloc;

#[path = "../../components/devices/wasi/src/fs/tar.rs"]
#[allow(dead_code)]
mod tar;

/// The one binding type the tar reader uses, as wit-bindgen generates it.
mod exports {
    pub mod wasi {
        pub mod filesystem {
            pub mod types {
                #[allow(dead_code)]
                #[derive(Clone, Copy, Debug, PartialEq, Eq)]
                pub enum DescriptorType {
                    Unknown,
                    BlockDevice,
                    CharacterDevice,
                    Directory,
                    Fifo,
                    SymbolicLink,
                    RegularFile,
                    Socket,
                }
            }
        }
    }
}

struct Image<'a>(&'a [u8]);

impl tar::Source for Image<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(offset).map_err(|_| "offset".to_string())?;
        let end = start.checked_add(buf.len()).filter(|&e| e <= self.0.len()).ok_or("past the end")?;
        buf.copy_from_slice(&self.0[start..end]);
        Ok(())
    }
}

/// Writes each 512-byte block's checksum field as a header's would be.
fn seal_all(bytes: &mut [u8]) {
    for h in bytes.chunks_exact_mut(512) {
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(&text.as_bytes()[text.len() - 8..]);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if data.first().is_some_and(|b| b & 1 == 0) {
        seal_all(&mut bytes);
    }
    let image = Image(&bytes);
    let Ok(ix) = tar::index_with_limit(&image, 4096) else { return };
    let mut budget = 1 << 22;
    for (node, e) in ix.nodes.iter().enumerate() {
        match &e.body {
            tar::Body::Dir(children) => {
                for (name, &child) in children {
                    assert_eq!(ix.child(node as u32, name), Some(child));
                    assert!(ix.entry(child).is_some(), "a directory entry names a node that does not exist");
                }
            }
            tar::Body::File { offset, size } => {
                assert!(offset.checked_add(*size).is_some_and(|end| end <= bytes.len() as u64), "a file lies outside the image");
                let mut at = 0;
                loop {
                    let (chunk, eof) = ix.read(&image, node as u32, at, 1 << 16).expect("an indexed file reads");
                    at += chunk.len() as u64;
                    budget -= chunk.len().min(budget);
                    if eof || budget == 0 {
                        break;
                    }
                    assert!(!chunk.is_empty(), "a read before the end returned nothing");
                }
            }
            tar::Body::Symlink(_) | tar::Body::Other(_) => {}
        }
    }
    let _ = ix.counts();
});
