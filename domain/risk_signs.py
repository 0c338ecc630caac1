"""How a warning sign is met: the policy's reaction or the catalogue's (schemas/risk_signs.py), and
whether a reported position is the region agreed in the contract. Pure: no Temporal imports.
"""
from __future__ import annotations

from collections.abc import Mapping

from schemas.risk_signs import CATALOGUE, LEGACY_KINDS, REACTIONS, Reaction, Sign  # noqa: F401 (re-exported)


def reaction_for(kind: str, overrides: Mapping[str, str]) -> str:
    """The policy's reaction when it names the kind, else the catalogue's."""
    if kind in overrides:
        return overrides[kind]
    sign = CATALOGUE.get(kind)
    return sign.reaction if sign else "route_to_person"


def _region(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def within_agreed_region(agreed: str | None, reported: str | None) -> bool | None:
    """Whether a reported position is the region agreed in the contract: None when either is unknown
    (then a person verifies). Compared without case, spaces or punctuation ("Jiangsu" = "jiangsu ")."""
    if not agreed or not reported:
        return None
    return _region(agreed) == _region(reported)
