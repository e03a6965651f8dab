"""The job graph's API face: options on creation, the plan in the job view, the tasks route."""

from __future__ import annotations

import pytest

from chalicelib.graph import build
from chalicelib.graph.plan import Kind, Plan, Source, plan
from chalicelib.jobs import task_lifecycle
from chalicelib.presets.work import Work
from chalicelib.store.models import Job
from tests.conftest import ADMIN


@pytest.fixture
def admin(api):
    return api.login(*ADMIN)


def create(api, token, **extra):
    body = {"preset": "h264_baseline_360p_600", "source": "s3:///src/a.mp4", "dest": "s3:///o/"}
    return api.call("POST", "/api/jobs", {**body, **extra}, token=token)


def test_a_new_job_has_no_plan_and_no_tasks_yet(api, admin):
    r = create(api, admin)
    assert r.status_code == 200, r.data
    job = r.data["job"]
    assert job["plan"] is None
    tasks = api.call("GET", f"/api/jobs/{job['id']}/tasks", token=admin)
    assert tasks.status_code == 200 and tasks.data == {"count": 0, "items": []}
    assert Job.get(job["id"]).options is None or Job.get(job["id"]).options["parallel"] == "auto"


@pytest.mark.parametrize(
    "field, value", [("parallel", "on"), ("priority", "fast"), ("parallel", 1)]
)
def test_parallel_and_priority_take_only_their_values(api, admin, field, value):
    r = create(api, admin, **{field: value})
    assert r.status_code == 400 and field in r.data["message"]


def test_options_are_stored_on_the_job(api, admin):
    r = create(api, admin, parallel="off", priority="cost")
    stored = Job.get(r.data["job"]["id"])
    assert stored.options["parallel"] == "off" and stored.options["priority"] == "cost"


def test_the_plan_and_tasks_of_a_graph_job_as_the_contract_says(api, admin):
    job_id = create(api, admin).data["job"]["id"]
    job = Job.get(job_id)
    p: Plan = plan(
        Source(duration=90, fps=None, height=720),
        Work(renditions=("720p", "360p"), cost=0.5, chunk_safe=False, graph=True),
    )
    items = build.task_items(job, p, "encode")
    task_lifecycle.plant(items)
    job.update(actions=[Job.plan.set(p.record()), Job.tasks_total.set(len(p.tasks)),
                        Job.tasks_done.set(1)])  # fmt: skip
    view = api.call("GET", f"/api/jobs/{job_id}", token=admin).data["job"]["plan"]
    assert set(view) == {"mode", "source_read", "chunks", "renditions", "tasks_total",
                         "tasks_done", "estimate"}  # fmt: skip
    assert view["source_read"] is None  # planned here, not by a run that read the source
    assert view["mode"] == "single" and view["chunks"] == 1 and view["renditions"] == 2
    assert view["tasks_total"] == 4 and view["tasks_done"] == 1
    assert set(view["estimate"]) == {"seconds", "cost_usd"}
    tasks = api.call("GET", f"/api/jobs/{job_id}/tasks", token=admin).data
    assert tasks["count"] == 4
    assert [t["id"] for t in tasks["items"]] == [
        "encode-0000-720p", "encode-0000-360p", "audio", "assemble"
    ]  # fmt: skip
    first = tasks["items"][0]
    assert {k: first[k] for k in ("id", "kind", "chunk", "rendition", "status", "attempt")} == {
        "id": "encode-0000-720p", "kind": "encode", "chunk": 0, "rendition": "720p",
        "status": "queued", "attempt": 1,
    }  # fmt: skip
    assert first["started"] is None and first["finished"] is None and first["progress"] == 0
    assert tasks["items"][-1]["kind"] == str(Kind.ASSEMBLE) and tasks["items"][-1]["status"] == (
        "waiting"
    )
    guest = api.user("viewer@example.com", "guest")
    assert api.call("GET", f"/api/jobs/{job_id}/tasks", token=guest).status_code == 200
    assert api.call("GET", f"/api/jobs/{job_id}/tasks").status_code == 401
