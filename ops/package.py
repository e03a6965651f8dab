"""`make package STAGE=<name>`: the stage's deploy artifact as one CloudFormation (SAM) template.

dist/<stage>/ receives `sam.json` and `deployment.zip`: `chalice package` output (the
functions, their least-privilege roles, the REST API, the SQS and schedule event sources)
merged with the project's own resources (ops/stack_resources.py), rendered from the same
definitions that `ops/provision.py` applies and `ops/deploy.py` finishes with:

- the DynamoDB tables with their indexes and TTL (from the PynamoDB models);
- the input and output buckets: public access blocked, lifecycle rules, versioned
  outputs, the dashboard's CORS rules and the drops notification;
- the encode, long and webhooks queues, each with its dead-letter queue, and the queue that
  keeps the events of drops that failed every try;
- the ffmpeg layer (its zip named by the `LayerBucket`/`LayerKey` parameters), the encode
  function's ephemeral storage, partial batch responses on the SQS event sources, the
  gateway responses in the API's JSON shape, the API URL parameter, the worker role;
- alarms on every dead-letter queue and on the encode function's errors (as deploy puts them).

`make deploy` does not deploy this template: see docs/guides/deploy.md for why, and for
what stays with provisioning (the SecureString secrets, the seeded presets, the worker
bundle). tests/integration/test_package.py lints it (cfn-lint, cfn-lint-serverless,
parliament) and checks that it names what provisioning makes.

Chalice refuses to package `@app.on_s3_event` as CloudFormation, because a template cannot
add a notification to a bucket made elsewhere. Here the bucket is in the same template, so
the drops function gets a SAM S3 event on it instead (`StageTemplateGenerator`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ops.stack_resources import ACCOUNT, REGION, stage_resources

ROOT = Path(__file__).resolve().parent.parent
LAYER_PLACEHOLDER = "arn:aws:lambda:us-east-1:000000000000:layer:openencoder-ffmpeg-package:1"


# --- chalice package, with the drops bucket in the same template ----------------------


def _generator_class() -> type:
    from chalice.package import SAMTemplateGenerator
    from chalice.utils import to_cfn_resource_name

    class StageTemplateGenerator(SAMTemplateGenerator):
        """SAM output, where the drops function's S3 event names the template's own bucket."""

        def _generate_s3bucketnotification(self, resource: Any, template: dict) -> None:
            function = template["Resources"][
                to_cfn_resource_name(resource.lambda_function.resource_name)
            ]
            rules = [{"Name": "prefix", "Value": resource.prefix}] if resource.prefix else []
            if resource.suffix:
                rules.append({"Name": "suffix", "Value": resource.suffix})
            from chalicelib.config import settings

            buckets = {
                settings().input_bucket: "InputBucket",
                settings().output_bucket: "OutputBucket",
            }
            if resource.bucket not in buckets:
                raise ValueError(f"{resource.bucket} is not a bucket of this stage's template")
            bucket = {"Ref": buckets[resource.bucket]}
            event: dict[str, Any] = {"Bucket": bucket, "Events": resource.events}
            if rules:
                event["Filter"] = {"S3Key": {"Rules": rules}}
            function["Properties"].setdefault("Events", {})[
                to_cfn_resource_name(resource.resource_name)
            ] = {"Type": "S3", "Properties": event}

    return StageTemplateGenerator


def chalice_package(project: Path, stage: str, merge: Path, out: Path) -> None:
    """`chalice package --merge-template` with StageTemplateGenerator, in this process."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.deploy.deployer import create_build_stage
    from chalice.deploy.swagger import CFNSwaggerGenerator
    from chalice.package import (
        AppPackager,
        CompositePostProcessor,
        JSONTemplateSerializer,
        ResourceBuilder,
        SAMCodeLocationPostProcessor,
        TemplateDeepMerger,
        TemplateMergePostProcessor,
    )
    from chalice.utils import UI, OSUtils

    factory = CLIFactory(str(project), environ=dict(os.environ))
    config = factory.create_config_obj(stage)
    options = factory.create_package_options()
    osutils = OSUtils()
    serializer = JSONTemplateSerializer()
    packager = AppPackager(
        _generator_class()(config, options),
        ResourceBuilder(
            ApplicationGraphBuilder(),
            DependencyBuilder(),
            create_build_stage(osutils, UI(), CFNSwaggerGenerator(), config),
        ),
        CompositePostProcessor(
            [
                SAMCodeLocationPostProcessor(osutils=osutils),
                TemplateMergePostProcessor(
                    osutils=osutils,
                    merger=TemplateDeepMerger(),
                    template_serializer=serializer,
                    merge_template=str(merge),
                ),
            ]
        ),
        serializer,
        osutils,
    )
    packager.package_app(config, str(out), stage)


# --- what `chalice package` cannot say, applied to its template -----------------------


