"""Golden histories are append-only: a committed history is never modified or deleted.

Two records make that checkable:

* `tests/golden/HASHES.txt`, committed and itself append-only, lists every golden file with the
  SHA-256 of its content as a sequence of operations:

      add      <sha256> <path>                               a new golden file
      retire   <sha256> <from> <to> <log-id>                 moved unchanged into retired/
      recover  <sha256> <from> <to> <log-id> <commit>        an older version, recovered from git
                                                             into retired/ (overwritten before
                                                             this check existed)

  Paths are relative to `tests/golden`. Replaying the operations gives the files the tree must
  hold, byte for byte: nothing missing, nothing changed, nothing unrecorded.
* git history (CI clones with full history): every golden file committed at or after
  `BASELINE` must still be in the tree, at its path or, moved unchanged, under `retired/` by a
  `retire`/`recover` operation whose `<log-id>` names an entry of the retirement log in
  `docs/replay.md`; and every committed version of HASHES.txt is a prefix of the current one.

"Golden file" means every `*.json` / `*.json.gz` under `tests/golden` (histories and their
per-account `manifest.json`); the Python tooling beside them is ordinary code.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parent.parent
HASHES = GOLDEN / "HASHES.txt"
REPLAY_DOC = ROOT / "docs" / "replay.md"
RETIRED = "retired"
LOG_HEADING = "## Retirement log"
# The commit that first added golden histories: every golden file committed since must survive.
BASELINE = "57577ec60ef6d2adbe971ed65617062538c91ac1"
GOLDEN_PREFIX = "tests/golden/"


def is_golden_file(rel: str) -> bool:
    return rel.endswith((".json", ".json.gz")) and "__pycache__" not in rel


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def golden_tree(golden: Path = GOLDEN) -> dict[str, str]:
    """Every golden file on disk: path relative to `golden` -> SHA-256."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(golden):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(golden).as_posix()
            if is_golden_file(rel):
                out[rel] = sha256(path.read_bytes())
    return out


@dataclass(frozen=True)
class Op:
    line: int
    kind: str
    sha: str
    path: str                  # add: the file; retire/recover: where it is now
    source: str | None = None  # retire/recover: where it was
    log: str | None = None
    commit: str | None = None


@dataclass
class Manifest:
    ops: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)       # path -> sha the tree must hold
    moved: dict[tuple[str, str], str] = field(default_factory=dict)   # (from, sha) -> retired path


_SHA = re.compile(r"^[0-9a-f]{64}$")


def parse_manifest(text: str, log_ids: set[str] | None = None) -> Manifest:
    m = Manifest()
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        kind = parts[0]
        shape = {"add": 3, "retire": 5, "recover": 6}.get(kind)
        if shape is None or len(parts) != shape or not _SHA.match(parts[1]):
            m.errors.append(f"HASHES.txt line {n}: cannot read {raw!r}")
            continue
        if kind == "add":
            op = Op(n, kind, parts[1], parts[2])
        else:
            op = Op(n, kind, parts[1], parts[3], source=parts[2], log=parts[4],
                    commit=parts[5] if kind == "recover" else None)
        m.ops.append(op)
        _apply(m, op, log_ids)
    return m


def _apply(m: Manifest, op: Op, log_ids: set[str] | None) -> None:
    where = f"HASHES.txt line {op.line}"
    if op.kind == "add":
        if op.path in m.state:
            m.errors.append(f"{where}: {op.path} is added again: a golden file is never replaced "
                            "(regenerated in place?); retire the old one first")
        elif op.path.split("/")[0] == RETIRED:
            m.errors.append(f"{where}: {op.path}: files enter retired/ only by retire or recover")
        else:
            m.state[op.path] = op.sha
        return
    if op.path.split("/")[0] != RETIRED:
        m.errors.append(f"{where}: {op.path}: a retired file must go under {RETIRED}/")
        return
    if op.path in m.state:
        m.errors.append(f"{where}: {op.path} already holds a golden file")
        return
    if log_ids is not None and op.log not in log_ids:
        m.errors.append(f"{where}: retirement log entry {op.log} is not in docs/replay.md ({LOG_HEADING})")
    if op.kind == "retire":
        assert op.source is not None
        if m.state.get(op.source) != op.sha:
            m.errors.append(f"{where}: retires {op.source}, which the manifest does not hold with that content")
            return
        del m.state[op.source]
    m.state[op.path] = op.sha
    m.moved[(op.source or "", op.sha)] = op.path


# ------------------------------------------------------------------ retirement log
@dataclass(frozen=True)
class LogEntry:
    id: str
    title: str
    body: str


