"""The pool lock: one conditional item, so only one run at a time changes the droplet pool.

Both the scheduled reconcile and the machine routes take it before they start or stop droplets.
"""

import contextlib
import secrets
import time

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.store import faults
from chalicelib.store.models import SystemItem

LOCK = "reconcile-lock"
LOCK_SECONDS = 50  # shorter than the 1-minute schedule, longer than a run


def acquire(now: float) -> int | None:
    """A conditional lock item: only one run at a time may change the droplet pool.

    None when another run holds it; a transient failure is retried briefly, then raised
    (this run fails and the next tick tries again).
    """
    token = secrets.randbelow(2**53)

    def take() -> None:
        SystemItem(LOCK, value=token, locked_until=int(now + LOCK_SECONDS)).save(
            condition=SystemItem.name.does_not_exist() | (SystemItem.locked_until < int(now))
        )

    try:
        faults.retry(take, until=time.monotonic() + 10, what="taking the reconcile lock")
        return token
    except PutError as exc:
        if faults.is_lost(exc):
            return None
        raise


def release(token: int) -> None:
    # If it expired and another run took it, it is not ours to delete; if DynamoDB
    # is failing, the lock expires by itself after LOCK_SECONDS.
    with contextlib.suppress(DeleteError):
        SystemItem(LOCK).delete(condition=SystemItem.value == token)
