"""`make package`: the deploy artifact, linted by cfn-lint, cfn-lint-serverless and parliament,
and naming what provisioning makes (so `make deploy` and the artifact stay equivalent).

The artifact is packaged once for the module, in a subprocess with a clean environment
whose AWS endpoint is a closed loopback port: packaging must never reach AWS. Chalice's
wheel cache lives in .local/package-test, so only the first run downloads wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
SUPPRESSIONS = json.loads((ROOT / "ops" / "lint-suppressions.json").read_text())
SAMPLE_REGION, SAMPLE_ACCOUNT = "us-east-1", "123456789012"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("dist") / STAGE
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OE_"))}
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="package-test", AWS_SECRET_ACCESS_KEY="package-test")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "ops.package", "--stage", STAGE, "--out", str(out),
         "--work", str(ROOT / ".local" / "package-test")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"path": out / "sam.json", "template": json.loads((out / "sam.json").read_text()),
            "out": out}  # fmt: skip


@pytest.fixture(scope="module")
def lint(artifact) -> list[dict[str, Any]]:
    """One cfn-lint run over the artifact: its own rules and cfn-lint-serverless's."""
    from cfn_lint_serverless import rules

    return cfn_lint(artifact["path"], "--append-rules", rules.__name__)


def is_serverless(finding: dict[str, Any]) -> bool:
    return finding["Rule"]["Source"].startswith("https://awslabs.github.io/serverless-rules")


