"""The heartbeat that keeps a lease: renews it every few seconds, never dies, knows when to stop.

Generic over what it renews (a job today, a task of the job graph tomorrow): it calls
`renew()`, which raises `lifecycle.Lost` when the lease is gone, and reports through
`on_lost` and `on_lapse`. A transient failure only retries at the next beat; once no
renewal has succeeded for longer than the lease lasts, someone else may own the work,
so `on_lapse` stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.jobs.lifecycle import Lost
from chalicelib.store import faults

log = logging.getLogger("openencoder.lease")
BEAT_SECONDS = 2.0  # progress and lease writes: at most one per 2 s


class Heartbeat:
    """A daemon thread that renews a lease until `stop()`; see the module docstring."""

    def __init__(
        self,
        *,
        lease_seconds: float,
        renew: Callable[[], None],
        on_lost: Callable[[], None],
        on_lapse: Callable[[], None],
        on_beat: Callable[[], None] | None = None,
        every: float = BEAT_SECONDS,
        name: str = "heartbeat",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.lease_seconds = lease_seconds
        self.renew = renew
        self.on_lost = on_lost
        self.on_lapse = on_lapse
        self.on_beat = on_beat
        self.every = every
        self.extra = extra or {}
        self.confirmed_at = time.monotonic()  # the claim (or last renewal) that succeeded
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def confirm(self) -> None:
        """Another write renewed the lease (a phase change): count it as a beat."""
        self.confirmed_at = time.monotonic()

    def lapsed(self) -> bool:
        return time.monotonic() - self.confirmed_at > self.lease_seconds

    def retry_until(self) -> float:
        """The monotonic time by which the lease may have lapsed: retry writes until then."""
        return self.confirmed_at + self.lease_seconds - min(self.every, self.lease_seconds / 4)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat failed unexpectedly; beating on", extra=self.extra)

    def beat(self) -> None:
        if self.on_beat is not None:
            self.on_beat()
        try:
            self.renew()
        except Lost:
            self.on_lost()
            return
        except Exception as exc:  # noqa: BLE001 - classified below; nothing escapes
            self.failures += 1
            if faults.classify(exc) is faults.Fault.LOST:
                self.on_lost()
                return
            log.warning(
                "lease renewal failed (%s), %.0f s since the last one",
                faults.describe(exc),
                time.monotonic() - self.confirmed_at,
                extra=self.extra,
            )
            if self.lapsed():
                log.warning(
                    "lease not renewed for longer than it lasts: stopping", extra=self.extra
                )
                self.on_lapse()
            return
        self.failures = 0
        self.confirm()
