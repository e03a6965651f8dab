"""moto's server, with DynamoDB's atomicity: the local stack's AWS endpoint.

moto applies a conditional write, an ADD or a transaction in several Python steps, and its
server answers requests on many threads with no lock on its tables: two writes to one item
can interleave and one be lost (two tasks finishing together count once, and the job's
fan-in never completes), and a Query that walks a partition while another request adds to
it fails ("dictionary changed size during iteration"). DynamoDB applies each request
whole. One lock around moto's handling of a DynamoDB request gives the local stack that
guarantee. moto's slow paths are made quick (ops/moto_speed.py: the same answers); the
rest is `moto.server` as is (the same arguments). tests/conftest.py's `aws` fixture does
the same in-process.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def make_dynamodb_requests_atomic() -> None:
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto import server

    from ops import moto_speed

    make_dynamodb_requests_atomic()
    moto_speed.install()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
