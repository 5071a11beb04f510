//! Shared runtime for weft's guest components.
//!
//! Every guest is `#![no_std]` + `alloc` so that the component it becomes imports only
//! `weft:devices` interfaces and no WASI. This crate supplies what `std` would have:
//! the global allocator, the panic handler and the `cabi_realloc` export (wit-bindgen 0.61
//! only ships its own `cabi_realloc` for wasip1, not for wasip2). All three exist only on
//! `wasm32`, so the rest of the crate (PRNG, config parsing, formatting) builds and is
//! unit-tested on the host:
//!
//! ```text
//! cargo test -p weft-guest --target x86_64-unknown-linux-gnu --manifest-path components/Cargo.toml
//! ```
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cell;
pub mod checksum;
pub mod config;
pub mod fmt;
pub mod observe;
pub mod parse;
pub mod rng;
pub mod serve;

pub use cell::Global;
pub use config::{Config, Schedule};
pub use rng::Rng;

#[cfg(target_arch = "wasm32")]
mod rt {
    #[global_allocator]
    static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

    /// A panic is a bug in the guest: trap, and let the host print the wasm backtrace that
    /// names the component. Formatting the message would pull in `core::fmt` machinery for
    /// nothing the host could show.
    #[cfg(not(test))]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        core::arch::wasm32::unreachable()
    }

    /// The canonical ABI's allocator: the host calls it to place lists and strings it
    /// passes in (arguments, results of imports) into our linear memory.
    ///
    /// # Safety
    /// Called by the host with the canonical ABI contract: `old_ptr`/`old_len`/`align`
    /// describe an allocation this function returned before (or `old_len == 0`).
    #[unsafe(export_name = "cabi_realloc")]
    pub unsafe extern "C" fn cabi_realloc(
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        use alloc::alloc::{Layout, alloc, realloc};
        let ptr = unsafe {
            if old_len == 0 {
                if new_len == 0 {
                    return align as *mut u8;
                }
                alloc(Layout::from_size_align_unchecked(new_len, align))
            } else {
                realloc(
                    old_ptr,
                    Layout::from_size_align_unchecked(old_len, align),
                    new_len,
                )
            }
        };
        if ptr.is_null() {
            core::arch::wasm32::unreachable();
        }
        ptr
    }

    // wasm32-wasip2 expects wasi-libc to provide the C memory routines; `memcpy`,
    // `memmove` and `memset` come from compiler_builtins, but `memcmp`/`bcmp` (emitted for
    // slice equality) do not, and an unresolved one becomes an `env::memcmp` import that
    // cannot be made into a component. The loops below are plain byte loops so that LLVM
    // does not turn them back into calls to themselves.

    /// # Safety
    /// `a` and `b` are valid for `n` bytes.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut i = 0;
        while i < n {
            let (x, y) = unsafe {
                (
                    core::ptr::read_volatile(a.add(i)),
                    core::ptr::read_volatile(b.add(i)),
                )
            };
            if x != y {
                return x as i32 - y as i32;
            }
            i += 1;
        }
        0
    }

    /// # Safety
    /// `a` and `b` are valid for `n` bytes.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        unsafe { memcmp(a, b, n) }
    }
}
