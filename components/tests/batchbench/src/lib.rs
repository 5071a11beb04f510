//! `batchbench`: a batch of Ethernet frames crossing the component boundary as
//! a `list<list<u8>>` (how `net.send`/`net.receive` move them) against one
//! packed `list<u8>` plus a `list<u32>` of lengths (issue 14, part 3).
//!
//! The host (host-posix/benches/batches.rs) instantiates this component twice
//! in one store: the consumer, whose `run` loops over an import, and for a
//! hop the provider, whose `frames` export the host calls from inside that
//! import, the way the runtime links `net` to a filter. Both sides touch
//! every frame (its length, first and last byte), as a stack or filter reads
//! headers, and a packed consumer pays for splitting the buffer (slices) and,
//! in the `*_BUILT`/`*_OWNED` variants, for the copy a packed shape adds
//! when frames are built apart or must be kept apart.
#![no_std]

extern crate alloc;
// The allocator, panic handler and cabi_realloc.
use weft_guest as _;

use alloc::vec;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "batchbench", path: "wit" });

use exports::weft::batchbench::frames::Guest as Frames;
use weft::batchbench::frames;

/// Largest frame: 14 bytes of header and a 1500-byte payload.
const MAX: usize = 1514;

/// What frames hold: any bytes will do, the same for both shapes.
static TEMPLATE: [u8; MAX] = {
    let mut t = [0u8; MAX];
    let mut i = 0;
    while i < MAX {
        t[i] = (i * 7 + 1) as u8;
        i += 1;
    }
    t
};

/// `run`'s `which`: the direction and the shape.
mod which {
    /// `give-lists`: frames into the caller as a list of lists.
    pub const RECEIVE_LISTS: u32 = 0;
    /// `give-packed`, split into slices of the buffer.
    pub const RECEIVE_PACKED: u32 = 1;
    /// `give-packed`, each frame then copied into a `Vec` of its own (a
    /// consumer that keeps frames apart, as `tcpip`'s receive queue does).
    pub const RECEIVE_PACKED_OWNED: u32 = 2;
    /// `take-lists` of frames the caller keeps (as `tcpip` reuses its buffers).
    pub const SEND_LISTS: u32 = 3;
    /// `take-packed` of a buffer the caller built the frames in.
    pub const SEND_PACKED: u32 = 4;
    /// `take-packed` of frames built apart, copied into the buffer per batch.
    pub const SEND_PACKED_BUILT: u32 = 5;
}

mod packed;
use packed::{split, touch};

fn frame(size: u32) -> &'static [u8] {
    &TEMPLATE[..(size as usize).clamp(1, MAX)]
}

struct BatchBench;

impl Guest for BatchBench {
    fn run(which: u32, n: u32, size: u32, iters: u32) -> u64 {
        let f = frame(size);
        let lists: Vec<Vec<u8>> = (0..n).map(|_| f.to_vec()).collect();
        let packed: Vec<u8> = lists.concat();
        let mut lens: Vec<u32> = vec![f.len() as u32; n as usize];
        let mut acc = 0u64;
        match which {
            which::RECEIVE_LISTS => {
                for _ in 0..iters {
                    let got = frames::give_lists(n, size);
                    acc += got.iter().map(|f| touch(f)).sum::<u64>();
                }
            }
            which::RECEIVE_PACKED => {
                for _ in 0..iters {
                    let (data, lens) = frames::give_packed(n, size);
                    acc += split(&data, &lens).expect("lengths").map(touch).sum::<u64>();
                }
            }
            which::RECEIVE_PACKED_OWNED => {
                for _ in 0..iters {
                    let (data, lens) = frames::give_packed(n, size);
                    let got: Vec<Vec<u8>> = split(&data, &lens).expect("lengths").map(<[u8]>::to_vec).collect();
                    acc += got.iter().map(|f| touch(f)).sum::<u64>();
                }
            }
            which::SEND_LISTS => {
                for _ in 0..iters {
                    acc += u64::from(frames::take_lists(&lists));
                }
            }
            which::SEND_PACKED => {
                for _ in 0..iters {
                    acc += u64::from(frames::take_packed(&packed, &lens));
                }
            }
            which::SEND_PACKED_BUILT => {
                let mut buf: Vec<u8> = Vec::with_capacity(packed.len());
                for _ in 0..iters {
                    buf.clear();
                    lens.clear();
                    for f in &lists {
                        buf.extend_from_slice(f);
                        lens.push(f.len() as u32);
                    }
                    acc += u64::from(frames::take_packed(&buf, &lens));
                }
            }
            _ => unreachable!("unknown `which` {which}"),
        }
        acc
    }
}

/// The provider of a hop: takes and gives frames as a pass-through filter
/// would, reading each one. `give-*` copies them from a template, which
/// stands for the lowering from the hop below that handed them to a filter
/// (n + 1 allocations for a list of lists, 2 for a packed batch, like it).
impl Frames for BatchBench {
    fn take_lists(frames: Vec<Vec<u8>>) -> u32 {
        core::hint::black_box(frames.iter().map(|f| touch(f)).sum::<u64>());
        frames.len() as u32
    }

    fn take_packed(data: Vec<u8>, lens: Vec<u32>) -> u32 {
        match split(&data, &lens) {
            Some(fs) => {
                core::hint::black_box(fs.map(touch).sum::<u64>());
                lens.len() as u32
            }
            None => 0,
        }
    }

    fn give_lists(n: u32, size: u32) -> Vec<Vec<u8>> {
        let f = frame(size);
        (0..n).map(|_| f.to_vec()).collect()
    }

    fn give_packed(n: u32, size: u32) -> (Vec<u8>, Vec<u32>) {
        let f = frame(size);
        let mut data = Vec::with_capacity(n as usize * f.len());
        for _ in 0..n {
            data.extend_from_slice(f);
        }
        (data, vec![f.len() as u32; n as usize])
    }
}

export!(BatchBench);
