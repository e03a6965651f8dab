"""Direct upload routes: operators send media straight to the input bucket."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api import idempotency
from chalicelib.api.http import endpoint, ok, parse_body
from chalicelib.api.schemas import UploadComplete, UploadCreate
from chalicelib.jobs import uploads


@endpoint(role="operator")
@idempotency.once("uploads")
def create(request: Any, principal: Principal) -> Any:
    body = parse_body(request, UploadCreate)
    upload, where = uploads.create(principal.username, body.filename, body.size, body.content_type)
    return ok({"upload": {**uploads.public_view(upload), **where}, "status": 201}, status=201)


@endpoint(role="operator")
def get(request: Any, upload_id: str, principal: Principal) -> Any:
    return {"upload": uploads.public_view(uploads.get(upload_id, principal)), "status": 200}


@endpoint(role="operator")
def complete(request: Any, upload_id: str, principal: Principal) -> Any:
    upload = uploads.get(upload_id, principal)
    body = parse_body(request, UploadComplete) if request.raw_body else UploadComplete()
    parts = [p.model_dump() for p in body.parts] if body.parts is not None else None
    return {"upload": uploads.public_view(uploads.complete(upload, parts)), "status": 200}


@endpoint(role="operator")
def abort(request: Any, upload_id: str, principal: Principal) -> Any:
    upload = uploads.get(upload_id, principal)
    return {"upload": uploads.public_view(uploads.abort(upload)), "status": 200}
