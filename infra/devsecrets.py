"""Development secrets generated into the data directory on first use (codec keys, the API-key
pepper, the development API keys). Production configures its own through the environment.

Several processes of one stack may start at once (worker, ingress, CLI): the first to create a
file wins and every other one reads the winner's, so they all end up with the same secret."""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def secrets_dir(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "secrets"


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's text; created (mode 0600) with `make()` when it does not exist yet."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)  # atomic, and fails if another process created it first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8")


def write_private(path: Path, text: str) -> None:
    """Replace a file atomically with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
