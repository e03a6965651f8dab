"""`--download DIR`: every object of a job's outputs, laid out in DIR as under its dest, so
an HLS or DASH package plays from disk (playlists, manifests, init segments, segments,
thumbnails, MP4s).

The objects come from `GET /api/jobs/:id/files` (a link, size and ETag each) and are
fetched a few at a time under one progress bar. Each is written to a hidden temporary
name beside its target and renamed into place only once its size is checked, so a file
with the real name is always whole. What was saved is noted, as it is saved, in a ledger
in DIR (one JSON line per file: name, size, ETag, mtime), so running the download again
skips every file already there with the same size and ETag: an interrupted download
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import requests
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from openencoder_cli import output
from openencoder_cli.client import Api, CliError
from openencoder_cli.transfer import TRANSFER_TIMEOUT, TransferFailed

PARALLEL = 8  # files fetched at once: enough to hide per-request latency of small segments
ATTEMPTS = 3  # a dropped connection or a short body is fetched again, from the start
BLOCK = 256 * 1024
LEDGER = ".openencoder-downloads.jsonl"
RESUME = "the files saved so far are kept: run the same command again to resume"


def safe_name(name: str, fallback: str = "output") -> PurePosixPath:
    """`name` with no empty, `.` or `..` parts: it never leaves the folder it is joined to."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "..", "/")]
    return PurePosixPath(*parts) if parts else PurePosixPath(fallback or "output")


@dataclass(frozen=True)
class Remote:
    """One object to fetch: where it goes under the folder, and what it must be."""

    name: PurePosixPath
    size: int
    etag: str
    url: str


def listing(api: Api, job: dict[str, Any], only: Iterable[str] = ()) -> list[Remote]:
    """Every object of the job's outputs (or of the outputs named in `only`), page by page."""
    wanted = list(dict.fromkeys(only)) or [None]
    found: dict[PurePosixPath, Remote] = {}
    for name in wanted:
        cursor = None
        while True:
            params = {k: v for k, v in (("output", name), ("cursor", cursor)) if v}
            page = api.get(f"/jobs/{job['id']}/files", params=params)
            for item in page.get("items") or []:
                path = safe_name(item.get("name") or "", item["key"].rsplit("/", 1)[-1])
                found[path] = Remote(path, int(item["size"]), str(item.get("etag") or ""),
                                     item["url"])  # fmt: skip
            cursor = page.get("next")
            if not cursor:
                break
    return list(found.values())


class Ledger:
    """What earlier downloads saved into a folder, appended to as each file is saved."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER
        self.lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        with suppress(OSError):
            for line in self.path.read_text().splitlines():
                with suppress(ValueError, TypeError, KeyError):  # a line cut by a crash
                    entry = json.loads(line)
                    self.entries[entry["name"]] = entry

    def note(self, remote: Remote, target: Path) -> None:
        entry = {"name": str(remote.name), "size": remote.size, "etag": remote.etag,
                 "mtime_ns": target.stat().st_mtime_ns}  # fmt: skip
        with self.lock, self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.entries[entry["name"]] = entry

    def has(self, remote: Remote, target: Path) -> bool:
        """Whether `target` is already `remote`: same size and ETag (as saved, or as hashed)."""
        try:
            stat = target.stat()
        except OSError:
            return False
        if stat.st_size != remote.size:
            return False
        entry = self.entries.get(str(remote.name)) or {}
        if (entry.get("etag"), entry.get("size"), entry.get("mtime_ns")) == (
            remote.etag, remote.size, stat.st_mtime_ns
        ):  # fmt: skip
            return True
        # Not saved by us (or touched since): a single-part upload's ETag is its MD5.
        if remote.etag and "-" not in remote.etag and _md5(target) == remote.etag:
            self.note(remote, target)
            return True
        return False


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class LinkRefused(TransferFailed):
    """Storage refused a link (4xx): it expired during a long download, most likely."""


class _Short(Exception):
    """The body ended before the object's size (a dropped connection)."""


