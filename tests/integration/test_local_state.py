"""The local stack's saved state, against moto's AWS: a round trip, and what is refused."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.store import queues
from chalicelib.store.models import Job
from ops import local_state, provision

REGION = "us-east-1"


def fill() -> None:
    """Some of everything: a binary attribute, object metadata, a parameter, a message."""
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName=Job.Meta.table_name,
                 Item={"id": {"N": "77"}, "kind": {"S": "job"}, "blob": {"B": b"\x00\xffraw"},
                       "tags": {"M": {"$b64": {"S": "not base64"}}}})  # fmt: skip
    boto3.client("s3").put_object(Bucket=settings().output_bucket, Key="out/a b+c.mp4",
                                  Body=b"video bytes", ContentType="video/mp4",
                                  Metadata={"openencoder-job": "77"})  # fmt: skip
    boto3.client("ssm").put_parameter(Name="/openencoder/local/extra", Value="v", Type="String")
    queues.send_job("encode", 77, 1)


def wipe() -> None:
    """An empty endpoint, provisioned again: what the next start sees before restoring."""
    ddb = boto3.client("dynamodb")
    for name in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=name)
    s3 = boto3.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            s3.delete_object(Bucket=bucket["Name"], Key=obj["Key"])
    ssm = boto3.client("ssm")
    for p in ssm.describe_parameters()["Parameters"]:
        ssm.delete_parameter(Name=p["Name"])
    sqs = boto3.client("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        sqs.purge_queue(QueueUrl=url)


def test_a_saved_state_comes_back_whole_through_the_aws_apis(aws, tmp_path):
    fill()
    jwt_key = boto3.client("ssm").get_parameter(Name=settings().jwt_key_parameter,
                                                WithDecryption=True)["Parameter"]["Value"]  # fmt: skip
    root = tmp_path / "state"
    counts = local_state.save(root, region=REGION, include_queues=True)
    assert counts.messages == 1 and counts.objects >= 2 and counts.parameters >= 2
    assert (root / "manifest.json").stat().st_mode & 0o077 == 0
    wipe()

    manifest = local_state.read_manifest(root)
    restored = []

    def restore() -> None:
        local_state.check(manifest, region=REGION)
        restored.append(local_state.restore(root, manifest, region=REGION))

    provision.provision(stage="local", log=lambda _m: None, after_resources=restore)
    assert restored[0].items == counts.items and restored[0].messages == 1
    item = boto3.client("dynamodb").get_item(TableName=Job.Meta.table_name,
                                             Key={"id": {"N": "77"}})["Item"]  # fmt: skip
    assert item["blob"] == {"B": b"\x00\xffraw"} and item["tags"]["M"]["$b64"] == {
        "S": "not base64"
    }
    obj = boto3.client("s3").get_object(Bucket=settings().output_bucket, Key="out/a b+c.mp4")
    assert obj["Body"].read() == b"video bytes" and obj["ContentType"] == "video/mp4"
    assert obj["Metadata"] == {"openencoder-job": "77"}
    ssm = boto3.client("ssm")
    # The JWT key is the saved one: provisioning generates a key only when none is there.
    assert ssm.get_parameter(Name=settings().jwt_key_parameter,
                             WithDecryption=True)["Parameter"]["Value"] == jwt_key  # fmt: skip
    assert ssm.get_parameter(Name="/openencoder/local/extra")["Parameter"]["Value"] == "v"
    body = boto3.client("sqs").receive_message(QueueUrl=queues.queue_url("encode"))["Messages"][0]
    assert json.loads(body["Body"]) == {"job_id": 77, "attempt": 1}


def test_a_second_save_reuses_unchanged_objects(aws, tmp_path):
    fill()
    root = tmp_path / "state"
    local_state.save(root, region=REGION, include_queues=False)
    blobs = {p.name: p.stat().st_ino for p in (root / "blobs").iterdir()}
    local_state.save(root, region=REGION, include_queues=False)
    assert {p.name: p.stat().st_ino for p in (root / "blobs").iterdir()} == blobs
    assert not root.with_name("state.old").exists() and not root.with_name("state.saving").exists()


def test_objects_mirrored_while_running_are_not_read_again_by_the_save(aws, tmp_path, monkeypatch):
    fill()
    root = tmp_path / "state"
    assert local_state.mirror(root, region=REGION) > 0
    assert local_state.mirror(root, region=REGION) == 0  # nothing new: nothing copied

    def no_reads(*_args, **_kwargs):
        raise AssertionError("a mirrored body was read through the endpoint again")

    monkeypatch.setattr(local_state, "_download", no_reads)
    counts = local_state.save(root, region=REGION, include_queues=False)
    assert counts.objects >= 1
    entry = next(json.loads(line) for line in (root / "objects.jsonl").read_text().splitlines()
                 if json.loads(line)["key"] == "out/a b+c.mp4")  # fmt: skip
    assert (root / "blobs" / entry["blob"]).read_bytes() == b"video bytes"
    assert not local_state.cache_of(root).exists()  # linked into the state, then dropped


def test_a_save_or_mirror_given_up_at_stop_keeps_the_last_complete_state(aws, tmp_path):
    fill()
    root = tmp_path / "state"
    local_state.save(root, region=REGION, include_queues=False)
    before = (root / "manifest.json").read_text()
    boto3.client("s3").put_object(Bucket=settings().output_bucket, Key="out/new.mp4", Body=b"n")
    with pytest.raises(local_state.Cancelled):
        local_state.save(root, region=REGION, include_queues=False, should_stop=lambda: True)
    with pytest.raises(local_state.Cancelled):
        local_state.mirror(root, region=REGION, should_stop=lambda: True)
    assert (root / "manifest.json").read_text() == before
    assert not root.with_name("state.saving").exists()


def test_a_state_of_another_format_is_refused_before_anything_is_loaded(aws, tmp_path):
    root = tmp_path / "state"
    local_state.save(root, region=REGION, include_queues=False)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "format": 0}))
    with pytest.raises(local_state.Incompatible, match="format 0"):
        local_state.read_manifest(root)
    aside = local_state.set_aside(root, "test")
    assert not root.exists() and "test" in (aside / "WHY.txt").read_text()


def test_a_table_whose_keys_changed_is_refused(aws, tmp_path):
    root = tmp_path / "state"
    local_state.save(root, region=REGION, include_queues=False)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["tables"][Job.Meta.table_name]["key_schema"][0]["AttributeName"] = "guid"
    with pytest.raises(local_state.Incompatible, match="keys of table"):
        local_state.check(manifest, region=REGION)
    manifest["tables"]["openencoder-local-gone"] = manifest["tables"][Job.Meta.table_name]
    del manifest["tables"][Job.Meta.table_name]
    with pytest.raises(local_state.Incompatible, match="does not create"):
        local_state.check(manifest, region=REGION)


def test_an_interrupted_swap_is_finished_at_the_next_start(aws, tmp_path):
    root = tmp_path / "state"
    local_state.save(root, region=REGION, include_queues=False)
    root.rename(root.with_name("state.old"))  # as if killed between the two renames
    assert local_state.read_manifest(root)["format"] == local_state.FORMAT


def test_fresh_starts_empty_and_keeps_the_previous_state_aside(aws, tmp_path, monkeypatch):
    from ops.local_stack import LocalStack

    monkeypatch.setenv("OE_STATE_DIR", str(tmp_path))
    fill()
    local_state.save(tmp_path / "state", region=REGION, include_queues=False)
    stack = LocalStack(port=0, aws_port=0, fresh=True)
    stack.provision()
    assert "started empty (FRESH)" in stack.notes[0]
    assert (tmp_path / "state.previous" / "manifest.json").is_file()
    assert not (tmp_path / "state").exists()  # the next stop saves this run's state there


def test_the_stack_sets_an_unusable_state_aside_with_the_reason_and_starts_empty(
    aws, tmp_path, monkeypatch
):
    from ops.local_stack import LocalStack

    monkeypatch.setenv("OE_STATE_DIR", str(tmp_path))
    local_state.save(tmp_path / "state", region=REGION, include_queues=False)
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    manifest["tables"][Job.Meta.table_name]["attributes"]["id"] = "S"  # a key changed type
    (tmp_path / "state" / "manifest.json").write_text(json.dumps(manifest))
    stack = LocalStack(port=0, aws_port=0)
    stack.provision()
    (aside,) = tmp_path.glob("state.incompatible-*")
    assert "could not be restored" in stack.notes[0] and str(aside) in stack.notes[0]
    assert "type of openencoder-local-jobs.id changed" in (aside / "WHY.txt").read_text()
    assert not (tmp_path / "state").exists()
