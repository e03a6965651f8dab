"""End-to-end encode time through the local stack against ffmpeg run directly.

Run with `make bench-encode`. On a generated 30 s 1280x720 clip, for each preset:
the job's create → completed time over HTTP, the same ffmpeg command run on the
same file, both the median of 3; their ratio (target ≤ 1.10) and realtime factors.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import requests

from chalicelib.media.probe import ffmpeg_exe
from chalicelib.presets.catalog import SEEDED
from chalicelib.presets.spec import parse_preset_data
from ops.local_stack import running
from tests.media import av_clip

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("h264_baseline_360p_600", "h264_main_720p_3000")
RUNS = 3
CLIP_SECONDS = 30
SOURCE_BITRATE = "8M"


def direct(clip: Path, preset: str, out_dir: Path) -> float:
    data, output = next((d, o) for _, n, d, o in SEEDED if n == preset)
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip),
            *parse_preset_data(data).args, str(out_dir / output)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="oe-bench-encode-"))
    # A mezzanine-like source: 720p at 8 Mb/s (the tests' near-lossless clips run ~19 Mb/s).
    clip = av_clip(work / "clip.mp4", seconds=CLIP_SECONDS, bitrate=SOURCE_BITRATE)
    state = work / "state"
    with running(state) as (_process, facts):
        api = facts["api"]
        s3 = boto3.client("s3", endpoint_url=facts["aws_endpoint"], region_name=facts["region"],
                          aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
        s3.upload_file(str(clip), facts["buckets"]["input"], "bench/clip.mp4")
        session = requests.Session()
        login = session.post(f"{api}/login", json=facts["admin"], timeout=30)
        login.raise_for_status()
        session.headers["Authorization"] = f"Bearer {login.json()['token']}"
        size_mb = clip.stat().st_size / 1e6
        print(f"clip: {CLIP_SECONDS} s 1280x720 24 fps, {SOURCE_BITRATE}b/s ({size_mb:.0f} MB); "
              f"median of {RUNS} interleaved runs each")  # fmt: skip
        for preset in PRESETS:
            direct_times, stack_times = [], []
            for run in range(RUNS):
                # Interleaved, so drift in the machine's speed falls on both alike.
                direct_times.append(direct(clip, preset, work))
                body = {
                    "preset": preset,
                    "source": "s3:///bench/clip.mp4",
                    "dest": f"s3:///bench/{preset}/{run}/",
                }
                start = datetime.now(UTC)
                job = session.post(f"{api}/jobs", json=body, timeout=30).json()["job"]
                while True:
                    # Polled slowly: the API calls of a fast poll would take CPU from ffmpeg.
                    time.sleep(1)
                    done = session.get(f"{api}/jobs/{job['id']}", timeout=30).json()
                    if done["status"] in ("completed", "error", "cancelled"):
                        break
                if done["status"] != "completed":
                    raise SystemExit(f"job {job['id']} ended {done['status']}")
                # The job records when it completed, so the poll interval adds nothing.
                finished = datetime.fromisoformat(
                    done["phases"]["completed"].replace("Z", "+00:00")
                )
                stack_times.append((finished - start).total_seconds())
            d, e = statistics.median(direct_times), statistics.median(stack_times)
            print(f"{preset:24s} direct {d:6.2f} s ({CLIP_SECONDS / d:5.2f}x realtime)   "
                  f"local stack {e:6.2f} s ({CLIP_SECONDS / e:5.2f}x realtime)   ratio {e / d:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