class Fetcher:
    """Fetches objects into one folder, a few at once, reporting bytes to one bar."""

    def __init__(self, folder: Path, bars: Progress, task: Any) -> None:
        self.folder, self.bars, self.task = folder, bars, task
        self.stop = threading.Event()
        self.local = threading.local()  # a requests session per thread (they are not shared)

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def fetch(self, remote: Remote) -> Path:
        target = self.folder.joinpath(*remote.name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Hidden and beside the target: a player or a glob never takes it for the file.
        partial = target.with_name(f".{target.name}.part")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._get(remote, partial)
                os.replace(partial, target)
                return target
            except (requests.RequestException, _Short) as exc:
                if attempt == ATTEMPTS:
                    raise TransferFailed(f"downloading {remote.name} failed: {exc}") from None
            finally:
                with suppress(OSError):
                    partial.unlink()
        raise AssertionError("unreachable")

    def _get(self, remote: Remote, partial: Path) -> None:
        """Write the object to `partial`, checked against its size; a failed attempt's bytes
        are taken off the bar again (the next attempt counts them)."""
        written = 0
        with self.session().get(remote.url, stream=True, timeout=TRANSFER_TIMEOUT) as response:
            if response.status_code >= 500:
                raise _Short(f"storage answered HTTP {response.status_code}")
            if response.status_code >= 300:
                raise LinkRefused(
                    f"downloading {remote.name} failed (HTTP {response.status_code}): the link "
                    "may have expired"
                )
            with partial.open("wb") as handle:
                try:
                    for block in response.iter_content(chunk_size=BLOCK):
                        if self.stop.is_set():
                            raise TransferFailed("download stopped")
                        handle.write(block)
                        written += len(block)
                        self.bars.advance(self.task, len(block))
                except BaseException:
                    self.bars.advance(self.task, -written)
                    raise
        if written != remote.size:
            self.bars.advance(self.task, -written)
            raise _Short(f"got {written} of {remote.size} bytes")


def download_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[files]}"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=output.err,
    )


@dataclass
class Saved:
    """What one download did: files fetched now, files already there, and bytes."""

    fetched: list[Path]
    kept: list[Path]
    size: int

    def describe(self, folder: Path) -> str:
        total = len(self.fetched) + len(self.kept)
        text = f"saved {total} files ({output.size(self.size)}) in {folder}"
        return text + (f"; {len(self.kept)} were there already" if self.kept else "")


def save(api: Api, job: dict[str, Any], folder: Path, only: Iterable[str] = ()) -> Saved:
    """Download every object of a job's outputs (or of `only`) into `folder`.

    Links last an hour (OE_DOWNLOAD_URL_SECONDS): when storage refuses one, the objects
    are listed again, with fresh links, and what is not there yet is fetched with those.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(folder)
    fetched: list[Path] = []
    for relist in range(2):
        remotes = listing(api, job, only)
        if not remotes:
            raise CliError(f"job {job['id']} has no outputs to download")
        target = {r.name: folder.joinpath(*r.name.parts) for r in remotes}
        there = {r.name for r in remotes if ledger.has(r, target[r.name])}
        todo = [r for r in remotes if r.name not in there]
        try:
            _fetch_all(job, folder, ledger, remotes, todo, fetched)
        except LinkRefused as exc:
            if relist:
                raise LinkRefused(f"{exc.message}; {RESUME}") from None
            continue
        now = set(fetched)
        kept = [target[r.name] for r in remotes if r.name in there and target[r.name] not in now]
        return Saved(fetched, kept, sum(r.size for r in remotes))
    raise AssertionError("unreachable")


def _fetch_all(job: dict[str, Any], folder: Path, ledger: Ledger, remotes: list[Remote],
               todo: list[Remote], fetched: list[Path]) -> None:  # fmt: skip
    """Fetch `todo` (of `remotes`, the rest being there already) under one bar, adding
    each file to `fetched` as it is saved."""
    total = sum(r.size for r in remotes)
    pending = {r.name for r in todo}
    counted = [len(remotes) - len(todo)]
    with download_bar() as bars:
        task = bars.add_task(
            f"download job {job['id']}", total=total,
            completed=sum(r.size for r in remotes if r.name not in pending),
            files=f"{counted[0]}/{len(remotes)} files",
        )  # fmt: skip
        fetcher = Fetcher(folder, bars, task)

        def one(remote: Remote) -> None:
            path = fetcher.fetch(remote)
            ledger.note(remote, path)
            with ledger.lock:
                counted[0] += 1
                fetched.append(path)
                bars.update(task, files=f"{counted[0]}/{len(remotes)} files")

        pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="download")
        futures = [pool.submit(one, r) for r in todo]
        try:
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()  # the first failure, raised here
        except LinkRefused:
            raise  # listed again with fresh links by the caller (once)
        except TransferFailed as exc:
            raise TransferFailed(f"{exc.message}; {RESUME}") from None
        except KeyboardInterrupt:
            output.err.print(f"download stopped; {RESUME}")
            raise
        finally:
            # A failure or Ctrl-C: files not started are dropped, those in flight stop at
            # their next block and remove their temporary file; finished ones stay noted.
            fetcher.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
