"""{{name}}: a weft block filter in Python. It sits between a block device
and whoever uses it (the app, or the next filter out): every call the app
makes on the device comes here first, and this filter decides what reaches
the device below (`block`, the import) and what goes back up (what the
methods of `Block` return). As made by `weft new`, it passes every call
through unchanged. The contract each call must keep (reads never short, what
`flush` promises) is in wit/deps/weft-devices/block.wit.

Errors: a device call that fails raises `Err(ErrorCode)`; raise one yourself
to fail a call (`raise Err(ErrorCode.IO)`). Any other exception traps, and
weft stops the run naming this filter.
"""

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import block, log

# The topic of this filter's events (`[{{name}}] ...` on stderr).
TOPIC = "{{name}}"


class Filter(exports.Filter):
    def configure(self, device: str, config: list[tuple[str, str]]) -> None:
        """Called once, before any block call, with the role of the device
        this filter sits on (`storage`) and its `config` table from
        weft.toml."""
        for key, _value in config:
            # weft adds sim-seed and sim-phase in a simulation (`weft run
            # --sim`): every filter must accept them (wit/deps/weft-devices/
            # filter.wit). Your config keys go here: `config = { every = 10 }`
            # in weft.toml arrives as ("every", "10").
            if key not in ("sim-seed", "sim-phase"):
                raise Err(f"unknown key `{key}` ({{name}} takes no config keys)")
        log.append(TOPIC, f"on {device}: passing every call through", [("device", device)])


class Block(exports.Block):
    def open(self, name: str) -> int:
        return block.open(name)

    def info(self, dev: int) -> block.Geometry:
        return block.info(dev)

    def read(self, dev: int, start: int, count: int) -> bytes:
        # The behaviour goes here (and in `write` and `flush`): change the
        # data, fail a call (`raise Err(ErrorCode.IO)`, ErrorCode from
        # wit_world.imports.types), count or log operations with
        # `log.append`.
        return block.read(dev, start, count)

    def write(self, dev: int, start: int, data: bytes) -> None:
        block.write(dev, start, data)

    def flush(self, dev: int) -> None:
        block.flush(dev)
