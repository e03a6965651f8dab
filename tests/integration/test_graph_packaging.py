"""A long ladder packaged one rendition per task (moto, real ffmpeg): the work's fan-in
releases every package at once, the last package releases the assemble, which copies
their files into dest and writes the manifests last; the outputs are byte for byte those
of the one-task assemble."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import boto3
import pytest

from chalicelib.config import settings
from chalicelib.graph.workspace import Workspace
from chalicelib.jobs import records as jobs
from chalicelib.media import manifests, steps
from chalicelib.presets import catalog as presets
from chalicelib.presets.ladder import Ladder
from chalicelib.presets.recipe import ladder_recipe
from chalicelib.store import storage
from chalicelib.store.models import Job
from tests.conftest import ADMIN
from tests.integration.test_graph import FRAMES, Drain, decodes, ended, named_by, upload
from tests.media import generate

pytestmark = pytest.mark.slow
LADDER = {"ladder": {
    "video": {"codec": "h264", "preset": "ultrafast"},
    "renditions": [{"height": 360, "bitrate": "600k", "profile": "main"},
                   {"height": 240, "bitrate": "300k", "profile": "baseline"}],
    "audio": {"codec": "aac", "bitrate": "96k", "channels": 2},
    "segment_seconds": 2, "packaging": ["hls", "dash", "mp4"]}}  # fmt: skip


def run_job(source: str, dest: str) -> Job:
    job = jobs.create_job(owner=ADMIN[0], preset="two_rungs_hls", source=source, dest=dest)
    Drain().until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    return stored


def published(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings().output_bucket,
                                                         Prefix=prefix)  # fmt: skip
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {
        k.removeprefix(prefix): s3.get_object(Bucket=settings().output_bucket, Key=k)["Body"].read()
        for k in keys
    }


def test_each_rendition_is_packaged_by_its_own_task_and_the_outputs_match_one_assemble(
    aws, chunky, mezzanine, monkeypatch, tmp_path
):
    presets.create_preset(presets.PresetInput(name="two_rungs_hls", data=json.dumps(LADDER),
                                              output="master.m3u8"))  # fmt: skip
    source = upload(mezzanine)
    alone = run_job(source, "s3:///one/")  # a 7.2 s source: one assemble does it all
    assert not [t for t in jobs.task_views(alone) if t["kind"] == "package"]

    # Every playlist and manifest finds what it names already published when it is sent.
    unpublished: list[str] = []
    send, copy = storage.upload, storage.s3

    def watched(path: Path, location: storage.S3Location, *args, **kwargs) -> None:
        if path.suffix in (".m3u8", ".mpd", ".vtt"):
            folder = location.key.rsplit("/", 1)[0]
            for name in named_by(path):
                if storage.head(storage.S3Location(location.bucket, f"{folder}/{name}")) is None:
                    unpublished.append(f"{location.key} -> {name}")
        send(path, location, *args, **kwargs)

    monkeypatch.setattr(storage, "upload", watched)
    monkeypatch.setenv("OE_PACKAGE_MIN_SECONDS", "0")
    job = run_job(source, "s3:///split/")
    assert not unpublished and copy is storage.s3
    tasks = {t["id"]: t for t in jobs.task_views(job)}
    packages = [tasks["package-360p"], tasks["package-240p"]]
    work = [t for t in tasks.values() if t["kind"] in ("encode", "audio", "thumbnails")]
    assert all(t["status"] == "done" for t in tasks.values())
    # Released together once all the work was done; the assemble once both had finished.
    assert max(t["finished"] for t in work) <= min(t["started"] for t in packages)
    assert max(t["finished"] for t in packages) <= tasks["assemble"]["started"]
    assert int(job.tasks_done) == int(job.tasks_total) == len(tasks)

    one, split = published("one/"), published("split/")
    assert sorted(split) == sorted(one)
    assert {"master.m3u8", "manifest.mpd", "360p/index.m3u8", "240p/index.m3u8",
            "audio/index.m3u8", "360p.mp4", "240p.mp4"} <= set(split)  # fmt: skip
    # The same segments, cut at the same times (the encodes themselves vary run to run in
    # their bytes; the packaging of the same bytes is compared below).
    assert all(split[k] == one[k] for k in one if k.endswith("/index.m3u8"))
    for name, body in split.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(body)
    assert decodes(tmp_path / "master.m3u8", "0:v:0") == FRAMES
    assert decodes(tmp_path / "manifest.mpd", "0:a:0") != 0
    # The same records as the one-task assemble (a folder of segments each), and the
    # packaged intermediates went with the workspace.
    shape = lambda j: sorted((o["key"].split("/", 1)[1], o["kind"]) for o in j.outputs)  # noqa: E731
    assert shape(job) == shape(alone)
    assert Workspace(int(job.id), int(job.attempt)).names() == []


def test_packaging_each_rendition_alone_makes_the_very_files_of_packaging_them_together(tmp_path):
    recipe = ladder_recipe(Ladder.model_validate(LADDER["ladder"]), 360, Fraction(30))
    videos = []
    for video in recipe.videos:
        path = tmp_path / f"{video.name}-in.mp4"
        generate(path, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "7",
                 "-vf", ",".join(video.filters), *video.args, "-an")  # fmt: skip
        videos.append((video, path))
    audio = generate(tmp_path / "a.m4a", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                     "-t", "7", "-c:a", "aac")  # fmt: skip
    together, alone = tmp_path / "together", tmp_path / "alone"
    steps.assemble_ladder(videos, audio, recipe, Fraction(30), together, steps.local_run)
    variants = [steps.package_rendition(v, p, audio, recipe, Fraction(30), alone, steps.local_run)
                for v, p in videos]  # fmt: skip
    variants = [manifests.variant_of(json.loads(json.dumps(manifests.variant_record(v))))
                for v in variants if v is not None]  # fmt: skip
    sound = steps.package_audio(audio, recipe, Fraction(30), alone, steps.local_run)
    steps.write_manifests(variants, sound, recipe, alone)
    files = lambda root: {p.relative_to(root).as_posix(): p.read_bytes()  # noqa: E731
                          for p in root.rglob("*") if p.is_file()}  # fmt: skip
    made, expected = files(alone), files(together)
    assert sorted(made) == sorted(expected) and len(made) > 10
    assert [name for name in expected if made[name] != expected[name]] == []
