"""Settings of a stage, read once per container from environment variables.

`.chalice/config.json` sets them per stage for Lambda; the local stack and the
tests set them in the process environment. Resource names default to
`openencoder-<stage>-<thing>` so every host derives the same names from the stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

ROLES = ("guest", "operator", "admin")
INTERNAL_PREFIX = "_openencoder/"
# Objects only provisioning writes (the worker bundle, layer zips): the policies of the
# functions and of the droplets deny every write under it.
SYSTEM_PREFIX = f"{INTERNAL_PREFIX}system/"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


MIB = 1024 * 1024
S3_MIN_PART_BYTES = 5 * MIB  # S3 refuses smaller parts (all but the last)


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint: str | None
    table_prefix: str
    input_bucket: str
    output_bucket: str
    watch_prefix: str
    encode_queue: str
    long_queue: str
    jwt_key_parameter: str
    do_token_parameter: str
    api_url_parameter: str
    worker_bundle: str
    droplet_region: str
    droplet_size: str
    droplet_min: int
    droplet_max: int
    jobs_per_droplet: int
    hourly_budget: float
    idle_grace_seconds: int
    boot_timeout_seconds: int
    token_ttl_seconds: int
    bcrypt_rounds: int
    registration_open: bool
    default_role: str
    login_max_failures: int
    login_lockout_seconds: int
    login_user_slowdown_after: int
    login_trusted_networks: tuple[str, ...]
    droplet_metadata_url: str
    api_url: str
    worker_role_name: str
    worker_credentials_seconds: int
    droplet_secret_file: str
    droplet_credentials_cache: str
    max_body_bytes: int
    ffmpeg_max_seconds: int
    ffmpeg_max_file_bytes: int
    default_presets: tuple[str, ...]
    log_level: str
    log_format: str
    # Direct uploads and download links (chalicelib/jobs/uploads.py, storage.download_link)
    upload_single_max: int
    upload_part_size: int
    upload_max_bytes: int
    upload_url_seconds: int
    download_url_seconds: int
    # Webhooks (chalicelib/delivery/webhooks.py)
    webhook_queue: str
    webhook_backoff_seconds: float
    webhook_max_attempts: int
    webhook_timeout_seconds: float
    webhook_allow_loopback: bool
    slack_url_parameter: str
    token_refresh_max_seconds: int
    # Browser origins allowed to PUT/GET presigned URLs (the dashboard's), besides a
    # deployed stage's own API origin, which provisioning finds by itself.
    dashboard_origins: tuple[str, ...]

    @property
    def droplet_tag(self) -> str:
        """The tag that marks this stage's droplets (every droplet also carries `openencoder`)."""
        return f"openencoder-{self.stage}"

    @property
    def drops_failed_queue(self) -> str:
        """Where Lambda puts a bucket drop's event after its last failed try (deploy wires it)."""
        return f"openencoder-{self.stage}-drops-failed"

    def table(self, kind: str) -> str:
        return f"{self.table_prefix}-{kind}"

    @property
    def buckets(self) -> tuple[str, str]:
        return (self.input_bucket, self.output_bucket)


