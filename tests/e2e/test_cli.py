"""`openencoder` (openencoder_cli/) against the real local stack over HTTP.

One stack serves the whole module. The CLI runs as the installed console script in
a child process, with its config folder isolated (XDG_CONFIG_HOME) and its working
folder a "checkout" whose `.local/stack.json` the stack wrote, as after `make run`.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
import requests

from chalicelib.media.probe import ffmpeg_exe, probe
from ops.local_stack import free_port, running
from tests import media
from tests.polling import wait_until

pytestmark = pytest.mark.slow
OPENENCODER = Path(sys.executable).parent / "openencoder"
UNSAFE_PRESET = {"name": "sneaky", "data": {"raw": ["-i /etc/passwd", "-c:v libx264"]}}


@pytest.fixture(scope="module")
def fake_do():
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean("cli-do-token")
    endpoint = fake.start()
    yield fake, endpoint
    fake.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, fake_do):
    checkout = tmp_path_factory.mktemp("checkout")
    fake, endpoint = fake_do
    with (
        (checkout / "stack.log").open("w") as log,
        # Files over 4 MB are uploaded in parts (of S3's smallest, 5 MiB), so a 13 MB clip
        # takes three parts in parallel.
        running(checkout / ".local", output=log, OE_BCRYPT_ROUNDS="4", ADMIN_USERNAME="boss",
                DIGITALOCEAN_END_POINT=endpoint, DIGITALOCEAN_TOKEN=fake.token,
                OE_UPLOAD_SINGLE_MAX="4000000", OE_UPLOAD_PART_SIZE="5242880",
                # Sources of 8 s and more are cut into 3 s chunks (the clips below are shorter).
                OE_CHUNK_MIN_SECONDS="8", OE_CHUNK_SECONDS="3") as (_, facts),
    ):  # fmt: skip
        yield {"facts": facts, "checkout": checkout}


class Cli:
    """Runs the `openencoder` script; each test gets its own config folder."""

    def __init__(self, stack: dict, config_home: Path) -> None:
        self.facts, self.checkout, self.config_home = stack["facts"], stack["checkout"], config_home

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OE_", "AWS_"))}
        env.update(XDG_CONFIG_HOME=str(self.config_home), COLUMNS="200", **extra)
        return env

    def __call__(self, *args: str, cwd: Path | None = None, **env: str):
        return subprocess.run(
            [str(OPENENCODER), *args], cwd=cwd or self.checkout, env=self.env(**env),
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    def api(self, method: str, path: str, **kwargs):
        admin = self.facts["admin"]
        token = requests.post(f"{self.facts['api']}/login", timeout=10, json={
            "username": admin["username"], "password": admin["password"]}).json()["token"]  # fmt: skip
        return requests.request(method, f"{self.facts['api']}{path}", timeout=30,
                                headers={"Authorization": f"Bearer {token}"}, **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    not_video = root / "notes.mp4"
    not_video.write_text("this is not a video\n" * 50)
    return {
        # 30 Mb/s for 3 s: about 13 MB, over the single-PUT limit above.
        "big": media.av_clip(root / "big clip.mp4", seconds=3, size="640x360", bitrate="30M"),
        "small": media.av_clip(root / "small.mp4", seconds=2, size="320x240"),
        "chunked": media.av_clip(root / "chunked.mp4", seconds=9, size="320x240"),
        "long": media.av_clip(root / "long.mp4", seconds=20, size="1280x720", bitrate="1M"),
        # Two renditions of the ladder (480p, 360p), two 4 s segments each.
        "ladder": media.av_clip(root / "ladder.mp4", seconds=6, size="640x480"),
        "not_video": not_video,
    }


@pytest.fixture
def cli(stack, tmp_path) -> Cli:
    return Cli(stack, tmp_path / "config")


class Terminal:
    """The CLI in a pseudo-terminal (so Rich draws live progress), read as it writes."""

    def __init__(self, cli: Cli, *args: str) -> None:
        master, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.process = subprocess.Popen(
            [str(OPENENCODER), *args], cwd=cli.checkout, stdin=child, stdout=child, stderr=child,
            env=cli.env(TERM="xterm-256color"), start_new_session=True,
            # As a shell does for a foreground job: Ctrl-C is on, even when the suite runs
            # in the background (whose commands inherit SIGINT ignored, and so would ours).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        os.close(child)
        self.master, self.chunks = master, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def raw(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    @property
    def text(self) -> str:
        """What was written, without colours and cursor moves."""
        return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07", "", self.raw)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def wait(self, timeout: float = 180) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        os.close(self.master)
        return code


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result, code: int = 1) -> str:
    """A failure: the expected exit code and one readable line, never a traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and last.startswith("error: "), result.stderr
    return last


