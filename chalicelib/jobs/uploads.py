"""Direct uploads: presigned PUT or multipart URLs into the input bucket, checked on completion.

The bytes never pass through the API. A client declares the file (name, size,
content type) and PUTs it to the URLs it is given; once complete, the upload is a job
source (`"upload:<id>"`). A single PUT completes itself: S3's ObjectCreated event on
the key completes it (`handle_event`), and so does a job made from it while it is
still pending (a HEAD, for a race with the event or a stack with no events).
`POST .../complete` stays and is idempotent; a multipart upload needs it, with the
part list S3 assembles. Keys are `uploads/<username>/<id>/<filename>`, outside the
watch prefix, so an upload never starts a drop job by itself. Each URL is signed for
the declared content type and exact length, so S3 refuses other bytes; the local
emulator does not check signatures, so completion checks size and type again and
removes an object that does not match (the upload is then refused, with the reason).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from pynamodb.exceptions import UpdateError

from chalicelib.accounts.auth import Principal
from chalicelib.config import settings
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.store import storage
from chalicelib.store.models import Upload, rfc3339, utcnow

log = logging.getLogger("openencoder.uploads")

PREFIX = "uploads/"
SOURCE_SCHEME = "upload:"
PENDING, COMPLETE, ABORTED = "pending", "complete", "aborted"
MAX_PARTS = 1000  # keeps the answer (one URL per part) well under Lambda's 6 MB
MAX_FILENAME_BYTES = 255
_CONTENT_TYPE = re.compile(r"^(video|audio)/[a-z0-9][a-z0-9.+-]{0,80}$|^application/octet-stream$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_filename(filename: str) -> str:
    name = filename.strip()
    if not name or name in (".", "..") or _UNSAFE_NAME.search(name):
        raise InvalidInput(
            "filename must be a plain file name: no slashes, backslashes or control characters"
        )
    if len(name.encode()) > MAX_FILENAME_BYTES:
        raise InvalidInput(f"filename is longer than {MAX_FILENAME_BYTES} bytes")
    return name


def check_content_type(content_type: str) -> str:
    value = content_type.strip().lower()
    if not _CONTENT_TYPE.match(value):
        raise InvalidInput(
            "content_type must be a video/* or audio/* type, or application/octet-stream"
        )
    return value


def part_size_for(size: int) -> int:
    """The configured part size, grown in whole MiB so no upload needs more than MAX_PARTS."""
    mib = 1024 * 1024
    needed = math.ceil(size / MAX_PARTS / mib) * mib
    return max(settings().upload_part_size, needed)


def _new_id() -> str:
    from chalicelib.store.ids import new_guid

    return new_guid()


def create(owner: str, filename: str, size: int, content_type: str) -> tuple[Upload, dict]:
    """Record the upload and return it with where to send the bytes."""
    s = settings()
    filename = check_filename(filename)
    content_type = check_content_type(content_type)
    if not 1 <= size <= s.upload_max_bytes:
        raise InvalidInput(f"size must be 1 to {s.upload_max_bytes} bytes")
    upload_id = _new_id()
    key = f"{PREFIX}{owner}/{upload_id}/{filename}"
    seconds = s.upload_url_seconds
    url_expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    upload = Upload(
        upload_id,
        owner=owner,
        bucket=s.input_bucket,
        key=key,
        filename=filename,
        size=size,
        content_type=content_type,
        url_expires=url_expires,
        expires=url_expires + timedelta(days=1),
    )
    where: dict[str, Any]
    if size <= s.upload_single_max:
        upload.method = "PUT"
        # Signed: S3 refuses a PUT of any other length or type (moto does not check: see complete).
        params = {"Bucket": upload.bucket, "Key": key, "ContentType": content_type,
                  "ContentLength": size}  # fmt: skip
        where = {
            "url": storage.presign("put_object", params, seconds),
            "headers": {"Content-Type": content_type},
        }
    else:
        upload.method = "multipart"
        part_size = part_size_for(size)
        count = math.ceil(size / part_size)
        started = storage.s3().create_multipart_upload(
            Bucket=upload.bucket, Key=key, ContentType=content_type
        )
        upload.multipart_id = started["UploadId"]
        upload.part_size, upload.part_count = part_size, count
        base = {"Bucket": upload.bucket, "Key": key, "UploadId": upload.multipart_id}
        # Each part URL is signed for that part's exact length (the last one is shorter).
        urls = []
        for n in range(1, count + 1):
            length = min(part_size, size - (n - 1) * part_size)
            params = {**base, "PartNumber": n, "ContentLength": length}
            urls.append(storage.presign("upload_part", params, seconds))
        where = {
            "part_size": part_size,
            "parts": [{"part_number": n, "url": url} for n, url in enumerate(urls, start=1)],
        }
    upload.save(condition=Upload.id.does_not_exist())
    return upload, where


def get(upload_id: str, principal: Principal) -> Upload:
    """An upload its owner (or an admin) may see; anyone else gets the same 404 as for none."""
    if not re.fullmatch(r"[0-9a-v]{20}", upload_id or ""):
        raise NotFound(f"no upload {upload_id!r}")
    try:
        upload = Upload.get(upload_id, consistent_read=True)
    except Upload.DoesNotExist:
        raise NotFound(f"no upload {upload_id!r}") from None
    if upload.owner != principal.username and not principal.can("admin"):
        raise NotFound(f"no upload {upload_id!r}")
    return upload


def _set_status(upload: Upload, status: str, **fields: str) -> Upload:
    """Move a pending upload on; the loser of a race (event, job, complete) reads the winner's."""
    actions = [
        Upload.status.set(status),
        Upload.updated.set(utcnow()),
        Upload.expires.remove(),  # the record now names an object: keep it
        *(getattr(Upload, name).set(value) for name, value in fields.items()),
    ]
    try:
        upload.update(actions=actions, condition=Upload.status == PENDING)
    except UpdateError as exc:
        if "ConditionalCheckFailed" not in str(getattr(exc, "cause_response_code", "") or exc):
            raise
        current = Upload.get(upload.id, consistent_read=True)
        if current.status != status:
            raise Conflict(f"upload {upload.id} is already {current.status}") from None
        return current
    return upload


