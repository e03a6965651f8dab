"""Cloud-init user data for a worker droplet, built as data and dumped with a YAML library.

The droplet gets Python, the worker bundle (fetched through a short-lived
presigned URL), its own secret (for short-lived STS credentials, see
droplet_credentials; no cloud key is written here), and a systemd unit that runs
`python -m chalicelib.fleet.worker` with Restart=always.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import yaml

ENV_FILE = "/etc/openencoder/worker.env"
SECRET_FILE = "/etc/openencoder/droplet-secret"  # noqa: S105 (a path)
AWS_CONFIG_FILE = "/etc/openencoder/aws-config"
CREDENTIALS_CACHE = "/run/openencoder/credentials.json"
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
ExecStart={APP_DIR}/venv/bin/python -m chalicelib.fleet.worker
Restart=always
RestartSec=5
# /run/openencoder (tmpfs, mode 0700, the worker's own): the credentials cache.
RuntimeDirectory=openencoder
RuntimeDirectoryMode=0700
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
    api_url: str
    droplet_secret: str
    environment: dict[str, str]


def _env_file(config: WorkerConfig) -> str:
    values = {
        **config.environment,
        "OE_STAGE": config.stage,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        # Every botocore client asks credential_process, which trades the droplet's
        # secret for STS credentials and is asked again before they expire.
        "AWS_CONFIG_FILE": AWS_CONFIG_FILE,
        "AWS_SDK_LOAD_CONFIG": "1",
        "PYTHONPATH": f"{APP_DIR}/app",
        "OE_API_URL": config.api_url,
        "OE_DROPLET_SECRET_FILE": SECRET_FILE,
        "OE_DROPLET_CREDENTIALS_CACHE": CREDENTIALS_CACHE,
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


def _aws_config(config: WorkerConfig) -> str:
    return (
        "[default]\n"
        f"region = {config.region}\n"
        f"credential_process = {APP_DIR}/venv/bin/python -m chalicelib.fleet.droplet_credentials\n"
    )


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
            {
                "path": SECRET_FILE,
                "permissions": "0600",
                "owner": "root:root",
                "content": config.droplet_secret + "\n",
            },
            {"path": AWS_CONFIG_FILE, "permissions": "0644", "content": _aws_config(config)},
            {"path": UNIT_FILE, "permissions": "0644", "content": UNIT},
        ],
        "runcmd": [
            ["mkdir", "-p", f"{APP_DIR}/app", "/var/lib/openencoder/scratch"],
            ["chown", "-R", "openencoder", "/var/lib/openencoder"],
            # Written as root before the user existed; the worker alone may read it.
            ["chown", "openencoder", SECRET_FILE],
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


def for_stage(droplet_secret: str) -> str:
    """User data for a worker of this stage: its secret, the API URL, a presigned bundle URL."""
    from chalicelib.config import settings
    from chalicelib.errors import Unavailable
    from chalicelib.store import storage
    from chalicelib.store.secret_params import api_url

    s = settings()
    url = api_url()
    if not url:
        raise Unavailable(
            f"droplets cannot reach the API: set OE_API_URL or the {s.api_url_parameter} parameter"
        )
    bundle = storage.from_uri(s.worker_bundle)
    bundle_url = storage.s3().generate_presigned_url(
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
            bundle_url=bundle_url,
            api_url=url,
            droplet_secret=droplet_secret,
            environment=environment,
        )
    )
