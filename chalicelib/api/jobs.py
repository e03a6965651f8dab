"""Job routes: guests read, operators create, cancel and restart."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts.auth import Principal
from chalicelib.api import idempotency
from chalicelib.api.http import endpoint, parse_body, query_int
from chalicelib.api.schemas import JobCreate
from chalicelib.delivery import webhooks
from chalicelib.jobs import output_files, uploads
from chalicelib.jobs import records as jobs


@endpoint(role="operator")
@idempotency.once("jobs")
def create(request: Any, principal: Principal) -> Any:
    body = parse_body(request, JobCreate)
    is_admin = principal.can("admin")
    source = uploads.resolve_source(body.source, principal.username, is_admin=is_admin)
    origin = None
    if source != body.source:
        origin = {"kind": "upload", "upload": body.source.partition(":")[2].strip()}
    hook = webhooks.create_for_job(principal.username, body.notify_url) if body.notify_url else None
    job = jobs.create_job(
        owner=principal.username,
        preset=body.preset,
        source=source,
        dest=body.dest,
        origin=origin,
        notify_webhook=hook.id if hook else None,
        options={"parallel": body.parallel, "priority": body.priority, "quality": body.quality},
    )
    answer = {"message": "Job created", "status": 200, "job": jobs.public_view(job)}
    if hook is not None:
        webhooks.attach_to_job(hook, int(job.id))
        # The only time this secret is shown: receivers verify the job's events with it.
        answer["notify"] = {"webhook_id": hook.id, "secret": hook.secret}
    return answer


@endpoint(role="guest")
def list_all(request: Any, principal: Principal) -> Any:
    params = request.query_params or {}
    items, total, cursor = jobs.list_jobs(
        page=query_int(request, "page", 1),
        count=query_int(request, "count", 20),
        cursor=params.get("cursor") or None,
    )
    return {"count": total, "items": [jobs.summary_view(j) for j in items], "next": cursor}


@endpoint(role="guest")
def get(request: Any, job_id: str, principal: Principal) -> Any:
    job = jobs.get_job(job_id)
    view = jobs.public_view(job)
    return {**view, "job": view}


@endpoint(role="guest")
def outputs(request: Any, job_id: str, principal: Principal) -> Any:
    items = jobs.output_views(jobs.get_job(job_id))
    return {"count": len(items), "items": items}


@endpoint(role="guest")
def files(request: Any, job_id: str, principal: Principal) -> Any:
    params = request.query_params or {}
    items, cursor = output_files.list_files(
        jobs.get_job(job_id),
        output=params.get("output") or None,
        cursor=params.get("cursor") or None,
        count=query_int(request, "count", output_files.MAX_PAGE),
    )
    return {"count": len(items), "items": items, "next": cursor}


@endpoint(role="guest")
def tasks(request: Any, job_id: str, principal: Principal) -> Any:
    items = jobs.task_views(jobs.get_job(job_id))
    return {"count": len(items), "items": items}


@endpoint(role="guest")
def status(request: Any, job_id: str, principal: Principal) -> Any:
    job = jobs.get_job(job_id)
    return {"status": 200, "job_status": job.status, "progress": float(job.progress or 0)}


@endpoint(role="operator")
def cancel(request: Any, job_id: str, principal: Principal) -> Any:
    job = jobs.cancel_job(job_id)
    return {"status": 200, "job_status": job.status}


@endpoint(role="operator")
def restart(request: Any, job_id: str, principal: Principal) -> Any:
    job = jobs.restart_job(job_id)
    return {"status": 200, "job_status": job.status, "attempt": int(job.attempt)}


@endpoint(role="guest")
def stats(request: Any, principal: Principal) -> Any:
    return {"jobs": jobs.counts()}
