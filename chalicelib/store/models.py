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
from pynamodb.connection import Connection, TableConnection
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
    """The container's one DynamoDB connection, for every model and transaction (client
    creation is slow). Its pool holds as many sockets as the ten models' own pools did:
    the local stack serves many requests at once from one process."""
    return Connection(
        region=_settings.region, host=_settings.aws_endpoint, max_pool_connections=100
    )


class _Model(Model):
    """A model whose table calls go through the one `connection()` of the container.

    PynamoDB gives each model a connection of its own, and each makes its own botocore
    session and client on first use: 0.1 s of CPU for every model a cold container
    touches, where a second client on one session costs a few milliseconds."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        made = cls._connection
        table = super()._get_connection()
        if table is not made:  # just made for this model: point it at the shared one
            shared = connection()
            shared.add_meta_table(table.get_meta_table())
            table.connection = shared
        return table


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


class User(_Model):
    class Meta(_Meta):
        table_name = _settings.table("users")

    username = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="user")
    password_hash = UnicodeAttribute()
    role = UnicodeAttribute(default="guest")
    active = BooleanAttribute(default=True)
    system = BooleanAttribute(default=False)
    # Set by an admin: every route but update-password answers 403 until changed.
    force_password_reset = BooleanAttribute(default=False)
    # Counts password changes; tokens carry it (`pwv`), so older ones stop working.
    password_version = NumberAttribute(default=0)
    created = UTCDateTimeAttribute(default=utcnow)
    updated = UTCDateTimeAttribute(default=utcnow)

    by_name = UsersByName()


class PresetsById(_KindIndex):
    class Meta:
        index_name = "kind-id-index"
        projection = AllProjection()

    id = NumberAttribute(range_key=True)


class Preset(_Model):
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


class JobsByQueuedDue(_KindIndex):
    """Sparse: only waiting jobs appear, by when their message was due, for the stale sweep."""

    class Meta:
        index_name = "kind-queued-index"
        projection = AllProjection()

    queued_due = NumberAttribute(range_key=True)


class Job(_Model):
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
    # CPU seconds ffmpeg spent making the outputs (every finished task's, for a graph).
    cpu_seconds = NumberAttribute(null=True)
    # What its runs were billed (chalicelib.jobs.cost): GB-seconds and invocations, summed
    # in the writes that count each run done.
    gb_seconds = NumberAttribute(null=True)
    requests = NumberAttribute(null=True)
    phases = MapAttribute(default=dict)
    lease_owner = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)
    # Set while the job waits (queued or restarting): when its message should have been
    # delivered (epoch seconds); removed by the claim.
    queued_due = NumberAttribute(null=True)
    retries = NumberAttribute(default=0)
    # Why each ended try of this attempt ended: [{"ended": ..., "at": ...}] (see graph.run).
    tries = ListAttribute(default=list)
    error = MapAttribute(null=True)
    outputs = ListAttribute(default=list)
    probe = MapAttribute(null=True)
    origin = MapAttribute(null=True)
    notify_webhook = UnicodeAttribute(null=True)  # the webhook made for the job's notify_url
    # The job graph (chalicelib/graph): how the job was asked to run, what the planner
    # chose, and the fan-in counter the tasks of the current attempt bring to the total.
    options = MapAttribute(null=True)
    plan = MapAttribute(null=True)
    tasks_total = NumberAttribute(null=True)
    tasks_done = NumberAttribute(null=True)
    created_date = UTCDateTimeAttribute(default=utcnow)
    updated_date = UTCDateTimeAttribute(default=utcnow)

    by_id = JobsById()
    by_guid = JobsByGuid()
    by_lease = JobsByLease()
    by_queued = JobsByQueuedDue()


class TasksByLease(_KindIndex):
    """Sparse: only tasks holding a lease appear, so the reconcile finds lapsed ones at once."""

    class Meta:
        index_name = "kind-lease-index"
        projection = AllProjection()

    lease_expires = NumberAttribute(range_key=True)


class Task(_Model):
    """One task of a job's graph for one attempt: an encode, the audio, thumbnails, the assemble."""

    class Meta(_Meta):
        table_name = _settings.table("tasks")

    job_id = NumberAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # "<attempt:04d>#<task id>": one attempt per prefix
    kind = UnicodeAttribute(default="task")
    task_id = UnicodeAttribute()
    task_kind = UnicodeAttribute()  # encode | audio | thumbnails | assemble
    attempt = NumberAttribute()
    order = NumberAttribute(default=0)  # position in the plan
    chunk = NumberAttribute(null=True)
    rendition = UnicodeAttribute(null=True)
    renditions = ListAttribute(of=UnicodeAttribute, null=True)  # an encode of several at once
    status = UnicodeAttribute()
    queue = UnicodeAttribute(default="encode")
    lease_owner = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)
    retries = NumberAttribute(default=0)
    recoveries = NumberAttribute(default=0)
    tries = ListAttribute(default=list)  # why each ended try ended: [{"ended", "at"}]
    progress = NumberAttribute(default=0)
    started = UTCDateTimeAttribute(null=True)
    finished = UTCDateTimeAttribute(null=True)
    seconds = NumberAttribute(null=True)  # the run's wall time (the bench reads it)
    cpu_seconds = NumberAttribute(null=True)  # ffmpeg's CPU time in the run (what it cost)
    memory_mb = NumberAttribute(null=True)  # what the run's invocation was billed at
    released_by = UnicodeAttribute(null=True)  # the assemble: the task whose finish released it
    outputs = ListAttribute(default=list)
    error = MapAttribute(null=True)
    expires = TTLAttribute(null=True)

    by_lease = TasksByLease()

    @staticmethod
    def make_key(attempt: int, task_id: str) -> str:
        return f"{attempt:04d}#{task_id}"


