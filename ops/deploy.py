"""`make deploy STAGE=<name>` and `make destroy STAGE=<name>`.

deploy: provision the stage (idempotently), publish the ffmpeg layer through S3,
write its ARN and the least-privilege policies into .chalice/config.json, run
`chalice deploy`, then apply what Chalice cannot express. Run twice, the second
run changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"
CHALICE = Path(sys.executable).parent / "chalice"
LAYER_NAME = "openencoder-ffmpeg"
EPHEMERAL_MB = 10240  # Lambda's maximum /tmp: sources plus outputs of long encodes
GATEWAY_RESPONSES = {
    "UNAUTHORIZED": (401, "missing or invalid Authorization header: send 'Bearer <token>'"),
    "ACCESS_DENIED": (403, "access denied"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "no such route: check the method and path"),
    "DEFAULT_5XX": (502, "the API gateway failed: try again"),
}


@dataclass
class Report:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_emulated: list[str] = field(default_factory=list)

    def note(self, changed: bool, what: str) -> None:
        (self.changed if changed else self.unchanged).append(what)


def _stage_env(stage: str) -> dict[str, str]:
    config = json.loads(CONFIG.read_text())
    return {**config["stages"][stage].get("environment_variables", {}), "OE_STAGE": stage}


def publish_layer(zip_path: Path, report: Report) -> str:
    """Upload the layer zip to S3 and publish it, unless this exact zip is already published."""
    import boto3

    from chalicelib.config import SYSTEM_PREFIX, settings

    data = zip_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    lam = boto3.client("lambda")
    for version in lam.list_layer_versions(LayerName=LAYER_NAME).get("LayerVersions", []):
        if version.get("Description") == f"sha256:{digest}":
            report.note(False, f"layer {version['LayerVersionArn']}")
            return version["LayerVersionArn"]
    bucket = settings().input_bucket
    key = f"{SYSTEM_PREFIX}layers/{zip_path.stem}-{digest[:16]}.zip"  # provisioning's only
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    arch = "arm64" if "arm64" in zip_path.name else "x86_64"
    arn = lam.publish_layer_version(
        LayerName=LAYER_NAME,
        Description=f"sha256:{digest}",
        Content={"S3Bucket": bucket, "S3Key": key},
        CompatibleArchitectures=[arch],
        CompatibleRuntimes=["python3.11", "python3.12"],
    )["LayerVersionArn"]
    report.note(True, f"layer {arn}")
    return arn


def write_config(stage: str, layer_arn: str, report: Report) -> None:
    """Layer ARN, per-function policy files and autogen_policy off, into the stage's config."""
    config = json.loads(CONFIG.read_text())
    before = json.dumps(config, sort_keys=True)
    stage_config = config["stages"][stage]
    stage_config["autogen_policy"] = False
    functions = stage_config.setdefault("lambda_functions", {})
    from ops.policies import FUNCTIONS

    for name in FUNCTIONS:
        functions.setdefault(name, {})["iam_policy_file"] = f"policy-{stage}-{name}.json"
    functions["encode"]["layers"] = [layer_arn]
    if json.dumps(config, sort_keys=True) != before:
        CONFIG.write_text(json.dumps(config, indent=2) + "\n")
        report.note(True, ".chalice/config.json")
    else:
        report.note(False, ".chalice/config.json")