def cfn_lint(path: Path, *extra: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--include-checks", "I", *extra, "--", str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout)


def unsuppressed(findings: list[tuple[str, str, str]], tool: str) -> tuple[list, list]:
    """(findings no entry accepts, entries that accept no finding) for (rule, where, detail)."""
    entries = SUPPRESSIONS[tool]
    used: set[int] = set()
    left = []
    for rule, where, detail in findings:
        for i, entry in enumerate(entries):
            places = entry.get("resources") or entry.get("policies")
            if (
                entry.get("rule", entry.get("issue")) == rule
                and where in places
                and entry.get("detail") in (None, detail)
            ):
                used.add(i)
                break
        else:
            left.append((rule, where, detail))
    return left, [e for i, e in enumerate(entries) if i not in used]


# --- the artifact ----------------------------------------------------------------------


def test_the_artifact_is_chalices_package_with_the_stages_own_resources(artifact):
    resources = artifact["template"]["Resources"]
    assert (artifact["out"] / "deployment.zip").stat().st_size > 1_000_000
    kinds = {r["Type"] for r in resources.values()}
    assert {"AWS::Serverless::Function", "AWS::Serverless::Api", "AWS::DynamoDB::Table",
            "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Lambda::LayerVersion",
            "AWS::CloudWatch::Alarm", "AWS::IAM::Role"} <= kinds  # fmt: skip
    encode = resources["Encode"]["Properties"]
    assert encode["Layers"] == [{"Ref": "FfmpegLayer"}]
    assert encode["EphemeralStorage"] == {"Size": 10240}
    (event,) = encode["Events"].values()
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 100}
    assert "EncodeQueue" in resources["Encode"]["DependsOn"]
    (drop,) = resources["Drops"]["Properties"]["Events"].values()
    assert drop["Type"] == "S3" and drop["Properties"]["Bucket"] == {"Ref": "InputBucket"}
    assert drop["Properties"]["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": "incoming/"}
    ]
    (throttling,) = resources["RestAPI"]["Properties"]["MethodSettings"]
    assert (throttling["ThrottlingRateLimit"], throttling["ThrottlingBurstLimit"]) == (500.0, 1000)
    failed = resources["Drops"]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert failed == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DropsFailedQueue", "Arn"]}}
    (tick,) = resources["Reconcile"]["Properties"]["Events"].values()
    assert tick["Properties"]["Schedule"] == "rate(1 minute)"
    alarms = {
        r["Properties"]["AlarmName"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {
        f"openencoder-{STAGE}-{q}-dlq-not-empty" for q in ("encode", "long", "webhooks")
    } <= alarms


def test_the_tools_stay_out_of_the_lambda_package(artifact):
    import zipfile

    names = zipfile.ZipFile(artifact["out"] / "deployment.zip").namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"app.py", "chalicelib", "pynamodb"} <= tops
    for tool in ("cfnlint", "cfn_lint_serverless", "parliament", "mkdocs", "moto", "pytest"):
        assert tool not in tops, tool
    requirements = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("cfn-lint", "cfn-lint-serverless", "parliament", "mkdocs"):
        assert tool not in requirements


# --- the linters -----------------------------------------------------------------------


def test_cfn_lint_finds_nothing_in_the_artifact(lint):
    # Errors, warnings and informational findings alike.
    assert [(f["Rule"]["Id"], f["Message"]) for f in lint if not is_serverless(f)] == []


def test_cfn_lint_serverless_findings_are_each_accepted_with_a_reason(lint):
    serverless = [(f["Rule"]["Id"], f["Location"]["Path"][1], f["Message"])
                  for f in lint if is_serverless(f)]  # fmt: skip
    left, stale = unsuppressed(serverless, "cfn-lint-serverless")
    assert left == [], "fix these, or accept each in ops/lint-suppressions.json with a reason"
    assert stale == [], "these suppressions match nothing any more: remove them"


def policies_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every IAM policy of the template, with the region and account of a sample stage."""

    def render(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
                return (node["Fn::Sub"].replace("${AWS::Region}", SAMPLE_REGION)
                        .replace("${AWS::AccountId}", SAMPLE_ACCOUNT).replace("${AWS::Partition}", "aws"))  # fmt: skip
            return {k: render(v) for k, v in node.items()}
        return [render(v) for v in node] if isinstance(node, list) else node

    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            properties = render(resource["Properties"])
            found[f"{name} trust"] = properties["AssumeRolePolicyDocument"]
            for policy in properties.get("Policies", []):
                found[name] = policy["PolicyDocument"]
    return found


def test_every_iam_policy_passes_parliament_or_its_findings_are_accepted(artifact):
    from parliament import analyze_policy_string

    from chalicelib.config import settings
    from ops import policies

    documents = policies_of(artifact["template"])
    # ops/iam/: the worker policy, rendered for a sample stage as provisioning renders it.
    documents["ops/iam/worker-policy.json"] = policies.worker_document(
        settings(), SAMPLE_REGION, SAMPLE_ACCOUNT
    )
    assert len(documents) >= 15  # six functions and the worker role, each with its trust
    findings = []
    for name, document in documents.items():
        policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
        findings += [(f.issue, name, str(f.detail)) for f in policy.findings]
    left, stale = unsuppressed(findings, "parliament")
    assert left == [], "fix these, or accept each in ops/lint-suppressions.json with a reason"
    assert stale == [], "these suppressions match nothing any more: remove them"


def test_every_accepted_finding_says_why():
    for tool in ("cfn-lint-serverless", "parliament"):
        for entry in SUPPRESSIONS[tool]:
            assert len(entry["reason"]) > 40, entry


def test_parliament_finds_a_bad_policy():
    # The check above is worth something only if the tool reads policies as we pass them.
    from parliament import analyze_policy_string

    bad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjectt", "Resource": "arn:aws:s3:::b/*"}]}  # fmt: skip
    assert [f.issue for f in analyze_policy_string(json.dumps(bad)).findings] == ["UNKNOWN_ACTION"]


# --- the artifact and `make deploy` stay equivalent ------------------------------------


def test_the_function_roles_hold_the_policies_deploy_writes(artifact):
    from chalicelib import config
    from ops import deploy, policies

    with pytest.MonkeyPatch.context() as patch:
        for name, value in deploy._stage_env(STAGE).items():
            patch.setenv(name, value)
        config.settings.cache_clear()
        try:
            wanted = policies.documents(config.settings(), SAMPLE_REGION, SAMPLE_ACCOUNT)
        finally:
            config.settings.cache_clear()
    found = policies_of(artifact["template"])
    for function, document in wanted.items():
        role = "".join(word.capitalize() for word in function.split("_")) + "Role"
        assert found[role] == document, function


def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((k["AttributeName"], k["KeyType"]) for k in schema)


def test_the_template_describes_what_provisioning_makes(aws):
    """The resources `make deploy` provisions (here into moto, as the tests' stage) are the
    ones the artifact declares, setting for setting."""
    from chalicelib.config import settings
    from ops import policies, stack_resources

    s = settings()
    resources = stack_resources.stage_resources(s, s.stage, "api")["Resources"]
    ddb, sqs, s3, iam = (boto3.client(n) for n in ("dynamodb", "sqs", "s3", "iam"))

    tables = {r["Properties"]["TableName"]: r["Properties"] for r in resources.values()
              if r["Type"] == "AWS::DynamoDB::Table"}  # fmt: skip
    assert sorted(tables) == sorted(ddb.list_tables()["TableNames"])
    for name, declared in tables.items():
        made = ddb.describe_table(TableName=name)["Table"]
        assert keys(made["KeySchema"]) == keys(declared["KeySchema"]), name
        made_indexes = {i["IndexName"]: i for i in made.get("GlobalSecondaryIndexes", [])}
        declared_indexes = {i["IndexName"]: i for i in declared.get("GlobalSecondaryIndexes", [])}
        assert made_indexes.keys() == declared_indexes.keys(), name
        for index, spec in declared_indexes.items():
            assert sorted(map(str, made_indexes[index]["KeySchema"])) == sorted(
                map(str, spec["KeySchema"])
            )
            assert made_indexes[index]["Projection"] == spec["Projection"]
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in declared:
            assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", name

    queues = {r["Properties"]["QueueName"]: r["Properties"] for r in resources.values()
              if r["Type"] == "AWS::SQS::Queue"}  # fmt: skip
    for name, declared in queues.items():
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        made = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(made["MessageRetentionPeriod"]) == declared["MessageRetentionPeriod"]
        if "RedrivePolicy" in declared:
            assert int(made["VisibilityTimeout"]) == declared["VisibilityTimeout"], name
            redrive = json.loads(made["RedrivePolicy"])
            assert redrive["maxReceiveCount"] == declared["RedrivePolicy"]["maxReceiveCount"]
            dlq = declared["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert redrive["deadLetterTargetArn"].endswith(
                ":" + resources[dlq]["Properties"]["QueueName"]
            )

    for logical, bucket in (("InputBucket", s.input_bucket), ("OutputBucket", s.output_bucket)):
        declared = resources[logical]["Properties"]
        assert declared["BucketName"] == bucket
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert [stack_resources.lifecycle_rule(r) for r in rules] == declared[
            "LifecycleConfiguration"
        ]["Rules"]
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == declared["PublicAccessBlockConfiguration"]
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        assert versioning == declared.get("VersioningConfiguration", {}).get("Status")

    role = resources["WorkerRole"]["Properties"]
    made = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="openencoder-worker")
    account = boto3.client("sts").get_caller_identity()["Account"]
    assert made["PolicyDocument"] == policies.worker_document(s, s.region, account)
    rendered = json.loads(json.dumps(role["Policies"][0]["PolicyDocument"])
                          .replace("${AWS::Region}", s.region).replace("${AWS::AccountId}", account))  # fmt: skip
    assert rendered == made["PolicyDocument"]


def test_deploy_puts_the_alarms_the_template_declares_once(aws):
    from chalicelib.config import settings
    from ops import deploy, stack_resources

    s = settings()
    first, second = deploy.Report(), deploy.Report()
    deploy.apply_alarms(s, first)
    deploy.apply_alarms(s, second)
    assert len(first.changed) == 5 and second.changed == []
    made = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    declared = stack_resources.stage_resources(s, s.stage, "api")["Resources"]
    for resource in declared.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            wanted = resource["Properties"]
            assert {k: made[wanted["AlarmName"]][k] for k in wanted} == wanted


def test_deploy_keeps_each_functions_logs_as_long_as_the_template_says(aws, artifact):
    from chalicelib.config import settings
    from ops import deploy, policies

    first, second = deploy.Report(), deploy.Report()
    deploy.apply_log_retention(settings().stage, first)
    deploy.apply_log_retention(settings().stage, second)
    assert len(first.changed) == len(policies.FUNCTIONS) and second.changed == []
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")[
        "logGroups"
    ]
    assert {g["retentionInDays"] for g in groups} == {deploy.LOG_RETENTION_DAYS}
    declared = [r["Properties"] for r in artifact["template"]["Resources"].values()
                if r["Type"] == "AWS::Logs::LogGroup"]  # fmt: skip
    assert len(declared) == len(policies.FUNCTIONS)
    assert {d["RetentionInDays"] for d in declared} == {deploy.LOG_RETENTION_DAYS}
