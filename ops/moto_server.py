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
from collections.abc import Callable
from typing import Any


def make_dynamodb_requests_atomic(put: Callable[[Any, str, Any], None] = setattr) -> None:
    """One DynamoDB request at a time (`put` sets the wrapper: a test passes its
    `monkeypatch.setattr`)."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    put(DynamoHandler, "call_action", call_action)


# The services the local stack provisions and calls (ops/provision.py, chalicelib/).
STACK_SERVICES = ("dynamodb", "s3", "sqs", "ssm", "iam", "sts", "apigateway")


def load_backends_early() -> None:
    """Import the stack's backends while the server starts, not on their first request.

    moto imports a backend on its first request, and SSM's imports EC2's (1.3 s of CPU,
    mostly JSON: the region lists, instance types and AMIs), so the stack's provisioning
    waited that long on its first SSM call. Loaded on a thread of its own, it overlaps the
    stack's own start-up. Each region list comes from a new botocore session, which parses
    botocore's endpoints file again: one parse serves the three lists.
    """
    import functools

    import boto3.session
    from moto.backends import get_backend

    listed = boto3.session.Session.get_available_regions
    shared = functools.cache(boto3.session.Session)  # one loader: endpoints parsed once

    def get_available_regions(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        return listed(shared(), *args, **kwargs)

    boto3.session.Session.get_available_regions = get_available_regions  # type: ignore[method-assign]

    def load() -> None:
        for name in STACK_SERVICES:
            get_backend(name)  # type: ignore[call-overload]

    threading.Thread(target=load, name="moto-backends", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    from moto import server

    from ops import moto_speed

    make_dynamodb_requests_atomic()
    moto_speed.install()
    load_backends_early()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
