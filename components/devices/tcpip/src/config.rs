//! The `[stack]` keys as `filter.configure` hands them over.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::Config;
use weft_guest::parse::unquote;

pub const KEYS: &[&str] = &[
    "ip",
    "gateway",
    "tcp-rx-buffer",
    "tcp-tx-buffer",
    "udp-buffer",
    "backlog",
    "probe-wait",
];

/// A host on the same link answers an ARP probe within a millisecond; a loaded
/// machine's kernel may take a scheduler tick or two to.
pub const PROBE_WAIT_DEFAULT_NS: u64 = 20_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackConfig {
    pub ip: [u8; 4],
    pub prefix: u8,
    pub gateway: Option<[u8; 4]>,
    /// Bytes of receive / transmit buffer per TCP socket.
    pub tcp_rx: usize,
    pub tcp_tx: usize,
    /// Bytes of payload buffer per UDP socket (each direction).
    pub udp_buf: usize,
    /// Listening sockets kept ready per listened port: how many handshakes can be in
    /// flight (or established and not yet accepted) before SYNs are refused.
    pub backlog: usize,
    /// How long `configure` listens for an answer to the start-up ARP probe.
    pub probe_wait_ns: u64,
}

impl StackConfig {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<StackConfig, String> {
        let cfg = Config::new(pairs, KEYS)?;
        let (ip, prefix) = match cfg.get("ip", parse_cidr)? {
            Some(v) => v,
            None => return Err(String::from("missing key `ip` (e.g. ip = \"10.0.0.2/24\")")),
        };
        let gateway = cfg.get("gateway", parse_ipv4)?;
        if let Some(gw) = gateway {
            if !same_subnet(ip, gw, prefix) {
                return Err(format!(
                    "bad value for `gateway`: {} is not in {}/{prefix}",
                    fmt_ip(gw),
                    fmt_ip(ip)
                ));
            }
        }
        let size = |key: &str, default: usize, min: u64, max: u64| -> Result<usize, String> {
            match cfg.u64(key)? {
                None => Ok(default),
                Some(v) if (min..=max).contains(&v) => Ok(v as usize),
                Some(v) => Err(format!(
                    "bad value for `{key}`: {v} is outside {min}..={max}"
                )),
            }
        };
        Ok(StackConfig {
            ip,
            prefix,
            gateway,
            tcp_rx: size("tcp-rx-buffer", 64 * 1024, 1024, 1 << 24)?,
            tcp_tx: size("tcp-tx-buffer", 64 * 1024, 1024, 1 << 24)?,
            udp_buf: size("udp-buffer", 16 * 1024, 1024, 1 << 24)?,
            backlog: size("backlog", 8, 1, 256)?,
            probe_wait_ns: match cfg.nonneg_duration_ns("probe-wait")? {
                Some(ns) if ns > 10_000_000_000 => {
                    return Err(format!("bad value for `probe-wait`: at most 10s, got {}", weft_guest::fmt::duration(ns)))
                }
                Some(ns) => ns as u64,
                None => PROBE_WAIT_DEFAULT_NS,
            },
        })
    }
}

/// The simulation's `sim-seed`, when the runtime added one (`Config` accepts it, and
/// `sim-phase`, for every stack and filter).
pub fn sim_seed(pairs: &[(String, String)]) -> Result<Option<u64>, String> {
    Config::new(pairs, KEYS)?.u64("sim-seed")
}

pub fn parse_ipv4(s: &str) -> Result<[u8; 4], String> {
    let t = unquote(s);
    let bad = || format!("expected an IPv4 address such as 10.0.0.1, got `{s}`");
    let parts: Vec<&str> = t.split('.').collect();
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut ip = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        ip[i] = p.parse::<u8>().map_err(|_| bad())?;
    }
    Ok(ip)
}

pub fn parse_cidr(s: &str) -> Result<([u8; 4], u8), String> {
    let t = unquote(s);
    let bad = || format!("expected an address with a prefix length such as 10.0.0.2/24, got `{s}`");
    let (addr, prefix) = t.split_once('/').ok_or_else(bad)?;
    let ip = parse_ipv4(addr).map_err(|_| bad())?;
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    if ip == [0; 4] || ip[0] >= 224 || ip[0] == 127 {
        return Err(format!("`{s}` is not a usable host address"));
    }
    Ok((ip, prefix))
}

