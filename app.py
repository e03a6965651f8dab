"""Open Encoder: the Chalice app. Each route and handler delegates to chalicelib."""

from __future__ import annotations

from chalice import Chalice, Rate

from chalicelib import api, logs
from chalicelib.api.routedoc import doc
from chalicelib.config import encode_concurrency_cap, settings

# Chalice would set the app's logger to ERROR with propagation off, which hides every
# chalicelib record below ERROR; chalicelib.logs configures it once instead.
app = Chalice(app_name="openencoder", configure_logs=False)
logs.configure()


@app.middleware("all")
def log_context(event, get_response):
    # Routes carry the Lambda context on the request, event handlers on the event.
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    return logs.invocation(context, lambda: get_response(event))


@app.middleware("http")
def json_errors(event, get_response):
    return api.http.guard(event, get_response)


@app.authorizer(ttl_seconds=60)
def jwt_auth(auth_request):
    return api.http.authorize(auth_request.token)


# --- public ---------------------------------------------------------------


@app.route("/api/health", methods=["GET"])
@doc("public", "Reachability of the stage's tables, queues and buckets; 503 when degraded")
def health():
    return api.stage.health_report(app.current_request)


@app.route("/api/openapi.json", methods=["GET"])
@doc("public", "This OpenAPI document")
def openapi_document():
    return api.openapi.document(app.routes)


@app.route("/api/register", methods=["POST"])
@doc("public", "Register a user", body="Credentials")
def register():
    return api.accounts.register(app.current_request)


@app.route("/api/login", methods=["POST"])
@doc("public", "Log in: returns a JWT", body="Credentials")
def login():
    return api.accounts.login(app.current_request)


# --- dashboard (web pages, not API: excluded from the OpenAPI document) ----


@app.route("/dashboard", methods=["GET"])
@doc("public", "The dashboard (a web page)", page=True)
def dashboard():
    return api.dashboard.page()


@app.route("/dashboard/assets/{version}/{name}", methods=["GET"])
@doc("public", "The dashboard's assets", page=True)
def dashboard_asset(version, name):
    return api.dashboard.asset(version, name)


# --- users ----------------------------------------------------------------


@app.route("/api/refresh-token", methods=["POST"], authorizer=jwt_auth)
@doc("guest", "A new token for a still-valid one, within the refresh window")
def refresh_token():
    return api.accounts.refresh_token(app.current_request)


# No authorizer: the original server's body (username, current_password, new_password) needs
# no token; a Bearer token, when sent, is checked by the controller as the authorizer would.
@app.route("/api/update-password", methods=["POST"])
@doc("guest", "Change your password: a Bearer token, or username, with current_password",
     body="PasswordChange", token_optional=True)  # fmt: skip
def update_password():
    return api.accounts.update_password(app.current_request)


@app.route("/api/me", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "The calling user")
def me():
    return api.accounts.me(app.current_request)


@app.route("/api/users", methods=["GET"], authorizer=jwt_auth)
@doc("admin", "List users (admin)")
def list_users():
    return api.accounts.list_users(app.current_request)


@app.route("/api/users/{user_id}", methods=["PUT"], authorizer=jwt_auth)
@doc("admin", "Change a user's role or state (admin)", body="UserUpdate")
def update_user(user_id):
    return api.accounts.update_user(app.current_request, user_id)


# --- presets --------------------------------------------------------------


