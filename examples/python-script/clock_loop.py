"""Times N calls of time.monotonic_ns(), and the same loop without the call.

    python3 clock_loop.py [N]
"""

import sys
import time


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    now = time.monotonic_ns
    t0 = now()
    for _ in range(n):
        now()
    t1 = now()
    for _ in range(n):
        pass
    t2 = now()
    print(f"ns/call {(t1 - t0) / n:.1f}")
    print(f"ns/loop {(t2 - t1) / n:.1f}")


if __name__ == "__main__":
    main()
