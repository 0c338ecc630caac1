"""Retire golden histories deliberately, in one command:

    python -m tests.golden.retire full_ladder promise_kept \\
        --reason "the rewrite of issue 9 changes which commands a paid-off account emits" \\
        --running "none: ...; in general: ..." [--set NAME]

Moves each named scenario directory (every recorded file in it, byte for byte) to
`tests/golden/retired/<set>/<scenario>/`, appends an entry to the retirement log in
`docs/replay.md` and `retire` lines to `tests/golden/HASHES.txt`. `--all` names every scenario
that is not retired yet.

With `--from-git COMMIT`, the scenarios' files as they were at COMMIT (overwritten since) are
recovered into `retired/<set>/` instead (`recover` lines); nothing in the live set moves.

Retired histories are not replayed against the current code (`arrears replay --dir` skips
`retired/` unless it is named); they stay as the record of what older code did.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from tests.golden import integrity
from tests.golden.integrity import GOLDEN, GOLDEN_PREFIX, REPLAY_DOC, RETIRED

LOG_INTRO = f"""{integrity.LOG_HEADING}

Every retirement of golden histories, newest last. `tests/golden/HASHES.txt` names each retired
file with the entry that retired it, and `tests/test_golden_append_only.py` accepts no other
removal. Entries are never edited.
"""


def _git(*args: str, cwd: Path = integrity.ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


def _tracked(path: Path, cwd: Path) -> bool:
    try:
        return _git("ls-files", "--error-unmatch", str(path), cwd=cwd).returncode == 0
    except FileNotFoundError:
        return False


def live_scenarios(golden: Path = GOLDEN) -> list[str]:
    return sorted({p.split("/")[0] for p in integrity.recorded(golden) if p.split("/")[0] != RETIRED})


def next_log_id(doc: Path = REPLAY_DOC) -> str:
    ids = [int(i[1:]) for i in integrity.retirement_log(doc)]
    return f"R{max(ids, default=0) + 1}"


def append_log_entry(title: str, lines: list[str], doc: Path = REPLAY_DOC) -> str:
    ident = next_log_id(doc)
    text = doc.read_text(encoding="utf-8")
    entry = f"\n### {ident} — {title}\n\n" + "".join(f"- {line}\n" for line in lines)
    start = text.find(integrity.LOG_HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + LOG_INTRO + entry
    else:
        after = text.find("\n## ", start + len(integrity.LOG_HEADING))
        if after < 0:
            text = text.rstrip("\n") + "\n" + entry
        else:
            text = text[:after].rstrip("\n") + "\n" + entry + text[after:]
    doc.write_text(text, encoding="utf-8")
    return ident


def default_set_name(golden: Path = GOLDEN) -> str:
    base = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    name, n = base, 2
    while (golden / RETIRED / name).exists():
        name, n = f"{base}-{n}", n + 1
    return name


def retire(scenarios: list[str], *, reason: str, running: str, set_name: str, from_git: str | None = None,
           golden: Path = GOLDEN, doc: Path = REPLAY_DOC) -> tuple[str, list[str]]:
    """Move (or, with `from_git`, recover) the scenarios' files into retired/<set_name>/; returns the
    log entry's ID and the retired paths (relative to tests/golden)."""
    if len(reason.strip()) < 20 or len(running.strip()) < 20:
        raise SystemExit("--reason and --running must each say it (a sentence, not a word)")
    if "/" in set_name or not set_name.strip() or set_name.startswith("."):
        raise SystemExit(f"--set {set_name!r}: one directory name")
    root = golden.parent.parent
    recorded = integrity.recorded(golden)
    problems = integrity.tree_problems(golden, doc)
    if problems:
        raise SystemExit("fix these first (the golden set does not match HASHES.txt):\n" + "\n".join(problems))
    plan: list[tuple[str, str, str, bytes | None]] = []     # (from, to, sha, content for recover)
    for scenario in scenarios:
        scenario = scenario.strip("/")
        if scenario.split("/")[0] == RETIRED:
            raise SystemExit(f"{scenario}: already retired")
        if from_git:
            listing = _git("ls-tree", "-r", "--name-only", from_git, "--", f"{GOLDEN_PREFIX}{scenario}", cwd=root)
            if listing.returncode != 0:
                raise SystemExit(f"git: {listing.stderr.decode().strip()}")
            names = [n.removeprefix(GOLDEN_PREFIX) for n in listing.stdout.decode().split("\n") if n]
            names = [n for n in names if integrity.is_golden_file(n)]
            if not names:
                raise SystemExit(f"{scenario}: no golden files at {from_git}")
            for rel in names:
                blob = _git("show", f"{from_git}:{GOLDEN_PREFIX}{rel}", cwd=root).stdout
                sha = integrity.sha256(blob)
                if recorded.get(rel) == sha:
                    continue            # unchanged since: it is still in the live set
                plan.append((rel, f"{RETIRED}/{set_name}/{rel}", sha, blob))
        else:
            names = sorted(p for p in recorded if p == scenario or p.startswith(scenario + "/"))
            if not names:
                raise SystemExit(f"{scenario}: no recorded golden files (scenarios: {', '.join(live_scenarios(golden))})")
            plan += [(rel, f"{RETIRED}/{set_name}/{rel}", recorded[rel], None) for rel in names]
    if not plan:
        raise SystemExit("nothing to retire")
    for _, to, _, _ in plan:
        if (golden / to).exists() or to in recorded:
            raise SystemExit(f"tests/golden/{to} exists already: choose another --set")
    count = len({p[0].split("/")[0] for p in plan})
    title = (f"{datetime.now(timezone.utc):%Y-%m-%d} — `tests/golden/{RETIRED}/{set_name}/` "
             f"({count} scenario{'s' if count != 1 else ''}, {len(plan)} files)")
    origin = (f"Files: recovered unchanged from git, as committed at {from_git[:10]}: "
              if from_git else "Files: moved unchanged from `tests/golden/`: ")
    scenario_names = sorted({"`" + p[0].split("/")[0] + "`" for p in plan})
    ident = append_log_entry(title, [f"Reason: {reason.strip()}", f"Running accounts: {running.strip()}",
                                     origin + ", ".join(scenario_names)], doc)
    ops = []
    for src, to, sha, blob in plan:
        dest = golden / to
        dest.parent.mkdir(parents=True, exist_ok=True)
        if blob is not None:
            dest.write_bytes(blob)
            ops.append(f"recover {sha} {src} {to} {ident} {_git('rev-parse', from_git, cwd=root).stdout.decode().strip()}")
            continue
        source = golden / src
        if _tracked(source, root):
            done = _git("mv", str(source), str(dest), cwd=root)
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode())
        else:
            shutil.move(source, dest)
        ops.append(f"retire {sha} {src} {to} {ident}")
    integrity.append_ops(ops, golden)
    for src, _, _, blob in plan:      # empty scenario directories go
        parent = (golden / src).parent
        while blob is None and parent != golden and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return ident, [p[1] for p in plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("scenarios", nargs="*", help="scenario directories under tests/golden (e.g. full_ladder)")
    parser.add_argument("--all", action="store_true", help="every scenario not retired yet")
    parser.add_argument("--reason", required=True, help="why these histories no longer replay / are retired")
    parser.add_argument("--running", required=True,
                        help="how accounts running on the retired path are handled (or why there are none)")
    parser.add_argument("--set", dest="set_name", help="retired/<set> directory name (default: today's date)")
    parser.add_argument("--from-git", metavar="COMMIT", help="recover the files as committed at COMMIT instead")
    args = parser.parse_args(argv)
    scenarios = live_scenarios() if args.all else args.scenarios
    if not scenarios:
        parser.error("name scenarios, or --all")
    ident, paths = retire(scenarios, reason=args.reason, running=args.running,
                          set_name=args.set_name or default_set_name(), from_git=args.from_git)
    print(f"retired {len(paths)} files into tests/golden/{RETIRED}/{paths[0].split(chr(47))[1]}/ "
          f"(retirement log {ident} in docs/replay.md)")
    if os.environ.get("ARREARS_SKIP_COVERAGE_REPORT") != "1":
        try:
            from tests.golden.coverage import write_report

            write_report()
        except Exception as err:  # the retirement stands; the report can be rebuilt by hand
            print(f"coverage report not refreshed ({err}); run python -m tests.golden.coverage", file=sys.stderr)
    problems = integrity.tree_problems()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
