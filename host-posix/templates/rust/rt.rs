//! What `std` would supply, for a `#![no_std]` component: the allocator, the
//! panic handler, `cabi_realloc` and `memcmp`. A component built with `std`
//! imports WASI (`wasi:cli`, `wasi:io`) even when it does no I/O; without it
//! the component imports exactly the `weft:devices` interfaces it calls.

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug: trap, and weft prints the wasm backtrace naming this
/// component.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator: the host places the lists and strings it
/// passes in (arguments, results of imports) with it.
///
/// # Safety
/// Called by the host under the canonical ABI's contract: `old_ptr`,
/// `old_len` and `align` describe an allocation this function returned
/// (or `old_len` is 0).
#[unsafe(export_name = "cabi_realloc")]
pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    let ptr = unsafe {
        if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(old_ptr, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

// Slice and string comparisons call `memcmp`/`bcmp`, which wasm32-wasip2
// expects from wasi-libc; unresolved, they would become an `env` import no
// component can have. Plain byte loops (volatile reads, so that LLVM does not
// turn them back into calls to themselves).

/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
