//! The trace's byte-level encoding: LEB128 varints, zigzag for signed
//! deltas, length-prefixed bytes, and [`Wire`] for the values device calls
//! return. Readers never panic: running past the end is an error.

use alloc::string::String;
use alloc::vec::Vec;

use crate::devices::{Endpoint, ErrorCode, SocketError};

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

pub type Res<T> = Result<T, Malformed>;

#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    /// A signed value, zigzag-encoded so small magnitudes stay short.
    pub fn svar(&mut self, v: i64) {
        self.var(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.var(b.len() as u64);
        self.out.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub fn u32le(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64le(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
}

pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    pub fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(Malformed("a field runs past the end"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn var(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("a number is too long"))
    }
    pub fn var32(&mut self) -> Res<u32> {
        u32::try_from(self.var()?).map_err(|_| Malformed("a number is out of range"))
    }
    pub fn svar(&mut self) -> Res<i64> {
        let v = self.var()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
    pub fn bytes(&mut self) -> Res<&'a [u8]> {
        let n = usize::try_from(self.var()?).map_err(|_| Malformed("a length is out of range"))?;
        self.take(n)
    }
    pub fn string(&mut self) -> Res<String> {
        core::str::from_utf8(self.bytes()?).map(String::from).map_err(|_| Malformed("a string is not UTF-8"))
    }
    pub fn u32le(&mut self) -> Res<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64le(&mut self) -> Res<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    /// A count of items that each take at least one byte: refused before
    /// anything is allocated when the rest of the trace cannot hold them.
    pub fn count(&mut self) -> Res<usize> {
        let n = self.var()?;
        if n > (self.bytes.len() - self.pos) as u64 {
            return Err(Malformed("a count exceeds what the trace holds"));
        }
        Ok(n as usize)
    }
}

/// A 32-bit digest of what a call sent out (written data, console bytes),
/// enough to notice a replay that sends something else. Eight bytes a step.
pub fn digest(parts: &[&[u8]]) -> u32 {
    digest64(parts) as u32
}

/// The 64-bit digest [`digest`] keeps 32 bits of.
pub fn digest64(parts: &[&[u8]]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for p in parts {
        h = (h ^ p.len() as u64).wrapping_mul(K).rotate_left(29);
        let mut words = p.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            h = (h ^ w).wrapping_mul(K).rotate_left(29);
        }
        for &b in words.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
        }
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^ (h >> 29)
}

/// A value a device call returns, as the trace stores it.
pub trait Wire: Sized {
    fn put(&self, w: &mut Writer);
    fn get(r: &mut Reader) -> Res<Self>;
}

impl Wire for () {
    fn put(&self, _: &mut Writer) {}
    fn get(_: &mut Reader) -> Res<()> {
        Ok(())
    }
}

impl Wire for u32 {
    fn put(&self, w: &mut Writer) {
        w.var(u64::from(*self));
    }
    fn get(r: &mut Reader) -> Res<u32> {
        r.var32()
    }
}

impl Wire for u64 {
    fn put(&self, w: &mut Writer) {
        w.var(*self);
    }
    fn get(r: &mut Reader) -> Res<u64> {
        r.var()
    }
}

impl Wire for Vec<u8> {
    fn put(&self, w: &mut Writer) {
        w.bytes(self);
    }
    fn get(r: &mut Reader) -> Res<Vec<u8>> {
        Ok(r.bytes()?.to_vec())
    }
}

impl Wire for Vec<Vec<u8>> {
    fn put(&self, w: &mut Writer) {
        w.var(self.len() as u64);
        for f in self {
            w.bytes(f);
        }
    }
    fn get(r: &mut Reader) -> Res<Vec<Vec<u8>>> {
        let n = r.count()?;
        (0..n).map(|_| Ok(r.bytes()?.to_vec())).collect()
    }
}

impl Wire for Endpoint {
    fn put(&self, w: &mut Writer) {
        let (a, b, c, d) = self.addr;
        w.out.extend_from_slice(&[a, b, c, d]);
        w.var(u64::from(self.port));
    }
    fn get(r: &mut Reader) -> Res<Endpoint> {
        let a = r.take(4)?;
        let port = u16::try_from(r.var()?).map_err(|_| Malformed("a port is out of range"))?;
        Ok(Endpoint { addr: (a[0], a[1], a[2], a[3]), port })
    }
}

impl<A: Wire, B: Wire> Wire for (A, B) {
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
        self.1.put(w);
    }
    fn get(r: &mut Reader) -> Res<(A, B)> {
        Ok((A::get(r)?, B::get(r)?))
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.put(w);
            }
        }
    }
    fn get(r: &mut Reader) -> Res<Option<T>> {
        match r.u8()? {
            0 => Ok(None),
            1 => T::get(r).map(Some),
            _ => Err(Malformed("an option tag")),
        }
    }
}

