"""Bearer tokens from an OIDC provider (ARREARS_AUTH_METHODS=oidc), verified with PyJWT.

The token's signature is checked against the provider's JWKS (fetched and cached by
PyJWKClient), then its issuer, audience and expiry. The principal's name is the
ARREARS_OIDC_NAME_CLAIM claim (default `preferred_username`, else `sub`); its roles are the
Arrears role names found in ARREARS_OIDC_ROLES_CLAIM (a list or a space/comma separated string).
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import jwt

from infra.settings import Settings
from ingress.principals import ROLE_PERMISSIONS, Principal

log = logging.getLogger(__name__)


class OidcVerifier:
    def __init__(self, *, issuer: str, audience: str, jwks_url: str | None, algorithms: list[str],
                 name_claim: str, roles_claim: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.name_claim = name_claim
        self.roles_claim = roles_claim
        self._jwks_url = jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, s: Settings) -> "OidcVerifier":
        if not s.oidc_issuer or not s.oidc_audience:
            raise ValueError("OIDC needs ARREARS_OIDC_ISSUER and ARREARS_OIDC_AUDIENCE")
        return cls(issuer=s.oidc_issuer, audience=s.oidc_audience, jwks_url=s.oidc_jwks_url,
                   algorithms=[a.strip() for a in s.oidc_algorithms.split(",") if a.strip()],
                   name_claim=s.oidc_name_claim, roles_claim=s.oidc_roles_claim)

    async def _jwks(self) -> jwt.PyJWKClient:
        async with self._lock:
            if self._client is None:
                url = self._jwks_url
                if url is None:
                    discovery = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    async with httpx.AsyncClient(timeout=10) as http:
                        response = await http.get(discovery)
                        response.raise_for_status()
                        url = response.json()["jwks_uri"]
                self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)
            return self._client

    async def verify(self, token: str) -> Principal | None:
        try:
            client = await self._jwks()
            # PyJWKClient fetches with urllib (blocking): off the event loop.
            signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            claims = jwt.decode(token, signing_key.key, algorithms=self.algorithms, audience=self.audience,
                                issuer=self.issuer, leeway=30,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, httpx.HTTPError, KeyError, ValueError) as err:
            log.info("OIDC token refused: %s", type(err).__name__)
            return None
        name = str(claims.get(self.name_claim) or claims["sub"])
        return Principal(name, roles_from(claims.get(self.roles_claim)), "oidc")


def roles_from(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = re.split(r"[\s,]+", value)
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = []
    return tuple(r for r in dict.fromkeys(items) if r in ROLE_PERMISSIONS)
