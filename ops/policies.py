"""Least-privilege IAM policies, one per Lambda function, for a stage's own resources.

`write(stage, ...)` renders them into `.chalice/policy-<stage>-<function>.json`;
deploy points each function's `iam_policy_file` at its file (autogen_policy is off).
`worker_document` renders `ops/iam/worker-policy.json` for the droplets' role, which
provisioning creates. Every one of them denies writes to the system objects (the worker
bundle, layer zips: everything under `_openencoder/system/`), which only provisioning,
with the operator's own credentials, may write.
"""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.config import SYSTEM_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("api_handler", "jwt_auth", "encode", "drops", "uploads", "reconcile", "webhooks")


def _arns(s: Settings, region: str, account: str) -> dict[str, list[str]]:
    def table(kind: str) -> list[str]:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{s.table(kind)}"
        return [arn, f"{arn}/index/*"]

    def queue(name: str) -> str:
        return f"arn:aws:sqs:{region}:{account}:{name}"

    return {
        "users": table("users"),
        "presets": table("presets"),
        "jobs": table("jobs"),
        "system": table("system"),
        "workers": table("workers"),
        "uploads": table("uploads"),
        "idempotency": table("idempotency"),
        "tasks": table("tasks"),
        "webhooks": table("webhooks") + table("deliveries"),
        "queues": [queue(s.encode_queue), queue(s.long_queue)],
        "events": [queue(s.webhook_queue)],
        "webhook_dlq": [queue(f"{s.webhook_queue}-dlq")],
        "drops_failed": [queue(s.drops_failed_queue)],
        "objects": [f"arn:aws:s3:::{s.input_bucket}/*", f"arn:aws:s3:::{s.output_bucket}/*"],
        "upload_objects": [f"arn:aws:s3:::{s.input_bucket}/uploads/*"],
        "outputs": [f"arn:aws:s3:::{s.output_bucket}/*"],
        "output_bucket": [f"arn:aws:s3:::{s.output_bucket}"],
        "input_bucket": [f"arn:aws:s3:::{s.input_bucket}"],
        "parameters": [f"arn:aws:ssm:{region}:{account}:parameter/openencoder/{s.stage}/*"],
        "settable_secrets": [
            f"arn:aws:ssm:{region}:{account}:parameter{name}"
            for name in (s.do_token_parameter, s.slack_url_parameter)
        ],
        "all_queues": [
            queue(name + suffix)
            for name in (s.encode_queue, s.long_queue, s.webhook_queue)
            for suffix in ("", "-dlq")
        ],
        "buckets": [f"arn:aws:s3:::{s.input_bucket}", f"arn:aws:s3:::{s.output_bucket}"],
        "logs": [f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/openencoder-{s.stage}*"],
    }


_READ_WRITE_ITEMS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchGetItem",
]
_SEND = ["sqs:SendMessage", "sqs:GetQueueUrl"]
_CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:SendMessage",
]
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


_WRITES = ["s3:PutObject*", "s3:DeleteObject*", "s3:AbortMultipartUpload", "s3:RestoreObject"]
WORKER_POLICY = ROOT / "ops" / "iam" / "worker-policy.json"


def _statement(sid: str, actions: list[str], resources: list[str]) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": resources}


def system_objects(s: Settings) -> list[str]:
    """ARNs only provisioning writes: the system prefix of both buckets and the bundle."""
    arns = [f"arn:aws:s3:::{bucket}/{SYSTEM_PREFIX}*" for bucket in s.buckets]
    bundle = s.worker_bundle.replace("s3://", "arn:aws:s3:::")
    return arns if any(bundle.startswith(a[:-1]) for a in arns) else [*arns, bundle]


def _never_write_system_objects(s: Settings) -> dict:
    # An explicit Deny wins over any Allow, so a broad "bucket/*" grant for media
    # can never reach the code droplets run.
    return {
        "Sid": "NeverWriteSystemObjects",
        "Effect": "Deny",
        "Action": _WRITES,
        "Resource": system_objects(s),
    }


def worker_role_arn(s: Settings, account: str) -> str:
    return f"arn:aws:iam::{account}:role/{s.worker_role_name}"


