"""{{name}}: a weft clock filter in Python. It sits between the clock and
whoever reads it (the app, or the next filter out): every reading and every
wait comes here first, and this filter decides what it asks the clock below
(`clock`, the import) and what time it reports (what the methods of `Clock`
return). As made by `weft new`, it passes every call through unchanged. The
contract is in wit/deps/weft-devices/clock.wit.

Any exception traps, and weft stops the run naming this filter.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import clock, log

# The topic of this filter's events (`[{{name}}] ...` on stderr).
TOPIC = "{{name}}"


class Filter(exports.Filter):
    def configure(self, device: str, config: list[tuple[str, str]]) -> None:
        """Called once, before any clock call, with the role of the device
        this filter sits on (`clock`) and its `config` table from
        weft.toml."""
        for key, _value in config:
            # weft adds sim-seed and sim-phase in a simulation (`weft run
            # --sim`): every filter must accept them (wit/deps/weft-devices/
            # filter.wit). Your config keys go here: `config = { offset =
            # "1h" }` in weft.toml arrives as ("offset", "1h").
            if key not in ("sim-seed", "sim-phase"):
                raise Err(f"unknown key `{key}` ({{name}} takes no config keys)")
        log.append(TOPIC, f"on {device}: passing every call through", [("device", device)])


class Clock(exports.Clock):
    def monotonic_now(self) -> int:
        """Nanoseconds since an arbitrary origin."""
        # The behaviour goes here (and in `wall_now` and `wait_until`):
        # shift, stretch, freeze or jitter the time the clock below reports.
        return clock.monotonic_now()

    def wall_now(self) -> int:
        """Nanoseconds since 1970-01-01T00:00:00Z."""
        return clock.wall_now()

    def wait_until(self, deadline: int) -> int:
        """`deadline` is in this filter's time: a filter that changes time
        translates it for the clock below, and reports its own time back."""
        return clock.wait_until(deadline)
