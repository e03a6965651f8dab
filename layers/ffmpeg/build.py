"""Build the ffmpeg Lambda layer zips: `make layer` (or `python layers/ffmpeg/build.py`).

Each zip holds `bin/ffmpeg`, which Lambda unpacks to /opt/bin/ffmpeg where the
encode function looks first. The binary is the static build inside the pinned,
hash-checked imageio-ffmpeg wheel of that platform: the same build the local
stack and the tests run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLATFORMS = {"x86_64": "manylinux_2_28_x86_64", "arm64": "manylinux_2_28_aarch64"}


def fetch_wheel(arch: str, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--platform", PLATFORMS[arch], "--require-hashes",
            "-r", str(HERE / f"requirements-{arch}.txt"), "-d", str(into),
        ],
        check=True,
    )  # fmt: skip
    (wheel,) = into.glob("imageio_ffmpeg-*.whl")
    return wheel


def build(arch: str, out_dir: Path) -> tuple[Path, int]:
    """Write dist/ffmpeg-layer-<arch>.zip; returns its path and unzipped size in bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"ffmpeg-layer-{arch}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(arch, Path(tmp))
        with zipfile.ZipFile(wheel) as source:
            (member,) = [n for n in source.namelist() if "/binaries/ffmpeg-" in n]
            binary = source.read(member)
    info = zipfile.ZipInfo("bin/ffmpeg", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 & 0xFFFF) << 16  # a regular, executable file
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(target, "w") as layer:
        layer.writestr(info, binary, compresslevel=6)
    return target, len(binary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=[*PLATFORMS, "all"], default="all")
    parser.add_argument("--out", type=Path, default=HERE.parent.parent / "dist")
    args = parser.parse_args()
    for arch in PLATFORMS if args.arch == "all" else [args.arch]:
        path, size = build(arch, args.out)
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB zipped, {size / 1e6:.1f} MB unzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