@cache
def settings() -> Settings:
    stage = os.environ.get("OE_STAGE", "dev")
    base = f"openencoder-{stage}"
    default_role = os.environ.get("OE_DEFAULT_ROLE", "guest")
    if default_role not in ROLES:
        raise ValueError(f"OE_DEFAULT_ROLE must be one of {ROLES}")
    watch_prefix = os.environ.get("OE_WATCH_PREFIX", "incoming/")
    if watch_prefix and not watch_prefix.endswith("/"):
        watch_prefix += "/"
    input_bucket = os.environ.get("OE_INPUT_BUCKET", f"{base}-input")
    bundle_key = f"{SYSTEM_PREFIX}worker.tar.gz"
    return Settings(
        stage=stage,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        # boto3 honours AWS_ENDPOINT_URL by itself; PynamoDB needs it passed as host.
        aws_endpoint=os.environ.get("AWS_ENDPOINT_URL") or None,
        table_prefix=os.environ.get("OE_TABLE_PREFIX", base),
        input_bucket=input_bucket,
        output_bucket=os.environ.get("OE_OUTPUT_BUCKET", f"{base}-output"),
        watch_prefix=watch_prefix,
        encode_queue=os.environ.get("OE_ENCODE_QUEUE", f"{base}-encode"),
        long_queue=os.environ.get("OE_LONG_QUEUE", f"{base}-long"),
        jwt_key_parameter=os.environ.get("OE_JWT_KEY_PARAMETER", f"/openencoder/{stage}/jwt-key"),
        do_token_parameter=os.environ.get(
            "OE_DO_TOKEN_PARAMETER", f"/openencoder/{stage}/digitalocean-token"
        ),
        # Where droplets reach the API; deploy stores it here, OE_API_URL overrides it.
        api_url_parameter=os.environ.get("OE_API_URL_PARAMETER", f"/openencoder/{stage}/api-url"),
        worker_bundle=os.environ.get("OE_WORKER_BUNDLE", f"s3://{input_bucket}/{bundle_key}"),
        droplet_region=os.environ.get("OE_DROPLET_REGION", "nyc3"),
        droplet_size=os.environ.get("OE_DROPLET_SIZE", "c-4"),
        droplet_min=_int("OE_DROPLETS_MIN", 0),
        droplet_max=_int("OE_DROPLETS_MAX", 3),
        jobs_per_droplet=_int("OE_JOBS_PER_DROPLET", 1),
        hourly_budget=float(os.environ.get("OE_DROPLETS_HOURLY_BUDGET", "1.0")),
        idle_grace_seconds=_int("OE_DROPLET_IDLE_GRACE_SECONDS", 600),
        boot_timeout_seconds=_int("OE_DROPLET_BOOT_TIMEOUT_SECONDS", 900),
        token_ttl_seconds=_int("OE_TOKEN_TTL_SECONDS", 3600),
        bcrypt_rounds=_int("OE_BCRYPT_ROUNDS", 12),
        # Closed unless a stage opens it: an internet-facing encoder should not
        # hand out accounts to strangers by default.
        registration_open=_flag("OE_REGISTRATION_OPEN", False),
        default_role=default_role,
        login_max_failures=_int("OE_LOGIN_MAX_FAILURES", 5),
        login_lockout_seconds=_int("OE_LOGIN_LOCKOUT_SECONDS", 300),
        # Failures for one username from every address together: past this, each
        # attempt is slowed (429 with Retry-After), never locked.
        login_user_slowdown_after=_int("OE_LOGIN_USER_SLOWDOWN_AFTER", 50),
        login_trusted_networks=tuple(
            n.strip()
            for n in os.environ.get("OE_LOGIN_TRUSTED_NETWORKS", "").split(",")
            if n.strip()
        ),
        # Empty off a droplet: the worker then reports no droplet id, and nothing
        # probes the link-local address on a laptop or in Lambda.
        droplet_metadata_url=os.environ.get("OE_DROPLET_METADATA_URL", "").rstrip("/"),
        api_url=os.environ.get("OE_API_URL", "").rstrip("/"),
        worker_role_name=os.environ.get("OE_WORKER_ROLE_NAME", f"{base}-worker"),
        worker_credentials_seconds=_int("OE_WORKER_CREDENTIALS_SECONDS", 3600),
        droplet_secret_file=os.environ.get(
            "OE_DROPLET_SECRET_FILE", "/etc/openencoder/droplet-secret"
        ),
        droplet_credentials_cache=os.environ.get(
            "OE_DROPLET_CREDENTIALS_CACHE", "/run/openencoder/credentials.json"
        ),
        max_body_bytes=_int("OE_MAX_BODY_BYTES", 64 * 1024),
        # Droplets: how long one ffmpeg run may take (0: derived from the encode estimate).
        ffmpeg_max_seconds=_int("OE_FFMPEG_MAX_SECONDS", 0),
        # Largest file one ffmpeg run may write (the largest upload we accept, by default).
        ffmpeg_max_file_bytes=_int("OE_FFMPEG_MAX_FILE_BYTES", 50 * 1024**3),
        default_presets=tuple(
            p.strip()
            for p in os.environ.get("OE_DEFAULT_PRESETS", "h264_baseline_360p_600").split(",")
            if p.strip()
        ),
        # INFO: one line per meaningful event; DEBUG also lets library chatter through.
        log_level=os.environ.get("OE_LOG_LEVEL", "INFO").strip().upper() or "INFO",
        # json (Powertools' structured lines, what CloudWatch gets) or text (for people).
        log_format="text"
        if os.environ.get("OE_LOG_FORMAT", "").strip().lower() == "text"
        else "json",
        upload_single_max=_int("OE_UPLOAD_SINGLE_MAX", 100 * MIB),
        upload_part_size=max(S3_MIN_PART_BYTES, _int("OE_UPLOAD_PART_SIZE", 8 * MIB)),
        upload_max_bytes=_int("OE_UPLOAD_MAX_BYTES", 50 * 1024 * MIB),
        upload_url_seconds=_int("OE_UPLOAD_URL_SECONDS", 3600),
        download_url_seconds=_int("OE_DOWNLOAD_URL_SECONDS", 3600),
        webhook_queue=os.environ.get("OE_WEBHOOK_QUEUE", f"{base}-webhooks"),
        # Delay before retry n is base * 4**(n-1), capped at 10 h: with the
        # defaults (5 s, 10 attempts) the last try is about 27 h after the first.
        webhook_backoff_seconds=_float("OE_WEBHOOK_BACKOFF_SECONDS", 5.0),
        webhook_max_attempts=_int("OE_WEBHOOK_MAX_ATTEMPTS", 10),
        webhook_timeout_seconds=_float("OE_WEBHOOK_TIMEOUT_SECONDS", 10.0),
        # Only for the local stack: lets webhooks reach http://127.0.0.1 receivers.
        webhook_allow_loopback=_flag("OE_WEBHOOK_ALLOW_LOOPBACK", False),
        slack_url_parameter=os.environ.get(
            "OE_SLACK_URL_PARAMETER", f"/openencoder/{stage}/slack-webhook-url"
        ),
        token_refresh_max_seconds=_int("OE_TOKEN_REFRESH_MAX_SECONDS", 7 * 86400),
        dashboard_origins=tuple(
            o.strip().rstrip("/")
            for o in os.environ.get("OE_DASHBOARD_ORIGINS", "").split(",")
            if o.strip()
        ),
    )


