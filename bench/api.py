"""API latency against the local stack with 1,000 jobs stored, and app.py's cold import.

Run with `make bench-api`. Prints figures; it asserts nothing about time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ops.local_stack import running

ROOT = Path(__file__).resolve().parent.parent
JOBS = int(os.environ.get("BENCH_JOBS", "1000"))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(ordered)})"


def timed(call) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = call()
    return time.perf_counter() - start, response


def cold_import_ms() -> list[float]:
    code = (
        "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    )
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    ]


def main() -> int:
    imports = cold_import_ms()
    print(f"cold import of app.py: median {statistics.median(imports):.1f} ms over 5 "
          f"({', '.join(f'{t:.0f}' for t in imports)})")  # fmt: skip
    state = Path(tempfile.mkdtemp(prefix="oe-bench-"))
    with running(state) as (_process, facts):
        api, admin = facts["api"], facts["admin"]
        session = requests.Session()
        creds = {"username": admin["username"], "password": admin["password"]}
        logins = []
        for _ in range(20):
            elapsed, r = timed(lambda: session.post(f"{api}/login", json=creds))
            r.raise_for_status()
            logins.append(elapsed)
        session.headers["Authorization"] = f"Bearer {r.json()['token']}"
        body = {
            "preset": "h264_baseline_360p_600",
            "source": "s3:///bench/in.mp4",
            "dest": "s3:///bench/out/",
        }
        creates, ids = [], []
        for _ in range(JOBS):
            elapsed, r = timed(lambda: session.post(f"{api}/jobs", json=body))
            r.raise_for_status()
            creates.append(elapsed)
            ids.append(r.json()["job"]["id"])
        gets = [
            timed(lambda i=i: session.get(f"{api}/jobs/{i}"))[0]
            for i in ids[:: max(1, JOBS // 200)]
        ]
        lists = [timed(lambda: session.get(f"{api}/jobs?count=20"))[0] for _ in range(100)]
        deep = [timed(lambda: session.get(f"{api}/jobs?count=20&page=25"))[0] for _ in range(20)]
        print(f"jobs stored: {JOBS} (bcrypt cost 12, local stack over HTTP on 127.0.0.1)")
        print(f"login          {percentiles(logins)}")
        print(f"create job     {percentiles(creates)}")
        print(f"get job        {percentiles(gets)}")
        print(f"list jobs      {percentiles(lists)}")
        print(f"list page 25   {percentiles(deep)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
