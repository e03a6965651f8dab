"""The stage's own resources as CloudFormation: what `ops/provision.py` makes and
`ops/deploy.py` finishes with, rendered from the same definitions.

`make package` (ops/package.py) merges this template into `chalice package`'s;
tests/integration/test_package.py compares it with what provisioning makes in the emulator.
"""

from __future__ import annotations

import json
from typing import Any

# Rendered into the policies and names, and turned into Fn::Sub once the template is built.
REGION, ACCOUNT = "${AWS::Region}", "${AWS::AccountId}"


def _cfn_name(*words: str) -> str:
    return "".join(
        w[:1].upper() + w[1:] for word in words for w in word.replace("-", "_").split("_")
    )


def hash_first(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    """CloudFormation wants the HASH key before the RANGE key."""
    return sorted(keys, key=lambda k: k["KeyType"] != "HASH")


def table_resources() -> dict[str, Any]:
    """The tables as provisioning creates them (the same PynamoDB schemas)."""
    from pynamodb.attributes import TTLAttribute

    from chalicelib.store.models import ALL_MODELS

    resources: dict[str, Any] = {}
    for model in ALL_MODELS:
        schema = model._get_schema()  # what model.create_table sends (ops/provision.py)
        properties: dict[str, Any] = {
            "TableName": model.Meta.table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": schema["attribute_definitions"],
            "KeySchema": hash_first(schema["key_schema"]),
        }
        if schema.get("global_secondary_indexes"):
            properties["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": i["index_name"],
                    "KeySchema": hash_first(i["key_schema"]),
                    "Projection": i["projection"],
                }
                for i in schema["global_secondary_indexes"]
            ]
        ttl = [n for n, a in model.get_attributes().items() if isinstance(a, TTLAttribute)]
        if ttl:
            properties["TimeToLiveSpecification"] = {"Enabled": True, "AttributeName": ttl[0]}
        resources[_cfn_name(model.__name__, "table")] = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",  # `make destroy` decides about data, not a stack update
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
    return resources


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A provisioning lifecycle rule (S3 API shape) in CloudFormation's shape."""
    out: dict[str, Any] = {"Id": rule["ID"], "Status": rule["Status"]}
    if rule["Filter"].get("Prefix"):
        out["Prefix"] = rule["Filter"]["Prefix"]
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "Expiration" in rule:
        out["ExpirationInDays"] = rule["Expiration"]["Days"]
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return out


def bucket_resources(s: Any, gateway_stage: str) -> dict[str, Any]:
    from ops import provision

    # The dashboard's origins: the stage's own API (known once the stack makes it) and any
    # configured ones, exactly as provision.bucket_cors allows them after `chalice deploy`.
    origins = [{"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.amazonaws.com"}]
    origins += sorted(set(s.dashboard_origins))

    def cors(methods: list[str]) -> dict[str, Any]:
        return {
            "CorsRules": [
                {
                    "AllowedOrigins": origins,
                    "AllowedMethods": methods,
                    "AllowedHeaders": ["Content-Type", "Range"],
                    "ExposedHeaders": ["ETag", "Content-Length", "Content-Range"],
                    "MaxAge": 3600,
                }
            ]
        }

    blocked = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    common = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    }
    return {
        "InputBucket": {
            **common,
            "Properties": {
                "BucketName": s.input_bucket,
                "PublicAccessBlockConfiguration": blocked,
                "LifecycleConfiguration": {
                    "Rules": [
                        lifecycle_rule(provision.ABORT_ABANDONED_UPLOADS),
                        lifecycle_rule(provision.EXPIRE_GRAPH_WORK),
                    ]
                },
                "CorsConfiguration": cors(["GET", "HEAD", "PUT"]),
            },
        },
        "OutputBucket": {
            **common,
            "Properties": {
                "BucketName": s.output_bucket,
                "PublicAccessBlockConfiguration": blocked,
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [lifecycle_rule(provision.EXPIRE_OLD_OUTPUT_VERSIONS)]
                },
                "CorsConfiguration": cors(["GET", "HEAD"]),
            },
        },
    }


