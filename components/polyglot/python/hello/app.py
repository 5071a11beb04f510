"""hello, in Python: prints what the Rust hello (components/apps/hello)
prints -- a greeting, the wall clock (RFC 3339 UTC, from the weft clock), the
monotonic clock and 8 random bytes from the weft random device -- and exits 0.
With the arguments `now N` it is the call-cost benchmark instead
(host-posix/benches/polyglot.rs): N `clock.monotonic-now` calls timed with
that clock, printed as `ns/call X`, then the same loop without the call,
`ns/loop Y`.

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


def calls(n: int) -> None:
    now = clock.monotonic_now
    t0 = now()
    for _ in range(n):
        now()
    t1 = now()
    for _ in range(n):
        pass
    t2 = now()
    write(f"ns/call {(t1 - t0) / n:.1f}\nns/loop {(t2 - t1) / n:.1f}\n")


class WitWorld(wit_world.WitWorld):
    def run(self, args: list[str]) -> int:
        # An uncaught exception would be printed on WASI stderr, which
        # --stub-wasi turns into a trap with no message: print it here.
        try:
            if args[:1] == ["now"]:
                calls(int(args[1]) if len(args) > 1 else 100_000)
                return 0
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