/// An error enum stored as its index.
pub trait Code: Copy + 'static {
    const ALL: &'static [Self];
    fn index(self) -> u8;
}

impl Code for ErrorCode {
    const ALL: &'static [ErrorCode] =
        &[ErrorCode::NotFound, ErrorCode::InvalidArgument, ErrorCode::ReadOnly, ErrorCode::Io, ErrorCode::Unsupported];
    fn index(self) -> u8 {
        self as u8
    }
}

impl Code for SocketError {
    const ALL: &'static [SocketError] = &[
        SocketError::WouldBlock,
        SocketError::AddressInUse,
        SocketError::ConnectionReset,
        SocketError::NotConnected,
        SocketError::InvalidArgument,
        SocketError::Unreachable,
        SocketError::NoBuffers,
    ];
    fn index(self) -> u8 {
        self as u8
    }
}

impl<T: Wire, E: Code> Wire for Result<T, E> {
    fn put(&self, w: &mut Writer) {
        match self {
            Ok(v) => {
                w.u8(0);
                v.put(w);
            }
            Err(e) => w.u8(1 + e.index()),
        }
    }
    fn get(r: &mut Reader) -> Res<Result<T, E>> {
        match r.u8()? {
            0 => T::get(r).map(Ok),
            n => E::ALL.get(usize::from(n) - 1).copied().map(Err).ok_or(Malformed("an error code")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn varints_round_trip_and_stay_short() {
        let mut w = Writer::default();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.var(v);
        }
        for v in [0i64, -1, 1, -1000, i64::MIN, i64::MAX] {
            w.svar(v);
        }
        let mut r = Reader::new(&w.out);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.var(), Ok(v));
        }
        for v in [0i64, -1, 1, -1000, i64::MIN, i64::MAX] {
            assert_eq!(r.svar(), Ok(v));
        }
        assert!(r.at_end());
        let mut w = Writer::default();
        w.svar(-64);
        assert_eq!(w.out.len(), 1);
    }

    #[test]
    fn values_round_trip() {
        let v: Result<(Vec<u8>, Endpoint), SocketError> = Ok((vec![1, 2, 3], Endpoint { addr: (10, 0, 0, 1), port: 80 }));
        let mut w = Writer::default();
        v.put(&mut w);
        let e: Result<u32, ErrorCode> = Err(ErrorCode::Io);
        e.put(&mut w);
        let mut r = Reader::new(&w.out);
        assert_eq!(<Result<(Vec<u8>, Endpoint), SocketError>>::get(&mut r), Ok(v));
        assert_eq!(<Result<u32, ErrorCode>>::get(&mut r), Ok(e));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[0xff_u8; 12][..], &[0x05, 1], &[9], &[]] {
            let mut r = Reader::new(bytes);
            let _ = <Result<Vec<Vec<u8>>, ErrorCode>>::get(&mut r);
            let mut r = Reader::new(bytes);
            let _ = r.var();
            let _ = r.bytes();
            let _ = r.count();
        }
        let mut r = Reader::new(&[0x80; 20]);
        assert!(r.var().is_err());
    }

    #[test]
    fn digests_differ() {
        assert_ne!(digest(&[b"abc"]), digest(&[b"abd"]));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[&[7u8; 4096]]), digest(&[&[7u8; 4096]]));
    }
}
