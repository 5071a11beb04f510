//! A packed batch's frames, read as both sides of the bench read them: the guest here
//! and host-posix/benches/batches.rs (which includes this file). No imports: it builds
//! for wasm32 without std and on the host alike.

/// What a reader of a frame looks at: its length and both ends.
pub fn touch(f: &[u8]) -> u64 {
    f.len() as u64 + u64::from(f[0]) + u64::from(f[f.len() - 1])
}

/// The frames of a packed batch, as slices; `None` when `lens` claims more
/// bytes than `data` holds (lengths are untrusted input, unlike a list's).
pub fn split<'a>(data: &'a [u8], lens: &'a [u32]) -> Option<impl Iterator<Item = &'a [u8]> + 'a> {
    let total = lens.iter().try_fold(0usize, |s, &l| s.checked_add(l as usize))?;
    if total > data.len() {
        return None;
    }
    let mut off = 0;
    Some(lens.iter().map(move |&l| {
        let f = &data[off..off + l as usize];
        off += l as usize;
        f
    }))
}
