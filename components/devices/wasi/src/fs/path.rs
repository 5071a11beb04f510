//! Path parsing and resolution, the same for every tree.
//!
//! A path is resolved relative to a directory descriptor, component by component, with
//! a stack of the directories walked: `..` pops it, and popping the descriptor's own
//! directory is `not-permitted`, so no path leaves the directory it was given (as in
//! wasmtime, whose cap-std refuses the same). Absolute paths are `not-permitted` too:
//! wasi-libc turns them into a preopen and a relative path before calling. Symbolic
//! links are followed inside the same walk, so they cannot lead out either.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::exports::wasi::filesystem::types::ErrorCode;

/// One component of a parsed path (`.` and empty components are dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp<'a> {
    Name(&'a str),
    Parent,
}

/// A parsed relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path<'a> {
    pub comps: Vec<Comp<'a>>,
    /// The path ends in `/`, `/.` or `..`: what it names must be a directory.
    pub dir_only: bool,
}

/// Parse `path`: `no-entry` when empty, `not-permitted` when absolute, `invalid` with a
/// NUL byte.
pub fn parse(path: &str) -> Result<Path<'_>, ErrorCode> {
    if path.is_empty() {
        return Err(ErrorCode::NoEntry);
    }
    if path.starts_with('/') {
        return Err(ErrorCode::NotPermitted);
    }
    if path.contains('\0') {
        return Err(ErrorCode::Invalid);
    }
    let last = path.rsplit('/').next().unwrap_or("");
    let comps = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| {
            if c == ".." {
                Comp::Parent
            } else {
                Comp::Name(c)
            }
        })
        .collect();
    Ok(Path {
        comps,
        dir_only: matches!(last, "" | "." | ".."),
    })
}

/// What a node is, as far as resolution cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// A node of a tree.
pub trait Node: Clone {
    fn kind(&self) -> Kind;
    /// The entry `name` of this directory (only called on directories).
    fn child(&self, name: &str) -> Option<Self>;
    /// A symbolic link's target (`None`: the tree cannot follow its links).
    fn link_target(&self) -> Option<String> {
        None
    }
}

/// Where a path leads.
pub struct Found<N> {
    /// The directory holding the last component (when `name` is set).
    pub parent: N,
    /// The last component, when the path ends in a name (not in `..`, and not empty
    /// after dropping `.`): only such a path can be created, removed or renamed. After
    /// a symbolic link was followed, the name is its target's.
    pub name: Option<String>,
    /// What the path names, if it exists.
    pub node: Option<N>,
}

/// Most symbolic links one resolution follows (Linux's MAXSYMLINKS); more is `loop`.
pub const FOLLOW_MAX: u32 = 40;

/// An owned path component (a link's target splices its own into the walk).
enum Step {
    Name(String),
    Parent,
}

fn steps<'p>(p: &'p Path<'_>) -> impl DoubleEndedIterator<Item = Step> + 'p {
    p.comps.iter().map(|c| match c {
        Comp::Name(n) => Step::Name(String::from(*n)),
        Comp::Parent => Step::Parent,
    })
}

