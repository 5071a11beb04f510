//! Readable wasm backtraces for `weft boot`.
//!
//! On Linux wasmtime reads each component's DWARF itself and a trap prints
//! demangled function names and `file:line` for every frame, inlined calls
//! included. The kernel has no DWARF reader (and should not carry one): on
//! a trap it reports each frame *raw* over serial — which bundle component,
//! which of its core modules, the offset in the component's bytes — and the
//! host side of `weft boot` symbolizes those frames here, printing them
//! exactly as wasmtime does on Linux, so a user sees one format.
//!
//! ```text
//! weft build: component wasm ──Symbols::extract──▶ bundle (per component: symbols)
//! kernel:     trap ──WasmBacktrace──▶ \x1eB frame per wasm frame (RawFrame)
//! weft boot:  RawFrame + the bundle's Symbols ──format_frame──▶ stderr
//! ```
//!
//! A frame names its component by bundle index (the kernel matches the
//! frame's code against each loaded `Component`), so a backtrace that
//! crosses components — a filter trapping while the app called it — maps
//! each frame to the right one. Inside a component, wasmtime numbers core
//! modules in the order they appear in the binary (nested components
//! included) and puts its own adapter modules after them; the frame's
//! offset is relative to the whole component, as are the module ranges
//! here. A frame whose module index, name or offset does not fit what the
//! symbols hold is printed without `file:line`, never with someone else's.

use std::ops::Range;

use anyhow::{Context, Result};
use wasmparser::{Encoding, KnownCustom, Name, Parser, Payload};

/// What a component's backtraces need from its wasm: for each core module,
/// in wasmtime's static order, where it lies and its DWARF sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symbols {
    modules: Vec<ModuleSymbols>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ModuleSymbols {
    /// The module's bytes within the component.
    range: Range<u64>,
    /// Where its code section's contents start (DWARF addresses count from
    /// there), within the component.
    code: u64,
    /// The name section's module name (what the kernel reports too).
    name: Option<String>,
    /// Its `.debug_*` custom sections, by name.
    dwarf: Vec<(String, Vec<u8>)>,
}

/// One frame as the kernel reports it (`host-baremetal` `report`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFrame {
    /// Its position in the backtrace (0: where the trap happened).
    pub index: usize,
    /// The bundle component whose code it is.
    pub component: Option<usize>,
    /// wasmtime's static module index inside that component.
    pub module: Option<u32>,
    /// The instruction's offset in the component's bytes.
    pub offset: Option<u64>,
    /// The function's index in its core module.
    pub func_index: u32,
    /// The core module's name (name section).
    pub module_name: Option<String>,
    /// The function's name (name section), possibly mangled.
    pub func_name: Option<String>,
}

/// One source location of a frame: inlined calls first, the function the
/// frame is in last (addr2line's order, as wasmtime prints them).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Symbol {
    name: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
}

impl Symbols {
    /// Reads the core modules of `wasm` (a component, or a core module).
    /// Modules without DWARF are kept (empty) so the indices stay wasmtime's.
    pub fn extract(wasm: &[u8]) -> Result<Symbols> {
        let mut modules: Vec<ModuleSymbols> = Vec::new();
        // Per nesting level: the module being read, or None in a component.
        let mut stack: Vec<Option<usize>> = Vec::new();
        // The range a `ModuleSection` announced for the module that follows.
        let mut next: Option<Range<u64>> = None;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.context("reading the component's modules for its symbols")? {
                Payload::Version { encoding: Encoding::Module, .. } => {
                    let range = next.take().unwrap_or(0..wasm.len() as u64);
                    modules.push(ModuleSymbols { range, ..ModuleSymbols::default() });
                    stack.push(Some(modules.len() - 1));
                }
                Payload::Version { .. } => stack.push(None),
                Payload::ModuleSection { unchecked_range, .. } => {
                    next = Some(unchecked_range.start..unchecked_range.end);
                }
                Payload::CodeSectionStart { range, .. } => {
                    if let Some(&Some(m)) = stack.last() {
                        modules[m].code = range.start;
                    }
                }
                Payload::CustomSection(c) => {
                    let Some(&Some(m)) = stack.last() else { continue };
                    if c.name().starts_with(".debug_") {
                        modules[m].dwarf.push((c.name().to_string(), c.data().to_vec()));
                    } else if let KnownCustom::Name(names) = c.as_known() {
                        for n in names.into_iter().flatten() {
                            if let Name::Module { name, .. } = n {
                                modules[m].name = Some(name.to_string());
                            }
                        }
                    }
                }
                Payload::End(_) => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Ok(Symbols { modules })
    }

    /// Core module `index`: its bytes in the component, and its name.
    pub fn module(&self, index: usize) -> Option<(Range<u64>, Option<&str>)> {
        self.modules.get(index).map(|m| (m.range.clone(), m.name.as_deref()))
    }

    /// Whether any module has DWARF (else the bundle carries nothing).
    pub fn has_dwarf(&self) -> bool {
        self.modules.iter().any(|m| !m.dwarf.is_empty())
    }

    /// The bytes a bundle carries: modules, each as range, code start, name
    /// and sections; integers little-endian, strings and bytes u32-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"WEFTSYM1".to_vec();
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        out.extend_from_slice(&(self.modules.len() as u32).to_le_bytes());
        for m in &self.modules {
            for v in [m.range.start, m.range.end, m.code] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            match &m.name {
                None => out.push(0),
                Some(n) => {
                    out.push(1);
                    bytes(&mut out, n.as_bytes());
                }
            }
            out.extend_from_slice(&(m.dwarf.len() as u32).to_le_bytes());
            for (name, data) in &m.dwarf {
                bytes(&mut out, name.as_bytes());
                bytes(&mut out, data);
            }
        }
        out
    }

