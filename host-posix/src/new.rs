//! `weft new app|filter NAME`: a ready project in `./NAME` — sources, the WIT
//! it builds against, a `weft.toml` that runs it and a `build.sh` — in Rust,
//! C, Python or JavaScript, with the toolchains weft's own polyglot apps use
//! (components/polyglot/toolchains.sh).
//!
//! The templates are real files under `host-posix/templates/`, embedded with
//! `include_str!`; `{{name}}` and a few more markers are replaced (see
//! [`Vars`]). The WIT is weft's own `wit/` (every interface; not `worlds.wit`,
//! which needs the WASI packages), under `wit/deps/weft-devices/`, beside a
//! world of the project's own (`wit/world.wit`), so a project builds outside
//! the weft tree. Toolchain versions come from the files that pin them for
//! weft's components, read at compile time, so the generated projects follow
//! any bump.
//!
//! A filter project runs a shipped app through the filter (kvstore on a memory
//! disk, hello on the clock, echo and netclient over a simulated link): the
//! shipped components are inside the `weft` binary, so they are there wherever
//! the project lives.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;


/// `weft new`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `app` (prints hello on the console) or `filter` (passes every call
    /// through, ready for a behaviour of your own).
    #[arg(value_enum)]
    pub what: What,
    /// The project's name: its folder, its component (NAME.wasm) and its
    /// package. Lowercase letters, digits and `-`, starting with a letter.
    pub name: String,
    /// The language of the sources.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The device a filter wraps (default `block`). Filters only.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    App,
    Filter,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    C,
    Python,
    Js,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Block,
    Clock,
    Net,
}

impl Lang {
    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Clock => "clock",
            Kind::Net => "net",
        }
    }
}

use crate::exit::invalid;

/// Creates the project `args` describes in `parent/NAME` and prints what it
/// made and what to run next. Bad input is exit code 2 and writes nothing.
pub fn run(args: &Args, parent: &Path) -> Result<u8> {
    let kind = match (args.what, args.kind) {
        (What::App, Some(k)) => {
            return Err(invalid(format!(
                "error: `--kind {}` is for filters (the device a filter wraps); an app imports its devices in wit/world.wit\nfix: `weft new app {}`, or `weft new filter {} --kind {}`",
                k.name(),
                args.name,
                args.name,
                k.name()
            )));
        }
        (What::App, None) => None,
        (What::Filter, k) => Some(k.unwrap_or(Kind::Block)),
    };
    check_name(&args.name, args.what)?;
    let files = project(&args.name, args.lang, kind);
    let dir = parent.join(&args.name);
    write_project(&dir, &args.name, &files)?;
    print!("{}", summary(&args.name, args.lang, kind));
    Ok(0)
}

/// Rust keywords (a crate may not be named one) and the crates every Rust
/// program already has.
const RESERVED: &[&str] = &[
    "abstract", "alloc", "as", "async", "await", "become", "box", "break", "const", "continue", "core", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "std",
    "struct", "super", "test", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

/// A name is the folder, `NAME.wasm`, the crate or package, and a filter's
/// log topic (lowercase letters, digits and `-`): the rule that fits all of
/// them, a WIT identifier's.
pub fn check_name(name: &str, what: What) -> Result<()> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it does not start with a lowercase letter")
    } else if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        Some("it holds characters other than lowercase letters, digits and `-`")
    } else if name.ends_with('-') || name.contains("--") {
        Some("it ends with `-` or holds `--`")
    } else if RESERVED.contains(&name) {
        Some("it is a Rust keyword or a built-in crate's name")
    } else {
        None
    };
    let Some(problem) = problem else { return Ok(()) };
    let suggestion = suggest(name, what);
    Err(invalid(format!(
        "error: invalid name {name:?}: {problem}. A name becomes the folder, the component (NAME.wasm), the package and the filter's log topic: lowercase letters and digits, words joined by single `-`, starting with a letter (a WIT identifier, a crate name)\nfix: `weft new {} {suggestion}`",
        match what {
            What::App => "app",
            What::Filter => "filter",
        }
    )))
}

