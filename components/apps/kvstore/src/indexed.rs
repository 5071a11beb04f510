//! The kvstore with an in-memory index of the latest value per key: what a
//! long-running user of the store (`httpd`, the `kv` provider) keeps in front
//! of the log. Opening scans the whole log once; every `put` is a committed,
//! flushed, read-back record before the index changes.
//!
//! Compiled into each user with `#[path]` beside `format.rs` and `store.rs`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::store::{Device, Store};

pub struct Indexed<D: Device> {
    store: Store<D>,
    index: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Valid records the opening scan found.
    pub valid: u64,
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).trim_end().into()
}

impl<D: Device> Indexed<D> {
    /// Opens the store on `dev` (formatting a blank, writable device) and
    /// reads the log into the index. Errors are one line.
    pub fn open(dev: D, sector_size: u32, sector_count: u64, read_only: bool) -> Result<Self, String> {
        let mut store = Store::open(dev, sector_size, sector_count, read_only).map_err(|o| text(&o.output))?;
        let mut index = BTreeMap::new();
        let (scan, _, _) = store
            .scan(|_, k, v| {
                index.insert(k.to_vec(), v.to_vec());
            })
            .map_err(|e| format!("scan: {} failed: {}", e.op, e.code))?;
        Ok(Indexed { store, index, valid: scan.valid })
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.index.get(key).map(Vec::as_slice)
    }

    /// Appends, commits and reads back one record; only then is it indexed.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let out = match self.store.put(key, value) {
            Ok(o) | Err(o) => o,
        };
        if out.code != 0 {
            return Err(text(&out.output));
        }
        self.index.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    /// Keys with a value, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.index.keys().map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}
