"""Least privilege: every AWS action the code performed in this suite is in a function
policy, no policy grants a wildcard resource, and no runtime principal (a function or a
droplet) can write the system objects, proven by moto enforcing the policies."""

from __future__ import annotations

import contextlib
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.config import SYSTEM_PREFIX, settings
from chalicelib.store import storage
from ops import policies
from tests.conftest import AWS_CALLS

# Operations whose IAM action has another name, or that need several.
IAM_ACTIONS = {
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"],
    ("s3", "CreateMultipartUpload"): ["s3:PutObject"],
    ("s3", "UploadPart"): ["s3:PutObject"],
    ("s3", "CompleteMultipartUpload"): ["s3:PutObject"],
    ("sts", "GetCallerIdentity"): [],  # needs no permission
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    ("s3", "DeleteObjects"): ["s3:DeleteObject"],
    ("sqs", "SendMessageBatch"): ["sqs:SendMessage"],
    ("dynamodb", "TransactWriteItems"): [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    ],
}


def documents() -> dict[str, dict]:
    return policies.documents(settings(), "us-east-1", "123456789012")


@pytest.mark.after_all
def test_every_recorded_aws_action_is_allowed(request):
    others = {item.module.__name__ for item in request.session.items} - {__name__}
    if not AWS_CALLS or not others:
        pytest.skip("records the calls of the rest of the suite: run it with `make test`")
    assert len(AWS_CALLS) > 5
    allowed = {
        action for doc in documents().values() for st in doc["Statement"] for action in st["Action"]
    }
    needed = set()
    for service, operation in AWS_CALLS:
        needed.update(IAM_ACTIONS.get((service, operation), [f"{service}:{operation}"]))
    assert needed - allowed == set(), f"recorded calls: {sorted(AWS_CALLS)}"


def all_documents() -> dict[str, dict]:
    worker = policies.worker_document(settings(), "us-east-1", "123456789012")
    return {**documents(), "droplet worker": worker}


def test_no_policy_grants_a_wildcard_resource():
    for name, doc in all_documents().items():
        for statement in doc["Statement"]:
            assert statement["Resource"] and all(
                r != "*" and not r.endswith(":*") for r in statement["Resource"]
            ), name
            assert not any(a.endswith(":*") or a == "*" for a in statement["Action"]), name


def test_the_worker_policy_file_names_only_this_stages_resources():
    s = settings()
    text = json.dumps(policies.worker_document(s, "us-east-1", "123456789012"))
    assert "${" not in text
    for name in (s.long_queue, s.table("jobs"), s.table("workers"), s.input_bucket):
        assert name in text
    assert s.table("users") not in text and s.encode_queue not in text


def _assumed(iam, sts, name: str, document: dict) -> dict:
    """A role with `document` as its only policy, and credentials of a session of it."""
    trust = policies.worker_trust("123456789012")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    arn = f"arn:aws:iam::123456789012:role/{name}"
    c = sts.assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"]}  # fmt: skip


def test_no_function_and_no_droplet_can_write_the_system_objects(aws):
    """moto enforces the rendered policies: the bundle and `_openencoder/system/` refuse every
    runtime principal, while the worker still writes outputs and work files."""
    from moto.core import set_initial_no_auth_action_count

    s = settings()
    iam, sts = boto3.client("iam"), boto3.client("sts")
    bundle = storage.from_uri(s.worker_bundle)
    # The droplets' role exists already: provisioning made it from ops/iam/worker-policy.json.
    principals = {"droplet worker": _assumed_role_of_worker(sts)}
    for name, document in documents().items():
        principals[name] = _assumed(iam, sts, f"test-{name.replace('_', '-')}", document)
    targets = [
        (bundle.bucket, bundle.key),
        (s.input_bucket, f"{SYSTEM_PREFIX}layers/ffmpeg.zip"),
        (s.output_bucket, f"{SYSTEM_PREFIX}anything"),
    ]

    @set_initial_no_auth_action_count(0)
    def attempts() -> dict[tuple[str, str, str], str]:
        outcome = {}
        for who, credentials in principals.items():
            s3 = boto3.client("s3", region_name="us-east-1", **credentials)
            for bucket, key in targets:
                for action in ("put_object", "delete_object"):
                    extra = {"Body": b"x"} if action == "put_object" else {}
                    try:
                        getattr(s3, action)(Bucket=bucket, Key=key, **extra)
                        outcome[(who, action, key)] = "allowed"
                    except ClientError as exc:
                        outcome[(who, action, key)] = exc.response["Error"]["Code"]
            if who in ("droplet worker", "encode"):
                s3.put_object(Bucket=s.output_bucket, Key="out/clip/360p.mp4", Body=b"x")
                s3.put_object(Bucket=s.input_bucket, Key="_openencoder/work/1/1/c0.mp4", Body=b"x")
        return outcome

    outcome = attempts()
    assert len(outcome) == len(principals) * len(targets) * 2
    assert {k: v for k, v in outcome.items() if v != "AccessDenied"} == {}
    assert (
        boto3.client("s3").get_object(Bucket=bundle.bucket, Key=bundle.key)["Body"].read() != b"x"
    )


def _assumed_role_of_worker(sts) -> dict:
    arn = f"arn:aws:iam::123456789012:role/{settings().worker_role_name}"
    c = sts.assume_role(RoleArn=arn, RoleSessionName="droplet-1")["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"]}  # fmt: skip


def _allows(document: dict, action: str, resource: str) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and action in statement["Action"]
        and resource in statement["Resource"]
        for statement in document["Statement"]
    )


def test_the_api_keeps_idempotency_keys_and_the_uploads_function_completes_uploads():
    s = settings()
    docs = documents()
    keys = f"arn:aws:dynamodb:us-east-1:123456789012:table/{s.table('idempotency')}"
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem",
                   "dynamodb:DeleteItem"):  # fmt: skip
        assert _allows(docs["api_handler"], action, keys), action
    uploads = f"arn:aws:dynamodb:us-east-1:123456789012:table/{s.table('uploads')}"
    objects = f"arn:aws:s3:::{s.input_bucket}/uploads/*"
    assert _allows(docs["uploads"], "dynamodb:UpdateItem", uploads)
    assert _allows(docs["uploads"], "s3:GetObject", objects)  # HeadObject
    assert _allows(docs["uploads"], "s3:DeleteObject", objects)  # a refused upload's bytes
    assert not _allows(docs["uploads"], "dynamodb:PutItem", keys)