def chalice_deploy(stage: str, report: Report) -> None:
    env = {**os.environ, **_stage_env(stage)}
    result = subprocess.run(
        [str(CHALICE), "deploy", "--stage", stage],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(result.stdout[-3000:], end="")
    if result.returncode == 0:
        return  # chalice deploy is itself idempotent: unchanged code is not re-published
    print(result.stderr[-5000:], file=sys.stderr)
    raise SystemExit(f"chalice deploy failed for stage {stage}")


def _function(stage: str, name: str) -> str:
    return f"openencoder-{stage}-{name}"


ALARM_PERIOD_SECONDS = 300
LOG_RETENTION_DAYS = 30  # CloudWatch keeps logs forever unless told


def apply_log_retention(stage: str, report: Report) -> None:
    """Each function's log group, made now if no invocation made it yet, keeps 30 days.

    Not `log_retention_in_days` in .chalice/config.json: `chalice package --pkg-format
    terraform` (tests/integration/test_deploy.py reads it) refuses log groups."""
    import boto3

    from ops.policies import FUNCTIONS

    logs = boto3.client("logs")
    for name in FUNCTIONS:
        group = f"/aws/lambda/{_function(stage, name)}"
        found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        current = next((g for g in found if g["logGroupName"] == group), None)
        if current is not None and current.get("retentionInDays") == LOG_RETENTION_DAYS:
            report.note(False, f"{name}: logs kept {LOG_RETENTION_DAYS} days")
            continue
        if current is None:
            logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
        report.note(True, f"{name}: logs kept {LOG_RETENTION_DAYS} days")


def alarms(s: Any) -> list[dict[str, Any]]:
    """Someone should look when a message is dead-lettered or the encode function fails.

    CloudWatch's put_metric_alarm arguments; `make package` declares the same alarms."""

    def alarm(name: str, about: str, namespace: str, metric: str, dimension: tuple[str, str],
              statistic: str) -> dict[str, Any]:  # fmt: skip
        return {
            "AlarmName": name,
            "AlarmDescription": about,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
            "Statistic": statistic,
            "Period": ALARM_PERIOD_SECONDS,
            "EvaluationPeriods": 1,
            "Threshold": 0.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        }

    found = [
        alarm(f"{queue}-dlq-not-empty", f"messages in {queue}-dlq: work that failed for good",
              "AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", f"{queue}-dlq"),
              "Maximum")
        for queue in (s.encode_queue, s.long_queue, s.webhook_queue)
    ]  # fmt: skip
    found.append(
        alarm(f"{s.drops_failed_queue}-not-empty",
              "bucket drops whose event failed every try: no job was made for their files",
              "AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", s.drops_failed_queue),
              "Maximum")
    )  # fmt: skip
    found.append(
        alarm(f"{_function(s.stage, 'encode')}-errors",
              "the encode function failed (not a job's error: a crash or a timeout)",
              "AWS/Lambda", "Errors", ("FunctionName", _function(s.stage, "encode")), "Sum")
    )  # fmt: skip
    return found


DROP_RETRIES = 2  # Lambda's own for asynchronous events, said explicitly


def drops_failure_destination(s: Any, report: Report) -> None:
    """A drop event that fails every try goes to the drops-failed queue, not nowhere."""
    import boto3
    from botocore.exceptions import ClientError

    lam = boto3.client("lambda")
    arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=boto3.client("sqs").get_queue_url(QueueName=s.drops_failed_queue)["QueueUrl"],
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    wanted = {"OnFailure": {"Destination": arn}}
    function = _function(s.stage, "drops")
    try:
        have = lam.get_function_event_invoke_config(FunctionName=function)
    except ClientError:
        have = {}
    if (
        have.get("MaximumRetryAttempts") == DROP_RETRIES
        and have.get("DestinationConfig", {}).get("OnFailure") == wanted["OnFailure"]
    ):
        report.note(False, f"drops: failed events to {s.drops_failed_queue}")
        return
    lam.put_function_event_invoke_config(
        FunctionName=function, MaximumRetryAttempts=DROP_RETRIES, DestinationConfig=wanted
    )
    report.note(True, f"drops: failed events to {s.drops_failed_queue}")


def apply_alarms(s: Any, report: Report) -> None:
    import boto3

    cloudwatch = boto3.client("cloudwatch")
    wanted = alarms(s)
    have = {
        a["AlarmName"]: a
        for a in cloudwatch.describe_alarms(AlarmNames=[a["AlarmName"] for a in wanted])[
            "MetricAlarms"
        ]
    }
    for alarm in wanted:
        current = have.get(alarm["AlarmName"], {})
        if all(current.get(k) == v for k, v in alarm.items()):
            report.note(False, f"alarm {alarm['AlarmName']}")
            continue
        cloudwatch.put_metric_alarm(**alarm)
        report.note(True, f"alarm {alarm['AlarmName']}")


