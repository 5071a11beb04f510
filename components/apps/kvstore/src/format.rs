//! The kvstore's on-disk format. Pure functions over byte slices: no device, no bindings,
//! so it is unit-tested on the host.
//!
//! ```text
//! sector 0      superblock: magic "WEFTKVSB", version u32, sector-size u32,
//!               head u64 (next free sector), next-seq u64, crc32 u32 over the
//!               preceding 32 bytes; rest of the sector zero. All integers little-endian.
//! sector 1..    records, appended in sequence order, each starting on a sector boundary:
//!               magic "WEFTKVRC", seq u64, key-len u32, value-len u32,
//!               crc32 u32 over the preceding 24 header bytes + key + value,
//!               then key, value, zero padding to a whole number of sectors.
//! ```
//! A record is written with exactly one `block.write` call, so it is at most 1 MiB
//! (the per-call limit a device MAY impose) including header and padding.

use alloc::vec;
use alloc::vec::Vec;

pub const SB_MAGIC: [u8; 8] = *b"WEFTKVSB";
pub const REC_MAGIC: [u8; 8] = *b"WEFTKVRC";
pub const VERSION: u32 = 1;
pub const SB_LEN: usize = 36;
pub const REC_HEADER_LEN: usize = 28;
/// Largest single read or write a device must accept.
pub const MAX_CALL_BYTES: u64 = 1 << 20;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and gzip use.
#[derive(Clone, Copy)]
pub struct Crc32(u32);

