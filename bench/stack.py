"""A local stack driven over HTTP as a client would: log in, make presets, run jobs, fetch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import requests


class Stack:
    """The API (as the stack's admin) and its S3 endpoint, from the facts `running` yields."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.api = facts["api"]
        self.s3 = boto3.client("s3", endpoint_url=facts["aws_endpoint"], region_name=facts["region"],
                               aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
        self.buckets = facts["buckets"]
        self.http = requests.Session()
        login = self.http.post(f"{self.api}/login", json=facts["admin"], timeout=30)
        login.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {login.json()['token']}"

    def preset(self, name: str, ladder: dict[str, Any]) -> None:
        body = {"name": name, "data": json.dumps({"ladder": ladder}), "output": "master.m3u8"}
        answer = self.http.post(f"{self.api}/presets", json=body, timeout=30)
        if answer.status_code >= 300:
            raise SystemExit(f"preset {name}: {answer.status_code} {answer.text}")

    def job(self, preset: str, source: str, dest: str, **extra: Any) -> tuple[dict, list[dict]]:
        """Run one job to its end: the job's view and its tasks' (a bench stops on a failure)."""
        body = {"preset": preset, "source": source, "dest": dest, **extra}
        answer = self.http.post(f"{self.api}/jobs", json=body, timeout=30)
        if answer.status_code >= 300:
            raise SystemExit(f"job on {preset}: {answer.status_code} {answer.text}")
        created = answer.json()["job"]
        while True:
            time.sleep(2)  # slow polls: API calls take CPU from ffmpeg
            job = self.http.get(f"{self.api}/jobs/{created['id']}", timeout=30).json()["job"]
            if job["status"] in ("completed", "error", "cancelled"):
                break
        if job["status"] != "completed":
            raise SystemExit(f"job {job['id']} ended {job['status']}: {job.get('error')}")
        tasks = self.http.get(f"{self.api}/jobs/{job['id']}/tasks", timeout=30).json()["items"]
        return job, tasks

    def fetch(self, key: str, path: Path) -> Path:
        self.s3.download_file(self.buckets["output"], key, str(path))
        return path
