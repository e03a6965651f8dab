"""Files dropped under the watch prefix of the input bucket become jobs, exactly once."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from pynamodb.exceptions import PutError

from chalicelib.accounts.users import SYSTEM_USER
from chalicelib.config import settings
from chalicelib.errors import NotFound, OpenEncoderError
from chalicelib.jobs import records as jobs
from chalicelib.presets import catalog as presets
from chalicelib.store.models import SystemItem

log = logging.getLogger("openencoder.drops")
_DEDUP_DAYS = 14


def plan(key: str) -> tuple[list[str], str] | None:
    """Presets and the output-relative path for a dropped key, or None to ignore it.

    `incoming/<preset>/<path>` uses that preset; any other key under the prefix
    uses the default presets and keeps its whole path.
    """
    prefix = settings().watch_prefix
    if not key.startswith(prefix) or key.endswith("/"):
        return None
    rest = key[len(prefix) :]
    first, sep, path = rest.partition("/")
    if sep and path:
        try:
            presets.get_preset_by_name(first)
            return [first], path
        except NotFound:
            pass
    from chalicelib.jobs import runtime_settings

    return list(runtime_settings.effective().default_presets), rest


def destination(path: str) -> str:
    """`outputs/<path without extension>/` in the output bucket: predictable for the dropper."""
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return f"s3://{settings().output_bucket}/outputs/{stem}/"


def _first_delivery(bucket: str, key: str, version: str) -> bool:
    expires = datetime.fromtimestamp(time.time() + _DEDUP_DAYS * 86400, UTC)
    marker = SystemItem(f"drop#{bucket}#{key}#{version}", expires=expires)
    try:
        marker.save(condition=SystemItem.name.does_not_exist())
        return True
    except PutError as exc:
        if "ConditionalCheckFailed" in str(exc):
            return False
        raise


def handle_record(record: dict[str, Any]) -> list[int]:
    """Create the jobs for one S3 record; returns their ids (none for a duplicate)."""
    s3 = record.get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name", "")
    obj = s3.get("object") or {}
    key = unquote_plus(obj.get("key", ""))
    if bucket != settings().input_bucket:
        log.warning("ignoring a notification for bucket %r", bucket)
        return []
    planned = plan(key)
    if planned is None:
        return []
    names, path = planned
    version = obj.get("versionId") or obj.get("sequencer") or record.get("eventTime", "")
    if not _first_delivery(bucket, key, version):
        log.info("duplicate notification for %s ignored", key)
        return []
    made = []
    for name in names:
        try:
            job = jobs.create_job(
                owner=SYSTEM_USER,
                preset=name,
                source=f"s3://{bucket}/{key}",
                dest=destination(path),
                origin={"kind": "s3-drop", "bucket": bucket, "key": key, "version": version},
            )
            made.append(int(job.id))
            facts = {"job_id": int(job.id), "attempt": 1, "key": key, "preset": name}
            log.info("drop %s: job %s (%s)", key, job.id, name, extra=facts)
        except OpenEncoderError as exc:
            # A bad drop (unknown default preset, unusable key) is logged, not retried forever.
            log.error("drop %s: could not create a %s job: %s", key, name, exc.message)
        except Exception:
            if not made:
                # Let S3's retry of this event create the job: forget we saw it.
                SystemItem(f"drop#{bucket}#{key}#{version}").delete()
            raise
    return made


def handle_event(event: dict[str, Any]) -> list[int]:
    made: list[int] = []
    for record in event.get("Records", []):
        made += handle_record(record)
    return made