def post_deploy(stage: str, report: Report) -> None:
    """Settings Chalice cannot express; each is applied only if it differs."""
    import boto3

    lam = boto3.client("lambda")
    encode = _function(stage, "encode")
    for name in ("encode", "webhooks"):
        # By ARN: AWS accepts a name or an ARN here, moto only an ARN.
        arn = lam.get_function_configuration(FunctionName=_function(stage, name))["FunctionArn"]
        for mapping in lam.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]:
            if "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []):
                report.note(False, f"{name}: partial batch responses")
                continue
            lam.update_event_source_mapping(
                UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"]
            )
            report.note(True, f"{name}: partial batch responses")
    current = lam.get_function_configuration(FunctionName=encode).get("EphemeralStorage", {})
    if current.get("Size") == EPHEMERAL_MB:
        report.note(False, f"encode: {EPHEMERAL_MB} MB ephemeral storage")
    else:
        lam.update_function_configuration(
            FunctionName=encode, EphemeralStorage={"Size": EPHEMERAL_MB}
        )
        report.note(True, f"encode: {EPHEMERAL_MB} MB ephemeral storage")
        if os.environ.get("AWS_ENDPOINT_URL"):
            after = lam.get_function_configuration(FunctionName=encode).get("EphemeralStorage", {})
            if after.get("Size") != EPHEMERAL_MB:
                report.not_emulated.append("Lambda ephemeral storage (moto does not store it)")
    _gateway_responses(stage, report)
    _stage_throttling(stage, report)
    _store_api_url(stage, report)
    from chalicelib.config import settings

    apply_alarms(settings(), report)
    drops_failure_destination(settings(), report)
    apply_log_retention(stage, report)


def _store_api_url(stage: str, report: Report) -> None:
    """Where droplets reach the API (they fetch their credentials there), into SSM."""
    import boto3
    from botocore.exceptions import ClientError

    from chalicelib.config import settings

    s = settings()
    gateway = boto3.client("apigateway")
    apis = [a for a in gateway.get_rest_apis().get("items", []) if a["name"] == "openencoder"]
    if not apis:
        raise SystemExit("chalice deploy made no REST API named openencoder")
    gateway_stage = json.loads(CONFIG.read_text())["stages"][stage].get("api_gateway_stage", "api")
    url = f"https://{apis[0]['id']}.execute-api.{s.region}.amazonaws.com/{gateway_stage}/api"
    ssm = boto3.client("ssm")
    try:
        current = ssm.get_parameter(Name=s.api_url_parameter)["Parameter"]["Value"]
    except ClientError:
        current = None
    if current == url:
        report.note(False, f"API URL {url}")
        return
    ssm.put_parameter(Name=s.api_url_parameter, Type="String", Value=url, Overwrite=True)
    report.note(True, f"API URL {url} in {s.api_url_parameter}")


# Every route of the stage together, requests per second: well under what the region's
# Lambda concurrency (shared with the encodes) can serve, far above what people and
# dashboards ask. API Gateway answers 429 past it, before a function runs.
API_RATE_LIMIT, API_BURST_LIMIT = 500.0, 1000


def _stage_throttling(stage: str, report: Report) -> None:
    """The API stage's default throttling, applied to every method."""
    import boto3

    gateway = boto3.client("apigateway")
    apis = [a for a in gateway.get_rest_apis().get("items", []) if a["name"] == "openencoder"]
    if not apis:
        raise SystemExit("chalice deploy made no REST API named openencoder")
    gateway_stage = json.loads(CONFIG.read_text())["stages"][stage].get("api_gateway_stage", "api")
    current = gateway.get_stage(restApiId=apis[0]["id"], stageName=gateway_stage)
    every = current.get("methodSettings", {}).get("*/*", {})
    if (every.get("throttlingRateLimit"), every.get("throttlingBurstLimit")) == (
        API_RATE_LIMIT,
        API_BURST_LIMIT,
    ):
        report.note(False, f"API stage throttling {API_RATE_LIMIT:g}/s, burst {API_BURST_LIMIT}")
        return
    gateway.update_stage(
        restApiId=apis[0]["id"],
        stageName=gateway_stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(API_RATE_LIMIT)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(API_BURST_LIMIT)},
        ],
    )
    report.note(True, f"API stage throttling {API_RATE_LIMIT:g}/s, burst {API_BURST_LIMIT}")


