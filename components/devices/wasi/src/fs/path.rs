//! Path parsing and resolution, the same for every tree.
//!
//! A path is resolved relative to a directory descriptor, component by component, with
//! a stack of the directories walked: `..` pops it, and popping the descriptor's own
//! directory is `not-permitted`, so no path leaves the directory it was given (as in
//! wasmtime, whose cap-std refuses the same). Absolute paths are `not-permitted` too:
//! wasi-libc turns them into a preopen and a relative path before calling.

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
}

/// Where a path leads.
pub struct Found<'a, N> {
    /// The directory holding the last component (when `name` is set).
    pub parent: N,
    /// The last component, when the path ends in a name (not in `..`, and not empty
    /// after dropping `.`): only such a path can be created, removed or renamed.
    pub name: Option<&'a str>,
    /// What the path names, if it exists.
    pub node: Option<N>,
}

/// Resolve `path` from directory `base`. Every component but the last must be an
/// existing directory (`no-entry`, `not-directory`); a symbolic link on the way, or at
/// the end with `follow`, is `unsupported`; `..` above `base` is `not-permitted`.
pub fn resolve<'a, N: Node>(
    base: &N,
    path: &Path<'a>,
    follow: bool,
) -> Result<Found<'a, N>, ErrorCode> {
    if base.kind() != Kind::Dir {
        return Err(ErrorCode::NotDirectory);
    }
    let mut stack: Vec<N> = vec![base.clone()];
    let n = path.comps.len();
    for (i, comp) in path.comps.iter().enumerate() {
        let last = i + 1 == n;
        let Some(cur) = stack.last().cloned() else {
            return Err(ErrorCode::NotPermitted);
        };
        if cur.kind() != Kind::Dir {
            return Err(ErrorCode::NotDirectory);
        }
        match comp {
            Comp::Parent => {
                if stack.len() == 1 {
                    return Err(ErrorCode::NotPermitted);
                }
                stack.pop();
            }
            Comp::Name(name) => {
                let child = cur.child(name);
                if last {
                    let node = match child {
                        Some(c) if c.kind() == Kind::Symlink && follow => {
                            return Err(ErrorCode::Unsupported);
                        }
                        Some(c) if path.dir_only && c.kind() != Kind::Dir => {
                            return Err(if c.kind() == Kind::Symlink {
                                ErrorCode::Unsupported
                            } else {
                                ErrorCode::NotDirectory
                            });
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
                    Some(c) if c.kind() == Kind::Symlink => return Err(ErrorCode::Unsupported),
                    Some(c) => stack.push(c),
                }
            }
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
    use alloc::string::String;

    /// A toy tree: nodes are paths, with a fixed list of (path, kind).
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct T(String);

    const TREE: &[(&str, Kind)] = &[
        ("", Kind::Dir),
        ("a", Kind::Dir),
        ("a/b", Kind::Dir),
        ("a/f", Kind::File),
        ("a/l", Kind::Symlink),
        ("f", Kind::File),
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
        Ok((f.parent.0, f.name.map(String::from), f.node.map(|n| n.0)))
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
    fn new_names() {
        assert!(check_new_name("x").is_ok());
        let long: String = core::iter::repeat_n('x', 256).collect();
        assert_eq!(check_new_name(&long), Err(ErrorCode::NameTooLong));
    }
}
