"""Litigation counsel fetches an account's evidence bundle (audit/evidence_bundle.py):
`GET /accounts/{account_id}/evidence-bundles/{name}`, the bytes stored in PostgreSQL by the worker
that built the referral, as `application/json`, `ETag` = their SHA-256 (the one the referral names).

Evidence is personal data: only supervisors may read it (ingress.auth, `supervise`), not billing
or read-only keys; a bundle of another account is the same 404 as no bundle. Every download is
recorded in `audit_log` (kind `evidence_download`: who, which bundle, its SHA-256) before the
bytes leave, once per request.

Conditional GET (RFC 9110 §13.1.2, ingress/conditional.py): `If-None-Match` naming the current
ETag (exact, weak `W/"…"`, in a list, or `*`) answers `304` with the ETag and no body. `HEAD`
answers the headers a GET would (Content-Length, ETag, Content-Type, Cache-Control…) without the
body, conditional alike. Neither releases content, so neither is an `evidence_download`: each is
recorded as `evidence_check` (who, which bundle, method, status), once per request, before the
answer. Authorisation (401/403, ingress.auth, before this endpoint runs), a malformed condition
(422) and existence (404) are decided before any condition is evaluated: a 304 only ever tells a
supervisor what they may read anyway.

No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations."""
import json
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from audit.evidence_bundle import BUNDLE_NAME_PATTERN, MAX_BUNDLE_NAME, ROUTE
from ingress import conditional
from ingress.accounts import database
from ingress.errors import Invalid, NotFound
from ingress.limits import MAX_IF_NONE_MATCH, AccountIdPath, IfNoneMatch
from ingress.principals import Principal
from schemas import limits as L

DOWNLOAD_KIND = "evidence_download"
# Compliance must be able to explain every touch of evidence (a 304 or HEAD confirms what a holder
# has, and when), yet `evidence_download` must keep meaning "the bytes left": so a distinct kind.
CHECK_KIND = "evidence_check"

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
_STRING = {"schema": {"type": "string"}}
_ENTITY_HEADERS = {
    "ETag": {"description": "the bundle's SHA-256 (hex, quoted), as the referral names it", **_STRING},
    "Content-Disposition": {"description": "attachment; filename=<name>", **_STRING},
    "Cache-Control": {"description": "no-store (personal data: no cache keeps a copy)", **_STRING}}
_REFUSALS = {
    401: {"description": "no, or an invalid, credential", **_ERROR},
    403: {"description": "the role may not read evidence (only supervisors may)", **_ERROR},
    404: {"description": "no such bundle for this account", **_ERROR},
    422: {"description": "a malformed account id, bundle name or If-None-Match", **_INVALID},
    503: {"description": "the database did not answer; retry later", **_ERROR}}
_NOT_MODIFIED = {304: {"description": "If-None-Match names the current ETag (or is `*`): the caller holds "
                                      "these bytes; no body (audited as `evidence_check`)",
                       "headers": {k: _ENTITY_HEADERS[k] for k in ("ETag", "Cache-Control")}}}


@router.get(ROUTE, summary="Download a litigation evidence bundle (supervisors; every download is audited)",
            response_class=Response,
            responses={
                200: {"description": "the bundle exactly as stored: the JSON of `arrears evidence`",
                      "content": {"application/json": {"schema": {"type": "object"}}},
                      "headers": _ENTITY_HEADERS},
                **_NOT_MODIFIED, **_REFUSALS})
async def download_evidence_bundle(request: Request, account_id: AccountIdPath, name: BundleName,
                                   if_none_match: IfNoneMatch = None) -> Response:
    return await _answer(request, account_id, name, body=True)


@router.head(ROUTE, summary="An evidence bundle's headers without its bytes (supervisors; audited as a check)",
             response_class=Response,
             responses={
                 200: {"description": "the headers a GET answers (Content-Length the bundle's size), no body",
                       "headers": {**_ENTITY_HEADERS,
                                   "Content-Length": {"description": "the bundle's size in bytes", **_STRING}}},
                 **_NOT_MODIFIED, **{status: {"description": r["description"]} for status, r in _REFUSALS.items()}})
async def check_evidence_bundle(request: Request, account_id: AccountIdPath, name: BundleName,
                                if_none_match: IfNoneMatch = None) -> Response:
    return await _answer(request, account_id, name, body=False)


async def _answer(request: Request, account_id: str, name: str, *, body: bool) -> Response:
    state = request.app.state
    principal: Principal = request.state.principal
    # Every field line (FastAPI's parameter holds the first only, for the document and its bound).
    condition = request.headers.getlist("if-none-match")
    if sum(len(v) + 2 for v in condition) > MAX_IF_NONE_MATCH + 2:
        raise Invalid(f"If-None-Match: at most {MAX_IF_NONE_MATCH} characters")
    async with database(state.pool, state.timeouts) as conn:
        row = await conn.fetchrow("SELECT placement_key, sha256, bytes FROM evidence_bundles"
                                  " WHERE name = $1 AND account_id = $2", name, account_id)
        if row is None:
            raise NotFound(f"no evidence bundle {name} for account {account_id}")
        try:
            modified = conditional.none_match(condition, row["sha256"])
        except ValueError as err:
            raise Invalid(str(err)) from None
        status = 200 if modified else 304
        content = None
        if body and modified:
            # Only now the bytes (up to 8 MiB): a HEAD or a 304 never reads them.
            content = await conn.fetchval("SELECT content FROM evidence_bundles WHERE name = $1 AND account_id = $2",
                                          name, account_id)
            if content is None:  # deleted (retention) since the first read
                raise NotFound(f"no evidence bundle {name} for account {account_id}")
        # Recorded before the answer leaves: evidence access must be explainable. One row per request.
        await _audit(conn, request, principal, account_id, name, row,
                     DOWNLOAD_KIND if content is not None else CHECK_KIND, status)
    etag = {"ETag": f'"{row["sha256"]}"', "Cache-Control": "no-store"}  # personal data: no cache keeps a copy
    if not modified:
        return Response(status_code=304, headers=etag)
    headers = {**etag, "Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"}
    if content is None:  # HEAD: the length the GET's body has
        return Response(media_type="application/json", headers={**headers, "Content-Length": str(row["bytes"])})
    return Response(content, media_type="application/json", headers=headers)


async def _audit(conn: Any, request: Request, principal: Principal, account_id: str, name: str, row: Any,
                 kind: str, status: int) -> None:
    role = principal.role_for(request.state.permission)
    client = request.client.host if request.client else None
    done = ("downloaded" if kind == DOWNLOAD_KIND
            else f"checked ({request.method} {status}{', not modified' if status == 304 else ''})")
    await conn.execute(
        "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)",
        f"{account_id}:{kind}:{uuid.uuid4().hex}", account_id, kind,
        datetime.now(timezone.utc), principal.name,
        L.clip(f"evidence bundle {name} {done} by {principal.name} ({role})", 500),
        json.dumps({"name": name, "sha256": row["sha256"], "bytes": row["bytes"],
                    "placement_key": row["placement_key"], "principal": principal.name, "role": role,
                    "auth": principal.method, "client": client, "method": request.method, "status": status}))