def _head(upload: Upload) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return storage.s3().head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _mismatch(upload: Upload, head: dict[str, Any]) -> str | None:
    """What about the object is not what the client declared, or None."""
    size, content_type = int(head["ContentLength"]), head.get("ContentType", "")
    if size != int(upload.size):
        return f"{size} bytes arrived but {int(upload.size)} were declared"
    if content_type.lower() != upload.content_type:
        return f"sent as {content_type!r} but declared {upload.content_type!r}"
    return None


def _settle(upload: Upload, head: dict[str, Any]) -> tuple[Upload, str | None]:
    """Complete a pending upload from its object's HEAD, or refuse it; the reason if refused.

    A refused upload's object is removed, so nothing else can read bytes nobody declared.
    """
    reason = _mismatch(upload, head)
    if reason is None:
        etag = str(head.get("ETag", "")).strip('"')
        return _set_status(upload, COMPLETE, etag=etag), None
    # Refused first, then removed: a job made in between sees the refusal (a 409), never a
    # pending upload whose object is gone. The loser of a race with a completion removes nothing.
    refused = _set_status(upload, ABORTED, refused=reason)
    storage.delete([storage.S3Location(upload.bucket, upload.key)])
    return refused, reason


def _refused(upload: Upload) -> Conflict:
    if upload.refused:
        return Conflict(
            f"upload {upload.id} was refused: {upload.refused}; the upload was removed: "
            "start a new one"
        )
    return Conflict(f"upload {upload.id} was aborted: start a new one")


