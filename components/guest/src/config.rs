//! A filter's `config` table: typed getters, and an error for any key nobody asked for.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::parse;

/// The `list<tuple<string, string>>` handed to `filter.configure`, checked against the keys
/// a filter knows.
///
/// ```
/// # use weft_guest::Config;
/// let pairs = vec![("drop-every".to_string(), "100".to_string())];
/// let cfg = Config::new(&pairs, &["drop-every", "seed"]).unwrap();
/// assert_eq!(cfg.u64("drop-every").unwrap(), Some(100));
/// assert_eq!(cfg.u64("seed").unwrap(), None);
/// ```
pub struct Config<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Config<'a> {
    /// Fails on the first key not in `known`, or on a key given twice.
    pub fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Config<'a>, String> {
        for (i, (key, _)) in pairs.iter().enumerate() {
            if !known.contains(&key.as_str()) {
                let list = if known.is_empty() {
                    String::from("this filter takes no config keys")
                } else {
                    format!("known: {}", known.join(", "))
                };
                return Err(format!("unknown key `{key}` ({list})"));
            }
            if pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(format!("key `{key}` given more than once"));
            }
        }
        Ok(Config { pairs })
    }

    /// The raw text of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parse `key` with `f`; an error names the key.
    pub fn get<T>(
        &self,
        key: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => f(v)
                .map(Some)
                .map_err(|e| format!("bad value for `{key}`: {e}")),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key, parse::parse_u64)
    }

    /// An integer that must be at least 1 (an "every Nth" count).
    pub fn positive(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key, |v| match parse::parse_u64(v)? {
            0 => Err(format!("expected an integer of at least 1, got `{v}`")),
            n => Ok(n),
        })
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        self.get(key, parse::parse_f64)
    }

    pub fn probability(&self, key: &str) -> Result<Option<f64>, String> {
        self.get(key, parse::parse_probability)
    }

    /// A signed duration in nanoseconds.
    pub fn duration_ns(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key, parse::parse_duration_ns)
    }

    /// A duration that must not be negative.
    pub fn nonneg_duration_ns(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key, |v| match parse::parse_duration_ns(v)? {
            d if d < 0 => Err(format!("expected a duration of at least 0, got `{v}`")),
            d => Ok(d),
        })
    }

    /// Keys present, in manifest order (for a configure log line).
    pub fn keys(&self) -> Vec<&'a str> {
        self.pairs.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_key_lists_known() {
        let p = pairs(&[("drop-every", "3"), ("foo", "1")]);
        let err = Config::new(&p, &["drop-every", "drop-chance", "seed"])
            .err()
            .unwrap();
        assert_eq!(
            err,
            "unknown key `foo` (known: drop-every, drop-chance, seed)"
        );
        let err = Config::new(&p[1..], &[]).err().unwrap();
        assert_eq!(err, "unknown key `foo` (this filter takes no config keys)");
    }

    #[test]
    fn duplicate_key() {
        let p = pairs(&[("seed", "3"), ("seed", "4")]);
        assert!(
            Config::new(&p, &["seed"])
                .err()
                .unwrap()
                .contains("more than once")
        );
    }

    #[test]
    fn typed_getters_name_the_key() {
        let p = pairs(&[
            ("drop-every", "0"),
            ("drop-chance", "2"),
            ("latency", "5ms"),
            ("seed", "9"),
            ("offset", "-2h"),
            ("rate", "0.5"),
        ]);
        let known = [
            "drop-every",
            "drop-chance",
            "latency",
            "seed",
            "offset",
            "rate",
            "jitter",
        ];
        let c = Config::new(&p, &known).unwrap();
        assert_eq!(c.u64("drop-every"), Ok(Some(0)));
        let e = c.positive("drop-every").unwrap_err();
        assert!(e.starts_with("bad value for `drop-every`"), "{e}");
        assert!(
            c.probability("drop-chance")
                .unwrap_err()
                .contains("`drop-chance`")
        );
        assert_eq!(c.duration_ns("latency"), Ok(Some(5_000_000)));
        assert_eq!(c.u64("seed"), Ok(Some(9)));
        assert_eq!(c.duration_ns("offset"), Ok(Some(-7_200_000_000_000)));
        assert!(c.nonneg_duration_ns("offset").is_err());
        assert_eq!(c.f64("rate"), Ok(Some(0.5)));
        assert_eq!(c.duration_ns("jitter"), Ok(None));
        assert_eq!(c.keys().len(), 6);
    }
}
