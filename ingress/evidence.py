"""Litigation counsel fetches an account's evidence bundle (audit/evidence_bundle.py):
`GET /accounts/{account_id}/evidence-bundles/{name}`, the bytes stored in PostgreSQL by the worker
that built the referral, as `application/json`, `ETag` = their SHA-256 (the one the referral names).

Evidence is personal data: only supervisors may read it (ingress.auth, `supervise`), not billing
or read-only keys; a bundle of another account is the same 404 as no bundle. Every download is
recorded in `audit_log` (kind `evidence_download`: who, which bundle, its SHA-256) before the
bytes leave, once per request.

No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations."""
import json
import uuid
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from audit.evidence_bundle import BUNDLE_NAME_PATTERN, MAX_BUNDLE_NAME, ROUTE
from ingress.accounts import database
from ingress.errors import NotFound
from ingress.limits import AccountIdPath
from ingress.principals import Principal
from schemas import limits as L

DOWNLOAD_KIND = "evidence_download"

router = APIRouter(tags=["evidence"])

BundleName = Annotated[str, Path(min_length=1, max_length=MAX_BUNDLE_NAME, pattern=BUNDLE_NAME_PATTERN,
                                 description="the bundle's name, as the referral's `evidence.name` gives it "
                                             "(`evidence-<account>-<24 hex>.json`)")]

# The ingress's error answers (ingress/errors.py): `detail`, and for invalid input the `errors` list.
_DETAIL = {"detail": {"type": "string"}}
_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": _DETAIL, "required": ["detail"]}}}}
_INVALID = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {**_DETAIL, "errors": {"type": "array", "items": {"type": "object"}}},
    "required": ["detail"]}}}}


@router.get(ROUTE, summary="Download a litigation evidence bundle (supervisors; every download is audited)",
            response_class=Response,
            responses={
                200: {"description": "the bundle exactly as stored: the JSON of `arrears evidence`",
                      "content": {"application/json": {"schema": {"type": "object"}}},
                      "headers": {
                          "ETag": {"description": "the bundle's SHA-256 (hex, quoted), as the referral names it",
                                   "schema": {"type": "string"}},
                          "Content-Disposition": {"description": "attachment; filename=<name>",
                                                  "schema": {"type": "string"}}}},
                401: {"description": "no, or an invalid, credential", **_ERROR},
                403: {"description": "the role may not read evidence (only supervisors may)", **_ERROR},
                404: {"description": "no such bundle for this account", **_ERROR},
                422: {"description": "a malformed account id or bundle name", **_INVALID},
                503: {"description": "the database did not answer; retry later", **_ERROR}})
async def download_evidence_bundle(request: Request, account_id: AccountIdPath, name: BundleName) -> Response:
    state = request.app.state
    principal: Principal = request.state.principal
    async with database(state.pool, state.timeouts) as conn:
        row = await conn.fetchrow("SELECT placement_key, sha256, bytes, content FROM evidence_bundles"
                                  " WHERE name = $1 AND account_id = $2", name, account_id)
        if row is None:
            raise NotFound(f"no evidence bundle {name} for account {account_id}")
        role = principal.role_for(request.state.permission)
        client = request.client.host if request.client else None
        # Recorded before the bytes leave: evidence access must be explainable. One row per request.
        await conn.execute(
            "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)",
            f"{account_id}:{DOWNLOAD_KIND}:{uuid.uuid4().hex}", account_id, DOWNLOAD_KIND,
            datetime.now(timezone.utc), principal.name,
            L.clip(f"evidence bundle {name} downloaded by {principal.name} ({role})", 500),
            json.dumps({"name": name, "sha256": row["sha256"], "bytes": row["bytes"],
                        "placement_key": row["placement_key"], "principal": principal.name, "role": role,
                        "auth": principal.method, "client": client}))
    return Response(row["content"], media_type="application/json", headers={
        "ETag": f'"{row["sha256"]}"',
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",           # personal data: no shared cache keeps a copy
        "X-Content-Type-Options": "nosniff"})
