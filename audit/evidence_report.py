"""Writing an account's evidence for a reader (HTML) and for programs (JSON), and recording the
export itself in the audit log: it is the one place an account's personal data is gathered,
so who exported it, when, and what (SHA-256 of each file) is an audit fact of its own."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape

from audit.evidence import Evidence

TEMPLATES = Path(__file__).resolve().parent / "templates"
EXPORT_KIND = "evidence_export"


@dataclass(frozen=True)
class Exported:
    html: Path
    json: Path
    audit_entry_key: str


def _environment() -> Environment:
    # Autoescape: summaries, names and payloads come from outside and must never become markup.
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                       trim_blocks=True, lstrip_blocks=True)


def _money(minor, currency: str) -> str:
    from domain.money import CURRENCY_EXPONENTS, format_money

    if isinstance(minor, bool) or not isinstance(minor, int) or currency not in CURRENCY_EXPONENTS:
        return "—" if minor is None else str(minor)
    return format_money(minor, currency)


DECISION_HEAD = ("verdict", "reason", "rule", "until")
_NAME_KEYS = ("rule", "name", "check", "key")
_VALUE_KEYS = ("value", "observed", "actual")
_RESULT_KEYS = ("passed", "ok", "result", "verdict", "allowed", "outcome")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "—" if value is None else str(value)


def decision_rows(decision: Any) -> list[tuple[str, str, str]]:
    """Every rule a decision record holds, as (rule, value, result) rows, whatever its shape:
    a list of checks (`[{"rule", "value", "passed"}, …]`), a mapping of rule → value or
    rule → {"value", "passed"}, or plain keys. The verdict and its reason are shown apart."""
    if not isinstance(decision, dict):
        return []
    rows: list[tuple[str, str, str]] = []

    def pick(item: dict, keys: tuple[str, ...]) -> Any:
        return next((item[k] for k in keys if k in item), None)

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict) and (set(value) & set(_VALUE_KEYS + _RESULT_KEYS)):
            rest = {k: v for k, v in value.items() if k not in _VALUE_KEYS + _RESULT_KEYS + _NAME_KEYS}
            shown = pick(value, _VALUE_KEYS)
            rows.append((name, _text(shown if shown is not None or not rest else rest)
                         + (f" ({_text(rest)})" if rest and shown is not None else ""),
                         _text(pick(value, _RESULT_KEYS)) if pick(value, _RESULT_KEYS) is not None else ""))
        elif isinstance(value, dict):
            for k, v in value.items():
                add(f"{name}.{k}", v)
        elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
            for item in value:
                add(str(pick(item, _NAME_KEYS) or name), {k: v for k, v in item.items() if k not in _NAME_KEYS})
        else:
            rows.append((name, _text(value), ""))

    for key, value in decision.items():
        if key not in DECISION_HEAD:
            add(key, value)
    return rows


def render_html(evidence: Evidence, *, operator: str) -> str:
    currency = str(evidence.account.get("currency") or "")
    return _environment().get_template("evidence.html.j2").render(
        ev=evidence, operator=operator, counts=evidence.counts(), policies=evidence.policies(),
        money=lambda v: _money(v, currency), decision_rows=decision_rows,
        pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=1, default=str))


def render_json(evidence: Evidence, *, operator: str, extra: dict[str, Any] | None = None) -> str:
    """`extra`: fields a bundle adds (its placement key, a truncation note)."""
    return json.dumps({**evidence.as_dict(), "exported_by": operator, **(extra or {})}, ensure_ascii=False,
                      indent=2, default=str) + "\n"


def _write_private(path: Path, text: str) -> None:
    # Personal data: readable by the exporting user only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


async def export(evidence: Evidence, pool: asyncpg.Pool, out_dir: Path, *, operator: str) -> Exported:
    """Render, record the export in audit_log, then write. The audit row goes first: if it
    cannot be written, no personal data leaves the system unrecorded."""
    operator = operator.strip()
    if not operator:
        raise ValueError("an operator name is required")
    html, js = render_html(evidence, operator=operator), render_json(evidence, operator=operator)
    stem = f"evidence-{evidence.account_id}"
    html_path, json_path = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    now = datetime.now(timezone.utc)
    entry_key = f"{evidence.account_id}:{EXPORT_KIND}:{uuid.uuid4()}"
    data = {"files": {p.name: hashlib.sha256(t.encode("utf-8")).hexdigest() for p, t in ((html_path, html),
                                                                                        (json_path, js))},
            "directory": str(out_dir.resolve()), "timeline_entries": len(evidence.timeline),
            "runs": len(evidence.runs), "actor": operator}
    await pool.execute(
        "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        entry_key, evidence.account_id, EXPORT_KIND, now, operator,
        f"evidence exported by {operator} ({len(evidence.timeline)} timeline entries, "
        f"{len(evidence.runs)} workflow run(s))", json.dumps(data))
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(html_path, html)
    _write_private(json_path, js)
    return Exported(html=html_path, json=json_path, audit_entry_key=entry_key)
