"""Cloud-init user data for a worker droplet, built as data and dumped with a YAML library.

The droplet gets Python, the worker bundle (fetched through a short-lived
presigned URL), credentials scoped to the long queue, the jobs table and the
buckets, and a systemd unit that runs `python -m chalicelib.worker` with
Restart=always.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import yaml

ENV_FILE = "/etc/openencoder/worker.env"
UNIT_FILE = "/etc/systemd/system/openencoder-worker.service"
APP_DIR = "/opt/openencoder"
METADATA_URL = "http://169.254.169.254/metadata/v1"  # DigitalOcean's, on every droplet

UNIT = f"""[Unit]
Description=Open Encoder long-queue worker
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=openencoder
EnvironmentFile={ENV_FILE}
WorkingDirectory={APP_DIR}/app
ExecStart={APP_DIR}/venv/bin/python -m chalicelib.worker
Restart=always
RestartSec=5
# Give the worker time to hand its job back before systemd kills it.
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class WorkerConfig:
    stage: str
    region: str
    bundle_url: str
    access_key_id: str
    secret_access_key: str
    environment: dict[str, str]


def _env_file(config: WorkerConfig) -> str:
    values = {
        **config.environment,
        "OE_STAGE": config.stage,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_ACCESS_KEY_ID": config.access_key_id,
        "AWS_SECRET_ACCESS_KEY": config.secret_access_key,
        "OE_WORKER_QUEUE": "long",
        "OE_DROPLET_METADATA_URL": METADATA_URL,
        "OE_SCRATCH_DIR": "/var/lib/openencoder/scratch",
    }
    # systemd EnvironmentFile syntax: KEY="value" with quotes and backslashes escaped.
    lines = []
    for key in sorted(values):
        escaped = values[key].replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{escaped}"')
    return "\n".join(lines) + "\n"


def user_data(config: WorkerConfig) -> str:
    document = {
        "package_update": True,
        "packages": ["python3", "python3-venv", "curl"],
        "users": [
            "default",
            {"name": "openencoder", "system": True, "shell": "/usr/sbin/nologin"},
        ],
        "write_files": [
            {
                "path": ENV_FILE,
                "permissions": "0600",
                "owner": "root:root",
                "content": _env_file(config),
            },
            {"path": UNIT_FILE, "permissions": "0644", "content": UNIT},
        ],
        "runcmd": [
            ["mkdir", "-p", f"{APP_DIR}/app", "/var/lib/openencoder/scratch"],
            ["chown", "-R", "openencoder", "/var/lib/openencoder"],
            [
                "sh",
                "-c",
                f"curl -fsSL --retry 5 {shlex.quote(config.bundle_url)} | tar -xz -C {APP_DIR}/app",
            ],
            ["python3", "-m", "venv", f"{APP_DIR}/venv"],
            [
                f"{APP_DIR}/venv/bin/pip",
                "install",
                "--quiet",
                "-r",
                f"{APP_DIR}/app/requirements-worker.txt",
            ],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "openencoder-worker.service"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def for_stage() -> str:
    """User data for a worker of this stage: scoped credentials and a presigned bundle URL."""
    import json

    from chalicelib import storage
    from chalicelib.config import settings
    from chalicelib.errors import Unavailable
    from chalicelib.secret_params import worker_credentials

    s = settings()
    raw = worker_credentials()
    if not raw:
        where = s.worker_credentials_parameter
        raise Unavailable(f"worker credentials are not provisioned: store them in {where}")
    try:
        credentials = json.loads(raw)
        access_key, secret_key = credentials["access_key_id"], credentials["secret_access_key"]
    except (ValueError, KeyError, TypeError):
        raise Unavailable("worker credentials in SSM are not valid JSON with both keys") from None
    bundle = storage.from_uri(s.worker_bundle)
    url = storage.s3().generate_presigned_url(
        "get_object", Params={"Bucket": bundle.bucket, "Key": bundle.key}, ExpiresIn=3600
    )
    environment = {
        "OE_TABLE_PREFIX": s.table_prefix,
        "OE_INPUT_BUCKET": s.input_bucket,
        "OE_OUTPUT_BUCKET": s.output_bucket,
        "OE_ENCODE_QUEUE": s.encode_queue,
        "OE_LONG_QUEUE": s.long_queue,
    }
    if s.aws_endpoint:
        environment["AWS_ENDPOINT_URL"] = s.aws_endpoint
    return user_data(
        WorkerConfig(
            stage=s.stage,
            region=s.region,
            bundle_url=url,
            access_key_id=access_key,
            secret_access_key=secret_key,
            environment=environment,
        )
    )