# --- where and who ---------------------------------------------------------------


def test_inside_a_checkout_after_make_run_the_next_command_just_works(cli):
    out = ok(cli("presets", "list"))
    assert "h264_baseline_360p_600" in out and "webm_vp9_720p_3000" in out
    # It logged in as the stack's admin and kept the token privately for next time.
    path = cli.config_home / "openencoder" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())["sessions"][cli.facts["api"]]
    assert saved["username"] == "boss" and saved["token"].count(".") == 2


def test_login_keeps_the_token_for_commands_run_anywhere(cli, tmp_path):
    admin = cli.facts["admin"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = ok(cli("login", "--api", cli.facts["api"], "-u", admin["username"],
                 cwd=elsewhere, OE_PASSWORD=admin["password"]))  # fmt: skip
    assert "logged in" in out and "admin" in out
    path = cli.config_home / "openencoder" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["current"] == cli.facts["api"]
    assert "h264_main_720p_3000" in ok(cli("presets", "list", cwd=elsewhere))
    assert "logged out" in ok(cli("logout", cwd=elsewhere))
    assert "not logged in" in refused(cli("presets", "list", cwd=elsewhere), 2)


def test_oe_api_and_oe_token_override_the_saved_login(cli, tmp_path):
    token = cli.api("GET", "/me").request.headers["Authorization"].split()[1]
    env = {"OE_API": cli.facts["api"], "OE_TOKEN": token}
    assert json.loads(ok(cli("jobs", "list", "--json", cwd=tmp_path, **env)))["count"] >= 0
    assert not (cli.config_home / "openencoder").exists()  # nothing saved
    message = refused(cli("jobs", "list", cwd=tmp_path, **{**env, "OE_TOKEN": "not-a-token"}))
    assert "HTTP 401" in message


def test_an_unreachable_api_is_exit_2_with_one_line(cli, tmp_path):
    message = refused(cli("jobs", "list", cwd=tmp_path, OE_API=f"http://127.0.0.1:{free_port()}/api",
                          OE_TOKEN="x"), 2)  # fmt: skip
    assert "cannot reach the API" in message and len(message.strip().splitlines()) == 1


def test_a_restarted_stack_is_logged_in_to_again(cli):
    ok(cli("presets", "list"))
    path = cli.config_home / "openencoder" / "config.json"
    document = json.loads(path.read_text())
    document["sessions"][cli.facts["api"]]["token"] = (
        "eyJhbGciOiJIUzI1NiJ9.e30.c3RhbGU"  # signed by an older key
    )
    path.write_text(json.dumps(document))
    ok(cli("jobs", "list"))
    assert (
        json.loads(path.read_text())["sessions"][cli.facts["api"]]["token"]
        != "eyJhbGciOiJIUzI1NiJ9.e30.c3RhbGU"
    )


def test_a_stack_json_with_no_admin_token_nor_password_says_how_to_log_in(cli, tmp_path):
    kept = tmp_path / "restarted"
    (kept / ".local").mkdir(parents=True)
    # As an older `make run` left it after a restart.
    facts = {k: v for k, v in cli.facts.items() if k != "admin_token"}
    facts["admin"] = {"username": "boss", "password": None}
    (kept / ".local" / "stack.json").write_text(json.dumps(facts))
    message = refused(cli("jobs", "list", cwd=kept), 2)
    assert "openencoder login -u boss" in message and cli.facts["api"] in message


def test_a_token_close_to_expiry_is_renewed_and_saved(cli):
    from datetime import UTC, datetime, timedelta

    ok(cli("presets", "list"))
    path = cli.config_home / "openencoder" / "config.json"
    document = json.loads(path.read_text())
    saved = document["sessions"][cli.facts["api"]]
    soon = datetime.now(UTC) + timedelta(minutes=5)
    saved["expire"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")  # as if issued 55 minutes ago
    path.write_text(json.dumps(document))
    ok(cli("jobs", "list"))
    renewed = json.loads(path.read_text())["sessions"][cli.facts["api"]]
    expire = datetime.fromisoformat(renewed["expire"].replace("Z", "+00:00"))
    assert expire > soon + timedelta(minutes=30)  # a fresh hour from the refresh route
    r = requests.get(f"{cli.facts['api']}/me", timeout=10,
                     headers={"Authorization": f"Bearer {renewed['token']}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["user"]["username"] == "boss"


def test_a_forced_password_reset_is_done_from_the_cli(cli, tmp_path):
    r = requests.post(f"{cli.facts['api']}/register", timeout=10,
                      json={"username": "cli-reset", "password": "first-password"})  # fmt: skip
    assert r.status_code == 200, r.text
    ok(cli("users", "force-reset", "cli-reset"))
    where = {"cwd": tmp_path, "OE_API": cli.facts["api"]}
    out = cli("login", "-u", "cli-reset", OE_PASSWORD="first-password", **where)
    assert out.returncode == 0 and "openencoder password" in out.stderr, out.stderr
    assert "403" in refused(cli("jobs", "list", **where))
    ok(cli("password", OE_PASSWORD="first-password", OE_NEW_PASSWORD="second-password", **where))
    ok(cli("jobs", "list", **where))  # the new token was kept
    assert "401" in refused(cli("login", "-u", "cli-reset", OE_PASSWORD="first-password", **where))


# --- output ------------------------------------------------------------------------


def test_json_prints_exactly_the_apis_json(cli):
    for args, path in [
        (("presets", "list"), "/presets"),
        (("presets", "show", "1"), "/presets/1"),
        (("jobs", "list", "--count", "5"), "/jobs?count=5"),
        (("users", "list"), "/users"),
    ]:
        assert json.loads(ok(cli(*args, "--json"))) == cli.api("GET", path).json(), args
    # The root option works too.
    assert json.loads(ok(cli("--json", "presets", "list")))["count"] >= 5


def test_api_errors_are_one_line_with_the_apis_message(cli):
    message = refused(cli("jobs", "show", "424242"))
    assert message.strip() == "error: no job '424242' (HTTP 404)"


# --- presets -------------------------------------------------------------------------


def test_a_bad_preset_file_gives_the_servers_400_message(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(UNSAFE_PRESET))
    server = cli.api("POST", "/presets/validate",
                     json={**UNSAFE_PRESET, "data": json.dumps(UNSAFE_PRESET["data"])}).json()  # fmt: skip
    assert server["status"] == 400
    for command in ("create", "validate"):
        message = refused(cli("presets", command, "--file", str(bad)))
        assert message.strip() == f"error: {server['message']} (HTTP 400)", command
    # A file that is not JSON at all is judged by the server too.
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", ')
    assert "not valid JSON" in refused(cli("presets", "validate", "--file", str(broken)))
    assert "sneaky" not in ok(cli("presets", "list"))


def test_presets_are_validated_created_updated_and_shown(cli, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "cli_540p", "description": "CRF 22 at 540p",
                                "output": "video.mp4",
                                "data": {"raw": ["-vf scale=-2:540", "-c:v libx264", "-crf 22"]}}))  # fmt: skip
    out = ok(cli("presets", "validate", "--file", str(good)))
    assert "valid" in out and "libx264" in out
    assert "cli_540p" not in ok(cli("presets", "list"))  # validating saved nothing
    created = json.loads(ok(cli("presets", "create", "--file", str(good), "--json")))
    assert created["preset"]["name"] == "cli_540p"
    ok(cli("presets", "update", "cli_540p", "--inactive", "--description", "off for now"))
    shown = json.loads(ok(cli("presets", "show", str(created["preset"]["id"]), "--json")))["preset"]
    assert shown["active"] is False and shown["description"] == "off for now"
    assert "-crf 22" in ok(cli("presets", "show", "cli_540p"))


# --- jobs --------------------------------------------------------------------------------


def test_a_failed_job_is_exit_1_with_its_error(cli):
    body = {
        "preset": "h264_baseline_360p_600",
        "source": "s3:///nowhere/missing.mp4",
        "dest": "s3:///cli/missing/",
    }
    job = cli.api("POST", "/jobs", json=body).json()["job"]
    result = cli("jobs", "watch", str(job["id"]))
    assert result.returncode == 1, result.stdout + result.stderr
    error = cli.api("GET", f"/jobs/{job['id']}").json()["error"]["message"]
    assert f"job {job['id']} failed" in result.stderr and error in " ".join(result.stderr.split())
    assert "error" in ok(cli("jobs", "show", str(job["id"])))
    assert "restarting" in ok(cli("jobs", "restart", str(job["id"])))
    wait_until(lambda: cli.api("GET", f"/jobs/{job['id']}").json()["status"] == "error", 60,
               "the restarted job to fail again")  # fmt: skip
    assert "no job" in refused(cli("jobs", "cancel", "424242"))


# --- encode: the round trip -----------------------------------------------------------------


def without_links(document):
    if isinstance(document, dict):
        return {k: without_links(v) for k, v in document.items() if k not in ("url", "url_expires")}
    if isinstance(document, list):
        return [without_links(v) for v in document]
    return document


def job_by_dest_prefix(cli: Cli, prefix: str) -> dict:
    items = cli.api("GET", "/jobs?count=100").json()["items"]
    for item in items:
        job = cli.api("GET", f"/jobs/{item['id']}").json()
        if prefix in job["dest"]:
            return job
    raise AssertionError(f"no job with a dest under {prefix}")


def test_encode_uploads_in_parts_shows_live_progress_and_downloads_a_playable_file(cli, clips):
    out = cli.checkout / "out"
    terminal = Terminal(cli, "encode", str(clips["big"]), "--preset", "h264_baseline_360p_600",
                        "--download", str(out))  # fmt: skip
    assert terminal.wait() == 0, terminal.text
    text = terminal.text
    # The upload had a bar of its own, then the job's bar was drawn again and again,
    # the last time at 100 %.
    assert "upload big clip.mp4" in text
    job_lines = [line for line in text.splitlines() if re.search(r"job \d+ big clip\.mp4", line)]
    assert len(job_lines) > 1, text
    assert any("completed" in line and "100%" in line for line in job_lines), job_lines[-3:]
    assert any("%" in line and "100%" not in line for line in job_lines) or len(job_lines) > 2
    # Three parts of 5 MiB, sent in parallel, made one upload.
    job = job_by_dest_prefix(cli, "encodes/big-clip-")  # the default dest names the upload
    assert job["status"] == "completed" and job["source"]
    upload_id = job["dest"].rstrip("/").rsplit("-", 1)[-1]
    upload = cli.api("GET", f"/uploads/{upload_id}").json()["upload"]
    assert upload["method"] == "multipart" and upload["part_count"] == 3
    assert upload["status"] == "complete" and upload["size"] == clips["big"].stat().st_size
    # The outputs were shown as a table (links only with --links), and the download plays
    # as a 360p H.264 file.
    assert "h264_baseline_360p_600.mp4" in text and "X-Amz-Signature" not in text
    saved = out / "h264_baseline_360p_600.mp4"
    info = probe(saved)
    assert info.video is not None and info.video.codec == "h264" and info.video.height == 360
    assert info.duration == pytest.approx(3, abs=0.2)
    assert saved.stat().st_size == job["outputs"][0]["size"]


def test_encode_with_json_prints_the_jobs_as_the_api_shows_them(cli, clips, tmp_path):
    result = cli("encode", str(clips["small"]), "-p", "h264_baseline_360p_600", "--json")
    jobs = json.loads(ok(result))
    assert len(jobs) == 1 and jobs[0]["status"] == "completed"
    again = cli.api("GET", f"/jobs/{jobs[0]['id']}").json()
    assert without_links(jobs[0]) == without_links(again)  # links are signed anew on each read
    job_id = str(jobs[0]["id"])
    listed = json.loads(ok(cli("jobs", "outputs", job_id, "--json")))
    assert without_links(listed) == without_links(cli.api("GET", f"/jobs/{job_id}/outputs").json())
    assert all(item["url"].startswith("http") for item in listed["items"])
    ok(cli("jobs", "outputs", job_id, "--download", str(tmp_path)))
    saved = tmp_path / "h264_baseline_360p_600.mp4"
    assert saved.stat().st_size == listed["items"][0]["size"] and probe(saved).video is not None


def read_to_the_end(manifest: Path) -> float:
    """Read every stream of an HLS or DASH package from disk with ffmpeg; its duration."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-v", "warning", "-protocol_whitelist", "file",
         "-i", str(manifest), "-map", "0", "-f", "null", "-", "-progress", "pipe:1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # A missing segment is only logged ("Failed to open segment"): nothing may be logged.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr[-2000:]
    return int(re.findall(r"out_time_us=(\d+)", result.stdout)[-1]) / 1e6


def referenced(folder: Path) -> set[str]:
    """Every file the playlists and the MPD name, as paths under `folder`."""
    names = set()
    for playlist in folder.rglob("*.m3u8"):
        base = playlist.parent.relative_to(folder)
        for line in playlist.read_text().splitlines():
            uri = re.search(r'URI="([^"]+)"', line)
            target = uri.group(1) if uri else (line if line and not line.startswith("#") else None)
            if target:
                names.add((base / target).as_posix())
    mpd = (folder / "manifest.mpd").read_text()
    names |= set(re.findall(r'(?:sourceURL|media)="([^"$]+)"', mpd))
    return names


def on_disk(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and p.name != ".openencoder-downloads.jsonl"}  # fmt: skip


def test_a_downloaded_ladder_plays_from_disk_to_the_end_and_resumes(cli, clips):
    out = cli.checkout / "ladder-out"
    result = ok(cli("encode", str(clips["ladder"]), "-p", "h264_ladder_hls_dash",
                    "--download", str(out)))  # fmt: skip
    job = job_by_dest_prefix(cli, "encodes/ladder-")
    # One row per output, no links; folders show how many files they hold.
    for name in ("master.m3u8", "manifest.mpd", "480p/", "360p.mp4", "thumbnails/"):
        assert name in result, result
    assert "segments (2)" in result and "640x480" in result and "X-Amz-Signature" not in result
    # Every object of every output is on disk, in the dest's layout, nothing else.
    listed, cursor = [], None
    while True:
        query = {"cursor": cursor} if cursor else {}
        page = cli.api("GET", f"/jobs/{job['id']}/files", params=query).json()
        listed += page["items"]
        if not (cursor := page["next"]):
            break
    files = on_disk(out)
    assert files == {item["name"]: item["size"] for item in listed}
    for folder in ("480p", "360p", "audio"):
        assert f"{folder}/init.mp4" in files and f"{folder}/index.m3u8" in files
        assert len([n for n in files if n.startswith(folder) and n.endswith(".m4s")]) == 2
    assert "thumbnails/0001.jpg" in files and "thumbnails/0002.jpg" in files
    assert not [p for p in out.rglob("*.part")]
    # Every segment the playlists and the MPD name was saved; ffmpeg reads both to the end.
    assert len([n for n in referenced(out) if n.endswith(".m4s")]) == 6
    assert referenced(out) <= set(files), referenced(out) - set(files)
    source = probe(clips["ladder"]).duration
    for manifest in ("master.m3u8", "manifest.mpd"):
        assert read_to_the_end(out / manifest) == pytest.approx(source, abs=4)  # one segment

    # Again: everything is there already, nothing is fetched.
    again = cli("jobs", "outputs", str(job["id"]), "--download", str(out))
    assert f"saved {len(files)} files" in again.stderr
    assert f"{len(files)} were there already" in again.stderr, again.stderr
    # A file cut short and a missing one (an interrupted download) are fetched again, alone.
    (out / "480p" / "index.m3u8").unlink()
    segment = sorted((out / "360p").glob("*.m4s"))[0]
    segment.write_bytes(segment.read_bytes()[:100])
    resumed = cli("jobs", "outputs", str(job["id"]), "--download", str(out))
    assert f"{len(files) - 2} were there already" in resumed.stderr, resumed.stderr
    assert on_disk(out) == files

    # --only picks outputs by the names the table shows.
    part = cli.checkout / "ladder-only"
    ok(cli("jobs", "outputs", str(job["id"]), "--download", str(part),
           "--only", "360p", "--only", "master.m3u8"))  # fmt: skip
    assert set(on_disk(part)) == {"master.m3u8"} | {n for n in files if n.startswith("360p/")
                                                     and n != "360p/index.m3u8"}  # fmt: skip
    # Links only on request: one per output of one object (a folder has none of its own).
    outputs = cli.api("GET", f"/jobs/{job['id']}/outputs").json()["items"]
    links = ok(cli("jobs", "outputs", str(job["id"]), "--links"))
    assert links.count("X-Amz-Signature") == len([o for o in outputs if o.get("url")]) > 0


def test_failed_encodes_are_exit_1_with_the_error_and_ffmpeg_tail(cli, clips):
    # Valid as a preset, refused by x264 when it runs: the baseline profile has no 4:4:4.
    preset = {"name": "cli_bad444", "output": "bad.mp4", "data": json.dumps(
        {"raw": ["-c:v libx264", "-profile:v baseline", "-pix_fmt yuv444p", "-c:a aac"]})}  # fmt: skip
    assert cli.api("POST", "/presets", json=preset).status_code == 200
    result = cli("encode", str(clips["not_video"]), str(clips["small"]), "-p", "cli_bad444")
    assert result.returncode == 1, result.stdout + result.stderr
    shown = " ".join(result.stderr.split())
    assert "Traceback" not in shown
    failed = [int(n) for n in re.findall(r"job (\d+) failed", shown)]
    assert len(failed) == 2, shown
    for job_id in failed:
        assert cli.api("GET", f"/jobs/{job_id}").json()["error"]["message"] in shown
    assert "ffmpeg log" in shown and "baseline profile doesn't support 4:4:4" in shown


def test_a_chunked_job_shows_its_chunks_and_tasks(cli, clips):
    terminal = Terminal(cli, "encode", str(clips["chunked"]), "-p", "h264_baseline_360p_600")
    assert terminal.wait() == 0, terminal.text
    job_id = re.search(r"job (\d+) chunked\.mp4", terminal.text).group(1)
    plan = cli.api("GET", f"/jobs/{job_id}").json()["plan"]
    assert plan["mode"] == "chunked" and plan["chunks"] >= 2
    assert re.search(r"chunks \d+/{}".format(plan["chunks"]), terminal.text), terminal.text[-2000:]
    listed = json.loads(ok(cli("jobs", "tasks", job_id, "--json")))
    assert listed == cli.api("GET", f"/jobs/{job_id}/tasks").json()
    assert "encode" in ok(cli("jobs", "tasks", job_id)) and "chunked" in ok(
        cli("jobs", "show", job_id)
    )


def test_encode_refuses_a_missing_file_and_an_unknown_preset(cli, clips, tmp_path):
    assert cli("encode", str(tmp_path / "nope.mp4"), "-p", "h264_baseline_360p_600").returncode == 2
    result = cli("encode", str(clips["small"]), "-p", "no_such_preset")
    assert "no preset named 'no_such_preset'" in refused(result, 2)
    assert "upload" not in result.stderr  # found out before sending the file


def test_ctrl_c_asks_whether_to_cancel_and_cancels(cli, clips):
    terminal = Terminal(cli, "encode", str(clips["long"]), "-p", "webm_vp9_720p_3000",
                        "--dest", "s3:///cli/interrupted/")  # fmt: skip
    wait_until(lambda: re.search(r"job \d+ long\.mp4 +encoding", terminal.text), 120,
               "the job to be encoding")  # fmt: skip
    terminal.process.send_signal(signal.SIGINT)
    try:
        wait_until(lambda: "Cancel 1 unfinished job" in terminal.text, 30, "the question")
    except AssertionError:
        raise AssertionError(f"no question; the terminal shows:\n{terminal.text[-3000:]}") from None
    terminal.type("y")
    assert terminal.wait() == 1, terminal.text
    job = job_by_dest_prefix(cli, "cli/interrupted/")
    assert job["status"] == "cancelled"
    assert f"job {job['id']} was cancelled" in terminal.text


def test_stats_count_the_jobs_by_status(cli):
    counts = json.loads(ok(cli("stats", "--json")))
    assert counts == cli.api("GET", "/stats").json()
    jobs = counts["jobs"]
    assert jobs["total"] == sum(n for status, n in jobs.items() if status != "total")
    assert jobs["total"] == cli.api("GET", "/jobs?count=1").json()["count"]
    table = ok(cli("stats"))
    assert "completed" in table and re.search(rf"total\s*│\s*{jobs['total']}\b", table)


# --- machines and users -------------------------------------------------------------------


def test_machines_come_and_go(cli, fake_do):
    fake, _ = fake_do
    assert "nyc3" in ok(cli("machines", "regions"))
    assert "c-2" in ok(cli("machines", "sizes"))
    created = json.loads(ok(cli("machines", "create", "--region", "nyc3", "--size", "c-2",
                                "--count", "2", "--json")))["machine"]  # fmt: skip
    listed = ok(cli("machines", "list"))
    assert all(str(m["id"]) in listed for m in created)
    assert json.loads(ok(cli("machines", "pricing", "--json")))["count"] == 2
    ok(cli("machines", "delete", str(created[0]["id"])))
    assert "ID or --all" in refused(cli("machines", "delete"), 2)
    ok(cli("machines", "delete", "--all", "--yes"))
    assert fake.droplets == {}
    assert "region" in refused(cli("machines", "create", "--region", "mars1", "--size", "c-2"))


def test_users_get_roles_and_are_deactivated(cli):
    r = requests.post(f"{cli.facts['api']}/register", timeout=10,
                      json={"username": "cli-ana", "password": "a-long-password"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert "operator" in ok(cli("users", "set-role", "cli-ana", "operator"))
    assert "deactivated" in ok(cli("users", "deactivate", "cli-ana"))
    listed = {u["username"]: u for u in json.loads(ok(cli("users", "list", "--json")))["items"]}
    assert listed["cli-ana"]["role"] == "operator" and listed["cli-ana"]["active"] is False
    assert cli("users", "set-role", "cli-ana", "emperor").returncode == 2  # usage: not a role


@pytest.fixture
def receiver():
    """A loopback endpoint that records what it is sent and answers 200."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"headers": dict(self.headers), "body": json.loads(body or b"null")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    server.shutdown()


def test_webhooks_are_created_pinged_and_their_deliveries_listed(cli, receiver):
    url, seen = receiver
    created = json.loads(ok(cli("webhooks", "create", "--url", url, "--event", "job.completed",
                                "--event", "job.failed", "--json")))["webhook"]  # fmt: skip
    assert created["secret"].startswith("whsec_") and created["events"] == [
        "job.completed",
        "job.failed",
    ]
    assert url in ok(cli("webhooks", "list"))
    ok(cli("webhooks", "test", str(created["id"])))
    wait_until(lambda: seen, 60, "the ping to arrive")
    assert "webhook-signature" in {k.lower() for k in seen[0]["headers"]}

    def delivered():
        items = json.loads(ok(cli("webhooks", "deliveries", str(created["id"]), "--json")))["items"]
        return items if any(d.get("status_code") == 200 for d in items) else None

    wait_until(delivered, 60, "the delivery to be recorded", every=1)
    assert "200" in ok(cli("webhooks", "deliveries", str(created["id"])))


def test_health_needs_no_login(cli, tmp_path):
    out = ok(cli("health", cwd=tmp_path, OE_API=cli.facts["api"]))
    assert "ok" in out and "buckets" in out and "output" in out
    answer = json.loads(ok(cli("health", "--json", cwd=tmp_path, OE_API=cli.facts["api"])))
    assert answer["status"] == 200 and answer["checks"]


def test_the_script_is_installed_in_the_venv():
    assert OPENENCODER.exists() and shutil.which("openencoder", path=str(OPENENCODER.parent))