@dataclass(frozen=True)
class LocalSettings:
    """The local stack's own settings (`make run`); a deployed stage never reads them."""

    state_dir: str | None  # where state, scratch and stack.json live (default <repo>/.local)
    schedule_seconds: int | None  # tick every schedule this often instead of its rate
    concurrency: int  # handler invocations at once per event source, as Lambda would scale
    save_seconds: int  # state is saved this often while running (0: only at stop)
    aws_endpoint: str | None  # what the stack's clients use instead of its own endpoint (tests)


def local_settings() -> LocalSettings:
    concurrency = _int("OE_LOCAL_CONCURRENCY", os.cpu_count() or 1)
    if concurrency < 1:
        raise ValueError("OE_LOCAL_CONCURRENCY must be at least 1")
    return LocalSettings(
        state_dir=os.environ.get("OE_STATE_DIR") or None,
        schedule_seconds=_int("OE_SCHEDULE_SECONDS", 0) or None,
        concurrency=concurrency,
        save_seconds=_int("OE_STATE_SAVE_SECONDS", 60),
        # e.g. a fault-injecting proxy in front of moto: the stack still starts moto itself.
        aws_endpoint=os.environ.get("OE_LOCAL_AWS_ENDPOINT") or None,
    )


@dataclass(frozen=True)
class Runtime:
    """Settings of the encode runner, read on each call (tests and hosts may change them)."""

    lease_seconds: int
    heartbeat_seconds: float
    scratch_dir: str
    scratch_bytes: int
    encode_speed: float
    queued_resend_seconds: int


