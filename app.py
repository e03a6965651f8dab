"""Open Encoder: the Chalice app. Each route and handler delegates to chalicelib."""

from __future__ import annotations

from chalice import Chalice, Rate

from chalicelib import api, logs
from chalicelib.config import settings

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
def health():
    return api.stage.health_report(app.current_request)


@app.route("/api/openapi.json", methods=["GET"])
def openapi_document():
    return api.openapi.document()


@app.route("/api/register", methods=["POST"])
def register():
    return api.accounts.register(app.current_request)


@app.route("/api/login", methods=["POST"])
def login():
    return api.accounts.login(app.current_request)


# --- dashboard (web pages, not API: excluded from the OpenAPI document) ----


@app.route("/dashboard", methods=["GET"])
def dashboard():
    return api.dashboard.page()


@app.route("/dashboard/assets/{version}/{name}", methods=["GET"])
def dashboard_asset(version, name):
    return api.dashboard.asset(version, name)


# --- users ----------------------------------------------------------------


@app.route("/api/refresh-token", methods=["POST"], authorizer=jwt_auth)
def refresh_token():
    return api.accounts.refresh_token(app.current_request)


@app.route("/api/update-password", methods=["POST"], authorizer=jwt_auth)
def update_password():
    return api.accounts.update_password(app.current_request)


@app.route("/api/me", methods=["GET"], authorizer=jwt_auth)
def me():
    return api.accounts.me(app.current_request)


@app.route("/api/users", methods=["GET"], authorizer=jwt_auth)
def list_users():
    return api.accounts.list_users(app.current_request)


@app.route("/api/users/{user_id}", methods=["PUT"], authorizer=jwt_auth)
def update_user(user_id):
    return api.accounts.update_user(app.current_request, user_id)


# --- presets --------------------------------------------------------------


@app.route("/api/presets", methods=["POST"], authorizer=jwt_auth)
def create_preset():
    return api.presets.create(app.current_request)


@app.route("/api/presets/validate", methods=["POST"], authorizer=jwt_auth)
def validate_preset():
    return api.presets.validate(app.current_request)


@app.route("/api/presets", methods=["GET"], authorizer=jwt_auth)
def list_presets():
    return api.presets.list_all(app.current_request)


@app.route("/api/presets/{preset_id}", methods=["GET"], authorizer=jwt_auth)
def get_preset(preset_id):
    return api.presets.get(app.current_request, preset_id)


@app.route("/api/presets/{preset_id}", methods=["PUT"], authorizer=jwt_auth)
@app.route("/api/preset/{preset_id}", methods=["POST"], authorizer=jwt_auth)
def update_preset(preset_id):
    return api.presets.update(app.current_request, preset_id)


# --- jobs -----------------------------------------------------------------


@app.route("/api/jobs", methods=["POST"], authorizer=jwt_auth)
@app.route("/api/job", methods=["POST"], authorizer=jwt_auth)
def create_job():
    return api.jobs.create(app.current_request)


@app.route("/api/jobs", methods=["GET"], authorizer=jwt_auth)
def list_jobs():
    return api.jobs.list_all(app.current_request)


