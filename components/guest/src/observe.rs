//! [`observing_net_filter!`](crate::observing_net_filter): the whole of a `net` filter
//! that only watches, like smoltcp's `Tracer` middleware.

use alloc::string::String;

use crate::Global;

static SIMULATED: Global<bool> = Global::new(false);

/// Whether the filter runs in a simulation (its `configure` was handed `sim-phase`,
/// wit/filter.wit). A filter that only observes then takes no clock reading: virtual
/// time moves when the clock is read, so a reading would change the run it watches
/// (wit/watch.wit). `arp-log` stamps its events 0 there.
pub fn simulated() -> bool {
    SIMULATED.with(|s| *s)
}

/// Notes, from a filter's config, whether it runs in a simulation ([`simulated`]).
pub fn note_simulation(config: &[(String, String)]) {
    SIMULATED.with(|s| *s = config.iter().any(|(k, _)| k == "sim-phase"));
}

/// Defines the unit struct `$filter` as a complete `net-filter` component: it takes no
/// configuration keys (but the simulation's `sim-seed` and `sim-phase`, which
/// [`crate::Config`] accepts for every filter), passes every call through unchanged, and
/// shows the frames that
/// pass to `$observe(&[Vec<u8>], direction)` — received frames with `$in`, sent ones
/// with `$out`, and of those only the ones the device took.
///
/// Call it in a crate whose wit-bindgen bindings for the `net-filter` world are in
/// scope as `FilterGuest`, `NetGuest`, `NetInfo`, `Handle`, `ErrorCode` and `net`
/// (each crate has its own). It ends with `export!($filter)`. With `watch: [..]` the
/// crate's bindings are for the `net-observer` world (wit/watch.wit).
#[macro_export]
macro_rules! observing_net_filter {
    ($filter:ident, $observe:path, in: $in:expr, out: $out:expr $(,)?) => {
        struct $filter;

        impl FilterGuest for $filter {
            fn configure(
                _device: ::alloc::string::String,
                config: ::alloc::vec::Vec<(::alloc::string::String, ::alloc::string::String)>,
            ) -> Result<(), ::alloc::string::String> {
                $crate::Config::new(&config, &[])?;
                $crate::observe::note_simulation(&config);
                Ok(())
            }
        }

        impl NetGuest for $filter {
            fn open(name: ::alloc::string::String) -> Result<Handle, ErrorCode> {
                net::open(&name)
            }

            fn info(dev: Handle) -> Result<NetInfo, ErrorCode> {
                let i = net::info(dev)?;
                Ok(NetInfo { mac: i.mac, mtu: i.mtu, checksum_offload: i.checksum_offload })
            }

            fn send(dev: Handle, frames: ::alloc::vec::Vec<::alloc::vec::Vec<u8>>) -> Result<u32, ErrorCode> {
                let n = net::send(dev, &frames)?;
                $observe(&frames[..(n as usize).min(frames.len())], $out);
                Ok(n)
            }

            fn receive(dev: Handle, max: u32) -> Result<::alloc::vec::Vec<::alloc::vec::Vec<u8>>, ErrorCode> {
                let frames = net::receive(dev, max)?;
                $observe(&frames, $in);
                Ok(frames)
            }
        }

        export!($filter);
    };
    // The `net-observer` world: the same filter, which also tells the runtime what it
    // watches (`ethertypes`: empty for every frame), so the runtime hands it copies of
    // those frames (`net-watch.seen`) instead of passing every frame through it.
    ($filter:ident, $observe:path, in: $in:expr, out: $out:expr, watch: [$($ethertype:expr),* $(,)?] $(,)?) => {
        $crate::observing_net_filter!($filter, $observe, in: $in, out: $out);

        impl exports::weft::devices::net_watch::Guest for $filter {
            fn watching() -> exports::weft::devices::net_watch::Interest {
                exports::weft::devices::net_watch::Interest {
                    ethertypes: ::alloc::vec![$($ethertype),*],
                    inbound: true,
                    outbound: true,
                }
            }

            fn seen(direction: weft::devices::capture::Direction, frames: ::alloc::vec::Vec<::alloc::vec::Vec<u8>>) {
                match direction {
                    weft::devices::capture::Direction::Inbound => $observe(&frames, $in),
                    weft::devices::capture::Direction::Outbound => $observe(&frames, $out),
                }
            }
        }
    };
}