pub fn same_subnet(a: [u8; 4], b: [u8; 4], prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    u32::from_be_bytes(a) & mask == u32::from_be_bytes(b) & mask
}

pub use weft_guest::fmt::{ip as fmt_ip, mac as fmt_mac};

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn probe_wait() {
        let c = |v: &str| StackConfig::from_pairs(&pairs(&[("ip", "10.0.0.2/24"), ("probe-wait", v)]));
        assert_eq!(c("\"1s\"").unwrap().probe_wait_ns, 1_000_000_000);
        assert_eq!(c("\"0s\"").unwrap().probe_wait_ns, 0);
        assert!(c("\"-1ms\"").unwrap_err().contains("probe-wait"));
        assert!(c("\"11s\"").unwrap_err().contains("at most 10s"));
        let d = StackConfig::from_pairs(&pairs(&[("ip", "10.0.0.2/24")])).unwrap();
        assert_eq!(d.probe_wait_ns, PROBE_WAIT_DEFAULT_NS);
    }

    #[test]
    fn full_config() {
        let c = StackConfig::from_pairs(&pairs(&[
            ("ip", "10.0.0.2/24"),
            ("gateway", "\"10.0.0.1\""),
            ("backlog", "16"),
        ]))
        .unwrap();
        assert_eq!(c.ip, [10, 0, 0, 2]);
        assert_eq!(c.prefix, 24);
        assert_eq!(c.gateway, Some([10, 0, 0, 1]));
        assert_eq!(c.backlog, 16);
        assert_eq!(c.tcp_rx, 65536);
    }

    #[test]
    fn errors_name_the_key() {
        let e = StackConfig::from_pairs(&pairs(&[("gateway", "10.0.0.1")])).unwrap_err();
        assert!(e.contains("`ip`"), "{e}");
        let e =
            StackConfig::from_pairs(&pairs(&[("ip", "10.0.0.2/24"), ("mtu", "1500")])).unwrap_err();
        assert!(e.contains("unknown key `mtu`"), "{e}");
        for bad in [
            "10.0.0.2",
            "10.0.0/24",
            "10.0.0.256/24",
            "10.0.0.2/33",
            "x",
            "0.0.0.0/8",
        ] {
            let e = StackConfig::from_pairs(&pairs(&[("ip", bad)])).unwrap_err();
            assert!(e.contains("`ip`") || e.contains(bad), "{bad}: {e}");
        }
        let e = StackConfig::from_pairs(&pairs(&[("ip", "10.0.0.2/24"), ("gateway", "10.1.0.1")]))
            .unwrap_err();
        assert!(e.contains("`gateway`"), "{e}");
        let e = StackConfig::from_pairs(&pairs(&[("ip", "10.0.0.2/24"), ("backlog", "0")]))
            .unwrap_err();
        assert!(e.contains("`backlog`"), "{e}");
    }

    #[test]
    fn sim_keys_are_accepted() {
        let p = pairs(&[("ip", "10.0.0.2/24"), ("sim-seed", "9"), ("sim-phase", "2")]);
        assert_eq!(StackConfig::from_pairs(&p).unwrap().ip, [10, 0, 0, 2]);
        assert_eq!(sim_seed(&p), Ok(Some(9)));
        assert_eq!(sim_seed(&pairs(&[("ip", "10.0.0.2/24")])), Ok(None));
        let e = sim_seed(&pairs(&[("sim-seed", "x")])).unwrap_err();
        assert!(e.contains("`sim-seed`"), "{e}");
    }

    #[test]
    fn subnets() {
        assert!(same_subnet([10, 0, 0, 2], [10, 0, 0, 200], 24));
        assert!(!same_subnet([10, 0, 0, 2], [10, 0, 1, 2], 24));
        assert!(same_subnet([10, 0, 0, 2], [192, 168, 0, 1], 0));
    }
}