/// A valid name close to `name`: lowercase, other characters as `-`, no
/// leading digits.
fn suggest(name: &str, what: What) -> String {
    let mut s = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || (c.is_ascii_digit() && !s.is_empty()) {
            s.push(c);
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.truncate(64);
    let s = s.trim_end_matches('-').to_string();
    let tail = match what {
        What::App => "app",
        What::Filter => "filter",
    };
    if s.is_empty() {
        format!("my-{tail}")
    } else if RESERVED.contains(&s.as_str()) {
        format!("{s}-{tail}")
    } else {
        s
    }
}

/// What `{{marker}}`s become in a template.
struct Vars<'a> {
    name: &'a str,
    what: String,
    lang: Lang,
    /// The world the sources are built for (`app`, `block-filter`).
    world: String,
    /// The source module's name (Python, JavaScript): `app` or `filter`.
    module: &'static str,
}

impl Vars<'_> {
    fn apply(&self, template: &str) -> String {
        let pairs: [(&str, String); 11] = [
            ("{{name}}", self.name.to_string()),
            ("{{crate}}", self.name.replace('-', "_")),
            ("{{what}}", self.what.clone()),
            ("{{lang}}", self.lang.title().to_string()),
            ("{{world}}", self.world.clone()),
            ("{{world_c}}", self.world.replace('-', "_")),
            ("{{module}}", self.module.to_string()),
            ("{{wit_bindgen}}", versions::wit_bindgen().to_string()),
            ("{{rust_channel}}", versions::rust_channel().to_string()),
            ("{{componentize_py}}", versions::componentize_py().to_string()),
            ("{{componentize_qjs}}", versions::componentize_qjs().to_string()),
        ];
        let mut out = template.to_string();
        for (marker, value) in &pairs {
            out = out.replace(marker, value);
        }
        debug_assert!(!has_marker(&out), "a template marker left: {out}");
        out
    }
}

/// Whether `text` still holds a `{{word}}` marker.
fn has_marker(text: &str) -> bool {
    text.match_indices("{{").any(|(i, _)| {
        let rest = &text[i + 2..];
        rest.find("}}").is_some_and(|j| j > 0 && rest[..j].chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    })
}

/// The pinned versions of weft's components and polyglot toolchains, read
/// from the files that pin them.
mod versions {
    /// The first `"…"` after `key` in `text`.
    fn quoted_after<'a>(text: &'a str, key: &str) -> &'a str {
        let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key} not found")) + key.len()..];
        let start = rest.find('"').expect("a quoted value") + 1;
        let len = rest[start..].find('"').expect("a closing quote");
        &rest[start..start + len]
    }

    /// wit-bindgen, as components/Cargo.toml has it.
    pub fn wit_bindgen() -> &'static str {
        quoted_after(include_str!("../../components/Cargo.toml"), "\nwit-bindgen = { version =")
    }

    /// The Rust toolchain of rust-toolchain.toml.
    pub fn rust_channel() -> &'static str {
        quoted_after(include_str!("../../rust-toolchain.toml"), "channel =")
    }

    /// componentize-py, as components/polyglot/python/requirements.txt pins it.
    pub fn componentize_py() -> &'static str {
        let text = include_str!("../../components/polyglot/python/requirements.txt");
        let line = text.lines().find_map(|l| l.strip_prefix("componentize-py==")).expect("componentize-py pinned");
        line.trim()
    }

    /// componentize-qjs, as components/polyglot/js/package.json pins it.
    pub fn componentize_qjs() -> &'static str {
        quoted_after(include_str!("../../components/polyglot/js/package.json"), "\"componentize-qjs\":")
    }
}