    /// The inverse of `encode`; `None` for anything else (a bundle comes
    /// from outside: never panics, never allocates more than it holds).
    pub fn decode(b: &[u8]) -> Option<Symbols> {
        let mut r = b.strip_prefix(b"WEFTSYM1")?;
        fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = r.split_at_checked(n)?;
            *r = rest;
            Some(head)
        }
        fn u32_(r: &mut &[u8]) -> Option<u32> {
            Some(u32::from_le_bytes(take(r, 4)?.try_into().ok()?))
        }
        fn u64_(r: &mut &[u8]) -> Option<u64> {
            Some(u64::from_le_bytes(take(r, 8)?.try_into().ok()?))
        }
        fn bytes<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
            let n = u32_(r)? as usize;
            take(r, n)
        }
        fn string(r: &mut &[u8]) -> Option<String> {
            String::from_utf8(bytes(r)?.to_vec()).ok()
        }
        let n = u32_(&mut r)? as usize;
        let mut modules = Vec::with_capacity(n.min(r.len() / 29));
        for _ in 0..n {
            let (start, end, code) = (u64_(&mut r)?, u64_(&mut r)?, u64_(&mut r)?);
            let name = match take(&mut r, 1)?[0] {
                0 => None,
                1 => Some(string(&mut r)?),
                _ => return None,
            };
            let sections = u32_(&mut r)? as usize;
            let mut dwarf = Vec::with_capacity(sections.min(r.len() / 8));
            for _ in 0..sections {
                dwarf.push((string(&mut r)?, bytes(&mut r)?.to_vec()));
            }
            modules.push(ModuleSymbols { range: start..end, code, name, dwarf });
        }
        r.is_empty().then_some(Symbols { modules })
    }

    /// The source locations of `frame`, innermost inlined call first; empty
    /// when its module has no DWARF or the frame does not fit these symbols.
    fn lookup(&self, frame: &RawFrame) -> Vec<Symbol> {
        let (Some(index), Some(offset)) = (frame.module, frame.offset) else { return Vec::new() };
        // An index past the binary's modules is one of wasmtime's adapters.
        let Some(m) = self.modules.get(index as usize) else { return Vec::new() };
        if m.name != frame.module_name || !m.range.contains(&offset) || offset < m.code || m.dwarf.is_empty() {
            return Vec::new();
        }
        m.frames(offset - m.code).unwrap_or_default()
    }
}

impl ModuleSymbols {
    /// addr2line over this module's DWARF at `address` (code-section
    /// relative), as wasmtime's `FrameInfo::new` does it.
    fn frames(&self, address: u64) -> Result<Vec<Symbol>, gimli::Error> {
        let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
            let data = self.dwarf.iter().find(|(n, _)| n == id.name()).map_or(&[][..], |(_, d)| d.as_slice());
            Ok(gimli::EndianSlice::new(data, gimli::LittleEndian))
        })?;
        let cx = addr2line::Context::from_dwarf(dwarf)?;
        let mut out = Vec::new();
        let mut frames = cx.find_frames(address).skip_all_loads()?;
        while let Some(f) = frames.next()? {
            out.push(Symbol {
                name: f.function.as_ref().and_then(|n| n.raw_name().ok()).map(|n| n.to_string()),
                file: f.location.as_ref().and_then(|l| l.file).map(str::to_string),
                line: f.location.as_ref().and_then(|l| l.line),
                column: f.location.as_ref().and_then(|l| l.column),
            });
        }
        Ok(out)
    }
}

