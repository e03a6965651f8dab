"""moto's server, with DynamoDB's atomicity: the local stack's AWS endpoint.

moto applies a conditional write, an ADD or a transaction in several Python steps, and its
server answers requests on many threads, so two writes to one item can interleave and one
be lost (two tasks finishing together count once, and the job's fan-in never completes).
DynamoDB applies each write and each transaction atomically. One lock around moto's item
operations gives the local stack that guarantee; everything else is `moto.server` as is
(the same arguments). tests/conftest.py's `atomic_items` does the same in-process.
"""

from __future__ import annotations

import functools
import sys
import threading

ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "transact_write_items",
)


def make_item_operations_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ITEM_OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        def locked(*args, _original=original, **kwargs):
            with lock:
                return _original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


def main(argv: list[str] | None = None) -> None:
    from moto import server

    make_item_operations_atomic()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
