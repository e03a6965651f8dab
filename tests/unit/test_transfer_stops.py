"""A transfer stopped on purpose is a stop, not a network fault to retry."""

from __future__ import annotations

import pytest
from botocore.exceptions import HTTPClientError

from chalicelib.graph.workspace import Stopped as WorkspaceStopped
from chalicelib.store import faults, storage


def interrupted_upload(stop_wanted: bool) -> None:
    # What botocore raises when the upload's progress callback raises mid-body.
    def upload() -> None:
        # s3transfer re-raises the callback's own Stopped, with botocore's error as context.
        stopped = storage.Stopped("upload interrupted")
        try:
            raise HTTPClientError(error=stopped)
        except HTTPClientError:
            if stop_wanted:
                raise stopped from None
            raise

    storage.stoppable(upload, lambda: stop_wanted, "upload interrupted")


def test_an_upload_stopped_by_its_callback_raises_stopped_and_is_not_retried():
    with pytest.raises(storage.Stopped):
        interrupted_upload(stop_wanted=True)
    calls = []

    def upload() -> None:
        calls.append(1)
        interrupted_upload(stop_wanted=True)

    with pytest.raises(storage.Stopped):
        faults.retry(upload, until=float("inf"), what="uploading", sleep=lambda _: None)
    assert calls == [1]


def test_a_network_fault_while_no_stop_is_wanted_stays_a_retryable_fault():
    with pytest.raises(HTTPClientError) as raised:
        interrupted_upload(stop_wanted=False)
    assert faults.classify(raised.value) is faults.Fault.TRANSIENT


def test_a_workspace_stop_is_a_storage_stop_as_every_host_catches_it():
    assert issubclass(WorkspaceStopped, storage.Stopped)
