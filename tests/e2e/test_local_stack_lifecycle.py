"""The local stack as a place to work for days: state across restarts, processes it owns.

Each test starts its own `python -m ops.local_stack` on free ports and drives it
over HTTP and boto3, stopping it with signals as a person (or a crash) would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ops.local_stack import ROOT, free_port, running
from tests import media as make
from tests.e2e.test_local_stack import aws_client, token, wait_for_job
from tests.polling import wait_until

pytestmark = pytest.mark.slow
FAST = {"OE_BCRYPT_ROUNDS": "4", "ADMIN_USERNAME": "boss", "ADMIN_PASSWORD": "boss-password-1"}


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory) -> Path:
    """Small on disk, but an upscale to 720p takes ffmpeg a while: time to stop it mid-encode."""
    return make.av_clip(tmp_path_factory.mktemp("clips") / "slow.mp4", seconds=30,
                        size="320x180", bitrate="200k")  # fmt: skip


@pytest.fixture(scope="module")
def stoppable_clip(tmp_path_factory) -> Path:
    """The same, for 12 s: seconds of 720p encoding to stop in (progress shows from the first
    heartbeat, 2 s in), and not half a minute more to encode it again after the restart."""
    return make.av_clip(tmp_path_factory.mktemp("clips") / "stoppable.mp4", seconds=12,
                        size="320x180", bitrate="200k")  # fmt: skip


def login(facts: dict) -> dict:
    # The password set in FAST: after a restore the stack has none to report (it kept the user).
    admin = {"username": FAST["ADMIN_USERNAME"], "password": FAST["ADMIN_PASSWORD"]}
    return {"Authorization": f"Bearer {token({**facts, 'admin': admin})}"}


def create_job(facts: dict, auth: dict, source: str, dest: str, preset: str) -> dict:
    body = {"preset": preset, "source": source, "dest": dest}
    r = requests.post(f"{facts['api']}/jobs", json=body, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["job"]


def send_upload(facts: dict, auth: dict, path: Path) -> dict:
    """An upload through the API: a presigned PUT, then complete."""
    body = {"filename": path.name, "size": path.stat().st_size, "content_type": "video/mp4"}
    r = requests.post(f"{facts['api']}/uploads", json=body, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    upload = r.json()["upload"]
    put = requests.put(upload["url"], data=path.read_bytes(), headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text
    r = requests.post(f"{facts['api']}/uploads/{upload['id']}/complete", json={}, headers=auth,
                      timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["upload"]


def job(facts: dict, auth: dict, job_id: int) -> dict:
    return requests.get(f"{facts['api']}/jobs/{job_id}", headers=auth, timeout=10).json()


def proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process, None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), fields[0])


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = proc_stat(int(entry.name))
        if stat:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def ffmpegs_under(folder: Path) -> list[int]:
    """ffmpeg processes working in `folder` (the stack's scratch): other tests' don't count."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "ffmpeg" in cmdline and str(folder) in cmdline and proc_stat(int(entry.name)):
            found.append(int(entry.name))
    return found


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ports(facts: dict) -> tuple[int, int]:
    return int(facts["api"].split(":")[2].split("/")[0]), int(facts["aws_endpoint"].rsplit(":")[2])


def phase_lines(log: Path, job_id: int, phase: str) -> int:
    count = 0
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            count += record.get("job_id") == job_id and record.get("status") == phase
    return count


def stop_and_time(process: subprocess.Popen) -> float:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    return time.monotonic() - began


def test_users_presets_uploads_and_jobs_survive_a_restart(tmp_path, media):
    state = tmp_path / "stack"
    state.mkdir()
    preset = {"name": "kept_360p", "description": "kept", "output": "kept.mp4", "active": True,
              "data": json.dumps({"raw": ["-vf scale=-2:360", "-c:v libx264", "-c:a aac"]})}  # fmt: skip
    with (state / "first.log").open("w") as out, running(state, out, **FAST) as (process, facts):
        auth = login(facts)
        r = requests.post(f"{facts['api']}/register", timeout=10,
                          json={"username": "ana", "password": "ana-password-1"})  # fmt: skip
        assert r.status_code == 200, r.text
        r = requests.post(f"{facts['api']}/presets", json=preset, headers=auth, timeout=10)
        assert r.status_code in (200, 201), r.text
        upload = send_upload(facts, auth, media["clip"])
        made = create_job(facts, auth, f"upload:{upload['id']}", "s3:///kept/", "kept_360p")
        done = wait_for_job(facts["api"], auth, made["id"])
        s3 = aws_client(facts, "s3")
        output = s3.get_object(Bucket=facts["buckets"]["output"], Key="kept/kept.mp4")[
            "Body"
        ].read()
        print(f"first stop took {stop_and_time(process):.1f} s")
    assert not (state / "stack.json").exists()
    state_bytes = sum(p.stat().st_size for p in (state / "state").rglob("*") if p.is_file())
    print(f"state on disk: {state_bytes / 1e6:.1f} MB")

    with (state / "second.log").open("w") as out, running(state, out, **FAST) as (_, facts):
        assert "password" not in facts["admin"]  # the admin was restored, not created again
        # A token issued before the restart still works: the signing key was restored.
        assert requests.get(f"{facts['api']}/me", headers=auth, timeout=10).status_code == 200
        ana = requests.post(f"{facts['api']}/login", timeout=10,
                            json={"username": "ana", "password": "ana-password-1"})  # fmt: skip
        assert ana.status_code == 200
        names = [p["name"] for p in
                 requests.get(f"{facts['api']}/presets", headers=auth, timeout=10).json()["items"]]  # fmt: skip
        assert "kept_360p" in names and names.count("kept_360p") == 1
        again = job(facts, auth, made["id"])
        assert again["status"] == "completed"

        def stored(outputs: list[dict]) -> list[dict]:
            # Links are signed anew on each read; a restored object is a new S3 version, and
            # the job's record follows it (the link below must serve the restored bytes).
            return [
                {k: v for k, v in o.items() if not k.startswith("url") and k != "version_id"}
                for o in outputs
            ]

        assert stored(again["outputs"]) == stored(done["outputs"])
        got = requests.get(f"{facts['api']}/uploads/{upload['id']}", headers=auth, timeout=10)
        assert got.status_code == 200 and got.json()["upload"]["status"] == "complete"
        s3 = aws_client(facts, "s3")
        kept = s3.get_object(Bucket=facts["buckets"]["output"], Key="kept/kept.mp4")
        assert kept["Body"].read() == output and kept["ContentType"] == "video/mp4"
        # The download link the API hands out works on the restored object.
        current = s3.head_object(Bucket=facts["buckets"]["output"], Key="kept/kept.mp4")
        assert again["outputs"][0]["version_id"] == current["VersionId"]
        link = requests.get(again["outputs"][0]["url"], timeout=10)
        assert link.status_code == 200 and link.content == output
        # New ids continue after the restored ones.
        second = create_job(facts, auth, f"upload:{upload['id']}", "s3:///kept2/", "kept_360p")
        assert second["id"] > made["id"]
    assert "restored from" in (state / "second.log").read_text()


def test_a_job_stopped_mid_encode_is_handed_back_and_completes_once_after_a_restart(
    tmp_path, stoppable_clip
):
    state = tmp_path / "stack"
    state.mkdir()
    scratch = state / "scratch"
    first_log = state / "first.log"
    with first_log.open("w") as out, running(state, out, **FAST) as (process, facts):
        auth = login(facts)
        aws_client(facts, "s3").upload_file(str(stoppable_clip), facts["buckets"]["input"],
                                            "s.mp4")  # fmt: skip
        made = create_job(facts, auth, "s3:///s.mp4", "s3:///slow/", "h264_main_720p_3000")
        wait_until(lambda: job(facts, auth, made["id"])["progress"] > 0, 120, "encoding to start")
        assert ffmpegs_under(scratch)
        took = stop_and_time(process)
        print(f"SIGTERM mid-encode: the stack stopped in {took:.1f} s")
    # Nothing left behind: no ffmpeg, no scratch, no facts file (it holds the password).
    assert ffmpegs_under(scratch) == []
    assert list(scratch.iterdir()) == [] if scratch.exists() else True
    assert not (state / "stack.json").exists()
    assert phase_lines(first_log, made["id"], "completed") == 0

    second_log = state / "second.log"
    with second_log.open("w") as out, running(state, out, **FAST) as (_, facts):
        done = wait_for_job(facts["api"], login(facts), made["id"], seconds=300)
        assert done["attempt"] == 1 and done["outputs"][0]["key"].startswith("slow/")
    assert phase_lines(second_log, made["id"], "completed") == 1


def test_a_port_in_use_is_refused_naming_it_and_its_holder(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OE_"))}
        env.update(PORT=str(free_port()), AWS_PORT=str(taken), OE_STATE_DIR=str(tmp_path))
        result = subprocess.run([sys.executable, "-m", "ops.local_stack"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert f"port {taken}" in result.stderr and f"pid {os.getpid()}" in result.stderr
    assert not (tmp_path / "stack.json").exists()


def test_a_sigkilled_stack_leaves_no_process_and_frees_its_ports(tmp_path, slow_clip):
    state = tmp_path / "stack"
    state.mkdir()
    with (state / "out.log").open("w") as out, running(state, out, **FAST) as (process, facts):
        auth = login(facts)
        aws_client(facts, "s3").upload_file(str(slow_clip), facts["buckets"]["input"], "k.mp4")
        made = create_job(facts, auth, "s3:///k.mp4", "s3:///k/", "h264_main_720p_3000")
        wait_until(lambda: job(facts, auth, made["id"])["progress"] > 0, 120, "encoding to start")
        children = descendants(process.pid)
        assert len(children) >= 3  # moto, the worker, ffmpeg
        process.kill()
        process.wait(timeout=10)
        wait_until(lambda: not any(proc_stat(pid) for pid in children), 15,
                   f"the stack's children {sorted(children)} to die")  # fmt: skip
        api_port, aws_port = ports(facts)
        wait_until(lambda: port_free(api_port) and port_free(aws_port), 15, "both ports to be free")


def test_a_killed_worker_is_restarted_and_its_job_completes(tmp_path, slow_clip):
    state = tmp_path / "stack"
    state.mkdir()
    # A tiny measured speed sends every job to the long queue, which the worker drains;
    # a short lease and fast ticks let the reconcile recover the dead worker's job quickly.
    env = {**FAST, "OE_ENCODE_SPEED": "0.0001", "OE_LEASE_SECONDS": "6",
           "OE_SCHEDULE_SECONDS": "2"}  # fmt: skip
    with (state / "out.log").open("w") as out, running(state, out, **env) as (_, facts):
        auth = login(facts)
        aws_client(facts, "s3").upload_file(str(slow_clip), facts["buckets"]["input"], "w.mp4")
        made = create_job(facts, auth, "s3:///w.mp4", "s3:///w/", "h264_baseline_360p_600")

        ddb = aws_client(facts, "dynamodb")

        def worker_encoding() -> int | None:
            item = ddb.get_item(TableName="openencoder-local-jobs",
                                Key={"id": {"N": str(made["id"])}})["Item"]  # fmt: skip
            owner = item.get("lease_owner", {}).get("S", "")
            if item["status"]["S"] == "encoding" and owner.startswith("worker:"):
                return int(owner.rsplit(":", 1)[1])  # worker:<host>:<pid>
            return None

        pid = wait_until(worker_encoding, 180, "the long-queue worker to encode the job")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: ffmpegs_under(state / "scratch") == [], 15, "its ffmpeg to die")
        done = wait_for_job(facts["api"], auth, made["id"], seconds=300)
        assert done["status"] == "completed"
    log = (state / "out.log").read_text()
    assert "long-queue worker exited with -9; restarting it" in log
    assert phase_lines(state / "out.log", made["id"], "completed") == 1
