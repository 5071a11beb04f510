"""`python script.py [args...]` as a WASI command: runs a plain Python script
that knows nothing of weft (or of WASI).

componentize-py builds this module, with the scripts staged beside it, into a
component for the world `wasi:cli/command`; weft composes it with its `wasi`
component, so the script's `print`, `time.time()`, `os.environ`, `sys.argv`
and `random` go through weft's devices (and through their filters:
clock-skew shows in `time.time()`).

A componentize-py component is a snapshot taken after this module was
imported: at run time there is no file system holding the Python standard
library or the script. So, at build time, this module compiles every script
staged beside it and imports the modules each one imports (`import x`, `from x
import y`, anywhere in the script); at run time it executes the script named
by the first argument, as `python` would: `sys.argv` is that name and the
arguments after it, `__name__` is `"__main__"`.

The script ends like under `python`: normally (exit status 0), by
`sys.exit(0)` or `sys.exit()` (0), by `sys.exit(n)` or an uncaught exception,
which prints its traceback (exit status 1: `wasi:cli/run` can only say ok or
error).
"""

import ast
import importlib
import os
import sys
import traceback
import types

from componentize_py_types import Err
from wit_world import exports

_HERE = os.path.dirname(os.path.abspath(__file__))
_SCRIPTS = {}


def _imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            for alias in node.names:  # `from pkg import submodule`
                yield f"{node.module}.{alias.name}"


def _load_scripts():
    for name in sorted(os.listdir(_HERE)):
        if not name.endswith(".py") or name == os.path.basename(__file__):
            continue
        with open(os.path.join(_HERE, name), encoding="utf-8") as f:
            tree = ast.parse(f.read(), name)
        _SCRIPTS[name] = compile(tree, name, "exec")
        for module in _imported_modules(tree):
            try:
                importlib.import_module(module)
            except Exception:  # not a module (`from x import function`), or unusable here
                pass


_load_scripts()


def _usage(message):
    print(f"python: {message}", file=sys.stderr)
    print(f"usage: python SCRIPT [ARG...], SCRIPT one of: {', '.join(_SCRIPTS) or '(none built in)'}",
          file=sys.stderr)


class Run(exports.Run):
    def run(self) -> None:
        args = sys.argv[1:]  # sys.argv[0] is the program name weft gives
        if not args:
            _usage("no script named")
            raise Err(None)
        code = _SCRIPTS.get(os.path.basename(args[0]))
        if code is None:
            _usage(f"can't open file {args[0]!r}")
            raise Err(None)
        main = types.ModuleType("__main__")
        main.__file__ = args[0]
        main.__builtins__ = __builtins__
        sys.modules["__main__"] = main
        sys.argv = args
        status = 0
        try:
            exec(code, main.__dict__)
        except SystemExit as e:
            if e.code is None or e.code == 0:
                status = 0
            elif isinstance(e.code, int):
                status = e.code
            else:
                print(e.code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if status != 0:
            raise Err(None)
