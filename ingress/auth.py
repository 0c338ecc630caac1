"""Who may call the ingress, and what each caller may do.

Authentication: `Authorization: Bearer <token>`, where the token is an API key (`arr_…`, see
ingress.apikeys) or, when ARREARS_AUTH_METHODS includes `oidc`, a JWT from the configured OIDC
provider (ingress.oidc). Every route needs it except the public ones below: health, the OpenAPI
document and its pages, and the providers' webhooks (they carry their own signatures).

Authorization: each route needs one permission; each role grants a set of permissions. Both
tables are here, in one place. A route or update not named in them needs `supervise` (denied by
default to everyone but supervisors), and a test checks every update has its own entry.

The identity recorded in the workflow, the audit log and the evidence is the authenticated
principal: `stamp` overwrites the body's `operator` and `role` before an update is sent.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from fastapi import HTTPException, Request

from infra.settings import Settings
from ingress.principals import ROLE_PERMISSIONS, Principal

log = logging.getLogger(__name__)

# Operator updates and signals by name (routes `POST /accounts/{account_id}/<name>`).
ACTION_PERMISSIONS: dict[str, str] = {
    # operator: promises, disputes, pauses, consent, contact outcomes and risk reports
    "promise_to_pay": "operate",
    "open_dispute": "operate",
    "resolve_dispute": "operate",
    "repayment_plan": "operate",
    "pause": "operate",
    "resume": "operate",
    "opt_out": "operate",
    "cease_communication": "operate",
    "risk": "operate",
    "contact": "operate",
    # recovery of a financed machine: an operator records a voluntary surrender and its progress; the
    # workflow itself refuses a repossession to anyone but a supervisor
    "request_recovery": "operate",
    "recovery_update": "operate",
    # supervisor: money given up, accounts ended, machines locked or unlocked, approvals, policy
    "write_off": "supervise",
    "close": "supervise",
    "record_refund": "supervise",
    "withdraw_cease": "supervise",
    "reinstate_phone": "supervise",
    "waive_fee": "supervise",
    "approve_lockout": "supervise",
    "reject_lockout": "supervise",
    "emergency_unlock": "supervise",
    "decide_approval": "supervise",
    "change_policy": "supervise",
    "decide_disposal": "supervise",
}

# Billing routes (method, path template).
BILLING_ROUTES = {("POST", "/accounts"), ("POST", "/accounts/{account_id}/payments"),
                  ("POST", "/accounts/{account_id}/payment_reversals")}
# Agent work (ingress/task_routes.py): operators and supervisors act on tasks; every role lists them.
TASK_ROUTES = {("POST", "/tasks/{task_id}/claim"): "operate", ("POST", "/tasks/{task_id}/release"): "operate",
               ("POST", "/tasks/{task_id}/outcome"): "operate", ("POST", "/tasks/{task_id}/resolve"): "operate"}
# Reads that not every role may do: evidence bundles are personal data handed to counsel, so only
# supervisors fetch them (never a billing system's key); each download is audited (ingress/evidence.py).
RESTRICTED_READS = {("GET", "/accounts/{account_id}/evidence-bundles/{name}"): "supervise",
                    ("HEAD", "/accounts/{account_id}/evidence-bundles/{name}"): "supervise"}
PUBLIC_PATHS = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PUBLIC_PREFIXES = ("/webhooks/",)  # signed by the provider, verified by each webhook


def required_permission(method: str, path: str) -> str | None:
    """The permission a route needs; None for public routes."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    if (method, path) in BILLING_ROUTES:
        return "billing"
    if (method, path) in RESTRICTED_READS:
        return RESTRICTED_READS[(method, path)]
    if method in ("GET", "HEAD"):
        return "read"
    if (method, path) in TASK_ROUTES:
        return TASK_ROUTES[(method, path)]
    if method == "POST" and path.startswith("/accounts/{account_id}/"):
        return ACTION_PERMISSIONS.get(path.rsplit("/", 1)[-1], "supervise")
    return "supervise"


