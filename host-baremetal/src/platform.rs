//! The hooks wasmtime's no_std build asks of its platform: two TLS slots
//! (one thread, so two statics) and where compiled code becomes executable
//! (everywhere: the identity map is RWX).

use core::sync::atomic::{AtomicPtr, Ordering};

static TLS: [AtomicPtr<u8>; 2] = [AtomicPtr::new(core::ptr::null_mut()), AtomicPtr::new(core::ptr::null_mut())];

#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    TLS[slot].load(Ordering::Relaxed)
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    TLS[slot].store(ptr, Ordering::Relaxed);
}

/// Code memory needs no permission change: every page is executable.
pub struct IdentityCode;

impl wasmtime::CustomCodeMemory for IdentityCode {
    fn required_alignment(&self) -> usize {
        1
    }

    fn publish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Ok(())
    }

    fn unpublish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Ok(())
    }
}
