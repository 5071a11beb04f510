//! The kvstore's commands over any [`Device`]. The bindings implement `Device` for the
//! real `block` import; the tests implement it over memory, with dropped writes and
//! flipped bits.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::Rng;

use crate::format::{
    Decoded, MAX_CALL_BYTES, Superblock, SuperblockState, decode_record, encode_record,
    record_sectors,
};

/// A device call that failed, as `error: <op> sector S: <code>`.
#[derive(Debug, PartialEq, Eq)]
pub struct DevError {
    pub op: &'static str,
    /// `None` for `flush`, which has no sector.
    pub sector: Option<u64>,
    pub code: &'static str,
}

/// The three block calls the store makes; errors are the `error-code` names.
pub trait Device {
    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, &'static str>;
    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), &'static str>;
    fn flush(&mut self) -> Result<(), &'static str>;
}

/// `struct Block(u32)`: a handle from the crate's `block` import (the module its
/// wit-bindgen made, in scope where the macro is called) as a [`Device`]. The
/// components that keep a store on a block device (kvstore, httpd, kv) each call it
/// once: each has its own bindings.
#[macro_export]
macro_rules! block_device {
    () => {
        /// The `block` import as a [`store::Device`].
        struct Block(u32);

        impl $crate::store::Device for Block {
            fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, &'static str> {
                block::read(self.0, start, count).map_err(|e| e.name())
            }
            fn write(&mut self, start: u64, data: &[u8]) -> Result<(), &'static str> {
                block::write(self.0, start, data).map_err(|e| e.name())
            }
            fn flush(&mut self) -> Result<(), &'static str> {
                block::flush(self.0).map_err(|e| e.name())
            }
        }
    };
}

impl<T: Device + ?Sized> Device for &mut T {
    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, &'static str> {
        (**self).read(start, count)
    }
    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), &'static str> {
        (**self).write(start, data)
    }
    fn flush(&mut self) -> Result<(), &'static str> {
        (**self).flush()
    }
}

/// What a command prints and its exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub output: Vec<u8>,
    pub code: u8,
}

impl Outcome {
    fn line(s: String, code: u8) -> Outcome {
        let mut output = s.into_bytes();
        output.push(b'\n');
        Outcome { output, code }
    }
}

impl From<DevError> for Outcome {
    fn from(e: DevError) -> Outcome {
        match e.sector {
            Some(s) => Outcome::line(format!("error: {} sector {s}: {}", e.op, e.code), 1),
            None => Outcome::line(format!("error: {}: {}", e.op, e.code), 1),
        }
    }
}

pub const USAGE: &str =
    "usage: kvstore fill N [BATCH] | verify | get KEY | set KEY VALUE | set-many N KEYS";

/// Largest read the scanner issues (a device MAY refuse more than 1 MiB per call).
const CHUNK_BYTES: u64 = MAX_CALL_BYTES;

pub struct Store<D: Device> {
    dev: D,
    ss: u64,
    sector_count: u64,
    sb: Superblock,
    /// Read-ahead window: `window` holds sectors `window_start..` as last read.
    window: Vec<u8>,
    window_start: u64,
}

/// Counts from one pass over the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub records: u64,
    pub valid: u64,
    pub lost: u64,
    pub corrupt: u64,
}