/// Slicing-by-8 tables: `CRC_TABLES[0]` is the classic byte table; table `k`
/// advances a byte through `k` more zero bytes, so eight input bytes are folded
/// per step (the record checksum is the hot loop of `fill` and `verify`).
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    t
};

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }
    pub fn update(mut self, data: &[u8]) -> Crc32 {
        let t = &CRC_TABLES;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let lo = self.0 ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            self.0 = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            self.0 = t[0][((self.0 ^ b as u32) & 0xFF) as usize] ^ (self.0 >> 8);
        }
        self
    }
    pub fn finish(self) -> u32 {
        !self.0
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    Crc32::new().update(data).finish()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub sector_size: u32,
    /// The next free sector: records occupy `1..head`.
    pub head: u64,
    /// The sequence number the next record gets. Sequence numbers start at 1.
    pub next_seq: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SuperblockState {
    /// Sector 0 is all zeros: a fresh device.
    Blank,
    Valid(Superblock),
    /// Sector 0 holds something that is not a superblock we wrote.
    Foreign(&'static str),
}

impl Superblock {
    pub fn fresh(sector_size: u32) -> Superblock {
        Superblock {
            sector_size,
            head: 1,
            next_seq: 1,
        }
    }

    /// One whole sector.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = vec![0u8; self.sector_size as usize];
        s[0..8].copy_from_slice(&SB_MAGIC);
        s[8..12].copy_from_slice(&VERSION.to_le_bytes());
        s[12..16].copy_from_slice(&self.sector_size.to_le_bytes());
        s[16..24].copy_from_slice(&self.head.to_le_bytes());
        s[24..32].copy_from_slice(&self.next_seq.to_le_bytes());
        let crc = crc32(&s[0..32]);
        s[32..36].copy_from_slice(&crc.to_le_bytes());
        s
    }

    pub fn decode(sector: &[u8]) -> SuperblockState {
        if sector.iter().all(|&b| b == 0) {
            return SuperblockState::Blank;
        }
        if sector.len() < SB_LEN || sector[0..8] != SB_MAGIC {
            return SuperblockState::Foreign("no superblock magic");
        }
        if crc32(&sector[0..32]) != u32_at(sector, 32) {
            return SuperblockState::Foreign("superblock checksum mismatch");
        }
        if u32_at(sector, 8) != VERSION {
            return SuperblockState::Foreign("unsupported format version");
        }
        let sb = Superblock {
            sector_size: u32_at(sector, 12),
            head: u64_at(sector, 16),
            next_seq: u64_at(sector, 24),
        };
        if sb.head < 1 || sb.next_seq < 1 {
            return SuperblockState::Foreign("superblock fields out of range");
        }
        SuperblockState::Valid(sb)
    }
}

/// Sectors a record with these lengths occupies, or `None` above [`MAX_CALL_BYTES`].
pub fn record_sectors(key_len: u64, value_len: u64, sector_size: u64) -> Option<u64> {
    let bytes = REC_HEADER_LEN as u64 + key_len + value_len;
    let sectors = bytes.div_ceil(sector_size);
    (sectors * sector_size <= MAX_CALL_BYTES).then_some(sectors)
}

/// The record as written: header, key, value, zero padding. `None` if it is too large.
pub fn encode_record(seq: u64, key: &[u8], value: &[u8], sector_size: u64) -> Option<Vec<u8>> {
    let sectors = record_sectors(key.len() as u64, value.len() as u64, sector_size)?;
    let mut r = vec![0u8; (sectors * sector_size) as usize];
    r[0..8].copy_from_slice(&REC_MAGIC);
    r[8..16].copy_from_slice(&seq.to_le_bytes());
    r[16..20].copy_from_slice(&(key.len() as u32).to_le_bytes());
    r[20..24].copy_from_slice(&(value.len() as u32).to_le_bytes());
    let body = REC_HEADER_LEN..REC_HEADER_LEN + key.len() + value.len();
    r[REC_HEADER_LEN..REC_HEADER_LEN + key.len()].copy_from_slice(key);
    r[REC_HEADER_LEN + key.len()..body.end].copy_from_slice(value);
    let crc = Crc32::new().update(&r[0..24]).update(&r[body]).finish();
    r[24..28].copy_from_slice(&crc.to_le_bytes());
    Some(r)
}

#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub sectors: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// No record magic: a hole (never written, or a dropped write) or foreign data.
    NotRecord,
    /// The header is readable and says the record spans this many sectors, more than the
    /// buffer holds: read that many and decode again.
    NeedSectors(u64),
    /// Record magic, but the lengths are impossible or the checksum does not match.
    /// `seq` is what the header claims, which may itself be damaged.
    Corrupt {
        seq: u64,
    },
    Valid(Record<'a>),
}

/// Decode the record starting at the first byte of `buf` (at least one sector).
pub fn decode_record(buf: &[u8], sector_size: u64) -> Decoded<'_> {
    if buf.len() < REC_HEADER_LEN || buf[0..8] != REC_MAGIC {
        return Decoded::NotRecord;
    }
    let seq = u64_at(buf, 8);
    let key_len = u32_at(buf, 16) as u64;
    let value_len = u32_at(buf, 20) as u64;
    let Some(sectors) = record_sectors(key_len, value_len, sector_size) else {
        return Decoded::Corrupt { seq };
    };
    if (buf.len() as u64) < sectors * sector_size {
        return Decoded::NeedSectors(sectors);
    }
    let key_end = REC_HEADER_LEN + key_len as usize;
    let end = key_end + value_len as usize;
    let crc = Crc32::new()
        .update(&buf[0..24])
        .update(&buf[REC_HEADER_LEN..end])
        .finish();
    if crc != u32_at(buf, 24) {
        return Decoded::Corrupt { seq };
    }
    Decoded::Valid(Record {
        seq,
        key: &buf[REC_HEADER_LEN..key_end],
        value: &buf[key_end..end],
        sectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Slicing-by-8 agrees with the bit-at-a-time definition at every length
        // and alignment of the 8-byte steps.
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            let mut c = 0xFFFF_FFFFu32;
            for &b in &data[..len] {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(crc32(&data[..len]), !c, "len {len}");
            let split = len / 3;
            assert_eq!(
                Crc32::new()
                    .update(&data[..split])
                    .update(&data[split..len])
                    .finish(),
                !c
            );
        }
        assert_eq!(
            Crc32::new().update(b"1234").update(b"56789").finish(),
            0xCBF4_3926
        );
    }

    #[test]
    fn superblock_roundtrip() {
        for ss in [512u32, 4096] {
            let sb = Superblock {
                sector_size: ss,
                head: 77,
                next_seq: 12,
            };
            let bytes = sb.encode();
            assert_eq!(bytes.len(), ss as usize);
            assert_eq!(Superblock::decode(&bytes), SuperblockState::Valid(sb));
        }
        assert_eq!(Superblock::decode(&[0u8; 512]), SuperblockState::Blank);
        let mut bytes = Superblock::fresh(512).encode();
        bytes[20] ^= 1;
        assert!(matches!(
            Superblock::decode(&bytes),
            SuperblockState::Foreign(_)
        ));
        let mut junk = [0u8; 512];
        junk[100] = 1;
        assert!(matches!(
            Superblock::decode(&junk),
            SuperblockState::Foreign(_)
        ));
    }

    #[test]
    fn record_roundtrip() {
        for ss in [512u64, 4096] {
            let r = encode_record(5, b"key-000001", &[7u8; 100], ss).unwrap();
            assert_eq!(r.len() as u64, ss);
            match decode_record(&r, ss) {
                Decoded::Valid(rec) => {
                    assert_eq!(rec.seq, 5);
                    assert_eq!(rec.key, b"key-000001");
                    assert_eq!(rec.value, &[7u8; 100]);
                    assert_eq!(rec.sectors, 1);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn multi_sector_record_needs_more() {
        let value = vec![9u8; 900];
        let r = encode_record(1, b"k", &value, 512).unwrap();
        assert_eq!(r.len(), 1024);
        assert_eq!(decode_record(&r[..512], 512), Decoded::NeedSectors(2));
        assert!(matches!(
            decode_record(&r, 512),
            Decoded::Valid(Record { sectors: 2, .. })
        ));
    }

    #[test]
    fn bit_flips_are_corrupt() {
        let r = encode_record(3, b"abc", b"hello", 512).unwrap();
        // Any flipped bit in the header (after the magic), key or value is caught.
        for byte in 8..REC_HEADER_LEN + 8 {
            let mut bad = r.clone();
            bad[byte] ^= 0x10;
            assert!(
                matches!(
                    decode_record(&bad, 512),
                    Decoded::Corrupt { .. } | Decoded::NeedSectors(_)
                ),
                "byte {byte}"
            );
        }
        let mut bad = r.clone();
        bad[0] ^= 1;
        assert_eq!(decode_record(&bad, 512), Decoded::NotRecord);
        assert_eq!(decode_record(&[0u8; 512], 512), Decoded::NotRecord);
    }

    #[test]
    fn size_limit() {
        let ss = 4096u64;
        let max_payload = (MAX_CALL_BYTES - REC_HEADER_LEN as u64) as usize;
        assert!(encode_record(1, b"k", &vec![0; max_payload - 1], ss).is_some());
        assert!(encode_record(1, b"k", &vec![0; max_payload], ss).is_none());
        // A header claiming a huge length is corrupt, not a 4 GiB read.
        let mut r = encode_record(1, b"k", b"v", ss).unwrap();
        r[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_record(&r, ss), Decoded::Corrupt { seq: 1 });
    }
}