def retirement_log(doc: Path = REPLAY_DOC) -> dict[str, LogEntry]:
    """Entries `### R<n> ...` under `## Retirement log`, each needing a reason and a statement of
    how accounts running on the retired path are handled."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    start = text.find(LOG_HEADING)
    if start < 0:
        return {}
    section = text[start + len(LOG_HEADING):]
    end = re.search(r"^## ", section, re.M)
    section = section[:end.start()] if end else section
    out: dict[str, LogEntry] = {}
    parts = re.split(r"^### (R\d+)\b", section, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        ident, rest = parts[i], parts[i + 1]
        title, _, body = rest.partition("\n")
        out[ident] = LogEntry(ident, title.strip(" —-"), body)
    return out


def log_problems(entries: dict[str, LogEntry]) -> list[str]:
    problems = []
    for e in entries.values():
        for label in ("Reason:", "Running accounts:"):
            found = re.search(rf"^\s*[-*]\s*\*{{0,2}}{re.escape(label)}\*{{0,2}}\s*(.+)$", e.body, re.M)
            if not found or len(found.group(1).strip()) < 20:
                problems.append(f"retirement log {e.id}: needs a '- {label} ...' line that says it")
    return problems


# ------------------------------------------------------------------ the checks
def tree_problems(golden: Path = GOLDEN, doc: Path = REPLAY_DOC) -> list[str]:
    """The tree against the manifest; needs no git."""
    if not (golden / HASHES.name).exists():
        return [f"{golden / HASHES.name} is missing"]
    entries = retirement_log(doc)
    m = parse_manifest((golden / HASHES.name).read_text(encoding="utf-8"), set(entries))
    problems = list(m.errors) + log_problems(entries)
    tree = golden_tree(golden)
    for path, sha in sorted(m.state.items()):
        if path not in tree:
            problems.append(f"deleted: tests/golden/{path} (golden histories are append-only; "
                            "retire it: python -m tests.golden.retire, see docs/replay.md)")
        elif tree[path] != sha:
            problems.append(f"modified in place: tests/golden/{path} (golden histories are append-only: guard the "
                            "change with workflow.patched, or retire the old history and add a new one)")
    for path in sorted(set(tree) - set(m.state)):
        problems.append(f"not recorded: tests/golden/{path} (a new golden file: python -m tests.golden.record)")
    return problems


class GitUnavailable(Exception):
    """Not a git checkout, or no git: only the manifest check can run."""


def _git(*args: str, input: bytes | None = None, cwd: Path = ROOT) -> bytes:
    git = shutil.which("git")
    if git is None:
        raise GitUnavailable("git is not installed")
    done = subprocess.run([git, *args], cwd=cwd, input=input, capture_output=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["git", *args], done.stdout, done.stderr)
    return done.stdout


def _git_checkout(root: Path) -> None:
    try:
        inside = _git("rev-parse", "--is-inside-work-tree", cwd=root).strip()
    except subprocess.CalledProcessError as err:
        raise GitUnavailable("not a git checkout") from err
    if inside != b"true":
        raise GitUnavailable("not a git work tree")


def committed_versions(root: Path = ROOT, baseline: str = BASELINE) -> dict[tuple[str, str], str]:
    """Every golden file committed at or after `baseline` (on HEAD's ancestry), as
    (path relative to tests/golden, sha256) -> the first commit that held it."""
    _git_checkout(root)
    if _git("rev-parse", "--is-shallow-repository", cwd=root).strip() == b"true":
        raise RuntimeError("shallow clone: the golden append-only check needs the full history (git fetch --unshallow)")
    try:
        _git("cat-file", "-e", f"{baseline}^{{commit}}", cwd=root)
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"baseline commit {baseline[:12]} is not in this clone's history") from err
    commits = [baseline] + _git("rev-list", "--reverse", "--ancestry-path", f"{baseline}..HEAD", "--",
                                "tests/golden", cwd=root).decode().split()
    blobs: dict[str, tuple[str, str]] = {}          # blob id -> (path, commit)
    for commit in commits:
        listing = _git("ls-tree", "-r", "-z", commit, "--", "tests/golden", cwd=root).split(b"\0")
        for item in listing:
            if not item:
                continue
            meta, path = item.decode().split("\t", 1)
            _mode, kind, blob = meta.split()
            rel = path.removeprefix(GOLDEN_PREFIX)
            if kind == "blob" and is_golden_file(rel):
                blobs.setdefault(f"{blob} {rel}", (rel, commit))
    out: dict[tuple[str, str], str] = {}
    if not blobs:
        return out
    contents = _cat_blobs([key.split()[0] for key in blobs], root)
    for key, (rel, commit) in blobs.items():
        out.setdefault((rel, sha256(contents[key.split()[0]])), commit)
    return out


def _cat_blobs(ids: list[str], root: Path) -> dict[str, bytes]:
    raw = _git("cat-file", "--batch", input=("\n".join(ids) + "\n").encode(), cwd=root)
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(raw):
        header_end = raw.index(b"\n", pos)
        blob_id, _kind, size = raw[pos:header_end].decode().split()
        start = header_end + 1
        out[blob_id] = raw[start:start + int(size)]
        pos = start + int(size) + 1
    return out


def manifest_versions(root: Path = ROOT, *, first_parent: bool = False) -> list[tuple[str, bytes]]:
    """Every committed version of HASHES.txt on HEAD's ancestry (or its first-parent line), oldest first."""
    _git_checkout(root)
    rel = f"{GOLDEN_PREFIX}{HASHES.name}"
    line = ["--first-parent"] if first_parent else []
    commits = _git("rev-list", "--reverse", *line, "HEAD", "--", rel, cwd=root).decode().split()
    out = []
    for commit in commits:
        try:
            out.append((commit, _git("show", f"{commit}:{rel}", cwd=root)))
        except subprocess.CalledProcessError:
            out.append((commit, b""))          # deleted in that commit
    return out


def _in_order(lines: list[bytes], current: list[bytes]) -> bool:
    """Whether every line is in `current`, in the same order (a subsequence)."""
    rest = iter(current)
    return all(any(line == c for c in rest) for line in lines)


def history_problems(root: Path = ROOT, golden: Path = GOLDEN, baseline: str = BASELINE) -> list[str]:
    """Git history against the tree: nothing committed since the baseline was lost or rewritten."""
    m = parse_manifest((golden / HASHES.name).read_text(encoding="utf-8")) if (golden / HASHES.name).exists() \
        else Manifest()
    tree = golden_tree(golden)
    problems = []
    for (rel, sha), commit in sorted(committed_versions(root, baseline).items(), key=lambda kv: (kv[0][0], kv[1])):
        if tree.get(rel) == sha:
            continue
        retired = m.moved.get((rel, sha))
        if retired is not None and tree.get(retired) == sha:
            continue
        problems.append(f"tests/golden/{rel} as committed in {commit[:10]} is gone (modified or deleted later; "
                        "golden histories are append-only: recover it into retired/ with a retirement log entry)")
    # Append-only: each version on the main line is a prefix of today's. A version on a branch merged
    # since (histories recorded in parallel) is kept whole and in order, its lines interleaved with the
    # other branch's appends: nothing it held is dropped or changed.
    current = (golden / HASHES.name).read_bytes() if (golden / HASHES.name).exists() else b""
    main_line = {commit for commit, _ in manifest_versions(root, first_parent=True)}
    for commit, text in manifest_versions(root):
        kept = current.startswith(text) if commit in main_line else _in_order(text.splitlines(), current.splitlines())
        if not kept:
            problems.append(f"tests/golden/HASHES.txt as committed in {commit[:10]} is not a prefix of the current "
                            "one: the manifest is append-only")
    for (rel, sha), target in m.moved.items():
        op = next(o for o in m.ops if o.path == target and o.sha == sha)
        if op.kind == "recover" and op.commit:
            try:
                blob = _git("show", f"{op.commit}:{GOLDEN_PREFIX}{rel}", cwd=root)
            except subprocess.CalledProcessError:
                problems.append(f"HASHES.txt line {op.line}: {rel} is not in commit {op.commit[:10]}")
                continue
            if sha256(blob) != sha:
                problems.append(f"HASHES.txt line {op.line}: {rel} in {op.commit[:10]} has other content")
    return problems


# ------------------------------------------------------------------ writing the manifest
def append_ops(lines: list[str], golden: Path = GOLDEN) -> None:
    path = golden / HASHES.name
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "".join(f"{line}\n" for line in lines), encoding="utf-8")


def unrecorded(golden: Path = GOLDEN) -> list[tuple[str, str]]:
    m = parse_manifest((golden / HASHES.name).read_text(encoding="utf-8")) if (golden / HASHES.name).exists() \
        else Manifest()
    tree = golden_tree(golden)
    return [(p, sha) for p, sha in sorted(tree.items()) if p not in m.state]


def recorded(golden: Path = GOLDEN) -> dict[str, str]:
    if not (golden / HASHES.name).exists():
        return {}
    return parse_manifest((golden / HASHES.name).read_text(encoding="utf-8")).state
