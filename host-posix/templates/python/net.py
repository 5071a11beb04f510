"""{{name}}: a weft net filter in Python. It sits between a network device
and whoever drives it (the TCP/IP stack, or the next filter out): every batch
of Ethernet frames sent and received comes here first, and this filter
decides what reaches the device below (`net`, the import) and what goes back
up (what the methods of `Net` return). As made by `weft new`, it passes every
frame through unchanged. The contract is in wit/deps/weft-devices/net.wit.

Errors: a device call that fails raises `Err(ErrorCode)`; raise one yourself
to fail a call. Any other exception traps, and weft stops the run naming this
filter.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, net

# The topic of this filter's events (`[{{name}}] ...` on stderr).
TOPIC = "{{name}}"


class Filter(exports.Filter):
    def configure(self, device: str, config: list[tuple[str, str]]) -> None:
        """Called once, before any net call, with the role of the device this
        filter sits on (`net`) and its `config` table from the manifest."""
        for key, _value in config:
            # weft adds sim-seed and sim-phase in a simulation (`weft run
            # --sim`): every filter must accept them (wit/deps/weft-devices/
            # filter.wit). Your config keys go here: `config = { drop-every =
            # 10 }` in the manifest arrives as ("drop-every", "10").
            if key not in ("sim-seed", "sim-phase"):
                raise Err(f"unknown key `{key}` ({{name}} takes no config keys)")
        log.append(TOPIC, f"on {device}: passing every frame through", [("device", device)])


class Net(exports.Net):
    def open(self, name: str) -> int:
        return net.open(name)

    def info(self, dev: int) -> net.NetInfo:
        # A filter that changes frames' contents reports checksum_offload
        # False (see net.wit).
        return net.info(dev)

    def send(self, dev: int, frames: list[bytes]) -> int:
        """Returns how many frames, from the front, the device accepted."""
        # The behaviour goes here (and in `receive`): drop, delay, change,
        # duplicate, count or log frames. A frame dropped on purpose still
        # counts as accepted (the wire loses it, not the device).
        return net.send(dev, frames)

    def receive(self, dev: int, max: int) -> list[bytes]:
        return net.receive(dev, max)
