"""Provision a stage's resources, idempotently: tables, buckets, queues, secrets, seeds.

The same code builds the local stack (against moto's server) and a deployed
stage (against AWS); which one is decided only by the boto3 endpoint.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.config import Settings, settings

ROOT = Path(__file__).resolve().parent.parent
DLQ_MAX_RECEIVES = 5
VISIBILITY_FACTOR = 6  # SQS visibility must outlast the function's retries
WEBHOOK_VISIBILITY_SECONDS = 360  # 6x the webhooks function's timeout (60 s)
RETENTION_SECONDS = 1209600  # SQS's longest: 14 days


@dataclass
class Provisioned:
    tables: list[str] = field(default_factory=list)
    buckets: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)
    worker_role: str = ""


def encode_timeout(stage: str) -> int:
    """The encode function's timeout as .chalice/config.json sets it for `stage`."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config.get("lambda_functions", {}) | config["stages"].get(stage, {}).get(
        "lambda_functions", {}
    )
    return int(functions.get("encode", {}).get("lambda_timeout", 900))


def _tables(log: Callable[[str], None]) -> list[str]:
    from pynamodb.attributes import TTLAttribute

    from chalicelib.store.models import ALL_MODELS

    ddb = boto3.client("dynamodb", region_name=settings().region)
    names = []
    for model in ALL_MODELS:
        if not model.exists():
            log(f"creating table {model.Meta.table_name}")
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        else:
            _add_missing_indexes(ddb, model, log)
        names.append(model.Meta.table_name)
        ttl_names = [n for n, a in model.get_attributes().items() if isinstance(a, TTLAttribute)]
        if not ttl_names:
            continue
        ttl = ddb.describe_time_to_live(TableName=model.Meta.table_name)
        if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=model.Meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_names[0]},
            )
    return names


def _add_missing_indexes(ddb: Any, model: Any, log: Callable[[str], None]) -> None:
    """An index a newer release queries is added to a stage's existing table (one per run:
    DynamoDB builds one at a time; the next provisioning adds the next)."""
    table = model.Meta.table_name
    existing = {
        i["IndexName"]
        for i in ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
    }
    for index in model._get_schema()["global_secondary_indexes"]:
        if index["index_name"] in existing:
            continue
        log(f"adding index {index['index_name']} to {table}")
        ddb.update_table(
            TableName=table,
            AttributeDefinitions=index["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index["index_name"],
                        "KeySchema": index["key_schema"],
                        "Projection": index["projection"],
                    }
                }
            ],
        )
        return


def _buckets(s: Settings, log: Callable[[str], None]) -> dict[str, str]:
    s3 = boto3.client("s3", region_name=s.region)
    for bucket in s.buckets:
        try:
            s3.head_bucket(Bucket=bucket)
            continue
        except ClientError:
            pass
        log(f"creating bucket {bucket}")
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if s.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
        s3.create_bucket(**kwargs)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    ensure_lifecycle_rule(s3, s.input_bucket, ABORT_ABANDONED_UPLOADS)
    ensure_lifecycle_rule(s3, s.input_bucket, EXPIRE_GRAPH_WORK)
    bucket_cors(s, log)
    # Versioned outputs: a cancelled or superseded attempt deletes exactly the versions it
    # wrote, so another job's object under the same key reappears (docs/concepts/jobs.md,
    # "Jobs that share a dest").
    s3.put_bucket_versioning(Bucket=s.output_bucket, VersioningConfiguration={"Status": "Enabled"})
    ensure_lifecycle_rule(s3, s.output_bucket, EXPIRE_OLD_OUTPUT_VERSIONS)
    return {"input": s.input_bucket, "output": s.output_bucket}


def dashboard_origins(s: Settings) -> list[str]:
    """Origins the dashboard is served from: configured ones, and a deployed API's own."""
    origins = list(s.dashboard_origins)
    gateway = boto3.client("apigateway", region_name=s.region)
    for api in gateway.get_rest_apis().get("items", []):
        if api["name"] == "openencoder":
            origins.append(f"https://{api['id']}.execute-api.{s.region}.amazonaws.com")
    return sorted(set(origins))


def bucket_cors(s: Settings, log: Callable[[str], None]) -> None:
    """Let the dashboard's origins (only) PUT uploads and read objects through presigned URLs.

    The browser must read each part's ETag to complete a multipart upload, so it is
    exposed. With no dashboard origin the buckets get no CORS rule at all.
    """
    s3 = boto3.client("s3", region_name=s.region)
    origins = dashboard_origins(s)
    wanted = {
        s.input_bucket: ["GET", "HEAD", "PUT"],
        s.output_bucket: ["GET", "HEAD"],
    }
    for bucket, methods in wanted.items():
        rules = [
            {
                "AllowedOrigins": origins,
                "AllowedMethods": methods,
                "AllowedHeaders": ["Content-Type", "Range"],
                "ExposeHeaders": ["ETag", "Content-Length", "Content-Range"],
                "MaxAgeSeconds": 3600,
            }
        ]
        try:
            have = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchCORSConfiguration":
                raise
            have = []
        for rule in have:
            rule.pop("ID", None)
        if not origins:
            if have:
                log(f"removing the CORS rules of bucket {bucket}")
                s3.delete_bucket_cors(Bucket=bucket)
            continue
        if have != rules:
            log(f"allowing {', '.join(origins)} to reach bucket {bucket} (CORS)")
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


# Multipart uploads a client started and never completed or aborted keep their
# parts (and their cost) forever unless a rule aborts them.
ABORT_ABANDONED_UPLOADS = {
    "ID": "openencoder-abort-abandoned-uploads",
    "Status": "Enabled",
    "Filter": {"Prefix": "uploads/"},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
}