@app.route("/api/presets", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Create a preset (operator)", body="PresetCreate", headers=("Idempotency-Key",))
def create_preset():
    return api.presets.create(app.current_request)


@app.route("/api/presets/validate", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Check a preset as create would, saving nothing (operator)", body="PresetCreate")
def validate_preset():
    return api.presets.validate(app.current_request)


@app.route("/api/presets", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "List presets")
def list_presets():
    return api.presets.list_all(app.current_request)


@app.route("/api/presets/{preset_id}", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "Get a preset")
def get_preset(preset_id):
    return api.presets.get(app.current_request, preset_id)


@app.route("/api/presets/{preset_id}", methods=["PUT"], authorizer=jwt_auth)
@app.route("/api/preset/{preset_id}", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Update a preset (operator)", body="PresetUpdate")
def update_preset(preset_id):
    return api.presets.update(app.current_request, preset_id)


# --- jobs -----------------------------------------------------------------


@app.route("/api/jobs", methods=["POST"], authorizer=jwt_auth)
@app.route("/api/job", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Create an encode job (operator)", body="JobCreate", headers=("Idempotency-Key",))
def create_job():
    return api.jobs.create(app.current_request)


@app.route("/api/jobs", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "List jobs, newest first", query=("page", "count", "cursor"))
def list_jobs():
    return api.jobs.list_all(app.current_request)


@app.route("/api/jobs/{job_id}", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "Get a job by id or guid")
def get_job(job_id):
    return api.jobs.get(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/outputs", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "A job's outputs with download links")
def job_outputs(job_id):
    return api.jobs.outputs(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/files", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "Every object of a job's outputs (segments too), with links; paged",
     query=("output", "cursor", "count"))  # fmt: skip
def job_files(job_id):
    return api.jobs.files(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/tasks", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "The tasks of a job's graph (its current attempt)")
def job_tasks(job_id):
    return api.jobs.tasks(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/status", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "Get a job's status")
def job_status(job_id):
    return api.jobs.status(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/cancel", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Cancel a job (operator)")
def cancel_job(job_id):
    return api.jobs.cancel(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/restart", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Restart a finished job (operator)")
def restart_job(job_id):
    return api.jobs.restart(app.current_request, job_id)


# --- direct uploads -------------------------------------------------------


@app.route("/api/uploads", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Start a direct upload (operator)", body="UploadCreate", status=201,
     headers=("Idempotency-Key",))  # fmt: skip
def create_upload():
    return api.uploads.create(app.current_request)


@app.route("/api/uploads/{upload_id}", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "Get an upload (operator)")
def get_upload(upload_id):
    return api.uploads.get(app.current_request, upload_id)


@app.route("/api/uploads/{upload_id}/complete", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Complete an upload (operator)", body="UploadComplete")
def complete_upload(upload_id):
    return api.uploads.complete(app.current_request, upload_id)


@app.route("/api/uploads/{upload_id}", methods=["DELETE"], authorizer=jwt_auth)
@doc("operator", "Abort an upload (operator)")
def abort_upload(upload_id):
    return api.uploads.abort(app.current_request, upload_id)


# --- webhooks -------------------------------------------------------------


@app.route("/api/webhooks", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Register a webhook; its secret is shown once", body="WebhookCreate", status=201)
def create_webhook():
    return api.webhooks.create(app.current_request)


@app.route("/api/webhooks", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "List webhooks (operator)")
def list_webhooks():
    return api.webhooks.list_all(app.current_request)


@app.route("/api/webhooks/{webhook_id}", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "Get a webhook (operator)")
def get_webhook(webhook_id):
    return api.webhooks.get(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}", methods=["PUT"], authorizer=jwt_auth)
@doc("operator", "Change a webhook (operator)", body="WebhookUpdate")
def update_webhook(webhook_id):
    return api.webhooks.update(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}", methods=["DELETE"], authorizer=jwt_auth)
@doc("operator", "Remove a webhook (operator)")
def delete_webhook(webhook_id):
    return api.webhooks.delete(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}/deliveries", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "A webhook's delivery attempts, newest first")
def webhook_deliveries(webhook_id):
    return api.webhooks.list_deliveries(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}/test", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Queue a test delivery (operator)", status=202)
def test_webhook(webhook_id):
    return api.webhooks.test(app.current_request, webhook_id)


# --- operators: queues, workers, settings ---------------------------------


@app.route("/api/worker/queue", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "Depth of each queue (operator)")
def worker_queue():
    return api.stage.queue(app.current_request)


@app.route("/api/worker/pools", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "The long-queue workers' heartbeats (operator)")
def worker_pools():
    return api.stage.pools(app.current_request)


@app.route("/api/settings", methods=["GET"], authorizer=jwt_auth)
@doc("admin", "Runtime settings; secrets only as set / not set (admin)")
def get_settings():
    return api.stage.get_settings(app.current_request)


@app.route("/api/settings", methods=["PUT"], authorizer=jwt_auth)
@doc("admin", "Change runtime settings (admin)", body="SettingsUpdate")
def put_settings():
    return api.stage.put_settings(app.current_request)


# --- droplets (authenticated by their own secret, not a JWT) --------------


@app.route("/api/worker/credentials", methods=["POST"])
@doc(
    "droplet",
    "Short-lived AWS credentials for a droplet (Authorization: Droplet <secret>)",
    body="WorkerCredentialsRequest",
)
def worker_credentials():
    return api.droplets.credentials(app.current_request)


@app.route("/api/stats", methods=["GET"], authorizer=jwt_auth)
@doc("guest", "Job counts by status, and their total")
def job_stats():
    return api.jobs.stats(app.current_request)


# --- machines (DigitalOcean) ----------------------------------------------


@app.route("/api/machines", methods=["POST"], authorizer=jwt_auth)
@doc("operator", "Create droplets (operator)", body="MachineCreate")
def create_machines():
    return api.machines.create(app.current_request)


@app.route("/api/machines", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "List droplets tagged openencoder (operator)")
def list_machines():
    return api.machines.list_all(app.current_request)


@app.route("/api/machines", methods=["DELETE"], authorizer=jwt_auth)
@app.route("/api/machine", methods=["DELETE"], authorizer=jwt_auth)
@doc("operator", "Delete every droplet tagged openencoder (operator)")
def delete_machines():
    return api.machines.delete_all(app.current_request)


@app.route("/api/machines/regions", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "DigitalOcean regions (operator)")
def machine_regions():
    return api.machines.regions(app.current_request)


@app.route("/api/machines/sizes", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "DigitalOcean sizes (operator)")
def machine_sizes():
    return api.machines.sizes(app.current_request)


@app.route("/api/machines/pricing", methods=["GET"], authorizer=jwt_auth)
@doc("operator", "Cost of the running droplets (operator)")
def machine_pricing():
    return api.machines.pricing(app.current_request)


@app.route("/api/machines/{machine_id}", methods=["DELETE"], authorizer=jwt_auth)
@doc("operator", "Delete one tagged droplet (operator)")
def delete_machine(machine_id):
    return api.machines.delete(app.current_request, machine_id)


# --- events ---------------------------------------------------------------
# Domain modules are imported inside the handlers so each function's cold
# start loads only what it runs.


# At most the stage's OE_ENCODE_CONCURRENCY invocations at once (`make deploy` sets the
# stage's variables while Chalice reads this): a large graph waits in SQS instead of
# taking the region's concurrency from the API. Plans fit their tasks to the same cap.
@app.on_sqs_message(queue=settings().encode_queue, batch_size=1, name="encode",
                    maximum_concurrency=encode_concurrency_cap())  # fmt: skip
def encode(event):
    from chalicelib.graph import encode_queue

    return encode_queue.handle_batch(event.to_dict(), event.context)


@app.on_s3_event(
    bucket=settings().input_bucket,
    events=["s3:ObjectCreated:*"],
    prefix=settings().watch_prefix,
    name="drops",
)
def on_drop(event):
    from chalicelib.jobs import drops

    drops.handle_event(event.to_dict())


# A single upload's PUT completes it (chalicelib/jobs/uploads.py owns the `uploads/` prefix).
@app.on_s3_event(
    bucket=settings().input_bucket,
    events=["s3:ObjectCreated:*"],
    prefix="uploads/",
    name="uploads",
)
def on_upload(event):
    from chalicelib.jobs import uploads

    uploads.handle_event(event.to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES), name="reconcile")
def reconcile(event):
    from chalicelib.fleet import reconcile as fleet

    fleet.run()


@app.on_sqs_message(queue=settings().webhook_queue, batch_size=5, name="webhooks")
def deliver_webhooks(event):
    from chalicelib.delivery import deliveries

    return deliveries.handle_batch(event.to_dict(), event.context)
