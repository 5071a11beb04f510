//! Filters that only observe (`wit/watch.wit`): the runtime links the
//! device above such a filter straight to the device below and hands the
//! filter what it asked for, after it passed — for a net filter copies of
//! frames, for a block filter a record of each operation — no call and no
//! copy for the rest, and never a round trip through it.

use alloc::vec::Vec;
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::devices::{Direction, ErrorCode, Geometry};

/// `weft:devices/net-watch.interest`.
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct Interest {
    pub ethertypes: Vec<u16>,
    pub inbound: bool,
    pub outbound: bool,
}

impl Interest {
    /// Whether a frame going `direction` is one the watcher asked for.
    pub fn wants(&self, direction: Direction, frame: &[u8]) -> bool {
        let way = match direction {
            Direction::Inbound => self.inbound,
            Direction::Outbound => self.outbound,
        };
        way && (self.ethertypes.is_empty()
            || frame.len() >= 14 && self.ethertypes.contains(&u16::from_be_bytes([frame[12], frame[13]])))
    }

    /// Copies of the frames it asked for, in order.
    pub fn pick<'a>(&self, direction: Direction, frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
        frames.into_iter().filter(|f| self.wants(direction, f)).map(<[u8]>::to_vec).collect()
    }
}

/// `weft:devices/block-watch.op`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum BlockOp {
    #[component(name = "open")]
    Open,
    #[component(name = "info")]
    Info,
    #[component(name = "read")]
    Read,
    #[component(name = "write")]
    Write,
    #[component(name = "flush")]
    Flush,
}

/// `weft:devices/block-watch.interest`: the operations a block observer is
/// handed.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[component(record)]
pub struct BlockInterest {
    pub open: bool,
    pub info: bool,
    pub read: bool,
    pub write: bool,
    pub flush: bool,
}

impl BlockInterest {
    /// Whether the observer asked for `op`.
    pub fn wants(&self, op: BlockOp) -> bool {
        match op {
            BlockOp::Open => self.open,
            BlockOp::Info => self.info,
            BlockOp::Read => self.read,
            BlockOp::Write => self.write,
            BlockOp::Flush => self.flush,
        }
    }
}

/// `weft:devices/block-watch.call`: one operation, after it returned.
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct BlockCall {
    pub op: BlockOp,
    pub dev: u32,
    pub sector: u64,
    pub count: u32,
    pub bytes: u64,
    pub outcome: Result<(), ErrorCode>,
    pub geometry: Option<Geometry>,
    #[component(name = "duration-ns")]
    pub duration_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 60];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn a_watcher_gets_its_ethertypes_in_its_directions_only() {
        let arp = Interest { ethertypes: alloc::vec![0x0806], inbound: true, outbound: false };
        let frames = [frame(0x0800), frame(0x0806), alloc::vec![8u8, 6], frame(0x0806)];
        let picked = arp.pick(Direction::Inbound, frames.iter().map(Vec::as_slice));
        assert_eq!(picked, [frame(0x0806), frame(0x0806)]);
        assert!(arp.pick(Direction::Outbound, frames.iter().map(Vec::as_slice)).is_empty());
        let all = Interest { ethertypes: Vec::new(), inbound: true, outbound: true };
        assert_eq!(all.pick(Direction::Outbound, frames.iter().map(Vec::as_slice)).len(), 4, "runts too");
    }

    #[test]
    fn a_block_watcher_gets_the_operations_it_named() {
        let flushes = BlockInterest { flush: true, ..BlockInterest::default() };
        let ops = [BlockOp::Open, BlockOp::Info, BlockOp::Read, BlockOp::Write, BlockOp::Flush];
        assert_eq!(ops.iter().filter(|&&op| flushes.wants(op)).collect::<Vec<_>>(), [&BlockOp::Flush]);
        assert!(!ops.iter().any(|&op| BlockInterest::default().wants(op)), "nothing asked, nothing handed");
        let all = BlockInterest { open: true, info: true, read: true, write: true, flush: true };
        assert!(ops.iter().all(|&op| all.wants(op)));
    }
}