class WorkersByKind(_KindIndex):
    class Meta:
        index_name = "kind-index"
        projection = AllProjection()


class WorkerState(_Model):
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


class SystemItem(_Model):
    """Counters, unique-name claims, login throttles and idempotency records."""

    class Meta(_Meta):
        table_name = _settings.table("system")

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    ref = NumberAttribute(null=True)
    failures = NumberAttribute(null=True)
    locked_until = NumberAttribute(null=True)
    expires = TTLAttribute(null=True)
    digest = UnicodeAttribute(null=True)  # a droplet secret's SHA-256, never the secret
    document = UnicodeAttribute(null=True)  # JSON, e.g. the runtime settings


class Upload(_Model):
    """A direct upload: where its bytes go, what the client declared, and how far it got."""

    class Meta(_Meta):
        table_name = _settings.table("uploads")

    id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    bucket = UnicodeAttribute()
    key = UnicodeAttribute()
    filename = UnicodeAttribute()
    size = NumberAttribute()
    content_type = UnicodeAttribute()
    method = UnicodeAttribute()  # PUT | multipart
    status = UnicodeAttribute(default="pending")  # pending | complete | aborted
    multipart_id = UnicodeAttribute(null=True)
    part_size = NumberAttribute(null=True)
    part_count = NumberAttribute(null=True)
    url_expires = UTCDateTimeAttribute()
    etag = UnicodeAttribute(null=True)  # of the object it completed with
    refused = UnicodeAttribute(null=True)  # why the object was removed (size or type not declared)
    created = UTCDateTimeAttribute(default=utcnow)
    updated = UTCDateTimeAttribute(default=utcnow)
    expires = TTLAttribute(null=True)  # pending records go a day after their URLs expire


class WebhooksByKind(_KindIndex):
    class Meta:
        index_name = "kind-id-index"
        projection = AllProjection()

    id = UnicodeAttribute(range_key=True)


class Webhook(_Model):
    """An endpoint told about job events; kind `job-webhook` is one job's notify_url."""

    class Meta(_Meta):
        table_name = _settings.table("webhooks")

    id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="webhook")  # webhook | job-webhook
    owner = UnicodeAttribute()
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute, default=list)
    active = BooleanAttribute(default=True)
    format = UnicodeAttribute(default="standard")  # standard | slack
    secret = UnicodeAttribute()
    job_id = NumberAttribute(null=True)
    created = UTCDateTimeAttribute(default=utcnow)
    updated = UTCDateTimeAttribute(default=utcnow)

    by_kind = WebhooksByKind()


class Delivery(_Model):
    """One attempt to deliver one event to one webhook."""

    class Meta(_Meta):
        table_name = _settings.table("deliveries")

    webhook_id = UnicodeAttribute(hash_key=True)
    sort = UnicodeAttribute(range_key=True)  # "<created RFC 3339>#<n>": newest last
    id = UnicodeAttribute()  # the message id: the same for every attempt of one event
    event = UnicodeAttribute()
    attempt = NumberAttribute()
    status_code = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    next_try = UTCDateTimeAttribute(null=True)
    created = UTCDateTimeAttribute(default=utcnow)
    expires = TTLAttribute(null=True)


class IdempotencyRecord(_Model):
    """One Idempotency-Key of one user on one route: written and read by Powertools'
    DynamoDBPersistenceLayer (chalicelib/api/idempotency.py), with its attribute names;
    declared here so provisioning creates the table, with TTL on `expiration`."""

    class Meta(_Meta):
        table_name = _settings.table("idempotency")

    id = UnicodeAttribute(hash_key=True)  # "<route>#<sha256 of user, route and key>"
    status = UnicodeAttribute(null=True)  # INPROGRESS | COMPLETED
    data = UnicodeAttribute(null=True)  # the first answer, JSON
    validation = UnicodeAttribute(null=True)  # sha256 of the first request's body
    in_progress_expiration = NumberAttribute(null=True)  # ms: a crashed first request frees it
    expiration = TTLAttribute(null=True)  # 24 h after the first answer


ALL_MODELS: tuple[type[Model], ...] = (
    User,
    Preset,
    Job,
    Task,
    WorkerState,
    SystemItem,
    Upload,
    Webhook,
    Delivery,
    IdempotencyRecord,
)
