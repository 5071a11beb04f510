//! `wasi:filesystem`, denied by default: there are no preopened directories, and a
//! descriptor can only be reached from one, so none can exist.
//!
//! The resource types are uninhabited enums: a method on them cannot be called, and
//! each body is `match *self {}`, which the compiler checks is exhaustive. That is the
//! "never panics" guarantee in its strongest form — there is no code path at all — and
//! if preopens are ever added, the compiler points at every method to implement.

use alloc::string::String;
use alloc::vec::Vec;

use crate::WasiOnWeft;
use crate::exports::wasi::filesystem::preopens;
use crate::exports::wasi::filesystem::types::{
    Advice, Descriptor, DescriptorBorrow, DescriptorFlags, DescriptorStat, DescriptorType,
    DirectoryEntry, DirectoryEntryStream, ErrorBorrow, ErrorCode, Filesize, Guest, GuestDescriptor,
    GuestDirectoryEntryStream, InputStream, MetadataHashValue, NewTimestamp, OpenFlags,
    OutputStream, PathFlags,
};

/// A file or directory: none exists.
pub enum NoDescriptor {}

/// A directory listing: none exists (it needs a descriptor).
pub enum NoDirectoryEntryStream {}

impl Guest for WasiOnWeft {
    type Descriptor = NoDescriptor;
    type DirectoryEntryStream = NoDirectoryEntryStream;

    /// No stream error of this component is a filesystem error.
    fn filesystem_error_code(_err: ErrorBorrow<'_>) -> Option<ErrorCode> {
        None
    }
}

impl preopens::Guest for WasiOnWeft {
    /// No directory is granted.
    fn get_directories() -> Vec<(Descriptor, String)> {
        Vec::new()
    }
}

impl GuestDirectoryEntryStream for NoDirectoryEntryStream {
    fn read_directory_entry(&self) -> Result<Option<DirectoryEntry>, ErrorCode> {
        match *self {}
    }
}

impl GuestDescriptor for NoDescriptor {
    fn read_via_stream(&self, _offset: Filesize) -> Result<InputStream, ErrorCode> {
        match *self {}
    }

    fn write_via_stream(&self, _offset: Filesize) -> Result<OutputStream, ErrorCode> {
        match *self {}
    }

    fn append_via_stream(&self) -> Result<OutputStream, ErrorCode> {
        match *self {}
    }

    fn advise(&self, _: Filesize, _: Filesize, _: Advice) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn sync_data(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn get_flags(&self) -> Result<DescriptorFlags, ErrorCode> {
        match *self {}
    }

    fn get_type(&self) -> Result<DescriptorType, ErrorCode> {
        match *self {}
    }

    fn set_size(&self, _size: Filesize) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn set_times(&self, _: NewTimestamp, _: NewTimestamp) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn read(&self, _: Filesize, _: Filesize) -> Result<(Vec<u8>, bool), ErrorCode> {
        match *self {}
    }

    fn write(&self, _: Vec<u8>, _: Filesize) -> Result<Filesize, ErrorCode> {
        match *self {}
    }

    fn read_directory(&self) -> Result<DirectoryEntryStream, ErrorCode> {
        match *self {}
    }

    fn sync(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn create_directory_at(&self, _path: String) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn stat(&self) -> Result<DescriptorStat, ErrorCode> {
        match *self {}
    }

    fn stat_at(&self, _: PathFlags, _: String) -> Result<DescriptorStat, ErrorCode> {
        match *self {}
    }

    fn set_times_at(
        &self,
        _: PathFlags,
        _: String,
        _: NewTimestamp,
        _: NewTimestamp,
    ) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn link_at(
        &self,
        _: PathFlags,
        _: String,
        _: DescriptorBorrow<'_>,
        _: String,
    ) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn open_at(
        &self,
        _: PathFlags,
        _: String,
        _: OpenFlags,
        _: DescriptorFlags,
    ) -> Result<Descriptor, ErrorCode> {
        match *self {}
    }

    fn readlink_at(&self, _path: String) -> Result<String, ErrorCode> {
        match *self {}
    }

    fn remove_directory_at(&self, _path: String) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn rename_at(&self, _: String, _: DescriptorBorrow<'_>, _: String) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn symlink_at(&self, _: String, _: String) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn unlink_file_at(&self, _path: String) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn is_same_object(&self, _other: DescriptorBorrow<'_>) -> bool {
        match *self {}
    }

    fn metadata_hash(&self) -> Result<MetadataHashValue, ErrorCode> {
        match *self {}
    }

    fn metadata_hash_at(&self, _: PathFlags, _: String) -> Result<MetadataHashValue, ErrorCode> {
        match *self {}
    }
}
