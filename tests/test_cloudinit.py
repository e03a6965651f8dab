"""Worker droplet user data: valid YAML, a systemd worker, no secret but its scoped keys."""

from __future__ import annotations

import json

import boto3
import yaml

from chalicelib import cloudinit
from chalicelib.config import settings

CONFIG = cloudinit.WorkerConfig(
    stage="prod", region="eu-west-1", bundle_url="https://bucket.s3.amazonaws.com/w.tar.gz?X-Amz-Signature=abc&x=1",
    access_key_id="AKIAWORKER", secret_access_key='tricky"secret\\with&chars',
    environment={"OE_INPUT_BUCKET": "in", "OE_LONG_QUEUE": "long-q"},
)  # fmt: skip


def test_user_data_is_cloud_config_yaml_that_starts_the_worker_under_systemd():
    text = cloudinit.user_data(CONFIG)
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    files = {f["path"]: f for f in document["write_files"]}
    unit = files[cloudinit.UNIT_FILE]["content"]
    assert "ExecStart=/opt/openencoder/venv/bin/python -m chalicelib.worker" in unit
    assert "Restart=always" in unit
    assert ["systemctl", "enable", "--now", "openencoder-worker.service"] in document["runcmd"]
    env = files[cloudinit.ENV_FILE]
    assert env["permissions"] == "0600"
    assert (
        'AWS_SECRET_ACCESS_KEY="tricky\\"secret\\\\with&chars"' in env["content"]
    )  # escaped, not HTML-mangled
    assert any("X-Amz-Signature=abc&x=1" in " ".join(cmd) for cmd in document["runcmd"])


def test_user_data_for_the_stage_holds_only_the_scoped_credentials(aws, monkeypatch):
    from chalicelib.secret_params import jwt_signing_key

    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=settings().do_token_parameter, Value="do-secret-token", Type="SecureString"
    )
    ssm.put_parameter(Name=settings().worker_credentials_parameter, Type="SecureString",
                      Value=json.dumps({"access_key_id": "AKIASCOPED", "secret_access_key": "scoped-secret"}))  # fmt: skip
    text = cloudinit.for_stage()
    assert "AKIASCOPED" in text and "scoped-secret" in text
    assert jwt_signing_key() not in text
    assert "do-secret-token" not in text
    env = yaml.safe_load(text)["write_files"][0]["content"]
    assert f'OE_LONG_QUEUE="{settings().long_queue}"' in env


def test_the_worker_on_a_droplet_asks_digitalocean_for_its_droplet_id():
    env = {f["path"]: f for f in yaml.safe_load(cloudinit.user_data(CONFIG))["write_files"]}
    assert (
        'OE_DROPLET_METADATA_URL="http://169.254.169.254/metadata/v1"'
        in env[cloudinit.ENV_FILE]["content"]
    )
