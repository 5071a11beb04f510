//! The experiment's guest. The host instantiates it twice in one store: the
//! provider, whose `blocks`/`streams` exports hand out 4 KiB from a static
//! "disk" (copied out per read, as weft's `memory` block device copies out of
//! its image), and the consumer, whose `run-*` exports loop over the imports.
//! The consumer touches every read (its length, first and last byte).
#![no_std]

extern crate alloc;
// The allocator, panic handler and cabi_realloc weft's guests use.
use weft_guest as _;

use alloc::vec::Vec;

#[cfg(not(feature = "streams"))]
wit_bindgen::generate!({ world: "hop-sync", path: "../wit" });
#[cfg(feature = "streams")]
wit_bindgen::generate!({ world: "hop", path: "../wit" });

const BLOCK: usize = 4096;

/// The provider's device contents, on a page boundary like every buffer the
/// guest controls here: on this machine a 4 KiB `memmove` (glibc's
/// `rep movsb` path, which wasm's `memory.copy` and wasmtime's own copies
/// use) whose destination lies just past its source modulo 4096 (8 bytes:
/// where dlmalloc puts a 4 KiB block relative to a page-aligned one) takes
/// ~1,150 ns instead of ~42 (docs/benchmarks.md). Page-aligned buffers keep
/// every guest-controlled copy off that cliff, so the shapes are compared,
/// not the allocator's placement.
#[repr(C, align(4096))]
struct Page([u8; BLOCK]);
static DISK: Page = {
    let mut t = [0u8; BLOCK];
    let mut i = 0;
    while i < BLOCK {
        t[i] = (i * 7 + 1) as u8;
        i += 1;
    }
    Page(t)
};

/// An empty `Vec` of capacity `BLOCK` starting on a page boundary. dlmalloc
/// frees it whatever alignment the `Vec`'s own layout claims.
fn page_vec() -> Vec<u8> {
    use alloc::alloc::{Layout, alloc};
    let layout = Layout::from_size_align(BLOCK, BLOCK).unwrap();
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    unsafe { Vec::from_raw_parts(p, 0, BLOCK) }
}

/// The provider's copy out of its disk (as weft's `memory` device copies out
/// of its image).
fn read_disk(count: u32) -> Vec<u8> {
    let mut v = page_vec();
    v.extend_from_slice(&DISK.0[..(count as usize).min(BLOCK)]);
    v
}

fn touch(b: &[u8]) -> u64 {
    match b {
        [] => 0,
        [first, .., last] => b.len() as u64 + *first as u64 + *last as u64,
        [only] => 1 + *only as u64,
    }
}

struct Component;
export!(Component);

impl exports::exp::hop::blocks::Guest for Component {
    fn read_list(count: u32) -> Vec<u8> {
        read_disk(count)
    }
}

impl Guest for Component {
    fn run_list(n: u32) -> u64 {
        let mut acc = 0;
        for _ in 0..n {
            acc += touch(&exp::hop::blocks::read_list(BLOCK as u32));
        }
        acc
    }

    #[cfg(feature = "streams")]
    async fn run_alist(n: u32) -> u64 {
        let mut acc = 0;
        for _ in 0..n {
            acc += touch(&exp::hop::streams::read_alist(BLOCK as u32).await);
        }
        acc
    }

    #[cfg(feature = "streams")]
    async fn run_stream(n: u32) -> u64 {
        // The consumer's own buffer, reused: a stream read lands in memory the
        // reader chose, which a list result cannot.
        let mut buf = page_vec();
        let mut acc = 0;
        for _ in 0..n {
            let mut rx = exp::hop::streams::read_stream(BLOCK as u32).await;
            buf.clear();
            let (_, b) = rx.read(buf).await;
            buf = b;
            acc += touch(&buf);
        }
        acc
    }

    #[cfg(feature = "streams")]
    async fn run_open(n: u32) -> u64 {
        let mut buf = page_vec();
        let mut acc = 0;
        let mut rx = exp::hop::streams::open_stream(BLOCK as u32, n).await;
        for _ in 0..n {
            buf.clear();
            let (_, b) = rx.read(buf).await;
            buf = b;
            acc += touch(&buf);
        }
        acc
    }
}

#[cfg(feature = "streams")]
impl exports::exp::hop::streams::Guest for Component {
    async fn read_alist(count: u32) -> Vec<u8> {
        read_disk(count)
    }

    async fn read_stream(count: u32) -> wit_bindgen::StreamReader<u8> {
        let (mut tx, rx) = wit_stream::new::<u8>();
        let data = read_disk(count);
        // The write completes when the consumer reads; the task outlives the
        // return of the reader (the export's task exits after it).
        wit_bindgen::spawn_local(async move {
            let _ = tx.write_all(data).await;
        });
        rx
    }

    async fn open_stream(count: u32, n: u32) -> wit_bindgen::StreamReader<u8> {
        let (mut tx, rx) = wit_stream::new::<u8>();
        let count = (count as usize).min(BLOCK);
        wit_bindgen::spawn_local(async move {
            let mut buf = page_vec();
            for _ in 0..n {
                buf.clear();
                buf.extend_from_slice(&DISK.0[..count]);
                buf = tx.write_all(buf).await;
                if !buf.is_empty() {
                    break; // the reader went away
                }
            }
        });
        rx
    }
}
