"""Record new golden files in tests/golden/HASHES.txt: `python -m tests.golden.record`.

Appends an `add` line for every golden file on disk that the manifest does not list yet (the
generator does this itself). It never touches a recorded file: one that was modified or deleted
stays a failure of tests/test_golden_append_only.py.
"""
from __future__ import annotations

import sys

from tests.golden import integrity


def record(golden=integrity.GOLDEN) -> list[str]:  # noqa: ANN001 - a Path
    new = integrity.unrecorded(golden)
    retired = [p for p, _ in new if p.split("/")[0] == integrity.RETIRED]
    if retired:
        raise SystemExit("files under retired/ enter only through python -m tests.golden.retire: " + ", ".join(retired))
    integrity.append_ops([f"add {sha} {path}" for path, sha in new], golden)
    return [path for path, _ in new]


def main() -> int:
    added = record()
    for path in added:
        print(f"recorded tests/golden/{path}")
    problems = integrity.tree_problems()
    for p in problems:
        print(p, file=sys.stderr)
    if not added and not problems:
        print("nothing new to record")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
