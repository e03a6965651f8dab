"""The local stack's state on disk, saved and restored through the AWS APIs the app uses.

What the AWS endpoint holds in memory (tables and their items, bucket objects, SSM
parameters, queue messages not yet processed) is written under `.local/state/` when
the stack stops, and every OE_STATE_SAVE_SECONDS while it runs. In between, `mirror`
copies each new object into `.local/state.cache/` within seconds of its writing, so
a save (above all the one at stop, which must be quick) only links bodies already on
disk instead of reading hundreds of MB through the endpoint. The next start puts
it back with the same calls any AWS client makes (BatchWriteItem, PutObject,
PutParameter, SendMessage), into resources that the provisioning code has just
created; nothing of the emulator's internals is read or written. It is generic:
whatever provisioning creates is saved, with no list kept here.

A state that cannot be restored as a whole (another format, a table whose keys
changed) is set aside with the reason, never half-loaded.

Layout (FORMAT 1):
  manifest.json        format, time saved, each table's key schema and key types, counts
  tables/<name>.jsonl  one item per line, DynamoDB JSON (binary values as base64)
  objects.jsonl        bucket, key, blob, size, etag, content type, user metadata
  blobs/<sha256>       object bodies, one file per distinct content
  parameters.json      SSM parameters: name, type, value, description
  queues/<name>.jsonl  messages not yet processed (saved at a clean stop only)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

FORMAT = 1
_OBJECT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding",
                   "ContentLanguage")  # fmt: skip
_CHUNK = 1024 * 1024


class Incompatible(Exception):
    """The saved state can't be restored by this version of the project."""


class LoadFailed(Exception):
    """Restoring failed part-way: the endpoint holds part of the state and must be reset."""


class Cancelled(Exception):
    """A save or mirror pass given up because the stack is stopping (nothing is replaced)."""


def _never() -> bool:
    return False


@dataclass
class Counts:
    tables: int = 0
    items: int = 0
    objects: int = 0
    bytes: int = 0
    parameters: int = 0
    messages: int = 0

    def describe(self) -> str:
        return (
            f"{self.tables} tables, {self.items} items, {self.objects} objects "
            f"({self.bytes / 1e6:.1f} MB), {self.parameters} parameters, "
            f"{self.messages} queued messages"
        )


def _clients(region: str) -> tuple[Any, Any, Any, Any]:
    names = ("dynamodb", "s3", "ssm", "sqs")
    return tuple(boto3.client(name, region_name=region) for name in names)  # type: ignore[return-value]


# --- JSON with binary values --------------------------------------------