def runtime() -> Runtime:
    return Runtime(
        lease_seconds=_int("OE_LEASE_SECONDS", 30),
        # Lease renewals and progress writes: one per beat.
        heartbeat_seconds=float(os.environ.get("OE_HEARTBEAT_SECONDS") or "2.0"),
        scratch_dir=os.environ.get("OE_SCRATCH_DIR") or "/tmp/openencoder",  # noqa: S108 - Lambda's /tmp
        scratch_bytes=_int("OE_SCRATCH_BYTES", 0),
        # The measured realtime factor of a 720p libx264 encode on this host (bench/encode.py).
        encode_speed=float(os.environ.get("OE_ENCODE_SPEED") or "2.0"),
        # A job waiting longer than this past its message's due time gets its message again.
        queued_resend_seconds=_int("OE_QUEUED_RESEND_SECONDS", 900),
    )


@dataclass(frozen=True)
class GraphSettings:
    """The job graph's knobs, read on each call (tests and benches change them)."""

    chunk_min_seconds: float
    chunk_seconds: float
    audio_chunk_seconds: float
    encode_threads: int
    encode_speed: float
    lambda_budget_seconds: float
    lambda_usd_per_second: float
    droplet_usd_per_hour: float
    task_retries: int
    task_lease_recoveries: int
    encode_concurrency: int
    memory_mb: int
    usd_per_gb_second: float
    usd_per_request: float
    ranged_min_bytes: int
    package_min_seconds: float


def graph_settings() -> GraphSettings:
    return GraphSettings(
        # Sources at least this long are cut into chunks (when the preset allows it).
        chunk_min_seconds=_float("OE_CHUNK_MIN_SECONDS", 60.0),
        chunk_seconds=_float("OE_CHUNK_SECONDS", 20.0),
        # Long AAC audio is encoded in pieces about this long (a track under two: one task).
        audio_chunk_seconds=_float("OE_AUDIO_CHUNK_SECONDS", 60.0),
        # 0: ffmpeg picks; 1 measures one Lambda vCPU (bench-parallel sets it).
        encode_threads=_int("OE_ENCODE_THREADS", 0),
        encode_speed=_float("OE_ENCODE_SPEED", 2.0),
        # What one encode invocation may spend encoding (the function's 900 s less margins).
        lambda_budget_seconds=_float("OE_LAMBDA_BUDGET_SECONDS", 780.0),
        # 3008 MB at $0.0000166667 per GB-second (x86).
        lambda_usd_per_second=_float("OE_LAMBDA_USD_PER_SECOND", 0.00004896),
        droplet_usd_per_hour=_float("OE_DROPLET_USD_PER_HOUR", 0.125),
        task_retries=_int("OE_TASK_RETRIES", 3),
        task_lease_recoveries=_int("OE_TASK_LEASE_RECOVERIES", 3),
        # How many encode invocations run at once: the stage's cap on the encode function
        # (deploy applies it to the queue's event source), or the local stack's slots.
        # 0: uncapped (the region's concurrency). Plans fit their tasks to it.
        encode_concurrency=_int("OE_ENCODE_CONCURRENCY", 0),
        # What a run is billed at where no Lambda context says (the local stack, droplets).
        memory_mb=_int("OE_MEMORY_MB", 3008),
        # Lambda's x86 prices: what a job's actual cost is reckoned at.
        usd_per_gb_second=_float("OE_LAMBDA_USD_PER_GB_SECOND", 0.0000166667),
        usd_per_request=_float("OE_LAMBDA_USD_PER_REQUEST", 0.0000002),
        # A chunked job's source at least this big is read by range by each chunk's task
        # (an indexed container); a smaller one is downloaded once and split.
        ranged_min_bytes=_int("OE_RANGED_MIN_BYTES", 134217728),
        # Ladders at least this long are packaged one rendition per task, in parallel.
        package_min_seconds=_float("OE_PACKAGE_MIN_SECONDS", 120.0),
    )


def encode_concurrency_cap() -> int | None:
    """The encode function's event-source cap: OE_ENCODE_CONCURRENCY within what SQS
    event sources accept (2 to 1,000), or None (uncapped) when it is not set."""
    wanted = graph_settings().encode_concurrency
    return min(1000, max(2, wanted)) if wanted > 0 else None


# --- the configuration reference -------------------------------------------------------
# Every OE_* variable the code reads, with its default and meaning: docs/reference/
# configuration.md is generated from this table (ops/docs_reference.py), and
# tests/unit/test_docs.py fails when a variable is read but not listed here, or when a
# listed default is not what the code falls back to.


