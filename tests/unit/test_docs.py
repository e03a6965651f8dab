"""The README stays a front door and the docs site builds with no broken link or page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_the_readme_stays_under_twelve_kilobytes():
    assert len(README.read_bytes()) <= 12 * 1024


def test_the_readme_has_a_mermaid_diagram_and_a_picture_the_repository_page_shows():
    text = README.read_text()
    assert "```mermaid\n" in text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures, "the README shows no picture"
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture


def test_every_relative_link_of_the_readme_names_a_file_in_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "the README links into nothing"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing


def test_the_docs_site_builds_strictly(tmp_path):
    # --strict turns every warning (a link to a missing page or anchor, a page left out
    # of the nav) into a failed build.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "img" / "architecture.svg").is_file()


# --- the generated reference pages -----------------------------------------------------

# An environment variable read by the code: os.environ.get("OE_X"...), os.environ["OE_X"],
# config's _int/_float/_flag("OE_X", ...) and Typer's envvar="OE_X".
READ = re.compile(
    r"(?:environ\.get|environ\[|getenv|_int|_float|_flag|envvar=)\(?\s*[\"'](OE_[A-Z0-9_]+)[\"']"
)


def variables_read_by_the_code() -> set[str]:
    files = [ROOT / "app.py"]
    for folder in ("chalicelib", "ops", "openencoder_cli"):
        files += (ROOT / folder).rglob("*.py")
    return {name for path in files for name in READ.findall(path.read_text())}


def test_the_reference_pages_are_what_the_code_generates():
    from ops import docs_reference

    assert docs_reference.stale() == [], "run: python -m ops.docs_reference"


def test_every_oe_variable_the_code_reads_is_in_the_configuration_reference():
    from chalicelib.config import REFERENCE

    documented = [d.name for d in REFERENCE]
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    read = variables_read_by_the_code()
    assert "OE_STAGE" in read and "OE_TOKEN" in read  # the scan sees config and the CLI
    assert sorted(read - set(documented)) == [], "add them to chalicelib.config.REFERENCE"
    assert sorted(set(documented) - read) == [], "listed but never read"


def test_each_listed_default_is_what_the_code_falls_back_to(monkeypatch):
    from chalicelib import config

    for name in list(os.environ):
        if name.startswith("OE_") or name in ("AWS_ENDPOINT_URL", "AWS_REGION"):
            monkeypatch.delenv(name)
    config.settings.cache_clear()
    try:
        readers = {"settings": config.settings(), "runtime": config.runtime(),
                   "graph": config.graph_settings(), "local": config.local_settings()}  # fmt: skip
    finally:
        config.settings.cache_clear()  # the next caller reads its own environment again
    checked = 0
    for documented in config.REFERENCE:
        if documented.reads is None:
            continue
        reader, field = documented.reads.split(".")
        value = getattr(readers[reader], field)
        if documented.default is None:
            assert value in (None, "", ()), (documented.name, value)
        elif isinstance(value, bool):
            assert documented.default == str(value).lower(), (documented.name, value)
        elif isinstance(value, int | float):
            assert float(documented.default) == value, (documented.name, value)
        else:
            shown = ",".join(value) if isinstance(value, tuple) else value
            assert documented.default.replace("<stage>", "dev") == shown, (documented.name, value)
        checked += 1
    assert checked >= 60
