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