impl<D: Device> Store<D> {
    /// Open the store on `dev`: read the superblock, format a blank device (unless it is
    /// read-only), refuse anything else.
    pub fn open(
        mut dev: D,
        sector_size: u32,
        sector_count: u64,
        read_only: bool,
    ) -> Result<Store<D>, Outcome> {
        if sector_size < 512
            || !sector_size.is_power_of_two()
            || sector_size as u64 > MAX_CALL_BYTES
        {
            return Err(Outcome::line(
                format!("error: unsupported sector size {sector_size}"),
                2,
            ));
        }
        if sector_count < 2 {
            return Err(Outcome::line(
                format!("error: storage has {sector_count} sectors; kvstore needs at least 2"),
                2,
            ));
        }
        let sector0 = dev.read(0, 1).map_err(|code| DevError {
            op: "read",
            sector: Some(0),
            code,
        })?;
        let sb = match Superblock::decode(&sector0) {
            SuperblockState::Valid(sb) => {
                if sb.sector_size != sector_size {
                    return Err(Outcome::line(
                        format!(
                            "error: storage was formatted with {}-byte sectors but the device has {sector_size}-byte sectors; refusing to use it",
                            sb.sector_size
                        ),
                        2,
                    ));
                }
                if sb.head > sector_count {
                    return Err(Outcome::line(
                        format!(
                            "error: superblock head {} is past the device end ({sector_count} sectors); refusing to use it",
                            sb.head
                        ),
                        2,
                    ));
                }
                sb
            }
            SuperblockState::Blank => {
                let sb = Superblock::fresh(sector_size);
                if !read_only {
                    dev.write(0, &sb.encode()).map_err(|code| DevError {
                        op: "write",
                        sector: Some(0),
                        code,
                    })?;
                    dev.flush().map_err(|code| DevError {
                        op: "flush",
                        sector: None,
                        code,
                    })?;
                }
                sb
            }
            SuperblockState::Foreign(why) => {
                return Err(Outcome::line(
                    format!(
                        "error: storage is not a weft kvstore image (bad superblock: {why}); refusing to overwrite it"
                    ),
                    2,
                ));
            }
        };
        Ok(Store {
            dev,
            ss: sector_size as u64,
            sector_count,
            sb,
            window: Vec::new(),
            window_start: 0,
        })
    }

    pub fn into_device(self) -> D {
        self.dev
    }

    /// Sectors `start..start + count`, through the read-ahead window. `count` sectors fit
    /// in one call (records are at most 1 MiB).
    fn sectors(&mut self, start: u64, count: u64) -> Result<&[u8], DevError> {
        let ws = self.window_start;
        let wn = self.window.len() as u64 / self.ss;
        if !(start >= ws && start + count <= ws + wn) {
            // Read ahead up to 1 MiB, but only within the committed log: past head the
            // scan looks at a few sectors only, and reading empty space would just give a
            // fault filter more bytes to spend its faults on.
            let ahead = self
                .sb
                .head
                .saturating_sub(start)
                .min(CHUNK_BYTES / self.ss);
            let n = ahead.max(count).min(self.sector_count - start);
            self.window = self.dev.read(start, n as u32).map_err(|code| DevError {
                op: "read",
                sector: Some(start),
                code,
            })?;
            self.window_start = start;
        }
        let off = ((start - self.window_start) * self.ss) as usize;
        Ok(&self.window[off..off + (count * self.ss) as usize])
    }

    fn forget_window(&mut self) {
        self.window = Vec::new();
    }