def _gateway_responses(stage: str, report: Report) -> None:
    """Errors API Gateway answers itself get the API's JSON shape too."""
    import boto3

    gateway = boto3.client("apigateway")
    apis = [a for a in gateway.get_rest_apis().get("items", []) if a["name"] == "openencoder"]
    if not apis:
        raise SystemExit("chalice deploy made no REST API named openencoder")
    api_id = apis[0]["id"]
    for kind, (status, message) in GATEWAY_RESPONSES.items():
        template = json.dumps({"status": status, "message": message})
        want = {"application/json": template}
        try:
            have = gateway.get_gateway_response(restApiId=api_id, responseType=kind)
        except gateway.exceptions.NotFoundException:
            have = {}
        if have.get("responseTemplates") == want and str(have.get("statusCode")) == str(status):
            report.note(False, f"gateway response {kind}")
            continue
        gateway.put_gateway_response(
            restApiId=api_id, responseType=kind, statusCode=str(status), responseTemplates=want
        )
        report.note(True, f"gateway response {kind}")


def deploy(stage: str, layer_zip: Path) -> Report:
    os.environ.update(_stage_env(stage))
    import boto3

    from chalicelib.config import settings
    from ops import policies, provision

    report = Report()
    provision.provision(stage=stage, log=lambda m: report.changed.append(m))
    s = settings()
    account = boto3.client("sts").get_caller_identity()["Account"]
    policies.write(s, s.region, account)
    arn = publish_layer(layer_zip, report)
    write_config(stage, arn, report)
    chalice_deploy(stage, report)
    post_deploy(stage, report)
    # The REST API exists now: let the dashboard it serves reach the buckets (CORS).
    provision.bucket_cors(s, lambda m: report.changed.append(m))
    return report


def destroy(stage: str, *, delete_buckets: bool) -> None:
    """Remove what deploy made; a bucket that still holds objects stays unless told."""
    os.environ.update(_stage_env(stage))
    import boto3
    from botocore.exceptions import ClientError

    from chalicelib.config import settings
    from chalicelib.store.models import ALL_MODELS

    s = settings()
    subprocess.run([str(CHALICE), "delete", "--stage", stage], cwd=ROOT, check=False)
    sqs = boto3.client("sqs")
    queues = (s.encode_queue, s.long_queue, s.webhook_queue)
    for name in (*queues, *(f"{q}-dlq" for q in queues), s.drops_failed_queue):
        try:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
            print(f"deleted queue {name}")
        except ClientError:
            pass
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()
            print(f"deleted table {model.Meta.table_name}")
    iam = boto3.client("iam")
    try:
        iam.delete_role_policy(RoleName=s.worker_role_name, PolicyName="openencoder-worker")
        iam.delete_role(RoleName=s.worker_role_name)
        print(f"deleted role {s.worker_role_name}")
    except ClientError:
        pass
    ssm = boto3.client("ssm")
    parameters = (s.jwt_key_parameter, s.do_token_parameter, s.api_url_parameter)
    for name in (*parameters, s.slack_url_parameter):
        try:
            ssm.delete_parameter(Name=name)
            print(f"deleted parameter {name}")
        except ClientError:
            pass
    s3 = boto3.client("s3")
    for bucket in s.buckets:
        try:
            listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
        except ClientError:
            continue
        if listed.get("KeyCount", 0) and not delete_buckets:
            print(
                f"kept bucket {bucket}: it still holds objects (pass --delete-buckets to remove it)"
            )
            continue
        if delete_buckets:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
        s3.delete_bucket(Bucket=bucket)
        print(f"deleted bucket {bucket}")


def _default_layer() -> Path:
    path = ROOT / "dist" / "ffmpeg-layer-x86_64.zip"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "layers" / "ffmpeg"))
        import build  # layers/ffmpeg/build.py

        build.build("x86_64", path.parent)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy or destroy an Open Encoder stage")
    parser.add_argument("action", choices=["deploy", "destroy"])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--layer-zip", type=Path)
    parser.add_argument("--yes", action="store_true", help="destroy without asking")
    parser.add_argument("--delete-buckets", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "deploy":
        report = deploy(args.stage, args.layer_zip or _default_layer())
        print(json.dumps({"changed": report.changed, "unchanged": report.unchanged,
                          "not_emulated": report.not_emulated}, indent=2))  # fmt: skip
        return 0
    if not args.yes:
        answer = input(f"Destroy stage {args.stage!r}? Type the stage name to confirm: ")
        if answer.strip() != args.stage:
            print("not confirmed: nothing was deleted")
            return 1
    destroy(args.stage, delete_buckets=args.delete_buckets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
