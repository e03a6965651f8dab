"""PynamoDB models: the tables of a stage and the indexes the code queries.

Table names come from the stage settings. Lists are Queries on a `kind`
partition of a global index, so no request path ever Scans.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import settings

_settings = settings()


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """The API's date format: UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


@cache
def connection() -> Connection:
    """One connection for transactions, made once per container (client creation is slow)."""
    return Connection(region=_settings.region, host=_settings.aws_endpoint)


class _Meta:
    region = _settings.region
    host = _settings.aws_endpoint
    billing_mode = "PAY_PER_REQUEST"


class _KindIndex(GlobalSecondaryIndex):
    """Base of the per-table `kind` indexes that lists are served from."""

    kind = UnicodeAttribute(hash_key=True)


class UsersByName(_KindIndex):
    class Meta:
        index_name = "kind-username-index"
        projection = AllProjection()

    username = UnicodeAttribute(range_key=True)


class User(Model):
    class Meta(_Meta):
        table_name = _settings.table("users")

    username = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="user")
    password_hash = UnicodeAttribute()
    role = UnicodeAttribute(default="guest")
    active = BooleanAttribute(default=True)
    system = BooleanAttribute(default=False)
    created = UTCDateTimeAttribute(default=utcnow)
    updated = UTCDateTimeAttribute(default=utcnow)

    by_name = UsersByName()


class PresetsById(_KindIndex):
    class Meta:
        index_name = "kind-id-index"
        projection = AllProjection()

    id = NumberAttribute(range_key=True)


class Preset(Model):
    class Meta(_Meta):
        table_name = _settings.table("presets")

    id = NumberAttribute(hash_key=True)
    kind = UnicodeAttribute(default="preset")
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    data = UnicodeAttribute()
    output = UnicodeAttribute()
    active = BooleanAttribute(default=True)
    created = UTCDateTimeAttribute(default=utcnow)
    updated = UTCDateTimeAttribute(default=utcnow)

    by_id = PresetsById()


class JobsById(_KindIndex):
    class Meta:
        index_name = "kind-id-index"
        projection = AllProjection()

    id = NumberAttribute(range_key=True)


class JobsByGuid(GlobalSecondaryIndex):
    class Meta:
        index_name = "guid-index"
        projection = AllProjection()

    guid = UnicodeAttribute(hash_key=True)


class JobsByLease(_KindIndex):
    """Sparse: only jobs holding a lease appear, so expired ones are one Query away."""

    class Meta:
        index_name = "kind-lease-index"
        projection = AllProjection()

    lease_expires = NumberAttribute(range_key=True)


class Job(Model):
    class Meta(_Meta):
        table_name = _settings.table("jobs")

    id = NumberAttribute(hash_key=True)
    kind = UnicodeAttribute(default="job")
    guid = UnicodeAttribute()
    owner = UnicodeAttribute()
    preset = UnicodeAttribute()
    # The preset as it was when the job was made, so editing a preset never
    # changes a job already queued.
    preset_snapshot = MapAttribute()
    source = UnicodeAttribute()
    dest = UnicodeAttribute()
    status = UnicodeAttribute(default="queued")
    attempt = NumberAttribute(default=1)
    queue = UnicodeAttribute(default="encode")
    progress = NumberAttribute(default=0)
    speed = UnicodeAttribute(null=True)
    fps = NumberAttribute(null=True)
    phases = MapAttribute(default=dict)
    lease_owner = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)
    retries = NumberAttribute(default=0)
    error = MapAttribute(null=True)
    outputs = ListAttribute(default=list)
    probe = MapAttribute(null=True)
    origin = MapAttribute(null=True)
    created_date = UTCDateTimeAttribute(default=utcnow)
    updated_date = UTCDateTimeAttribute(default=utcnow)

    by_id = JobsById()
    by_guid = JobsByGuid()
    by_lease = JobsByLease()


class WorkersByKind(_KindIndex):
    class Meta:
        index_name = "kind-index"
        projection = AllProjection()


class WorkerState(Model):
    """A long-queue worker's heartbeat: what it does now and when it was last seen."""

    class Meta(_Meta):
        table_name = _settings.table("workers")

    worker_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="worker")
    droplet_id = NumberAttribute(null=True)
    state = UnicodeAttribute(default="idle")  # idle | busy | stopping
    job_id = NumberAttribute(null=True)
    last_seen = NumberAttribute(default=0)
    idle_since = NumberAttribute(null=True)
    expires = TTLAttribute(null=True)

    by_kind = WorkersByKind()


class SystemItem(Model):
    """Counters, unique-name claims, login throttles and idempotency records."""

    class Meta(_Meta):
        table_name = _settings.table("system")

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    ref = NumberAttribute(null=True)
    failures = NumberAttribute(null=True)
    locked_until = NumberAttribute(null=True)
    expires = TTLAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (User, Preset, Job, WorkerState, SystemItem)