def _parse_parts(upload: Upload, parts: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not parts:
        raise InvalidInput("parts are required for a multipart upload: [{part_number, etag}]")
    numbers = sorted(int(p["part_number"]) for p in parts)
    if numbers != list(range(1, int(upload.part_count) + 1)):
        raise InvalidInput(
            f"parts must be numbered 1 to {int(upload.part_count)}, each once (got {numbers})"
        )
    return [
        {"PartNumber": int(p["part_number"]), "ETag": str(p["etag"])}
        for p in sorted(parts, key=lambda p: int(p["part_number"]))
    ]


def complete(upload: Upload, parts: list[dict[str, Any]] | None) -> Upload:
    """Finish the upload and check the object is what the client declared; idempotent."""
    from botocore.exceptions import ClientError

    if upload.status == COMPLETE:
        return upload  # a retry, or the S3 event (or a job) completed it first
    if upload.status != PENDING:
        raise Conflict(f"upload {upload.id} is already {upload.status}")
    s3 = storage.s3()
    if upload.method == "multipart":
        listed = _parse_parts(upload, parts)
        try:
            s3.complete_multipart_upload(
                Bucket=upload.bucket,
                Key=upload.key,
                UploadId=upload.multipart_id,
                MultipartUpload={"Parts": listed},
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "NoSuchUpload":
                current = Upload.get(upload.id, consistent_read=True)
                if current.status == COMPLETE:
                    return current  # a retry of a call whose answer was lost
                raise Conflict(f"upload {upload.id} was aborted or has expired") from None
            raise InvalidInput(
                f"S3 refused to assemble the parts ({code}): check every part was sent "
                "and each etag is the ETag header its PUT answered"
            ) from None
    head = _head(upload)
    if head is None:
        raise InvalidInput(
            f"nothing was uploaded yet: PUT the file to the upload's url, then complete {upload.id}"
        )
    settled, reason = _settle(upload, head)
    if reason is not None:
        raise InvalidInput(f"{reason}; the upload was removed: start a new one")
    return Upload.get(settled.id, consistent_read=True)


def handle_record(record: dict[str, Any]) -> str | None:
    """Complete the single upload an S3 ObjectCreated record names; its status, or None.

    Records of other keys, of multipart uploads (their complete call has the part list)
    and of uploads no longer pending change nothing, so a redelivered event is harmless.
    """
    s3 = record.get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name", "")
    key = unquote_plus((s3.get("object") or {}).get("key", ""))
    parts = key.split("/")
    if not key.startswith(PREFIX) or len(parts) < 4 or not re.fullmatch(r"[0-9a-v]{20}", parts[2]):
        return None
    try:
        upload = Upload.get(parts[2], consistent_read=True)
    except Upload.DoesNotExist:
        return None
    if (upload.bucket, upload.key) != (bucket, key) or upload.method == "multipart":
        return None
    if upload.status != PENDING:
        return upload.status
    head = _head(upload)
    if head is None:
        return None  # removed since (aborted): nothing to complete
    try:
        settled, reason = _settle(upload, head)
    except Conflict:
        return Upload.get(upload.id, consistent_read=True).status  # aborted meanwhile
    if reason is not None:
        log.warning("upload %s refused: %s", upload.id, reason, extra={"upload_id": upload.id})
    else:
        log.info("upload %s completed by its S3 event", upload.id, extra={"upload_id": upload.id})
    return str(settled.status)


def handle_event(event: dict[str, Any]) -> list[str | None]:
    return [handle_record(record) for record in event.get("Records", [])]


def abort(upload: Upload) -> Upload:
    from botocore.exceptions import ClientError

    if upload.status != PENDING:
        raise Conflict(f"upload {upload.id} is already {upload.status}: only a pending one aborts")
    s3 = storage.s3()
    if upload.method == "multipart":
        try:
            s3.abort_multipart_upload(
                Bucket=upload.bucket, Key=upload.key, UploadId=upload.multipart_id
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchUpload":
                raise
    storage.delete([storage.S3Location(upload.bucket, upload.key)])  # a single PUT may have landed
    _set_status(upload, ABORTED)
    return Upload.get(upload.id, consistent_read=True)


def resolve_source(source: str, owner: str, *, is_admin: bool = False) -> str:
    """`upload:<id>` → the uploaded object's s3:// URI; any other source is returned as is.

    A single upload still pending (its S3 event not handled yet, or a stack with none)
    is checked with a HEAD and completed now; one whose bytes are not what was declared
    is refused (409), as the event would.
    """
    if not isinstance(source, str) or not source.startswith(SOURCE_SCHEME):
        return source
    upload_id = source[len(SOURCE_SCHEME) :].strip()
    try:
        upload = get(upload_id, Principal(username=owner, role="admin" if is_admin else "guest"))
    except NotFound:
        raise InvalidInput(f"no upload {upload_id!r} of yours: check the id") from None
    if upload.status == PENDING and upload.method != "multipart":
        head = _head(upload)
        if head is None:
            raise InvalidInput(
                f"upload {upload_id} has no bytes yet: PUT the file to its url first (it then "
                f"completes by itself, or POST /api/uploads/{upload_id}/complete)"
            )
        try:
            upload, _reason = _settle(upload, head)
        except Conflict:
            upload = Upload.get(upload.id, consistent_read=True)  # aborted meanwhile
    if upload.status == ABORTED:
        raise _refused(upload)
    if upload.status != COMPLETE:
        raise InvalidInput(
            f"upload {upload_id} is {upload.status}: "
            f"POST /api/uploads/{upload_id}/complete with its parts before using it as a source"
        )
    return storage.S3Location(upload.bucket, upload.key).uri


def public_view(upload: Upload) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": upload.id,
        "key": upload.key,
        "bucket": upload.bucket,
        "source": f"{SOURCE_SCHEME}{upload.id}",
        "status": upload.status,
        "filename": upload.filename,
        "size": int(upload.size),
        "content_type": upload.content_type,
        "method": upload.method,
        "expires": rfc3339(upload.url_expires),
        "owner": upload.owner,
        "created": rfc3339(upload.created),
    }
    if upload.etag:
        view["etag"] = upload.etag
    if upload.refused:
        view["refused"] = upload.refused
    if upload.method == "multipart":
        view["part_size"] = int(upload.part_size)
        view["part_count"] = int(upload.part_count)
    return view
