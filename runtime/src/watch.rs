//! Net filters that only observe (`wit/watch.wit`): the runtime links the
//! device above such a filter straight to the device below and hands the
//! filter copies of the frames it asked for, after they passed — no call and
//! no copy for the rest, and never a frame's round trip through it.

use alloc::vec::Vec;
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::devices::Direction;

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
}
