"""A long ladder packaged one rendition per task, then assembled from what they made.

- A package task (one per rendition, released together by the work's fan-in) downloads its
  rendition's chunks (all at once), joins them by stream copy, muxes the progressive MP4
  with the job's audio and cuts the CMAF segments and the rendition's playlist. Its files
  go to the attempt's workspace under `packaged/`, with a description (the variant the
  manifests need, the output records, the file names) in `packaged/<rendition>.json`.
  Each rendition thus has its own invocation's CPU and network, not a share of one.
- The assemble (released by the last package) packages the audio, writes the manifests,
  gathers thumbnails and quality, and publishes: the packaged files are copied inside S3
  (no byte through the invocation), the rest uploaded; playlists and manifests last.

Only the assemble writes into dest, under the same attempt and lease checks as before: a
package task of a stale attempt writes nothing but its own attempt's workspace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.graph import build
from chalicelib.graph.audio import joined as joined_audio
from chalicelib.graph.kinds import TaskMedia
from chalicelib.graph.plan import Kind, Plan, TaskSpec, encode_task_id
from chalicelib.graph.run_record import Stops
from chalicelib.graph.workspace import Workspace
from chalicelib.jobs import task_lifecycle
from chalicelib.jobs.outputs import record_versions
from chalicelib.jobs.task_lifecycle import TaskStatus
from chalicelib.media import manifests, quality, steps
from chalicelib.media.steps import MediaFailed
from chalicelib.store import storage, transfers

PACKAGED = "packaged/"


def package_ids(plan: Plan) -> tuple[str, ...]:
    """The plan's package tasks: the work releases them; the last one, the assemble."""
    return tuple(t.id for t in plan.tasks if t.kind is Kind.PACKAGE)


def release(
    job_id: int, attempt: int, by: str, packages: tuple[str, ...], *, again: bool,
    retry: Callable[[str, Callable[[], bool]], bool], send: Callable[[str], None],
) -> None:  # fmt: skip
    """The work done: each rendition's package released once, and its message sent.

    `again` (the finisher's message delivered once more): a package it released but perhaps
    never sent is sent again; a duplicate message is harmless (the claim is conditional).
    """
    for task_id in packages:
        released = retry(
            f"releasing {task_id}",
            lambda t=task_id: task_lifecycle.release(job_id, attempt, t, by=by),
        )
        if not released and again:
            item = task_lifecycle.task(job_id, attempt, task_id)
            released = item is not None and item.status == TaskStatus.QUEUED.value
            released = released and item is not None and item.released_by in (None, by)
        if released:
            send(task_id)


def _audio(media: TaskMedia) -> Path | None:
    """The job's audio track: its one task's, or its pieces joined (chalicelib.graph.audio)."""
    if not any(t.kind is Kind.AUDIO for t in media.graph.plan.tasks):
        return None
    return joined_audio(media.graph.plan, media.scratch, media.run, media.fetch)


def package(media: TaskMedia, spec: TaskSpec, dest: storage.S3Location) -> list[str]:
    """One rendition joined, muxed and packaged into the workspace; its description's name."""
    graph, scratch = media.graph, media.scratch
    video = graph.video(spec.rendition)
    assert graph.plan.fps is not None and graph.recipe.ladder is not None
    parts = [
        (f"out/{encode_task_id(c.index, video.name)}.mp4", scratch.path / f"{c.index:04d}.mp4")
        for c in graph.plan.chunks
    ]
    transfers.all_at_once(parts, lambda pair: media.fetch(*pair))
    audio = _audio(media)
    joined = steps.join([path for _, path in parts], scratch.path / "joined.mp4", media.run)
    out = scratch.out
    variant = steps.package_rendition(
        video, joined, audio, graph.recipe, graph.plan.fps, out, media.run
    )
    if "hls" not in graph.recipe.ladder.packaging:  # read for the variant; never published
        (out / video.name / "index.m3u8").unlink(missing_ok=True)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = [p.relative_to(out).as_posix() for p in files]
    records = build.describe_outputs(
        [
            (p, storage.S3Location(dest.bucket, dest.key + n))
            for p, n in zip(files, names, strict=True)
        ]
    )
    transfers.all_at_once(list(zip(files, names, strict=True)),
                          lambda pair: media.store(pair[0], PACKAGED + pair[1]))  # fmt: skip
    description = {
        "variant": manifests.variant_record(variant) if variant is not None else None,
        "records": records,
        "files": names,
    }
    path = scratch.path / f"{video.name}.json"
    path.write_text(json.dumps(description, separators=(",", ":")))
    return [media.store(path, f"{PACKAGED}{video.name}.json")]