    /// Decode the record at `sector`, reading as many sectors as its header asks for.
    fn record_at(&mut self, sector: u64) -> Result<Decoded<'_>, DevError> {
        let ss = self.ss;
        let first = decode_record(self.sectors(sector, 1)?, ss);
        let n = match first {
            Decoded::NeedSectors(n) => n,
            // Re-borrow to return the decoded record (the window may have moved).
            _ => 1,
        };
        if sector + n > self.sector_count {
            return Ok(Decoded::Corrupt { seq: 0 });
        }
        Ok(decode_record(self.sectors(sector, n)?, ss))
    }

    /// Walk the log from sector 1. Up to the superblock's head every sector is accounted
    /// for: a valid record, a corrupt one (record magic, bad checksum: resync one sector
    /// on), or a hole. Past head the walk goes on while records follow in sequence — they
    /// were written and flushed but the superblock write that covered them was lost — and
    /// stops at the first sector that is not the next record.
    ///
    /// `lost` counts sequence numbers with no record at all: gaps between valid records,
    /// and numbers below the superblock's `next-seq` never seen. A corrupt record whose
    /// claimed sequence number is exactly the one expected is counted only as corrupt.
    ///
    /// Returns the counts and `(head, next_seq)` after rolling forward.
    pub fn scan(
        &mut self,
        mut visit: impl FnMut(u64, &[u8], &[u8]),
    ) -> Result<(Scan, u64, u64), DevError> {
        let mut s = Scan::default();
        let mut expected = 1u64;
        let mut cursor = 1u64;
        let mut past_head = false;
        while cursor < self.sector_count {
            if !past_head && cursor >= self.sb.head {
                past_head = true;
                if self.sb.next_seq > expected {
                    s.lost += self.sb.next_seq - expected;
                    expected = self.sb.next_seq;
                }
            }
            match self.record_at(cursor)? {
                Decoded::Valid(rec) => {
                    if past_head && rec.seq != expected {
                        break;
                    }
                    s.records += 1;
                    s.valid += 1;
                    if rec.seq >= expected {
                        s.lost += rec.seq - expected;
                        expected = rec.seq + 1;
                    }
                    let sectors = rec.sectors;
                    visit(rec.seq, rec.key, rec.value);
                    cursor += sectors;
                }
                _ if past_head => break,
                Decoded::Corrupt { seq } => {
                    s.records += 1;
                    s.corrupt += 1;
                    if seq == expected {
                        expected += 1;
                    }
                    cursor += 1;
                }
                Decoded::NotRecord | Decoded::NeedSectors(_) => cursor += 1,
            }
        }
        if !past_head && self.sb.next_seq > expected {
            s.lost += self.sb.next_seq - expected;
            expected = self.sb.next_seq;
        }
        Ok((s, cursor.max(self.sb.head), expected))
    }

    /// Move head past records that follow it in sequence (written and flushed, but the
    /// superblock write that should have covered them was lost), so new records do not
    /// overwrite them.
    fn roll_forward(&mut self) -> Result<(), DevError> {
        let mut cursor = self.sb.head;
        let mut next_seq = self.sb.next_seq;
        while cursor < self.sector_count {
            match self.record_at(cursor)? {
                Decoded::Valid(rec) if rec.seq == next_seq => {
                    cursor += rec.sectors;
                    next_seq += 1;
                }
                _ => break,
            }
        }
        self.sb.head = cursor;
        self.sb.next_seq = next_seq;
        self.forget_window();
        Ok(())
    }

    /// Append `records` (one write call each), then the superblock, then flush.
    /// Returns where each record went: `(sector, seq)`.
    fn commit(
        &mut self,
        records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
        count: u64,
        sectors: u64,
    ) -> Result<Vec<(u64, u64)>, Outcome> {
        if self.sb.head + sectors > self.sector_count {
            return Err(Outcome::line(
                format!(
                    "error: storage full: {count} records need {sectors} sectors at sector {}, device has {}",
                    self.sb.head, self.sector_count
                ),
                1,
            ));
        }
        let mut placed = Vec::with_capacity(count as usize);
        for (key, value) in records {
            let seq = self.sb.next_seq;
            let rec = encode_record(seq, &key, &value, self.ss).expect("size checked by caller");
            let at = self.sb.head;
            self.dev.write(at, &rec).map_err(|code| DevError {
                op: "write",
                sector: Some(at),
                code,
            })?;
            placed.push((at, seq));
            self.sb.head += rec.len() as u64 / self.ss;
            self.sb.next_seq += 1;
        }
        // The records must be durable before the superblock that points at
        // them is written: a disk may persist any subset of the writes since
        // its last flush, so with one flush after both, a power cut can keep
        // the new superblock and lose records it counts (`weft explore
        // examples/power-cut` found exactly that). A lost superblock write is
        // harmless: opening rolls forward past the records.
        self.dev.flush().map_err(|code| DevError {
            op: "flush",
            sector: None,
            code,
        })?;
        self.dev
            .write(0, &self.sb.encode())
            .map_err(|code| DevError {
                op: "write",
                sector: Some(0),
                code,
            })?;
        self.dev.flush().map_err(|code| DevError {
            op: "flush",
            sector: None,
            code,
        })?;
        self.forget_window();
        Ok(placed)
    }

    /// How the record at `sector` compares with what was written there.
    fn check(
        &mut self,
        sector: u64,
        seq: u64,
        key: &[u8],
        value: &[u8],
    ) -> Result<Check, DevError> {
        Ok(match self.record_at(sector)? {
            Decoded::Valid(r) if r.seq == seq && r.key == key && r.value == value => Check::Ok,
            // Our sequence number but other contents: damaged in a way the CRC missed.
            Decoded::Valid(r) if r.seq == seq => Check::Corrupt,
            // Some other (older) record, or no record at all.
            Decoded::Valid(_) | Decoded::NotRecord => Check::Lost,
            Decoded::Corrupt { .. } | Decoded::NeedSectors(_) => Check::Corrupt,
        })
    }

    /// `fill N`: N records in one commit. `fill N BATCH`: in commits of BATCH records,
    /// each reported (`committed SEQ KEY`, one line per record) once it is durable.
    pub fn fill(
        &mut self,
        n: u64,
        batch: Option<u64>,
        report: &mut dyn FnMut(&[u8]),
    ) -> Result<Outcome, Outcome> {
        self.roll_forward()?;
        let first_seq = self.sb.next_seq;
        let mut placed = Vec::with_capacity(n as usize);
        let mut i = 0;
        while i < n {
            let end = batch.map_or(n, |b| (i + b).min(n));
            let mut sectors = 0;
            for j in i..end {
                sectors += record_sectors(fill_key(j).len() as u64, FILL_VALUE_LEN as u64, self.ss)
                    .unwrap();
            }
            let mut records = (i..end).map(|j| (fill_key(j), fill_value(first_seq + j)));
            let done = self.commit(&mut records, end - i, sectors)?;
            if batch.is_some() {
                for (j, &(_, seq)) in (i..end).zip(&done) {
                    report_commit(report, seq, &fill_key(j));
                }
            }
            placed.extend(done);
            i = end;
        }
        let (mut verified, mut lost, mut corrupt) = (0, 0, 0);
        for (i, &(sector, seq)) in placed.iter().enumerate() {
            match self.check(sector, seq, &fill_key(i as u64), &fill_value(seq))? {
                Check::Ok => verified += 1,
                Check::Lost => lost += 1,
                Check::Corrupt => corrupt += 1,
            }
        }
        let line = format!("wrote {n} verified {verified} lost {lost} corrupt {corrupt}");
        Ok(Outcome::line(line, if verified == n { 0 } else { 1 }))
    }

    /// `set-many N KEYS`: N sets, one commit each; the record with sequence number S
    /// sets `k<S mod KEYS>` to `v<S>`, so what a key must hold after any run follows
    /// from the sequence numbers reported. Each is reported (`committed SEQ KEY`) once
    /// it is durable and read back; "ok" at the end.
    pub fn set_many(
        &mut self,
        n: u64,
        keys: u64,
        report: &mut dyn FnMut(&[u8]),
    ) -> Result<Outcome, Outcome> {
        for _ in 0..n {
            self.roll_forward()?;
            let seq = self.sb.next_seq;
            let key = format!("k{}", seq % keys);
            let o = self.put(key.as_bytes(), format!("v{seq}").as_bytes())?;
            if o.code != 0 {
                return Ok(o);
            }
            report_commit(report, seq, key.as_bytes());
        }
        Ok(Outcome::line(String::from("ok"), 0))
    }

    pub fn verify(&mut self) -> Result<Outcome, Outcome> {
        let (s, _, _) = self.scan(|_, _, _| {})?;
        let line = format!(
            "records {} valid {} lost {} corrupt {}",
            s.records, s.valid, s.lost, s.corrupt
        );
        Ok(Outcome::line(
            line,
            if s.lost == 0 && s.corrupt == 0 { 0 } else { 1 },
        ))
    }

    pub fn get(&mut self, key: &str) -> Result<Outcome, Outcome> {
        // The last valid record for the key in log order wins.
        let mut found: Option<Vec<u8>> = None;
        self.scan(|_, k, v| {
            if k == key.as_bytes() {
                found = Some(v.to_vec());
            }
        })?;
        Ok(match found {
            Some(mut v) => {
                v.push(b'\n');
                Outcome { output: v, code: 0 }
            }
            None => Outcome::line(format!("not found: {key}"), 1),
        })
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<Outcome, Outcome> {
        self.put(key.as_bytes(), value.as_bytes())
    }

    /// Append one record (any bytes), commit, and read it back: "ok", or an error.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Outcome, Outcome> {
        let name = String::from_utf8_lossy(key);
        let Some(sectors) = record_sectors(key.len() as u64, value.len() as u64, self.ss) else {
            return Err(Outcome::line(
                format!("error: record for {name} is larger than one 1 MiB write; refusing it"),
                2,
            ));
        };
        self.roll_forward()?;
        let mut one = core::iter::once((key.to_vec(), value.to_vec()));
        let placed = self.commit(&mut one, 1, sectors)?;
        let (sector, seq) = placed[0];
        // Never claim a record is stored that cannot be read back.
        Ok(match self.check(sector, seq, key, value)? {
            Check::Ok => Outcome::line(String::from("ok"), 0),
            _ => Outcome::line(
                format!("error: record for {name} not readable after flush"),
                1,
            ),
        })
    }
}