def substitute(node: Any) -> Any:
    """Strings that name ${AWS::Region} or ${AWS::AccountId} become Fn::Sub."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return node
        return {k: substitute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v) for v in node]
    if isinstance(node, str) and ("${AWS::Region}" in node or "${AWS::AccountId}" in node):
        return {"Fn::Sub": node}
    return node


def finish(template: dict[str, Any], s: Any) -> dict[str, Any]:
    """Settings ops/deploy.py applies after `chalice deploy`, here in the template."""
    from ops.deploy import API_BURST_LIMIT, API_RATE_LIMIT, DROP_RETRIES, EPHEMERAL_MB

    resources = template["Resources"]
    queues = {
        s.encode_queue: "EncodeQueue",
        s.long_queue: "LongQueue",
        s.webhook_queue: "WebhooksQueue",
    }
    for resource in resources.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        if "Layers" in properties:
            properties["Layers"] = [
                {"Ref": "FfmpegLayer"} if layer == LAYER_PLACEHOLDER else layer
                for layer in properties["Layers"]
            ]
        for event in properties.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
            # Chalice names the queue by ARN text: wait for the queue the template makes.
            arn = json.dumps(event["Properties"]["Queue"])
            resource["DependsOn"] = sorted(
                {*resource.get("DependsOn", []), *(q for n, q in queues.items() if f':{n}"' in arn)}
            )
    resources["Encode"]["Properties"]["EphemeralStorage"] = {"Size": EPHEMERAL_MB}
    resources["RestAPI"]["Properties"]["MethodSettings"] = [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": API_RATE_LIMIT,
            "ThrottlingBurstLimit": API_BURST_LIMIT,
        }
    ]
    resources["Drops"]["Properties"]["EventInvokeConfig"] = {
        "MaximumRetryAttempts": DROP_RETRIES,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DropsFailedQueue", "Arn"]}}
        },
    }
    by_lower = {name.lower(): name for name in resources}
    for resource in resources.values():
        if resource["Type"] != "AWS::Logs::LogGroup":
            continue
        # Chalice names the API function's log group after `ApiHandler`, but the function
        # itself `APIHandler` (cfn-lint: E3030): point it at the function that exists.
        sub = resource["Properties"]["LogGroupName"]["Fn::Sub"]
        named = sub.removeprefix("/aws/lambda/${").removesuffix("}")
        resource["Properties"]["LogGroupName"]["Fn::Sub"] = sub.replace(
            named, by_lower.get(named.lower(), named)
        )
        # Explicit, as `chalice delete` removes the log groups it made with the functions.
        resource.update(DeletionPolicy="Delete", UpdateReplacePolicy="Delete")
    return substitute(template)


# --- the project copy chalice packages ------------------------------------------------


def prepare_project(work: Path, stage: str) -> Path:
    """A copy of the tracked files with the stage's policies and layer, as deploy writes them
    into the checkout; chalice's wheel cache (.chalice/deployments) is kept between runs."""
    from chalicelib.config import settings
    from ops import policies
    from ops.deploy import CONFIG, LOG_RETENTION_DAYS

    project = work / "project"
    cache = project / ".chalice" / "deployments"
    kept = work / "deployments"
    if cache.is_dir():
        shutil.rmtree(kept, ignore_errors=True)
        cache.rename(kept)
    shutil.rmtree(project, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not name.startswith(("docs/", "tests/", "bench/")):
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    if kept.is_dir():
        kept.rename(cache)
    config = json.loads(CONFIG.read_text())
    stage_config = config["stages"][stage]
    stage_config["autogen_policy"] = False
    functions = stage_config.setdefault("lambda_functions", {})
    for name, document in policies.documents(settings(), REGION, ACCOUNT).items():
        policy = f"policy-{stage}-{name}.json"
        (project / ".chalice" / policy).write_text(json.dumps(document, indent=2) + "\n")
        functions.setdefault(name, {})["iam_policy_file"] = policy
    functions.setdefault("encode", {})["layers"] = [LAYER_PLACEHOLDER]
    # What deploy applies after `chalice deploy` (ops/deploy.py), here as chalice's own
    # log groups in the template.
    stage_config["log_retention_in_days"] = LOG_RETENTION_DAYS
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return project


def package(stage: str, out: Path, work: Path) -> Path:
    """Write the stage's artifact into `out` (sam.json, deployment.zip); returns the template."""
    from chalicelib.config import settings
    from ops.deploy import CONFIG, _stage_env

    os.environ.update(_stage_env(stage))
    os.environ.setdefault(
        "AWS_DEFAULT_REGION", "us-east-1"
    )  # chalice wants one; the template has none
    settings.cache_clear()
    s = settings()
    gateway_stage = json.loads(CONFIG.read_text())["stages"][stage].get("api_gateway_stage", "api")
    work.mkdir(parents=True, exist_ok=True)
    project = prepare_project(work, stage)
    merge = work / "resources.json"
    merge.write_text(json.dumps(stage_resources(s, stage, gateway_stage), indent=2))
    shutil.rmtree(out, ignore_errors=True)
    chalice_package(project, stage, merge, out)
    path = out / "sam.json"
    path.write_text(json.dumps(finish(json.loads(path.read_text()), s), indent=2) + "\n")
    return path


def package_size(path: Path) -> str:
    """Lambda counts the function package and its layers unzipped (250 MB in all)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        unzipped = sum(i.file_size for i in z.infolist())
    return f"{path.stat().st_size / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path, help="default dist/<stage>")
    parser.add_argument("--work", type=Path, help="default .local/package/<stage>")
    options = parser.parse_args(argv)
    out = options.out or ROOT / "dist" / options.stage
    work = options.work or ROOT / ".local" / "package" / options.stage
    template = package(options.stage, out, work)
    print(f"wrote {template} and {out / 'deployment.zip'}")
    print(f"{out / 'deployment.zip'}: {package_size(out / 'deployment.zip')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
