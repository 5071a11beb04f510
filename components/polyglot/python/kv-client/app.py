"""kv-client, in Python: a key-value client of `weft:devices/kv`, an interface
another component exports -- in examples/kv-python the shipped Rust `kv`,
which keeps the data in the kvstore's log on a block device, so the Rust
`kvstore` app reads what this one wrote.

Arguments are commands, run in order:

    set KEY VALUE    store VALUE under KEY          prints `set KEY`
    get KEY          the value under KEY            prints `KEY = VALUE` (or `KEY is not set`)
    keys             every key, in byte order       prints `keys: A B ...`

Exit status 0, or 1 at the first command that fails (`error: ...`) and 2
for bad arguments. Built by componentize-py with --stub-wasi (like hello):
the component imports nothing but `kv` and `console`.
"""

import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import console, kv

USAGE = "usage: kv-client (set KEY VALUE | get KEY | keys)..."


def say(text: str) -> None:
    console.write((text + "\n").encode())


def commands(args: list[str]):
    """(name, operands) for each command in `args`; ValueError if malformed."""
    i = 0
    while i < len(args):
        name, arity = args[i], {"set": 2, "get": 1, "keys": 0}.get(args[i])
        if arity is None:
            raise ValueError(f"unknown command {name!r}")
        operands = args[i + 1 : i + 1 + arity]
        if len(operands) < arity:
            raise ValueError(f"{name} needs {arity} argument(s)")
        yield name, operands
        i += 1 + arity


class WitWorld(wit_world.WitWorld):
    def run(self, args: list[str]) -> int:
        try:
            todo = list(commands(args))
            if not todo:
                raise ValueError("no command")
        except ValueError as e:
            say(f"kv-client: {e}\n{USAGE}")
            return 2
        try:
            for name, operands in todo:
                if name == "set":
                    key, value = operands
                    kv.set(key, value)
                    say(f"set {key}")
                elif name == "get":
                    (key,) = operands
                    value = kv.get(key)
                    say(f"{key} = {value}" if value is not None else f"{key} is not set")
                else:
                    say("keys: " + " ".join(kv.keys()))
            return 0
        except Err as e:
            say(f"error: {e.value}")
            return 1
        except Exception:
            # The console is the only way out (WASI is stubbed): print the
            # traceback there rather than trap without a message.
            say("kv-client: " + traceback.format_exc())
            return 1