def documents(s: Settings, region: str, account: str) -> dict[str, dict]:
    a = _arns(s, region, account)
    logs = _statement("Logs", _LOGS, a["logs"])
    secrets = _statement("Secrets", ["ssm:GetParameter"], a["parameters"])
    # Presigning the bundle URL for droplets signs with the function's own rights.
    bundle_arn = s.worker_bundle.replace("s3://", "arn:aws:s3:::")
    bundle = _statement("WorkerBundle", ["s3:GetObject"], [bundle_arn])
    # Every function that can end a job queues its webhook event.
    events = _statement("Events", _SEND, a["events"])
    tables_api = (
        a["users"]
        + a["presets"]
        + a["jobs"]
        + a["system"]
        + a["uploads"]
        + a["idempotency"]  # Idempotency-Key records (chalicelib/api/idempotency.py)
        + a["webhooks"]
        + a["tasks"]
    )
    statements = {
        "api_handler": [
            _statement("Tables", _READ_WRITE_ITEMS, tables_api),
            _statement("Queue", _SEND, a["queues"]),
            # A presigned URL carries the signer's rights: the API signs the
            # clients' direct uploads and their download links.
            _statement(
                "Uploads",
                ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                a["upload_objects"],
            ),
            # Links name the version their job wrote, checked first by a HEAD (BucketState's
            # ListBucket makes a removed version a 404 there, not a 403).
            _statement("Downloads", ["s3:GetObject", "s3:GetObjectVersion"], a["outputs"]),
            events,
            # GET /api/health, /api/worker/queue, /api/worker/pools, PUT /api/settings
            _statement("Workers", ["dynamodb:GetItem", "dynamodb:Query"], a["workers"]),
            _statement(
                "QueueState", ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"], a["all_queues"]
            ),
            _statement("BucketState", ["s3:ListBucket"], a["buckets"]),
            _statement(
                "SettingsSecrets",
                ["ssm:PutParameter", "ssm:DeleteParameter"],
                a["settable_secrets"],
            ),
            # Droplets trade their secret for the worker role's short-lived credentials.
            _statement("WorkerCredentials", ["sts:AssumeRole"], [worker_role_arn(s, account)]),
            secrets,
            bundle,
            logs,
        ],
        "jwt_auth": [
            _statement("Users", ["dynamodb:GetItem"], a["users"]),
            secrets,
            logs,
        ],
        "encode": [
            # Status changes update the stats counters in the system table in one transaction.
            _statement("Jobs", _READ_WRITE_ITEMS, a["jobs"] + a["system"]),
            # The job graph: a fan-out stores an attempt's tasks in one batch.
            _statement("Tasks", [*_READ_WRITE_ITEMS, "dynamodb:BatchWriteItem"], a["tasks"]),
            _statement("Queues", _CONSUME, a["queues"]),
            # Intermediates of the graph are listed to be removed when their job ends.
            _statement("GraphWork", ["s3:ListBucket"], a["input_bucket"]),
            _statement(
                "Media",
                [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:GetObjectVersion",
                    "s3:DeleteObjectVersion",
                ],
                a["objects"],
            ),
            events,
            # Cleanup lists the versions of a key to delete only those its attempt wrote.
            _statement("OutputVersions", ["s3:ListBucketVersions"], a["output_bucket"]),
            secrets,  # the DigitalOcean token: is the droplet pool there (priority cost)?
            logs,
        ],
        "drops": [
            _statement("Tables", _READ_WRITE_ITEMS, a["jobs"] + a["system"] + a["presets"]),
            _statement("Queue", _SEND, a["queues"]),
            # Lambda sends an event whose last try failed there, with this role.
            _statement("FailedDrops", ["sqs:SendMessage"], a["drops_failed"]),
            events,
            logs,
        ],
        # A single upload's ObjectCreated event completes it: a HEAD of its object, which is
        # removed if it is not what was declared.
        "uploads": [
            _statement("Uploads", _READ_WRITE_ITEMS, a["uploads"]),
            _statement("UploadObjects", ["s3:GetObject", "s3:DeleteObject"], a["upload_objects"]),
            logs,
        ],
        "reconcile": [
            _statement(
                "Tables", _READ_WRITE_ITEMS, a["jobs"] + a["system"] + a["workers"] + a["tasks"]
            ),
            _statement("Queues", _CONSUME, a["queues"]),
            events,
            secrets,
            bundle,
            logs,
        ],
        "webhooks": [
            _statement("Webhooks", _READ_WRITE_ITEMS, a["webhooks"]),
            _statement("Jobs", ["dynamodb:GetItem"], a["jobs"]),
            _statement("Queue", _CONSUME, a["events"]),
            _statement("DeadLetters", _SEND, a["webhook_dlq"]),
            _statement("SlackUrl", ["ssm:GetParameter"], a["settable_secrets"][1:]),
            # Payloads carry the outputs' download links (of one version), signed with this role.
            _statement("Downloads", ["s3:GetObject", "s3:GetObjectVersion"], a["outputs"]),
            logs,
        ],
    }
    deny = _never_write_system_objects(s)
    return {
        name: {"Version": "2012-10-17", "Statement": [*body, deny]}
        for name, body in statements.items()
    }


def worker_document(s: Settings, region: str, account: str) -> dict:
    """`ops/iam/worker-policy.json` for this stage: the droplets' role policy."""
    text = WORKER_POLICY.read_text()
    values = {
        "Region": region,
        "Account": account,
        "Stage": s.stage,
        "InputBucket": s.input_bucket,
        "OutputBucket": s.output_bucket,
        "LongQueue": s.long_queue,
        "JobsTable": s.table("jobs"),
        "TasksTable": s.table("tasks"),
        "WorkersTable": s.table("workers"),
        "SystemTable": s.table("system"),
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    document = json.loads(text)
    # The bundle may live elsewhere (OE_WORKER_BUNDLE): the Deny names it wherever it is.
    for statement in document["Statement"]:
        if statement.get("Sid") == "NeverWriteSystemObjects":
            statement["Resource"] = system_objects(s)
    return document


def worker_trust(account: str) -> dict:
    """Who may assume the worker role: principals of this account whose own policy allows it
    (the API function's does, for the role's ARN only)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def policy_path(stage: str, function: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage}-{function}.json"


def write(s: Settings, region: str, account: str) -> list[Path]:
    written = []
    for name, document in documents(s, region, account).items():
        path = policy_path(s.stage, name)
        text = json.dumps(document, indent=2) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