@dataclass(frozen=True)
class Documented:
    """One environment variable as the configuration reference lists it."""

    name: str
    default: str | None  # what the code falls back to ("<stage>" is the stage); None: empty
    meaning: str
    reads: str | None = None  # "settings.field" etc.: the test compares `default` to it
    note: str = ""  # said after the default, e.g. "(7 days)"
    group: str = "stage"  # stage | local | cli


REFERENCE: tuple[Documented, ...] = (
    Documented("OE_STAGE", "dev", "stage name; prefixes every resource", "settings.stage"),
    Documented(
        "OE_TABLE_PREFIX",
        "openencoder-<stage>",
        "tables `<prefix>-users`, `-presets`, `-jobs`, `-tasks`, `-system`, ...",
        "settings.table_prefix",
    ),
    Documented(
        "OE_INPUT_BUCKET",
        "openencoder-<stage>-input",
        "the stage's input bucket (set it: bucket names are global)",
        "settings.input_bucket",
    ),
    Documented(
        "OE_OUTPUT_BUCKET",
        "openencoder-<stage>-output",
        "the stage's output bucket (set it: bucket names are global)",
        "settings.output_bucket",
    ),
    Documented(
        "OE_WATCH_PREFIX", "incoming/", "drops under it start jobs", "settings.watch_prefix"
    ),
    Documented(
        "OE_ENCODE_QUEUE",
        "openencoder-<stage>-encode",
        "SQS queue of the encode function",
        "settings.encode_queue",
    ),
    Documented(
        "OE_LONG_QUEUE",
        "openencoder-<stage>-long",
        "SQS queue of encodes too long for Lambda (droplets drain it)",
        "settings.long_queue",
    ),
    Documented(
        "OE_JWT_KEY_PARAMETER",
        "/openencoder/<stage>/jwt-key",
        "SSM SecureString with the signing key",
        "settings.jwt_key_parameter",
    ),
    Documented(
        "OE_DO_TOKEN_PARAMETER",
        "/openencoder/<stage>/digitalocean-token",
        "SSM SecureString with the DigitalOcean token",
        "settings.do_token_parameter",
    ),
    Documented("OE_TOKEN_TTL_SECONDS", "3600", "token lifetime", "settings.token_ttl_seconds"),
    Documented(
        "OE_TOKEN_REFRESH_MAX_SECONDS",
        "604800",
        "how long after a login its tokens can still be refreshed",
        "settings.token_refresh_max_seconds",
        note="(7 days)",
    ),
    Documented("OE_BCRYPT_ROUNDS", "12", "bcrypt cost (tests use 4)", "settings.bcrypt_rounds"),
    Documented(
        "OE_REGISTRATION_OPEN",
        "false",
        "allow `POST /api/register` (`dev` and `local` open it)",
        "settings.registration_open",
    ),
    Documented("OE_DEFAULT_ROLE", "guest", "role of registered users", "settings.default_role"),
    Documented(
        "OE_LOGIN_MAX_FAILURES",
        "5",
        "login attempts per (username, client address) per window",
        "settings.login_max_failures",
    ),
    Documented(
        "OE_LOGIN_LOCKOUT_SECONDS",
        "300",
        "the login attempts' window",
        "settings.login_lockout_seconds",
    ),
    Documented(
        "OE_LOGIN_USER_SLOWDOWN_AFTER",
        "50",
        "failures per username (all addresses) after which its logins are slowed",
        "settings.login_user_slowdown_after",
    ),
    Documented(
        "OE_LOGIN_TRUSTED_NETWORKS",
        None,
        "CIDRs (comma-separated) that skip the per-username slowdown (the admin's known place)",
        "settings.login_trusted_networks",
    ),
    Documented(
        "OE_MAX_BODY_BYTES", "65536", "larger request bodies get 413", "settings.max_body_bytes"
    ),
    Documented(
        "OE_DEFAULT_PRESETS",
        "h264_baseline_360p_600",
        "presets (comma-separated) for files dropped directly under the watch prefix",
        "settings.default_presets",
    ),
    Documented(
        "OE_SCRATCH_DIR",
        "/tmp/openencoder",  # noqa: S108 - Lambda's /tmp
        "where sources and outputs are kept while encoding",
        "runtime.scratch_dir",
    ),
    Documented(
        "OE_SCRATCH_BYTES",
        "0",
        "room in the scratch folder",
        "runtime.scratch_bytes",
        note="(the free space)",
    ),
    Documented("OE_LEASE_SECONDS", "30", "how long a job's lease lasts", "runtime.lease_seconds"),
    Documented(
        "OE_HEARTBEAT_SECONDS",
        "2",
        "how often the heartbeat renews the lease",
        "runtime.heartbeat_seconds",
    ),
    Documented(
        "OE_QUEUED_RESEND_SECONDS",
        "900",
        "a job waiting this long past its message's due time gets its message again",
        "runtime.queued_resend_seconds",
    ),
    Documented(
        "OE_ENCODE_SPEED",
        "2.0",
        "measured realtime factor of a 720p libx264 encode on the encode function "
        "(`make bench-encode`)",
        "runtime.encode_speed",
    ),
    Documented("OE_FFMPEG", None, "path of ffmpeg", note="(the layer's, then imageio-ffmpeg's)"),
    Documented(
        "OE_FFMPEG_MAX_SECONDS",
        "0",
        "how long one ffmpeg run may take on droplets and the local worker before it is "
        "killed and the job fails (Lambda: the function's remaining time)",
        "settings.ffmpeg_max_seconds",
        note="(4x the estimate + 600 s)",
    ),
    Documented(
        "OE_FFMPEG_MAX_FILE_BYTES",
        "53687091200",
        "largest file one ffmpeg run may write (RLIMIT_FSIZE); past it ffmpeg is stopped "
        "and the job fails saying so",
        "settings.ffmpeg_max_file_bytes",
        note="(50 GiB)",
    ),
    Documented(
        "OE_CHUNK_MIN_SECONDS",
        "60",
        "sources at least this long are chunked",
        "graph.chunk_min_seconds",
    ),
    Documented("OE_CHUNK_SECONDS", "20", "about this long each chunk", "graph.chunk_seconds"),
    Documented(
        "OE_AUDIO_CHUNK_SECONDS",
        "60",
        "AAC audio is encoded in pieces about this long, joined gaplessly (a track shorter "
        "than two pieces, or 0: one audio task)",
        "graph.audio_chunk_seconds",
    ),
    Documented(
        "OE_RANGED_MIN_BYTES",
        "134217728",
        "a chunked job's source at least this big, in an indexed container (MP4/MOV, "
        "Matroska/WebM), is read by range by each chunk's task instead of downloaded and "
        "split before the fan-out",
        "graph.ranged_min_bytes",
        note="(128 MiB)",
    ),
    Documented(
        "OE_PACKAGE_MIN_SECONDS",
        "120",
        "ladders at least this long are joined and packaged one rendition per task, at once",
        "graph.package_min_seconds",
    ),
    Documented(
        "OE_ENCODE_THREADS",
        "0",
        "threads per graph encode (1 measures one Lambda vCPU)",
        "graph.encode_threads",
        note="(ffmpeg decides)",
    ),
    Documented(
        "OE_ENCODE_CONCURRENCY",
        "0",
        "at most this many encode invocations at once: deploy sets it as the encode "
        "queue's event-source maximum concurrency (2 to 1,000), so a large graph waits in "
        "SQS instead of taking the region's concurrency from the API; plans fit their "
        "tasks to it",
        "graph.encode_concurrency",
        note="(uncapped; `100` in the dev/prod stages of `.chalice/config.json`; the "
        "local stack's slots)",
    ),
    Documented(
        "OE_LAMBDA_BUDGET_SECONDS",
        "780",
        "encoding one invocation may do (planning)",
        "graph.lambda_budget_seconds",
    ),
    Documented(
        "OE_LAMBDA_USD_PER_SECOND",
        "0.00004896",
        "price of an encode-function second the plan's cost estimate uses",
        "graph.lambda_usd_per_second",
    ),
    Documented(
        "OE_MEMORY_MB",
        "3008",
        "memory a task is billed at in the job's actual cost where no Lambda context gives "
        "the function's own (the local stack, droplets)",
        "graph.memory_mb",
    ),
    Documented(
        "OE_LAMBDA_USD_PER_GB_SECOND",
        "0.0000166667",
        "price of a GB-second the job's actual cost is reckoned at",
        "graph.usd_per_gb_second",
    ),
    Documented(
        "OE_LAMBDA_USD_PER_REQUEST",
        "0.0000002",
        "price of an invocation the job's actual cost is reckoned at",
        "graph.usd_per_request",
    ),
    Documented(
        "OE_DROPLET_USD_PER_HOUR",
        "0.125",
        "price of a droplet hour the plan's cost estimate uses",
        "graph.droplet_usd_per_hour",
    ),
    Documented("OE_TASK_RETRIES", "3", "transient retries of a task", "graph.task_retries"),
    Documented(
        "OE_TASK_LEASE_RECOVERIES",
        "3",
        "recoveries of a task whose host died",
        "graph.task_lease_recoveries",
    ),
    Documented(
        "OE_DROPLET_REGION",
        "nyc3",
        "region of the droplets the reconcile creates",
        "settings.droplet_region",
    ),
    Documented(
        "OE_DROPLET_SIZE",
        "c-4",
        "size of the droplets the reconcile creates",
        "settings.droplet_size",
    ),
    Documented("OE_DROPLET_IMAGE", "ubuntu-24-04-x64", "image of the droplets"),
    Documented("OE_DROPLETS_MIN", "0", "pool lower bound", "settings.droplet_min"),
    Documented("OE_DROPLETS_MAX", "3", "pool upper bound", "settings.droplet_max"),
    Documented("OE_JOBS_PER_DROPLET", "1", "backlog per droplet", "settings.jobs_per_droplet"),
    Documented(
        "OE_DROPLETS_HOURLY_BUDGET",
        "1.0",
        "USD per hour the pool may cost",
        "settings.hourly_budget",
    ),
    Documented(
        "OE_DROPLET_IDLE_GRACE_SECONDS",
        "600",
        "when idle droplets go",
        "settings.idle_grace_seconds",
    ),
    Documented(
        "OE_DROPLET_BOOT_TIMEOUT_SECONDS",
        "900",
        "when droplets whose worker never reported (or went silent) are replaced",
        "settings.boot_timeout_seconds",
    ),
    Documented(
        "OE_WORKER_ROLE_NAME",
        "openencoder-<stage>-worker",
        "the droplets' role",
        "settings.worker_role_name",
    ),
    Documented(
        "OE_WORKER_CREDENTIALS_SECONDS",
        "3600",
        "how long the role's credentials last",
        "settings.worker_credentials_seconds",
    ),
    Documented("OE_WORKER_QUEUE", "long", "the queue a long-queue worker drains"),
    Documented(
        "OE_WORKER_BUNDLE",
        "s3://openencoder-<stage>-input/_openencoder/system/worker.tar.gz",
        "the worker code droplets download (`s3://<input bucket>/...`)",
        "settings.worker_bundle",
    ),
    Documented(
        "OE_API_URL", None, "where droplets reach the API (ending in `/api`)", "settings.api_url"
    ),
    Documented(
        "OE_API_URL_PARAMETER",
        "/openencoder/<stage>/api-url",
        "deploy stores the API's URL in this parameter",
        "settings.api_url_parameter",
    ),
    Documented(
        "OE_DROPLET_METADATA_URL",
        None,
        "where a droplet worker asks its own droplet id",
        "settings.droplet_metadata_url",
        note="(cloud-init sets `http://169.254.169.254/metadata/v1`)",
    ),
    Documented(
        "OE_DROPLET_SECRET_FILE",
        "/etc/openencoder/droplet-secret",
        "on a droplet: its secret",
        "settings.droplet_secret_file",
    ),
    Documented(
        "OE_DROPLET_CREDENTIALS_CACHE",
        "/run/openencoder/credentials.json",
        "on a droplet: the credentials cache",
        "settings.droplet_credentials_cache",
    ),
    Documented(
        "OE_LOG_LEVEL",
        "INFO",
        "the app's log level (`DEBUG` also shows library chatter)",
        "settings.log_level",
    ),
    Documented("OE_LOG_FORMAT", "json", "`text` for readable lines", "settings.log_format"),
    Documented(
        "OE_UPLOAD_SINGLE_MAX",
        "104857600",
        "larger uploads are multipart",
        "settings.upload_single_max",
        note="(100 MiB)",
    ),
    Documented(
        "OE_UPLOAD_PART_SIZE",
        "8388608",
        "multipart part size (at least 5 MiB; grown so no upload has over 1,000 parts)",
        "settings.upload_part_size",
        note="(8 MiB)",
    ),
    Documented(
        "OE_UPLOAD_MAX_BYTES",
        "53687091200",
        "largest upload",
        "settings.upload_max_bytes",
        note="(50 GiB)",
    ),
    Documented(
        "OE_UPLOAD_URL_SECONDS", "3600", "life of upload URLs", "settings.upload_url_seconds"
    ),
    Documented(
        "OE_DOWNLOAD_URL_SECONDS", "3600", "life of download links", "settings.download_url_seconds"
    ),
    Documented(
        "OE_DASHBOARD_ORIGINS",
        None,
        "more browser origins (comma-separated, e.g. a custom domain) the buckets' CORS "
        "rules allow, besides the stage's own API origin",
        "settings.dashboard_origins",
        note="(the local stack sets its own)",
    ),
    Documented(
        "OE_WEBHOOK_QUEUE",
        "openencoder-<stage>-webhooks",
        "the webhooks function's queue (with a `-dlq`)",
        "settings.webhook_queue",
    ),
    Documented(
        "OE_WEBHOOK_BACKOFF_SECONDS",
        "5",
        "retry n waits base x 4^(n-1) (at most 10 h)",
        "settings.webhook_backoff_seconds",
    ),
    Documented(
        "OE_WEBHOOK_MAX_ATTEMPTS",
        "10",
        "then the dead-letter queue",
        "settings.webhook_max_attempts",
    ),
    Documented(
        "OE_WEBHOOK_TIMEOUT_SECONDS", "10", "per attempt", "settings.webhook_timeout_seconds"
    ),
    Documented(
        "OE_WEBHOOK_ALLOW_LOOPBACK",
        "false",
        "also call `http://` loopback receivers",
        "settings.webhook_allow_loopback",
        note="(`true` in the local stack)",
    ),
    Documented(
        "OE_SLACK_URL_PARAMETER",
        "/openencoder/<stage>/slack-webhook-url",
        "SSM SecureString set through `PUT /api/settings`",
        "settings.slack_url_parameter",
    ),
    # The local stack's own (`make run`).
    Documented(
        "OE_STATE_DIR",
        None,
        "state, scratch and `stack.json`",
        "local.state_dir",
        note="(`.local` in the checkout)",
        group="local",
    ),
    Documented(
        "OE_STATE_SAVE_SECONDS",
        "60",
        "periodic save (0 saves only at stop)",
        "local.save_seconds",
        group="local",
    ),
    Documented(
        "OE_LOCAL_CONCURRENCY",
        None,
        "invocations of each handler at once",
        note="(the CPU count)",
        group="local",
    ),
    Documented(
        "OE_LOCAL_AWS_ENDPOINT",
        None,
        "the stack's clients use this endpoint instead of the one it starts, e.g. a "
        "fault-injecting proxy in tests",
        "local.aws_endpoint",
        group="local",
    ),
    Documented(
        "OE_SCHEDULE_SECONDS",
        None,
        "tick schedules this often instead of their rate",
        "local.schedule_seconds",
        group="local",
    ),
    # The command line's (`openencoder`).
    Documented("OE_API", None, "the API the CLI talks to (`--api` wins)", group="cli"),
    Documented("OE_TOKEN", None, "a token the CLI sends instead of the saved one", group="cli"),
    Documented("OE_USERNAME", None, "`openencoder login`'s username", group="cli"),
    Documented("OE_PASSWORD", None, "`openencoder login`'s password", group="cli"),
    Documented("OE_NEW_PASSWORD", None, "`openencoder password`'s new password", group="cli"),
    Documented("OE_DEBUG", None, "the CLI prints a traceback on an unexpected error", group="cli"),
)
