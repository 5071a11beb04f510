//! Import/export names of the `weft:devices` package.

pub const PACKAGE: &str = "weft:devices";
pub const VERSION: &str = "0.1.0";
pub const TYPES: &str = "weft:devices/types@0.1.0";
pub const BLOCK: &str = "weft:devices/block@0.1.0";
pub const CLOCK: &str = "weft:devices/clock@0.1.0";
pub const CONSOLE: &str = "weft:devices/console@0.1.0";
pub const RANDOM: &str = "weft:devices/random@0.1.0";
pub const LOG: &str = "weft:devices/log@0.1.0";
pub const FILTER: &str = "weft:devices/filter@0.1.0";

/// Splits `ns:pkg/iface@version` into (`ns:pkg/iface`, version).
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((base, v)) => (base, Some(v)),
        None => (name, None),
    }
}
pub const NET: &str = "weft:devices/net@0.1.0";
pub const CAPTURE: &str = "weft:devices/capture@0.1.0";
/// Exported by a net filter that only observes (wit/watch.wit).
pub const NET_WATCH: &str = "weft:devices/net-watch@0.1.0";
/// Exported by a block filter that only observes (wit/watch.wit).
pub const BLOCK_WATCH: &str = "weft:devices/block-watch@0.1.0";
/// Exported by a net filter in the path that handles only some frames.
pub const NET_ROUTE: &str = "weft:devices/net-route@0.1.0";
/// Exported by a block filter in the path that handles only some operations.
pub const BLOCK_ROUTE: &str = "weft:devices/block-route@0.1.0";
pub const SOCKETS: &str = "weft:devices/sockets@0.1.0";
pub const EXIT: &str = "weft:devices/exit@0.1.0";
pub const POWER: &str = "weft:devices/power@0.1.0";
/// The `wasi` component's configure export in a composed app.
pub const WASI_CONFIG: &str = "wasi-config";

/// The label a composed part's `weft:devices/filter` is exported under.
pub fn config_export(part: &str) -> alloc::string::String {
    alloc::format!("{part}-config")
}
/// `weft:devices/shutdown`, without its version.
pub const SHUTDOWN: &str = "weft:devices/shutdown";

/// The label a composed part's `weft:devices/shutdown` is exported under.
pub fn shutdown_export(part: &str) -> alloc::string::String {
    alloc::format!("{part}-shutdown")
}
/// The export a WASI command runs through (any 0.2.x).
pub const WASI_RUN_PREFIX: &str = "wasi:cli/run@0.2.";

/// The functions of `weft:devices/sockets`, in the order the linker indexes
/// them and the trace numbers them.
pub const SOCKET_FNS: [&str; 11] = [
    "tcp-listen",
    "tcp-accept",
    "tcp-connect",
    "tcp-send",
    "tcp-recv",
    "tcp-shutdown",
    "udp-bind",
    "udp-send-to",
    "udp-recv-from",
    "close",
    "next-deadline",
];