/// weft's device interfaces, copied into every project's
/// `wit/deps/weft-devices/`: all of `wit/` but `worlds.wit` (whose `wasi`
/// world needs the WASI packages). A test keeps the list complete.
pub const WIT_DEPS: &[(&str, &str)] = &[
    ("block.wit", include_str!("../../wit/block.wit")),
    ("clock.wit", include_str!("../../wit/clock.wit")),
    ("console.wit", include_str!("../../wit/console.wit")),
    ("exit.wit", include_str!("../../wit/exit.wit")),
    ("filter.wit", include_str!("../../wit/filter.wit")),
    ("kv.wit", include_str!("../../wit/kv.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
    ("net.wit", include_str!("../../wit/net.wit")),
    ("power.wit", include_str!("../../wit/power.wit")),
    ("random.wit", include_str!("../../wit/random.wit")),
    ("shutdown.wit", include_str!("../../wit/shutdown.wit")),
    ("sockets.wit", include_str!("../../wit/sockets.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("watch.wit", include_str!("../../wit/watch.wit")),
];

/// The templates, by path under host-posix/templates/.
mod t {
    macro_rules! templates {
        ($($id:ident = $path:literal;)*) => {
            $(pub const $id: &str = include_str!(concat!("../templates/", $path));)*
        };
    }
    templates! {
        APP_WIT = "common/app.wit";
        BLOCK_WIT = "common/block.wit";
        CLOCK_WIT = "common/clock.wit";
        NET_WIT = "common/net.wit";
        APP_TOML = "common/app.toml";
        BLOCK_TOML = "common/block.toml";
        CLOCK_TOML = "common/clock.toml";
        NET_TOML = "common/net.toml";
        NET_SERVER_TOML = "common/net-server.toml";
        NET_CLIENT_TOML = "common/net-client.toml";
        RUST_CARGO_TOML = "rust/Cargo.toml";
        RUST_CARGO_LOCK = "rust/Cargo.lock";
        RUST_TOOLCHAIN = "rust/rust-toolchain.toml";
        RUST_BUILD = "rust/build.sh";
        RUST_RT = "rust/rt.rs";
        RUST_APP = "rust/app.rs";
        RUST_BLOCK = "rust/block.rs";
        RUST_CLOCK = "rust/clock.rs";
        RUST_NET = "rust/net.rs";
        C_BUILD = "c/build.sh";
        C_APP = "c/app.c";
        C_BLOCK = "c/block.c";
        C_CLOCK = "c/clock.c";
        C_NET = "c/net.c";
        PY_BUILD = "python/build.sh";
        PY_APP = "python/app.py";
        PY_BLOCK = "python/block.py";
        PY_CLOCK = "python/clock.py";
        PY_NET = "python/net.py";
        JS_BUILD = "js/build.sh";
        JS_PACKAGE = "js/package.json";
        JS_APP = "js/app.js";
        JS_BLOCK = "js/block.js";
        JS_CLOCK = "js/clock.js";
        JS_NET = "js/net.js";
    }
}

/// One file of a project: its path inside the project, its text, and
/// whether it is a script to run.
#[derive(Debug)]
pub struct File {
    pub path: String,
    pub text: String,
    pub executable: bool,
}

/// Every file of the project `name` in `lang`: an app when `kind` is None,
/// else a filter of that kind.
pub fn project(name: &str, lang: Lang, kind: Option<Kind>) -> Vec<File> {
    let (world, what) = match kind {
        None => ("app".to_string(), "app".to_string()),
        Some(k) => (format!("{}-filter", k.name()), format!("{} filter", k.name())),
    };
    let module = if kind.is_some() { "filter" } else { "app" };
    let v = Vars { name, what, lang, world, module };
    let mut files = Vec::new();
    let mut add = |path: String, template: &str, executable: bool| {
        files.push(File { path, text: v.apply(template), executable });
    };

    let (world_wit, manifest) = match kind {
        None => (t::APP_WIT, t::APP_TOML),
        Some(Kind::Block) => (t::BLOCK_WIT, t::BLOCK_TOML),
        Some(Kind::Clock) => (t::CLOCK_WIT, t::CLOCK_TOML),
        Some(Kind::Net) => (t::NET_WIT, t::NET_TOML),
    };
    add("weft.toml".into(), manifest, false);
    if kind == Some(Kind::Net) {
        add("server.toml".into(), t::NET_SERVER_TOML, false);
        add("client.toml".into(), t::NET_CLIENT_TOML, false);
    }
    add("wit/world.wit".into(), world_wit, false);
    for (file, text) in WIT_DEPS {
        // Verbatim: weft's contract, not a template.
        files.push(File { path: format!("wit/deps/weft-devices/{file}"), text: text.to_string(), executable: false });
    }

    let pick = |app, block, clock, net| match kind {
        None => app,
        Some(Kind::Block) => block,
        Some(Kind::Clock) => clock,
        Some(Kind::Net) => net,
    };
    let ignore = match lang {
        Lang::Rust => {
            let mut add = |path: &str, template: &str, executable: bool| {
                files.push(File { path: path.to_string(), text: v.apply(template), executable });
            };
            add("Cargo.toml", t::RUST_CARGO_TOML, false);
            add("Cargo.lock", t::RUST_CARGO_LOCK, false);
            add("rust-toolchain.toml", t::RUST_TOOLCHAIN, false);
            add("src/lib.rs", pick(t::RUST_APP, t::RUST_BLOCK, t::RUST_CLOCK, t::RUST_NET), false);
            add("src/rt.rs", t::RUST_RT, false);
            add("build.sh", t::RUST_BUILD, true);
            "/target/\n"
        }
        Lang::C => {
            let source = pick(t::C_APP, t::C_BLOCK, t::C_CLOCK, t::C_NET);
            files.push(File { path: format!("{name}.c"), text: v.apply(source), executable: false });
            files.push(File { path: "build.sh".into(), text: v.apply(t::C_BUILD), executable: true });
            "/gen/\n"
        }
        Lang::Python => {
            let source = pick(t::PY_APP, t::PY_BLOCK, t::PY_CLOCK, t::PY_NET);
            files.push(File { path: format!("{module}.py"), text: v.apply(source), executable: false });
            files.push(File { path: "build.sh".into(), text: v.apply(t::PY_BUILD), executable: true });
            "__pycache__/\n"
        }
        Lang::Js => {
            let source = pick(t::JS_APP, t::JS_BLOCK, t::JS_CLOCK, t::JS_NET);
            files.push(File { path: format!("{module}.js"), text: v.apply(source), executable: false });
            files.push(File { path: "package.json".into(), text: v.apply(t::JS_PACKAGE), executable: false });
            files.push(File { path: "package-lock.json".into(), text: package_lock(name), executable: false });
            files.push(File { path: "build.sh".into(), text: v.apply(t::JS_BUILD), executable: true });
            "/node_modules/\n"
        }
    };
    let mut gitignore = String::from("# what ./build.sh makes\n/*.wasm\n/*.wasm.tmp\n");
    gitignore.push_str(ignore);
    if kind == Some(Kind::Block) {
        gitignore.push_str("*.img\n");
    }
    files.push(File { path: ".gitignore".into(), text: gitignore, executable: false });
    files
}

/// componentize-qjs's lockfile, as weft's polyglot apps have it (the same
/// pinned packages and hashes), with the project's name.
fn package_lock(name: &str) -> String {
    let lock = include_str!("../../components/polyglot/js/package-lock.json");
    lock.replace("\"name\": \"weft-polyglot-js\"", &format!("\"name\": \"{name}\""))
        .replace("      \"license\": \"Apache-2.0 WITH LLVM-exception\",\n", "")
}

/// Writes `files` into a new folder `dir`. An existing `dir` (folder, file or
/// link) is never touched; if writing fails halfway, the folder made here is
/// removed again.
fn write_project(dir: &Path, name: &str, files: &[File]) -> Result<()> {
    // `./x` reads as `x`.
    let shown = dir.strip_prefix(".").unwrap_or(dir).display();
    if let Err(e) = std::fs::create_dir(dir) {
        return Err(if e.kind() == std::io::ErrorKind::AlreadyExists || dir.symlink_metadata().is_ok() {
            invalid(format!(
                "error: {shown} already exists; weft new never overwrites anything\nfix: choose another name, or move {shown} away"
            ))
        } else {
            invalid(format!("error: cannot create {shown}: {e}"))
        });
    }
    let write_all = || -> std::io::Result<()> {
        for f in files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &f.text)?;
            if f.executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        Ok(())
    };
    if let Err(e) = write_all() {
        let _ = std::fs::remove_dir_all(dir);
        return Err(anyhow::anyhow!("writing the project {name} into {}: {e}", dir.display()));
    }
    Ok(())
}

/// What `weft new` prints: what it made, and the commands that build and run it.
fn summary(name: &str, lang: Lang, kind: Option<Kind>) -> String {
    let what = match kind {
        None => "app".to_string(),
        Some(k) => format!("{} filter", k.name()),
    };
    let source: PathBuf = match lang {
        Lang::Rust => "src/lib.rs".into(),
        Lang::C => format!("{name}.c").into(),
        Lang::Python => if kind.is_some() { "filter.py" } else { "app.py" }.into(),
        Lang::Js => if kind.is_some() { "filter.js" } else { "app.js" }.into(),
    };
    let runs = match kind {
        None => "runs it".to_string(),
        Some(Kind::Block) => "runs kvstore (shipped with weft) on a memory disk through it".to_string(),
        Some(Kind::Clock) => "runs hello (shipped with weft) on the clock through it".to_string(),
        Some(Kind::Net) => {
            "runs echo and netclient (shipped with weft) over a simulated link, the client's frames through it \
             (server.toml, client.toml)"
                .to_string()
        }
    };
    let mut s = String::new();
    let article = if kind.is_none() { "an" } else { "a" };
    let _ = writeln!(s, "created {name}/: {article} {what} in {}", lang.title());
    let _ = writeln!(s, "  {:<16} the {what}", source.display());
    let _ = writeln!(s, "  {:<16} its world: what it imports and exports (weft's interfaces in wit/deps)", "wit/world.wit");
    let _ = writeln!(s, "  {:<16} {runs}", "weft.toml");
    let _ = writeln!(s, "  {:<16} builds {name}.wasm", "build.sh");
    let _ = writeln!(s, "next:\n  cd {name} && ./build.sh && cd ..\n  weft run {name}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use crate::run::Exit;

    #[test]
    fn names() {
        for ok in ["hello", "my-filter", "a1", "count-writes-2"] {
            check_name(ok, What::App).unwrap();
        }
        for (bad, fix) in [
            ("", "my-app"),
            ("My_Filter", "my-filter"),
            ("9lives", "lives"),
            ("a--b", "a-b"),
            ("end-", "end"),
            ("fn", "fn-app"),
            ("core", "core-app"),
            ("../x", "x"),
            ("a/b", "a-b"),
        ] {
            let e = check_name(bad, What::App).unwrap_err();
            let msg = e.downcast_ref::<Exit>().unwrap();
            assert_eq!(msg.code, exit::INVALID);
            assert!(msg.message.contains(&format!("fix: `weft new app {fix}`")), "{bad:?}: {}", msg.message);
        }
    }

    /// Every marker is replaced in every file of every project.
    #[test]
    fn no_marker_left() {
        for lang in [Lang::Rust, Lang::C, Lang::Python, Lang::Js] {
            for kind in [None, Some(Kind::Block), Some(Kind::Clock), Some(Kind::Net)] {
                for f in project("x-y", lang, kind) {
                    assert!(!has_marker(&f.text), "{lang:?} {kind:?} {}: a marker left", f.path);
                }
            }
        }
    }

    #[test]
    fn versions_read() {
        assert!(versions::wit_bindgen().starts_with("0."), "{}", versions::wit_bindgen());
        assert!(versions::rust_channel().starts_with("1."), "{}", versions::rust_channel());
        assert!(versions::componentize_py().starts_with("0."), "{}", versions::componentize_py());
        assert!(versions::componentize_qjs().starts_with("0."), "{}", versions::componentize_qjs());
        let lock = package_lock("x-y");
        assert!(!lock.contains("weft-polyglot-js") && lock.contains("\"name\": \"x-y\""));
        assert!(lock.contains(&format!("\"componentize-qjs\": \"{}\"", versions::componentize_qjs())));
    }

    /// WIT_DEPS is all of wit/ but worlds.wit.
    #[test]
    fn wit_deps_complete() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&wit)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".wit") && n != "worlds.wit")
            .collect();
        on_disk.sort();
        let listed: Vec<String> = WIT_DEPS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(listed, on_disk, "new.rs WIT_DEPS must list every interface file of wit/");
    }

    /// The Rust template's Cargo.lock pins what components/Cargo.lock pins,
    /// wherever both have a crate.
    #[test]
    fn cargo_lock_follows_components() {
        let components = include_str!("../../components/Cargo.lock");
        let pins = |lock: &str| -> Vec<(String, String)> {
            lock.split("[[package]]")
                .skip(1)
                .filter_map(|p| {
                    let name = p.lines().find_map(|l| l.strip_prefix("name = "))?.trim_matches('"').to_string();
                    let version = p.lines().find_map(|l| l.strip_prefix("version = "))?.trim_matches('"').to_string();
                    Some((name, version))
                })
                .collect()
        };
        let theirs = pins(components);
        for (name, version) in pins(t::RUST_CARGO_LOCK) {
            let same_name: Vec<&String> = theirs.iter().filter(|(n, _)| *n == name).map(|(_, v)| v).collect();
            if !same_name.is_empty() {
                assert!(
                    same_name.contains(&&version),
                    "templates/rust/Cargo.lock has {name} {version}, components/Cargo.lock {same_name:?}: regenerate it"
                );
            }
        }
        assert!(t::RUST_CARGO_LOCK.contains(&format!("name = \"wit-bindgen\"\nversion = \"{}\"", versions::wit_bindgen())));
    }
}
