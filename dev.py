#!/usr/bin/env python3
"""Bootstrap: create the virtual environment, install Arrears, then run it or test it.

    python3 dev.py up      # the whole stack on embedded defaults, with a demo portfolio
    python3 dev.py test    # the full test suite

Dependencies are installed from requirements.lock (exact versions and hashes, the same set a
deploy installs: what CI replays is what production runs), again whenever the lock or
pyproject.toml changes. `python3 dev.py lock` re-resolves the lock from pyproject.toml
(docs/replay.md says when).

Standard library only: it must work on a machine with nothing but Python 3.11+ and pip.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("ARREARS_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".arrears-installed"
LOCK = ROOT / "requirements.lock"
PIP_TOOLS = "pip-tools==7.6.2"
# The project's packages (pyproject.toml's [tool.setuptools] list) and the benchmarks.
PACKAGES = ("workflows", "activities", "workers", "schemas", "domain", "infra", "ingress", "cli", "policies", "audit",
            "bench")
# The one command that writes the lock (`python3 dev.py lock`), also printed at its top.
LOCK_ARGS = ["--extra", "test", "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url",
             "--no-emit-find-links", "--output-file", "requirements.lock", "pyproject.toml"]


def _fingerprint() -> str:
    # Reinstall only when the project's declared or locked dependencies change.
    data = (ROOT / "pyproject.toml").read_bytes() + (LOCK.read_bytes() if LOCK.exists() else b"")
    return hashlib.sha256(data).hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Arrears needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("installing Arrears and its dependencies (requirements.lock)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    if LOCK.exists():
        # Exactly the locked versions, each checked against its hash; then Arrears itself, adding nothing.
        subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(LOCK)], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
        subprocess.run([str(BIN / "python"), "-m", "pip", "check"], check=True)
    else:
        subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(_fingerprint())


def compile_bytecode(root: Path = ROOT) -> None:
    """Write the bytecode of the project's own packages. Python reads bytecode even where it may not
    write any (PYTHONDONTWRITEBYTECODE, set on some CI machines): without it every process compiles
    the sources it imports again, time a restarting worker spends before any account answers. The
    wheel a deploy installs (infra/deploy/Dockerfile) has it from pip. Only changed files are
    compiled; a failure here is left for the import to report."""
    packages = [str(root / p) for p in PACKAGES if (root / p).is_dir()]
    subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", *packages], check=False,
                   stdout=subprocess.DEVNULL)


def lock(upgrade: bool = False) -> int:
    """Re-resolve requirements.lock from pyproject.toml: keeps the pins it can, adds what is new
    (`python3 dev.py lock --upgrade`: the newest versions the ranges allow)."""
    if not (BIN / "python").exists():   # the lock may be stale: never install from it here
        venv.EnvBuilder(with_pip=True).create(VENV)
    python = str(BIN / "python")
    subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", PIP_TOOLS], check=True)
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"}
    done = subprocess.run([python, "-m", "piptools", "compile", "--quiet", *(["--upgrade"] if upgrade else []),
                           *LOCK_ARGS], cwd=ROOT, env=env)
    if done.returncode == 0:
        print("requirements.lock written; the next dev.py up/test installs it", flush=True)
    return done.returncode


def main(argv: list[str]) -> int:
    if argv and argv[0] == "lock":
        return lock(upgrade="--upgrade" in argv[1:])
    if not argv or argv[0] not in {"up", "test"}:
        print(__doc__)
        return 2
    ensure_environment()
    compile_bytecode()
    command, rest = argv[0], argv[1:]
    if command == "up":
        args = [str(BIN / "arrears"), "up", *rest]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    os.chdir(ROOT)
    # exec so Ctrl-C and exit codes belong to the real process, not to this wrapper.
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