/// Resolve `path` from directory `base`. Every component but the last must be an
/// existing directory (`no-entry`, `not-directory`) or a symbolic link to one; the last
/// is a link followed when `follow` is set or the path ends in `/`. A link's target is
/// resolved from the link's directory, as WASI (and wasmtime's cap-std) does: an
/// absolute target is `not-permitted`, and `..` above `base` is `not-permitted`
/// wherever it comes from, so no link leads out of `base`. A link a tree cannot read
/// is `unsupported`; more than [`FOLLOW_MAX`] links is `loop`.
pub fn resolve<N: Node>(base: &N, path: &Path<'_>, follow: bool) -> Result<Found<N>, ErrorCode> {
    if base.kind() != Kind::Dir {
        return Err(ErrorCode::NotDirectory);
    }
    let mut stack: Vec<N> = vec![base.clone()];
    let mut todo: VecDeque<Step> = steps(path).collect();
    let mut dir_only = path.dir_only;
    let mut followed = 0u32;
    while let Some(step) = todo.pop_front() {
        let last = todo.is_empty();
        let Some(cur) = stack.last().cloned() else {
            return Err(ErrorCode::NotPermitted);
        };
        if cur.kind() != Kind::Dir {
            return Err(ErrorCode::NotDirectory);
        }
        let name = match step {
            Step::Parent => {
                if stack.len() == 1 {
                    return Err(ErrorCode::NotPermitted);
                }
                stack.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        let child = cur.child(&name);
        if let Some(c) = &child
            && c.kind() == Kind::Symlink
            && (!last || follow || dir_only)
        {
            let target = c.link_target().ok_or(ErrorCode::Unsupported)?;
            followed += 1;
            if followed > FOLLOW_MAX {
                return Err(ErrorCode::Loop);
            }
            if target.starts_with('/') {
                return Err(ErrorCode::NotPermitted);
            }
            let t = parse(&target)?;
            if last {
                dir_only |= t.dir_only;
            }
            for s in steps(&t).rev() {
                todo.push_front(s);
            }
            continue;
        }
        if last {
            let node = match child {
                Some(c) if dir_only && c.kind() != Kind::Dir => {
                    return Err(ErrorCode::NotDirectory);
                }
                other => other,
            };
            return Ok(Found {
                parent: cur,
                name: Some(name),
                node,
            });
        }
        match child {
            None => return Err(ErrorCode::NoEntry),
            Some(c) => stack.push(c),
        }
    }
    // Empty after `.` was dropped, or ending in `..`: a directory on the stack.
    let Some(top) = stack.pop() else {
        return Err(ErrorCode::NotPermitted);
    };
    if top.kind() != Kind::Dir {
        return Err(ErrorCode::NotDirectory);
    }
    Ok(Found {
        parent: top.clone(),
        name: None,
        node: Some(top),
    })
}

/// Longest name a tree accepts for a new entry, in bytes (POSIX NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Check a name for a new entry.
pub fn check_new_name(name: &str) -> Result<(), ErrorCode> {
    if name.len() > NAME_MAX {
        Err(ErrorCode::NameTooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy tree: nodes are paths, with a fixed list of (path, kind).
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct T(String);

    const TREE: &[(&str, Kind)] = &[
        ("", Kind::Dir),
        ("a", Kind::Dir),
        ("a/b", Kind::Dir),
        ("a/f", Kind::File),
        ("a/l", Kind::Symlink),
        ("a/up", Kind::Symlink),
        ("a/down", Kind::Symlink),
        ("a/esc", Kind::Symlink),
        ("a/abs", Kind::Symlink),
        ("a/loop", Kind::Symlink),
        ("a/dangle", Kind::Symlink),
        ("a/b/back", Kind::Symlink),
        ("f", Kind::File),
    ];

    /// Link targets (`a/l` has none: a tree that cannot follow it).
    const LINKS: &[(&str, &str)] = &[
        ("a/up", "../f"),
        ("a/down", "b/"),
        ("a/esc", "../../f"),
        ("a/abs", "/etc/passwd"),
        ("a/loop", "loop"),
        ("a/dangle", "missing"),
        ("a/b/back", "../down"),
    ];

    impl Node for T {
        fn kind(&self) -> Kind {
            TREE.iter()
                .find(|(p, _)| *p == self.0)
                .map(|(_, k)| *k)
                .unwrap()
        }
        fn child(&self, name: &str) -> Option<T> {
            let p = if self.0.is_empty() {
                String::from(name)
            } else {
                alloc::format!("{}/{name}", self.0)
            };
            TREE.iter().any(|(q, _)| *q == p).then_some(T(p))
        }
        fn link_target(&self) -> Option<String> {
            LINKS
                .iter()
                .find(|(p, _)| *p == self.0)
                .map(|(_, t)| String::from(*t))
        }
    }

    fn root() -> T {
        T(String::new())
    }

    fn at(
        base: &T,
        p: &str,
        follow: bool,
    ) -> Result<(String, Option<String>, Option<String>), ErrorCode> {
        let path = parse(p)?;
        let f = resolve(base, &path, follow)?;
        Ok((f.parent.0, f.name, f.node.map(|n| n.0)))
    }

    fn node(base: &T, p: &str) -> Result<Option<String>, ErrorCode> {
        at(base, p, true).map(|(_, _, n)| n)
    }

    #[test]
    fn parse_drops_dots_and_empties() {
        let p = parse("./a//b/./../c/").unwrap();
        assert_eq!(
            p.comps,
            [
                Comp::Name("a"),
                Comp::Name("b"),
                Comp::Parent,
                Comp::Name("c")
            ]
        );
        assert!(p.dir_only);
        assert!(!parse("a/b").unwrap().dir_only);
        assert!(parse("a/.").unwrap().dir_only);
        assert!(parse("..").unwrap().dir_only);
        assert!(parse(".").unwrap().comps.is_empty());
    }

    #[test]
    fn parse_refusals() {
        assert_eq!(parse(""), Err(ErrorCode::NoEntry));
        assert_eq!(parse("/etc/passwd"), Err(ErrorCode::NotPermitted));
        assert_eq!(parse("a\0b"), Err(ErrorCode::Invalid));
    }

    #[test]
    fn resolves_names_and_dot_dot_inside() {
        assert_eq!(node(&root(), "a/b").unwrap().as_deref(), Some("a/b"));
        assert_eq!(node(&root(), "a/b/../f").unwrap().as_deref(), Some("a/f"));
        assert_eq!(node(&root(), "a/..").unwrap().as_deref(), Some(""));
        assert_eq!(node(&root(), ".").unwrap().as_deref(), Some(""));
        assert_eq!(node(&root(), "a/missing").unwrap(), None);
        let (parent, name, _) = at(&root(), "a/new", true).unwrap();
        assert_eq!((parent.as_str(), name.as_deref()), ("a", Some("new")));
        let (_, name, _) = at(&root(), "a/b/..", true).unwrap();
        assert_eq!(name, None);
    }

    #[test]
    fn never_above_the_base() {
        assert_eq!(node(&root(), ".."), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&root(), "a/../.."), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&root(), "a/../../a"), Err(ErrorCode::NotPermitted));
        // From a subdirectory, its parent is out of reach too.
        let a = T("a".into());
        assert_eq!(node(&a, "../f"), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&a, "b/../../a"), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&a, "b/..").unwrap().as_deref(), Some("a"));
    }

    #[test]
    fn files_and_missing_on_the_way() {
        assert_eq!(node(&root(), "f/x"), Err(ErrorCode::NotDirectory));
        assert_eq!(node(&root(), "f/.."), Err(ErrorCode::NotDirectory));
        assert_eq!(node(&root(), "f/"), Err(ErrorCode::NotDirectory));
        assert_eq!(node(&root(), "x/y"), Err(ErrorCode::NoEntry));
        assert_eq!(node(&T("f".into()), "x"), Err(ErrorCode::NotDirectory));
        assert_eq!(node(&T("f".into()), "."), Err(ErrorCode::NotDirectory));
    }

    #[test]
    fn symlinks_are_not_followed() {
        assert_eq!(node(&root(), "a/l"), Err(ErrorCode::Unsupported));
        assert_eq!(node(&root(), "a/l/x"), Err(ErrorCode::Unsupported));
        assert_eq!(at(&root(), "a/l", false).unwrap().2.as_deref(), Some("a/l"));
    }

    #[test]
    fn symlinks_are_followed_inside_the_base() {
        // Relative to the link's directory, on the way and at the end.
        assert_eq!(node(&root(), "a/up").unwrap().as_deref(), Some("f"));
        assert_eq!(node(&root(), "a/down").unwrap().as_deref(), Some("a/b"));
        assert_eq!(node(&root(), "a/down/back/../f").unwrap().as_deref(), Some("a/f"));
        assert_eq!(node(&root(), "a/b/back").unwrap().as_deref(), Some("a/b"));
        // Not at the end without `follow`, unless the path ends in `/`.
        assert_eq!(at(&root(), "a/up", false).unwrap().2.as_deref(), Some("a/up"));
        assert_eq!(at(&root(), "a/down/", false).unwrap().2.as_deref(), Some("a/b"));
        assert_eq!(node(&root(), "a/up/"), Err(ErrorCode::NotDirectory));
        // A dangling link names where its target would be.
        let (parent, name, n) = at(&root(), "a/dangle", true).unwrap();
        assert_eq!((parent.as_str(), name.as_deref(), n), ("a", Some("missing"), None));
        // Never out of the base: not by `..`, not by an absolute target.
        assert_eq!(node(&T("a".into()), "up"), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&root(), "a/esc"), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&root(), "a/abs"), Err(ErrorCode::NotPermitted));
        assert_eq!(node(&root(), "a/loop"), Err(ErrorCode::Loop));
    }

    #[test]
    fn new_names() {
        assert!(check_new_name("x").is_ok());
        let long: String = core::iter::repeat_n('x', 256).collect();
        assert_eq!(check_new_name(&long), Err(ErrorCode::NameTooLong));
    }
}
