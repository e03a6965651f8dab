"""The local stack's AWS endpoint (ops/moto_server.py) writes one item atomically, as
DynamoDB does: concurrent transactions that each count once on one item all count."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from ops.local_stack import free_port
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
TASKS = 200


@pytest.fixture
def endpoint():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ops.moto_server", "-H", "127.0.0.1", "-p", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: subprocess.run(["curl", "-sf", f"{url}/moto-api/data.json"],
                                      capture_output=True).returncode == 0, 30, "the endpoint")  # fmt: skip
    yield url
    server.terminate()
    try:
        server.wait(timeout=30)  # a loaded machine may take a while to tear moto down
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_concurrent_fan_in_transactions_on_one_item_each_count_once(endpoint):
    options = {"endpoint_url": endpoint, "region_name": "us-east-1",
               "aws_access_key_id": "x", "aws_secret_access_key": "y"}  # fmt: skip
    ddb = boto3.client("dynamodb", **options)
    ddb.create_table(TableName="fan-in", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}])  # fmt: skip
    ddb.put_item(TableName="fan-in", Item={"id": {"N": "0"}, "done": {"N": "0"}})
    for task in range(1, TASKS + 1):
        ddb.put_item(TableName="fan-in", Item={"id": {"N": str(task)}, "status": {"S": "running"}})
    clients = threading.local()

    def finish(task: int) -> None:
        # As task_lifecycle.finish_task: the task's own conditional write and the job's counter
        # in one transaction.
        if not hasattr(clients, "ddb"):
            clients.ddb = boto3.client("dynamodb", **options)
        clients.ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "fan-in", "Key": {"id": {"N": str(task)}},
                        "UpdateExpression": "SET #s = :done", "ConditionExpression": "#s = :running",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":done": {"S": "done"}, ":running": {"S": "running"}}}},
            {"Update": {"TableName": "fan-in", "Key": {"id": {"N": "0"}},
                        "UpdateExpression": "ADD done :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(finish, range(1, TASKS + 1)))
    counted = ddb.get_item(TableName="fan-in", Key={"id": {"N": "0"}})["Item"]["done"]["N"]
    assert int(counted) == TASKS