/// A Rust or C++ symbol demangled as wasmtime does (`demangle_function_name`); `short`
/// (for profiles) drops Rust's hashes and crate disambiguators: `core[6d9e98711c484d2e]::fmt`
/// is `core::fmt`.
pub(crate) fn demangle(name: &str, short: bool) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return if short { without_disambiguators(&format!("{d:#}")) } else { d.to_string() };
    }
    if let Some(d) = cpp_demangle::Symbol::new(name).ok().and_then(|s| s.demangle().ok()) {
        return d;
    }
    name.to_string()
}

fn without_disambiguators(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        let hex = rest[i + 1..].find(']').filter(|&n| n == 16 && rest[i + 1..i + 1 + n].bytes().all(|b| b.is_ascii_hexdigit()));
        out.push_str(&rest[..i]);
        match hex {
            Some(n) => rest = &rest[i + n + 2..],
            None => {
                out.push('[');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `frame` printed as wasmtime's `WasmBacktrace` Display prints a frame
/// (no trailing newline), with `file:line` from `symbols` when they have it.
pub fn format_frame(frame: &RawFrame, symbols: Option<&Symbols>) -> String {
    use std::fmt::Write;
    let raw_name = || match &frame.func_name {
        Some(n) => demangle(n, false),
        None => format!("<wasm function {}>", frame.func_index),
    };
    let mut s = format!("  {:>3}: ", frame.index);
    if let Some(offset) = frame.offset {
        let _ = write!(s, "{offset:#8x} - ");
    }
    let found = symbols.map(|s| s.lookup(frame)).unwrap_or_default();
    if found.is_empty() {
        let _ = write!(s, "{}!{}", frame.module_name.as_deref().unwrap_or("<unknown>"), raw_name());
    }
    for (i, sym) in found.iter().enumerate() {
        if i > 0 {
            s.push_str("\n                - ");
        }
        match &sym.name {
            Some(n) => s.push_str(&demangle(n, false)),
            None if i == 0 => s.push_str(&raw_name()),
            None => s.push_str("<inlined function>"),
        }
        if let Some(file) = &sym.file {
            let _ = write!(s, "\n                    at {file}");
            if let Some(line) = sym.line {
                let _ = write!(s, ":{line}");
                if let Some(col) = sym.column {
                    let _ = write!(s, ":{col}");
                }
            }
        }
    }
    s
}

impl RawFrame {
    /// Parses the body of a `B` serial frame: index, component, module,
    /// offset, function index, module name, function name, separated by
    /// 0x1F, each already unescaped; an empty field is unknown.
    pub fn parse(fields: &[String]) -> Option<RawFrame> {
        let [index, component, module, offset, func_index, module_name, func_name] = fields else { return None };
        let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
        Some(RawFrame {
            index: index.parse().ok()?,
            component: if component.is_empty() { None } else { Some(component.parse().ok()?) },
            module: if module.is_empty() { None } else { Some(module.parse().ok()?) },
            offset: if offset.is_empty() { None } else { Some(offset.parse().ok()?) },
            func_index: func_index.parse().ok()?,
            module_name: opt(module_name),
            func_name: opt(func_name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_disambiguators_go_and_the_rest_stays() {
        let f = without_disambiguators;
        assert_eq!(f("core[6d9e98711c484d2e]::fmt::write"), "core::fmt::write");
        assert_eq!(f("<alloc[60c8babfd1b21f68]::string::String as core[6d9e98711c484d2e]::fmt::Write>::write_char"), "<alloc::string::String as core::fmt::Write>::write_char");
        assert_eq!(f("a[i] [] [ab] [x1]"), "a[i] [] [ab] [x1]");
        assert_eq!(f("unclosed[ab"), "unclosed[ab");
    }

    #[test]
    fn rust_and_cpp_names_demangle_long_and_short() {
        let rust = "_ZN4core3fmt5write17h0123456789abcdefE";
        assert_eq!(demangle(rust, false), "core::fmt::write::h0123456789abcdef");
        assert_eq!(demangle(rust, true), "core::fmt::write");
        assert_eq!(demangle("_ZN3foo3barEv", true), "foo::bar()");
        assert_eq!(demangle("plain_c", true), "plain_c");
    }

    fn component(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/target/wasm32-wasip2/release").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (host-posix/build.rs builds the components)", p.display()))
    }

    /// The line of misbehave's `trap` arm, read from its source.
    fn trap_line() -> u32 {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/tests/misbehave/src/lib.rs");
        let src = std::fs::read_to_string(src).unwrap();
        1 + src.lines().position(|l| l.contains("Some(\"trap\") =>")).expect("misbehave has a `trap` arm") as u32
    }

    /// Where misbehave's `trap` arm is: a module and an offset, found
    /// through the DWARF line table (never hardcoded, so a rebuilt
    /// component keeps the test honest).
    fn trap_offset(s: &Symbols, line: u32) -> (u32, u64) {
        for (i, m) in s.modules.iter().enumerate() {
            for a in 0..(m.range.end - m.code) {
                let f = m.frames(a).unwrap_or_default();
                if f.iter().any(|f| f.file.as_deref().is_some_and(|p| p.ends_with("misbehave/src/lib.rs")) && f.line == Some(line)) {
                    return (i as u32, m.code + a);
                }
            }
        }
        panic!("no code of misbehave/src/lib.rs:{line} in {:?}", s.modules.iter().map(|m| &m.name).collect::<Vec<_>>());
    }

    #[test]
    fn a_frame_gets_the_functions_and_lines_wasmtime_would_print() {
        let s = Symbols::extract(&component("misbehave.wasm")).unwrap();
        assert!(s.has_dwarf());
        let line = trap_line();
        let (module, offset) = trap_offset(&s, line);
        let frame = RawFrame {
            index: 0,
            component: Some(0),
            module: Some(module),
            offset: Some(offset),
            func_index: 7,
            module_name: s.modules[module as usize].name.clone(),
            func_name: Some("run".into()),
        };
        let text = format_frame(&frame, Some(&s));
        assert!(text.starts_with(&format!("    0: {offset:#8x} - ")), "{text}");
        assert!(text.contains(&format!("misbehave/src/lib.rs:{line}:")), "{text}");
        // Inlined frames down to the exported function, demangled.
        assert!(text.contains("\n                - _export_run_cabi<misbehave::Misbehave>\n                    at "), "{text}");

        // The same frame through the bundle's bytes.
        let again = Symbols::decode(&s.encode()).unwrap();
        assert_eq!(again, s);
        assert_eq!(format_frame(&frame, Some(&again)), text);

        // A frame that does not fit (another module's name, an adapter's
        // index, an offset outside the module) gets no file:line.
        for bad in [
            RawFrame { module_name: Some("other.wasm".into()), ..frame.clone() },
            RawFrame { module: Some(s.modules.len() as u32), module_name: None, ..frame.clone() },
            RawFrame { offset: Some(s.modules[module as usize].range.end + 1), ..frame.clone() },
        ] {
            let t = format_frame(&bad, Some(&s));
            assert!(!t.contains(" at "), "{t}");
            assert!(t.ends_with("!run"), "{t}");
        }
    }

    #[test]
    fn without_symbols_a_frame_is_named_as_wasmtime_names_it() {
        let frame = RawFrame {
            index: 12,
            component: Some(1),
            module: Some(0),
            offset: Some(0x2a6c),
            func_index: 3,
            module_name: Some("hostile_block.wasm".into()),
            func_name: Some("_ZN7hostile7Hostile4call17h28ad633f108244bbE".into()),
        };
        assert_eq!(format_frame(&frame, None), "   12:   0x2a6c - hostile_block.wasm!hostile::Hostile::call::h28ad633f108244bb");
        let anon = RawFrame { module_name: None, func_name: None, offset: None, ..frame };
        assert_eq!(format_frame(&anon, None), "   12: <unknown>!<wasm function 3>");
    }

    #[test]
    fn raw_frames_parse_and_bad_symbols_are_refused() {
        let f: Vec<String> = ["2", "1", "0", "10860", "3", "hostile_block.wasm", ""].map(String::from).into();
        let r = RawFrame::parse(&f).unwrap();
        assert_eq!((r.index, r.component, r.module, r.offset, r.func_name), (2, Some(1), Some(0), Some(10860), None));
        assert!(RawFrame::parse(&f[..6]).is_none());
        let s = Symbols::extract(&component("misbehave.wasm")).unwrap().encode();
        for n in 0..s.len() {
            assert!(Symbols::decode(&s[..n]).is_none(), "{n}");
        }
        assert!(Symbols::decode(b"WEFTSYM1\xff\xff\xff\xff").is_none());
    }
}