def _encode(value: Any) -> Any:
    """JSON-safe: bytes (DynamoDB B/BS values, binary message attributes) become base64."""
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$b64"), str):
            return base64.b64decode(value["$b64"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# --- saving ------------------------------------------------------------------------


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _schema(table: dict) -> dict[str, Any]:
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    return {"key_schema": table["KeySchema"], "attributes": types}


def _save_tables(ddb: Any, into: Path, manifest: dict, counts: Counts) -> None:
    (into / "tables").mkdir()
    for name in _pages(ddb, "list_tables", "TableNames"):
        manifest["tables"][name] = _schema(ddb.describe_table(TableName=name)["Table"])
        with (into / "tables" / f"{name}.jsonl").open("w") as out:
            for item in _pages(ddb, "scan", "Items", TableName=name):
                out.write(json.dumps(_encode(item)) + "\n")
                counts.items += 1
        counts.tables += 1


def _previous_objects(previous: Path | None) -> dict[tuple, tuple[dict, Path]]:
    """Objects saved last time, by (bucket, key, etag, size): unchanged ones aren't read again."""
    index = previous / "objects.jsonl" if previous else None
    if index is None or not index.is_file():
        return {}
    known = {}
    for line in index.read_text().splitlines():
        entry = json.loads(line)
        blob = previous / "blobs" / entry["blob"]
        if blob.is_file():
            known[(entry["bucket"], entry["key"], entry["etag"], entry["size"])] = (entry, blob)
    return known


def _save_objects(s3: Any, into: Path, previous: Path | None, manifest: dict,
                  counts: Counts, should_stop: Callable[[], bool]) -> None:  # fmt: skip
    blobs = into / "blobs"
    blobs.mkdir()
    known = _previous_objects(previous) | _previous_objects(cache_of(into))
    with (into / "objects.jsonl").open("w") as index:
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            manifest["buckets"].append(name)
            versioned = _versioned(s3, name)
            for obj in _current_objects(s3, name):
                key, etag, size = obj["Key"], obj["ETag"], obj["Size"]
                if (name, key, etag, size) in known:
                    entry, blob = known[(name, key, etag, size)]
                    # The current version's id: jobs record the version they wrote, and
                    # their download links name it (see `_load_objects`).
                    version = s3.head_object(Bucket=name, Key=key).get("VersionId")
                    entry = {**entry, "version_id": version if versioned else None}
                    _link(blob, blobs)
                else:
                    entry = _read_object(s3, name, obj, blobs, should_stop)
                index.write(json.dumps(entry) + "\n")
                counts.objects += 1
                counts.bytes += size


def _current_objects(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """The current object of each key: Key, ETag, Size.

    ListObjectsV2, never ListObjectVersions: moto answers the latter by deep-copying
    every version of every key in the bucket, bodies included, so each listing costs as
    much as copying the whole bucket (seconds per GB of sources, outputs and
    intermediates, at every save and at stop).
    """
    yield from _pages(s3, "list_objects_v2", "Contents", Bucket=bucket)


def _versioned(s3: Any, bucket: str) -> bool:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


def _read_object(s3: Any, bucket: str, listed: dict, blobs: Path,
                 should_stop: Callable[[], bool]) -> dict[str, Any]:  # fmt: skip
    """One object's index entry, its body read into `blobs`."""
    key = listed["Key"]
    head = s3.head_object(Bucket=bucket, Key=key)
    version = head.get("VersionId")
    return {"bucket": bucket, "key": key, "etag": listed["ETag"], "size": listed["Size"],
            "headers": {h: head[h] for h in _OBJECT_HEADERS if head.get(h)},
            "metadata": head.get("Metadata", {}),
            "blob": _download(s3, bucket, key, blobs, should_stop),
            "version_id": None if version in (None, "null") else version}  # fmt: skip


def cache_of(root: Path) -> Path:
    """Where `mirror` keeps bodies between saves, beside the state (and its `.saving`)."""
    name = root.name.removesuffix(".saving")
    return root.with_name(name + ".cache")


def mirror(root: Path, *, region: str, should_stop: Callable[[], bool] = _never) -> int:
    """Copy every object body that neither the saved state nor the cache holds yet into
    the cache; the bytes copied. Cheap when nothing is new: one listing per bucket."""
    cache = cache_of(root)
    (cache / "blobs").mkdir(parents=True, exist_ok=True)
    known = _previous_objects(root if root.is_dir() else None) | _previous_objects(cache)
    s3 = boto3.client("s3", region_name=region)
    copied = 0
    with (cache / "objects.jsonl").open("a") as index:
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            for obj in _current_objects(s3, name):
                if (name, obj["Key"], obj["ETag"], obj["Size"]) in known:
                    continue
                if should_stop():
                    raise Cancelled("the stack is stopping")
                try:
                    entry = _read_object(s3, name, obj, cache / "blobs", should_stop)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                        continue  # removed since the listing (a job's intermediates)
                    raise
                index.write(json.dumps(entry) + "\n")
                index.flush()  # each entry stands alone: a stop keeps those before it
                copied += int(obj["Size"])
    return copied


def _link(blob: Path, blobs: Path) -> str:
    target = blobs / blob.name
    if not target.exists():
        try:
            os.link(blob, target)
        except OSError:
            shutil.copyfile(blob, target)
    return blob.name


def _download(s3: Any, bucket: str, key: str, blobs: Path,
              should_stop: Callable[[], bool] = _never) -> str:  # fmt: skip
    partial = blobs / ".partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            if should_stop():
                body.close()
                raise Cancelled("the stack is stopping")
            digest.update(chunk)
            out.write(chunk)
    name = digest.hexdigest()
    partial.replace(blobs / name)
    return name


def _save_parameters(ssm: Any, into: Path, counts: Counts) -> None:
    described = list(_pages(ssm, "describe_parameters", "Parameters"))
    saved = []
    for start in range(0, len(described), 10):
        batch = described[start : start + 10]
        names = [p["Name"] for p in batch]
        values = ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]
        descriptions = {p["Name"]: p.get("Description") for p in batch}
        for p in values:
            saved.append({"name": p["Name"], "type": p["Type"], "value": p["Value"],
                          "description": descriptions.get(p["Name"])})  # fmt: skip
    (into / "parameters.json").write_text(json.dumps(saved, indent=1))
    counts.parameters = len(saved)


def _save_queues(sqs: Any, into: Path, manifest: dict, counts: Counts) -> None:
    """Every visible message, taken off its queue: only when nothing else reads them."""
    (into / "queues").mkdir()
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        manifest["queues"].append(name)
        with (into / "queues" / f"{name}.jsonl").open("w") as out:
            while True:
                messages = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                    VisibilityTimeout=600, AttributeNames=["All"], MessageAttributeNames=["All"],
                ).get("Messages", [])  # fmt: skip
                if not messages:
                    break
                for m in messages:
                    saved = {"body": m["Body"], "attributes": m.get("MessageAttributes", {}),
                             "group": m.get("Attributes", {}).get("MessageGroupId")}  # fmt: skip
                    out.write(json.dumps(_encode(saved)) + "\n")
                    counts.messages += 1


def save(root: Path, *, region: str, include_queues: bool,
         should_stop: Callable[[], bool] = _never) -> Counts:  # fmt: skip
    """Write the endpoint's state to `root`, replacing what was there only once complete.

    `should_stop` gives up a save that runs while the stack works (Cancelled, and the
    last complete state stays): the stop saves on its own, and must not wait for it.
    """
    recover(root)
    into = root.with_name(root.name + ".saving")
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(mode=0o700, parents=True)
    ddb, s3, ssm, sqs = _clients(region)
    counts = Counts()
    manifest: dict[str, Any] = {"format": FORMAT, "project": "openencoder",
                                "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "tables": {}, "buckets": [], "queues": []}  # fmt: skip
    try:
        _save_tables(ddb, into, manifest, counts)
        if should_stop():
            raise Cancelled("the stack is stopping")
        _save_objects(s3, into, root if root.is_dir() else None, manifest, counts, should_stop)
    except Cancelled:
        shutil.rmtree(into, ignore_errors=True)
        raise
    _save_parameters(ssm, into, counts)
    if include_queues:
        _save_queues(sqs, into, manifest, counts)
    manifest["counts"] = asdict(counts)
    (into / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for path in into.rglob("*"):
        # Parameters hold the JWT key: nobody else on the machine reads any of it.
        path.chmod(0o700 if path.is_dir() else 0o600)
    # Swap in the new state; a crash in between leaves `.old`, which recover() takes back.
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    into.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    # The cache's bodies are linked into the state now; what it held beyond that was
    # removed from the endpoint since (a finished job's intermediates).
    shutil.rmtree(cache_of(root), ignore_errors=True)
    return counts


def recover(root: Path) -> None:
    """Finish a swap that a crash interrupted; drop a half-written save."""
    old = root.with_name(root.name + ".old")
    if not root.exists() and (old / "manifest.json").is_file():
        old.rename(root)
    shutil.rmtree(root.with_name(root.name + ".saving"), ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def size_on_disk(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- restoring ---------------------------------------------------------------------


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The saved manifest, None when there is no state; Incompatible when unusable."""
    recover(root)
    if not root.exists():
        return None
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise Incompatible(f"its manifest is missing or unreadable ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise Incompatible(
            f"it was written in state format {manifest.get('format')!r}; "
            f"this version reads format {FORMAT}"
        )
    return manifest


def check(manifest: dict[str, Any], *, region: str) -> None:
    """Refuse, before loading anything, a state whose tables don't fit the provisioned ones."""
    ddb = boto3.client("dynamodb", region_name=region)
    for name, saved in manifest["tables"].items():
        try:
            now = _schema(ddb.describe_table(TableName=name)["Table"])
        except ClientError:
            raise Incompatible(f"it has a table {name} that this version does not create") from None
        if now["key_schema"] != saved["key_schema"]:
            raise Incompatible(f"the keys of table {name} changed")
        for attribute, kind in saved["attributes"].items():
            if now["attributes"].get(attribute, kind) != kind:
                raise Incompatible(f"the type of {name}.{attribute} changed")


def restore(root: Path, manifest: dict[str, Any], *, region: str) -> Counts:
    """Put the saved state into the freshly provisioned endpoint (after `check`)."""
    ddb, s3, ssm, sqs = _clients(region)
    counts = Counts()
    try:
        # Objects first: S3 gives each a new version id, and the items that recorded the
        # old one (a job's outputs, for its download links) are loaded with the new one.
        versions = _load_objects(s3, root, manifest, counts)
        for name in manifest["tables"]:
            path = root / "tables" / f"{name}.jsonl"
            counts.items += _load_table(ddb, name, path, versions)
            counts.tables += 1
        for p in json.loads((root / "parameters.json").read_text()):
            extra = {"Description": p["description"]} if p.get("description") else {}
            ssm.put_parameter(Name=p["name"], Value=p["value"], Type=p["type"], Overwrite=True,
                              **extra)  # fmt: skip
            counts.parameters += 1
        for name in manifest["queues"]:
            counts.messages += _load_queue(sqs, name, root / "queues" / f"{name}.jsonl")
    except (ClientError, OSError, ValueError, KeyError) as exc:
        raise LoadFailed(f"{type(exc).__name__}: {exc}") from exc
    return counts


def _renamed_versions(value: Any, versions: dict[str, str]) -> Any:
    """An item with every recorded `version_id` of a restored object changed to its new id."""
    if isinstance(value, list):
        return [_renamed_versions(v, versions) for v in value]
    if not isinstance(value, dict):
        return value
    renamed = {k: _renamed_versions(v, versions) for k, v in value.items()}
    recorded = renamed.get("version_id")
    if isinstance(recorded, dict) and recorded.get("S") in versions:
        renamed["version_id"] = {"S": versions[recorded["S"]]}
    return renamed


def _load_table(ddb: Any, name: str, path: Path, versions: dict[str, str]) -> int:
    items = [
        _renamed_versions(_decode(json.loads(line)), versions)
        for line in path.read_text().splitlines()
        if line
    ]
    for start in range(0, len(items), 25):
        requests = {name: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        for _ in range(20):
            requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not requests:
                break
        else:
            raise LoadFailed(f"table {name}: items left unprocessed after 20 tries")
    return len(items)


def _load_objects(s3: Any, root: Path, manifest: dict, counts: Counts) -> dict[str, str]:
    """Every saved object put back; {saved version id: the new one} for versioned buckets."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in manifest["buckets"]:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)  # made by hand in an earlier run: no settings to keep
    index = root / "objects.jsonl"
    versions: dict[str, str] = {}
    for line in index.read_text().splitlines():
        entry = json.loads(line)
        with (root / "blobs" / entry["blob"]).open("rb") as body:
            put = s3.put_object(Bucket=entry["bucket"], Key=entry["key"], Body=body,
                                Metadata=entry["metadata"], **entry["headers"])  # fmt: skip
        old, new = entry.get("version_id"), put.get("VersionId")
        if old and new and old != "null":
            versions[old] = new
        counts.objects += 1
        counts.bytes += entry["size"]
    return versions


def _load_queue(sqs: Any, name: str, path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError:
        # A queue the stack makes after provisioning (the pump's S3 notification queue).
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sent = 0
    for line in path.read_text().splitlines():
        m = _decode(json.loads(line))
        extra = {"MessageGroupId": m["group"]} if m.get("group") else {}
        if m["attributes"]:
            extra["MessageAttributes"] = m["attributes"]
        sqs.send_message(QueueUrl=url, MessageBody=m["body"], **extra)
        sent += 1
    return sent


def set_aside(root: Path, why: str) -> Path:
    """Move an unusable state out of the way, keeping it for a person to look at."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = root.with_name(f"{root.name}.incompatible-{stamp}")
    root.rename(aside)
    (aside / "WHY.txt").write_text(f"Set aside by the local stack at {stamp}: {why}\n")
    return aside