class Authenticator:
    """Turns a bearer token into a Principal: API keys from PostgreSQL, JWTs from OIDC."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.methods = {m.strip() for m in settings.auth_methods.split(",") if m.strip()}
        unknown = self.methods - {"api_key", "oidc"}
        if unknown or not self.methods:
            raise ValueError(f"ARREARS_AUTH_METHODS: use api_key, oidc or both, not {settings.auth_methods!r}")
        self._pepper: bytes | None = None
        self._oidc = None
        if "oidc" in self.methods:
            from ingress.oidc import OidcVerifier

            self._oidc = OidcVerifier.from_settings(settings)

    def _api_keys(self, pool: Any):
        from ingress.apikeys import ApiKeys, load_pepper

        if self._pepper is None:
            s = self.settings
            self._pepper = load_pepper(s.api_key_pepper.get_secret_value() if s.api_key_pepper else None, s.data_dir)
        return ApiKeys(pool, self._pepper)

    async def authenticate(self, token: str, pool: Any) -> Principal | None:
        from ingress.apikeys import PREFIX

        if token.startswith(PREFIX):
            if "api_key" not in self.methods:
                return None
            record = await self._api_keys(pool).verify(token)
            return Principal(record.name, (record.role,), "api_key") if record else None
        if self._oidc is not None:
            return await self._oidc.verify(token)
        return None


def bearer_token(request: Request) -> str | None:
    """The credential: `Bearer <token>`, or HTTP Basic with the API key as the password (any user
    name), which is what a browser can send to the portfolio page."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "basic" and token.strip():
        import base64
        import binascii

        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        password = decoded.partition(":")[2].strip()
        return password or None
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(detail: str, *, browser: bool = False) -> HTTPException:
    # Bearer for programs; a browser (asking for HTML) is challenged with Basic, so it asks the person
    # for the key (as the password) on the portfolio page.
    challenge = 'Basic realm="arrears", charset="UTF-8"' if browser else 'Bearer realm="arrears"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def check(auth: Authenticator, pool: Any, permission: str, token: str | None, what: str, *,
                browser: bool = False) -> Principal:
    """Authenticate the token and check the permission; 401 or 403 otherwise. `what` names the
    request in the log (never the token)."""
    if token is None:
        raise unauthorized("authentication required: send `Authorization: Bearer <API key or token>`", browser=browser)
    principal = await auth.authenticate(token, pool)
    if principal is None:
        raise unauthorized("invalid, expired or revoked credentials", browser=browser)
    if not principal.permits(permission):
        log.warning("%s refused: %s (%s) lacks %s", what, principal.name, ",".join(principal.roles) or "no role",
                    permission)
        raise HTTPException(403, f"{principal.name} ({', '.join(principal.roles) or 'no role'}) may not do this: "
                                 f"it needs the {permission!r} permission")
    return principal


async def authorize(request: Request) -> None:
    """App-wide dependency: every route passes here before its endpoint runs."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:  # not an API route (documentation pages): public
        return
    permission = required_permission(request.method, path)
    if permission is None:
        return
    state = request.app.state
    timeouts = getattr(state, "timeouts", None)
    try:
        # The key store is PostgreSQL: a database that is down or hung answers 503, in time.
        async with asyncio.timeout(timeouts.transaction if timeouts else 20.0):
            request.state.principal = await check(state.auth, state.pool, permission, bearer_token(request),
                                                  f"{request.method} {path}",
                                                  browser="text/html" in request.headers.get("accept", ""))
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        from ingress.errors import Unavailable

        raise Unavailable(f"cannot check credentials now ({type(err).__name__}); retry later") from None
    request.state.permission = permission


def stamp(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The update body with `operator` and `role` of the authenticated principal, whatever it said."""
    principal: Principal = request.state.principal
    return {**body, "operator": principal.name, "role": principal.role_for(request.state.permission)}