def queue_resources(s: Any, stage: str) -> dict[str, Any]:
    from ops import provision

    visibility = provision.VISIBILITY_FACTOR * provision.encode_timeout(stage)
    resources: dict[str, Any] = {}
    for name, seconds in (
        (s.encode_queue, visibility),
        (s.long_queue, visibility),
        (s.webhook_queue, provision.WEBHOOK_VISIBILITY_SECONDS),
    ):
        logical = queue_logical_id(s, name)
        # Explicit: `make destroy` removes the queues (and what they still hold) too.
        kept = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
        resources[f"{logical}Dlq"] = {
            "Type": "AWS::SQS::Queue",
            **kept,
            "Properties": {
                "QueueName": f"{name}-dlq",
                "MessageRetentionPeriod": provision.RETENTION_SECONDS,
            },
        }
        resources[logical] = {
            "Type": "AWS::SQS::Queue",
            **kept,
            "Properties": {
                "QueueName": name,
                "VisibilityTimeout": seconds,
                "MessageRetentionPeriod": provision.RETENTION_SECONDS,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [f"{logical}Dlq", "Arn"]},
                    "maxReceiveCount": provision.DLQ_MAX_RECEIVES,
                },
            },
        }
    resources["DropsFailedQueue"] = {
        "Type": "AWS::SQS::Queue",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "QueueName": s.drops_failed_queue,
            "MessageRetentionPeriod": provision.RETENTION_SECONDS,
        },
    }
    return resources


def queue_logical_id(s: Any, name: str) -> str:
    kinds = {s.encode_queue: "Encode", s.long_queue: "Long", s.webhook_queue: "Webhooks"}
    return f"{kinds[name]}Queue"


def alarm_resources(s: Any) -> dict[str, Any]:
    """The alarms `make deploy` puts (ops/deploy.py)."""
    from ops.deploy import alarms

    return {
        _cfn_name(a["AlarmName"], "alarm"): {"Type": "AWS::CloudWatch::Alarm", "Properties": a}
        for a in alarms(s)
    }


def stage_resources(s: Any, stage: str, gateway_stage: str) -> dict[str, Any]:
    """The template merged into `chalice package`'s: everything chalice does not make."""
    from ops import deploy, policies

    gateway_responses = {
        f"GatewayResponse{_cfn_name(kind.lower())}": {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": {"Ref": "RestAPI"},
                "ResponseType": kind,
                "StatusCode": str(status),
                "ResponseTemplates": {
                    "application/json": json.dumps({"status": status, "message": message})
                },
            },
        }
        for kind, (status, message) in deploy.GATEWAY_RESPONSES.items()
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Open Encoder, stage {stage}",
        "Parameters": {
            "LayerBucket": {
                "Type": "String",
                "Description": "bucket holding the ffmpeg layer zip (make layer builds it)",
            },
            "LayerKey": {
                "Type": "String",
                "Default": "layers/ffmpeg-layer-x86_64.zip",
                "Description": "key of the ffmpeg layer zip in LayerBucket",
            },
        },
        "Resources": {
            **table_resources(),
            **bucket_resources(s, gateway_stage),
            **queue_resources(s, stage),
            **alarm_resources(s),
            **gateway_responses,
            "FfmpegLayer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {
                    "LayerName": deploy.LAYER_NAME,
                    "Description": "ffmpeg from the pinned imageio-ffmpeg wheel (make layer)",
                    "Content": {"S3Bucket": {"Ref": "LayerBucket"}, "S3Key": {"Ref": "LayerKey"}},
                    "CompatibleArchitectures": ["x86_64"],
                    "CompatibleRuntimes": ["python3.11", "python3.12"],
                },
            },
            "ApiUrlParameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": s.api_url_parameter,
                    "Type": "String",
                    "Description": "where droplets reach the API",
                    "Value": {
                        "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.amazonaws.com/"
                        f"{gateway_stage}/api"
                    },
                },
            },
            "WorkerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": s.worker_role_name,
                    "Description": f"Open Encoder {stage} droplet workers"
                    " (short-lived, via the API)",
                    "MaxSessionDuration": max(3600, s.worker_credentials_seconds),
                    "AssumeRolePolicyDocument": policies.worker_trust(ACCOUNT),
                    "Policies": [
                        {
                            "PolicyName": "openencoder-worker",
                            "PolicyDocument": policies.worker_document(s, REGION, ACCOUNT),
                        }
                    ],
                },
            },
        },
    }
