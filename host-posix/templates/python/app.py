"""{{name}}: a weft app in Python. weft calls `run` with the manifest's
`[app] args`; what it returns is the unikernel's exit code. It prints through
the `console` device; to use another device, add its import to
wit/world.wit (`import weft:devices/clock@0.1.0;`), import it here
(`from wit_world.imports import clock`) and call it (`clock.wall_now()`).

Built by componentize-py with --stub-wasi: Python's own WASI imports (stdout,
`time`, files) become traps, because weft gives an app nothing but its
devices. So no `print`: write to `console`.
"""

import traceback

import wit_world
from wit_world.imports import console


def write(text: str) -> None:
    console.write(text.encode())


class WitWorld(wit_world.WitWorld):
    def run(self, args: list[str]) -> int:
        # An uncaught exception would go to (stubbed) stderr and trap without
        # a message: print it on the console instead.
        try:
            write("Hello from {{name}}, a weft app in Python!\n")
            if args:
                write("args: " + " ".join(args) + "\n")
            return 0
        except Exception:
            write("{{name}}: " + traceback.format_exc())
            return 1
