"""Keep the CPU cores busy for a fixed time, then stop: the load the test suite must survive.

`python bench/busy.py --seconds 1500 --processes 2 [--while-pid PID]` runs `processes` spinning
processes (pure Python arithmetic, no memory growth) for at most `seconds`, and stops earlier
when process PID has exited. Ctrl-C or SIGTERM stops all of them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import time


def spin(until: float) -> None:
    # Stopped by terminate() (SIGTERM) or Ctrl-C without a traceback: the parent's handler is not ours.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    value = 0
    while time.monotonic() < until:
        for _ in range(100_000):
            value = (value * 1_103_515_245 + 12_345) % 2_147_483_648


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="upper bound on how long the load lasts")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 2, help="busy processes (default: one per core)"
    )
    parser.add_argument("--while-pid", type=int, help="stop as soon as this process has exited")
    args = parser.parse_args()
    if args.seconds <= 0 or args.processes < 1:
        parser.error("--seconds must be positive and --processes at least 1")
    until = time.monotonic() + args.seconds
    workers = [multiprocessing.Process(target=spin, args=(until,), daemon=True) for _ in range(args.processes)]
    signal.signal(signal.SIGTERM, stop_on_signal)
    started = time.monotonic()
    for worker in workers:
        worker.start()
    try:
        while time.monotonic() < until and any(w.is_alive() for w in workers):
            if args.while_pid is not None and not alive(args.while_pid):
                break
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()
    print(f"kept {args.processes} processes busy for {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
