"""What a droplet knows about itself, from DigitalOcean's metadata service.

On a droplet, `GET <OE_DROPLET_METADATA_URL>/id` answers the droplet's id (the
service lives at http://169.254.169.254/metadata/v1, reachable only from the
droplet). Off a droplet the setting is empty and the id is None.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request

from chalicelib.config import settings

log = logging.getLogger("openencoder.droplet")
TIMEOUT_SECONDS = 2
MAX_ID = 10**15

_lock = threading.Lock()
_known: dict[str, int] = {}


def droplet_id() -> int | None:
    """This droplet's id, asked once per process and then remembered; None off a droplet."""
    base = settings().droplet_metadata_url
    if not base:
        return None
    with _lock:
        if base in _known:
            return _known[base]
    found = _ask(f"{base}/id")
    if found is not None:
        with _lock:
            _known[base] = found
    return found


def _ask(url: str) -> int | None:
    # Not remembered on failure: a metadata service still starting is asked again next beat.
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            text = answer.read(64).decode("ascii", "replace").strip()
    except (urllib.error.URLError, OSError) as exc:
        log.warning("the droplet metadata service did not answer %s: %s", url, exc)
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < MAX_ID:
        log.warning("the droplet metadata service answered no droplet id at %s", url)
        return None
    return int(text)


def forget() -> None:
    """Drop what was learnt (tests point the setting at another fake)."""
    with _lock:
        _known.clear()
