"""Who is calling the ingress, and what each role may do: the principal an API key or an OIDC token
resolves to (ingress/auth.py, ingress/oidc.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["billing", "operator", "supervisor", "readonly"]
Permission = Literal["read", "billing", "operate", "supervise"]

# The role hierarchy, explicitly: every role reads; a supervisor may do what an operator does.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "readonly": frozenset({"read"}),
    "billing": frozenset({"read", "billing"}),
    "operator": frozenset({"read", "operate"}),
    "supervisor": frozenset({"read", "operate", "supervise"}),
}


@dataclass(frozen=True)
class Principal:
    name: str
    roles: tuple[str, ...]
    method: str  # api_key | oidc

    def permits(self, permission: str) -> bool:
        return any(permission in ROLE_PERMISSIONS.get(r, ()) for r in self.roles)

    def role_for(self, permission: str) -> str | None:
        """The role this principal acts in for a permission (its first role that grants it)."""
        return next((r for r in self.roles if permission in ROLE_PERMISSIONS.get(r, ())), None)
