"""Message templates: Jinja2 files under activities/templates/<language>/<channel>/<name>.<ext>.j2.

- sms / voice: plain text (`.txt.j2`), rendered whole.
- email: HTML (`.html.j2`, autoescaped) extending the language's layout; the `subject` block is
  rendered on its own and unescaped back to plain text.
- letter: plain text (`.txt.j2`) extending the language's letter layout.

Variables are strict: a template that needs `lockout_date` fails loudly without it rather than
sending a letter with a blank date.
"""
from __future__ import annotations

import html
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError,
                    pass_context, select_autoescape)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHANNELS = ("sms", "email", "voice", "letter")
_EXT = {"sms": "txt", "voice": "txt", "letter": "txt", "email": "html"}
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


class TemplateMissing(LookupError):
    """No template for this (template, channel, language)."""


class TemplateRenderError(ValueError):
    """The template exists but could not be rendered with the variables given."""


@pass_context
def _longdate(context: Any, value: Any) -> str:
    """An ISO date (or date/datetime) written out for the reader's language."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        value = date.fromisoformat(str(value)[:10])
    if context.get("language") == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=False,
        trim_blocks=False,
    )
    env.filters["longdate"] = _longdate
    return env


def template_path(template: str, channel: str, language: str) -> str:
    return f"{language}/{channel}/{template}.{_EXT.get(channel, 'txt')}.j2"


def available(language: str) -> dict[str, set[str]]:
    """template name -> channels it exists on, for one language."""
    found: dict[str, set[str]] = {}
    for path in (TEMPLATES / language).glob("*/*.j2"):
        if path.name.startswith("_"):
            continue
        found.setdefault(path.name.split(".", 1)[0], set()).add(path.parent.name)
    return found


def render(template: str, channel: str, language: str, variables: dict[str, Any]) -> tuple[str | None, str]:
    """Render a message; returns (subject or None, body). Email bodies are HTML."""
    if channel not in CHANNELS:
        raise TemplateMissing(f"unknown channel {channel!r}")
    name = template_path(template, channel, language)
    try:
        tpl = environment().get_template(name)
    except TemplateNotFound:
        have = sorted(available(language).get(template, ()))
        raise TemplateMissing(
            f"no {channel} template {template!r} in language {language!r} "
            f"(expected activities/templates/{name}; this template exists for: {have or 'no channel'})"
        ) from None
    context = {**variables, "language": language}
    try:
        body = tpl.render(context).strip() + "\n"
        subject = None
        if channel == "email":
            block = tpl.blocks.get("subject")
            if block is None:
                raise TemplateRenderError(f"email template {name} has no subject block")
            raw = "".join(block(tpl.new_context(context)))
            subject = " ".join(html.unescape(raw).split())
    except UndefinedError as exc:
        raise TemplateRenderError(f"template {name}: {exc.message}") from exc
    if channel in ("sms", "voice"):
        body = body.strip()
    return subject, body
