"""How long `arrears up` takes to stop on SIGINT and on SIGTERM (a benchmark, not a test).

    python -m bench.shutdown [--rounds 2] [--accounts 36] [--after 30]

Each round starts the stack with the demo in a fresh data directory on free ports, lets it run
`--after` seconds, sends the signal to `arrears up` and times until it exits; the stack's own
per-child timings are printed beside it.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARREARS = Path(sys.executable).parent / "arrears"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def once(sig: signal.Signals, *, accounts: int, after: float) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="arrears-bench-") as tmp:
        out = Path(tmp) / "up.out"
        env = {**os.environ, "ARREARS_DATA_DIR": str(Path(tmp) / "data"),
               "ARREARS_TEMPORAL_PORT": str(_free_port()), "ARREARS_TEMPORAL_UI_PORT": str(_free_port()),
               "ARREARS_API_PORT": str(_free_port())}
        env.pop("TEMPORAL_ADDRESS", None)
        with open(out, "wb") as f:
            proc = subprocess.Popen([str(ARREARS), "up", "--accounts", str(accounts)], stdout=f,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 180
        while "Arrears is up." not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(out.read_text(errors="replace"))
            time.sleep(0.5)
        time.sleep(after)
        began = time.monotonic()
        proc.send_signal(sig)
        proc.wait(120)
        took = time.monotonic() - began
        children = re.search(r"^stopped (.+ in .+)$", out.read_text(errors="replace"), re.M)
        return took, children.group(1) if children else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=36)
    parser.add_argument("--after", type=float, default=30.0, help="seconds the demo runs before the signal")
    args = parser.parse_args()
    for _ in range(args.rounds):
        for sig in (signal.SIGINT, signal.SIGTERM):
            took, children = once(sig, accounts=args.accounts, after=args.after)
            print(f"{sig.name:<8} {took:5.1f}s   {children}", flush=True)


if __name__ == "__main__":
    main()
