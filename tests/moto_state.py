"""A provisioned moto, copied instead of provisioned again for every test.

`ops.provision` makes a stage's tables, buckets, queues, parameters and role, seeds the
presets and uploads the worker bundle: some 60 AWS calls, which were half the CPU of an
API test. The first `aws` fixture of a worker (for a given environment) provisions for
real and keeps a deep copy of every moto backend it filled; later ones start from a
fresh moto (mock_aws resets it) and put a new deep copy of those backends in place.
Each test still gets state of its own: nothing it writes reaches the kept copy.

`kept(name, make)` does the same for a bigger starting point that several tests share
(a 2-hour plan's 1,925 tasks and messages): made once, then copied.
"""

from __future__ import annotations

import atexit
import copy
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.model_instances import model_data
from moto.s3.models import S3Backend, s3_backends
from moto.sqs.models import SQSBackend
from moto.ssm.models import ParameterDict, SimpleSystemManagerBackend

Snapshot = list[tuple[BackendDict, str, str, BaseBackend]]
T = TypeVar("T")
_made: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Snapshot, Any]] = {}


def _environment() -> tuple[tuple[str, str], ...]:
    # What provisioning reads: the stage's names, region and account come from these.
    # Not the scratch folder: each test has its own, and no AWS state depends on it.
    prefixes = ("AWS_", "OE_", "MOTO_", "ADMIN_")
    return tuple(
        sorted(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith(prefixes) and k != "OE_SCRATCH_DIR"
        )
    )


def _copy(backend: BaseBackend) -> BaseBackend:
    """A deep copy of a backend. Two of moto's parts do not copy as they are: a queue's lock
    (it gets a lock of its own) and SSM's parameters (a defaultdict made with arguments)."""
    memo: dict[int, Any] = {}
    if isinstance(backend, SQSBackend):
        for queue in backend.queues.values():
            memo[id(queue._messages_lock)] = threading.Condition()
    if isinstance(backend, SimpleSystemManagerBackend):
        kept = backend._parameters
        fresh = ParameterDict(kept.account_id, kept.region_name)
        memo[id(kept)] = fresh
        vars(fresh).update(copy.deepcopy(vars(kept), memo))
        fresh.update(copy.deepcopy(dict(kept), memo))
    return copy.deepcopy(backend, memo)


def _snapshot() -> Snapshot:
    """Copies of every backend moto has made, hidden from moto's reset: it disposes of every
    model it tracks (an S3 object's copy would lose its bytes)."""
    tracking = [cls.instances_tracked for models in model_data.values() for cls in models.values()]
    before = [len(tracked) for tracked in tracking]
    kept = [
        (service, account, region, _copy(backend))
        for service in list(BackendDict._instances)  # type: ignore[attr-defined]
        for account, regions in service.items()
        for region, backend in regions.items()
    ]
    for tracked, count in zip(tracking, before, strict=True):
        del tracked[count:]
    return kept


@atexit.register
def _dispose() -> None:
    # Before the interpreter's teardown, when a kept S3 object could no longer close quietly.
    for kept, _ in _made.values():
        for _, _, _, backend in kept:
            if isinstance(backend, S3Backend):
                backend.reset()


def _restore(kept: Snapshot) -> None:
    for service, account, region, backend in kept:
        restored = service[account][region] = _copy(backend)
        if isinstance(restored, S3Backend):  # S3's global namespace: bucket → its account
            for name in restored.buckets:
                s3_backends.bucket_accounts[name] = (restored.partition, account)


def provisioned(provision: Callable[[], None]) -> None:
    """Run `provision` against the fresh moto once per environment; copy its result after."""
    kept("provisioned", provision)


def kept(name: str, make: Callable[[], T]) -> T:
    """`make()` once per worker, name and environment, on the test's moto, and its answer;
    later calls put a copy of the moto state it left in place, and give the same answer
    (keep it immutable: every caller shares it)."""
    key = (name, _environment())
    if key not in _made:
        answer = make()
        _made[key] = (_snapshot(), answer)
        return answer
    snapshot, answer = _made[key]
    _restore(snapshot)
    return answer
