"""Where the CLI keeps its login, and the local stack's facts it can use instead.

The config file is `$XDG_CONFIG_HOME/openencoder/config.json` (default `~/.config`),
mode 0600: {"current": "<api url>", "sessions": {"<api url>": {"username", "token",
"expire"}}}. One session per API, so a deployed stage and the local stack can both
stay logged in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "openencoder"


def config_file() -> Path:
    return config_dir() / "config.json"


def load() -> dict[str, Any]:
    try:
        document = json.loads(config_file().read_text())
    except (OSError, ValueError):
        return {"sessions": {}}
    if not isinstance(document, dict):
        return {"sessions": {}}
    document.setdefault("sessions", {})
    return document


def save(document: dict[str, Any]) -> Path:
    """Write the config with mode 0600 (it holds tokens), replacing it atomically."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path, partial = config_file(), folder / "config.json.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def normalize_api(url: str) -> str:
    """The API's base URL, ending in /api (what `make run` prints and a stage serves)."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/api") else url + "/api"


def find_stack(start: Path | None = None) -> dict[str, Any] | None:
    """`.local/stack.json` of the checkout around `start` (written by `make run`), if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / ".local" / "stack.json"
        if path.is_file():
            try:
                facts = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return facts if isinstance(facts, dict) and facts.get("api") else None
    return None