@app.route("/api/jobs/{job_id}", methods=["GET"], authorizer=jwt_auth)
def get_job(job_id):
    return api.jobs.get(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/outputs", methods=["GET"], authorizer=jwt_auth)
def job_outputs(job_id):
    return api.jobs.outputs(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/status", methods=["GET"], authorizer=jwt_auth)
def job_status(job_id):
    return api.jobs.status(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/cancel", methods=["POST"], authorizer=jwt_auth)
def cancel_job(job_id):
    return api.jobs.cancel(app.current_request, job_id)


@app.route("/api/jobs/{job_id}/restart", methods=["POST"], authorizer=jwt_auth)
def restart_job(job_id):
    return api.jobs.restart(app.current_request, job_id)


# --- direct uploads -------------------------------------------------------


@app.route("/api/uploads", methods=["POST"], authorizer=jwt_auth)
def create_upload():
    return api.uploads.create(app.current_request)


@app.route("/api/uploads/{upload_id}", methods=["GET"], authorizer=jwt_auth)
def get_upload(upload_id):
    return api.uploads.get(app.current_request, upload_id)


@app.route("/api/uploads/{upload_id}/complete", methods=["POST"], authorizer=jwt_auth)
def complete_upload(upload_id):
    return api.uploads.complete(app.current_request, upload_id)


@app.route("/api/uploads/{upload_id}", methods=["DELETE"], authorizer=jwt_auth)
def abort_upload(upload_id):
    return api.uploads.abort(app.current_request, upload_id)


# --- webhooks -------------------------------------------------------------


@app.route("/api/webhooks", methods=["POST"], authorizer=jwt_auth)
def create_webhook():
    return api.webhooks.create(app.current_request)


@app.route("/api/webhooks", methods=["GET"], authorizer=jwt_auth)
def list_webhooks():
    return api.webhooks.list_all(app.current_request)


@app.route("/api/webhooks/{webhook_id}", methods=["GET"], authorizer=jwt_auth)
def get_webhook(webhook_id):
    return api.webhooks.get(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}", methods=["PUT"], authorizer=jwt_auth)
def update_webhook(webhook_id):
    return api.webhooks.update(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}", methods=["DELETE"], authorizer=jwt_auth)
def delete_webhook(webhook_id):
    return api.webhooks.delete(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}/deliveries", methods=["GET"], authorizer=jwt_auth)
def webhook_deliveries(webhook_id):
    return api.webhooks.list_deliveries(app.current_request, webhook_id)


@app.route("/api/webhooks/{webhook_id}/test", methods=["POST"], authorizer=jwt_auth)
def test_webhook(webhook_id):
    return api.webhooks.test(app.current_request, webhook_id)


# --- operators: queues, workers, settings ---------------------------------


@app.route("/api/worker/queue", methods=["GET"], authorizer=jwt_auth)
def worker_queue():
    return api.stage.queue(app.current_request)


@app.route("/api/worker/pools", methods=["GET"], authorizer=jwt_auth)
def worker_pools():
    return api.stage.pools(app.current_request)


@app.route("/api/settings", methods=["GET"], authorizer=jwt_auth)
def get_settings():
    return api.stage.get_settings(app.current_request)


@app.route("/api/settings", methods=["PUT"], authorizer=jwt_auth)
def put_settings():
    return api.stage.put_settings(app.current_request)


# --- droplets (authenticated by their own secret, not a JWT) --------------


@app.route("/api/worker/credentials", methods=["POST"])
def worker_credentials():
    return api.droplets.credentials(app.current_request)


# --- machines (DigitalOcean) ----------------------------------------------


@app.route("/api/machines", methods=["POST"], authorizer=jwt_auth)
def create_machines():
    return api.machines.create(app.current_request)


@app.route("/api/machines", methods=["GET"], authorizer=jwt_auth)
def list_machines():
    return api.machines.list_all(app.current_request)


@app.route("/api/machines", methods=["DELETE"], authorizer=jwt_auth)
@app.route("/api/machine", methods=["DELETE"], authorizer=jwt_auth)
def delete_machines():
    return api.machines.delete_all(app.current_request)


@app.route("/api/machines/regions", methods=["GET"], authorizer=jwt_auth)
def machine_regions():
    return api.machines.regions(app.current_request)


@app.route("/api/machines/sizes", methods=["GET"], authorizer=jwt_auth)
def machine_sizes():
    return api.machines.sizes(app.current_request)


@app.route("/api/machines/pricing", methods=["GET"], authorizer=jwt_auth)
def machine_pricing():
    return api.machines.pricing(app.current_request)


@app.route("/api/machines/{machine_id}", methods=["DELETE"], authorizer=jwt_auth)
def delete_machine(machine_id):
    return api.machines.delete(app.current_request, machine_id)


# --- events ---------------------------------------------------------------
# Domain modules are imported inside the handlers so each function's cold
# start loads only what it runs.


@app.on_sqs_message(queue=settings().encode_queue, batch_size=1, name="encode")
def encode(event):
    from chalicelib import encode_queue

    return encode_queue.handle_batch(event.to_dict(), event.context)


@app.on_s3_event(
    bucket=settings().input_bucket,
    events=["s3:ObjectCreated:*"],
    prefix=settings().watch_prefix,
    name="drops",
)
def on_drop(event):
    from chalicelib import drops

    drops.handle_event(event.to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES), name="reconcile")
def reconcile(event):
    from chalicelib import reconcile as fleet

    fleet.run()


@app.on_sqs_message(queue=settings().webhook_queue, batch_size=5, name="webhooks")
def deliver_webhooks(event):
    from chalicelib import deliveries

    return deliveries.handle_batch(event.to_dict(), event.context)
