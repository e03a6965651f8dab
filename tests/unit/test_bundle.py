"""The droplets' worker bundle is the tree as it is: built once, built again when a file changes."""

from __future__ import annotations

import io
import tarfile

from ops import bundle


def contents(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_bundle_is_rebuilt_when_a_file_changes_and_only_then(tmp_path, monkeypatch):
    for name in bundle.FILES:
        (tmp_path / name).write_text("boto3\n")
    (tmp_path / "chalicelib" / "__pycache__").mkdir(parents=True)
    (tmp_path / "chalicelib" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "chalicelib" / "a.py").write_text("A = 1\n")
    monkeypatch.setattr(bundle, "ROOT", tmp_path)

    first = bundle.build()
    assert contents(first) == {"requirements.txt": b"boto3\n", "requirements-worker.txt": b"boto3\n",
                               "chalicelib/a.py": b"A = 1\n"}  # fmt: skip
    assert bundle.build() is first  # nothing changed: the same tarball, not built again
    (tmp_path / "chalicelib" / "a.py").write_text("A = 22\n")
    (tmp_path / "chalicelib" / "b.py").write_text("B = 2\n")
    changed = contents(bundle.build())
    assert changed["chalicelib/a.py"] == b"A = 22\n" and changed["chalicelib/b.py"] == b"B = 2\n"