enum Check {
    Ok,
    Lost,
    Corrupt,
}

const FILL_VALUE_LEN: usize = 100;

/// `committed SEQ KEY`: the record is durable (its commit's last flush returned).
fn report_commit(report: &mut dyn FnMut(&[u8]), seq: u64, key: &[u8]) {
    report(format!("committed {seq} {}\n", String::from_utf8_lossy(key)).as_bytes());
}

fn fill_key(i: u64) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// 100 bytes determined by the record's sequence number.
fn fill_value(seq: u64) -> Vec<u8> {
    let mut v = alloc::vec![0u8; FILL_VALUE_LEN];
    Rng::new(seq).fill(&mut v);
    v
}

/// Parse `args` and run one command. A leading program name (`kvstore`) is skipped.
/// `report` gets the lines printed while the command runs (the commit reports of
/// `fill N BATCH` and `set-many`), before its outcome.
pub fn run<D: Device>(
    args: &[String],
    open: impl FnOnce() -> Result<Store<D>, Outcome>,
    report: &mut dyn FnMut(&[u8]),
) -> Outcome {
    let mut args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    const COMMANDS: [&str; 5] = ["fill", "verify", "get", "set", "set-many"];
    if args.len() > 1 && !COMMANDS.contains(&args[0]) && COMMANDS.contains(&args[1]) {
        args.remove(0);
    }
    enum Cmd<'a> {
        Fill(u64, Option<u64>),
        Verify,
        Get(&'a str),
        Set(&'a str, &'a str),
        SetMany(u64, u64),
    }
    // A batch or key count of 0 would never commit anything.
    let number = |what: &str, s: &str, min: u64| match weft_guest::parse::parse_u64(s) {
        Ok(v) if v < min => Err(Outcome::line(format!("bad {what}: below {min}\n{USAGE}"), 2)),
        Ok(v) => Ok(v),
        Err(e) => Err(Outcome::line(format!("bad {what}: {e}\n{USAGE}"), 2)),
    };
    let parsed = match args.as_slice() {
        ["fill", n] => number("N for fill", n, 0).map(|n| Cmd::Fill(n, None)),
        ["fill", n, b] => number("N for fill", n, 0)
            .and_then(|n| Ok(Cmd::Fill(n, Some(number("BATCH for fill", b, 1)?)))),
        ["verify"] => Ok(Cmd::Verify),
        ["get", key] => Ok(Cmd::Get(key)),
        ["set", key, value] => Ok(Cmd::Set(key, value)),
        ["set-many", n, k] => number("N for set-many", n, 0)
            .and_then(|n| Ok(Cmd::SetMany(n, number("KEYS for set-many", k, 1)?))),
        _ => Err(Outcome::line(String::from(USAGE), 2)),
    };
    let cmd = match parsed {
        Ok(c) => c,
        Err(o) => return o,
    };
    let mut store = match open() {
        Ok(s) => s,
        Err(o) => return o,
    };
    let r = match cmd {
        Cmd::Fill(n, batch) => store.fill(n, batch, report),
        Cmd::Verify => store.verify(),
        Cmd::Get(k) => store.get(k),
        Cmd::Set(k, v) => store.set(k, v),
        Cmd::SetMany(n, keys) => store.set_many(n, keys, report),
    };
    r.unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// A memory device that can drop chosen writes (counting from 1), flip a bit in
    /// every read, or fail flush.
    struct Mem {
        ss: usize,
        data: Vec<u8>,
        writes: u64,
        drop_writes: Vec<u64>,
        flip_reads: bool,
        fail_flush: bool,
    }

    impl Mem {
        fn new(ss: usize, sectors: usize) -> Mem {
            Mem {
                ss,
                data: vec![0; ss * sectors],
                writes: 0,
                drop_writes: vec![],
                flip_reads: false,
                fail_flush: false,
            }
        }
        fn cmd(&mut self, args: &[&str]) -> (String, u8) {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (ss, n) = (self.ss as u32, (self.data.len() / self.ss) as u64);
            let mut reported = Vec::new();
            let o = run(
                &args,
                || Store::open(&mut *self, ss, n, false),
                &mut |b| reported.extend_from_slice(b),
            );
            reported.extend_from_slice(&o.output);
            (String::from_utf8_lossy(&reported).into_owned(), o.code)
        }
    }

    impl Device for Mem {
        fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, &'static str> {
            let a = start as usize * self.ss;
            let b = a + count as usize * self.ss;
            if count == 0 || b > self.data.len() || b - a > 1 << 20 {
                return Err("invalid-argument");
            }
            let mut v = self.data[a..b].to_vec();
            if self.flip_reads && start >= 1 {
                // Inside the first record's key, past the magic.
                v[30] ^= 4;
            }
            Ok(v)
        }
        fn write(&mut self, start: u64, data: &[u8]) -> Result<(), &'static str> {
            let a = start as usize * self.ss;
            if data.is_empty()
                || data.len() % self.ss != 0
                || a + data.len() > self.data.len()
                || data.len() > 1 << 20
            {
                return Err("invalid-argument");
            }
            self.writes += 1;
            if self.drop_writes.contains(&self.writes) {
                return Ok(());
            }
            self.data[a..a + data.len()].copy_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), &'static str> {
            if self.fail_flush { Err("io") } else { Ok(()) }
        }
    }

    #[test]
    fn fill_verify_get_set() {
        for ss in [512, 4096] {
            let mut m = Mem::new(ss, 4096);
            assert_eq!(
                m.cmd(&["fill", "50"]),
                ("wrote 50 verified 50 lost 0 corrupt 0\n".into(), 0)
            );
            assert_eq!(
                m.cmd(&["verify"]),
                ("records 50 valid 50 lost 0 corrupt 0\n".into(), 0)
            );
            assert_eq!(
                m.cmd(&["fill", "10"]),
                ("wrote 10 verified 10 lost 0 corrupt 0\n".into(), 0)
            );
            assert_eq!(
                m.cmd(&["verify"]),
                ("records 60 valid 60 lost 0 corrupt 0\n".into(), 0)
            );
            assert_eq!(m.cmd(&["get", "nope"]), ("not found: nope\n".into(), 1));
            assert_eq!(m.cmd(&["set", "colour", "blue"]), ("ok\n".into(), 0));
            assert_eq!(m.cmd(&["set", "colour", "green"]), ("ok\n".into(), 0));
            assert_eq!(m.cmd(&["get", "colour"]), ("green\n".into(), 0));
            // A program name in front is tolerated.
            assert_eq!(m.cmd(&["kvstore", "get", "colour"]), ("green\n".into(), 0));
            let long = "x".repeat(5000);
            assert_eq!(m.cmd(&["set", "big", &long]), ("ok\n".into(), 0));
            assert_eq!(m.cmd(&["get", "big"]), (alloc::format!("{long}\n"), 0));
            assert_eq!(
                m.cmd(&["verify"]),
                ("records 63 valid 63 lost 0 corrupt 0\n".into(), 0)
            );
        }
    }

    #[test]
    fn batched_fill_and_set_many_report_each_commit() {
        let mut m = Mem::new(512, 4096);
        assert_eq!(
            m.cmd(&["fill", "5", "2"]),
            (
                "committed 1 key-000000\ncommitted 2 key-000001\ncommitted 3 key-000002\n\
                 committed 4 key-000003\ncommitted 5 key-000004\n\
                 wrote 5 verified 5 lost 0 corrupt 0\n"
                    .into(),
                0
            )
        );
        assert_eq!(
            m.cmd(&["set-many", "3", "2"]),
            (
                "committed 6 k0\ncommitted 7 k1\ncommitted 8 k0\nok\n".into(),
                0
            )
        );
        assert_eq!(m.cmd(&["get", "k0"]), ("v8\n".into(), 0));
        assert_eq!(m.cmd(&["get", "k1"]), ("v7\n".into(), 0));
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 8 valid 8 lost 0 corrupt 0\n".into(), 0)
        );
        // A set-many that fails stops at the failure, after what it reported.
        m.fail_flush = true;
        assert_eq!(
            m.cmd(&["set-many", "3", "2"]),
            ("error: flush: io\n".into(), 1)
        );
        for args in [&["fill", "5", "0"][..], &["set-many", "3", "0"], &["set-many", "3"]] {
            let (out, code) = m.cmd(args);
            assert_eq!(code, 2, "{args:?}");
            assert!(out.contains("usage: kvstore"), "{out}");
        }
    }

    #[test]
    fn usage_errors() {
        let mut m = Mem::new(512, 64);
        for args in [
            &[][..],
            &["fill"],
            &["fill", "x"],
            &["get"],
            &["set", "k"],
            &["frob"],
        ] {
            let (out, code) = m.cmd(args);
            assert_eq!(code, 2, "{args:?}");
            assert!(out.contains("usage: kvstore"), "{out}");
        }
        // Nothing was touched by bad args.
        assert!(m.data.iter().all(|&b| b == 0));
    }

    #[test]
    fn dropped_record_write_is_lost() {
        let mut m = Mem::new(512, 4096);
        m.cmd(&["verify"]); // formats: write #1
        m.drop_writes = vec![1 + 5]; // the 5th record of the fill
        assert_eq!(
            m.cmd(&["fill", "20"]),
            ("wrote 20 verified 19 lost 1 corrupt 0\n".into(), 1)
        );
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 19 valid 19 lost 1 corrupt 0\n".into(), 1)
        );
    }

    #[test]
    fn dropped_last_record_write_is_lost() {
        let mut m = Mem::new(512, 4096);
        m.cmd(&["verify"]);
        m.drop_writes = vec![1 + 20];
        assert_eq!(
            m.cmd(&["fill", "20"]),
            ("wrote 20 verified 19 lost 1 corrupt 0\n".into(), 1)
        );
        // The superblock's next-seq shows the missing tail record.
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 19 valid 19 lost 1 corrupt 0\n".into(), 1)
        );
    }

    #[test]
    fn dropped_superblock_write_rolls_forward() {
        let mut m = Mem::new(512, 4096);
        m.cmd(&["fill", "3"]); // writes: format sb, 3 records, sb
        m.drop_writes = vec![5 + 4 + 1]; // the superblock write of the next fill
        assert_eq!(
            m.cmd(&["fill", "4"]),
            ("wrote 4 verified 4 lost 0 corrupt 0\n".into(), 0)
        );
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 7 valid 7 lost 0 corrupt 0\n".into(), 0)
        );
        // The next append goes after the rolled-forward records, not over them.
        assert_eq!(m.cmd(&["set", "k", "v"]), ("ok\n".into(), 0));
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 8 valid 8 lost 0 corrupt 0\n".into(), 0)
        );
        assert_eq!(m.cmd(&["get", "key-000003"]).1, 0);
    }

    #[test]
    fn set_that_cannot_be_read_back_fails() {
        let mut m = Mem::new(512, 64);
        m.cmd(&["verify"]);
        m.drop_writes = vec![2];
        assert_eq!(
            m.cmd(&["set", "k", "v"]),
            ("error: record for k not readable after flush\n".into(), 1)
        );
        assert_eq!(m.cmd(&["get", "k"]), ("not found: k\n".into(), 1));
    }

    #[test]
    fn corrupt_reads_are_counted() {
        let mut m = Mem::new(512, 64);
        m.cmd(&["verify"]);
        // Every read from sector 1 on flips a bit in the first record it returns.
        m.flip_reads = true;
        assert_eq!(
            m.cmd(&["fill", "5"]),
            ("wrote 5 verified 4 lost 0 corrupt 1\n".into(), 1)
        );
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 5 valid 4 lost 0 corrupt 1\n".into(), 1)
        );
        m.flip_reads = false;
        assert_eq!(
            m.cmd(&["verify"]),
            ("records 5 valid 5 lost 0 corrupt 0\n".into(), 0)
        );
    }

    #[test]
    fn foreign_image_is_refused_and_untouched() {
        let mut m = Mem::new(512, 64);
        m.data[10] = 0x42;
        let before = m.data.clone();
        let (out, code) = m.cmd(&["fill", "1"]);
        assert_eq!(code, 2);
        assert_eq!(
            out,
            "error: storage is not a weft kvstore image (bad superblock: no superblock magic); refusing to overwrite it\n"
        );
        assert_eq!(m.data, before);
    }

    #[test]
    fn device_errors_are_reported() {
        let mut m = Mem::new(512, 64);
        m.cmd(&["verify"]);
        m.fail_flush = true;
        assert_eq!(m.cmd(&["set", "k", "v"]), ("error: flush: io\n".into(), 1));
        m.fail_flush = false;
        let mut tiny = Mem::new(512, 4);
        assert_eq!(tiny.cmd(&["fill", "10"]).1, 1);
        assert!(
            tiny.cmd(&["fill", "10"])
                .0
                .starts_with("error: storage full")
        );
    }
}