@dataclass
class Packaged:
    """What the package tasks made: files to copy into dest, and their output records."""

    copies: list[tuple[str, storage.S3Location]] = field(default_factory=list)  # name, source
    records: list[dict[str, Any]] = field(default_factory=list)


def assemble(media: TaskMedia, publish: Path, workspace: Workspace) -> Packaged:
    """The audio packaged and the manifests written into `publish` over the renditions the
    package tasks made; thumbnails and quality gathered as in a one-task assemble."""
    graph, scratch = media.graph, media.scratch
    assert graph.plan.fps is not None
    names = [(f"{PACKAGED}{v.name}.json", scratch.path / "packaged" / f"{v.name}.json")
             for v in graph.recipe.videos]  # fmt: skip
    transfers.all_at_once(names, lambda pair: media.fetch(*pair))
    packaged, variants = Packaged(), []
    for _, path in names:
        description = json.loads(path.read_text())
        if description["variant"] is not None:
            variants.append(manifests.variant_of(description["variant"]))
        packaged.records += description["records"]
        packaged.copies += [
            (name, storage.S3Location(workspace.bucket, workspace.key(PACKAGED + name)))
            for name in description["files"]
        ]
    audio = _audio(media)
    audio_variant = None
    if audio is not None and variants:
        audio_variant = steps.package_audio(audio, graph.recipe, graph.plan.fps, publish, media.run)
    if variants:
        steps.write_manifests(variants, audio_variant, graph.recipe, publish)
    if graph.metrics():
        media.gather_quality(publish)
    media.pictures(publish)
    return packaged


def publish(
    folder: Path,
    dest_uri: str,
    packaged: Packaged | None,
    qualities: dict[str, dict[str, Any]],
    *,
    writer: storage.Writer,
    stops: Stops,
    transfer: Callable[[str, Callable[[], Any]], Any],
    uploaded: list[storage.S3Location],
) -> list[dict[str, Any]]:
    """Every file of `folder` uploaded, every packaged file copied, into dest: stamped with
    the attempt, each key checked before any byte, several at once, and the playlists and
    manifests only after everything they name. `uploaded` collects what a failure removes."""
    dest = storage.from_uri(dest_uri)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise MediaFailed("the assemble made no output files")
    pairs = [
        (p, storage.S3Location(dest.bucket, dest.key + p.relative_to(folder).as_posix()))
        for p in files
    ]
    items: list[tuple[str, tuple[Path | storage.S3Location, storage.S3Location]]]
    items = [(p.relative_to(folder).as_posix(), (p, location)) for p, location in pairs]
    items += [(name, (source, storage.S3Location(dest.bucket, dest.key + name)))
              for name, source in (packaged.copies if packaged else [])]  # fmt: skip
    for _, (_, location) in items:
        storage.check_output(location)

    def send(item: tuple[Path | storage.S3Location, storage.S3Location]) -> None:
        source, location = item
        stops.check()
        uploaded.append(location)
        if isinstance(source, Path):  # made by the assemble; else by a package task
            transfer(f"uploading {location.uri}",
                     lambda: storage.upload(source, location, writer, stops.wanted))  # fmt: skip
        else:
            transfer(f"copying {source.uri} to {location.uri}",
                     lambda: transfers.copy(source, location, writer, stops.wanted))  # fmt: skip

    transfers.publish(items, send)
    records = build.describe_outputs(pairs) + (packaged.records if packaged else [])
    if qualities:
        quality.attach(records, qualities)
    return record_versions(records, writer, transfer)
