"""Worker droplet user data: valid YAML, a systemd worker, its own secret and no cloud key."""

from __future__ import annotations

import configparser

import boto3
import yaml

from chalicelib.config import settings
from chalicelib.fleet import cloudinit

CONFIG = cloudinit.WorkerConfig(
    stage="prod", region="eu-west-1", bundle_url="https://bucket.s3.amazonaws.com/w.tar.gz?X-Amz-Signature=abc&x=1",
    api_url='https://api.example.com/prod/api?tricky="quote"\\', droplet_secret="droplet-secret-value",
    environment={"OE_INPUT_BUCKET": "in", "OE_LONG_QUEUE": "long-q"},
)  # fmt: skip


def files_of(text: str) -> dict[str, dict]:
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


def test_user_data_is_cloud_config_yaml_that_starts_the_worker_under_systemd():
    text = cloudinit.user_data(CONFIG)
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    files = files_of(text)
    unit = files[cloudinit.UNIT_FILE]["content"]
    assert "ExecStart=/opt/openencoder/venv/bin/python -m chalicelib.fleet.worker" in unit
    assert "Restart=always" in unit and "RuntimeDirectory=openencoder" in unit
    assert ["systemctl", "enable", "--now", "openencoder-worker.service"] in document["runcmd"]
    env = files[cloudinit.ENV_FILE]
    assert env["permissions"] == "0600"
    assert (
        'OE_API_URL="https://api.example.com/prod/api?tricky=\\"quote\\"\\\\"' in env["content"]
    )  # escaped, not HTML-mangled
    assert any("X-Amz-Signature=abc&x=1" in " ".join(cmd) for cmd in document["runcmd"])


def test_the_droplet_gets_a_secret_file_and_a_credential_process_not_keys():
    text = cloudinit.user_data(CONFIG)
    files = files_of(text)
    secret = files[cloudinit.SECRET_FILE]
    assert secret["permissions"] == "0600" and secret["content"] == "droplet-secret-value\n"
    assert ["chown", "openencoder", cloudinit.SECRET_FILE] in yaml.safe_load(text)["runcmd"]
    env = files[cloudinit.ENV_FILE]["content"]
    assert "droplet-secret-value" not in env  # the env file reaches more processes
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert f'AWS_CONFIG_FILE="{cloudinit.AWS_CONFIG_FILE}"' in env
    aws = configparser.ConfigParser()
    aws.read_string(files[cloudinit.AWS_CONFIG_FILE]["content"])
    assert aws["default"]["credential_process"] == (
        "/opt/openencoder/venv/bin/python -m chalicelib.fleet.droplet_credentials"
    )
    assert aws["default"]["region"] == "eu-west-1"


def test_user_data_for_the_stage_holds_no_cloud_secret(aws):
    from chalicelib.store.secret_params import jwt_signing_key

    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=settings().do_token_parameter, Value="do-secret-token", Type="SecureString"
    )
    ssm.put_parameter(Name=settings().api_url_parameter, Type="String", Value="https://x.test/api")
    text = cloudinit.for_stage("the-droplets-own-secret")
    assert "the-droplets-own-secret" in text
    assert jwt_signing_key() not in text
    assert "do-secret-token" not in text
    import os

    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
    env = files_of(text)[cloudinit.ENV_FILE]["content"]
    assert f'OE_LONG_QUEUE="{settings().long_queue}"' in env
    assert 'OE_API_URL="https://x.test/api"' in env


def test_without_an_api_url_no_droplet_is_made(aws):
    from chalicelib.errors import Unavailable

    try:
        cloudinit.for_stage("s")
    except Unavailable as exc:
        assert "OE_API_URL" in exc.message
    else:
        raise AssertionError("user data without a way to reach the API")


def test_the_worker_on_a_droplet_asks_digitalocean_for_its_droplet_id():
    env = files_of(cloudinit.user_data(CONFIG))[cloudinit.ENV_FILE]["content"]
    assert 'OE_DROPLET_METADATA_URL="http://169.254.169.254/metadata/v1"' in env
