"""The OpenAPI 3 document of the API, built from the request schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.api import schemas

_ERROR = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
}


def _body(model: type) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def _op(
    summary: str, *, body: type | None = None, public: bool = False, params: list | None = None
) -> dict:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if not public:
        op["security"] = [{"bearer": []}]
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_JOB_ID = _path_param("job_id", {"type": "string", "pattern": "^[0-9a-v]{1,20}$"})
_PRESET_ID = _path_param("preset_id", {"type": "integer", "minimum": 1})
_USER_ID = _path_param("user_id", {"type": "string"})
_UPLOAD_ID = _path_param("upload_id", {"type": "string", "pattern": "^[0-9a-v]{20}$"})
_WEBHOOK_ID = _path_param("webhook_id", {"type": "string", "pattern": "^wh_[0-9a-v]{20}$"})
_MACHINE_ID = _path_param("machine_id", {"type": "integer", "minimum": 1})
# Routes of the app that are web pages, not API operations: left out of the document.
NON_API_PATHS = frozenset({"/dashboard", "/dashboard/assets/{version}/{name}"})
_PAGING = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "count", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]


@cache
def document() -> dict[str, Any]:
    models = (
        schemas.Credentials,
        schemas.PresetCreate,
        schemas.PresetUpdate,
        schemas.JobCreate,
        schemas.UserUpdate,
        schemas.MachineCreate,
        schemas.UploadCreate,
        schemas.UploadComplete,
        schemas.WebhookCreate,
        schemas.WebhookUpdate,
        schemas.WorkerCredentialsRequest,
    )
    components = {
        m.__name__: m.model_json_schema(ref_template="#/components/schemas/{model}") for m in models
    }
    paths = {
        "/api/register": {"post": _op("Register a user", body=schemas.Credentials, public=True)},
        "/api/login": {"post": _op("Log in: returns a JWT", body=schemas.Credentials, public=True)},
        "/api/me": {"get": _op("The calling user")},
        "/api/users": {"get": _op("List users (admin)")},
        "/api/users/{user_id}": {
            "put": _op(
                "Change a user's role or state (admin)", body=schemas.UserUpdate, params=[_USER_ID]
            )
        },
        "/api/presets": {
            "get": _op("List presets"),
            "post": _op("Create a preset (operator)", body=schemas.PresetCreate),
        },
        "/api/presets/validate": {
            "post": _op(
                "Check a preset as create would, saving nothing (operator)",
                body=schemas.PresetCreate,
            )
        },
        "/api/presets/{preset_id}": {
            "get": _op("Get a preset", params=[_PRESET_ID]),
            "put": _op(
                "Update a preset (operator)", body=schemas.PresetUpdate, params=[_PRESET_ID]
            ),
        },
        "/api/preset/{preset_id}": {
            "post": _op("Update a preset (alias)", body=schemas.PresetUpdate, params=[_PRESET_ID]),
        },
        "/api/jobs": {
            "get": _op("List jobs, newest first", params=_PAGING),
            "post": _op("Create an encode job (operator)", body=schemas.JobCreate),
        },
        "/api/job": {"post": _op("Create an encode job (alias)", body=schemas.JobCreate)},
        "/api/jobs/{job_id}": {"get": _op("Get a job by id or guid", params=[_JOB_ID])},
        "/api/jobs/{job_id}/outputs": {
            "get": _op("A job's outputs with download links", params=[_JOB_ID])
        },
        "/api/uploads": {
            "post": _op("Start a direct upload (operator)", body=schemas.UploadCreate)
        },
        "/api/uploads/{upload_id}": {
            "get": _op("Get an upload (operator)", params=[_UPLOAD_ID]),
            "delete": _op("Abort an upload (operator)", params=[_UPLOAD_ID]),
        },
        "/api/uploads/{upload_id}/complete": {
            "post": _op(
                "Complete an upload (operator)", body=schemas.UploadComplete, params=[_UPLOAD_ID]
            )
        },
        "/api/webhooks": {
            "get": _op("List webhooks (operator)"),
            "post": _op("Register a webhook; its secret is shown once", body=schemas.WebhookCreate),
        },
        "/api/webhooks/{webhook_id}": {
            "get": _op("Get a webhook (operator)", params=[_WEBHOOK_ID]),
            "put": _op(
                "Change a webhook (operator)", body=schemas.WebhookUpdate, params=[_WEBHOOK_ID]
            ),
            "delete": _op("Remove a webhook (operator)", params=[_WEBHOOK_ID]),
        },
        "/api/webhooks/{webhook_id}/deliveries": {
            "get": _op("A webhook's delivery attempts, newest first", params=[_WEBHOOK_ID])
        },
        "/api/webhooks/{webhook_id}/test": {
            "post": _op("Queue a test delivery (operator)", params=[_WEBHOOK_ID])
        },
        "/api/jobs/{job_id}/status": {"get": _op("Get a job's status", params=[_JOB_ID])},
        "/api/jobs/{job_id}/cancel": {"post": _op("Cancel a job (operator)", params=[_JOB_ID])},
        "/api/jobs/{job_id}/restart": {
            "post": _op("Restart a finished job (operator)", params=[_JOB_ID])
        },
        "/api/machines": {
            "get": _op("List droplets tagged openencoder (operator)"),
            "post": _op("Create droplets (operator)", body=schemas.MachineCreate),
            "delete": _op("Delete every droplet tagged openencoder (operator)"),
        },
        "/api/machine": {"delete": _op("Delete every tagged droplet (alias)")},
        "/api/machines/{machine_id}": {
            "delete": _op("Delete one tagged droplet (operator)", params=[_MACHINE_ID])
        },
        "/api/machines/regions": {"get": _op("DigitalOcean regions (operator)")},
        "/api/worker/credentials": {
            "post": _op(
                "Short-lived AWS credentials for a droplet (Authorization: Droplet <secret>)",
                body=schemas.WorkerCredentialsRequest,
                public=True,
            )
        },
        "/api/machines/sizes": {"get": _op("DigitalOcean sizes (operator)")},
        "/api/machines/pricing": {"get": _op("Cost of the running droplets (operator)")},
        "/api/health": {"get": _op("Liveness", public=True)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Open Encoder API", "version": "1.0.0"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
