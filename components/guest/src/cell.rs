//! Global state for a component's exports.

use core::cell::RefCell;

/// A `static`-friendly `RefCell`. A component instance is single-threaded and the
/// component model forbids re-entering an instance while it is running an export, so a
/// `borrow_mut` per export call cannot conflict.
pub struct Global<T>(RefCell<T>);

// SAFETY: wasm32 guests have one thread; on the host this type is only used by
// single-threaded unit tests.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(value: T) -> Global<T> {
        Global(RefCell::new(value))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}
