"""`make deploy` against the AWS emulator: provisioning, layer, chalice deploy, post-deploy.

moto cannot import Chalice's Swagger 2 REST API (the emulator creates it empty,
see ops/aws_emulator.py), nor store Lambda ephemeral storage (the deploy report
names it): for those this test checks the artifacts instead, the terraform
package of the API and the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from ops.local_stack import free_port
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
STAGE = "dev"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    for name in subprocess.run(
        listed, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split():
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    layer = tmp_path_factory.mktemp("layer") / "ffmpeg-layer-x86_64.zip"
    import zipfile

    with zipfile.ZipFile(layer, "w") as z:  # a small stand-in: the real build has its own test
        z.writestr("bin/ffmpeg", "#!/bin/sh\n")
    port = free_port()
    emulator = subprocess.Popen([sys.executable, "-m", "ops.aws_emulator", "--port", str(port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OE_"))}
    env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="deploy-test", AWS_SECRET_ACCESS_KEY="deploy-test-secret")  # fmt: skip
    wait_until(lambda: subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/moto-api/data.json"],
                                      capture_output=True).returncode == 0, 30, "the emulator")  # fmt: skip

    def deploy():
        result = subprocess.run([sys.executable, "-m", "ops.deploy", "deploy", "--stage", STAGE,
                                 "--layer-zip", str(layer)], cwd=project, env=env, capture_output=True,
                                text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return json.loads(result.stdout[result.stdout.rindex("{\n") :])

    first = deploy()
    second = deploy()
    clients = {name: boto3.client(name, endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="y")
               for name in ("lambda", "sqs", "s3", "events", "dynamodb", "ssm", "iam")}  # fmt: skip
    yield {"first": first, "second": second, "aws": clients, "project": project, "env": env}
    emulator.terminate()
    emulator.wait(timeout=10)


def test_functions_exist_with_their_settings_and_the_layer(deployed):
    lam = deployed["aws"]["lambda"]
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert {
        f"openencoder-{STAGE}-{n}" for n in ("encode", "drops", "uploads", "reconcile", "jwt_auth")
    } <= names
    encode = lam.get_function_configuration(FunctionName=f"openencoder-{STAGE}-encode")
    assert (encode["Timeout"], encode["MemorySize"]) == (900, 3008)
    assert [layer["Arn"].split(":")[-2] for layer in encode["Layers"]] == ["openencoder-ffmpeg"]


def test_the_encode_queue_triggers_the_encode_function_with_partial_batch_responses(deployed):
    lam = deployed["aws"]["lambda"]
    arn = lam.get_function_configuration(FunctionName=f"openencoder-{STAGE}-encode")["FunctionArn"]
    (mapping,) = lam.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(f"openencoder-{STAGE}-encode")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 1
    # The stage's cap (OE_ENCODE_CONCURRENCY in .chalice/config.json), so a large graph
    # queues instead of starving the API of the region's concurrency.
    stage_env = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][STAGE]
    cap = int(stage_env["environment_variables"]["OE_ENCODE_CONCURRENCY"])
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": cap}


def test_queues_have_dead_letter_queues_and_long_visibility(deployed):
    sqs = deployed["aws"]["sqs"]
    for name in (f"openencoder-{STAGE}-encode", f"openencoder-{STAGE}-long"):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attributes["VisibilityTimeout"]) >= 6 * 900
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] >= 5


def test_drops_and_schedule_are_wired(deployed):
    notification = deployed["aws"]["s3"].get_bucket_notification_configuration(
        Bucket=f"openencoder-{STAGE}-input"
    )
    # Drops under the watch prefix make jobs; a single upload's PUT completes it.
    prefixes = {
        config["LambdaFunctionArn"].rsplit("-", 1)[-1]: config["Filter"]["Key"]["FilterRules"][0][
            "Value"
        ]
        for config in notification["LambdaFunctionConfigurations"]
    }
    assert prefixes == {"drops": "incoming/", "uploads": "uploads/"}
    rules = deployed["aws"]["events"].list_rules()["Rules"]
    (rule,) = [r for r in rules if "reconcile" in r["Name"]]
    assert rule["ScheduleExpression"] == "rate(1 minute)"


def test_the_api_stage_is_throttled_as_the_artifact_says(deployed):
    gateway = boto3.client("apigateway", endpoint_url=deployed["env"]["AWS_ENDPOINT_URL"],
                           region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
    (api,) = [a for a in gateway.get_rest_apis()["items"] if a["name"] == "openencoder"]
    stage = gateway.get_stage(restApiId=api["id"], stageName=STAGE)
    every = stage["methodSettings"]["*/*"]
    assert (every["throttlingRateLimit"], every["throttlingBurstLimit"]) == (500.0, 1000)


def test_a_drop_event_that_fails_every_try_is_kept_in_the_drops_failed_queue(deployed):
    config = deployed["aws"]["lambda"].get_function_event_invoke_config(
        FunctionName=f"openencoder-{STAGE}-drops"
    )
    assert config["MaximumRetryAttempts"] == 2
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination.endswith(f":openencoder-{STAGE}-drops-failed")
    assert "drops: failed events to openencoder-dev-drops-failed" in deployed["second"]["unchanged"]


def test_tables_indexes_and_secrets_are_provisioned(deployed):
    ddb = deployed["aws"]["dynamodb"]
    jobs = ddb.describe_table(TableName=f"openencoder-{STAGE}-jobs")["Table"]
    assert {i["IndexName"] for i in jobs["GlobalSecondaryIndexes"]} == {
        "kind-id-index",
        "guid-index",
        "kind-lease-index",
        "kind-queued-index",
    }
    parameter = deployed["aws"]["ssm"].get_parameter(Name=f"/openencoder/{STAGE}/jwt-key")[
        "Parameter"
    ]
    assert parameter["Type"] == "SecureString"


def test_droplets_get_a_worker_role_and_the_api_url(deployed):
    role = deployed["aws"]["iam"].get_role(RoleName=f"openencoder-{STAGE}-worker")["Role"]
    assert role["MaxSessionDuration"] >= 3600
    names = deployed["aws"]["iam"].list_role_policies(RoleName=f"openencoder-{STAGE}-worker")
    assert names["PolicyNames"] == ["openencoder-worker"]
    url = deployed["aws"]["ssm"].get_parameter(Name=f"/openencoder/{STAGE}/api-url")["Parameter"]
    assert url["Value"].startswith("https://") and url["Value"].endswith("/api")


def test_functions_run_with_their_own_least_privilege_policies(deployed):
    config = json.loads((deployed["project"] / ".chalice/config.json").read_text())["stages"][STAGE]
    assert config["autogen_policy"] is False
    for name in ("api_handler", "encode", "drops", "uploads", "reconcile", "jwt_auth"):
        policy_file = (
            deployed["project"] / ".chalice" / config["lambda_functions"][name]["iam_policy_file"]
        )
        document = json.loads(policy_file.read_text())
        for statement in document["Statement"]:
            assert statement["Resource"] != "*" and "*" not in statement["Resource"]


# What moto forgets between two deploys, so the second puts it again: it stores no Lambda
# ephemeral storage, and it makes a new stage (losing its throttling) on each deployment,
# where API Gateway keeps the stage's settings.
MOTO_FORGETS = {"encode: 10240 MB ephemeral storage", "API stage throttling 500/s, burst 1000"}


def test_a_second_deploy_changes_nothing(deployed):
    assert set(deployed["second"]["changed"]) <= MOTO_FORGETS
    assert "encode: partial batch responses" in deployed["second"]["unchanged"]
    assert any(item.startswith("layer ") for item in deployed["second"]["unchanged"])


def test_steps_the_emulator_cannot_play_are_named_and_their_artifacts_checked(deployed, tmp_path):
    # The emulator's REST API has no routes (see ops/aws_emulator.py): check the package's API.
    out = tmp_path / "tf"
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "package", "--pkg-format", "terraform", "--stage", STAGE, str(out)],
                   cwd=deployed["project"], env=deployed["env"], check=True, capture_output=True, timeout=600)  # fmt: skip
    terraform = json.loads((out / "chalice.tf.json").read_text())
    (api,) = terraform["resource"]["aws_api_gateway_rest_api"].values()
    assert api["body"] == "${local.chalice_api_swagger}"
    swagger = terraform["locals"]["chalice_api_swagger"]
    body = swagger if isinstance(swagger, str) else json.dumps(swagger)
    for route in (
        "/api/jobs",
        "/api/jobs/{job_id}/cancel",
        "/api/presets/{preset_id}",
        "/api/machines",
    ):
        assert route in body
    assert "jwt_auth" in json.dumps(terraform["resource"]["aws_lambda_function"])
    assert "securityDefinitions" in body and "jwt_auth" in body


def test_destroy_removes_the_stage_but_keeps_buckets_that_hold_objects(deployed):
    # Runs last in this module: it tears the deployed stage down.
    result = subprocess.run([sys.executable, "-m", "ops.deploy", "destroy", "--stage", STAGE, "--yes"],
                            cwd=deployed["project"], env=deployed["env"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    aws = deployed["aws"]
    assert not [
        t
        for t in aws["dynamodb"].list_tables()["TableNames"]
        if t.startswith(f"openencoder-{STAGE}-")
    ]
    assert not aws["sqs"].list_queues(QueueNamePrefix=f"openencoder-{STAGE}").get("QueueUrls")
    buckets = {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}
    assert f"openencoder-{STAGE}-input" in buckets  # it holds the worker bundle and the layer
    assert f"openencoder-{STAGE}-output" not in buckets  # empty, so removed
    assert "still holds objects" in result.stdout
    functions = {f["FunctionName"] for f in aws["lambda"].list_functions()["Functions"]}
    assert not {f for f in functions if f.startswith(f"openencoder-{STAGE}")}


def test_destroy_asks_first(deployed):
    result = subprocess.run([sys.executable, "-m", "ops.deploy", "destroy", "--stage", STAGE],
                            cwd=deployed["project"], env=deployed["env"], input="no\n", capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1 and "nothing was deleted" in result.stdout
