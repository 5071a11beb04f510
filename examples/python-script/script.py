"""A plain Python script: standard library only, nothing platform-specific.

    python3 script.py [NAME] [--fail]
"""

import os
import random
import sys
import time
from datetime import datetime, timezone


def main():
    name = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "world"
    print(f"Hello, {name}, from a plain Python script!")
    print("argv", sys.argv)
    print("env", " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())))

    now = time.time()
    print("time", int(now))
    print("date", datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))
    start = time.monotonic()
    time.sleep(0.05)
    print("slept-ms", int((time.monotonic() - start) * 1000))

    print("dice", " ".join(str(random.randint(1, 6)) for _ in range(8)))

    if "--fail" in sys.argv:
        sys.exit("failing as asked")


if __name__ == "__main__":
    main()