EXPIRE_OLD_OUTPUT_VERSIONS = {
    "ID": "openencoder-old-output-versions",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
}

# The job graph's intermediates are removed when their job ends; this is the backstop
# for a host that died first (chalicelib/graph/workspace.py).
EXPIRE_GRAPH_WORK = {
    "ID": "openencoder-expire-graph-work",
    "Status": "Enabled",
    "Filter": {"Prefix": "_openencoder/work/"},
    "Expiration": {"Days": 2},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


def ensure_lifecycle_rule(s3: Any, bucket: str, rule: dict[str, Any]) -> None:
    """Add or replace one lifecycle rule by its ID, keeping the bucket's other rules."""
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    if rule in rules:
        return
    rules = [r for r in rules if r.get("ID") != rule["ID"]] + [rule]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def ensure_queue(name: str, visibility: int, log: Callable[[str], None]) -> str:
    """A queue with a dead-letter queue; returns its URL. Settings are re-applied each run."""
    sqs = boto3.client("sqs", region_name=settings().region)
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(visibility),
        "MessageRetentionPeriod": str(RETENTION_SECONDS),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": DLQ_MAX_RECEIVES}
        ),
    }
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError:
        log(f"creating queue {name}")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def ensure_plain_queue(name: str, log: Callable[[str], None]) -> str:
    """A queue that only collects (no consumer, so no dead-letter queue); 14 days."""
    sqs = boto3.client("sqs", region_name=settings().region)
    attributes = {"MessageRetentionPeriod": str(RETENTION_SECONDS)}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError:
        log(f"creating queue {name}")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def _parameters(
    s: Settings,
    log: Callable[[str], None],
    do_token: str | None,
) -> list[str]:
    ssm = boto3.client("ssm", region_name=s.region)
    try:
        ssm.get_parameter(Name=s.jwt_key_parameter, WithDecryption=False)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
        log(f"generating the JWT signing key in {s.jwt_key_parameter}")
        ssm.put_parameter(
            Name=s.jwt_key_parameter,
            Type="SecureString",
            Value=secrets.token_urlsafe(48),
            Description="Open Encoder JWT signing key (HS256)",
        )
    if do_token:
        ssm.put_parameter(
            Name=s.do_token_parameter, Type="SecureString", Value=do_token, Overwrite=True
        )
    return [s.jwt_key_parameter, s.do_token_parameter]


def _worker_role(s: Settings, log: Callable[[str], None]) -> str:
    """The droplets' role (ops/iam/worker-policy.json); droplets get it only through STS."""
    from ops import policies

    account = boto3.client("sts", region_name=s.region).get_caller_identity()["Account"]
    iam = boto3.client("iam", region_name=s.region)
    trust = json.dumps(policies.worker_trust(account))
    try:
        arn = iam.get_role(RoleName=s.worker_role_name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=s.worker_role_name, PolicyDocument=trust)
    except iam.exceptions.NoSuchEntityException:
        log(f"creating the worker role {s.worker_role_name}")
        arn = iam.create_role(
            RoleName=s.worker_role_name,
            AssumeRolePolicyDocument=trust,
            Description=f"Open Encoder {s.stage} droplet workers (short-lived, via the API)",
            MaxSessionDuration=max(3600, s.worker_credentials_seconds),
        )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=s.worker_role_name,
        PolicyName="openencoder-worker",
        PolicyDocument=json.dumps(policies.worker_document(s, s.region, account)),
    )
    return arn


def provision(
    *,
    stage: str | None = None,
    do_token: str | None = None,
    log: Callable[[str], None] = print,
    after_resources: Callable[[], None] | None = None,
) -> Provisioned:
    """Create what is missing, then fill it; `after_resources` runs in between.

    The local stack restores its saved state there: into tables, buckets and queues
    that exist, before secrets are generated and seeds written only if absent.
    Create new resources above that call.
    """
    s = settings()
    stage = stage or s.stage
    visibility = VISIBILITY_FACTOR * encode_timeout(stage)
    result = Provisioned()
    result.tables = _tables(log)
    result.buckets = _buckets(s, log)
    result.queues = {
        "encode": ensure_queue(s.encode_queue, visibility, log),
        "long": ensure_queue(s.long_queue, visibility, log),
        # A delivery is one HTTP call with a timeout; retries are delayed re-sends.
        "webhooks": ensure_queue(s.webhook_queue, WEBHOOK_VISIBILITY_SECONDS, log),
        # Drop events whose last try failed: a person reads them (an alarm says when).
        "drops_failed": ensure_plain_queue(s.drops_failed_queue, log),
    }
    if after_resources is not None:
        after_resources()
    result.parameters = _parameters(s, log, do_token)
    result.worker_role = _worker_role(s, log)
    seed(log)
    from ops import bundle

    bundle.upload()
    return result


def seed(log: Callable[[str], None] = print) -> None:
    from chalicelib.accounts import users
    from chalicelib.presets import catalog as presets

    made = presets.seed_presets()
    if made:
        log(f"seeded {made} presets")
    users.ensure_system_user()


def ensure_admin(username: str, password: str | None) -> tuple[str, str | None]:
    """Create the first admin; returns the password if one was generated or set now."""
    from chalicelib.accounts import users
    from chalicelib.errors import Conflict

    password = password or secrets.token_urlsafe(18)
    try:
        users.create_user(username, password, role="admin")
    except Conflict:
        return username, None
    return username, password
