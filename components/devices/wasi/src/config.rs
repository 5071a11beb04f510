//! The `configure` entries: arguments, environment, initial directory and preopened
//! directories.
//!
//! `weft_guest::Config` rejects repeated keys, but `arg` and `env` repeat by design (one
//! entry per argument or variable, in order), so this parser is its own.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The keys `configure` accepts.
pub const KEYS: [&str; 4] = ["arg", "env", "cwd", "preopen"];

/// What backs a preopened directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `memory`: an empty writable tree.
    Memory,
    /// `tar:<role>`: the read-only tree of the tar archive on block device `<role>`.
    Tar(String),
    /// `fat:<role>`: the writable FAT file system on block device `<role>`.
    Fat(String),
}

/// What `wasi:cli/environment` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// `get-arguments`: the program name first.
    pub args: Vec<String>,
    /// `get-environment`, in configuration order.
    pub env: Vec<(String, String)>,
    /// `initial-cwd`.
    pub cwd: Option<String>,
    /// `get-directories`, in configuration order: (guest path, what backs it).
    pub preopens: Vec<(String, Spec)>,
}

impl Setup {
    /// Parse the entries; the first bad one gives a message naming its key.
    pub fn from_config(pairs: &[(String, String)]) -> Result<Setup, String> {
        let mut setup = Setup::default();
        for (key, value) in pairs {
            let bad = |why: &str| format!("bad value for `{key}`: {why}");
            if value.contains('\0') {
                return Err(bad("contains a NUL byte"));
            }
            match key.as_str() {
                "arg" => setup.args.push(value.clone()),
                "env" => {
                    let Some((name, val)) = value.split_once('=') else {
                        return Err(bad(&format!("expected NAME=value, got `{value}`")));
                    };
                    if name.is_empty() {
                        return Err(bad(&format!("empty variable name in `{value}`")));
                    }
                    if setup.env.iter().any(|(n, _)| n == name) {
                        return Err(bad(&format!("variable `{name}` set more than once")));
                    }
                    setup.env.push((name.to_string(), val.to_string()));
                }
                "cwd" => {
                    if setup.cwd.is_some() {
                        return Err(format!("key `{key}` given more than once"));
                    }
                    if value.is_empty() {
                        return Err(bad("empty directory"));
                    }
                    setup.cwd = Some(value.clone());
                }
                "preopen" => {
                    let Some((dir, spec)) = value.rsplit_once('=') else {
                        return Err(bad(&format!(
                            "expected <dir>=memory, <dir>=tar:<block role> or <dir>=fat:<block role>, got `{value}`"
                        )));
                    };
                    if dir.is_empty() {
                        return Err(bad(&format!("empty directory in `{value}`")));
                    }
                    if setup.preopens.iter().any(|(d, _)| d == dir) {
                        return Err(bad(&format!("directory `{dir}` preopened more than once")));
                    }
                    let spec = match (spec.strip_prefix("tar:"), spec.strip_prefix("fat:")) {
                        (Some(role), _) if !role.is_empty() => Spec::Tar(role.to_string()),
                        (_, Some(role)) if !role.is_empty() => Spec::Fat(role.to_string()),
                        (None, None) if spec == "memory" => Spec::Memory,
                        _ => {
                            return Err(bad(&format!(
                                "expected `memory`, `tar:<block role>` or `fat:<block role>` after `=`, got `{spec}`"
                            )));
                        }
                    };
                    setup.preopens.push((dir.to_string(), spec));
                }
                // Added by the runtime in a simulation, for every configured component
                // (wit/filter.wit); WASI's randomness comes from `random`, so nothing
                // here uses them.
                "sim-seed" | "sim-phase" => {}
                _ => {
                    return Err(format!("unknown key `{key}` (known: {})", KEYS.join(", ")));
                }
            }
        }
        Ok(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kv: &[(&str, &str)]) -> Result<Setup, String> {
        let pairs: Vec<(String, String)> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Setup::from_config(&pairs)
    }

    #[test]
    fn empty_config_is_empty_setup() {
        assert_eq!(parse(&[]), Ok(Setup::default()));
    }

    #[test]
    fn args_env_cwd_in_order() {
        let s = parse(&[
            ("arg", "prog"),
            ("arg", "-v"),
            ("env", "HOME=/home/me"),
            ("env", "EMPTY="),
            ("env", "EQ=a=b"),
            ("arg", ""),
            ("cwd", "/srv"),
        ])
        .unwrap();
        assert_eq!(s.args, ["prog", "-v", ""]);
        assert_eq!(
            s.env,
            [
                ("HOME".to_string(), "/home/me".to_string()),
                ("EMPTY".to_string(), String::new()),
                ("EQ".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(s.cwd.as_deref(), Some("/srv"));
    }

    #[test]
    fn preopens_in_order() {
        let s = parse(&[
            ("preopen", "/data=tar:files"),
            ("preopen", "/tmp=memory"),
            ("preopen", "/odd=name=memory"),
            ("preopen", "/disk=fat:store"),
        ])
        .unwrap();
        assert_eq!(
            s.preopens,
            [
                ("/data".to_string(), Spec::Tar("files".into())),
                ("/tmp".to_string(), Spec::Memory),
                ("/odd=name".to_string(), Spec::Memory),
                ("/disk".to_string(), Spec::Fat("store".into())),
            ]
        );
    }

    #[test]
    fn sim_keys_are_accepted_and_ignored() {
        let s = parse(&[("arg", "prog"), ("sim-seed", "42"), ("sim-phase", "2")]).unwrap();
        assert_eq!(
            s,
            Setup {
                args: vec!["prog".to_string()],
                ..Setup::default()
            }
        );
    }

    #[test]
    fn bad_preopens() {
        let e = |v: &str| parse(&[("preopen", v)]).unwrap_err();
        assert_eq!(
            e("/data"),
            "bad value for `preopen`: expected <dir>=memory, <dir>=tar:<block role> or <dir>=fat:<block role>, got `/data`"
        );
        assert_eq!(
            e("=memory"),
            "bad value for `preopen`: empty directory in `=memory`"
        );
        assert_eq!(
            e("/d=disk"),
            "bad value for `preopen`: expected `memory`, `tar:<block role>` or `fat:<block role>` after `=`, got `disk`"
        );
        assert_eq!(
            e("/d=tar:"),
            "bad value for `preopen`: expected `memory`, `tar:<block role>` or `fat:<block role>` after `=`, got `tar:`"
        );
        assert_eq!(
            parse(&[("preopen", "/d=memory"), ("preopen", "/d=tar:x")]).unwrap_err(),
            "bad value for `preopen`: directory `/d` preopened more than once"
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            parse(&[("args", "x")]).unwrap_err(),
            "unknown key `args` (known: arg, env, cwd, preopen)"
        );
        assert_eq!(
            parse(&[("env", "PATH")]).unwrap_err(),
            "bad value for `env`: expected NAME=value, got `PATH`"
        );
        assert_eq!(
            parse(&[("env", "=x")]).unwrap_err(),
            "bad value for `env`: empty variable name in `=x`"
        );
        assert_eq!(
            parse(&[("env", "A=1"), ("env", "A=2")]).unwrap_err(),
            "bad value for `env`: variable `A` set more than once"
        );
        assert_eq!(
            parse(&[("cwd", "/"), ("cwd", "/tmp")]).unwrap_err(),
            "key `cwd` given more than once"
        );
        assert_eq!(
            parse(&[("cwd", "")]).unwrap_err(),
            "bad value for `cwd`: empty directory"
        );
        assert_eq!(
            parse(&[("arg", "a\0b")]).unwrap_err(),
            "bad value for `arg`: contains a NUL byte"
        );
    }
}
