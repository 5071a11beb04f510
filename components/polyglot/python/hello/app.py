"""hello, in Python: prints what the Rust hello (components/apps/hello)
prints -- a greeting, the wall clock (RFC 3339 UTC, from the weft clock), the
monotonic clock and 8 random bytes from the weft random device -- and exits 0.

Built by componentize-py with --stub-wasi, so the component imports nothing
but weft:devices interfaces; Python's own `time` and `print` would go through
WASI, which --stub-wasi turns into traps: this app talks to the devices.
"""

import traceback
from datetime import datetime, timezone

import wit_world
from wit_world.imports import clock, console, random


def rfc3339_utc(unix_ns: int) -> str:
    secs, sub_ns = divmod(unix_ns, 1_000_000_000)
    t = datetime.fromtimestamp(secs, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{sub_ns // 1_000_000:03}Z"


def write(text: str) -> None:
    console.write(text.encode())


class WitWorld(wit_world.WitWorld):
    def run(self, args: list[str]) -> int:
        # An uncaught exception would be printed on WASI stderr, which
        # --stub-wasi turns into a trap with no message: print it here.
        try:
            wall = clock.wall_now()
            mono = clock.monotonic_now()
            data = random.fill(8)
            write(
                "Hello from weft!\n"
                f"wall clock: {rfc3339_utc(wall)}\n"
                f"monotonic: {mono} ns\n"
                f"random: {data.hex()}\n"
            )
            return 0
        except Exception:
            write("hello: " + traceback.format_exc())
            return 1
