"""A ladder job whose audio is encoded in pieces (moto's AWS, real ffmpeg): the plan lists
them, the fan-in counts them, a killed piece is tried again on its own, the MP4, HLS and
DASH outputs carry one gapless track as long as one encode of the whole, a restart does it
all again, and a cancel stops a running piece."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chalicelib.graph import audio_cuts
from chalicelib.graph.runner import TaskRun
from chalicelib.graph.workspace import Workspace
from chalicelib.jobs import records as jobs
from chalicelib.jobs import task_lifecycle
from chalicelib.jobs.task_lifecycle import TaskStatus
from chalicelib.media import steps
from chalicelib.media.ffmpeg_process import FfmpegProcess
from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets import catalog as presets
from chalicelib.store import messages
from chalicelib.store.models import Job
from tests.integration.test_audio_pieces import pcm, seams_and_noise
from tests.integration.test_graph import (
    FRAMES,
    Drain,
    _started_graph,
    decodes,
    ended,
    fetch,
    new_job,
    upload,
)
from tests.integration.test_graph import output_keys as keys_under
from tests.integration.test_task_retries import KILLED
from tests.polling import wait_until

pytestmark = pytest.mark.slow
LADDER = {"ladder": {
    "video": {"codec": "h264", "preset": "ultrafast"},
    "renditions": [{"height": 240, "bitrate": "300k", "profile": "baseline"}],
    "audio": {"codec": "aac", "bitrate": "128k", "channels": 2},
    "segment_seconds": 2, "packaging": ["hls", "dash", "mp4"]}}  # fmt: skip
ARGS = ("-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000")  # the ladder's audio
PIECE = 70 * audio_cuts.FRAME  # 1.5 s at 48 kHz, rounded down to whole frames


def endless(monkeypatch, task: str, *, kill: bool) -> list[str]:
    """The first ffmpeg of `task` (attempt 1) runs until stopped (silence to nowhere), and
    is SIGKILLed at once if `kill` (what an out-of-memory kill does). A piece's own encode
    takes milliseconds: a kill could come after it finished. Returns where it ran."""
    started: list[str] = []
    start = FfmpegProcess.start

    def start_endless(self: FfmpegProcess):
        if started or f"-1-{task}" not in str(self.cwd):
            return start(self)
        self.argv = [self.argv[0], "-nostdin", "-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"]
        process = start(self)
        if kill:
            os.kill(process.pid, signal.SIGKILL)
        started.append(str(self.cwd))
        return process

    monkeypatch.setattr(FfmpegProcess, "start", start_endless)
    return started


@pytest.fixture
def pieces_preset(monkeypatch) -> str:
    monkeypatch.setenv("OE_AUDIO_CHUNK_SECONDS", "1.5")
    presets.create_preset(presets.PresetInput(name="pieces", data=json.dumps(LADDER),
                                              output="ladder"))  # fmt: skip
    return "pieces"


def packaged_samples(local: Path, entry: str) -> int:
    """Samples of the audio a player gets from a playlist or manifest."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file",
         "-i", str(local / entry), "-map", "0:a:0",
         "-f", "s16le", "-ac", "2", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return len(result.stdout) // 4


def test_a_ladder_with_long_audio_encodes_it_in_pieces_and_publishes_one_gapless_track(
    aws, chunky, mezzanine, tmp_path, monkeypatch, pieces_preset
):
    killed = endless(monkeypatch, "audio-0002", kill=True)  # a task death, once
    job = new_job(pieces_preset, upload(mezzanine))
    drain = Drain()
    drain.until(ended(job), workers=2)
    stored = Job.get(job.id)
    assert stored.status == "completed", stored.error
    assert len(killed) == 1, killed
    views = {v["id"]: v for v in jobs.task_views(stored)}
    pieces = sorted(i for i in views if i.startswith("audio"))
    # 7.2 s at ~1.5 s: four pieces, the last one to two long; no whole-track task.
    assert pieces == ["audio-0000", "audio-0001", "audio-0002", "audio-0003"]
    assert all(views[i]["status"] == "done" for i in pieces)
    assert views["audio-0002"]["tries"]["count"] == 2, killed  # only the killed piece ran again
    assert [t["ended"] for t in views["audio-0002"]["tries"]["ended"]] == [KILLED]
    assert all(v["tries"]["count"] == 1 for i, v in views.items() if i != "audio-0002")
    assert int(stored.tasks_total) == len(views) and int(stored.tasks_done) == len(views)
    completions = [r for body, r in drain.outcomes if '"assemble"' in body and r == "completed"]
    assert len(completions) == 1
    local = tmp_path / "out"
    for key in keys_under():
        target = local / key.removeprefix("out/")
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(key, target)
    whole = tmp_path / "whole.m4a"
    steps.local_run(["-i", f"file:{mezzanine}", "-map", "0:a:0", *ARGS, "-f", "mp4",
                     f"file:{whole}"], tmp_path)  # fmt: skip
    a, b = pcm(whole), pcm(local / "240p.mp4")
    assert abs(len(a) - len(b)) // 2 <= audio_cuts.FRAME
    near, noise = seams_and_noise(a, b, [PIECE, 2 * PIECE, 3 * PIECE])
    print(f"mp4: {len(a) // 2} vs {len(b) // 2} samples; seams {near}, noise {noise}")
    assert max(near) <= 4 * noise, (near, noise)
    # The packages drop the priming frame (audio and video start together at 0).
    for entry in ("master.m3u8", "manifest.mpd"):
        assert decodes(local / entry, "0:v:0") == FRAMES
        assert abs(packaged_samples(local, entry) - len(a) // 2) <= audio_cuts.FRAME, entry
    # A restart is a new attempt: its pieces are cut, encoded and joined again, once each.
    jobs.restart_job(job.id)
    Drain().until(ended(job))
    again = Job.get(job.id)
    assert again.status == "completed" and int(again.attempt) == 2, again.error
    views = {v["id"]: v for v in jobs.task_views(again)}
    assert sorted(i for i in views if i.startswith("audio")) == pieces
    assert all(v["status"] == "done" and v["tries"]["count"] == 1 for v in views.values())
    assert len(pcm(fetch("out/240p.mp4", tmp_path / "again.mp4"))) == len(b)


def test_cancel_reaches_a_running_audio_piece_within_five_seconds(
    aws, chunky, mezzanine, monkeypatch, pieces_preset
):
    running = endless(monkeypatch, "audio-0001", kill=False)
    job, bodies = _started_graph(pieces_preset, upload(mezzanine))
    (body,) = [b for b in bodies if messages.parse(b).task == "audio-0001"]
    run = TaskRun(messages.parse(body), worker_id="w")
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(run.run().result.value))
    thread.start()
    wait_until(lambda: running and run.ffmpeg and run.ffmpeg.current, 60, "the piece encoding")
    cancelled_at = time.monotonic()
    jobs.cancel_job(job.id)
    thread.join(timeout=30)
    assert time.monotonic() - cancelled_at < 5
    assert outcome == ["cancelled"]
    assert task_lifecycle.task(int(job.id), 1, "audio-0001").status == TaskStatus.CANCELLED
    assert Workspace(int(job.id), 1).names() == []
