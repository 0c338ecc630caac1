"""Bearer tokens from an OIDC provider: a locally generated key pair, its JWKS and discovery
document served over HTTP by the test, tokens signed with PyJWT; API keys keep working beside them."""
from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingress.app import create_app
from tests.served import serve
from tests.test_ingress_support import Harness, harness, ingress_settings  # noqa: F401 (fixture)

AUDIENCE = "arrears-ingress"


def provider(issuer_box: dict[str, str], public_jwk: dict[str, Any]) -> Starlette:
    async def discovery(request):
        return JSONResponse({"issuer": issuer_box["url"], "jwks_uri": issuer_box["url"] + "/jwks"})

    async def jwks(request):
        return JSONResponse({"keys": [public_jwk]})

    return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)])


def sign(key: rsa.RSAPrivateKey, issuer: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "test-kid"})


async def test_oidc_tokens_authenticate_and_carry_roles(harness: Harness) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "test-kid",
                  "use": "sig", "alg": "RS256"}
    box: dict[str, str] = {}
    async with serve(provider(box, public_jwk)) as issuer:
        box["url"] = issuer
        settings = ingress_settings(ARREARS_AUTH_METHODS="api_key,oidc", ARREARS_OIDC_ISSUER=issuer,
                                    ARREARS_OIDC_AUDIENCE=AUDIENCE)
        app = create_app(settings, client=harness.client, pool=harness.pool, task_queue=harness.task_queue)
        account = await harness.start()
        aid = account["account_id"]

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            async def call(token: str, update: str = "promise_to_pay") -> httpx.Response:
                body = {"amount": 1000, "promised_date": "2030-01-20"} if update == "promise_to_pay" \
                    else {"reason": "x", "approved_by": "n/a"}
                return await http.post(f"/accounts/{aid}/{update}", json=body,
                                       headers={"Authorization": f"Bearer {token}"})

            ops = sign(key, issuer, preferred_username="ops.wang", roles=["operator"])
            r = await call(ops)
            assert r.status_code == 200, r.text
            [event] = [e for e in await harness.events(aid) if e["name"] == "promise_to_pay"]
            assert event["body"]["operator"] == "ops.wang" and event["body"]["role"] == "operator"

            assert (await call(ops, "write_off")).status_code == 403  # an operator may not write off
            boss = sign(key, issuer, preferred_username="sup.chen", roles="supervisor operator")
            assert (await call(boss, "write_off")).status_code == 200
            reader = sign(key, issuer, sub="svc-report", roles=["readonly"])
            assert (await call(reader)).status_code == 403
            assert (await http.get(f"/accounts/{aid}/status", headers={"Authorization": f"Bearer {reader}"})
                    ).status_code == 200
            no_roles = sign(key, issuer, roles=["admin"])
            assert (await call(no_roles)).status_code == 403

            # Refused tokens: expired, another audience, another issuer, another signer, no token type at all.
            now = int(time.time())
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for bad in (sign(key, issuer, roles=["operator"], iat=now - 900, exp=now - 600),
                        sign(key, issuer, roles=["operator"], aud="someone-else"),
                        sign(key, "https://evil.example", roles=["operator"]),
                        sign(other, issuer, roles=["operator"]),
                        jwt.encode({"iss": issuer, "aud": AUDIENCE, "sub": "x", "exp": now + 300, "roles": ["operator"]},
                                   "k" * 32, algorithm="HS256", headers={"kid": "test-kid"}),
                        "not-a-token"):
                r = await call(bad)
                assert r.status_code == 401, (bad[:40], r.status_code, r.text)

            # API keys still work beside OIDC.
            assert (await call(harness.keys["operator"])).status_code == 200


async def test_oidc_off_refuses_tokens(harness: Harness) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = create_app(ingress_settings(), client=harness.client, pool=harness.pool, task_queue=harness.task_queue)
    token = sign(key, "https://idp.example", roles=["supervisor"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.get(f"/accounts/{uuid.uuid4().hex}/status", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
