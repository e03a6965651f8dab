"""Under load on the local stack, a backend failure is a retryable 503, never a 500.

The stack talks AWS through a fault proxy (tests/fault_proxy.py) in front of moto's
server; it fails one job-creating TransactWriteItems call, botocore's retries included.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ops.local_stack import free_port, running
from tests.fault_proxy import FaultProxy
from tests.polling import wait_until

pytestmark = pytest.mark.slow
CREATIONS = 200


@pytest.fixture(scope="module")
def proxied_stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("proxied-stack")
    aws_port = free_port()
    proxy = FaultProxy(aws_port)
    proxy_port = proxy.start()
    try:
        with (
            (state / "stack.log").open("w") as log,
            running(state, output=log, OE_BCRYPT_ROUNDS="4", ADMIN_USERNAME="boss",
                    AWS_PORT=str(aws_port),
                    OE_LOCAL_AWS_ENDPOINT=f"http://127.0.0.1:{proxy_port}") as (_process, facts),
        ):  # fmt: skip
            yield facts, proxy
    finally:
        proxy.stop()


def test_200_concurrent_creations_with_one_failed_transaction_make_199_jobs_and_one_503(
    proxied_stack,
):
    facts, proxy = proxied_stack
    api = facts["api"]
    admin = facts["admin"]
    login = requests.post(f"{api}/login", json=admin, timeout=30)
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    before = requests.get(f"{api}/stats", headers=auth, timeout=30).json()["jobs"]["total"]
    body = {"preset": "h264_baseline_360p_600", "source": "s3:///src/none.mp4", "dest": "s3:///x/"}
    # The next creation's transaction (its Put of the job item) fails, every retry of it.
    proxy.fail_once("TransactWriteItems", b'"Put"')

    def create(_: int) -> requests.Response:
        return requests.post(f"{api}/jobs", json=body, headers=auth, timeout=120)

    with ThreadPoolExecutor(max_workers=CREATIONS) as pool:
        answers = list(pool.map(create, range(CREATIONS)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {200, 503}, codes  # never a 500
    # moto's server itself sometimes answers a concurrent transaction with a 500 (through
    # botocore's retries too): those calls are 503s as well, and are counted here.
    emulator = proxy.gave_up("TransactWriteItems", b'"Put"')
    print(f"emulator 5xx: {proxy.upstream_errors[:3]}; calls it failed: {emulator}")
    assert codes.count(503) == 1 + emulator and codes.count(200) == CREATIONS - 1 - emulator
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["Retry-After"] and busy.json()["status"] == 503
    assert proxy.failed_requests >= 2  # the failed call, through botocore's retries
    created = {a.json()["job"]["id"] for a in answers if a.status_code == 200}
    assert len(created) == codes.count(200)

    # Nothing half-written for the failed ones: the counts settle at the jobs created. (They
    # are read with BatchGetItem, which is not serializable with the status transactions
    # the stack runs meanwhile, failing these jobs' missing source: a read can catch one
    # transition between its two shards.)
    def total() -> int:
        return requests.get(f"{api}/stats", headers=auth, timeout=30).json()["jobs"]["total"]

    wait_until(lambda: total() - before == len(created), 30,
               f"the job counts to settle at the {len(created)} jobs created", every=0.5)  # fmt: skip
